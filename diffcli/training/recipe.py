"""Training settings: every knob of `diffcli train`, the named presets, and the model config they make.

A preset is a complete recipe; command-line options override single fields. `course` reproduces the
course's Part B recipes (its UNet with BatchNorm, T=300, Adam with exponential decay); `default` is the
measured CPU recipe (docs/performance.md); `denoiser` is the course's single-step denoiser (B.1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from diffcli import checks, params
from diffcli.errors import UsageError
from diffcli.params import param

CONDS = ("class", "time", "none")
OBJECTIVES = ("eps", "v", "flow", "denoise")
LR_SCHEDULES = ("exponential", "cosine", "constant")
LOSS_WEIGHTINGS = ("none", "min-snr")
TIMESTEP_SAMPLINGS = ("uniform", "logit-normal")  # training/timesteps.py draws them
MAX_TIMESTEPS = checks.TIMESTEPS.high
WIDTHS = {"unet": (2, checks.WIDTH.high), "course": (checks.WIDTH.low, checks.WIDTH.high)}  # first-level channels


DATA, RECIPE, NETWORK, SPEED, RUN = "Data", "Recipe", "Network", "Speed", "Run"
DATASET_NAMES = ("mnist", "fashion-mnist", "fashion", "glyphs", "folder:")
DEFAULT_ARCHITECTURE: dict[str, Any] = {
    "type": "unet",
    "width": 32,
    "mults": [1, 2, 2],
    "blocks": 1,
    "attention": [],
    "patch": 2,
}


# `--download` of train and eval: the same option, declared once.
DOWNLOAD = dict(
    help="Download MNIST or Fashion-MNIST into the --data-dir you name when it is missing there (without this, a "
    "named --data-dir is only read; the default one is filled either way).",
    panel=DATA,
)


# Options `train` and `distill` share (the student is a recipe of the same trainer): declared once here.
BATCH = dict(
    help="Images per step (the global batch under torchrun).", bound=checks.BATCH_SIZE, metavar="INT", panel=RECIPE
)
PEAK_LR = dict(help="Peak learning rate (Adam).", bound=checks.LR, metavar="RATE", panel=RECIPE)
PRECISION = dict(
    help="auto (bf16 on a CPU with native bf16, else fp32), fp32, bf16 or fp16 (autocast).",
    choices=("auto", "fp32", "bf16", "fp16"),
    metavar="KIND",
    panel=SPEED,
)
MAX_STEPS = dict(
    help="Stop after this many optimiser steps in all (a resumable checkpoint is saved).",
    low=1,
    metavar="INT",
    panel=RUN,
)


def dataset_completions(incomplete: str) -> list[str]:
    """Dataset names for shell completion."""
    return [d for d in DATASET_NAMES if d.startswith(incomplete)]


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """A full training recipe. The field defaults are the default recipe (docs/performance.md): the
    GroupNorm UNet on 2x2 pixel patches, flow matching with logit-normal timesteps, a short warm-up then
    cosine decay, EMA, sampled with 20 DDIM steps and CFG 1.5. Each field's help text and bounds are
    its one declaration (`diffcli train --help`, `diffcli.train(...)` and `validate` read them)."""

    dataset: str = param(
        "mnist",
        help="mnist, fashion-mnist (or fashion), glyphs (synthetic, offline) or folder:PATH (subfolders = classes).",
        metavar="NAME",
        panel=DATA,
        complete=dataset_completions,
    )
    data_dir: str | None = param(
        None,
        help="A torchvision root or a folder holding the four IDX files (default: $DIFFCLI_DATA, else "
        "data/ beside the registry).",
        metavar="DIR",
        panel=DATA,
        rule=checks.path,
    )
    limit: int | None = param(None, help="Train on the first INT images only.", low=1, metavar="INT", panel=DATA)
    cond: str = param(
        "class",
        help="class (with CFG's null class), time (unconditional) or none (single-step denoiser).",
        choices=CONDS,
        metavar="KIND",
        panel=RECIPE,
    )
    objective: str = param(
        "flow",
        help="eps (noise prediction), v, flow (flow matching) or denoise (map x + sigma z to x).",
        choices=OBJECTIVES,
        metavar="KIND",
        panel=RECIPE,
    )
    noise_sigma: float = param(
        0.5,
        help="Objective denoise: the training noise level sigma.",
        bound=checks.NOISE_SIGMA,
        metavar="SIGMA",
        panel=RECIPE,
    )
    epochs: int = param(6, help="Passes over the training set.", bound=checks.EPOCHS, metavar="INT", panel=RECIPE)
    batch_size: int = param(128, **BATCH)
    lr: float = param(2e-3, **PEAK_LR)
    lr_schedule: str = param(
        "cosine",
        help="exponential (the course's 0.1^(1/epochs) per epoch), cosine or constant.",
        choices=LR_SCHEDULES,
        metavar="KIND",
        panel=RECIPE,
    )
    warmup_steps: int = param(
        200,
        help="Optimiser steps over which the learning rate rises linearly to its peak.",
        low=0,
        metavar="INT",
        panel=RECIPE,
    )
    loss_weighting: str = param(
        "none",
        help="none, or min-snr (Hang et al. 2023: each timestep's loss weighted by min(SNR, 5) / SNR; "
        "/ (SNR + 1) for v).",
        choices=LOSS_WEIGHTINGS,
        metavar="KIND",
        panel=RECIPE,
    )
    timestep_sampling: str = param(
        "logit-normal",
        help="Which timesteps a step trains on: uniform, or logit-normal (the middle of the "
        "schedule most often; Esser et al. 2024).",
        choices=TIMESTEP_SAMPLINGS,
        metavar="KIND",
        panel=RECIPE,
    )
    timesteps: int = param(1000, help="Diffusion timesteps T.", bound=checks.TIMESTEPS, metavar="T", panel=RECIPE)
    schedule: str = param(
        "cosine",
        help="linear (betas 1e-4..0.02) or cosine.",
        choices=("linear", "cosine"),
        metavar="KIND",
        panel=RECIPE,
    )
    ema: bool = param(
        True,
        help="Keep an EMA of the weights for sampling (saved beside the raw weights).",
        flags=("--ema/--no-ema",),
        panel=RECIPE,
    )
    p_uncond: float = param(
        0.1,
        help="Class models: probability of dropping the class (CFG's null class).",
        bound=checks.P_UNCOND,
        metavar="P",
        panel=RECIPE,
    )
    guidance: float = param(
        1.5,
        help="The CFG scale `sample` uses by default for this model.",
        flags=("--guidance", "-g"),
        bound=checks.GUIDANCE,
        metavar="SCALE",
        panel=RECIPE,
    )
    # recorded with `guidance` for `sample`: CFG only in this part (lo, hi) of T (None: throughout)
    guidance_interval: str | tuple[float, float] | None = param(
        None,
        help="Record that `sample` guides only in this part of the reverse process (fractions of T, "
        "e.g. 0.2:0.7; docs/performance.md: it pays on well-trained models). Default: throughout.",
        metavar="LO:HI",
        panel=RECIPE,
        rule=lambda name, value: checks.parse_guidance_interval(value),
    )
    seed: int = param(0, help="Seed for weights, data order and noise.", bound=checks.SEED, metavar="INT", panel=RECIPE)
    architecture: dict[str, Any] = param(
        help="The network (type, width, ...).",
        factory=lambda: dict(DEFAULT_ARCHITECTURE),
        cli=False,
        rule=lambda name, value: check_architecture(value),
    )
    # auto | fp32 | bf16 | fp16 (autocast); auto is resolved for the device when a run starts
    # (device.resolve_precision) and the resolved value is saved, so --resume continues the same way.
    precision: str = param("auto", **PRECISION)
    channels_last: bool = param(
        False,
        help="Use the channels-last memory format.",
        flags=("--channels-last/--no-channels-last",),
        panel=SPEED,
    )
    compile: bool = param(False, help="torch.compile the network.", flags=("--compile/--no-compile",), panel=SPEED)
    max_steps: int | None = param(None, **MAX_STEPS)
    weight_decay: float = param(0.0, help="AdamW's weight decay.", low=0.0, cli=False)
    grad_clip: float | None = param(
        1.0, help="Clip the gradient norm at this value (None: no clipping).", low=0.0, low_open=True, cli=False
    )
    ema_decay: float = param(
        0.999, help="The EMA's decay per step.", low=0.0, high=1.0, low_open=True, high_open=True, cli=False
    )
    val_limit: int | None = param(2000, help="Validation images per epoch.", low=1, cli=False)
    # A distillation's plan (training/distillation.py Plan.to_dict; `diffcli distill` sets it): the student
    # starts as the teacher and is trained towards it.
    distillation: dict[str, Any] | None = param(
        None, help="The teacher, method and steps of a distillation (`diffcli distill`).", cli=False
    )
    sample_epochs: tuple[int, ...] = (1, 5, 10, 15, 20)
    sampler: str = "ddim"  # recorded as the model's default for `sample`
    sample_steps: int | None = 20
    pixel_range: tuple[float, float] = (-1.0, 1.0)
    preset: str = "default"

    def validate(self) -> None:
        """Every value checked (each field by its declared rule: finite floats in range, whole numbers,
        known choices), then the rules between fields, before anything is built; messages name the setting."""
        params.check(self)
        if self.objective == "denoise" and self.cond != "none":
            raise UsageError(
                "`objective` denoise trains the single-step denoiser, which takes no condition", "add `cond` none"
            )
        if self.cond == "none" and self.objective != "denoise":
            raise UsageError(
                "`cond` none only fits `objective` denoise", "use `cond` time for an unconditional diffusion model"
            )
        if self.guidance_interval is not None and (self.cond != "class" or self.p_uncond == 0):
            raise UsageError(
                "`guidance_interval` limits classifier-free guidance, which needs a class model with `p_uncond` "
                "above 0",
                "leave `guidance_interval` out",
            )
        if self.loss_weighting == "min-snr" and self.objective not in ("eps", "v"):
            # min(SNR, 5) / SNR is the weight for eps, / (SNR + 1) for v; it has no form for flow or denoise
            raise UsageError(
                f"`loss_weighting` min-snr is defined for the eps and v objectives, not {self.objective}",
                "use `objective` eps or v, or `loss_weighting` none",
            )
        if self.timestep_sampling != "uniform" and self.objective == "denoise":
            raise UsageError(
                "`timestep_sampling` picks diffusion timesteps, and `objective` denoise has none",
                "leave `timestep_sampling` out",
            )

    @property
    def prediction(self) -> str:
        return {"eps": "eps", "v": "v", "flow": "velocity", "denoise": "x0"}[self.objective]

    @property
    def schedule_kind(self) -> str:
        return "flow" if self.objective == "flow" else self.schedule

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sample_epochs"] = list(self.sample_epochs)
        data["pixel_range"] = list(self.pixel_range)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSettings:
        """A saved recipe. A key it lacks takes what recipes meant before that key was recorded
        (RECORDED_LATER), not today's default, so an old checkpoint resumes as it trained."""
        known = {f.name for f in fields(cls)}
        values = {**RECORDED_LATER, **{k: v for k, v in data.items() if k in known}}
        for key in ("sample_epochs", "pixel_range", "guidance_interval"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class NetworkChoice:
    """The network options of `diffcli train`, which set fields of TrainSettings.architecture."""

    arch: str | None = param(
        None,
        help="unet (GroupNorm, ours) or course (the course's BatchNorm UNet).",
        choices=("unet", "course"),
        metavar="KIND",
        panel=NETWORK,
    )
    width: int | None = param(None, help="Channels of the network's first level.", metavar="INT", panel=NETWORK)


def recipe_fields() -> tuple[str, ...]:
    """The names a recipe override may use: the CLI fields of TrainSettings and NetworkChoice."""
    return tuple(item.name for cls in (TrainSettings, NetworkChoice) for item in params.declared(cls) if item.param.cli)


def preset_defaults(name: str) -> str:
    """What each preset uses for recipe option `name`, for --help: "[default: 6; course: 20; denoiser: 5]"."""

    def value(preset: str) -> Any:
        settings = replace(TrainSettings(), preset=preset, **PRESETS[preset])
        v = (
            settings.architecture.get("type" if name == "arch" else name)
            if name in ("arch", "width")
            else getattr(settings, name)
        )
        return f"{v:g}" if isinstance(v, float) else v

    values = {preset: value(preset) for preset in PRESETS}
    if len(set(map(str, values.values()))) == 1:
        return "" if values["default"] is None else f"[default: {values['default']}]"
    return "[default: " + "; ".join(f"{v}" if p == "default" else f"{p}: {v}" for p, v in values.items()) + "]"


# What a saved recipe that lacks these keys trained with: the recipe before they were recorded or
# before the default changed (v-prediction, uniform timesteps, CFG 2).
RECORDED_LATER: dict[str, Any] = {"objective": "v", "timestep_sampling": "uniform", "guidance": 2.0}

# The course's UNet as the course draws it: each Down / Up block's strided / transposed convolution
# changes the width (diffcli/models/course_unet.py).
COURSE_ARCHITECTURE: dict[str, Any] = {"type": "course", "width": 64, "widen_in": "resample"}

PRESETS: dict[str, dict[str, Any]] = {
    # The measured CPU recipe and this tool's default: TrainSettings' own defaults (docs/performance.md):
    # the GroupNorm UNet on 2x2 pixel patches (it never runs at 28x28: 5x cheaper), no attention; flow
    # matching (straight paths from data to noise) with logit-normal timesteps (the middle of the path,
    # where the class is decided, drawn most often); a short warm-up then cosine decay; EMA; 20 DDIM steps.
    "default": {},
    # The course's class-conditioned DDPM (Part B.2/B.3): its UNet, width 64, batch 128, 20 epochs.
    "course": dict(
        architecture=dict(COURSE_ARCHITECTURE),  # a copy: a recipe never shares the constant
        objective="eps",
        timestep_sampling="uniform",
        schedule="linear",
        timesteps=300,
        epochs=20,
        batch_size=128,
        lr=1e-3,
        lr_schedule="exponential",
        warmup_steps=0,
        ema=False,
        grad_clip=None,
        sampler="ddpm",
        sample_steps=300,
        guidance=5.0,
        pixel_range=(0.0, 1.0),
        precision="fp32",
    ),
    # The course's single-step denoiser (Part B.1): width 128, sigma 0.5, batch 256, 5 epochs, Adam 1e-4.
    "denoiser": dict(
        cond="none",
        objective="denoise",
        architecture={**COURSE_ARCHITECTURE, "width": 128},
        epochs=5,
        batch_size=256,
        lr=1e-4,
        lr_schedule="constant",
        warmup_steps=0,
        ema=False,
        grad_clip=None,
        noise_sigma=0.5,
        timestep_sampling="uniform",
        pixel_range=(0.0, 1.0),
        sample_epochs=(1, 5),
        precision="fp32",
    ),
}


PRESET_NAMES = tuple(PRESETS)


def settings_for(preset: str, overrides: dict[str, Any]) -> TrainSettings:
    """The preset's recipe with the user's explicit options on top (None means 'not given')."""
    if preset not in PRESETS:
        raise UsageError(f"unknown `preset` {preset!r}", f"choose one of {', '.join(PRESETS)}")
    base = TrainSettings(preset=preset, **PRESETS[preset])
    given = {k: v for k, v in overrides.items() if v is not None}
    declared = {item.name: item for cls in (TrainSettings, NetworkChoice) for item in params.declared(cls)}
    given = {k: params.check_value(declared[k], v) if k in declared else v for k, v in given.items()}
    if "dataset" in given:
        from diffcli.data.names import canonical_dataset

        given["dataset"] = canonical_dataset(given["dataset"])
    if "guidance_interval" in given:  # "LO:HI" or a pair; 0:1 is guidance throughout, the default
        interval = checks.parse_guidance_interval(given["guidance_interval"])
        given["guidance_interval"] = None if interval == (0.0, 1.0) else interval
    if "width" in given:
        given["architecture"] = {**base.architecture, "width": given.pop("width")}
    if "arch" in given:
        arch = given.pop("arch")
        if arch not in ("unet", "course"):
            raise UsageError(f"unknown `arch` {arch!r}", "choose unet or course")
        if arch != base.architecture.get("type"):
            width = given.get("architecture", base.architecture).get("width", 64 if arch == "course" else 32)
            given["architecture"] = (
                {**COURSE_ARCHITECTURE, "width": width}
                if arch == "course"
                else {**DEFAULT_ARCHITECTURE, "width": width}
            )
    settings = replace(base, **given)
    if settings.epochs and "sample_epochs" not in given:
        wanted = sorted({e for e in settings.sample_epochs if e <= settings.epochs} | {settings.epochs})
        settings = replace(settings, sample_epochs=tuple(wanted))
    settings.validate()
    return settings


def check_architecture(architecture: Any) -> dict[str, Any]:
    """The architecture, refused if it cannot be built, before building it: a known type and a width it
    accepts (the UNet's sinusoidal time embedding has `width` dimensions, half sines and half cosines, so
    the width must be even)."""
    if not isinstance(architecture, dict):
        raise UsageError(f"`architecture` must be a mapping such as {DEFAULT_ARCHITECTURE}, got {architecture!r}")
    kind = architecture.get("type")
    checks.choice("arch", kind, WIDTHS, what="architecture")
    low, high = WIDTHS[kind]
    width = checks.integer("width", architecture.get("width", low), low=low, high=high)
    if kind == "unet" and width % 2:
        raise UsageError(
            f"`width` {width} does not fit the UNet: it must be even (e.g. 32, the default)",
            f"use {width - 1} or {width + 1}",
        )
    return architecture
