"""The names of the engine's samplers and anagram views: the one list the CLI's choices and help, the
model config's schema, the requests' checks and the engine read.

torch-free on purpose: `diffcli --help`, shell completion and config validation read it without loading
the engine. Each entry names the module that defines it (the engine imports that module when the name is
first asked for, and the module registers itself), so a new sampler or view is its module plus one line
here.
"""

from __future__ import annotations

# name -> the module whose @register_sampler defines it, in the order help texts list them
SAMPLER_MODULES: dict[str, str] = {
    "ddpm": "diffcli.diffusion.samplers",
    "ddim": "diffcli.diffusion.samplers",
    "heun": "diffcli.diffusion.samplers",
    "dpm++": "diffcli.diffusion.samplers",
}
SAMPLERS: tuple[str, ...] = tuple(SAMPLER_MODULES)

# name -> (the module whose register_view defines it, a note for help texts or "")
VIEW_MODULES: dict[str, tuple[str, str]] = {
    "flip": ("diffcli.diffusion.views", "upside down, the course's"),
    "rot180": ("diffcli.diffusion.views", ""),
    "hflip": ("diffcli.diffusion.views", ""),
    "rot90": ("diffcli.diffusion.views", "square images"),
    "negate": ("diffcli.diffusion.views", ""),
}
VIEWS: tuple[str, ...] = tuple(VIEW_MODULES)

# How `diffcli distill` trains a student (training/distillation.py; the CLI and the config schema read this).
DISTILLATION_METHODS: tuple[str, ...] = ("progressive", "reflow")


def spoken(names: tuple[str, ...], notes: bool = False) -> str:
    """'a, b, c or d' for help texts; notes: each view's note in brackets after its name."""
    words = [f"{n} ({VIEW_MODULES[n][1]})" if notes and n in VIEW_MODULES and VIEW_MODULES[n][1] else n for n in names]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
