"""What `sample`, `anagram` and `hybrid` are asked: keyword-only requests whose fields are declared once
(diffcli/params.py). The CLI builds its arguments and options from these declarations, the Python API
takes the same keywords with the same defaults, and the jobs check a request by them. torch-free:
`diffcli --help` reads them.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

from diffcli import checks
from diffcli.device import DEVICE_CHOICES, OFFLOAD_CHOICES
from diffcli.diffusion.names import VIEWS, spoken
from diffcli.errors import UsageError
from diffcli.generation.requests import SAMPLING_PANEL, Sampling, illusion_wording, interval_rule  # noqa: F401
from diffcli.params import REQUIRED, param

MODEL_PANEL, IMAGE_PANEL, ILLUSION_PANEL, T2I_PANEL = "Model", "Image-to-image", "Illusion", "Text-to-image models"


def for_task(task: str, declaration: dict[str, Any]) -> dict[str, Any]:
    """A shared declaration as `eval` offers it for one task ("Task hybrid: share of ...")."""
    text = declaration["help"]
    return {**declaration, "help": f"Task {task}: {text[:1].lower()}{text[1:]}"}


def prompt_rule(name: str, value: Any) -> str:
    """A class (its index, a number, or its name) or a text prompt, as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and type(value).__name__ != "bool_":
        return str(int(value))
    raise UsageError(f"`{name}` must be a class (a number or a name) or a prompt, got {value!r}")


def prompts_rule(name: str, value: Any) -> list[str]:
    """One or more classes / prompts (`prompt_rule` each) as a list."""
    return [prompt_rule(name, v) for v in checks.as_list(value) or []]


# Options several requests share (eval's illusion tasks take the same values as the commands).
SEED = dict(
    help="Random seed (default: a fresh one, printed and recorded in the PNG). Image i uses seed + i.",
    rule=lambda name, value: checks.seed(value)[0],
    metavar="INT",
    panel=SAMPLING_PANEL,
)
BEST_OF = dict(
    help="Make K candidates per image and keep the one the scorer reads best (the dataset's classifier; CLIP "
    "for text-to-image models); its own seed is recorded.",
    bound=checks.BEST_OF,
    metavar="K",
    panel=SAMPLING_PANEL,
)
VIEW = dict(help=f"{spoken(VIEWS, notes=True)}.", choices=VIEWS, what="view", metavar="VIEW", panel=ILLUSION_PANEL)
WEIGHT = dict(
    help="Weight w of the first prompt's estimate (1 - w for the second; default 0.5).",
    bound=checks.WEIGHT,
    metavar="W",
    panel=ILLUSION_PANEL,
)
KERNEL = dict(
    help="Gaussian low-pass kernel size, odd (default: the model's illusion default, see docs/illusions.md).",
    rule=lambda name, value: checks.odd_kernel(name, value),
    metavar="INT",
    panel=ILLUSION_PANEL,
)
SIGMA = dict(
    help="Gaussian low-pass sigma in pixels (default: the model's illusion default; a sigma alone gets a kernel "
    "of 3 sigma each side).",
    bound=checks.SIGMA,
    metavar="PIXELS",
    panel=ILLUSION_PANEL,
)
FAR_FIRST = dict(
    help="Share of the reverse process (from its start) that follows FAR alone, its high frequencies too "
    "(default: the model's illusion default).",
    low=0.0,
    high=1.0,
    metavar="SHARE",
    panel=ILLUSION_PANEL,
)
NEAR_LAST = dict(
    help="Share of the reverse process (up to its end) that follows NEAR alone, its low frequencies too "
    "(default: the model's illusion default).",
    low=0.0,
    high=1.0,
    metavar="SHARE",
    panel=ILLUSION_PANEL,
)


@dataclass(kw_only=True)
class ModelChoice:
    """Which registry model to load, where, and how (`diffcli.load` takes the same)."""

    model: str | None = param(
        None,
        help="Registry model (default: the registry's default; see `diffcli models list`).",
        flags=("--model", "-m"),
        metavar="NAME",
        envvar="DIFFCLI_MODEL",
        complete="model",
        panel=MODEL_PANEL,
    )
    device: str = param(
        "auto",
        help="auto, cpu, cuda or mps (auto picks the GPU when there is one).",
        metavar="DEVICE",
        envvar="DIFFCLI_DEVICE",
        complete=lambda incomplete: [d for d in DEVICE_CHOICES if d.startswith(incomplete)],
        panel=MODEL_PANEL,
    )
    weights: str = param(
        "ema",
        help="ema (default) or raw weights of a model trained with EMA.",
        choices=("ema", "raw"),
        metavar="WHICH",
        panel=MODEL_PANEL,
    )
    offload: str = param(
        "auto",
        help="auto, none, model or sequential CPU offload.",
        choices=OFFLOAD_CHOICES,
        metavar="MODE",
        panel=T2I_PANEL,
    )


@dataclass(kw_only=True)
class Generation:
    """What every generating command takes: images per class or prompt, the first seed, candidates per
    image, the sampling, and a text-to-image model's stage II."""

    n: int = param(
        1,
        help="Images per class / prompt (one seed each: seed, seed+1, ...).",
        flags=("-n",),
        bound=checks.COUNT,
        metavar="INT",
        panel=SAMPLING_PANEL,
    )
    seed: int | None = param(None, **SEED)
    best_of: int = param(1, **BEST_OF)
    sampling: Sampling = param(help="How to walk the reverse process.", factory=Sampling)
    upscale: bool = param(False, help="Run the upscaler (stage II, 64 -> 256 px).", panel=T2I_PANEL)


@dataclass(kw_only=True)
class SampleRequest(Generation):
    """What `sample` makes: `n` images per class or prompt (every class by default), from noise or, with
    `init`, from an image noised to each `start` (SDEdit; inpainting where `mask` is white)."""

    classes: list[str] | None = param(
        None,
        help="Classes (index or name: 7, seven, sneaker) or text prompts, one row each. Default: every class.",
        argument=True,
        rule=prompts_rule,
        complete="classes",
        cli_type=list[str],
        metavar="CLASS",
    )
    init: Any = param(
        None,
        help="SDEdit / image-to-image: start from this image (a path, - or builtin:NAME), noised to -t.",
        cli_type=str,
        complete="images",
        metavar="IMAGE",
        panel=IMAGE_PANEL,
    )
    start: list[int] | None = param(
        None,
        help="With --init: the timestep to noise it to (lower keeps more of it); repeat for a sweep, one column "
        "per t. Default: T-1 with --mask, else T/2.",
        flags=("-t", "--t"),
        metavar="INT",
        panel=IMAGE_PANEL,
    )
    mask: Any = param(
        None,
        help="With --init: inpaint where the mask is white, keep the rest.",
        cli_type=str,
        complete="images",
        metavar="IMAGE",
        panel=IMAGE_PANEL,
    )
    chain: bool = param(
        False,
        help="Lay out the reverse chain (x_t at 10 steps) of each sample (with --out-dir: a strip beside each image).",
        panel=SAMPLING_PANEL,
    )


@dataclass(kw_only=True)
class AnagramRequest(Generation):
    """A visual anagram: one image that reads as `first`, and as `second` after `view` (each term of
    eps = w eps(x_t, first) + (1 - w) V^-1(eps(V(x_t), second)) CFG-guided; docs/engine.md). Sampling left
    unset takes the illusion defaults (generation/requests.py)."""

    first: str = param(
        REQUIRED,
        help="What the image shows as it is (class or prompt).",
        argument=True,
        rule=prompt_rule,
        complete="classes",
        metavar="FIRST",
    )
    second: str = param(
        REQUIRED,
        help="What it shows after the view.",
        argument=True,
        rule=prompt_rule,
        complete="classes",
        metavar="SECOND",
    )
    view: str = param("flip", **VIEW)
    weight: float | None = param(None, **WEIGHT)


@dataclass(kw_only=True)
class HybridRequest(Generation):
    """A hybrid image: `far` in its low frequencies (seen from afar), `near` in its high ones
    (eps = lowpass(eps(x_t, far)) + highpass(eps(x_t, near)), each CFG-guided: factorized diffusion)."""

    far: str = param(
        REQUIRED,
        help="What the low frequencies show (seen from afar).",
        argument=True,
        rule=prompt_rule,
        complete="classes",
        metavar="FAR",
    )
    near: str = param(
        REQUIRED,
        help="What the high frequencies show (seen up close).",
        argument=True,
        rule=prompt_rule,
        complete="classes",
        metavar="NEAR",
    )
    kernel: int | None = param(None, **KERNEL)
    sigma: float | None = param(None, **SIGMA)
    explain: bool = param(
        False, help="Lay each result out as hybrid | its low-pass | its high-pass.", panel=ILLUSION_PANEL
    )
    far_first: float | None = param(None, **FAR_FIRST)
    near_last: float | None = param(None, **NEAR_LAST)


SCHEDULE_PANEL, METHOD_PANEL, BLUR_PANEL = "Schedule", "Method", "Blur (Gaussian filter)"
IMAGE_HELP = "a path, - for stdin, or builtin:NAME (builtin:house, builtin:digit)"


@dataclass(kw_only=True)
class NoiseRequest:
    """`image` noised to each timestep in `t` of a schedule with `timesteps` steps (the forward process).
    The same seed gives the same noise (and the same noisy image as `denoise`)."""

    image: Any = param(
        REQUIRED, help=f"Input image: {IMAGE_HELP}.", argument=True, cli_type=str, complete="images", metavar="IMAGE"
    )
    t: list[int] = param(
        REQUIRED,
        help="Timestep to noise to, in [0, T). Repeat for a strip: -t 250 -t 500 -t 750.",
        flags=("-t", "--t"),
        metavar="INT",
        panel=SCHEDULE_PANEL,
    )
    timesteps: int | None = param(
        None,
        help="Timesteps T of the schedule.  [default: 1000]",
        bound=checks.TIMESTEPS,
        metavar="T",
        panel=SCHEDULE_PANEL,
    )
    schedule: str = param(
        "linear",
        help="Noise schedule: linear (betas 1e-4..0.02) or cosine.",
        choices=("linear", "cosine"),
        what="schedule",
        metavar="KIND",
        panel=SCHEDULE_PANEL,
    )
    size: int | None = param(None, help="Centre-crop and resize to PIXELS x PIXELS first.", metavar="PIXELS")
    seed: int | None = param(None, **SEED)


@dataclass(kw_only=True)
class DenoiseRequest:
    """Denoise `image`, noised to timestep `t` first (default T/2) unless `noisy` says it already is: by
    Gaussian blur, one noise estimate, or the reverse loop; `compare` makes the course's panel."""

    image: Any = param(
        REQUIRED,
        help=f"Image to denoise: {IMAGE_HELP}.",
        argument=True,
        cli_type=str,
        complete="images",
        metavar="IMAGE",
    )
    method: str = param(
        "iterative",
        help="blur (Gaussian, no model), onestep (one noise estimate) or iterative (the reverse loop).",
        choices=("blur", "onestep", "iterative"),
        what="method",
        metavar="METHOD",
        panel=METHOD_PANEL,
    )
    t: int | None = param(
        None,
        help="Timestep the image is (or is noised to). Default: half of T.",
        flags=("-t", "--t"),
        metavar="INT",
        panel=METHOD_PANEL,
    )
    noisy: bool = param(False, help="The input is already noisy at -t: do not add noise.", panel=METHOD_PANEL)
    compare: bool = param(
        False, help="Write the course's panel: original | noisy | iterative | one-step | blurred.", panel=METHOD_PANEL
    )
    kernel: int = param(
        5,
        help="Gaussian blur kernel size (odd).",
        rule=lambda name, value: checks.odd_kernel(name, value),
        metavar="INT",
        panel=BLUR_PANEL,
    )
    sigma: float = param(
        2.0, help="Gaussian blur sigma, in pixels.", bound=checks.SIGMA, metavar="PIXELS", panel=BLUR_PANEL
    )
    sampling: Sampling = param(help="How the iterative method walks the reverse process.", factory=Sampling)
    prompt: str | None = param(
        None,
        help="Condition on this class / prompt (default: unconditional).",
        flags=("--class", "--prompt", "-c"),
        rule=prompt_rule,
        complete="classes",
        metavar="CLASS",
        panel=MODEL_PANEL,
    )
    noise_sigma: list[float] | None = param(
        None,
        help="Single-step denoiser models: add x + SIGMA*z and denoise; repeat for the course's sweep.",
        bound=checks.NOISE_SIGMA,
        metavar="SIGMA",
        panel=METHOD_PANEL,
    )
    seed: int | None = param(None, **SEED)

    @property
    def needs_model(self) -> bool:
        return self.compare or self.method != "blur" or self.noise_sigma is not None
