"""Reading the IDX files MNIST and Fashion-MNIST ship as (plain or gzipped), with numpy alone.

Format: a big-endian magic number (2051 for images, 2049 for labels), the dimensions, then uint8 data.
Parsing it ourselves avoids importing torchvision (3 s) just to read 50 MB of bytes.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from diffcli.errors import DiffcliError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


def find_file(folder: Path, stem: str) -> Path | None:
    """`stem` or `stem.gz` in folder (torchvision sometimes also leaves `stem` beside the .gz)."""
    for name in (stem, stem + ".gz"):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path) -> np.ndarray:
    """An IDX file as a uint8 array: [N, H, W] for images, [N] for labels."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise DiffcliError(f"cannot read {path}: {exc}", "re-download the dataset files") from None
    if len(raw) < 8:
        raise DiffcliError(f"{path} is too short to be an IDX file", "re-download the dataset files")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (IMAGES_MAGIC, LABELS_MAGIC):
        raise DiffcliError(f"{path} is not an IDX file (magic number {magic})", "re-download the dataset files")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims))
    if len(raw) < expected:
        raise DiffcliError(f"{path} is truncated ({len(raw)} of {expected} bytes)", "re-download the dataset files")
    return np.frombuffer(raw, dtype=np.uint8, count=int(np.prod(dims)), offset=header).reshape(dims)


def read_split(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, 1, H, W] and labels [N] of the `train` or `t10k` files in folder."""
    images_path = find_file(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = find_file(folder, f"{prefix}-labels-idx1-ubyte")
    assert images_path is not None and labels_path is not None
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise DiffcliError(f"{images_path} / {labels_path} do not hold images and labels")
    if len(images) != len(labels):
        raise DiffcliError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    return images[:, None], labels
