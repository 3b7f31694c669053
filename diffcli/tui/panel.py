"""The live panel of a run on a terminal: status, progress bar, loss sparkline and a half-block preview
of the reverse chain. Every part has a fixed number of lines, so the panel never jumps as it is redrawn;
the preview is rendered to segments once per picture, not once per frame."""

from __future__ import annotations

import math
from typing import Any, Protocol

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.panel import Panel
from rich.segment import Segment
from rich.text import Text

from diffcli.progress import Rows
from diffcli.tui.format import format_duration, format_value
from diffcli.tui.halfblock import halfblock_row
from diffcli.tui.losscurve import SPARK_WIDTH, LossHistory, sparkline

PANEL_MAX_WIDTH = 110
PREVIEW_MAX_LINES = 24  # preview area height cap (lines), caption included
FIXED_LINES = 7  # panel borders (2) + status, bar, loss, spacer (4) + one spare line for the cursor


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


class Shown(Protocol):
    """What the panel shows of a run (tui/progress.py's RunView)."""

    title: str
    step: int
    total: int
    stats: dict[str, float]
    loss: LossHistory
    latest_preview: tuple[Rows, str] | None  # (rows, caption)

    def position_parts(self) -> list[str]: ...

    def rate_text(self) -> str: ...

    def elapsed(self) -> float: ...

    def eta(self) -> float | None: ...


class LivePanel:
    """Draws a RunView's state as a Rich panel (`frame` while it runs, `final` for the scrollback)."""

    def __init__(self, view: Shown) -> None:
        self.view = view
        self._area = 0  # preview area height in lines (see frame)
        self._cache: tuple[Any, tuple[int, int, bool], list[RenderedLine]] | None = None

    def frame(self, term: Console) -> Panel:
        """The whole panel as wide as `term` allows; its preview area grows to the tallest preview seen
        and never shrinks."""
        width = max(40, min(term.width, PANEL_MAX_WIDTH))
        inner = width - 4  # border + padding on each side
        lines: list[Any] = [self._status_text(), self._bar_text(inner), self._loss_text(inner)]
        limit = max(4, min(PREVIEW_MAX_LINES, term.size.height - FIXED_LINES))
        preview: list[Any] = self._preview_lines(term, inner, limit)
        self._area = min(limit, max(self._area, len(preview)))
        if self._area:
            lines.append(Text(""))
            lines.extend(preview[: self._area] + [Text("") for _ in range(self._area - len(preview))])
        return self._box(lines, width)

    def final(self, term: Console) -> Panel:
        """The frame left in the scrollback: status, bar and loss, without the preview (taken a few steps
        before the end, its picture and its t would disagree with the last step; the result is in the
        output file)."""
        width = max(40, min(term.width, PANEL_MAX_WIDTH))
        lines = [self._status_text(), self._bar_text(width - 4), self._loss_text(width - 4)]
        return self._box([line for line in lines if line.plain], width)

    def _box(self, lines: list[Any], width: int) -> Panel:
        title = Text(self.view.title, style="bold")
        return Panel(Group(*lines), title=title, title_align="left", width=width, border_style="blue")

    def _status_text(self) -> Text:
        view = self.view
        parts = view.position_parts()
        if "phase" in view.stats:
            parts.append(f"({view.stats['phase']})")
        if "t" in view.stats:
            parts.append(f"t={int(view.stats['t'])}")
        if "lr" in view.stats:
            parts.append(f"lr {view.stats['lr']:.2g}")
        return Text("  ".join(parts), no_wrap=True, overflow="ellipsis")

    def _bar_text(self, inner: int) -> Text:
        view = self.view
        eta = view.eta()
        left = format_duration(eta) if eta is not None else "-"
        tail = f"  {view.rate_text()}  {format_duration(view.elapsed())} elapsed  ETA {left}"
        tail = tail.ljust(44)  # fixed width, so the bar does not change length as numbers change
        bar_width = max(10, inner - len(tail))
        done = min(bar_width, int(bar_width * view.step / view.total))
        text = Text(no_wrap=True, overflow="crop")
        text.append("━" * done, style="cyan")
        text.append("━" * (bar_width - done), style="grey37")
        text.append(tail)
        return text

    def _loss_text(self, inner: int) -> Text:
        loss = self.view.loss
        if not loss.count:
            return Text("")
        last, best = loss.last, loss.best
        numbers = f"  {format_value(last)} (min {format_value(best)})" if math.isfinite(best) else f"  {last}"
        spark = sparkline(loss.values(), max(8, min(SPARK_WIDTH, inner - 5 - len(numbers))))
        text = Text("loss ", no_wrap=True, overflow="crop")
        text.append(spark, style="green")
        text.append(numbers)
        return text

    def _preview_lines(self, term: Console, inner: int, area: int) -> list[RenderedLine]:
        """At most `area` lines: each row's images shrunk to fit, its label beside it, then the caption.
        Rendered to segments once per preview: the panel is redrawn 4 times a second, the preview is not."""
        current = self.view.latest_preview
        color = not term.no_color
        key = (inner, area, color)
        cache = self._cache
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
                rendered = halfblock_row(images, gap=gap, max_width=tile, max_height=2 * per_row, color=color)
                split = rendered.split("\n")
                middle = (len(split) - 1) // 2
                for i, line in enumerate(split[:per_row]):
                    prefix = Text((label if i == middle else "").ljust(label_width), style="bold")
                    lines.append(Text.assemble(prefix, line, no_wrap=True, overflow="crop"))
            if caption:
                lines.append(Text(caption, style="dim", no_wrap=True, overflow="ellipsis"))
        rendered_lines = [RenderedLine(list(line.render(term)), inner) for line in lines[:area]]
        self._cache = (current, key, rendered_lines)  # holds `current`, so identity stays meaningful
        return rendered_lines
