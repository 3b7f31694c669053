"""Reading a diffusers pipeline's JSON files into a diffcli model config, without torch or diffusers.

`diffcli models add` registers a text-to-image pipeline (DeepFloyd IF stage I and other pixel-space
pipelines with a UNet, a DDPM-style scheduler and a T5-like text encoder) as config only: the weights stay
in the Hugging Face cache or the user's folder. This module:

- validates a local pipeline folder (model_index.json, unet/, scheduler/, text_encoder/, tokenizer/);
- maps the scheduler config onto the engine's NoiseSchedule and OutputSpec fields, refusing what the
  engine cannot reproduce (see `map_scheduler`);
- builds the registry's config.json for it (kind "diffusers", conditioning "text").

Only JSON is read here, so registering a model is instant and never downloads anything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffcli.diffusion.schedule import course_stride
from diffcli.errors import DiffcliError
from diffcli.models.config import ModelConfig

MODEL_INDEX = "model_index.json"
SCHEDULER_CONFIG = "scheduler/scheduler_config.json"
UNET_CONFIG = "unet/config.json"
STAGE_ONE_PARTS = ("unet", "scheduler", "text_encoder", "tokenizer")
STAGE_TWO_PARTS = ("unet", "scheduler", "image_noising_scheduler")
LATENT_PARTS = ("vae", "vqvae", "movq")
MAX_TOKENS = 77  # IF's T5 was trained on 77 tokens (IFPipeline.encode_prompt hard-codes it too)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

# The course's settings for IF stage I: strided DDPM 990 -> 0 by 30, classifier-free guidance 7
# (the stride is 3 % of T, `course_stride`, so 30 at IF's T = 1000).
IF_SAMPLING = {"sampler": "ddpm", "guidance": 7.0}

# IF-I's scheduler config as published with DeepFloyd/IF-I-*-v1.0 (used at registration when the files
# are not on disk yet; the real file is read, and config.json refreshed, on the first load).
IF_SCHEDULER = {
    "_class_name": "DDPMScheduler",
    "beta_schedule": "squaredcos_cap_v2",
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "variance_type": "learned_range",
    "thresholding": True,
    "dynamic_thresholding_ratio": 0.95,
    "sample_max_value": 1.5,
    "clip_sample": True,
    "clip_sample_range": 1.0,
}


@dataclass(frozen=True)
class KnownRepo:
    """A published checkpoint whose shape diffcli knows without downloading it."""

    stage: int
    size: int
    parameters: float  # UNet parameters, from the model cards


KNOWN_REPOS: dict[str, KnownRepo] = {
    "DeepFloyd/IF-I-M-v1.0": KnownRepo(1, 64, 0.4e9),
    "DeepFloyd/IF-I-L-v1.0": KnownRepo(1, 64, 0.9e9),
    "DeepFloyd/IF-I-XL-v1.0": KnownRepo(1, 64, 4.3e9),
    "DeepFloyd/IF-II-M-v1.0": KnownRepo(2, 256, 0.45e9),
    "DeepFloyd/IF-II-L-v1.0": KnownRepo(2, 256, 1.2e9),
}


@dataclass
class SchedulerMapping:
    """A diffusers scheduler config read as the engine's schedule and output spec."""

    schedule: dict[str, Any]
    prediction: str
    output: dict[str, Any]
    notes: list[str] = field(default_factory=list)


PREDICTIONS = {"epsilon": "eps", "sample": "x0", "v_prediction": "v"}


def map_scheduler(cfg: dict[str, Any], source: str = "scheduler_config.json") -> SchedulerMapping:
    """Map a diffusers (DDPM-style) scheduler config onto NoiseSchedule / OutputSpec fields.

    beta_schedule squaredcos_cap_v2 -> cosine, linear -> linear (beta_start/end); num_train_timesteps -> T;
    prediction_type epsilon/sample/v_prediction -> eps/x0/v; variance_type learned_range -> the learned
    variance of the DDPM step (fixed_small(_log) -> the posterior variance; fixed_large is noted and
    replaced by the posterior variance); thresholding -> dynamic thresholding with
    dynamic_thresholding_ratio and sample_max_value (it wins over clip_sample, as in diffusers);
    clip_sample -> clamp to +-clip_sample_range. timestep_spacing and steps_offset do not apply: diffcli
    chooses its own timesteps. Anything else the engine cannot reproduce (scaled_linear or sigmoid betas,
    trained_betas, the raw `learned` variance, zero-SNR rescaling) is a DiffcliError naming the setting.
    """
    notes: list[str] = []

    def refuse(what: str) -> DiffcliError:
        return DiffcliError(
            f"{source}: {what}, which diffcli's engine cannot reproduce",
            "diffcli runs pixel-space DDPM pipelines such as DeepFloyd IF stage I",
        )

    if cfg.get("trained_betas") is not None:
        raise refuse("the scheduler uses trained_betas")
    if cfg.get("rescale_betas_zero_snr"):
        raise refuse("the scheduler rescales betas to zero terminal SNR")
    kind = cfg.get("beta_schedule", "linear")
    timesteps = int(cfg.get("num_train_timesteps", 1000))
    if kind == "squaredcos_cap_v2":
        schedule: dict[str, Any] = {"kind": "cosine", "timesteps": timesteps}
    elif kind == "linear":
        schedule = {
            "kind": "linear",
            "timesteps": timesteps,
            "beta_start": float(cfg.get("beta_start", 1e-4)),
            "beta_end": float(cfg.get("beta_end", 0.02)),
        }
    else:
        raise refuse(f"beta_schedule is {kind!r} (diffcli knows linear and squaredcos_cap_v2)")
    prediction = PREDICTIONS.get(cfg.get("prediction_type", "epsilon"))
    if prediction is None:
        raise refuse(f"prediction_type is {cfg.get('prediction_type')!r}")
    variance = cfg.get("variance_type", "fixed_small")
    if variance == "learned":
        raise refuse("variance_type is 'learned' (diffcli implements 'learned_range')")
    if variance == "fixed_large":
        notes.append("variance_type fixed_large is sampled with the posterior variance (fixed_small)")
    elif variance not in ("learned_range", "fixed_small", "fixed_small_log", None):
        raise refuse(f"variance_type is {variance!r}")
    output: dict[str, Any] = {
        "learned_variance": variance == "learned_range",
        "clip": None,
        "dynamic_threshold": None,
        "threshold_max": 1.0,
    }
    if cfg.get("thresholding"):
        output["dynamic_threshold"] = float(cfg.get("dynamic_thresholding_ratio", 0.995))
        output["threshold_max"] = float(cfg.get("sample_max_value", 1.0))
    elif cfg.get("clip_sample", True):
        bound = float(cfg.get("clip_sample_range", 1.0))
        output["clip"] = [-bound, bound]
    return SchedulerMapping(schedule, prediction, output, notes)


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from `path`; DiffcliError naming `what` when missing or malformed."""
    if not path.is_file():
        raise DiffcliError(f"{what}: {path} is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DiffcliError(f"{what}: {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DiffcliError(f"{what}: {path} does not hold a JSON object")
    return data


def check_pixel_space(model_index: dict[str, Any], where: str) -> None:
    """Refuse latent-space pipelines (a VAE decodes their samples): diffcli's engine, views and filters
    work on pixels, so anagrams and hybrids need a pixel-space model such as DeepFloyd IF."""
    for part in LATENT_PARTS:
        if part in model_index and model_index[part] not in (None, [None, None]):
            pipeline = model_index.get("_class_name", "this pipeline")
            raise DiffcliError(
                (
                    f"{where} is a latent-space pipeline ({pipeline} has a {part}); "
                    "diffcli samples in pixel space, and illusions need a pixel-space model"
                ),
                "use DeepFloyd IF stage I, e.g. `diffcli models add if --hub DeepFloyd/IF-I-XL-v1.0`",
            )


def validate_folder(folder: Path, upscaler: bool = False) -> dict[str, Any]:
    """Check a local diffusers pipeline folder and return its model_index.json.

    Stage I needs unet/, scheduler/, text_encoder/ and tokenizer/; an upscaler (stage II) needs unet/,
    scheduler/ and image_noising_scheduler/ (its prompts come from stage I's encoder)."""
    folder = folder.expanduser()
    role = "upscaler" if upscaler else "pipeline"
    if not folder.exists():
        raise DiffcliError(
            f"{folder}: no such folder", "give the folder a diffusers pipeline was saved to (save_pretrained)"
        )
    if not folder.is_dir():
        raise DiffcliError(
            f"{folder} is a file, not a diffusers {role} folder", "give the folder that holds model_index.json"
        )
    if not (folder / MODEL_INDEX).is_file():
        raise DiffcliError(
            f"{folder} has no {MODEL_INDEX}, so it is not a diffusers {role} folder",
            "save the pipeline with save_pretrained, or give its repo id as `hub`",
        )
    index = read_json(folder / MODEL_INDEX, f"{role} {folder}")
    check_pixel_space(index, str(folder))
    stage_two = "image_noising_scheduler" in index or "SuperResolution" in str(index.get("_class_name", ""))
    if stage_two and not upscaler:
        raise DiffcliError(
            f"{folder} is a stage-II upscaler ({index.get('_class_name')}), not a text-to-image model",
            "register a stage-I pipeline and give this one as its `upscaler`",
        )
    parts = STAGE_TWO_PARTS if upscaler else STAGE_ONE_PARTS
    for part in parts:
        if not (folder / part).is_dir():
            raise DiffcliError(
                f"{folder} has no {part}/ folder, which a text-to-image {role} needs",
                f"re-save the complete pipeline (it should hold {', '.join(p + '/' for p in parts)})",
            )
    read_json(folder / SCHEDULER_CONFIG, f"{role} {folder}")
    unet = read_json(folder / UNET_CONFIG, f"{role} {folder}")
    check_unet(unet, str(folder), upscaler)
    return index


def check_unet(unet: dict[str, Any], where: str, upscaler: bool = False) -> None:
    """Stage I takes 3 channels; a stage-II upscaler takes 6 (the image and the upsampled input)."""
    channels = int(unet.get("in_channels", 3))
    if not upscaler and channels != 3:
        hint = (
            "register it as the `upscaler` of a stage-I model"
            if channels == 6
            else "diffcli samples 3-channel pixel images"
        )
        raise DiffcliError(
            (
                f"{where}: the UNet takes {channels} input channels, "
                "not the 3 of an RGB image (is it a stage-II upscaler?)"
            ),
            hint,
        )
    if upscaler and channels != 6:
        raise DiffcliError(
            f"{where}: the UNet takes {channels} input channels; a stage-II upscaler takes 6",
            "give a DeepFloyd IF-II pipeline as the `upscaler`",
        )
    out = int(unet.get("out_channels", channels))
    if not upscaler and out not in (channels, 2 * channels):
        raise DiffcliError(
            f"{where}: the UNet outputs {out} channels for {channels} input channels",
            "diffcli expects eps (3) or eps + variance (6)",
        )


def source_ref(source: dict[str, Any]) -> str:
    """The hub id or local path of a {"hub": ...} / {"path": ...} source."""
    return str(source.get("hub") or source.get("path"))


def parse_source(value: str, hub: bool) -> dict[str, str]:
    """A source block from `--hub ID` or `--path DIR` (for --upscaler: a folder if it exists, else an id)."""
    if not hub:
        return {"path": str(Path(value).expanduser().resolve())}
    if not HUB_ID.match(value):
        raise DiffcliError(
            f"{value!r} is not a Hugging Face repo id",
            "write it as OWNER/NAME, e.g. DeepFloyd/IF-I-XL-v1.0 (a folder goes in `path`)",
        )
    return {"hub": value}


def build_config(
    name: str,
    source: dict[str, str],
    upscaler: dict[str, str] | None,
    scheduler: dict[str, Any],
    unet: dict[str, Any] | None,
    pipeline: str = "IFPipeline",
    resolved: bool = True,
) -> tuple[ModelConfig, list[str]]:
    """The registry config of a text-to-image pipeline, and notes about the scheduler mapping.

    unet None (a hub model not downloaded yet): the size comes from KNOWN_REPOS, else IF's 64 px, and
    `architecture.resolved` is False until the first load reads the real files."""
    mapping = map_scheduler(scheduler, f"{source_ref(source)}/{SCHEDULER_CONFIG}")
    known = KNOWN_REPOS.get(source.get("hub", ""))
    size = int((unet or {}).get("sample_size") or (known.size if known else 64))
    description = f"text-to-image {pipeline} from {source_ref(source)}" + (
        f", upscaler {source_ref(upscaler)}" if upscaler else ""
    )
    config = ModelConfig(
        name=name,
        kind="diffusers",
        architecture={
            "type": pipeline,
            "source": source,
            "upscaler": upscaler,
            "output": mapping.output,
            "resolved": resolved,
        },
        image={"channels": 3, "size": size, "range": [-1.0, 1.0]},
        schedule=mapping.schedule,
        prediction=mapping.prediction,
        objective="diffusion",
        conditioning={"type": "text", "max_tokens": MAX_TOKENS, "preprocess": "lowercase"},
        sampling={**IF_SAMPLING, "stride": course_stride(mapping.schedule["timesteps"])},
        description=description,
    )
    return config, mapping.notes
