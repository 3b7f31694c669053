"""Stage II of DeepFloyd IF (64 -> 256 px) for the IF backend (diffusers_pixel.py): its settings, the
upscaler's configs read as the engine's objects, diffusers' timestep spacings, and the stage-II run.

Stage II is the same reverse loop and the same guidance terms as stage I: the caller builds them with
`generation.prompt_terms` or `illusions.anagram_request` / `hybrid_request` (the low-pass scaled by
`upscale_factor`), and the upsampled, noised stage-I image rides along as the guidance `context`, so
anagram views transform it too, as in the visual-anagrams reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from diffcli.diffusion.guidance import Denoiser, GuidedModel, Term
from diffcli.diffusion.samplers import DDPMSampler, NoiseSource, OutputSpec, StepCallback, run_reverse
from diffcli.diffusion.schedule import NoiseSchedule
from diffcli.errors import DiffcliError
from diffcli.models import pipeline_config as pc
from diffcli.models.backends.diffusers_loading import output_spec
from diffcli.models.hub import Source

IMAGE_NOISING_SCHEDULER_CONFIG = "image_noising_scheduler/scheduler_config.json"
SPACINGS = ("leading", "trailing", "linspace")


@dataclass(frozen=True)
class UpscaleSettings:
    """How stage II runs: DDPM steps (spaced as the upscaler's scheduler config says), the CFG scale of
    its guidance terms, and the timestep the upsampled stage-I image is noised to before it conditions
    the UNet (also fed to the UNet as its class label)."""

    steps: int
    guidance: float
    noise_level: int


# IFSuperResolutionPipeline's defaults.
UPSCALE = UpscaleSettings(steps=50, guidance=4.0, noise_level=250)
# The visual-anagrams reference upsamples its illusions with stage I's CFG scale and noise level 50
# (a less noisy stage-I image keeps the illusion that stage II must not lose).
ILLUSION_NOISE_LEVEL = 50


def upscale_settings(illusion_guidance: float | None = None) -> UpscaleSettings:
    """Stage II's steps, CFG scale and noise level: IFSuperResolutionPipeline's defaults (50, 4.0,
    250); for an illusion (pass its stage-I CFG scale) that scale and noise level 50, as the
    visual-anagrams reference upsamples its illusions."""
    if illusion_guidance is None:
        return UPSCALE
    return UpscaleSettings(UPSCALE.steps, float(illusion_guidance), ILLUSION_NOISE_LEVEL)


@dataclass(frozen=True)
class StageTwo:
    """The upscaler's configs read as the engine's objects."""

    schedule: NoiseSchedule
    spec: OutputSpec
    noising: NoiseSchedule
    size: int
    spacing: str
    steps_offset: int
    unet_class: str | None


def read_stage_two(source: Source, label: str, stage_one_size: int) -> StageTwo:
    """The upscaler's scheduler, image-noising scheduler and UNet configs (small JSON files)."""
    index = pc.read_json(source.file(pc.MODEL_INDEX), label)
    scheduler = pc.read_json(source.file(pc.SCHEDULER_CONFIG), label)
    noising = pc.read_json(source.file(IMAGE_NOISING_SCHEDULER_CONFIG), label)
    unet = pc.read_json(source.file(pc.UNET_CONFIG), label)
    pc.check_unet(unet, source.describe(), upscaler=True)
    where = f"{source.describe()}/{pc.SCHEDULER_CONFIG}"
    mapping = pc.map_scheduler(scheduler, where)
    spacing = scheduler.get("timestep_spacing", "leading")
    if spacing not in SPACINGS:
        raise DiffcliError(
            f"{where}: timestep_spacing is {spacing!r}, which diffcli's engine cannot reproduce",
            f"diffcli knows {', '.join(SPACINGS)}",
        )
    noising_where = f"{source.describe()}/{IMAGE_NOISING_SCHEDULER_CONFIG}"
    return StageTwo(
        schedule=NoiseSchedule.from_config(mapping.schedule),
        spec=output_spec(mapping.prediction, mapping.output),
        noising=NoiseSchedule.from_config(pc.map_scheduler(noising, noising_where).schedule),
        size=int(unet.get("sample_size") or 4 * stage_one_size),
        spacing=spacing,
        steps_offset=int(scheduler.get("steps_offset", 0)),
        unet_class=(index.get("unet") or [None, None])[1],
    )


def run_stage_two(
    net: Denoiser,
    stage: StageTwo,
    images: torch.Tensor,
    terms: Sequence[Term],
    seeds: Sequence[int],
    settings: UpscaleSettings,
    device: torch.device,
    channels: int,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """[B, C, h, w] stage-I images in [-1, 1] -> [B, C, size, size] in [-1, 1] through `run_reverse`
    with `net` (stage II's UNet; `DiffusersModel.upscale` documents the rest). Image i draws its noise
    from seed i alone: the start, the noise of the upsampled image, each DDPM step (in
    IFSuperResolutionPipeline's order)."""
    import torch.nn.functional as F

    timesteps = spaced_timesteps(stage.schedule, settings.steps, stage.spacing, stage.steps_offset)
    noise = NoiseSource(seeds, device)
    x = noise.randn((channels, stage.size, stage.size))
    size = (stage.size, stage.size)
    upsampled = F.interpolate(images.to(device, torch.float32), size, mode="bilinear", align_corners=True)
    context = stage.noising.q_sample(upsampled, settings.noise_level, noise.randn_like(upsampled))
    guided = GuidedModel(net, terms, learned_variance=stage.spec.learned_variance, context=context)
    return run_reverse(guided, x, timesteps, stage.schedule, stage.spec, DDPMSampler(), noise, callback)


def spaced_timesteps(schedule: NoiseSchedule, steps: int, spacing: str, offset: int = 0) -> list[int]:
    """The `steps` timesteps diffusers' DDPMScheduler.set_timesteps picks for a timestep_spacing
    ("leading" when a config sets none: 50 of 1000 are 980, 960, ..., 0)."""
    train_steps = schedule.timesteps
    if not 1 <= steps <= train_steps:
        raise ValueError(f"steps must be between 1 and {train_steps}, got {steps}")
    if spacing == "leading":
        ratio = train_steps // steps
        return [i * ratio + offset for i in range(steps - 1, -1, -1)]
    if spacing == "trailing":
        return schedule.strided_timesteps(steps)
    return [int(v) for v in np.linspace(0, train_steps - 1, steps).round()[::-1]]
