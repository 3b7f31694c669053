"""A model's config.json: everything needed to rebuild, sample and describe it.

{
  "format": 1, "name": "mnist", "kind": "unet" | "diffusers",
  "architecture": {"type": "unet" | "course", ...constructor arguments},
  "image": {"channels": 1, "size": 28, "range": [-1, 1]},
  "schedule": {"kind": "linear", "timesteps": 300, ...},     (schedule.NoiseSchedule.to_config)
  "prediction": "eps" | "x0" | "v" | "velocity",
  "objective": "diffusion" | "denoise",                        (denoise: the single-step denoiser)
  "conditioning": {"type": "class" | "time" | "none" | "text", "labels": [...], "aliases": {...},
                   "null_class": true},                        (null class index = len(labels))
  "sampling": {"sampler": "ddpm", "steps": 300, "guidance": 5.0,   (defaults for sample;
               "guidance_interval": [0.2, 0.7]},                 the scale's interval, optional)
  "dataset": {"name": "mnist", ...}, "training": {...}, "metrics": {...}
}
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from diffcli import checks, schema
from diffcli.diffusion import names
from diffcli.diffusion.schedule import PREDICTION_TYPES, SCHEDULE_KINDS
from diffcli.errors import DiffcliError
from diffcli.schema import (
    AnyJson,
    Bool,
    Field,
    Float,
    Int,
    List,
    Mapping,
    Nullable,
    Record,
    Str,
    Variant,
    bounded,
    fail,
    optional,
)

CONFIG_FORMAT = 1
KINDS = ("unet", "diffusers", "classifier")
COND_TYPES = ("class", "time", "none", "text")

# What a real model can have (the format's limits; a file beyond them is damaged or hostile). The
# trainer's own limits (train/recipe.py) must stay inside these, which tests check.
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_IMAGE_SIZE = int(checks.IMAGE_SIZE.high)  # type: ignore[arg-type]
MAX_CHANNELS = int(checks.CHANNELS.high)  # type: ignore[arg-type]
MAX_TIMESTEPS = checks.MAX_TIMESTEPS
MAX_WIDTH = int(checks.WIDTH.high)  # type: ignore[arg-type]
MAX_LABELS = 10_000
SAMPLERS = names.SAMPLERS  # the engine's sampler names, the one list (torch-free)

MNIST_ALIASES = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}


@dataclass(kw_only=True)
class ModelConfig:
    """The parsed, validated config.json of a registry model.

    The blocks (image, schedule, conditioning, ...) stay plain JSON objects, but `read`/`from_dict` only
    return a ModelConfig whose blocks passed the schema below, so their fields have the documented types
    and ranges. image, schedule, prediction and conditioning have no defaults: a config that leaves one
    out is refused rather than read with another model's values."""

    name: str
    kind: str = "unet"
    architecture: dict[str, Any] = field(default_factory=dict)
    image: dict[str, Any]
    schedule: dict[str, Any]
    prediction: str
    objective: str = "diffusion"
    conditioning: dict[str, Any]
    sampling: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    distillation: dict[str, Any] = field(default_factory=dict)  # a student's teacher and method ({}: none)
    description: str = ""
    format: int = CONFIG_FORMAT

    # ----- derived views -----
    @property
    def channels(self) -> int:
        return int(self.image["channels"])

    @property
    def size(self) -> int:
        return int(self.image["size"])

    @property
    def pixel_range(self) -> tuple[float, float]:
        lo, hi = self.image.get("range", [-1.0, 1.0])
        return float(lo), float(hi)

    @property
    def cond_type(self) -> str:
        return str(self.conditioning.get("type", "none"))

    @property
    def labels(self) -> list[str]:
        return list(self.conditioning.get("labels") or [])

    @property
    def has_null_class(self) -> bool:
        return bool(self.conditioning.get("null_class", False))

    @property
    def dataset_name(self) -> str | None:
        return (self.dataset or {}).get("name")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """The config as config.json text; refuses (DiffcliError) a config that would not read back."""
        data = self.to_dict()
        check(data, f"config of model {self.name!r}")
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = "config.json") -> ModelConfig:
        """Validate against the schema and build; DiffcliError "SOURCE: FIELD PROBLEM" otherwise."""
        check(data, source)
        return cls(**data)

    @classmethod
    def read(cls, path: Path, source: str | None = None) -> ModelConfig:
        """Read and validate a config.json file (at most MAX_CONFIG_BYTES)."""
        source = source or str(path)
        try:
            if not path.is_file():
                raise DiffcliError(f"{source} is missing" if not path.exists() else f"{source} is not a file")
            size = path.stat().st_size
            if size > MAX_CONFIG_BYTES:
                raise DiffcliError(
                    f"{source} is {size / 2**20:.1f} MiB; a model config is at most {MAX_CONFIG_BYTES // 2**20} MiB"
                )
            text = path.read_bytes().decode("utf-8")
        except OSError as exc:
            raise DiffcliError(f"{source} cannot be read ({os.strerror(exc.errno) if exc.errno else exc})") from None
        except UnicodeDecodeError:
            raise DiffcliError(f"{source} is not UTF-8 text") from None
        try:
            data = json.loads(text)
        except RecursionError:
            raise DiffcliError(f"{source}: the file nests deeper than {schema.MAX_DEPTH} levels") from None
        except ValueError as exc:  # JSONDecodeError, and integers too long to convert
            raise DiffcliError(f"{source} is not valid JSON ({str(exc)[:200]})") from None
        return cls.from_dict(data, source)

    def validate(self, source: str = "config.json") -> None:
        """Check this (possibly edited) config against the schema."""
        check(self.to_dict(), source)


# ----- the schema of config.json ---------------------------------------------------------------------


def _range_rule(value: dict, path: str) -> None:
    lo, hi = value["range"] if "range" in value else (0, 1)
    if lo >= hi:
        fail(schema.child(path, "range"), f"must be [low, high] with low < high, got {[lo, hi]}")


IMAGE = Record(
    {
        "channels": Field(bounded(checks.CHANNELS)),
        "size": Field(bounded(checks.IMAGE_SIZE)),
        "range": Field(List(Float(), 2, 2)),
    },
    rules=[_range_rule],
)


def _schedule_rule(value: dict, path: str) -> None:
    if value["kind"] == "linear":
        for key in ("beta_start", "beta_end"):
            if key not in value:
                fail(schema.child(path, key), "is missing (a linear schedule needs beta_start and beta_end)")
        if value["beta_start"] > value["beta_end"]:
            fail(path, f"has beta_start {value['beta_start']} above beta_end {value['beta_end']}")


BETA = Float(0.0, 1.0, low_open=True, high_open=True)
SCHEDULE = Record(
    {
        "kind": Field(Str(SCHEDULE_KINDS)),
        "timesteps": Field(bounded(checks.TIMESTEPS)),
        "beta_start": optional(BETA),
        "beta_end": optional(BETA),
    },
    rules=[_schedule_rule],
)


def _unet_rule(value: dict, path: str) -> None:
    width = value.get("width", 32)
    if width % 2:
        fail(schema.child(path, "width"), f"must be even for the UNet, got {width}")
    levels = len(value.get("mults", (1, 2, 2)))
    for i, level in enumerate(value.get("attention", ())):
        if level >= levels:
            fail(
                schema.child(schema.child(path, "attention"), i),
                f"names level {level}, but the UNet has {levels} levels (0 to {levels - 1})",
            )


ARCHITECTURE = Variant(
    "type",
    {
        "unet": Record(
            {
                "type": Field(Str(("unet",))),
                "width": optional(Int(2, MAX_WIDTH)),
                "mults": optional(List(Int(1, 16), 1, 8)),
                "blocks": optional(Int(1, 16)),
                "attention": optional(List(Int(0, 7), 0, 8)),
                "groups": optional(Int(1, MAX_WIDTH)),
                "dropout": optional(Float(0.0, 1.0, high_open=True)),
                "patch": optional(Int(1, 16)),
            },
            rules=[_unet_rule],
        ),
        "course": Record(
            {
                "type": Field(Str(("course",))),
                "width": optional(bounded(checks.WIDTH)),
                "widen_in": optional(Str(("resample", "convblock"))),
            }
        ),
    },
)


def _source_rule(value: dict, path: str) -> None:
    if ("hub" in value) == ("path" in value):
        fail(path, "must name either a hub repo id (`hub`) or a folder (`path`)")


SOURCE = Record({"hub": optional(Str()), "path": optional(Str(max_length=4096))}, rules=[_source_rule])
PIPELINE = Record(
    {
        "type": Field(Str()),
        "source": Field(SOURCE),
        "upscaler": optional(Nullable(SOURCE)),
        "output": Field(
            Record(
                {
                    "learned_variance": Field(Bool()),
                    "clip": optional(Nullable(List(Float(), 2, 2))),
                    "dynamic_threshold": optional(Nullable(Float(0.0, 1.0, low_open=True))),
                    "threshold_max": optional(Float(0.0, low_open=True)),
                }
            )
        ),
        "resolved": optional(Bool()),
    }
)
CLASSIFIER_ARCHITECTURE = Record(
    {"type": Field(Str(("scoring-cnn",))), "width": Field(Int(1, MAX_WIDTH)), "feature_dim": Field(Int(1, 65_536))}
)


def _labels_rule(value: dict, path: str) -> None:
    labels = value.get("labels") or []
    if value["type"] == "class" and not labels:
        fail(schema.child(path, "labels"), "must list the class names of a class-conditioned model")
    seen: set[str] = set()
    for i, label in enumerate(labels):
        if label in seen:
            fail(schema.child(schema.child(path, "labels"), i), f"repeats the label {label!r}")
        seen.add(label)
    for alias, index in (value.get("aliases") or {}).items():
        if index >= len(labels):
            fail(
                schema.child(schema.child(path, "aliases"), alias),
                f"is class {index}, but there are {len(labels)} labels",
            )


def _conditioning(types: tuple[str, ...]) -> Record:
    return Record(
        {
            "type": Field(Str(types)),
            "labels": optional(List(Str(max_length=200), 0, MAX_LABELS)),
            "aliases": optional(Mapping(Int(0, MAX_LABELS - 1), MAX_LABELS)),
            "null_class": optional(Bool()),
        },
        rules=[_labels_rule],
    )


TEXT_CONDITIONING = Record(
    {"type": Field(Str(("text",))), "max_tokens": optional(Int(1, 4096)), "preprocess": optional(Str())}
)
SAMPLING = Record(
    {
        "sampler": optional(Str(SAMPLERS)),
        "steps": optional(bounded(checks.STEPS)),
        "guidance": optional(bounded(checks.GUIDANCE)),
        "guidance_interval": optional(List(Float(0.0, 1.0), 2, 2)),
        "stride": optional(bounded(checks.STRIDE)),
        "eta": optional(bounded(checks.ETA)),
    }
)
FREE = AnyJson()
DATASET = Nullable(Record({"name": optional(Str(max_length=200))}, extra=FREE))
TRAINING = Record({"noise_sigma": optional(bounded(checks.NOISE_SIGMA))}, extra=FREE)
DISTILLATION = Record(
    {
        "teacher": optional(Str(max_length=200)),
        "method": optional(Str(names.DISTILLATION_METHODS)),
        "steps": optional(bounded(checks.STEPS)),
        "teacher_steps": optional(bounded(checks.STEPS)),
        "guidance": optional(bounded(checks.GUIDANCE)),
        "guidance_interval": optional(Nullable(List(Float(0.0, 1.0), 2, 2))),
    },
    extra=FREE,
)
METRICS = Record({"test_accuracy": optional(Float(0.0, 1.0)), "eval": optional(AnyJson(object_only=True))}, extra=FREE)


def _whole_config_rule(value: dict, path: str) -> None:
    """Rules that tie blocks together."""
    size = value["image"]["size"]
    arch = value.get("architecture") or {}
    if arch.get("type") == "unet" and size % arch.get("patch", 1):
        fail("architecture.patch", f"{arch['patch']} does not divide image.size {size}")
    if arch.get("type") == "course" and size != 28:
        fail("image.size", f"must be 28 for the course UNet, got {size}")
    timesteps = (value.get("schedule") or {}).get("timesteps")
    for key in ("steps", "stride"):
        given = (value.get("sampling") or {}).get(key)
        if given is not None and timesteps is not None and given > timesteps:
            fail(f"sampling.{key}", f"is {given}, more than the schedule's {timesteps} timesteps")
    interval = (value.get("sampling") or {}).get("guidance_interval")
    if interval is not None and not interval[0] < interval[1]:
        fail("sampling.guidance_interval", f"is {interval}: its start must be below its end")


def _model(
    kind: str, architecture: schema.Spec, schedule: Field, prediction: Str, objective: Str, conditioning: schema.Spec
) -> Record:
    return Record(
        {
            "format": optional(Int(1, CONFIG_FORMAT)),
            "name": Field(Str(max_length=200)),
            "kind": Field(Str((kind,))),
            "architecture": Field(architecture),
            "image": Field(IMAGE),
            "schedule": schedule,
            "prediction": Field(prediction),
            "objective": optional(objective),
            "conditioning": Field(conditioning),
            "sampling": optional(SAMPLING),
            "dataset": optional(DATASET),
            "training": optional(TRAINING),
            "metrics": optional(METRICS),
            "distillation": optional(DISTILLATION),
            "description": optional(Str(max_length=10_000, empty=True)),
        },
        rules=[_whole_config_rule],
    )


CONFIG = Variant(
    "kind",
    {
        "unet": _model(
            "unet",
            ARCHITECTURE,
            Field(SCHEDULE),
            Str(PREDICTION_TYPES),
            Str(("diffusion", "denoise")),
            _conditioning(("class", "time", "none")),
        ),
        "diffusers": _model(
            "diffusers", PIPELINE, Field(SCHEDULE), Str(PREDICTION_TYPES), Str(("diffusion",)), TEXT_CONDITIONING
        ),
        # A scoring classifier has no noise schedule: its `schedule` is {} (or left out).
        "classifier": _model(
            "classifier",
            CLASSIFIER_ARCHITECTURE,
            optional(Record({})),
            Str(("logits",)),
            Str(("classify",)),
            _conditioning(("class",)),
        ),
    },
)


def check(data: Any, source: str) -> None:
    """Validate a parsed config.json against the schema; DiffcliError naming `source` and the field."""
    if not isinstance(data, dict):
        raise DiffcliError(f"{source} does not hold a JSON object ({{...}}), it holds {schema.show(data)}")
    try:
        schema.check_depth(data, "", schema.MAX_DEPTH)
    except schema.Invalid:
        raise DiffcliError(f"{source}: the file nests deeper than {schema.MAX_DEPTH} levels") from None
    version = data.get("format", CONFIG_FORMAT)
    if isinstance(version, int) and not isinstance(version, bool) and version > CONFIG_FORMAT:
        raise DiffcliError(f"{source} has format {version}, newer than this diffcli understands", "upgrade diffcli")
    schema.validate(CONFIG, data, source)


def normalise_prompt(text: str) -> str:
    """Lower case, letters and digits only: 'T-shirt/top' -> 'tshirttop', 'Ankle boot' -> 'ankleboot'."""
    return re.sub(r"[^0-9a-z]", "", text.lower())


def label_lookup(config: ModelConfig) -> dict[str, int]:
    """Every way to name a class: its index, its label, each '/'-separated part of the label, aliases."""
    lookup: dict[str, int] = {}
    for i, label in enumerate(config.labels):
        lookup[str(i)] = i
        lookup[normalise_prompt(label)] = i
        for part in re.split(r"[/,]", label):
            if normalise_prompt(part):
                lookup.setdefault(normalise_prompt(part), i)
    for alias, index in (config.conditioning.get("aliases") or {}).items():
        lookup.setdefault(normalise_prompt(alias), int(index))
    return lookup
