"""Generation: from a request's choices to pixels, shared by the commands, the Python API, `eval` and
training's previews.

- settings.py: the choices a request makes (`Sampling`), the settings they resolve to against a model
  (`SamplerSettings`: sampler, steps or stride, eta, guidance scale and interval) and the shared checks;
- reverse.py: `generate`, one call of the engine's reverse loop (SDEdit, inpainting, chains);
- illusions.py: the anagram and hybrid defaults, their guidance terms and how their images read;
- batches.py: `run_batches`, the one batched run (best-of and stage II included).

Nothing here imports jobs/, tui/ or cli/; progress comes in as a step callback.
"""

from diffcli.generation.batches import BATCH, Part, run_batches
from diffcli.generation.reverse import ChainRecorder, chain_callbacks, generate, prompt_terms
from diffcli.generation.settings import (
    SamplerSettings,
    Sampling,
    default_settings,
    guidance_report,
    guidance_scale,
    interval_timesteps,
    plan_timesteps,
    resolve_guidance,
    resolve_sampling,
)

__all__ = [
    "BATCH",
    "ChainRecorder",
    "Part",
    "SamplerSettings",
    "Sampling",
    "chain_callbacks",
    "default_settings",
    "generate",
    "guidance_report",
    "guidance_scale",
    "interval_timesteps",
    "plan_timesteps",
    "prompt_terms",
    "resolve_guidance",
    "resolve_sampling",
    "run_batches",
]
