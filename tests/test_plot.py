"""Plots people can read: round tick labels on log axes (the loss curve), a title and axis labels that do
not collide, markers drawn whole at the edge, a legend that hides no point; matplotlib only when drawing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from matplotlib.colors import to_rgb

from diffcli.io.plot import Series, line_figure, line_plot, rgb_array


def _drawn(*args, **kwargs):
    figure = line_figure(*args, **kwargs)
    image = rgb_array(figure)
    return figure, figure.axes[0], image


def _y_labels(axes) -> list[tuple[float, str]]:
    """(value, text) of every labelled y tick inside the visible range, major and minor."""
    low, high = axes.get_ylim()
    ticks = axes.yaxis.get_major_ticks() + axes.yaxis.get_minor_ticks()
    return sorted(
        (t.get_loc(), t.label1.get_text())
        for t in ticks
        if t.label1.get_visible() and t.label1.get_text() and low <= t.get_loc() <= high
    )


@pytest.mark.parametrize(
    "lo,hi", [(0.65, 0.85), (0.1, 1.0), (0.021, 2.0), (0.0031, 0.9), (0.79, 0.8), (3.0, 4000.0), (1.19, 3.56)]
)
def test_log_ticks_are_plain_round_numbers_inside_the_range(lo, hi):
    _, axes, _ = _drawn([Series("loss", [0, 1], [lo, hi])], log_y=True)
    labels = _y_labels(axes)
    assert len(labels) >= 3, labels  # an axis with one or two labels cannot be read
    if hi / lo < 10:  # under a decade: a label below the middle too, not only 2, 3 over data at 1.2 .. 1.5
        assert labels[0][0] <= np.sqrt(lo * hi), labels
    for value, text in labels:
        assert len(text) <= 5 and "e" not in text and "$" not in text, labels  # 0.2, not 2e-01 or 2x10^-1
        assert float(text) == pytest.approx(value, rel=1e-3), labels


def test_a_loss_plot_draws_at_the_size_asked_for():
    steps = list(range(1, 101))
    image = line_plot([Series("train", steps, [0.85 - 0.002 * s for s in steps])], title="loss", log_y=True)
    assert image.shape == (3, 420, 720) and image.dtype == np.float32
    assert 0.0 <= image.min() < 0.5 and image.max() <= 1.0
    empty = line_plot([Series("train", [], [])], title="loss")
    assert empty.shape == (3, 420, 720)


def test_title_and_labels_do_not_collide_and_stay_on_the_canvas():
    series = [
        Series("a long legend label for the first line", [0, 5000], [0.9, 0.03]),
        Series("val", [2500, 5000], [0.1, 0.04], markers=True),
    ]
    figure, axes, _ = _drawn(series, title="training loss", xlabel="step", ylabel="MSE", log_y=True)
    renderer = figure.canvas.get_renderer()
    boxes = {
        "title": axes.title.get_window_extent(renderer),
        "xlabel": axes.xaxis.label.get_window_extent(renderer),
        "ylabel": axes.yaxis.label.get_window_extent(renderer),
    }
    (x_low, x_high), (y_low, y_high) = axes.get_xlim(), axes.get_ylim()
    ticks = [(t, y_low <= t.get_loc() <= y_high) for t in axes.yaxis.get_major_ticks() + axes.yaxis.get_minor_ticks()]
    ticks += [(t, x_low <= t.get_loc() <= x_high) for t in axes.xaxis.get_major_ticks()]
    for i, (tick, shown) in enumerate(ticks):
        if shown and tick.label1.get_visible() and tick.label1.get_text():
            boxes[f"tick {i} {tick.label1.get_text()}"] = tick.label1.get_window_extent(renderer)
    boxes["legend"] = axes.get_legend().get_window_extent(renderer)
    canvas = figure.bbox
    names = sorted(boxes)
    for i, name in enumerate(names):
        box = boxes[name]
        assert canvas.x0 <= box.x0 and box.x1 <= canvas.x1 and canvas.y0 <= box.y0 and box.y1 <= canvas.y1, name
        for other in names[i + 1 :]:
            assert not box.overlaps(boxes[other]), (name, other)


def test_markers_on_the_edge_of_the_axes_are_drawn_whole():
    figure, axes, _ = _drawn([Series("points", [0, 1, 2], [0, 1, 2], markers=True)], size=(300, 200))
    axes.set_xlim(0, 2)  # the first and last points now sit on the axes' frame
    axes.set_ylim(0, 2)
    image = rgb_array(figure)
    rgb = np.array(to_rgb(axes.lines[0].get_color()), dtype=np.float32)
    mask = (np.abs(image - rgb[:, None, None]) < 0.05).all(axis=0)
    height = image.shape[1]

    def marker_pixels(x: float, y: float) -> int:
        px, py = axes.transData.transform((x, y))
        row, col = int(round(height - py)), int(round(px))
        return int(mask[max(0, row - 6) : row + 7, max(0, col - 6) : col + 7].sum())

    middle = marker_pixels(1, 1)
    assert middle > 20
    # A clipped marker keeps a quarter of itself in a corner; a whole one all but its antialiased rim.
    assert marker_pixels(0, 0) >= 0.75 * middle and marker_pixels(2, 2) >= 0.75 * middle


def test_the_legend_hides_no_point():
    rising = Series("rising", list(range(20)), [float(i) for i in range(20)], markers=True)
    falling = Series("falling", list(range(20)), [19.0 - i for i in range(20)], markers=True)
    for series in ([rising], [rising, falling]):
        figure, axes, _ = _drawn(series, title="t")
        legend = axes.get_legend().get_window_extent(figure.canvas.get_renderer())
        for s in series:
            for x, y in zip(s.x, s.y):
                assert not legend.contains(*axes.transData.transform((x, y))), (s.label, x, y)


def test_matplotlib_is_imported_only_when_a_plot_is_drawn():
    def imported(code: str) -> list[str]:
        probe = f"import sys\n{code}\nprint('matplotlib' in sys.modules, 'torch' in sys.modules)"
        return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()

    assert imported("import diffcli.io.plot, diffcli.training.artifacts")[0] == "False"
    assert imported("from diffcli.cli.app import run\nrun(['--help'])")[-2:] == ["False", "False"]
