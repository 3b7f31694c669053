"""The scoring classifiers and FID reference statistics shipped inside the package, so that `diffcli eval`
grades the embedded models on a fresh install with no network and no dataset on disk (the way clean-fid
ships precomputed statistics).

`assets/` holds, for each dataset in `provenance.json` (mnist, fashion-mnist):
- `<dataset>-classifier.safetensors`: the scoring classifier, trained from the real data by the one recipe
  in classifier_training.py (`train_for_dataset`, seed 0), i.e. what `eval --retrain-classifier` would
  train;
- `<dataset>-reference.safetensors`: `mu` and `sigma` (float64), the mean and covariance of the real test
  split's features, and the real-vs-real FID floor table `floor_n` -> `floor`: for each n, the FID of the
  first n images of the train split in the seeded order `fid.real_floor` uses (seed 0) against `mu`,
  `sigma`, i.e. exactly what `real_floor` computes from the data;
- `provenance.json`: how they were made (command, the data files' sha256, torch version, date, test
  accuracy, the floor rule's measured error) and each asset's sha256, checked on every load, so a damaged
  install is a one-line error instead of wrong figures.

The floor table has n = 2..9 and every multiple of 10 up to the train split's size, so every n that eval
uses for a 10-class dataset (samples per class x 10) is a measured value. For another n the floor is
interpolated linearly in 1/n between the two neighbouring table entries (FID's small-sample bias grows
close to linearly in 1/n); provenance.json records how far that rule is from the measured floor. Outside
the table there is no floor, as with the data (it needs 2 to len(train) images).

scripts/build_scorers.py (`make scorers`) rebuilds everything from the data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from diffcli.errors import DiffcliError
from diffcli.models.weights import weights_fingerprint
from diffcli.scoring.network import ScoringCNN
from diffcli.scoring.scorer import Classifier, ShippedReference

ASSETS = Path(__file__).with_name("assets")
PROVENANCE = "provenance.json"
FORMAT = 1
REINSTALL_HINT = (
    "reinstall diffcli (`pip install --force-reinstall diffcli`), "
    "or train a classifier from the data with `diffcli eval --retrain-classifier --data-dir DIR`"
)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def provenance(assets: Path | None = None) -> dict | None:
    """The parsed provenance.json, or None when the package ships no scoring assets at all."""
    path = (assets or ASSETS) / PROVENANCE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if int(record["format"]) != FORMAT or not isinstance(record["datasets"], dict):
            raise ValueError(f"format {record.get('format')!r}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DiffcliError(
            f"the scoring data shipped with diffcli is damaged: {path} cannot be read ({exc})", REINSTALL_HINT
        ) from None
    return record


def available(dataset_spec: str, assets: Path | None = None) -> bool:
    """Whether a classifier and FID reference ship for this dataset."""
    record = provenance(assets)
    return record is not None and dataset_spec in record["datasets"]


def _verified(assets: Path, dataset_spec: str, block: dict) -> bytes:
    """An asset's bytes, after checking them against the sha256 that provenance.json records."""
    path = assets / str(block.get("file", ""))
    if not path.is_file():
        raise DiffcliError(
            f"the {dataset_spec} scoring data shipped with diffcli is damaged: {path} is missing", REINSTALL_HINT
        )
    data = path.read_bytes()
    if sha256_of(data) != block.get("sha256"):
        raise DiffcliError(
            (
                f"the {dataset_spec} scoring data shipped with diffcli is damaged: "
                f"{path} does not match the sha256 in {PROVENANCE}"
            ),
            REINSTALL_HINT,
        )
    return data


def _tensors(data: bytes, path_label: str, dataset_spec: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load

    try:
        return load(data)
    except Exception as exc:  # a file that matches its checksum but was written wrong: still a broken install
        raise DiffcliError(
            (
                f"the {dataset_spec} scoring data shipped with diffcli is damaged: "
                f"{path_label} ({str(exc).splitlines()[0]})"
            ),
            REINSTALL_HINT,
        ) from None


def load_reference(dataset_spec: str, assets: Path | None = None) -> ShippedReference:
    """The shipped FID reference of a dataset (checksum verified)."""
    assets = assets or ASSETS
    block = _entry(dataset_spec, assets)["reference"]
    arrays = _tensors(_verified(assets, dataset_spec, block), block["file"], dataset_spec)
    try:
        return ShippedReference(
            dataset_spec,
            arrays["mu"],
            arrays["sigma"],
            int(block["n"]),
            arrays["floor_n"].astype(np.int64),
            arrays["floor"],
        )
    except KeyError as exc:
        raise DiffcliError(
            f"the {dataset_spec} scoring data shipped with diffcli is damaged: {block['file']} lacks {exc}",
            REINSTALL_HINT,
        ) from None


def _entry(dataset_spec: str, assets: Path) -> dict:
    record = provenance(assets)
    if record is None or dataset_spec not in record["datasets"]:
        raise DiffcliError(f"no scoring classifier ships for dataset {dataset_spec!r}")
    return record["datasets"][dataset_spec]


def load_classifier(dataset_spec: str, device: str | torch.device = "cpu", assets: Path | None = None):
    """The shipped scoring classifier of a dataset as a `Classifier` (weights checksum verified, loaded as
    float32) carrying its shipped FID reference."""
    from diffcli.models.weights import load_into

    assets = assets or ASSETS
    entry = _entry(dataset_spec, assets)
    block = entry["classifier"]
    state = {
        k: torch.from_numpy(v.copy())
        for k, v in _tensors(_verified(assets, dataset_spec, block), block["file"], dataset_spec).items()
    }
    arch = block["architecture"]
    module = ScoringCNN(
        int(block["channels"]),
        int(block["size"]),
        len(block["labels"]),
        width=int(arch["width"]),
        feature_dim=int(arch["feature_dim"]),
    )
    load_into(module, state, assets / block["file"], f"the shipped {dataset_spec} classifier")
    module.eval().to(torch.device(device) if not isinstance(device, torch.device) else device)
    name = f"{dataset_spec}-classifier"
    return Classifier(
        module,
        name,
        dataset_spec,
        list(block["labels"]),
        float(block["test_accuracy"]),
        module.channels,
        module.size,
        weights_fingerprint(module),
        reference=load_reference(dataset_spec, assets),
    )
