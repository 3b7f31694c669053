"""Dataset names, without loading anything (no torch): the spellings people use for the same dataset."""

from __future__ import annotations

DATASETS = ("mnist", "fashion-mnist", "glyphs")
MNIST_LABELS = [str(i) for i in range(10)]
FASHION_LABELS = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
ALIASES = {
    "fashion": "fashion-mnist",
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "mnist-fashion": "fashion-mnist",
}


def canonical_dataset(spec: str) -> str:
    """The dataset's own name for a spelling of it ("fashion" -> "fashion-mnist"); folders and unknown
    names are returned as given (the loader says what is wrong with them)."""
    if spec.startswith("folder:"):
        return spec
    key = spec.strip().lower()
    return ALIASES.get(key, key)
