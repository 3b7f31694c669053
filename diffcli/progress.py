"""The progress protocol: how a long run (training, generation, scoring) reports, whoever shows it.

A run never prints progress itself: it is handed a factory `progress(title, total, unit="step", **options)`
that returns a view (a context manager with `advance`, `wants_preview`, `preview`, `message`, `phase` and
`end_epoch`). The protocol sits at the bottom of the layers so that every layer can report to it; the
views that show something live in tui/ (the Rich panel / plain line, the notebook bar) and are picked at
the top (tui/views.py `auto` for the Python API, the CLI's own choice); `silent` is the default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

Rows = Sequence[tuple[str, Sequence["np.ndarray"]]]
"""Labelled rows of [C, H, W] float images in [0, 1], e.g. [("x_t", [img, img]), ("x0", [img, img])]."""


class View(Protocol):
    """What a run calls while it runs (tui/ implements it for the terminal and for notebooks)."""

    def __enter__(self) -> View: ...

    def __exit__(self, *exc: object) -> None: ...

    def advance(self, n: int = 1, **stats: float) -> None: ...

    def wants_preview(self) -> bool: ...

    def preview(self, rows: Rows, caption: str = "") -> None: ...

    def message(self, text: str) -> None: ...

    def phase(self, text: str | None) -> None: ...

    def end_epoch(self, epoch: int, **stats: Any) -> None: ...


ProgressFactory = Callable[..., View]
"""(title, total, unit="step", epochs=None, images_per_step=None, start=0, preview_every_s=...) -> View"""


class SilentView:
    """A view that shows nothing (and never asks for previews, so none are computed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> SilentView:
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

    def phase(self, text: str | None) -> None:
        return None

    def end_epoch(self, epoch: int, **stats: Any) -> None:
        return None


def silent(title: str = "", total: int = 1, **options: Any) -> SilentView:
    """The factory for no progress at all."""
    return SilentView()
