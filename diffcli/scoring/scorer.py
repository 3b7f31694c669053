"""What a scoring classifier is once loaded, wherever it came from (the registry, a fresh training, the
package's shipped assets): the network, what it was trained on, a fingerprint of its weights and, for a
shipped one, its FID reference. classifier.py and shipped.py both build these; neither imports the other's
loading code for them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from diffcli.errors import DiffcliError
from diffcli.scoring.network import ScoringCNN


@dataclass(frozen=True)
class ShippedReference:
    """A dataset's shipped FID reference: test-split feature statistics and the real-vs-real floor table."""

    dataset: str
    mu: np.ndarray  # [D] float64
    sigma: np.ndarray  # [D, D] float64
    n: int  # test images the statistics summarise
    floor_n: np.ndarray  # [K] int64, increasing
    floor: np.ndarray  # [K] float64

    def floor_at(self, n: int) -> tuple[float, bool]:
        """(the real-vs-real floor at n, whether it was measured at exactly this n): the table's value,
        or the linear interpolation in 1/n between its neighbours (see scoring/shipped.py)."""
        lo_n, hi_n = int(self.floor_n[0]), int(self.floor_n[-1])
        if not lo_n <= n <= hi_n:
            raise DiffcliError(f"the real-data FID floor needs {lo_n} to {hi_n} images, got {n}")
        i = int(np.searchsorted(self.floor_n, n))
        if int(self.floor_n[i]) == n:
            return float(self.floor[i]), True
        a, b = 1.0 / float(self.floor_n[i - 1]), 1.0 / float(self.floor_n[i])
        w = (1.0 / n - a) / (b - a)
        return float(self.floor[i - 1] + w * (self.floor[i] - self.floor[i - 1])), False


@dataclass
class Classifier:
    """A trained scoring classifier and what it was trained on."""

    module: ScoringCNN
    name: str
    dataset: str
    label_names: list[str]
    test_accuracy: float
    channels: int
    size: int
    fingerprint: str  # sha256 of the weights: caches derived from them (FID statistics) key on it
    reference: ShippedReference | None = None  # shipped classifiers carry their FID statistics and floors

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device
