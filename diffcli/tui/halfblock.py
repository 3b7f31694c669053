"""Images in a terminal with half blocks: each cell shows two pixels stacked vertically, '▀' with the top
pixel as its foreground colour and the bottom pixel as its background (truecolor), so an HxW image takes
W columns and ceil(H/2) lines. Without colour (NO_COLOR) a grey-level character ramp stands in.

The idea is the one rich-pixels uses; this version works on numpy arrays and downsizes by area averaging
(the right filter for shrinking: no aliasing of thin strokes such as MNIST digits).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text

UPPER_HALF = "▀"
RAMP = " .:-=+*#%@"  # dark -> light, for terminals without colour


def fit_size(height: int, width: int, max_width: int | None = None, max_height: int | None = None) -> tuple[int, int]:
    """The (height, width) in pixels after shrinking (never enlarging) to fit, keeping the aspect ratio."""
    scale = 1.0
    if max_width is not None and width > max_width:
        scale = min(scale, max(1, max_width) / width)
    if max_height is not None and height > max_height:
        scale = min(scale, max(1, max_height) / height)
    if scale >= 1.0:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


@lru_cache(maxsize=64)
def _area_weights(size: int, target: int) -> np.ndarray:
    """[target, size] matrix whose rows average the source pixels each target pixel covers (by overlap)."""
    edges = np.linspace(0.0, size, target + 1)
    left, right = edges[:-1, None], edges[1:, None]
    pixel = np.arange(size)[None, :]
    overlap = np.clip(np.minimum(right, pixel + 1) - np.maximum(left, pixel), 0.0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def area_resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """[H, W, C] -> [height, width, C] by area averaging (exact for any ratio, not just integer ones)."""
    h, w = array.shape[:2]
    if (h, w) == (height, width):
        return array
    rows, cols = _area_weights(h, height), _area_weights(w, width)
    return np.einsum("yh,hwc,xw->yxc", rows, array, cols, optimize=True)


def to_rgb8(pixels: np.ndarray, max_width: int | None = None, max_height: int | None = None) -> np.ndarray:
    """[C, H, W] float in [0, 1] (C = 1 or 3) -> uint8 [H', W', 3] fitted to the limits, with an even
    height (an odd one gets a black row at the bottom)."""
    array = np.asarray(pixels, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[0] not in (1, 3, 4):
        raise ValueError(f"expected a [C, H, W] image with C = 1 or 3, got shape {tuple(array.shape)}")
    array = np.nan_to_num(array[:3].transpose(1, 2, 0), nan=0.0)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    height, width = fit_size(array.shape[0], array.shape[1], max_width, max_height)
    array = np.clip(area_resize(array, height, width), 0.0, 1.0)
    if height % 2:
        array = np.concatenate([array, np.zeros((1, width, 3), np.float32)], axis=0)
    return np.round(array * 255).astype(np.uint8)


def halfblock(
    pixels: np.ndarray, max_width: int | None = None, color: bool = True, max_height: int | None = None
) -> Text:
    """Render a [C, H, W] float image in [0, 1] (C = 1 or 3) as Text of ceil(H/2) lines, two pixels per
    cell: '▀' with foreground = top pixel, background = bottom pixel, in truecolor. Odd heights pad a
    black row. color=False (NO_COLOR) uses a grey-level character ramp instead of colours. Shrinks by
    area averaging to at most max_width columns (and max_height pixel rows), keeping the aspect ratio."""
    return halfblock_row([pixels], max_width=max_width, color=color, max_height=max_height)


def halfblock_row(
    images: Sequence[np.ndarray],
    gap: int = 1,
    max_width: int | None = None,
    color: bool = True,
    max_height: int | None = None,
) -> Text:
    """Several [C, H, W] images side by side, `gap` blank cells apart, top-aligned (shorter ones are
    padded with blanks); each image is fitted to max_width x max_height on its own."""
    rgbs = [to_rgb8(image, max_width, max_height) for image in images]
    text = Text(no_wrap=True, overflow="crop")
    if not rgbs:
        return text
    height = max(rgb.shape[0] for rgb in rgbs)
    for y in range(0, height, 2):
        if y:
            text.append("\n")
        for i, rgb in enumerate(rgbs):
            if i and gap:
                text.append(" " * gap)
            if y < rgb.shape[0]:
                _append_cells(text, rgb[y], rgb[y + 1], color)
            else:
                text.append(" " * rgb.shape[1])
    return text


def _append_cells(text: Text, top: np.ndarray, bottom: np.ndarray, color: bool) -> None:
    """One line of cells from a pair of pixel rows ([W, 3] uint8 each)."""
    if not color:
        # Mean grey of both pixels -> ramp index; one span-free string per line keeps the Text small.
        level = (top.astype(np.int32).sum(axis=1) + bottom.astype(np.int32).sum(axis=1)) / (6 * 255)
        index = np.minimum((level * len(RAMP)).astype(int), len(RAMP) - 1)
        text.append("".join(RAMP[i] for i in index.tolist()))
        return
    # Runs of identical cells share one span: fewer spans, much faster for Rich to draw (black borders).
    cells = [(*a, *b) for a, b in zip(top.tolist(), bottom.tolist())]
    run = 1
    for i, cell in enumerate(cells):
        if i + 1 < len(cells) and cells[i + 1] == cell:
            run += 1
            continue
        text.append(UPPER_HALF * run, _style(*cell))
        run = 1


@lru_cache(maxsize=4096)
def _style(r1: int, g1: int, b1: int, r2: int, g2: int, b2: int) -> Style:
    """Cached: previews repeat colours a lot (black backgrounds, grey digits)."""
    return Style(color=Color.from_rgb(r1, g1, b1), bgcolor=Color.from_rgb(r2, g2, b2))
