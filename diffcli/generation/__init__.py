"""Generation: from a request's choices to pixels, shared by the commands, the Python API, `eval` and
training's previews.

- settings.py: the choices a request makes (`Sampling`), the settings they resolve to against a model
  (`SamplerSettings`: sampler, steps or stride, eta, guidance scale and interval) and the shared checks;
- reverse.py: `generate`, one call of the engine's reverse loop (SDEdit, inpainting, chains);
- illusions.py: the anagram and hybrid defaults, their guidance terms and how their images read;
- batches.py: `run_batches`, the one batched run (best-of and stage II included).

Nothing here imports jobs/, tui/ or cli/; progress comes in as a step callback.
"""

from typing import Any

# name -> the module that defines it; imported on first use, so `diffcli.generation.requests` (torch-free,
# read by --help) can be imported without loading the engine.
_EXPORTS = {
    "BATCH": "batches",
    "Part": "batches",
    "run_batches": "batches",
    "ChainRecorder": "reverse",
    "chain_callbacks": "reverse",
    "generate": "reverse",
    "prompt_terms": "reverse",
    "Sampling": "requests",
    "SamplerSettings": "settings",
    "default_settings": "settings",
    "guidance_report": "settings",
    "guidance_scale": "settings",
    "interval_timesteps": "settings",
    "plan_timesteps": "settings",
    "resolve_guidance": "settings",
    "resolve_sampling": "settings",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"diffcli.generation.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'diffcli.generation' has no attribute {name!r}")
