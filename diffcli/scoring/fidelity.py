"""How close a restored image is to the clean original: MSE and PSNR, on numpy alone (no torch), so the
blur-only `denoise` stays fast."""

from __future__ import annotations

import math

import numpy as np


def mse_psnr(result: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """MSE and PSNR (dB, peak 1) of a [0, 1] image against the clean original (PSNR inf when equal)."""
    mse = float(np.mean((np.asarray(result, dtype=np.float64) - np.asarray(reference, dtype=np.float64)) ** 2))
    return {"mse": round(mse, 6), "psnr": round(10 * math.log10(1.0 / mse), 3) if mse > 0 else float("inf")}
