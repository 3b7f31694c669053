"""Test isolation: every test gets its own empty registry, data dir and working folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# Two xdist workers on a two-core machine: one compute thread each. More threads than cores makes
# torch's OpenMP workers spin against each other and turns seconds into minutes.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = Path(os.environ.get("DIFFCLI_TEST_MNIST", REPO.parent / "shared" / "data"))
FASHION_DIR = Path(os.environ.get("DIFFCLI_TEST_FASHION", "/usr/share/datasets/fashion-mnist"))


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty registry ($DIFFCLI_HOME), no data dir override, no colour, cwd in a temp folder."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DIFFCLI_HOME", str(home))
    monkeypatch.delenv("DIFFCLI_DATA", raising=False)
    monkeypatch.delenv("DIFFCLI_MODEL", raising=False)
    monkeypatch.delenv("DIFFCLI_DEVICE", raising=False)
    monkeypatch.delenv("DIFFCLI_DEBUG", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    from diffcli import console

    console.configure(quiet=False, json_output=False, debug=False)
    return home


@pytest.fixture
def home(isolated: Path) -> Path:
    return isolated


@pytest.fixture
def no_builtin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Hide the packaged models, as on a registry before the embedded model exists."""
    from diffcli.models import registry

    empty = tmp_path / "no-builtin"
    empty.mkdir()
    monkeypatch.setattr(registry, "BUILTIN_DIR", empty)


def mnist_dir() -> Path:
    if not (SHARED_MNIST / "MNIST" / "raw").is_dir():
        pytest.skip(
            f"MNIST not found at {SHARED_MNIST}/MNIST/raw (set DIFFCLI_TEST_MNIST to a torchvision root holding it)"
        )
    return SHARED_MNIST


def fashion_dir() -> Path:
    if not FASHION_DIR.is_dir():
        pytest.skip(
            f"Fashion-MNIST not found at {FASHION_DIR} (apt-get install "
            "dataset-fashion-mnist, or set DIFFCLI_TEST_FASHION)"
        )
    return FASHION_DIR
