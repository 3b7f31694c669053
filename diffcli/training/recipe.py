"""Training settings: every knob of `diffcli train`, the named presets, and the model config they make.

A preset is a complete recipe; command-line options override single fields. `course` reproduces the
course's Part B recipes (its UNet with BatchNorm, T=300, Adam with exponential decay); `default` is the
measured CPU recipe (docs/performance.md); `denoiser` is the course's single-step denoiser (B.1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Optional

from diffcli import checks
from diffcli.errors import UsageError

CONDS = ("class", "time", "none")
OBJECTIVES = ("eps", "v", "flow", "denoise")
LR_SCHEDULES = ("exponential", "cosine", "constant")
LOSS_WEIGHTINGS = ("none", "min-snr")
TIMESTEP_SAMPLINGS = ("uniform", "logit-normal")  # training/timesteps.py draws them
MAX_TIMESTEPS = checks.TIMESTEPS.high
WIDTHS = {"unet": (2, checks.WIDTH.high), "course": (checks.WIDTH.low, checks.WIDTH.high)}  # first-level channels


@dataclass(frozen=True)
class TrainSettings:
    """A full training recipe."""

    dataset: str = "mnist"
    data_dir: Optional[str] = None
    cond: str = "class"
    objective: str = "v"
    architecture: dict[str, Any] = field(default_factory=lambda: {"type": "unet", "width": 32, "mults": [1, 2, 2], "blocks": 1, "attention": [], "patch": 2})
    schedule: str = "cosine"
    timesteps: int = 1000
    epochs: int = 6
    batch_size: int = 128
    lr: float = 2e-3
    lr_schedule: str = "cosine"  # or the course's "exponential": lr * 0.1^(epoch/epochs)
    warmup_steps: int = 200
    weight_decay: float = 0.0
    grad_clip: Optional[float] = 1.0
    ema: bool = True
    ema_decay: float = 0.999
    p_uncond: float = 0.1
    noise_sigma: float = 0.5  # objective "denoise": train on x + sigma * z
    loss_weighting: str = "none"
    timestep_sampling: str = "uniform"  # which timesteps a step trains on (training/timesteps.py)
    seed: int = 0
    max_steps: Optional[int] = None
    limit: Optional[int] = None  # use only the first N training images
    val_limit: Optional[int] = 2000  # validation images per epoch
    sample_epochs: tuple[int, ...] = (1, 5, 10, 15, 20)
    sampler: str = "ddim"  # recorded as the model's default for `sample`
    sample_steps: Optional[int] = 20
    guidance: float = 2.0
    # recorded with `guidance` for `sample`: CFG only in this part (lo, hi) of T (None: throughout)
    guidance_interval: Optional[tuple[float, float]] = None
    pixel_range: tuple[float, float] = (-1.0, 1.0)
    # auto | fp32 | bf16 | fp16 (autocast); auto is resolved for the device when a run starts
    # (device.resolve_precision) and the resolved value is saved, so --resume continues the same way.
    precision: str = "auto"
    channels_last: bool = False
    compile: bool = False
    preset: str = "default"

    def validate(self) -> None:
        """Every value checked (finite floats in range, whole numbers, known choices) before anything is
        built; the messages name the setting."""
        checks.choice("cond", self.cond, CONDS)
        checks.choice("objective", self.objective, OBJECTIVES)
        if self.objective == "denoise" and self.cond != "none":
            raise UsageError("`objective` denoise trains the single-step denoiser, which takes no condition", "add `cond` none")
        if self.cond == "none" and self.objective != "denoise":
            raise UsageError("`cond` none only fits `objective` denoise", "use `cond` time for an unconditional diffusion model")
        for bound in (checks.EPOCHS, checks.BATCH_SIZE, checks.TIMESTEPS, checks.LR, checks.P_UNCOND):
            bound(getattr(self, bound.name))
        checks.NOISE_SIGMA(self.noise_sigma)
        checks.GUIDANCE(self.guidance)
        if self.guidance_interval is not None:
            checks.parse_guidance_interval(self.guidance_interval)
            if self.cond != "class" or self.p_uncond == 0:
                raise UsageError("`guidance_interval` limits classifier-free guidance, which needs a class model with `p_uncond` above 0", "leave `guidance_interval` out")
        checks.number("weight_decay", self.weight_decay, low=0.0)
        checks.number("ema_decay", self.ema_decay, low=0.0, high=1.0, low_open=True, high_open=True)
        checks.optional_number("grad_clip", self.grad_clip, low=0.0, low_open=True)
        checks.integer("warmup_steps", self.warmup_steps, low=0)
        checks.SEED(self.seed)
        checks.optional_integer("max_steps", self.max_steps, low=1)
        checks.optional_integer("limit", self.limit, low=1)
        checks.choice("lr_schedule", self.lr_schedule, LR_SCHEDULES, what="lr schedule")
        checks.choice("loss_weighting", self.loss_weighting, LOSS_WEIGHTINGS, what="loss weighting")
        if self.loss_weighting == "min-snr" and self.objective not in ("eps", "v"):
            # min(SNR, 5) / SNR is the weight for eps, / (SNR + 1) for v; it has no form for flow or denoise
            raise UsageError(f"`loss_weighting` min-snr is defined for the eps and v objectives, not {self.objective}", "use `objective` eps or v, or `loss_weighting` none")
        checks.choice("timestep_sampling", self.timestep_sampling, TIMESTEP_SAMPLINGS, what="timestep sampling")
        if self.timestep_sampling != "uniform" and self.objective == "denoise":
            raise UsageError("`timestep_sampling` picks diffusion timesteps, and `objective` denoise has none", "leave `timestep_sampling` out")
        checks.choice("precision", self.precision, ("auto", "fp32", "bf16", "fp16"))
        check_architecture(self.architecture)

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
    def from_dict(cls, data: dict[str, Any]) -> "TrainSettings":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("sample_epochs", "pixel_range", "guidance_interval"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


# The course's UNet as the course draws it: each Down / Up block's strided / transposed convolution
# changes the width (diffcli/models/course_unet.py).
COURSE_ARCHITECTURE: dict[str, Any] = {"type": "course", "width": 64, "widen_in": "resample"}

PRESETS: dict[str, dict[str, Any]] = {
    # The measured CPU recipe and this tool's default (docs/performance.md): the GroupNorm UNet on 2x2
    # pixel patches (it never runs at 28x28: 5x cheaper), no attention; flow matching (straight paths
    # from data to noise, velocity prediction) with logit-normal timesteps (the middle of the path, where
    # the class is decided, drawn most often); a short warm-up then cosine decay; EMA; sampled with 20
    # DDIM steps, CFG 1.5. Until 2026-12-03 it was v-prediction on a cosine schedule, uniform
    # timesteps and CFG 2 (the dataclass's field defaults, which old checkpoints' recipes fall back on).
    "default": dict(objective="flow", timestep_sampling="logit-normal", guidance=1.5),
    # The course's class-conditioned DDPM (Part B.2/B.3): its UNet, width 64, batch 128, 20 epochs.
    "course": dict(
        architecture=dict(COURSE_ARCHITECTURE),  # a copy: a recipe never shares the constant
        objective="eps", schedule="linear", timesteps=300, epochs=20, batch_size=128, lr=1e-3, lr_schedule="exponential", warmup_steps=0,
        ema=False, grad_clip=None, sampler="ddpm", sample_steps=300, guidance=5.0, pixel_range=(0.0, 1.0), precision="fp32",
    ),
    # The course's single-step denoiser (Part B.1): width 128, sigma 0.5, batch 256, 5 epochs, Adam 1e-4.
    "denoiser": dict(
        cond="none", objective="denoise", architecture={**COURSE_ARCHITECTURE, "width": 128},
        epochs=5, batch_size=256, lr=1e-4, lr_schedule="constant", warmup_steps=0, ema=False, grad_clip=None,
        noise_sigma=0.5, pixel_range=(0.0, 1.0), sample_epochs=(1, 5), precision="fp32",
    ),
}


def settings_for(preset: str, overrides: dict[str, Any]) -> TrainSettings:
    """The preset's recipe with the user's explicit options on top (None means 'not given')."""
    if preset not in PRESETS:
        raise UsageError(f"unknown `preset` {preset!r}", f"choose one of {', '.join(PRESETS)}")
    base = TrainSettings(preset=preset, **PRESETS[preset])
    given = {k: v for k, v in overrides.items() if v is not None}
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
            given["architecture"] = {**COURSE_ARCHITECTURE, "width": width} if arch == "course" else {**TrainSettings().architecture, "width": width}
    settings = replace(base, **given)
    if settings.epochs and "sample_epochs" not in given:
        wanted = sorted({e for e in settings.sample_epochs if e <= settings.epochs} | {settings.epochs})
        settings = replace(settings, sample_epochs=tuple(wanted))
    settings.validate()
    return settings


def check_architecture(architecture: dict[str, Any]) -> None:
    """Refuse a network that cannot be built, before building it: a known type and a width it accepts
    (the UNet's sinusoidal time embedding has `width` dimensions, half sines and half cosines, so the
    width must be even)."""
    kind = architecture.get("type")
    checks.choice("arch", kind, WIDTHS, what="architecture")
    low, high = WIDTHS[kind]
    width = checks.integer("width", architecture.get("width", low), low=low, high=high)
    if kind == "unet" and width % 2:
        raise UsageError(f"`width` {width} does not fit the UNet: it must be even (e.g. 32, the default)", f"use {width - 1} or {width + 1}")
