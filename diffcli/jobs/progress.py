"""The progress names jobs have imported from here: the protocol now lives at the bottom of the layers
(diffcli/progress.py) and the choice of view in tui/views.py. New code imports from those two; this module
only re-exports them so that existing imports keep working."""

from __future__ import annotations

from diffcli.progress import ProgressFactory, Rows, SilentView, View, silent
from diffcli.tui.views import auto, in_notebook, resolve

__all__ = ["ProgressFactory", "Rows", "SilentView", "View", "auto", "in_notebook", "resolve", "silent"]
