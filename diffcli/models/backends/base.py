"""The interface every backend implements, so commands and the engine never care what the model is."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from diffcli.diffusion.samplers import OutputSpec
from diffcli.diffusion.schedule import NoiseSchedule
from diffcli.errors import DiffcliError, UsageError
from diffcli.models.config import ModelConfig, label_lookup
from diffcli.models.registry import ModelEntry

TEXT_TO_IMAGE_HINT = (
    "for free-text prompts add a text-to-image model, `diffcli models add if --hub DeepFloyd/IF-I-XL-v1.0` "
    "(needs `pip install 'diffcli[hub]'` and a GPU; see docs/deepfloyd-if.md), then use it with `-m if` "
    "(or make it the default: `diffcli models default if`)"
)


@dataclass(frozen=True)
class Prompt:
    """A resolved prompt: the user's text and, for class models, the class index."""

    text: str
    label: int | None = None


class LoadedModel:
    """A model ready to denoise: its network as `net(x_t, t, cond)`, schedule, output spec and prompts."""

    entry: ModelEntry
    config: ModelConfig
    device: torch.device
    schedule: NoiseSchedule
    spec: OutputSpec

    # ----- description -----
    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def channels(self) -> int:
        return self.config.channels

    @property
    def size(self) -> int:
        return self.config.size

    @property
    def cond_type(self) -> str:
        return self.config.cond_type

    @property
    def labels(self) -> list[str]:
        return self.config.labels

    @property
    def is_diffusion(self) -> bool:
        """False for the single-step denoiser, which maps a noisy image straight to a clean one."""
        return self.config.objective == "diffusion"

    @property
    def supports_guidance(self) -> bool:
        """Classifier-free guidance needs a null condition the model was trained with."""
        return self.cond_type == "text" or (self.cond_type == "class" and self.config.has_null_class)

    @property
    def learned_variance(self) -> bool:
        return self.spec.learned_variance

    # ----- pixels <-> model range -----
    def forward_bytes(self, batch: int) -> int:
        """An upper estimate of the memory one network call on `batch` images holds (0: not known)."""
        return 0

    def to_model(self, pixels: torch.Tensor | np.ndarray) -> torch.Tensor:
        """[0, 1] pixels -> the model's value range, on its device."""
        x = torch.as_tensor(np.asarray(pixels) if isinstance(pixels, np.ndarray) else pixels, dtype=torch.float32)
        lo, hi = self.config.pixel_range
        return (lo + (hi - lo) * x).to(self.device)

    def to_pixels(self, x: torch.Tensor) -> np.ndarray:
        """The model's range -> float32 [0, 1] numpy pixels (clipped)."""
        lo, hi = self.config.pixel_range
        return ((x.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1).numpy()

    # ----- the network -----
    def net(self, x: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        """The raw network output at (x_t, t, cond): the engine's denoiser."""
        raise NotImplementedError

    def denoise_once(self, x_noisy: torch.Tensor) -> torch.Tensor:
        """For single-step denoisers: the clean image straight from a noisy one."""
        raise DiffcliError(f"model {self.name!r} is a diffusion model, not a single-step denoiser")

    # ----- prompts and conditions -----
    def resolve_prompt(self, text: str) -> Prompt:
        """A class name or index for class models, free text for text models; clear error otherwise."""
        if self.cond_type == "class":
            return Prompt(text, self._class_index(text))
        if self.cond_type == "text":
            return Prompt(text)
        raise DiffcliError(
            f"model {self.name!r} is not conditioned ({self.cond_type}) and takes no prompt or class",
            "drop the prompt, or use a class-conditional model (see `diffcli models list`)",
        )

    def _class_index(self, text: str) -> int:
        """The class a text names: an index (0 .. K-1 exactly: "-1" or "1.5" are not classes), a label,
        a part of a label or an alias. A near miss suggests the closest name; text that is not near any
        name points at text-to-image models."""
        stripped = text.strip()
        if re.fullmatch(r"[+-]?\d+(\.\d*)?|[+-]?\.\d+", stripped):
            if stripped.isdigit() and int(stripped) < len(self.labels):
                return int(stripped)
            last = len(self.labels) - 1
            raise UsageError(
                f"model {self.name!r} has no class {text!r}: class indices go from 0 to {last}",
                f"it knows the classes {self.describe_labels()}",
            )
        lookup = label_lookup(self.config)
        index = lookup.get(_normalise(text))
        if index is not None:
            return index
        aliases = {_normalise(a): (a, int(i)) for a, i in (self.config.conditioning.get("aliases") or {}).items()}
        names = {key: (self.labels[i], i) for key, i in lookup.items() if not key.isdigit()}
        names.update(aliases)
        close = difflib.get_close_matches(_normalise(text), list(names), n=1, cutoff=0.6)
        if close:
            shown, i = names[close[0]]
            which = f"{shown!r}" if shown == self.labels[i] else f"{shown!r} (class {self.labels[i]})"
            raise UsageError(f"model {self.name!r} does not know {text!r}; did you mean {which}?")
        # A bad class is a bad value (UsageError, as docs/python.md says). For one word the classes are the
        # answer; words that read as a prompt ("old man") get how to add a text-to-image model.
        hint = TEXT_TO_IMAGE_HINT if " " in stripped else "free text needs a text-to-image model (docs/deepfloyd-if.md)"
        raise UsageError(
            f"model {self.name!r} does not know {text!r}: it knows the classes {self.describe_labels()}", hint
        )

    def describe_labels(self) -> str:
        labels = self.labels
        if all(label == str(i) for i, label in enumerate(labels)):
            aliases = self.config.conditioning.get("aliases") or {}
            extra = " (or their names: zero, one, ...)" if aliases else ""
            return f"{labels[0]}-{labels[-1]}{extra}"
        return ", ".join(f"{i}={label}" for i, label in enumerate(labels))

    def label_name(self, prompt: Prompt) -> str:
        """A short human name for a resolved prompt ('7', 'Sneaker', 'an old man')."""
        if prompt.label is not None:
            return self.labels[prompt.label]
        return prompt.text

    def condition(self, prompts: Sequence[Prompt | None]) -> Any:
        """The batched condition for one prompt per row (None rows: unconditional)."""
        if self.cond_type == "class":
            null = len(self.labels)
            return torch.tensor([null if p is None else p.label for p in prompts], dtype=torch.long, device=self.device)
        if any(p is not None for p in prompts):
            raise DiffcliError(f"model {self.name!r} takes no prompt")
        return None

    def null_condition(self, batch: int) -> Any:
        """The unconditional condition for CFG (None when the model has none)."""
        if not self.supports_guidance:
            return None
        return self.condition([None] * batch)


def _normalise(text: str) -> str:
    from diffcli.models.config import normalise_prompt

    return normalise_prompt(text)
