"""Line plots (the training loss curve, eval's chain plot, the bench figures), drawn with matplotlib.

matplotlib does the parts that are easy to get wrong by hand: round tick labels on linear and log axes,
a title and axis labels laid out so they never collide (constrained layout), a legend placed where it
hides the fewest points, markers drawn whole at the edge of the axes. It is imported only when a plot is
drawn, on its Agg backend (no display needed), through a Figure of its own rather than pyplot, so no global
state is shared between plots or threads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100  # sizes are given in pixels; at 100 dpi one inch is 100 pixels and text keeps its usual size
MARKER_SIZE = 5  # points


@dataclass
class Series:
    """One line: its label, x and y values, and whether to draw markers (for sparse points)."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    markers: bool = False


def line_figure(
    series: Sequence[Series],
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[int, int] = (720, 420),
    log_y: bool = False,
) -> Figure:
    """The series on shared axes as a matplotlib Figure of `size` pixels (width, height), not yet drawn.
    On a log axis, points at or below zero are left out."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogLocator

    width, height = size
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    points = [
        [(float(x), float(y)) for x, y in zip(s.x, s.y) if math.isfinite(float(y)) and not (log_y and float(y) <= 0)]
        for s in series
    ]
    if not any(points):
        axes.set_axis_off()
        axes.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axes.transAxes)
    for s, xy in zip(series, points):
        if not xy:
            continue
        xs, ys = zip(*xy)
        marker = "o" if s.markers or len(xy) == 1 else None
        # clip_on=False, zorder above the frame: a marker on the edge of the axes is drawn whole.
        axes.plot(xs, ys, label=s.label, linewidth=1.8, marker=marker, markersize=MARKER_SIZE, clip_on=False, zorder=3)
    if any(points):
        if log_y:
            axes.set_yscale("log")
            # Plain numbers (0.05, 0.2, 3) rather than 2x10^-1; under two decades the 2..9 ticks are
            # labelled too, so an axis spanning 0.65 .. 0.85 still reads.
            axes.yaxis.set_major_formatter(_plain_log_formatter())
            axes.yaxis.set_minor_formatter(_plain_log_formatter(minor_thresholds=(2, 0.5)))
            low, high = min(y for xy in points for _, y in xy), max(y for xy in points for _, y in xy)
            if high < 10 * low:  # under a decade 2, 3, 4 alone leave most of the axis unlabelled: add halves
                axes.yaxis.set_minor_locator(LogLocator(subs=np.arange(1.0, 10.0, 0.5)))
        axes.ticklabel_format(axis="x", style="plain", useOffset=False)
        axes.grid(True, which="both" if log_y else "major", color="0.9")  # a log axis may hold no decade
        axes.set_axisbelow(True)
        if any(s.label for s, xy in zip(series, points) if xy):
            axes.legend(loc="best", fontsize="small")
    if title:
        axes.set_title(title, loc="left")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    return figure


def _plain_log_formatter(**options: object) -> object:
    """matplotlib's LogFormatter picks which log ticks get a label; this one spells them as plain numbers
    (0.05, 0.2, 3, 4000) instead of 5e-02."""
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        def __call__(self, x: float, pos: int | None = None) -> str:
            return f"{x:g}" if super().__call__(x, pos) else ""

    return PlainLogFormatter(labelOnlyBase=False, **options)


def rgb_array(figure: Figure) -> np.ndarray:
    """Draw `figure` on the Agg canvas; float RGB [3, H, W] in [0, 1]."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return rgba[:, :, :3].astype(np.float32).transpose(2, 0, 1) / 255.0


def line_plot(
    series: Sequence[Series],
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[int, int] = (720, 420),
    log_y: bool = False,
) -> np.ndarray:
    """Draw the series on shared axes (see `line_figure`); returns float RGB [3, H, W] in [0, 1]."""
    return rgb_array(line_figure(series, title, xlabel, ylabel, size, log_y))


def smooth(values: Sequence[float], window: int) -> list[float]:
    """A trailing moving average (for noisy per-step losses)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out
