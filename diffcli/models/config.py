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
  "sampling": {"sampler": "ddpm", "steps": 300, "guidance": 5.0},   (defaults for sample)
  "dataset": {"name": "mnist", ...}, "training": {...}, "metrics": {...}
}
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from diffcli.errors import DiffcliError

CONFIG_FORMAT = 1
KINDS = ("unet", "diffusers", "classifier")
COND_TYPES = ("class", "time", "none", "text")

MNIST_LABELS = [str(i) for i in range(10)]
MNIST_ALIASES = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
FASHION_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@dataclass
class ModelConfig:
    """The parsed config.json of a registry model."""

    name: str
    kind: str = "unet"
    architecture: dict[str, Any] = field(default_factory=dict)
    image: dict[str, Any] = field(default_factory=lambda: {"channels": 1, "size": 28, "range": [-1.0, 1.0]})
    schedule: dict[str, Any] = field(default_factory=lambda: {"kind": "linear", "timesteps": 300, "beta_start": 1e-4, "beta_end": 0.02})
    prediction: str = "eps"
    objective: str = "diffusion"
    conditioning: dict[str, Any] = field(default_factory=lambda: {"type": "class", "labels": MNIST_LABELS, "null_class": True})
    sampling: dict[str, Any] = field(default_factory=dict)
    dataset: Optional[dict[str, Any]] = None
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
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
    def dataset_name(self) -> Optional[str]:
        return (self.dataset or {}).get("name")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config.json") -> "ModelConfig":
        """Parse and validate; DiffcliError naming `source` when something is missing or wrong."""
        if not isinstance(data, dict):
            raise DiffcliError(f"{source} does not hold a JSON object")
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        if "name" not in values:
            raise DiffcliError(f"{source} has no 'name'")
        config = cls(**values)
        config.validate(source)
        return config

    @classmethod
    def read(cls, path: Path, source: Optional[str] = None) -> "ModelConfig":
        """Read and validate a config.json file."""
        source = source or str(path)
        if not path.is_file():
            raise DiffcliError(f"{source} is missing")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DiffcliError(f"{source} is not valid JSON ({exc})") from None
        return cls.from_dict(data, source)

    def validate(self, source: str = "config.json") -> None:
        if self.format > CONFIG_FORMAT:
            raise DiffcliError(f"{source} has format {self.format}, newer than this diffcli understands", "upgrade diffcli")
        if self.kind not in KINDS:
            raise DiffcliError(f"{source}: unknown kind {self.kind!r} (expected {', '.join(KINDS)})")
        if self.cond_type not in COND_TYPES:
            raise DiffcliError(f"{source}: unknown conditioning type {self.cond_type!r}")
        if self.cond_type == "class" and not self.labels:
            raise DiffcliError(f"{source}: a class-conditioned model needs conditioning.labels")
        for key in ("channels", "size"):
            if not isinstance(self.image.get(key), int) or self.image[key] < 1:
                raise DiffcliError(f"{source}: image.{key} must be a positive whole number")


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
