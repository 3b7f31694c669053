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
from diffcli.diffusion.names import SAMPLERS, VIEWS, spoken
from diffcli.errors import UsageError
from diffcli.generation.requests import SAMPLING_PANEL, Sampling, illusion_wording, interval_rule  # noqa: F401
from diffcli.params import REQUIRED, param
from diffcli.training.recipe import DOWNLOAD, dataset_completions

MODEL_PANEL, IMAGE_PANEL, ILLUSION_PANEL, T2I_PANEL = "Model", "Image-to-image", "Illusion", "Text-to-image models"


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
    stride: int | None = param(
        None,
        help="Iterative: visit every STRIDE-th timestep (the course's 30 at T=1000). Default: 3% of T.",
        bound=checks.STRIDE,
        metavar="INT",
        panel=SAMPLING_PANEL,
    )
    steps: int | None = param(
        None,
        help="Iterative: use this many evenly spread steps instead of a stride.",
        bound=checks.STEPS,
        metavar="INT",
        panel=SAMPLING_PANEL,
    )
    sampler: str = param(
        "ddpm",
        help=f"Iterative: {spoken(SAMPLERS)}.",
        choices=SAMPLERS,
        what="sampler",
        metavar="NAME",
        panel=SAMPLING_PANEL,
    )
    prompt: str | None = param(
        None,
        help="Condition on this class / prompt (default: unconditional).",
        flags=("--class", "--prompt", "-c"),
        rule=prompt_rule,
        complete="classes",
        metavar="CLASS",
        panel=MODEL_PANEL,
    )
    guidance: float | None = param(
        None,
        help="Classifier-free guidance scale (default 1: none).",
        flags=("--guidance", "-g"),
        bound=checks.GUIDANCE,
        metavar="SCALE",
        panel=SAMPLING_PANEL,
    )
    guidance_interval: str | tuple[float, float] | None = param(
        None,
        help="Guide only in this part of the reverse process (fractions of T from the clean end, e.g. "
        "0.2:0.7; 0:1 = throughout).",
        rule=interval_rule,
        metavar="LO:HI",
        panel=SAMPLING_PANEL,
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


TASK_PANEL, SCORER_PANEL, DATA_PANEL = "Task", "Scorer", "Data"
TASKS = ("sample", "anagram", "hybrid", "chain")
SCORERS = ("classifier", "clip")


@dataclass(kw_only=True)
class EvalRequest:
    """What `eval` measures and how. Tasks anagram and hybrid generate exactly as the `anagram` and `hybrid`
    commands do: what the request leaves out (sampler, steps, guidance, weight, filter) takes the same
    illusion defaults."""

    task: str = param(
        "sample",
        help="sample (per-class scores and FID), anagram or hybrid (success rate over class pairs), "
        "chain (the step at which samples become recognisable).",
        choices=TASKS,
        metavar="TASK",
        panel=TASK_PANEL,
    )
    n: int | None = param(
        None,
        help="Samples per class (sample: 100, chain: 20) or seeds per pair (anagram/hybrid: 10).",
        flags=("-n",),
        bound=checks.COUNT,
        metavar="INT",
        panel=TASK_PANEL,
    )
    scorer: str = param(
        "classifier",
        help="classifier (shipped for mnist and fashion-mnist, else trained once from the data and "
        "cached) or clip (open_clip, optional).",
        choices=SCORERS,
        metavar="NAME",
        panel=SCORER_PANEL,
    )
    view: str = param("flip", **{**VIEW, "help": f"Task anagram: {VIEW['help']}"})
    weight: float | None = param(None, **{**WEIGHT, "help": f"Task anagram: {WEIGHT['help']}"})
    pairs: str | None = param(
        None,
        help="Tasks anagram/hybrid: class pairs A:B, comma-separated (default: every ordered pair of distinct "
        "classes).",
        metavar="A:B,...",
        panel=ILLUSION_PANEL,
    )
    kernel: int | None = param(None, **{**KERNEL, "help": f"Task hybrid: {KERNEL['help']}"})
    sigma: float | None = param(None, **{**SIGMA, "help": f"Task hybrid: {SIGMA['help']}"})
    far_first: float | None = param(None, **{**FAR_FIRST, "help": f"Task hybrid: {FAR_FIRST['help']}"})
    near_last: float | None = param(None, **{**NEAR_LAST, "help": f"Task hybrid: {NEAR_LAST['help']}"})
    sampling: Sampling = param(help="How to walk the reverse process.", factory=Sampling)
    batch_size: int = param(
        250, help="Images generated per batch.", bound=checks.BATCH_SIZE, metavar="INT", panel=TASK_PANEL
    )
    dataset: str | None = param(
        None,
        help="Grade against this dataset (default: the one the model was trained on).",
        metavar="NAME",
        complete=dataset_completions,
        panel=DATA_PANEL,
    )
    data_dir: str | None = param(
        None,
        help="Where the dataset's files are; needed only for datasets without shipped scorers, or with "
        "--retrain-classifier (default: $DIFFCLI_DATA, else where the model was trained from).",
        rule=lambda name, value: checks.path(name, value),
        metavar="DIR",
        panel=DATA_PANEL,
    )
    download: bool = param(False, **DOWNLOAD)
    retrain_classifier: bool = param(
        False,
        help="Train the dataset's scoring classifier afresh from the data; it then takes precedence over the "
        "shipped one.",
        panel=SCORER_PANEL,
    )
    clip_model: str = param("ViT-B-32", help="Scorer clip: the open_clip model.", metavar="NAME", panel=SCORER_PANEL)
    clip_pretrained: str = param(
        "laion2b_s34b_b79k",
        help="Scorer clip: the pretrained tag, read from the local open_clip / Hugging Face cache.",
        metavar="TAG",
        panel=SCORER_PANEL,
    )
    clip_weights: str | None = param(
        None,
        help="Scorer clip: a local open_clip checkpoint file instead of the tag.",
        metavar="PATH",
        panel=SCORER_PANEL,
    )
    template: str | None = param(
        None,
        help='Scorer clip: prompt template with {label} (default: "a photo of the digit {label}" for digits).',
        metavar="TEXT",
        panel=SCORER_PANEL,
    )
    record: bool = param(
        False, help="Store the headline figures in the model's config.json (metrics.eval).", panel="Output"
    )
    seed: int = param(
        0,
        help="First seed; image i uses seed + i (fixed by default, so scores repeat).",
        rule=SEED["rule"],
        metavar="INT",
        panel=SAMPLING_PANEL,
    )
    best_of: int = param(
        1,
        **{
            **BEST_OF,
            "help": "Tasks anagram/hybrid: also measure what --best-of K keeps (n images per pair from n*K seeds).",
            "panel": ILLUSION_PANEL,
        },
    )
