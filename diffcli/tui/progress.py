"""One progress view for long runs (training, sampling), in four modes:

- live: a Rich panel on stderr (a terminal): progress bar, rate, ETA, a loss sparkline and a half-block
  preview of the reverse chain (tui/panel.py); redrawn at most 4 times a second, fixed height.
- plain: one line on stderr every few seconds (CI logs keep moving, log files stay readable).
- json: one JSON line per epoch on stdout, nothing else.
- quiet: nothing.

`advance` is called every step (hundreds of times a second), so it only updates a few numbers and reads
the clock; drawing happens at most 4 times a second (live) or once per line (plain).

Why the live panel is redrawn from `advance` (the caller's thread) rather than by Rich's refresh thread:
a drawing thread holds the GIL for milliseconds per frame, and a torch loop of many small ops gives the
GIL up at every op, then waits up to the switch interval (5 ms) to get it back. On a busy CPU with
torch's OpenMP pool spinning, this convoy made `diffcli sample` 40x slower (0.9 s -> 40 s for 40 steps
of a tiny UNet on 2 cores). Drawing inline costs the same few ms per frame and nothing else. The price:
the panel stands still while the caller does not call `advance` (a long validation pass, say).
`threaded=True` brings Rich's thread back for callers whose steps are slow and few.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.live import Live
from rich.panel import Panel

from diffcli import console
from diffcli.progress import Rows
from diffcli.tui.format import format_duration, format_rate, format_value, json_number
from diffcli.tui.losscurve import LossHistory
from diffcli.tui.panel import LivePanel
from diffcli.tui.terminal import EchoOff, signals_held

MODES = ("live", "plain", "json", "quiet")
REFRESH_PER_SECOND = 4


def choose_mode(quiet: bool, json_output: bool) -> str:
    """ "json" if json_output; "quiet" if quiet; "live" if stderr is a terminal (and TERM is not "dumb");
    otherwise "plain" (pipes, files, CI logs)."""
    if json_output:
        return "json"
    if quiet:
        return "quiet"
    stream = sys.stderr
    try:
        tty = stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        tty = False
    if tty and os.environ.get("TERM", "") != "dumb":
        return "live"
    return "plain"


class RunView:
    """Progress of a run of `total` steps, shown according to `mode` (see choose_mode); a context
    manager (live mode draws between __enter__ and __exit__; the final panel stays on screen)."""

    def __init__(
        self,
        title: str,
        total: int,
        mode: str,
        unit: str = "step",
        epochs: int | None = None,
        images_per_step: int | None = None,
        plain_every_s: float = 5.0,
        preview_every_s: float = 2.0,
        start: int = 0,
        clock: Callable[[], float] = time.monotonic,
        threaded: bool = False,
        events: bool = False,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown progress mode {mode!r} (expected one of {', '.join(MODES)})")
        self.title, self.total, self.mode, self.unit = title, max(1, int(total)), mode, unit
        self.events = events or mode == "json"  # one JSON line per epoch on stdout, beside any human view
        self.epochs, self.images_per_step = epochs, images_per_step
        self.plain_every_s, self.preview_every_s = plain_every_s, preview_every_s
        self.clock = clock
        self.start = self.step = int(start)
        self.stats: dict[str, float] = {}
        self.loss = LossHistory()
        self.started = clock()
        self._last_plain = self.started
        self._last_preview: float | None = None
        self._epoch_sum, self._epoch_n = 0.0, 0  # for a default train_loss in end_epoch
        self._line_sum, self._line_n = 0.0, 0  # plain mode shows the mean loss since its last line
        self.latest_preview: tuple[Rows, str] | None = None  # (rows, caption), swapped as one object
        self._drawing = LivePanel(self)
        self._live: Live | None = None
        self._terminal: EchoOff | None = None
        self.threaded = threaded
        self._next_draw = 0.0  # clock time of the next inline redraw (live mode, threaded=False)

    # ----- numbers ---------------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds since this view was created."""
        return self.clock() - self.started

    def rate(self) -> float:
        """Steps per second over this run (resumed steps from `start` are not counted)."""
        elapsed = self.elapsed()
        return (self.step - self.start) / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds left at the current rate, or None before there is a rate."""
        rate = self.rate()
        return max(0, self.total - self.step) / rate if rate > 0 else None

    def rate_text(self) -> str:
        """img/s when the batch size is known (the run's own figure when it reports one, so the panel and
        the run's summary say the same), else steps/s."""
        if "images_per_second" in self.stats:
            return f"{format_rate(float(self.stats['images_per_second']))} img/s"
        rate = self.rate()
        if self.images_per_step:
            return f"{format_rate(rate * self.images_per_step)} img/s"
        return f"{format_rate(rate)} {self.unit}s/s"

    def percent(self) -> int:
        """Whole percent done (100 only at the end)."""
        return min(100, int(100 * self.step / self.total))

    def position_parts(self) -> list[str]:
        """Where the run is: epoch (when known), step of total, percent."""
        parts = []
        if self.epochs and "epoch" in self.stats:
            parts.append(f"epoch {int(self.stats['epoch'])}/{self.epochs}")
        parts.append(f"{self.unit} {self.step}/{self.total}")
        parts.append(f"{self.percent()}%")
        return parts

    def status_line(self) -> str:
        """The plain-mode line: title, epoch, step, %, loss, t, rate, ETA. The loss is the mean over the
        steps since the previous line (one step's loss is mostly batch noise), else the latest value."""
        parts = [self.title, *self.position_parts()]
        if "loss" in self.stats:
            loss = self._line_sum / self._line_n if self._line_n else self.stats["loss"]
            parts.append(f"loss {format_value(loss)}")
        if "t" in self.stats:
            parts.append(f"t={int(self.stats['t'])}")
        parts.append(self.rate_text())
        eta = self.eta()
        parts.append(f"ETA {format_duration(eta)}" if eta is not None else "ETA -")
        return "  ".join(parts)

    # ----- updates (called by the run) -------------------------------------------------------------
    def advance(self, n: int = 1, **stats: float) -> None:
        """`n` more steps done; `stats` (loss=, lr=, epoch=, t=, ...) are the latest values."""
        self.step += n
        if stats:
            self.stats.update(stats)
            loss = stats.get("loss")
            if loss is not None:
                loss = float(loss)
                self.loss.add(loss)
                if math.isfinite(loss):
                    self._epoch_sum += loss
                    self._epoch_n += 1
                    self._line_sum += loss
                    self._line_n += 1
        if self.mode == "plain":
            now = self.clock()
            if now - self._last_plain >= self.plain_every_s or self.step >= self.total:
                self._last_plain = now
                self._print(self.status_line())
                self._line_sum, self._line_n = 0.0, 0
        elif self._live is not None and not self.threaded:
            now = self.clock()
            if now >= self._next_draw:
                self._next_draw = now + 1.0 / REFRESH_PER_SECOND
                with signals_held():
                    self._live.refresh()

    def end_epoch(self, epoch: int, **stats: Any) -> None:
        """An epoch finished: json -> one JSON line on stdout; plain/live -> one line on stderr."""
        record: dict[str, Any] = {"event": "epoch", "epoch": epoch}
        record["step"] = stats.pop("step", self.step)
        mean = self._epoch_sum / self._epoch_n if self._epoch_n else None
        record["train_loss"] = stats.pop("train_loss", None if mean is None else round(mean, 6))
        record["val_loss"] = stats.pop("val_loss", None)
        rate = self.rate() * (self.images_per_step or 0)
        record["images_per_second"] = stats.pop("images_per_second", round(rate, 1) if self.images_per_step else None)
        record["seconds"] = stats.pop("seconds", round(self.elapsed(), 1))
        record.update(stats)
        self._epoch_sum, self._epoch_n = 0.0, 0
        if self.events:
            console.emit_json({key: json_number(value) for key, value in record.items()})
        if self.mode not in ("quiet", "json"):
            self.message(self._epoch_line(record))

    def _epoch_line(self, record: dict[str, Any]) -> str:
        epoch = f"epoch {record['epoch']}" + (f"/{self.epochs}" if self.epochs else "")
        parts = [epoch, f"{self.unit} {record['step']}/{self.total}"]
        for key, value in record.items():
            if key in ("event", "epoch", "step") or value is None:
                continue
            if key == "images_per_second":
                parts.append(f"{format_rate(float(value))} img/s")
            elif key == "seconds":
                parts.append(f"elapsed {format_duration(float(value))}")
            elif key == "training_seconds":
                continue
            elif isinstance(value, float):
                parts.append(f"{key.replace('_', ' ')} {format_value(value)}")
            else:
                parts.append(f"{key.replace('_', ' ')} {value}")
        return "  ".join(parts)

    def phase(self, text: str | None) -> None:
        """Name what the run is doing between steps (validation, a sample grid, saving), so a bar at
        100 % that does not move says why; None when steps resume. Shown at once."""
        if text is None:
            self.stats.pop("phase", None)
        else:
            self.stats["phase"] = text  # type: ignore[assignment]
            if self.mode == "plain":
                self._print(f"{self.title}  {text}")
        if self._live is not None:
            with signals_held():
                self._live.refresh()

    def message(self, text: str) -> None:
        """A line for people: above the live panel, or on stderr in plain mode; hidden in quiet/json."""
        if self.mode not in ("quiet", "json"):
            self._print(text)

    def wants_preview(self) -> bool:
        """True only in live mode once preview_every_s has passed since the last preview, so callers
        compute previews only when they will be shown."""
        if self.mode != "live":
            return False
        return self._last_preview is None or self.clock() - self._last_preview >= self.preview_every_s

    def preview(self, rows: Rows, caption: str = "") -> None:
        """Show labelled rows of [C, H, W] float images in [0, 1] in the panel's preview area, e.g.
        [("x_t", [img, img]), ("x0", [img, img])]. Cheap: the images are drawn at the next redraw."""
        self._last_preview = self.clock()
        if self.mode != "live":
            return
        self.latest_preview = (list(rows), caption)

    # ----- output -----------------------------------------------------------------------------------
    def _print(self, text: str) -> None:
        target = self._live.console if self._live is not None else console.stderr()
        with signals_held():
            target.print(text, markup=False, highlight=False)  # above the panel while Live runs

    def _panel(self) -> Panel:
        """The live frame, as wide as the live console (Rich's get_renderable)."""
        return self._drawing.frame(console.stderr() if self._live is None else self._live.console)

    # ----- context manager -------------------------------------------------------------------------
    def __enter__(self) -> RunView:
        if self.mode == "live":
            self._terminal = EchoOff()  # a ^C echoed after the panel would shift it by a line
            self._terminal.__enter__()
            # stdout stays untouched (it is data). Stray writes to sys.stderr (library warnings) are
            # routed above the panel instead of tearing it, like the shared console's own prints.
            self._live = Live(
                console=console.stderr(),
                get_renderable=self._panel,
                auto_refresh=self.threaded,
                refresh_per_second=REFRESH_PER_SECOND,
                transient=True,  # erased at the end, then one compact final frame (see __exit__)
                redirect_stdout=False,
                redirect_stderr=True,
            )
            with signals_held():
                self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            with signals_held():
                live.stop()  # erases the live panel (transient): no stale frames in the scrollback
                live.console.print(self._drawing.final(console.stderr()))  # one final frame, as of the last step
        if self._terminal is not None:
            terminal, self._terminal = self._terminal, None
            terminal.__exit__()
        elif self.mode == "plain" and self.start < self.step < self.total:
            self._print(self.status_line())  # stopped early: say where
