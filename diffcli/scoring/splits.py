"""The data a scoring classifier (and FID) reads: a dataset spec in canonical form and its train or test
split. A folder dataset has no test split, so a seeded share of it is held out as one; synthetic glyphs are
drawn in fixed numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from diffcli.errors import DiffcliError

Notify = Callable[[str], None]

HOLDOUT = 0.1  # share of a folder dataset kept back as its test split (folders have none)
GLYPH_LIMITS = {"train": 20000, "test": 2000}  # synthetic: enough to learn, quick to draw


def _quiet(message: str) -> None:
    pass


def canonical_spec(dataset_spec: str) -> str:
    """`folder:` specs with an absolute path, so `folder:cats` and `folder:./cats` share one classifier."""
    if dataset_spec.startswith("folder:"):
        return "folder:" + str(Path(dataset_spec[len("folder:") :]).expanduser().resolve())
    return dataset_spec


def split_limit(dataset_spec: str, split: str) -> int | None:
    """How many images scoring draws from a split: all of a real dataset, a fixed number of synthetic glyphs."""
    return GLYPH_LIMITS[split] if dataset_spec == "glyphs" else None


def check_labelled(data, role: str) -> None:
    """Refuse a dataset a classifier cannot learn from: no class labels (or one class), or images that are
    not square [N, C, S, S]. `role` (train, test) names the split in the message."""
    if data.labels is None or len(data.label_names) < 2:
        raise DiffcliError(
            f"dataset {data.name!r} has no class labels, so no classifier can be trained on it",
            "use a dataset with classes (mnist, fashion-mnist, glyphs, or a folder of class subfolders)",
        )
    if data.images.ndim != 4 or data.images.shape[2] != data.images.shape[3]:
        raise DiffcliError(
            f"dataset {data.name!r} ({role}) must hold square images [N, C, S, S], got {list(data.images.shape)}"
        )


def load_split(
    dataset_spec: str, split: str, data_dir=None, *, at_least: int = 0, download: bool = False, notify: Notify = _quiet
):
    """The split the classifier (and FID) use; a folder dataset has no test split, so a seeded 10 % of it is one.

    `at_least` raises the number of synthetic glyphs drawn (real datasets always load whole). `download`:
    as `load_dataset`'s (a missing dataset is fetched into a `data_dir` the caller named).
    """
    from diffcli.data import ImageDataset, load_dataset

    if not dataset_spec.startswith("folder:"):
        limit = split_limit(dataset_spec, split)
        at = max(limit, at_least) if limit else None
        return load_dataset(dataset_spec, split, data_dir, download=download, limit=at, notify=notify)
    whole = load_dataset(dataset_spec, "train", data_dir, notify=notify)
    check_labelled(whole, "train")
    cut = max(1, int(round(HOLDOUT * len(whole))))
    if len(whole) - cut < 2:
        raise DiffcliError(f"dataset {dataset_spec!r} has only {len(whole)} images: too few to train a classifier")
    order = torch.randperm(len(whole), generator=torch.Generator().manual_seed(0))
    index = order[:cut] if split == "test" else order[cut:]
    return ImageDataset(whole.name, whole.images[index], whole.labels[index], whole.label_names, whole.source, split)
