"""The course's UNet (Part B), kept for comparison: Conv / Down / Up / Flatten / Unflatten blocks with
BatchNorm and GELU, skip concatenations, and conditioning through fully-connected blocks.

- Single-step denoiser: no conditioning.
- Time-conditioned: t / T through FCBlocks, added after Unflatten and after the first UpBlock.
- Class-conditioned: a one-hot class (all zeros = unconditional) through FCBlocks that scale those
  features: `h = c * h + t`.

Works at 28x28 (the AvgPool / ConvTranspose pair maps 7x7 <-> 1x1). BatchNorm makes batched CFG
depend on batch composition; always sample in eval mode (the backends do).

Where a Down / Up block changes the width (`widen_in`):
- "resample" (the course's, and every new model's): the strided / transposed convolution maps c_in to
  c_out and the ConvBlock after it keeps c_out.
- "convblock" (models trained before the layout was corrected; a config without the key): the strided
  / transposed convolution keeps c_in and the ConvBlock maps c_in to c_out. It has more parameters
  (the first UpBlock's transposed convolution runs at 4D) yet learns about half as fast per step
  (docs/performance.md), so it is kept only so that those models still load.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1), nn.BatchNorm2d(c_out), nn.GELU())


class ConvBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(_conv(c_in, c_out), _conv(c_out, c_out))


WIDEN_IN = ("resample", "convblock")


def _resampled(resample: Callable[[int, int], nn.Module], c_in: int, c_out: int, widen_in: str) -> list[nn.Module]:
    """A strided or transposed convolution, BatchNorm, GELU, then a ConvBlock; `widen_in` says which of
    the two convolutions changes the width (module docstring)."""
    mid = c_out if widen_in == "resample" else c_in
    return [resample(c_in, mid), nn.BatchNorm2d(mid), nn.GELU(), ConvBlock(mid, c_out)]


class DownBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, widen_in: str = "resample") -> None:
        super().__init__(*_resampled(lambda i, o: nn.Conv2d(i, o, 3, 2, 1), c_in, c_out, widen_in))


class UpBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, widen_in: str = "resample") -> None:
        super().__init__(*_resampled(lambda i, o: nn.ConvTranspose2d(i, o, 4, 2, 1), c_in, c_out, widen_in))


class FCBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.Linear(c_in, c_out), nn.GELU(), nn.Linear(c_out, c_out))


class CourseUNet(nn.Module):
    """The course's UNet with hidden width D (128 for the single-step denoiser, 64 otherwise)."""

    def __init__(
        self,
        in_channels: int = 1,
        width: int = 64,
        num_classes: int | None = None,
        time_conditioned: bool = True,
        timesteps: int = 300,
        widen_in: str = "resample",
    ) -> None:
        super().__init__()
        if widen_in not in WIDEN_IN:
            raise ValueError(f"widen_in must be one of {', '.join(WIDEN_IN)}, got {widen_in!r}")
        d = width
        self.num_classes = num_classes
        self.time_conditioned = time_conditioned
        self.timesteps = timesteps
        self.conv0 = ConvBlock(in_channels, d)
        self.down1 = DownBlock(d, d, widen_in)
        self.down2 = DownBlock(d, 2 * d, widen_in)
        self.flatten = nn.Sequential(nn.AvgPool2d(7), nn.GELU())
        self.unflatten = nn.Sequential(nn.ConvTranspose2d(2 * d, 2 * d, 7, 7), nn.BatchNorm2d(2 * d), nn.GELU())
        self.up1 = UpBlock(4 * d, d, widen_in)
        self.up2 = UpBlock(2 * d, d, widen_in)
        self.conv1 = ConvBlock(2 * d, d)
        self.out = nn.Conv2d(d, in_channels, 3, 1, 1)
        if time_conditioned:
            self.fc1_t, self.fc2_t = FCBlock(1, 2 * d), FCBlock(1, d)
        if num_classes:
            self.fc1_c, self.fc2_c = FCBlock(num_classes, 2 * d), FCBlock(num_classes, d)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-2:] != (28, 28):
            raise ValueError("the course UNet works on 28x28 images")
        x0 = self.conv0(x)
        d1 = self.down1(x0)
        d2 = self.down2(d1)
        h = self.unflatten(self.flatten(d2))
        scale1 = scale2 = 1.0
        shift1 = shift2 = 0.0
        if self.time_conditioned:
            tt = (t.float() / self.timesteps)[:, None]
            shift1, shift2 = self.fc1_t(tt)[:, :, None, None], self.fc2_t(tt)[:, :, None, None]
        if self.num_classes:
            # Index num_classes is the null class: an all-zero one-hot, as the course's mask makes it.
            onehot = F.one_hot(cond.clamp(max=self.num_classes), self.num_classes + 1)[:, : self.num_classes].float()
            scale1, scale2 = self.fc1_c(onehot)[:, :, None, None], self.fc2_c(onehot)[:, :, None, None]
        h = scale1 * h + shift1
        u1 = self.up1(torch.cat([h, d2], dim=1))
        u1 = scale2 * u1 + shift2
        u2 = self.up2(torch.cat([u1, d1], dim=1))
        return self.out(self.conv1(torch.cat([u2, x0], dim=1)))
