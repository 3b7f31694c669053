"""How a job reports progress, whoever shows it.

A job never prints progress itself: it is handed a factory `progress(title, total, unit="step", **options)`
that returns a view (a context manager with `advance`, `wants_preview`, `preview`, `message` and
`end_epoch`). The CLI passes the Rich panel / plain-line view of tui/progress.py; the Python API passes
`auto` (a bar in Jupyter, the terminal view elsewhere); tests and batch callers pass `silent`.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Protocol, Sequence

import numpy as np

from diffcli.errors import UsageError

Rows = Sequence[tuple[str, Sequence[np.ndarray]]]


class View(Protocol):
    """What a job calls while it runs."""

    def __enter__(self) -> "View": ...

    def __exit__(self, *exc: object) -> None: ...

    def advance(self, n: int = 1, **stats: float) -> None: ...

    def wants_preview(self) -> bool: ...

    def preview(self, rows: Rows, caption: str = "") -> None: ...

    def message(self, text: str) -> None: ...

    def phase(self, text: Optional[str]) -> None: ...

    def end_epoch(self, epoch: int, **stats: Any) -> None: ...


ProgressFactory = Callable[..., View]
"""(title, total, unit="step", epochs=None, images_per_step=None, start=0, preview_every_s=...) -> View"""


class SilentView:
    """A view that shows nothing (and never asks for previews, so none are computed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> "SilentView":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def advance(self, n: int = 1, **stats: float) -> None:
        return None

    def wants_preview(self) -> bool:
        return False

    def preview(self, rows: Rows, caption: str = "") -> None:
        return None

    def message(self, text: str) -> None:
        return None

    def phase(self, text: Optional[str]) -> None:
        return None

    def end_epoch(self, epoch: int, **stats: Any) -> None:
        return None


def silent(title: str = "", total: int = 1, **options: Any) -> SilentView:
    """The factory for no progress at all."""
    return SilentView()


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where a terminal panel cannot redraw)."""
    try:
        from IPython import get_ipython  # type: ignore[import-not-found]
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def auto(title: str, total: int, **options: Any) -> View:
    """The Python API's default: a progress bar in Jupyter, the terminal view (a live panel on a
    terminal, a plain line every few seconds elsewhere) otherwise; nothing with console quiet."""
    from diffcli import console

    if console.settings.quiet:
        return SilentView()
    if in_notebook():
        from diffcli.tui.notebook import NotebookView

        return NotebookView(title, total, **options)
    from diffcli.tui.progress import RunView, choose_mode

    return RunView(title, total, mode=choose_mode(False, False), **options)


def resolve(progress: ProgressFactory | bool | None) -> ProgressFactory:
    """The Python API's `progress=` argument: True/None -> auto, False -> silent, or a factory."""
    if progress is None or progress is True:
        return auto
    if progress is False:
        return silent
    if not callable(progress):
        raise UsageError(f"`progress` must be True, False or a progress factory, got {progress!r}")
    return progress
