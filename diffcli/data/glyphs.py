"""`glyphs`: an infinite, offline, synthetic digit set, MNIST-shaped (white digits on black, 28x28).

Each digit is drawn once per stroke width with Pillow's bundled FreeType font at 2x resolution; every
sample is then a random affine map (rotation, scale, shear, shift) plus a smooth elastic warp of one of
those masters, applied to whole batches with `grid_sample` and averaged down to 28x28. Deterministic for
a seed; train and test draw from different seed streams.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

SIZE = 28
SUPER = 2  # render and warp at 2x, then average down: smooth, antialiased strokes
STROKES = (0, 1, 2, 3)
CHUNK = 4096
_MASTERS: torch.Tensor | None = None


def _masters() -> torch.Tensor:
    """[10, len(STROKES), 1, 56, 56] float masters: each digit centred, about 20 px tall at 28 px."""
    global _MASTERS
    if _MASTERS is None:
        side = SIZE * SUPER
        font = ImageFont.load_default(size=int(side * 0.72))
        planes = []
        for digit in range(10):
            row = []
            for stroke in STROKES:
                img = Image.new("L", (side, side), 0)
                draw = ImageDraw.Draw(img)
                box = draw.textbbox((0, 0), str(digit), font=font, stroke_width=stroke)
                x = (side - (box[2] - box[0])) / 2 - box[0]
                y = (side - (box[3] - box[1])) / 2 - box[1]
                draw.text((x, y), str(digit), fill=255, font=font, stroke_width=stroke, stroke_fill=255)
                row.append(np.asarray(img, dtype=np.float32) / 255.0)
            planes.append(np.stack(row))
        _MASTERS = torch.from_numpy(np.stack(planes))[:, :, None]
    return _MASTERS


def _generate_chunk(count: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    masters = _masters()
    side = SIZE * SUPER
    labels = torch.randint(0, 10, (count,), generator=gen)
    strokes = torch.randint(0, len(STROKES), (count,), generator=gen)
    src = masters[labels, strokes]  # [N, 1, 56, 56]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(count, generator=gen)

    angle = uniform(-15, 15) * math.pi / 180
    scale = uniform(0.85, 1.2)  # > 1 zooms out (sampling grid spread wider): smaller digits
    aspect = uniform(0.8, 1.15)
    shear = uniform(-0.25, 0.25)
    shift_x, shift_y = uniform(-0.12, 0.12), uniform(-0.12, 0.12)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0] = scale * aspect * cos
    theta[:, 0, 1] = scale * (-sin + shear * cos)
    theta[:, 1, 0] = scale * aspect * sin
    theta[:, 1, 1] = scale * (cos + shear * sin)
    theta[:, 0, 2], theta[:, 1, 2] = shift_x, shift_y
    grid = F.affine_grid(theta, (count, 1, side, side), align_corners=False)
    # Elastic warp: a coarse random displacement field, smoothly upsampled (about 1.5 px at 28 px).
    coarse = torch.randn(count, 2, 4, 4, generator=gen) * 0.06
    field = F.interpolate(coarse, size=(side, side), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
    warped = F.grid_sample(src, grid + field, mode="bilinear", padding_mode="zeros", align_corners=False)
    small = F.avg_pool2d(warped, SUPER)
    images = (small.clamp(0, 1) * 255).round().to(torch.uint8)
    return images, labels


def generate_glyphs(count: int, seed: int, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """`count` glyph images uint8 [N, 1, 28, 28] and labels [N]; `split` picks an independent stream."""
    gen = torch.Generator().manual_seed(seed * 2 + (0 if split == "train" else 1) + 7919)
    images, labels = [], []
    for start in range(0, count, CHUNK):
        chunk_images, chunk_labels = _generate_chunk(min(CHUNK, count - start), gen)
        images.append(chunk_images)
        labels.append(chunk_labels)
    return torch.cat(images), torch.cat(labels)
