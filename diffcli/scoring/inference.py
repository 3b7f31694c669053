"""Reading images with a loaded scoring classifier: class probabilities (`predict`) and the penultimate
features FID is measured in (`embed`), in batches on the classifier's device."""

from __future__ import annotations

import numpy as np
import torch

from diffcli.errors import DiffcliError
from diffcli.scoring.scorer import Classifier


def as_pixels(classifier: Classifier, pixels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """float32 [N, C, S, S] in [0, 1] (uint8 is scaled), checked against what the classifier reads."""
    x = torch.as_tensor(pixels)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.ndim == 3 and classifier.channels == 1:
        x = x[:, None]  # [N, H, W] greyscale
    want = [classifier.channels, classifier.size, classifier.size]
    if x.ndim != 4 or list(x.shape[1:]) != want:
        got = "x".join(map(str, x.shape[1:])) if x.ndim == 4 else f"shape {list(x.shape)}"
        raise DiffcliError(
            f"images are {got} but classifier {classifier.name!r} reads {'x'.join(map(str, want))}",
            "score a model trained on the same dataset",
        )
    return x


@torch.no_grad()
def _batched(classifier: Classifier, pixels, batch_size: int, fn, width: int) -> torch.Tensor:
    x = as_pixels(classifier, pixels)
    classifier.module.eval()
    device = classifier.device
    outs = [fn(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0, width)


def predict(classifier: Classifier, pixels: torch.Tensor | np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """Class probabilities [N, K] (float32, CPU) for [0, 1] pixels [N, C, S, S]."""
    return _batched(classifier, pixels, batch_size, classifier.module, classifier.module.num_classes).softmax(dim=1)


def embed(classifier: Classifier, pixels: torch.Tensor | np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """Penultimate-layer features [N, D] (float32, CPU): the space FID is measured in."""
    return _batched(classifier, pixels, batch_size, classifier.module.features, classifier.module.feature_dim)
