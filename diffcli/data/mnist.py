"""MNIST and Fashion-MNIST from a data dir: a torchvision root (DIR/MNIST/raw, DIR/FashionMNIST/raw) or
a folder holding the four IDX files (plain or .gz, e.g. Debian's /usr/share/datasets/fashion-mnist).
Downloaded with torchvision only when the files are absent."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np

from diffcli.data.idx import find_file, read_split
from diffcli.errors import DiffcliError

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TORCHVISION = {"mnist": ("MNIST", "MNIST"), "fashion-mnist": ("FashionMNIST", "FashionMNIST")}


def locate(name: str, data_dir: Path) -> Optional[Path]:
    """The folder holding all four IDX files: data_dir itself or its torchvision raw/ folder."""
    folder_name = TORCHVISION[name][0]
    for folder in (data_dir, data_dir / folder_name / "raw", data_dir / folder_name):
        if folder.is_dir() and all(find_file(folder, f) for f in FILES):
            return folder
    return None


def download(name: str, data_dir: Path, notify: Callable[[str], None]) -> None:
    """Fetch the files into data_dir/<Name>/raw with torchvision; a clear error when that fails."""
    folder_name, class_name = TORCHVISION[name]
    notify(f"{name} not found in {data_dir}; downloading it with torchvision")
    try:
        import torchvision.datasets as tvd

        getattr(tvd, class_name)(root=str(data_dir), train=True, download=True)
        getattr(tvd, class_name)(root=str(data_dir), train=False, download=True)
    except Exception as exc:  # offline, proxy, disk: any failure ends in the same advice
        raise DiffcliError(
            f"{name} is not in {data_dir} and downloading it failed ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}): "
            f"missing {', '.join(f + '(.gz)' for f in FILES)}",
            f"put the four IDX files in {data_dir / folder_name / 'raw'} (or pass --data-dir to a folder holding them)",
        ) from None


def load_idx_dataset(name: str, split: str, data_dir: Path, download_missing: bool, notify: Callable[[str], None]) -> tuple[np.ndarray, np.ndarray, Path]:
    """Images [N, 1, 28, 28] uint8, labels [N] and the folder they came from."""
    folder = locate(name, data_dir)
    if folder is None:
        if not download_missing:
            folder_name = TORCHVISION[name][0]
            raise DiffcliError(
                f"{name} not found in {data_dir}: missing {', '.join(f + '(.gz)' for f in FILES)}",
                f"put the four IDX files in {data_dir / folder_name / 'raw'} (or pass --data-dir to a folder holding them)",
            )
        download(name, data_dir, notify)
        folder = locate(name, data_dir)
        if folder is None:
            raise DiffcliError(f"{name}: the download did not leave the IDX files in {data_dir}")
    images, labels = read_split(folder, "train" if split == "train" else "t10k")
    return images, labels.astype(np.int64), folder
