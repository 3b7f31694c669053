"""diffcli: learn, run and measure diffusion models from the command line, or from Python.

    import diffcli
    m = diffcli.load("mnist")
    m.sample(classes=[3, 7], n=4, seed=0)

The API (diffcli/api.py, docs/python.md) is imported on first use, so `import diffcli` and
`diffcli --help` stay fast (no torch until a model is needed).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = (
    "Model",
    "ImageSet",
    "load",
    "noise",
    "denoise",
    "train",
    "distill",
    "evaluate",
    "list_models",
    "show_model",
    "remove_model",
    "import_model",
    "export_model",
    "default_model",
    "set_default_model",
)
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from diffcli import api

        return getattr(api, name)
    raise AttributeError(f"module 'diffcli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))
