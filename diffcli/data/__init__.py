"""Datasets for training and evaluation, decoded once into uint8 tensors in memory.

`load_dataset("mnist" | "fashion-mnist" | "glyphs" | "folder:PATH", split, data_dir)` is the one entry
point; no per-item PIL work happens in any training loop. The datasets own their label names (names.py);
nothing here knows about models. torch is imported when a dataset is loaded, so the names stay cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from diffcli.data.names import DATASETS, FASHION_LABELS, MNIST_LABELS, canonical_dataset  # noqa: F401
from diffcli.errors import UsageError

if TYPE_CHECKING:
    import torch

GLYPH_COUNTS = {"train": 60000, "test": 10000}


@dataclass
class ImageDataset:
    """Images uint8 [N, C, H, W], labels int64 [N] (or None), label names and where they came from."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor | None
    label_names: list[str]
    source: str = ""
    split: str = "train"
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def describe(self) -> dict:
        """What a model config records about its training data."""
        return {
            "name": self.name,
            "count": len(self),
            "channels": int(self.images.shape[1]),
            "size": int(self.images.shape[2]),
            "label_names": list(self.label_names),
            "source": self.source,
        }


def default_data_dir() -> Path:
    """$DIFFCLI_DATA, else the `data/` folder beside the model registry (in the home folder)."""
    from diffcli.home import data_dir

    return data_dir()


def load_dataset(
    spec: str,
    split: str = "train",
    data_dir: str | Path | None = None,
    *,
    download: bool = False,
    limit: int | None = None,
    seed: int = 0,
    image_size: int | None = None,
    notify: Callable[[str], None] = lambda message: None,
) -> ImageDataset:
    """Load a dataset split ("train" or "test") into memory.

    spec: mnist, fashion-mnist, glyphs (synthetic, `limit` images, default 60000/10000) or folder:PATH
    (the whole folder is the train split; it has no test split). A missing MNIST or Fashion-MNIST is
    downloaded into the default data folder; into a `data_dir` the caller named only with `download`.
    """
    import numpy as np
    import torch

    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    spec = canonical_dataset(spec)
    if spec in ("mnist", "fashion-mnist"):
        from diffcli.data.mnist import load_idx_dataset

        folder = Path(data_dir).expanduser() if data_dir else default_data_dir()
        images, labels, found = load_idx_dataset(spec, split, folder, notify, fetch=download)
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        names = MNIST_LABELS if spec == "mnist" else FASHION_LABELS
        return ImageDataset(
            spec, torch.from_numpy(np.array(images)), torch.from_numpy(np.array(labels)), list(names), str(found), split
        )
    if spec == "glyphs":
        from diffcli.data.glyphs import generate_glyphs

        count = limit if limit is not None else GLYPH_COUNTS[split]
        images, labels = generate_glyphs(count, seed, split)
        return ImageDataset("glyphs", images, labels, list(MNIST_LABELS), f"synthetic (seed {seed})", split)
    if spec.startswith("folder:"):
        from diffcli.data.folder import load_folder
        from diffcli.errors import DiffcliError

        path = Path(spec[len("folder:") :]).expanduser().resolve()
        if split == "test":
            raise DiffcliError(f"folder dataset {path} has no test split")
        images, labels, names = load_folder(path, image_size, notify)
        if limit is not None:
            images = images[:limit]
            labels = labels[:limit] if labels is not None else None
        return ImageDataset(
            f"folder:{path}",
            torch.from_numpy(images),
            torch.from_numpy(labels) if labels is not None else None,
            names,
            str(path),
            split,
        )
    raise UsageError(f"unknown dataset {spec!r}", "choose mnist, fashion-mnist, glyphs or folder:PATH")
