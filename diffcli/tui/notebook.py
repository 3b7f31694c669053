"""Progress in a Jupyter notebook: one HTML block (a progress bar, the status line, and the latest
preview as a small image) updated in place at most a few times a second.

It uses only IPython's own `display(..., display_id=True)` and `handle.update(...)`, so it needs no
widget extension. Same interface as tui/progress.RunView, so every job can report to it.
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Callable
from typing import Any

from diffcli.progress import Rows
from diffcli.tui.format import format_duration, format_value

REFRESH_PER_SECOND = 4


class NotebookView:
    """A progress bar with rate and ETA, the latest loss, and a preview image, for one run."""

    def __init__(
        self,
        title: str,
        total: int,
        unit: str = "step",
        epochs: int | None = None,
        images_per_step: int | None = None,
        start: int = 0,
        preview_every_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        **_ignored: Any,
    ) -> None:
        self.title, self.total, self.unit = title, max(1, int(total)), unit
        self.epochs, self.images_per_step = epochs, images_per_step
        self.start = self.step = int(start)
        self.preview_every_s = preview_every_s
        self.clock = clock
        self.started = clock()
        self.stats: dict[str, float] = {}
        self.lines: list[str] = []
        self._preview_png: str | None = None
        self._last_preview: float | None = None
        self._next_draw = 0.0
        self._handle: Any = None

    # ----- the interface jobs call -----
    def __enter__(self) -> NotebookView:
        from IPython.display import HTML, display  # type: ignore[import-not-found]

        self._handle = display(HTML(self.render()), display_id=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._draw()

    def advance(self, n: int = 1, **stats: float) -> None:
        self.step += n
        self.stats.update(stats)
        now = self.clock()
        if now >= self._next_draw or self.step >= self.total:
            self._next_draw = now + 1.0 / REFRESH_PER_SECOND
            self._draw()

    def wants_preview(self) -> bool:
        return self._last_preview is None or self.clock() - self._last_preview >= self.preview_every_s

    def preview(self, rows: Rows, caption: str = "") -> None:
        from diffcli.io.figures import figure
        from diffcli.io.png import png_bytes

        self._last_preview = self.clock()
        rows = [(label, list(images)) for label, images in rows if len(images)]
        if not rows:
            return
        image = figure(
            [images for _, images in rows], row_labels=[label for label, _ in rows], title=caption or None, scale=2
        )
        self._preview_png = base64.b64encode(png_bytes(image)).decode("ascii")

    def message(self, text: str) -> None:
        self.lines.append(text)
        self._draw()

    def phase(self, text: str | None) -> None:
        if text is None:
            self.stats.pop("phase", None)
        else:
            self.stats["phase"] = text  # type: ignore[assignment]
        self._draw()

    def end_epoch(self, epoch: int, **stats: Any) -> None:
        parts = [f"epoch {epoch}" + (f"/{self.epochs}" if self.epochs else "")]
        parts += [
            f"{k.replace('_', ' ')} {format_value(v) if isinstance(v, float) else v}"
            for k, v in stats.items()
            if v is not None
        ]
        self.message("  ".join(parts))

    # ----- drawing -----
    def render(self) -> str:
        """The HTML block: title, bar, status, messages, preview."""
        elapsed = self.clock() - self.started
        done = self.step - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.step) / rate if rate > 0 else None
        status = [f"{self.unit} {self.step}/{self.total}"]
        if "epoch" in self.stats and self.epochs:
            status.insert(0, f"epoch {int(self.stats['epoch'])}/{self.epochs}")
        if "loss" in self.stats:
            status.append(f"loss {format_value(float(self.stats['loss']))}")
        if "phase" in self.stats:
            status.append(f"({self.stats['phase']})")
        speed = rate * self.images_per_step if self.images_per_step else rate
        status.append(f"{speed:.1f} {'img' if self.images_per_step else self.unit}/s")
        status.append(f"{format_duration(elapsed)} elapsed, ETA {format_duration(eta) if eta is not None else '-'}")
        parts = [
            f"<div><b>{html.escape(self.title)}</b></div>",
            f'<progress value="{self.step}" max="{self.total}" style="width: 60%"></progress>',
            f"<div><code>{html.escape('  '.join(status))}</code></div>",
        ]
        parts += [f"<div><code>{html.escape(line)}</code></div>" for line in self.lines[-10:]]
        if self._preview_png:
            parts.append(f'<img src="data:image/png;base64,{self._preview_png}"/>')
        return "\n".join(parts)

    def _draw(self) -> None:
        if self._handle is None:
            return
        from IPython.display import HTML  # type: ignore[import-not-found]

        self._handle.update(HTML(self.render()))
