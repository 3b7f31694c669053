"""Gaussian filters: the classical blur denoiser and the low/high-pass split of hybrid images.

One kernel construction serves numpy images (`diffcli denoise --method blur`, which never imports torch)
and torch tensors (hybrid guidance on noise estimates). Borders are reflected, as torchvision's
`gaussian_blur` does, so the course's blur baseline is reproduced.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def gaussian_kernel1d(size: int, sigma: float) -> np.ndarray:
    """A normalised 1-D Gaussian of odd `size` (torchvision's construction)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"the kernel size must be an odd positive number, got {size}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    half = (size - 1) * 0.5
    x = np.linspace(-half, half, size)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def default_hybrid_filter(image_size: int) -> tuple[int, float]:
    """Kernel size and sigma for the hybrid low-pass at a resolution: 33 / 2 at 64x64 (the course),
    scaled linearly with size, kept odd."""
    sigma = 2.0 * image_size / 64
    size = int(round(33 * image_size / 64))
    if size % 2 == 0:
        size += 1
    return max(size, 3), max(sigma, 0.5)


def scale_filter(size: int, sigma: float, factor: float) -> tuple[int, float]:
    """The same low-pass on an image `factor` times larger: sigma * factor and the kernel size times
    factor, made odd (33 / 2 at 64 px -> 133 / 8 at 256 px, as the visual-anagrams reference scales
    its hybrid filter for stage II)."""
    scaled = int(round(size * factor))
    return scaled + (scaled % 2 == 0), sigma * factor


def check_kernel_fits(size: int, height: int, width: int) -> None:
    """Reflect padding needs the half-kernel to be smaller than the image."""
    if size // 2 >= min(height, width):
        raise ValueError(
            f"a kernel of {size} is too large for a {width}x{height} image; "
            f"use an odd size below {2 * min(height, width) - 1}"
        )


def gaussian_blur(image: Any, size: int, sigma: float) -> Any:
    """Blur [..., H, W] numpy arrays or torch tensors with a separable Gaussian, reflected borders."""
    kernel = gaussian_kernel1d(size, sigma)
    check_kernel_fits(size, image.shape[-2], image.shape[-1])
    if isinstance(image, np.ndarray):
        return _blur_numpy(image, kernel)
    return _blur_torch(image, kernel)


def _blur_numpy(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    pad = len(kernel) // 2
    out = image.astype(np.float64)
    for axis in (-2, -1):
        widths = [(0, 0)] * out.ndim
        widths[axis] = (pad, pad)
        padded = np.pad(out, widths, mode="reflect")
        out = sum(kernel[i] * np.take(padded, np.arange(i, i + out.shape[axis]), axis=axis) for i in range(len(kernel)))
    return out.astype(image.dtype)


def _blur_torch(image: Any, kernel: np.ndarray) -> Any:
    import torch
    import torch.nn.functional as F

    shape = image.shape
    x = image.reshape(-1, 1, shape[-2], shape[-1])
    k = torch.as_tensor(kernel, dtype=x.dtype, device=x.device)
    pad = len(kernel) // 2
    x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, k.reshape(1, 1, 1, -1))
    x = F.conv2d(x, k.reshape(1, 1, -1, 1))
    return x.reshape(shape)


def lowpass(x: Any, size: int, sigma: float) -> Any:
    """The low frequencies of x (a Gaussian blur)."""
    return gaussian_blur(x, size, sigma)


def highpass(x: Any, size: int, sigma: float) -> Any:
    """The high frequencies of x: x minus its low-pass, so lowpass + highpass == x exactly."""
    return x - gaussian_blur(x, size, sigma)
