"""`folder:PATH`: a folder of images, one subfolder per class (or images directly in it, unlabelled).

Decoded once through diffcli's validated image reader, centre-cropped and resized to one square size
(the most common one unless given), grey when every image is grey, else RGB.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from diffcli.errors import DiffcliError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)


def load_folder(
    path: Path, image_size: int | None, notify: Callable[[str], None]
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """uint8 images [N, C, S, S], labels [N] (None without class subfolders) and class names."""
    from diffcli.io.images import open_image, resize_square, to_pixels

    if not path.is_dir():
        raise DiffcliError(f"folder dataset {path} does not exist or is not a folder")
    classes = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes:
        files = [(f, i) for i, c in enumerate(classes) for f in _images_in(c)]
        names = [c.name for c in classes]
    else:
        files = [(f, -1) for f in _images_in(path)]
        names = []
    if not files:
        raise DiffcliError(f"no images in {path}", "put PNG/JPEG/WebP files in it, one subfolder per class")
    decoded = []
    for file, label in files:
        image, name = open_image(str(file))
        decoded.append((image, name, label))
    sizes = Counter(min(img.size) for img, _, _ in decoded)
    size = image_size or sizes.most_common(1)[0][0]
    grey = all(img.mode in ("L", "1", "I;16", "I", "LA") for img, _, _ in decoded)
    channels = 1 if grey else 3
    resized = 0
    arrays = []
    for image, name, _ in decoded:
        pixels = to_pixels(image, channels, name)
        if pixels.shape[1:] != (size, size):
            resized += 1
            pixels = resize_square(pixels, size, name)
        arrays.append(np.round(pixels * 255).astype(np.uint8))
    if resized:
        notify(f"resized {resized} of {len(arrays)} images in {path} to {size}x{size}")
    labels = np.array([label for _, _, label in decoded], dtype=np.int64) if classes else None
    return np.stack(arrays), labels, names
