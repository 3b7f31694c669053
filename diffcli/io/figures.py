"""Grids and labelled figures built from [C, H, W] pixel arrays.

One function, `figure`, lays out rows of tiles with optional column labels above and row labels on
the left; strips (original | t=250 | t=500 ...) and class grids (one row per class) are both figures.
Labelled figures upscale small tiles (nearest neighbour, so pixels stay crisp) until text fits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = 1.0  # white paper between tiles
TEXT = 0  # black text
MIN_LABELLED_TILE = 96


def grid(images: Sequence[np.ndarray], columns: int | None = None, pad: int = 2) -> np.ndarray:
    """Tiles in a plain grid (no labels, native size), `columns` per row (default: near-square)."""
    if not images:
        raise ValueError("no images to lay out")
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = [list(images[i : i + columns]) for i in range(0, len(images), columns)]
    return figure(rows, pad=pad, scale=1)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _fit_text(draw: ImageDraw.ImageDraw, text: str, width: int, size: int) -> tuple[str, ImageFont.ImageFont]:
    """The largest font (down to 8 px) that fits `text` in `width`, else the text shortened with '…'."""
    for s in range(size, 7, -1):
        font = _font(s)
        if draw.textlength(text, font=font) <= width:
            return text, font
    font = _font(8)
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…", font


def figure(
    rows: Sequence[Sequence[np.ndarray]],
    col_labels: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    scale: int | None = None,
    pad: int = 4,
    title: str | None = None,
) -> np.ndarray:
    """Lay out rows of tiles; returns float [C, H, W] in [0, 1] (RGB if any tile is RGB).

    All tiles must share a size. With labels and no `scale`, tiles are enlarged by a whole factor to
    at least MIN_LABELLED_TILE pixels."""
    tiles = [t for row in rows for t in row]
    if not tiles:
        raise ValueError("no images to lay out")
    h, w = tiles[0].shape[1:]
    if any(t.shape[1:] != (h, w) for t in tiles):
        raise ValueError("all tiles of a figure must have the same size")
    labelled = bool(col_labels or row_labels or title)
    if scale is None:
        scale = max(1, math.ceil(MIN_LABELLED_TILE / max(h, w))) if labelled else 1
    th, tw = h * scale, w * scale
    font_px = max(10, min(18, tw // 7))
    label_h = font_px + 6 if col_labels else 0
    title_h = font_px + 10 if title else 0
    ncols = max(len(r) for r in rows)

    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    row_w = 0
    if row_labels:
        row_w = min(int(max(probe.textlength(str(lbl), font=_font(font_px)) for lbl in row_labels)) + 8, 3 * tw)
    width = row_w + pad + ncols * (tw + pad)
    height = title_h + label_h + pad + len(rows) * (th + pad)
    rgb = any(t.shape[0] == 3 for t in tiles)
    canvas = Image.new("RGB" if rgb else "L", (width, height), (255, 255, 255) if rgb else 255)
    draw = ImageDraw.Draw(canvas)
    ink = (TEXT,) * 3 if rgb else TEXT

    if title:
        text, font = _fit_text(draw, title, width - 2 * pad, font_px + 2)
        draw.text((pad, 4), text, fill=ink, font=font)
    y0 = title_h + label_h + pad
    for c in range(ncols):
        x = row_w + pad + c * (tw + pad)
        if col_labels and c < len(col_labels):
            text, font = _fit_text(draw, str(col_labels[c]), tw, font_px)
            tx = x + (tw - draw.textlength(text, font=font)) / 2
            draw.text((tx, title_h + 2), text, fill=ink, font=font)
    for r, row in enumerate(rows):
        y = y0 + r * (th + pad)
        if row_labels and r < len(row_labels):
            text, font = _fit_text(draw, str(row_labels[r]), row_w - 6, font_px)
            draw.text((2, y + (th - font_px) / 2), text, fill=ink, font=font)
        for c, tile in enumerate(row):
            x = row_w + pad + c * (tw + pad)
            canvas.paste(_tile_image(tile, scale, rgb), (x, y))
    array = np.asarray(canvas, dtype=np.float32) / 255.0
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _tile_image(tile: np.ndarray, scale: int, rgb: bool) -> Image.Image:
    array = np.clip(np.round(tile * 255.0), 0, 255).astype(np.uint8)
    if tile.shape[0] == 1:
        image = Image.fromarray(array[0], mode="L")
        if rgb:
            image = image.convert("RGB")
    else:
        image = Image.fromarray(array.transpose(1, 2, 0), mode="RGB")
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    return image
