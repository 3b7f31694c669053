"""What a request may ask of the reverse process (`Sampling`), and the illusion defaults that fill what an
anagram or a hybrid leaves out: declared once (diffcli/params.py), torch-free, so the CLI's options and
help, the Python API's keywords and the checks all read the same declarations.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from diffcli import checks
from diffcli.diffusion.names import SAMPLERS, spoken
from diffcli.params import param

SAMPLING_PANEL = "Sampling"


def interval_rule(name: str, value: Any) -> Any:
    """A guidance interval ("LO:HI" or a pair) refused in one line when it is not one; kept as given, for
    the model's default to be resolved against it."""
    checks.parse_guidance_interval(value)
    return value


@dataclass(frozen=True, kw_only=True)
class Sampling:
    """How to walk the reverse process, as a request asks; None means the default of the command (the
    model's own for `sample`, the illusion defaults below for `anagram` and `hybrid`). `{default}` in a
    help text is that default in the command's words."""

    sampler: str | None = param(
        None,
        help=f"{spoken(SAMPLERS)} (default: {{default}}).",
        choices=SAMPLERS,
        what="sampler",
        metavar="NAME",
        panel=SAMPLING_PANEL,
    )
    steps: int | None = param(
        None,
        help="Sampler steps, evenly spread from T-1 (default: {default}).",
        bound=checks.STEPS,
        metavar="INT",
        panel=SAMPLING_PANEL,
    )
    stride: int | None = param(
        None,
        help="Visit every INT-th timestep instead of a number of steps (the course's 30 at T=1000).",
        bound=checks.STRIDE,
        metavar="INT",
        panel=SAMPLING_PANEL,
    )
    guidance: float | None = param(
        None,
        help="Classifier-free guidance scale, 1 = off (default: {default}).",
        flags=("--guidance", "-g"),
        bound=checks.GUIDANCE,
        metavar="SCALE",
        panel=SAMPLING_PANEL,
    )
    guidance_interval: str | tuple[float, float] | None = param(
        None,
        help="Guide only in this part of the reverse process (fractions of T from the clean end, e.g. "
        "0.2:0.7; plainly conditional elsewhere; 0:1 = throughout). Default: the model's, with its own scale.",
        rule=interval_rule,
        metavar="LO:HI",
        panel=SAMPLING_PANEL,
    )
    eta: float = param(
        0.0, help="DDIM noise: 0 deterministic, 1 DDPM-like.", bound=checks.ETA, metavar="ETA", panel=SAMPLING_PANEL
    )

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The keyword names a request's sampling takes (the CLI's options and the Python API's keywords)."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def pick(cls, options: dict[str, Any]) -> Sampling:
        """The sampling keywords of `options` (taken out of it) as a Sampling."""
        return cls(**{k: options.pop(k) for k in cls.keys() if k in options})


@dataclass(frozen=True)
class IllusionDefaults:
    """What an illusion uses when the request does not say.

    sampler / steps / guidance: the reverse process (they may differ from the model's own sampling
    defaults: illusions need more of both). weight: an anagram's weight of the first prompt.
    sigma: a hybrid's low-pass sigma in pixels at `sigma_size` px (scaled with the image size; the
    kernel is the odd size covering 3 sigma each side). far_first / near_last: the share of the
    reverse process (of T, from its start / up to its end) in which a hybrid follows FAR alone (its
    high band too) / NEAR alone (its low band too); in between, the low band is FAR's and the high NEAR's.
    """

    sampler: str
    steps: int
    guidance: float
    weight: float = 0.5
    sigma: float = 2.0
    sigma_size: int = 64
    kernel: int | None = None  # None: from sigma; else this size at sigma_size px (scaled)
    far_first: float = 0.0
    near_last: float = 0.0


# Small class models (the embedded mnist / fashion, and models trained with `diffcli train`): the study
# in docs/illusions.md chose these. Deterministic DDIM beat stochastic DDPM at every step count tried,
# 20 steps did as well as 50; the anagram's mean halves each prompt's guidance, so it needs CFG 4-6
# where `sample` uses 2; the hybrid needs a stronger low-pass than the course's 0.875 px at 28 px, and
# FAR alone for the first tenth of the reverse process (on the embedded flow model a tenth read 32 %,
# far / near 61 % / 67 %, where a fifth read 29 %, 53 % / 70 %: docs/illusions.md).
CLASS_ANAGRAM = IllusionDefaults(sampler="ddim", steps=20, guidance=5.0)
CLASS_HYBRID = IllusionDefaults(sampler="ddim", steps=20, guidance=5.0, sigma=1.75, sigma_size=28, far_first=0.1)
# Text-to-image models: the visual-anagrams / factorized-diffusion reference (dangeng/visual_anagrams):
# 30 DDPM steps and CFG 10 at both stages, the hybrid low-pass of kernel 33 and sigma 2 at 64 px.
TEXT_ANAGRAM = IllusionDefaults(sampler="ddpm", steps=30, guidance=10.0)
TEXT_HYBRID = IllusionDefaults(sampler="ddpm", steps=30, guidance=10.0, sigma=2.0, sigma_size=64, kernel=33)
REFERENCE_STAGE_TWO_STEPS = 30  # the reference runs stage II with stage I's step count


def illusion_wording(kind: str) -> dict[str, str]:
    """What `anagram` / `hybrid` (`kind`) use when the request leaves sampling out, for help texts."""
    small, text = (CLASS_ANAGRAM, TEXT_ANAGRAM) if kind == "anagram" else (CLASS_HYBRID, TEXT_HYBRID)

    def both(field: str) -> str:
        a, b = getattr(small, field), getattr(text, field)
        return (
            f"{a:g} for class models, {b:g} for text-to-image models"
            if isinstance(a, float)
            else (f"{a} for class models, {b} for text-to-image models")
        )

    return {"sampler": both("sampler"), "steps": both("steps"), "guidance": both("guidance")}
