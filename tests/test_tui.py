"""The terminal output of long runs: half-block images, the progress view's four modes, and a live panel
drawn into a real pseudo-terminal."""

from __future__ import annotations

import io
import json
import math
import re
import sys
import textwrap
import time

import numpy as np
import pytest
from helpers_pty import python_argv, run_in_pty, strip_ansi
from rich.console import Console
from rich.text import Text

from diffcli import console
from diffcli.tui.format import format_duration
from diffcli.tui.halfblock import RAMP, UPPER_HALF, area_resize, fit_size, halfblock, halfblock_row
from diffcli.tui.losscurve import LossHistory, sparkline
from diffcli.tui.progress import RunView, choose_mode

pty_only = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")


# ----- half blocks --------------------------------------------------------------------------------------
def cell_colours(text: Text) -> list[tuple[tuple[int, int, int], tuple[int, int, int]]]:
    """(foreground, background) RGB of each styled cell, in order."""
    out = []
    for span in sorted(text.spans, key=lambda s: s.start):  # a span may cover a run of equal cells
        assert set(text.plain[span.start : span.end]) == {UPPER_HALF}
        colours = (tuple(span.style.color.triplet), tuple(span.style.bgcolor.triplet))
        out.extend([colours] * (span.end - span.start))
    return out


def test_halfblock_2x2_rgb_puts_top_in_foreground_and_bottom_in_background():
    image = np.zeros((3, 2, 2), np.float32)
    image[:, 0, 0] = [1, 0, 0]  # top-left red
    image[:, 0, 1] = [0, 1, 0]  # top-right green
    image[:, 1, 0] = [0, 0, 1]  # bottom-left blue
    image[:, 1, 1] = [1, 1, 1]  # bottom-right white
    text = halfblock(image)
    assert text.plain == UPPER_HALF * 2
    assert cell_colours(text) == [((255, 0, 0), (0, 0, 255)), ((0, 255, 0), (255, 255, 255))]


def test_halfblock_4x2_grey_gives_two_lines_of_equal_channel_colours():
    image = np.array([[0.0, 0.2], [0.4, 0.6], [0.8, 1.0], [0.5, 0.5]], np.float32)[None]  # [1, 4, 2]
    text = halfblock(image)
    assert text.plain == f"{UPPER_HALF * 2}\n{UPPER_HALF * 2}"
    levels = [round(v * 255) for v in (0.0, 0.4, 0.2, 0.6, 0.8, 0.5, 1.0, 0.5)]
    expected = [((a,) * 3, (b,) * 3) for a, b in zip(levels[::2], levels[1::2])]
    assert cell_colours(text) == expected


def test_odd_height_pads_a_black_bottom_row():
    image = np.ones((1, 3, 2), np.float32)
    text = halfblock(image)
    assert text.plain.split("\n") == [UPPER_HALF * 2, UPPER_HALF * 2]
    assert cell_colours(text)[2:] == [((255, 255, 255), (0, 0, 0))] * 2
    assert len(text.spans) == 2  # one span per run of identical cells, not per cell


def test_downscales_by_area_average_to_max_width():
    image = np.zeros((1, 8, 8), np.float32)
    image[:, :, :4] = 1.0  # left half white
    text = halfblock(image, max_width=4)
    assert text.plain.split("\n") == [UPPER_HALF * 4] * 2  # 8x8 -> 4x4 -> 2 lines of 4
    assert [fg[0] for fg, _ in cell_colours(text)[:4]] == [255, 255, 0, 0]
    # A non-integer ratio still averages by covered area: 3 -> 2 columns mixes the middle pixel.
    resized = area_resize(np.array([[[0.0], [1.0], [1.0]]], np.float32), 1, 2)
    assert np.allclose(resized[0, :, 0], [1 / 3, 1.0])
    assert fit_size(28, 28, max_width=14) == (14, 14) and fit_size(8, 8, max_width=20) == (8, 8)
    assert fit_size(28, 56, max_width=100, max_height=14) == (14, 28)


def test_no_color_uses_a_grey_ramp_without_styles():
    image = np.zeros((1, 2, 3), np.float32)
    image[:, :, 1] = 0.5
    image[:, :, 2] = 1.0
    text = halfblock(image, color=False)
    assert not text.spans
    assert text.plain == f"{RAMP[0]}{RAMP[len(RAMP) // 2]}{RAMP[-1]}"


def test_row_places_images_side_by_side_top_aligned():
    small, tall = np.ones((1, 2, 2), np.float32), np.ones((3, 4, 3), np.float32)
    lines = halfblock_row([small, tall], gap=2).plain.split("\n")
    assert lines == [f"{UPPER_HALF * 2}  {UPPER_HALF * 3}", f"    {UPPER_HALF * 3}"]
    with pytest.raises(ValueError, match="C, H, W"):
        halfblock(np.zeros((2, 4, 4)))


# ----- modes --------------------------------------------------------------------------------------------
class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    "quiet, json_output, tty, term, expected",
    [
        (False, True, True, "xterm", "json"),
        (True, True, True, "xterm", "json"),
        (True, False, True, "xterm", "quiet"),
        (True, False, False, "xterm", "quiet"),
        (False, False, True, "xterm-256color", "live"),
        (False, False, True, "dumb", "plain"),
        (False, False, False, "xterm", "plain"),
    ],
)
def test_choose_mode(monkeypatch, quiet, json_output, tty, term, expected):
    monkeypatch.setattr(sys, "stderr", FakeStream(tty))
    monkeypatch.setenv("TERM", term)
    assert choose_mode(quiet, json_output) == expected


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_plain_mode_prints_a_line_at_most_every_interval(capsys):
    clock = Clock()
    view = RunView("train", total=100, mode="plain", epochs=2, images_per_step=10, plain_every_s=5.0, clock=clock)
    with view:
        for _ in range(40):  # 0.5 s per step: 20 s
            clock.now += 0.5
            view.advance(loss=0.0712, epoch=1)
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    # at 5, 10, 15 and 20 s, plus one on leaving early (step 40 of 100)
    assert len(lines) == 5
    assert lines[0] == "train  epoch 1/2  step 10/100  10%  loss 0.0712  20.0 img/s  ETA 45s"
    assert lines[3].startswith("train  epoch 1/2  step 40/100  40%") and lines[4] == lines[3]
    assert all("\x1b" not in line for line in lines)


def test_plain_mode_always_reports_the_last_step_and_epochs(capsys):
    clock = Clock()
    with RunView("sample", total=3, mode="plain", clock=clock) as view:
        for t in (20, 10, 0):
            clock.now += 0.1
            view.advance(t=t)
        view.message("saved out.png")
    err = capsys.readouterr().err.splitlines()
    assert err == ["sample  step 3/3  100%  t=0  10.0 steps/s  ETA 0s", "saved out.png"]

    view = RunView("train", total=10, mode="plain", clock=clock, plain_every_s=1.0)
    view.advance(loss=1.0)
    clock.now += 1
    view.advance(loss=3.0)  # the line shows the mean loss since the previous line, not one noisy batch
    assert "step 2/10  20%  loss 2.0000" in capsys.readouterr().err

    view = RunView("train", total=10, mode="plain", epochs=2, clock=clock, images_per_step=4)
    view.advance(5, loss=0.5)
    clock.now += 2
    view.end_epoch(1, val_loss=0.25)
    line = capsys.readouterr().err.strip()
    assert line == "epoch 1/2  step 5/10  train loss 0.5000  val loss 0.2500  10.0 img/s  elapsed 2s"


def test_json_mode_writes_exactly_one_json_line_per_epoch(capsys):
    clock = Clock()
    with RunView("train", total=10, mode="json", epochs=2, images_per_step=8, clock=clock) as view:
        for _ in range(5):
            clock.now += 1
            view.advance(loss=0.1, epoch=1)
        assert not view.wants_preview()
        view.message("not shown")
        view.end_epoch(1, val_loss=float("nan"), lr=np.float32(0.5))
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record == {
        "event": "epoch",
        "epoch": 1,
        "step": 5,
        "train_loss": 0.1,
        "val_loss": None,
        "images_per_second": 8.0,
        "seconds": 5.0,
        "lr": 0.5,
    }


def test_trainer_values_win_over_defaults_and_quiet_prints_nothing(capsys):
    view = RunView("train", total=10, mode="json")
    view.end_epoch(2, step=7, train_loss=0.3, val_loss=0.2, images_per_second=123.4, seconds=9.9)
    assert json.loads(capsys.readouterr().out) == {
        "event": "epoch",
        "epoch": 2,
        "step": 7,
        "train_loss": 0.3,
        "val_loss": 0.2,
        "images_per_second": 123.4,
        "seconds": 9.9,
    }
    with RunView("train", total=2, mode="quiet") as view:
        view.advance(2, loss=1.0)
        view.message("hidden")
        view.end_epoch(1)
    assert capsys.readouterr() == ("", "")
    with pytest.raises(ValueError, match="unknown progress mode"):
        RunView("x", total=1, mode="fancy")


def test_wants_preview_only_in_live_mode_and_at_most_every_interval():
    clock = Clock()
    assert not RunView("t", total=5, mode="plain", clock=clock).wants_preview()
    view = RunView("t", total=5, mode="live", preview_every_s=2.0, clock=clock)
    assert view.wants_preview()  # the first one straight away
    view.preview([("x0", [np.zeros((1, 4, 4))])])
    clock.now += 1.5
    assert not view.wants_preview()
    clock.now += 0.5
    assert view.wants_preview()


# ----- numbers ------------------------------------------------------------------------------------------
def test_sparkline_history_and_durations():
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8], log=False) == "▁▂▃▄▅▆▇█"
    assert sparkline([]) == "" and sparkline([2.0, 2.0]) == "▁▁"
    history = LossHistory(width=60)
    for i in range(1000):
        history.add(1.0 / (i + 1))
    values = history.values()
    assert len(values) <= 60 and history.span & (history.span - 1) == 0  # a power of two
    assert values[0] > values[-1] and history.best == pytest.approx(1 / 1000) and history.count == 1000
    assert math.isclose(sum(values[:-1]) * history.span + history._sum, sum(1.0 / (i + 1) for i in range(1000)))
    history.add(float("nan"))
    assert math.isnan(history.last) and all(math.isfinite(v) for v in history.values())
    assert [format_duration(s) for s in (5, 192, 7500)] == ["5s", "3m12s", "2h05m"]


def test_live_panel_keeps_its_height_as_numbers_and_previews_change(monkeypatch):
    term = Console(
        file=io.StringIO(), width=90, height=40, force_terminal=True, color_system="truecolor", no_color=False
    )
    monkeypatch.setattr(console, "stderr", lambda: term)
    clock = Clock()
    view = RunView("train tiny", total=500, mode="live", epochs=5, images_per_step=64, clock=clock)

    def height() -> int:
        return len(term.render_lines(view._panel(), term.options, pad=False))

    before = [height()]
    for i in range(200):
        clock.now += 0.01
        view.advance(loss=1.0 / (i + 1), lr=1e-3, epoch=1)
        if i in (0, 9, 99):
            before.append(height())
    assert len(set(before)) == 1, before  # the loss line exists (blank) before the first loss
    rng = np.random.default_rng(0)
    view.preview([("x0", [rng.random((3, 64, 64))])], "one row")
    after = [height()]
    view.preview([("x_t", [rng.random((1, 28, 28))] * 5), ("x0", [rng.random((1, 28, 28))] * 5)], "t=150 of 300")
    after.append(height())
    screen = "\n".join(
        "".join(segment.text for segment in line) for line in term.render_lines(view._panel(), term.options)
    )
    view.preview([("x0", [rng.random((1, 8, 8))])])
    after.append(height())
    assert len(set(after)) == 1 and after[0] <= 40 - 1, after  # the area never shrinks, and fits the screen
    assert "step 200/500" in screen and "40%" in screen and "epoch 1/5" in screen and "0.0050" in screen
    assert "t=150 of 300" in screen and "x_t" in screen and UPPER_HALF in screen and "ETA" in screen


def test_live_mode_redraws_from_advance_at_most_four_times_a_second(monkeypatch):
    term = Console(file=io.StringIO(), width=80, height=30, force_terminal=True, no_color=False)
    monkeypatch.setattr(console, "stderr", lambda: term)
    clock = Clock()
    view = RunView("train", total=1000, mode="live", clock=clock)
    draws = []
    panel = view._panel
    monkeypatch.setattr(view, "_panel", lambda: draws.append(clock.now) or panel())
    with view:
        for _ in range(200):  # 2 s of 10 ms steps
            clock.now += 0.01
            view.advance(loss=0.5)
        view.message("above the panel")
    assert 8 <= len(draws) <= 12, len(draws)  # start + ~4 per second + the message + the final frame
    out = term.file.getvalue()
    assert "above the panel" in out and "step 200/1000" in out


def test_threaded_mode_redraws_without_advance_calls(monkeypatch):
    term = Console(file=io.StringIO(), width=80, height=30, force_terminal=True)
    monkeypatch.setattr(console, "stderr", lambda: term)
    view = RunView("slow steps", total=3, mode="live", threaded=True)
    draws = []
    panel = view._panel
    monkeypatch.setattr(view, "_panel", lambda: draws.append(1) or panel())
    with view:
        time.sleep(0.6)  # Rich's thread redraws 4 times a second on its own
    assert len(draws) >= 3


def test_resumed_runs_measure_rate_from_where_they_started(capsys):
    clock = Clock()
    with RunView("train", total=200, mode="plain", start=100, clock=clock) as view:
        for _ in range(10):
            clock.now += 0.5
            view.advance()
    assert capsys.readouterr().err.splitlines()[0] == "train  step 110/200  55%  2.0 steps/s  ETA 45s"


# ----- a real terminal ----------------------------------------------------------------------------------
CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from diffcli import console
    from diffcli.tui.progress import RunView, choose_mode

    mode = choose_mode(quiet=False, json_output=False)
    if mode != "live":
        print("mode was", mode)
        sys.exit(3)
    square = np.zeros((1, 8, 8)); square[:, 2:6, 2:6] = 1.0
    colour = np.random.default_rng(0).random((3, 8, 8))
    steps = int(sys.argv[1])
    with RunView("train demo", total=400, mode=mode, epochs=2, images_per_step=32, preview_every_s=0.2) as view:
        for i in range(steps):
            time.sleep(0.01)
            view.advance(loss=0.0712 if i == steps - 1 else 0.5 / (i + 1) + 0.08, epoch=1 + (i >= steps // 2))
            if view.wants_preview():
                view.preview([("x_t", [square]), ("x0", [colour])], caption="t=150 of 300")
            if i == steps // 2:
                view.end_epoch(1, val_loss=0.0705)
                view.message("hello from the run")
                print("a stray stderr write", file=sys.stderr)
                console.warn("a warning")
    """
)


@pty_only
def test_live_panel_in_a_real_pseudo_terminal(tmp_path):
    script = tmp_path / "live_child.py"
    script.write_text(CHILD)
    code, output = run_in_pty(
        [*python_argv(script), "150"], env={"NO_COLOR": None, "COLORTERM": "truecolor"}, timeout=30, cols=100, rows=40
    )
    screen = strip_ansi(output)
    assert code == 0, screen[-2000:]
    assert re.search(r"\x1b\[38;2;\d+;\d+;\d+;48;2;\d+;\d+;\d+m" + UPPER_HALF, output)  # truecolor fg + bg
    assert UPPER_HALF in screen and "x_t" in screen and "t=150 of 300" in screen
    assert "0.0712" in screen and "step 150/400" in screen and "37%" in screen and "img/s" in screen
    assert screen.count("train demo") >= 2  # redrawn while running (4 times a second), not just at the end
    assert "epoch 1/2" in screen and "val loss 0.0705" in screen and "hello from the run" in screen
    assert "a stray stderr write" in screen and "warning: a warning" in screen
    last_frame = screen[screen.rindex("train demo") :]
    assert "step 150/400" in last_frame and "0.0712" in last_frame  # the final panel stays on screen


@pty_only
def test_live_panel_without_colour_and_plain_on_a_dumb_terminal(tmp_path):
    script = tmp_path / "live_child.py"
    script.write_text(CHILD)
    code, output = run_in_pty([*python_argv(script), "20"], env={"NO_COLOR": "1"}, timeout=30)
    assert code == 0, strip_ansi(output)[-2000:]
    assert "\x1b[38;2;" not in output and UPPER_HALF not in output and "@" in output  # the grey ramp
    assert "step 20/400" in strip_ansi(output)
    code, output = run_in_pty([*python_argv(script), "5"], env={"TERM": "dumb"}, timeout=30)
    assert code == 3 and "mode was plain" in output


@pty_only
def test_train_and_sample_show_loss_progress_and_a_preview_on_a_terminal(home):
    """The real commands, not a stand-in: `diffcli train` and `diffcli sample` in a pseudo-terminal."""
    env = {"NO_COLOR": None, "COLORTERM": "truecolor", "OMP_NUM_THREADS": "1"}
    train = [
        sys.executable,
        "-m",
        "diffcli",
        "train",
        "--dataset",
        "glyphs",
        "--limit",
        "512",
        "--batch-size",
        "16",
        "--width",
        "8",
        "--timesteps",
        "20",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--seed",
        "0",
        "--name",
        "p",
    ]
    code, output = run_in_pty(train, env=env, timeout=120, cols=100, rows=40)
    screen = strip_ansi(output)
    assert code == 0, screen[-2000:]
    assert "train p" in screen and re.search(r"step \d+/64", screen) and "%" in screen and "img/s" in screen
    assert re.search(r"loss \d\.\d+", screen) and "epoch 2/2" in screen and "val loss" in screen
    assert UPPER_HALF in screen and "x_t" in screen and "x0" in screen  # the reverse-chain preview
    assert re.search(r"\x1b\[38;2;\d+;\d+;\d+;48;2;\d+;\d+;\d+m" + UPPER_HALF, output)

    sample = [
        sys.executable,
        "-m",
        "diffcli",
        "sample",
        "--model",
        "p",
        "--class",
        "3",
        "-n",
        "2",
        "--steps",
        "20",
        "--seed",
        "0",
        "--device",
        "cpu",
    ]
    code, output = run_in_pty(sample, env=env, timeout=60, cols=100, rows=40)
    screen = strip_ansi(output)
    assert code == 0, screen[-2000:]
    assert "sample p" in screen and "step 20/20" in screen and "100%" in screen
    assert UPPER_HALF in screen and "x_t" in screen and "t=" in screen
    assert "wrote" in screen  # a terminal gets no PNG bytes: the image went to a file


@pytest.mark.parametrize("cols", [60, 120])
def test_ctrl_c_during_train_leaves_one_panel_and_the_resume_line(home, cols):
    """A real Ctrl-C (typed into the terminal) once the live panel shows a preview: the screen then holds
    exactly one panel (no stale copies of its top lines), and one calm line with the resume command."""
    from helpers_pty import final_screen

    env = {"NO_COLOR": None, "COLORTERM": "truecolor", "OMP_NUM_THREADS": "1"}
    train = [
        sys.executable,
        "-m",
        "diffcli",
        "train",
        "--dataset",
        "glyphs",
        "--limit",
        "4096",
        "--batch-size",
        "16",
        "--width",
        "8",
        "--timesteps",
        "20",
        "--epochs",
        "3",
        "--device",
        "cpu",
        "--seed",
        "0",
        "--name",
        "cut",
    ]
    code, output = run_in_pty(train, env=env, timeout=180, cols=cols, rows=30, keys=[("x0", b"\x03")])
    lines = final_screen(output, cols, 30)
    text = "\n".join(lines)
    assert code == 130, text[-2000:]
    assert sum(1 for line in lines if line.lstrip().startswith("╭─ train cut")) == 1, text
    assert "diffcli: error" not in text and "Traceback" not in text
    # the calm line may wrap at the terminal's width, where the screen loses the space at the line's end
    joined = "".join(line for line in lines if line).replace(" ", "")
    assert "stoppedatstep" in joined and "diffclitrain--namecut--resume" in joined
    assert (home / "models" / "cut" / "train" / "checkpoint.pt").exists()


NOTES_CHILD = textwrap.dedent(
    """
    import time
    from diffcli import console
    from diffcli.tui.progress import RunView

    with RunView("notes demo", total=40, mode="live") as view:
        for i in range(40):
            time.sleep(0.01)
            view.advance(loss=0.5)
            if i == 20:
                console.info("kept candidate 1 of 2 (seed 7): 3 98%")
                console.notice("resized the input")
                console.warn("none of the candidates reads")
    """
)


def _notes_above_one_panel(lines: list[str], notes: list[str], title: str) -> None:
    """Each note on a line of its own above the one panel left on the screen (no stale frames, no note
    written onto a border)."""
    text = "\n".join(lines)
    tops = [i for i, line in enumerate(lines) if line.startswith(f"╭─ {title}")]
    assert len(tops) == 1, text
    for note in notes:
        found = [i for i, line in enumerate(lines) if note in line]
        assert len(found) == 1 and found[0] < tops[0], (note, text)
        assert not set(lines[found[0]]) & set("╭╮╰╯│━"), (note, text)


@pty_only
def test_notes_printed_during_a_live_panel_go_above_it(tmp_path):
    """console.info / notice / warn while the panel is drawn: through the panel's console, above it."""
    from helpers_pty import final_screen

    script = tmp_path / "notes_child.py"
    script.write_text(NOTES_CHILD)
    code, output = run_in_pty(python_argv(script), env={"NO_COLOR": None}, timeout=30, cols=80, rows=24)
    lines = [line for line in final_screen(output, 80, 24) if line.strip()]
    assert code == 0, "\n".join(lines)
    notes = [
        "kept candidate 1 of 2 (seed 7): 3 98%",
        "note: resized the input",
        "warning: none of the candidates reads",
    ]
    _notes_above_one_panel(lines, notes, "notes demo")


@pty_only
def test_sample_best_of_says_what_it_kept_above_its_panel(home):
    """The real command: `sample --best-of 2` names the kept candidate while its panel is on screen."""
    from helpers_pty import final_screen

    argv = [
        sys.executable,
        "-m",
        "diffcli",
        "sample",
        "3",
        "--best-of",
        "2",
        "--steps",
        "10",
        "--seed",
        "0",
        "-o",
        "s.png",
    ]
    code, output = run_in_pty(argv, env={"NO_COLOR": None, "OMP_NUM_THREADS": "1"}, timeout=60, cols=100, rows=30)
    lines = [line for line in final_screen(output, 100, 30) if line.strip()]
    assert code == 0, "\n".join(lines)
    kept = next((line for line in lines if re.search(r"candidate [12] of 2 \(seed [01]\)", line)), "")
    assert kept, "\n".join(lines)
    _notes_above_one_panel(lines, [kept], "sample")
