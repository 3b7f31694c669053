"""Which view shows a run's progress (diffcli/progress.py's protocol): the notebook bar inside Jupyter, the
terminal view (a live panel on a terminal, a plain line every few seconds elsewhere) otherwise.

The Python API picks here; the CLI picks its terminal mode itself from its flags (cli/common.py).
"""

from __future__ import annotations

from typing import Any

from diffcli.errors import UsageError
from diffcli.progress import ProgressFactory, SilentView, View, silent


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
