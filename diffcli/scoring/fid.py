"""FID in the scoring classifier's feature space, with cached reference statistics and a real-data floor.

FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrt(sqrt(S1) S2 sqrt(S1))). The last trace uses the
symmetric form so both square roots are of symmetric PSD matrices (numpy's eigh, no scipy); it equals
tr(sqrtm(S1 S2)) of the usual formula. FID is biased upward at small n, so a score means little
without `real_floor`: the FID that n real images get against the same reference.

`reference_statistics` and `real_floor` measure from the data; `reference_for` and `floor_for` are what
`eval` calls: a shipped classifier's shipped statistics and floor table (shipped.py, no data read), else
those two.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import torch

from diffcli.errors import DiffcliError
from diffcli.scoring.inference import embed
from diffcli.scoring.scorer import Classifier
from diffcli.scoring.splits import canonical_spec, load_split

CACHE_FOLDER = "fid-reference"
CACHE_FORMAT = 1


def feature_statistics(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (float64, unbiased) of features [N, D]."""
    x = (
        features.detach().cpu().double().numpy()
        if isinstance(features, torch.Tensor)
        else np.asarray(features, dtype=np.float64)
    )
    if x.ndim != 2 or x.shape[0] < 2:
        raise DiffcliError(f"FID needs at least 2 images, got {x.shape[0] if x.ndim else 0}", "generate more samples")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric PSD matrix; tiny negative eigenvalues (rounding) count as 0."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (numpy only, float64)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"statistics do not match: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}"
        )
    root1 = _psd_sqrt(sigma1)
    inner = root1 @ sigma2 @ root1
    eigen = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    covmean_trace = float(np.sqrt(np.clip(eigen, 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * covmean_trace)
    return max(value, 0.0)  # a distance: rounding can leave -1e-12 for identical statistics


def fid_of_pixels(
    classifier: Classifier, pixels: torch.Tensor | np.ndarray, mu: np.ndarray, sigma: np.ndarray, batch_size: int = 256
) -> float:
    """FID of [0, 1] images [N, C, S, S] against reference statistics, in the classifier's feature space."""
    return frechet_distance(*feature_statistics(embed(classifier, pixels, batch_size)), mu, sigma)


def _cache_path(cache_dir: Path, classifier: Classifier, dataset_spec: str, split: str) -> Path:
    dataset_spec = canonical_spec(dataset_spec)
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", dataset_spec)[:60]
    # The classifier's weight fingerprint is in the key: a retrained classifier never reads stale statistics.
    key = hashlib.sha256(f"{dataset_spec}\0{split}\0{classifier.fingerprint}".encode()).hexdigest()[:16]
    return Path(cache_dir) / CACHE_FOLDER / f"{slug}-{split}-{key}.npz"


def _read_cache(path: Path, fingerprint: str) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Cached statistics, or None when absent or unreadable (a damaged cache is recomputed, not fatal)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["format"]) != CACHE_FORMAT or str(data["fingerprint"]) != fingerprint:
                return None
            return data["mu"].astype(np.float64), data["sigma"].astype(np.float64), int(data["n"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def reference_statistics(
    classifier: Classifier,
    dataset_spec: str,
    *,
    data_dir=None,
    split: str = "test",
    cache_dir: Path | None = None,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray, int]:
    """(mu, sigma, n) of a dataset split in the classifier's features, cached as .npz.

    The cache lives under `cache_dir` (default: the registry's cache folder) and is keyed by dataset,
    split and the classifier's weights. A folder dataset's "test" split is the 10 % its classifier held out.
    """
    from diffcli.io.atomic import atomic_write_bytes

    if cache_dir is None:
        from diffcli.models.registry import Registry

        cache_dir = Registry().cache_dir
    path = _cache_path(Path(cache_dir), classifier, dataset_spec, split)
    cached = _read_cache(path, classifier.fingerprint)
    if cached is not None:
        return cached
    data = load_split(dataset_spec, split, data_dir)
    mu, sigma = feature_statistics(embed(classifier, data.images, batch_size))
    buffer = io.BytesIO()
    np.savez(
        buffer,
        mu=mu,
        sigma=sigma,
        n=np.int64(len(data)),
        fingerprint=np.str_(classifier.fingerprint),
        format=np.int64(CACHE_FORMAT),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return mu, sigma, len(data)


def real_floor(
    classifier: Classifier,
    dataset_spec: str,
    n: int,
    *,
    data_dir=None,
    seed: int = 0,
    reference: tuple[np.ndarray, np.ndarray, int] | None = None,
    cache_dir: Path | None = None,
    batch_size: int = 256,
) -> float:
    """FID of n real *train* images (a seeded random subset) against the reference statistics.

    That is the score a perfect generator would get at the same n, since FID's small-sample bias
    grows as n shrinks. `reference` defaults to `reference_statistics` of the test split.
    """
    if reference is None:
        reference = reference_statistics(
            classifier, dataset_spec, data_dir=data_dir, cache_dir=cache_dir, batch_size=batch_size
        )
    data = load_split(dataset_spec, "train", data_dir, at_least=n)
    if n < 2 or n > len(data):
        raise DiffcliError(f"the real-data FID floor needs 2 to {len(data)} images, got {n}")
    index = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    mu, sigma, _ = reference
    return fid_of_pixels(classifier, data.images[index], mu, sigma, batch_size)


def _shipped(classifier: Classifier, dataset_spec: str):
    """The classifier's shipped reference when it describes this dataset, else None."""
    reference = classifier.reference
    return reference if reference is not None and reference.dataset == canonical_spec(dataset_spec) else None


def reference_for(
    classifier: Classifier, dataset_spec: str, *, data_dir=None
) -> tuple[np.ndarray, np.ndarray, int, str]:
    """(mu, sigma, n, source) of the test split: the shipped statistics of a shipped classifier
    (source "shipped"), else `reference_statistics` from the data (source "data")."""
    shipped = _shipped(classifier, dataset_spec)
    if shipped is not None:
        return shipped.mu, shipped.sigma, shipped.n, "shipped"
    return (*reference_statistics(classifier, dataset_spec, data_dir=data_dir), "data")


def floor_for(classifier: Classifier, dataset_spec: str, n: int, *, data_dir=None) -> tuple[float, str]:
    """(the real-vs-real floor at n, source): a shipped classifier's table value ("shipped") or its 1/n
    interpolation ("shipped-interpolated"), else `real_floor` measured from the data ("data")."""
    shipped = _shipped(classifier, dataset_spec)
    if shipped is not None:
        value, measured = shipped.floor_at(n)
        return value, "shipped" if measured else "shipped-interpolated"
    return real_floor(classifier, dataset_spec, n, data_dir=data_dir), "data"
