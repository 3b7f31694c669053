"""`diffcli doctor` lists exactly the data `diffcli train` would read: its search is the datasets' own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli

from diffcli.data import load_dataset
from diffcli.errors import DiffcliError

STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_files(folder: Path, n: int = 4) -> Path:
    """The four IDX files of a tiny MNIST-shaped dataset in `folder`."""
    folder.mkdir(parents=True)
    images, labels = np.zeros((n, 28, 28), np.uint8), np.arange(n, dtype=np.uint8)
    for stem in STEMS:
        array = images if "images" in stem else labels
        magic = 2051 if array.ndim == 3 else 2049
        header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        (folder / stem).write_bytes(header + array.tobytes())
    return folder


def _train_reads(dataset: str, root: Path) -> bool:
    try:
        load_dataset(dataset, "train", root, download=False)
    except DiffcliError:
        return False
    return True


@pytest.mark.parametrize(
    "layout, listed",
    [
        ("MNIST/raw", {"mnist"}),  # torchvision's own layout
        ("FashionMNIST", {"fashion-mnist"}),
        ("", {"idx"}),  # the four files in the data folder itself: read as whichever dataset is asked for
        ("mnist/raw", set()),  # spellings train does not look for are not listed either
        ("fashion_mnist", set()),
    ],
)
def test_doctor_lists_what_train_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str, listed: set[str]
) -> None:
    root = tmp_path / "data"
    _idx_files(root / layout if layout else root)
    monkeypatch.setenv("DIFFCLI_DATA", str(root))
    r = run_cli(["doctor", "--json"])
    assert r.code == 0, r.stderr
    data = {d["source"]: d for d in r.json()["data"]}
    assert set(data["DIFFCLI_DATA"]["datasets"]) == listed
    readable = {name for name in ("mnist", "fashion-mnist") if _train_reads(name, root)}
    assert readable == ({"mnist", "fashion-mnist"} if listed == {"idx"} else listed)
    screen = run_cli(["doctor"]).stdout
    line = next(line for line in screen.splitlines() if line.startswith("data        DIFFCLI_DATA"))
    assert ("nothing found" in line) == (not listed), line
