"""Plot axes people can read: round tick labels on log axes (the loss curve), never 0.794328."""

from __future__ import annotations

import math

import numpy as np

import pytest

from diffcli.io.plot import Series, _fmt, _legend_corner, _log_ticks, line_plot


@pytest.mark.parametrize("lo,hi", [(0.65, 0.85), (0.1, 1.0), (0.021, 2.0), (0.0031, 0.9), (0.79, 0.8), (3.0, 4000.0), (1.19, 3.56)])
def test_log_ticks_are_round_and_inside_the_range(lo, hi):
    ticks = _log_ticks(math.log10(lo), math.log10(hi))
    assert len(ticks) >= 3  # an axis with one or two labels cannot be read (1.19 .. 3.56 once showed 2 and 3)
    if hi / lo < 10:  # under a decade: a label below the middle too, not only 2, 3, 4 over data at 1.1 .. 1.5
        assert min(ticks) <= math.sqrt(lo * hi), ticks
    labels = [_fmt(t) for t in ticks]
    assert all(lo * 0.999 <= t <= hi * 1.001 for t in ticks)
    assert all(len(label.replace(",", "")) <= 5 for label in labels), labels
    assert all(float(label.replace(",", "")) == pytest.approx(t, rel=1e-9) for label, t in zip(labels, ticks)), labels


def test_a_loss_plot_draws():
    steps = list(range(1, 101))
    image = line_plot([Series("train", steps, [0.85 - 0.002 * s for s in steps])], title="loss", log_y=True)
    assert image.shape == (3, 420, 720) and image.min() < 0.5


def test_the_legend_avoids_the_lines_and_makes_room_when_every_corner_is_crossed():
    area, size = (0, 0, 400, 300), (120, 40)
    rising = [[(0.0, 300.0), (400.0, 0.0)]]  # bottom left to top right: both free corners are the other two
    corner, covered = _legend_corner(rising, area, size)
    assert covered == 0 and corner == (280, 300 - 40 - 4)  # bottom right, the first free one
    everywhere = [[(0.0, 5.0), (400.0, 5.0)], [(0.0, 290.0), (400.0, 290.0)]]  # along the top and the bottom
    assert _legend_corner(everywhere, area, size)[1] > 0
    # line_plot then adds headroom: the top band, where the legend goes, holds no data
    flat = [Series("high", [0, 1, 2], [9.0, 9.0, 9.0]), Series("low", [0, 1, 2], [1.0, 1.0, 1.0])]
    image = line_plot(flat, title="t")
    blue = (np.abs(image[0] - 31 / 255) < 0.02) & (np.abs(image[1] - 119 / 255) < 0.02) & (np.abs(image[2] - 180 / 255) < 0.02)
    rows = np.nonzero(blue.sum(axis=1) > 100)[0]  # the "high" line, drawn across the whole plot
    assert rows.size and rows.min() > 36 + 18 * 2 + 6  # below the legend's band
