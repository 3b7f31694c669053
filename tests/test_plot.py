"""Plot axes people can read: round tick labels on log axes (the loss curve), never 0.794328."""

from __future__ import annotations

import math

import pytest

from diffcli.io.plot import Series, _fmt, _log_ticks, line_plot


@pytest.mark.parametrize("lo,hi", [(0.65, 0.85), (0.1, 1.0), (0.021, 2.0), (0.0031, 0.9), (0.79, 0.8), (3.0, 4000.0), (1.19, 3.56)])
def test_log_ticks_are_round_and_inside_the_range(lo, hi):
    ticks = _log_ticks(math.log10(lo), math.log10(hi))
    assert len(ticks) >= 3  # an axis with one or two labels cannot be read (1.19 .. 3.56 once showed 2 and 3)
    labels = [_fmt(t) for t in ticks]
    assert all(lo * 0.999 <= t <= hi * 1.001 for t in ticks)
    assert all(len(label.replace(",", "")) <= 5 for label in labels), labels
    assert all(float(label.replace(",", "")) == pytest.approx(t, rel=1e-9) for label, t in zip(labels, ticks)), labels


def test_a_loss_plot_draws():
    steps = list(range(1, 101))
    image = line_plot([Series("train", steps, [0.85 - 0.002 * s for s in steps])], title="loss", log_y=True)
    assert image.shape == (3, 420, 720) and image.min() < 0.5
