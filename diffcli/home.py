"""Where diffcli keeps its files: the home folder (the model registry's root) and the default data folder.

At the bottom of the layers so that the registry (models/), the datasets (data/) and `doctor` agree on
both without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path


def home_dir() -> Path:
    """$DIFFCLI_HOME, else the platform's user data folder for diffcli."""
    env = os.environ.get("DIFFCLI_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs  # only when no DIFFCLI_HOME is set: it is not needed otherwise

    return Path(platformdirs.user_data_dir("diffcli", appauthor=False))


def data_dir(home: Path | None = None) -> Path:
    """Where datasets are looked for and downloaded by default: $DIFFCLI_DATA, else `home_data_dir`."""
    env = os.environ.get("DIFFCLI_DATA")
    if env:
        return Path(env).expanduser()
    return home_data_dir(home)


def home_data_dir(home: Path | None = None) -> Path:
    """`data/` in the home folder (`home`, default `home_dir()`), whether or not $DIFFCLI_DATA is set."""
    return (home if home is not None else home_dir()) / "data"
