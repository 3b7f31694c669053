"""One progress view for long runs (training, sampling), in four modes:

- live: a Rich panel on stderr (a terminal): progress bar, rate, ETA, a loss sparkline and a half-block
  preview of the reverse chain; redrawn at most 4 times a second, fixed height.
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

import contextlib
import math
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.live import Live
from rich.measure import Measurement
from rich.panel import Panel
from rich.segment import Segment
from rich.text import Text

from diffcli import console
from diffcli.tui.halfblock import halfblock_row

MODES = ("live", "plain", "json", "quiet")
REFRESH_PER_SECOND = 4
SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 60  # sparkline columns
PANEL_MAX_WIDTH = 110
PREVIEW_MAX_LINES = 24  # preview area height cap (lines), caption included
FIXED_LINES = 7  # panel borders (2) + status, bar, loss, spacer (4) + one spare line for the cursor
Rows = Sequence[tuple[str, Sequence[np.ndarray]]]


def choose_mode(quiet: bool, json_output: bool) -> str:
    """"json" if json_output; "quiet" if quiet; "live" if stderr is a terminal (and TERM is not "dumb");
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


def format_duration(seconds: float) -> str:
    """Short human durations: 45s, 3m12s, 2h05m."""
    if not math.isfinite(seconds):
        return "-"
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def format_value(value: float) -> str:
    """A loss-like number with 4 decimals, or scientific notation when that would hide it."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.3e}"


def _rate_number(rate: float) -> str:
    return f"{rate:.0f}" if rate >= 100 else (f"{rate:.1f}" if rate >= 1 else f"{rate:.2f}")


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH, log: bool = True) -> str:
    """Unicode bars for the last `width` values, scaled between their min and max (on a log scale when
    all are positive, so the slow late part of a loss curve stays visible after the early drop)."""
    recent = [v for v in list(values)[-width:] if math.isfinite(v)]
    if not recent:
        return ""
    if log and min(recent) > 0:
        recent = [math.log(v) for v in recent]
    lo, hi = min(recent), max(recent)
    span = (hi - lo) or 1.0
    top = len(SPARK) - 1
    return "".join(SPARK[min(top, int((v - lo) / span * top + 0.5))] for v in recent)


class LossHistory:
    """The whole run's loss in at most `width` buckets: when they fill up, neighbours merge in pairs and
    each bucket then covers twice as many steps. O(1) amortised per value, bounded memory, and the
    sparkline shows the entire run rather than the last second of it."""

    def __init__(self, width: int = SPARK_WIDTH) -> None:
        self.width = width - width % 2 or 2
        self.span = 1  # steps per bucket
        self.buckets: list[float] = []
        self._sum = 0.0
        self._n = 0
        self.last = math.nan
        self.best = math.inf
        self.count = 0

    def add(self, value: float) -> None:
        """Record one loss value (non-finite ones are shown as `last` but kept out of the curve)."""
        self.last = value
        self.count += 1
        if not math.isfinite(value):
            return
        self.best = min(self.best, value)
        self._sum += value
        self._n += 1
        if self._n == self.span:
            buckets = self.buckets + [self._sum / self._n]
            self._sum, self._n = 0.0, 0
            if len(buckets) >= self.width:
                buckets = [(a + b) / 2 for a, b in zip(buckets[::2], buckets[1::2])]
                self.span *= 2
            self.buckets = buckets  # one reference swap: safe to read from a drawing thread

    def values(self) -> list[float]:
        """Bucket means, oldest first, including the bucket still filling."""
        values = list(self.buckets)
        if self._n:
            values.append(self._sum / self._n)
        return values


class RenderedLine:
    """One line already turned into Rich segments, so redrawing it costs almost nothing."""

    def __init__(self, segments: list[Segment], width: int) -> None:
        self.segments = segments
        self.width = width

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.segments
        yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, min(self.width, options.max_width))


class RunView:
    """Progress of a run of `total` steps, shown according to `mode` (see choose_mode); a context
    manager (live mode draws between __enter__ and __exit__; the final panel stays on screen)."""

    def __init__(
        self,
        title: str,
        total: int,
        mode: str,
        unit: str = "step",
        epochs: Optional[int] = None,
        images_per_step: Optional[int] = None,
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
        self._last_preview: Optional[float] = None
        self._epoch_sum, self._epoch_n = 0.0, 0  # for a default train_loss in end_epoch
        self._line_sum, self._line_n = 0.0, 0  # plain mode shows the mean loss since its last line
        self._preview: Optional[tuple[Rows, str]] = None  # (rows, caption), swapped as one object
        self._area = 0  # preview area height in lines (see _panel)
        self._preview_cache: Optional[tuple[Any, tuple[int, int, bool], list[RenderedLine]]] = None
        self._live: Optional[Live] = None
        self._terminal: Optional[_EchoOff] = None
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

    def eta(self) -> Optional[float]:
        """Seconds left at the current rate, or None before there is a rate."""
        rate = self.rate()
        return max(0, self.total - self.step) / rate if rate > 0 else None

    def rate_text(self) -> str:
        """img/s when the batch size is known (the run's own figure when it reports one, so the panel and
        the run's summary say the same), else steps/s."""
        if "images_per_second" in self.stats:
            return f"{_rate_number(float(self.stats['images_per_second']))} img/s"
        rate = self.rate()
        if self.images_per_step:
            return f"{_rate_number(rate * self.images_per_step)} img/s"
        return f"{_rate_number(rate)} {self.unit}s/s"

    def percent(self) -> int:
        """Whole percent done (100 only at the end)."""
        return min(100, int(100 * self.step / self.total))

    def _position_parts(self) -> list[str]:
        parts = []
        if self.epochs and "epoch" in self.stats:
            parts.append(f"epoch {int(self.stats['epoch'])}/{self.epochs}")
        parts.append(f"{self.unit} {self.step}/{self.total}")
        parts.append(f"{self.percent()}%")
        return parts

    def status_line(self) -> str:
        """The plain-mode line: title, epoch, step, %, loss, t, rate, ETA. The loss is the mean over the
        steps since the previous line (one step's loss is mostly batch noise), else the latest value."""
        parts = [self.title, *self._position_parts()]
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
                with _signals_held():
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
            console.emit_json({key: _json_number(value) for key, value in record.items()})
        if self.mode not in ("quiet", "json"):
            self.message(self._epoch_line(record))

    def _epoch_line(self, record: dict[str, Any]) -> str:
        epoch = f"epoch {record['epoch']}" + (f"/{self.epochs}" if self.epochs else "")
        parts = [epoch, f"{self.unit} {record['step']}/{self.total}"]
        for key, value in record.items():
            if key in ("event", "epoch", "step") or value is None:
                continue
            if key == "images_per_second":
                parts.append(f"{_rate_number(float(value))} img/s")
            elif key == "seconds":
                parts.append(f"elapsed {format_duration(float(value))}")
            elif key == "training_seconds":
                continue
            elif isinstance(value, float):
                parts.append(f"{key.replace('_', ' ')} {format_value(value)}")
            else:
                parts.append(f"{key.replace('_', ' ')} {value}")
        return "  ".join(parts)

    def phase(self, text: Optional[str]) -> None:
        """Name what the run is doing between steps (validation, a sample grid, saving), so a bar at
        100 % that does not move says why; None when steps resume. Shown at once."""
        if text is None:
            self.stats.pop("phase", None)
        else:
            self.stats["phase"] = text  # type: ignore[assignment]
            if self.mode == "plain":
                self._print(f"{self.title}  {text}")
        if self._live is not None:
            with _signals_held():
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
        self._preview = (list(rows), caption)

    # ----- live panel (rendered at most REFRESH_PER_SECOND times a second) ------------------------
    def _print(self, text: str) -> None:
        target = self._live.console if self._live is not None else console.stderr()
        with _signals_held():
            target.print(text, markup=False, highlight=False)  # above the panel while Live runs

    def _final_panel(self) -> Panel:
        """The frame left in the scrollback: status, bar and loss, without the preview (taken a few steps
        before the end, its picture and its t would disagree with the last step; the result is in the
        output file)."""
        term = console.stderr()
        width = max(40, min(term.width, PANEL_MAX_WIDTH))
        lines = [self._status_text(), self._bar_text(width - 4), self._loss_text(width - 4)]
        return Panel(Group(*[line for line in lines if line.plain]), title=Text(self.title, style="bold"),
                     title_align="left", width=width, border_style="blue")

    def _panel(self) -> Panel:
        """The whole panel; every part has a fixed number of lines so it never jumps."""
        term = console.stderr() if self._live is None else self._live.console
        width = max(40, min(term.width, PANEL_MAX_WIDTH))
        inner = width - 4  # border + padding on each side
        lines: list[Text] = [self._status_text(), self._bar_text(inner), self._loss_text(inner)]
        limit = max(4, min(PREVIEW_MAX_LINES, term.size.height - FIXED_LINES))
        preview: list[Any] = self._preview_lines(term, inner, limit)
        # The area grows to the tallest preview seen and never shrinks, so the panel does not jump.
        self._area = min(limit, max(self._area, len(preview)))
        if self._area:
            lines.append(Text(""))
            lines.extend(preview[: self._area] + [Text("") for _ in range(self._area - len(preview))])
        return Panel(Group(*lines), title=Text(self.title, style="bold"), title_align="left", width=width, border_style="blue")

    def _status_text(self) -> Text:
        parts = self._position_parts()
        if "phase" in self.stats:
            parts.append(f"({self.stats['phase']})")
        if "t" in self.stats:
            parts.append(f"t={int(self.stats['t'])}")
        if "lr" in self.stats:
            parts.append(f"lr {self.stats['lr']:.2g}")
        return Text("  ".join(parts), no_wrap=True, overflow="ellipsis")

    def _bar_text(self, inner: int) -> Text:
        eta = self.eta()
        tail = f"  {self.rate_text()}  {format_duration(self.elapsed())} elapsed  ETA {format_duration(eta) if eta is not None else '-'}"
        tail = tail.ljust(44)  # fixed width, so the bar does not change length as numbers change
        bar_width = max(10, inner - len(tail))
        done = min(bar_width, int(bar_width * self.step / self.total))
        text = Text(no_wrap=True, overflow="crop")
        text.append("━" * done, style="cyan")
        text.append("━" * (bar_width - done), style="grey37")
        text.append(tail)
        return text

    def _loss_text(self, inner: int) -> Text:
        if not self.loss.count:
            return Text("")
        last, best = self.loss.last, self.loss.best
        numbers = f"  {format_value(last)} (min {format_value(best)})" if math.isfinite(best) else f"  {last}"
        spark = sparkline(self.loss.values(), max(8, min(SPARK_WIDTH, inner - 5 - len(numbers))))
        text = Text("loss ", no_wrap=True, overflow="crop")
        text.append(spark, style="green")
        text.append(numbers)
        return text

    def _preview_lines(self, term: Console, inner: int, area: int) -> list[RenderedLine]:
        """At most `area` lines: each row's images shrunk to fit, its label beside it, then the caption.
        Rendered to segments once per preview: the panel is redrawn 4 times a second, the preview is not."""
        current = self._preview
        color = not term.no_color
        key = (inner, area, color)
        cache = self._preview_cache
        if cache is not None and cache[0] is current and cache[1] == key:
            return cache[2]
        lines: list[Text] = []
        if current is not None:
            rows = [(label, images) for label, images in current[0] if len(images)]
            caption = current[1]
            label_width = max((len(label) for label, _ in rows), default=0) + 1
            per_row = (area - 1) // max(1, len(rows))  # lines per row; one line kept for the caption
            if per_row < 1:
                rows, per_row = rows[: area - 1], 1
            for label, images in rows:
                gap = 1
                tile = max(1, (inner - label_width - gap * (len(images) - 1)) // len(images))
                rendered = halfblock_row(images, gap=gap, max_width=tile, max_height=2 * per_row, color=color).split("\n")
                middle = (len(rendered) - 1) // 2
                for i, line in enumerate(rendered[:per_row]):
                    prefix = Text((label if i == middle else "").ljust(label_width), style="bold")
                    lines.append(Text.assemble(prefix, line, no_wrap=True, overflow="crop"))
            if caption:
                lines.append(Text(caption, style="dim", no_wrap=True, overflow="ellipsis"))
        rendered_lines = [RenderedLine(list(line.render(term)), inner) for line in lines[:area]]
        self._preview_cache = (current, key, rendered_lines)  # holds `current`, so identity stays meaningful
        return rendered_lines

    # ----- context manager -------------------------------------------------------------------------
    def __enter__(self) -> "RunView":
        if self.mode == "live":
            self._terminal = _EchoOff()  # a ^C echoed after the panel would shift it by a line
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
            with _signals_held():
                self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            with _signals_held():
                live.stop()  # erases the live panel (transient): no stale frames in the scrollback
                live.console.print(self._final_panel())  # one final frame, as of the last step
        if self._terminal is not None:
            terminal, self._terminal = self._terminal, None
            terminal.__exit__()
        elif self.mode == "plain" and self.start < self.step < self.total:
            self._print(self.status_line())  # stopped early: say where


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C (and SIGTERM, SIGHUP) while a frame is written, and deliver it right after: a signal
    that lands inside a large terminal write can lose the rest of that write, and the panel's record of
    what it drew no longer matches the screen (stale lines above the next frame). Holding costs nothing:
    a frame takes milliseconds."""
    held = {getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)}
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _EchoOff:
    """While the live panel is drawn, the terminal neither echoes what is typed nor flushes its output
    on Ctrl-C. Both would put the screen out of step with the panel's record of what it drew: an echoed
    ^C after the last line wraps onto a new one, and a flush (the default on an interrupt key) drops the
    rest of a frame being written. Every later redraw then starts a few lines off, leaving stale copies
    of the panel's top lines above it."""

    def __init__(self) -> None:
        self._fd: Optional[int] = None
        self._saved: Any = None

    def __enter__(self) -> "_EchoOff":
        try:
            import termios

            stream = sys.stdin
            if stream is None or not stream.isatty():
                return self
            fd = stream.fileno()
            self._saved = termios.tcgetattr(fd)
            quiet = termios.tcgetattr(fd)
            quiet[3] &= ~(termios.ECHO | getattr(termios, "ECHOCTL", 0))
            quiet[3] |= getattr(termios, "NOFLSH", 0)  # Ctrl-C must not drop a half-written frame
            termios.tcsetattr(fd, termios.TCSANOW, quiet)
            self._fd = fd
        except (ImportError, OSError, ValueError, AttributeError):  # no termios (Windows), no terminal
            self._fd = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            import termios

            try:
                termios.tcsetattr(self._fd, termios.TCSANOW, self._saved)
            except (OSError, ValueError):
                pass
            self._fd = None


def _json_number(value: Any) -> Any:
    """JSON has no NaN/inf: map them to null; numpy scalars to Python numbers."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
