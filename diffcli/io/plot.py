"""Small line plots drawn with Pillow (loss curves, metric sweeps): no plotting library needed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


@dataclass
class Series:
    """One line: its label, x and y values, and whether to draw markers (for sparse points)."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    markers: bool = False


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * step:
            step *= m
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values (not exponents) for a log axis spanning 10**lo .. 10**hi: 1-2-5 per decade; under a
    decade, the nine digits if four of them fit, else evenly spaced round values (1.5, 2, 2.5, ...), finer
    until four fit, so an axis of 1.1 .. 4.2 never shows only 2, 3 and 4 with its data below them."""
    low, high = 10**lo, 10**hi
    decades = range(math.floor(lo) - 1, math.ceil(hi) + 1)
    for mantissas, enough in (((1,), 3), ((1, 2, 5), 3), (tuple(range(1, 10)), 4)):
        ticks = [m * 10**k for k in decades for m in mantissas if low <= m * 10**k <= high]
        if len(ticks) >= enough:
            return ticks
    for count in (4, 6, 10):
        ticks = [t for t in _ticks(low, high, count) if t > 0]
        if len(ticks) >= 4:
            break
    return ticks


def _fmt(v: float) -> str:
    """A tick label: at most three significant digits (0.8, 0.25, 1e-05, 1,200)."""
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) < 0.001:
        return f"{v:.0e}"
    return f"{v:.3g}"


def _legend_corner(lines: Sequence[Sequence[tuple[float, float]]], area: tuple[float, float, float, float], size: tuple[float, float]) -> tuple[tuple[float, float], int]:
    """The top-left pixel of a legend box of `size` in the corner of `area` (left, top, right, bottom)
    that the polylines cross least (top right, then bottom right, top left, bottom left on a tie), and
    how many sampled line points that corner still covers."""
    left, top, right, bottom = area
    w, h = size
    corners = [(right - w, top), (right - w, bottom - h - 4), (left + 8, top), (left + 8, bottom - h - 4)]
    samples = []  # points along each segment, so a line that crosses a box between two markers counts
    for points in lines:
        samples += points[-1:]
        for (ax, ay), (bx, by) in zip(points, points[1:]):
            n = max(1, int(math.hypot(bx - ax, by - ay) / 4))  # one every 4 px: a 5,000-step loss curve stays cheap
            samples += [(ax + (bx - ax) * k / n, ay + (by - ay) * k / n) for k in range(n)]

    def covered(corner: tuple[float, float]) -> int:
        x, y = corner
        return sum(x - 6 <= sx <= x + w + 2 and y - 2 <= sy <= y + h + 2 for sx, sy in samples)

    best = min(corners, key=covered)  # min keeps the first of equals: the preference order above
    return best, covered(best)


def line_plot(
    series: Sequence[Series],
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[int, int] = (720, 420),
    log_y: bool = False,
) -> np.ndarray:
    """Draw the series on shared axes; returns float RGB [3, H, W] in [0, 1]."""
    width, height = size
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font, small = ImageFont.load_default(size=15), ImageFont.load_default(size=12)
    left, right, top, bottom = 70, 20, 36 if title else 16, 48
    xs = [float(v) for s in series for v in s.x]
    ys = [float(v) for s in series for v in s.y if not (log_y and v <= 0)]
    if not xs or not ys:
        draw.text((left, height // 2), "no data yet", fill="black", font=font)
        return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0

    def ty(v: float) -> float:
        return math.log10(v) if log_y else v

    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ty(v) for v in ys), max(ty(v) for v in ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0) * (width - left - right), top + (1 - (ty(y) - y0) / (y1 - y0)) * (height - top - bottom))

    def polylines() -> list[list[tuple[float, float]]]:
        return [[px(float(x), float(y)) for x, y in zip(s.x, s.y) if not (log_y and y <= 0)] for s in series]

    # The legend, as wide as its longest label (long labels are not cut), goes in the corner of the plot
    # area that the lines cross least; when every corner is crossed, the y axis gets headroom above the
    # data for it, so that it never hides a point.
    area = (left, top, width - right, height - bottom)
    legend_size = (35 + max(draw.textlength(s.label, font=small) for s in series), 18 * len(series) + 6)
    (legend_x, legend_y), crossed = _legend_corner(polylines(), area, legend_size)
    if crossed:
        share = min(0.6, (legend_size[1] + 10) / (height - top - bottom))  # of the plot's height
        y1 = y0 + (y1 - y0) / (1 - share)
        (legend_x, legend_y), _ = _legend_corner(polylines(), area, legend_size)
    draw.rectangle(list(area), outline=(80, 80, 80))
    for tick in _ticks(x0, x1):
        x, _ = px(tick, 10**y0 if log_y else y0)
        draw.line([x, height - bottom, x, height - bottom + 4], fill="black")
        label = _fmt(tick)
        draw.text((x - draw.textlength(label, font=small) / 2, height - bottom + 6), label, fill="black", font=small)
    for value in (_log_ticks(y0, y1) if log_y else _ticks(y0, y1)):
        _, y = px(x0, value)
        draw.line([left - 4, y, width - right, y], fill=(225, 225, 225))
        draw.line([left - 4, y, left, y], fill="black")
        label = _fmt(value)
        draw.text((left - 8 - draw.textlength(label, font=small), y - 7), label, fill="black", font=small)
    for i, points in enumerate(polylines()):
        colour = PALETTE[i % len(PALETTE)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        if series[i].markers or len(points) == 1:
            for x, y in points:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        draw.line([legend_x, legend_y + 12 + 18 * i, legend_x + 20, legend_y + 12 + 18 * i], fill=colour, width=3)
        draw.text((legend_x + 25, legend_y + 5 + 18 * i), s.label, fill="black", font=small)
    if title:  # after the y label when both share the top row
        title_x = max(left, 6 + draw.textlength(ylabel, font=small) + 12) if ylabel else left
        draw.text((title_x, 10), title, fill="black", font=font)
    if xlabel:
        draw.text(((left + width - right) / 2 - draw.textlength(xlabel, font=small) / 2, height - 20), xlabel, fill="black", font=small)
    if ylabel:
        draw.text((6, top - 2 if not title else 12), ylabel, fill=(90, 90, 90), font=small)
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0


def smooth(values: Sequence[float], window: int) -> list[float]:
    """A trailing moving average (for noisy per-step losses)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out
