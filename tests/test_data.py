"""Datasets: synthetic glyphs, IDX files (plain, gzipped, torchvision layout), image folders, and the real
MNIST / Fashion-MNIST files where the machine has them (skipped with the reason where it does not)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import fashion_dir, mnist_dir
from helpers import make_tiny_model, run_cli
from PIL import Image

from diffcli.data import load_dataset
from diffcli.data.names import FASHION_LABELS
from diffcli.errors import DiffcliError


def _write_idx(folder: Path, stem: str, array: np.ndarray, gz: bool) -> None:
    magic = 2051 if array.ndim == 3 else 2049
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    (folder / (stem + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)


def _fake_idx_folder(folder: Path, gz: bool, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (n, 28, 28)), np.arange(n) % 10
    for split in ("train", "t10k"):
        _write_idx(folder, f"{split}-images-idx3-ubyte", images, gz)
        _write_idx(folder, f"{split}-labels-idx1-ubyte", labels, gz)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_plain_or_gzipped_in_a_flat_folder_or_a_torchvision_root(tmp_path, gz):
    images, labels = _fake_idx_folder(tmp_path / "flat", gz)
    data = load_dataset("fashion-mnist", "train", tmp_path / "flat", download=False)
    assert data.images.shape == (12, 1, 28, 28) and data.images.dtype == torch.uint8
    assert np.array_equal(data.images[:, 0].numpy(), images) and np.array_equal(data.labels.numpy(), labels)
    assert data.label_names == FASHION_LABELS
    _fake_idx_folder(tmp_path / "root" / "MNIST" / "raw", gz)
    assert len(load_dataset("mnist", "test", tmp_path / "root", download=False)) == 12


def test_a_truncated_idx_file_is_a_clear_error(tmp_path):
    _fake_idx_folder(tmp_path / "d", gz=False)
    path = tmp_path / "d" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DiffcliError, match="train-images-idx3-ubyte"):
        load_dataset("mnist", "train", tmp_path / "d", download=False)


@pytest.fixture
def downloads(monkeypatch) -> list[Path]:
    """The dataset downloader replaced by one that records the folder it was asked to fill and fills it as
    torchvision would (NAME/raw/ with the four IDX files): the network is never reached."""
    from diffcli.data import mnist

    asked: list[Path] = []

    def fake(name: str, data_dir: Path, notify) -> None:
        asked.append(Path(data_dir))
        _fake_idx_folder(Path(data_dir) / mnist.TORCHVISION[name][0] / "raw", gz=True)

    monkeypatch.setattr(mnist, "download", fake)
    return asked


def test_a_named_data_dir_is_downloaded_into_only_when_asked(tmp_path, downloads):
    named = tmp_path / "mine"
    named.mkdir()
    with pytest.raises(DiffcliError) as info:
        load_dataset("mnist", "train", named)
    assert downloads == [] and not (named / "MNIST").exists()
    assert f"add `download` to download mnist into {named}" in info.value.one_line()
    data = load_dataset("mnist", "train", named, download=True)
    assert downloads == [named] and len(data) == 12 and data.source == str(named / "MNIST" / "raw")
    load_dataset("mnist", "test", named, download=True)  # now it is there: read, not fetched again
    assert downloads == [named]


def test_the_default_data_folder_is_filled_without_asking(tmp_path, monkeypatch, downloads):
    monkeypatch.setenv("DIFFCLI_DATA", str(tmp_path / "default"))
    assert len(load_dataset("fashion-mnist", "test")) == 12 and downloads == [tmp_path / "default"]


def test_train_download_fetches_into_the_given_data_dir(home, tmp_path, downloads):
    named = tmp_path / "mine"
    tiny = ["--width", "8", "--batch-size", "4", "--epochs", "1", "--max-steps", "1", "--device", "cpu", "-q"]
    r = run_cli(["train", "--dataset", "mnist", "--data-dir", str(named), "--name", "m", *tiny])
    assert r.code == 1 and downloads == [] and "Traceback" not in r.stderr
    assert f"add --download to download mnist into {named}, or leave --data-dir out" in r.stderr
    r = run_cli(["train", "--dataset", "mnist", "--data-dir", str(named), "--download", "--name", "m", *tiny])
    assert r.code == 0, r.stderr
    assert downloads == [named]
    recorded = (home / "models" / "m" / "config.json").read_text()
    assert '"download"' not in recorded  # how the data arrived is not part of the recipe
    assert json.loads(recorded)["dataset"]["source"] == str(named / "MNIST" / "raw")


def test_eval_download_fetches_what_retraining_the_scorer_needs(home, tmp_path, downloads, monkeypatch):
    from diffcli.scoring import classifier_training

    trained = []

    def stub(train, test, **kwargs):
        trained.append(len(train))
        raise DiffcliError("stop here: the data was read")

    monkeypatch.setattr(classifier_training, "train_classifier", stub)
    folder = make_tiny_model(home, "m", timesteps=20, size=28)
    config = json.loads((folder / "config.json").read_text())
    config["dataset"] = {"name": "mnist"}
    (folder / "config.json").write_text(json.dumps(config))
    named = tmp_path / "mine"
    args = ["eval", "--model", "m", "--device", "cpu", "--data-dir", str(named), "--retrain-classifier"]
    r = run_cli(args)
    assert r.code == 1 and downloads == [] and f"add --download to download mnist into {named}" in r.stderr
    r = run_cli([*args, "--download"])
    assert "stop here: the data was read" in r.stderr and downloads == [named] and trained == [12]


def test_glyphs_are_deterministic_labelled_mnist_shaped_and_split_apart():
    a, b = load_dataset("glyphs", "train", limit=300, seed=3), load_dataset("glyphs", "train", limit=300, seed=3)
    test = load_dataset("glyphs", "test", limit=300, seed=3)
    assert a.images.shape == (300, 1, 28, 28) and torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, test.images)
    assert set(a.labels.tolist()) == set(range(10))
    ink = a.images.float().mean(dim=(1, 2, 3))
    assert (ink > 5).all() and (ink < 120).all()  # white strokes on black, like MNIST
    border = torch.cat([a.images[:, :, 0], a.images[:, :, -1]], dim=-1).float().mean()
    assert border < 10  # digits sit inside the frame


def test_folder_dataset_classes_are_its_subfolders(tmp_path):
    for name, value in (("dark", 30), ("light", 220)):
        (tmp_path / "pics" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (20, 20), value + i).save(tmp_path / "pics" / name / f"{i}.png")
    data = load_dataset(f"folder:{tmp_path / 'pics'}", "train", image_size=16)
    assert data.label_names == ["dark", "light"] and data.images.shape == (6, 1, 16, 16)
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1] and int(data.images[0].float().mean()) == 30


@pytest.mark.realdata
def test_real_mnist_from_the_torchvision_root():
    root = mnist_dir()
    train, test = (
        load_dataset("mnist", "train", root, download=False),
        load_dataset("mnist", "test", root, download=False),
    )
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist()[1] == 6742  # MNIST's published count of ones


@pytest.mark.realdata
def test_real_fashion_mnist_from_the_debian_folder_trains_and_samples_sneakers(home):
    folder = fashion_dir()
    data = load_dataset("fashion-mnist", "test", folder, download=False)
    assert data.images.shape == (10000, 1, 28, 28) and torch.bincount(data.labels).tolist() == [1000] * 10
    r = run_cli(
        [
            "train",
            "--dataset",
            "fashion-mnist",
            "--data-dir",
            str(folder),
            "--limit",
            "256",
            "--batch-size",
            "32",
            "--width",
            "8",
            "--epochs",
            "1",
            "--max-steps",
            "2",
            "--device",
            "cpu",
            "--name",
            "f1",
            "-q",
        ]
    )
    assert r.code == 0, r.stderr
    config = json.loads((home / "models" / "f1" / "config.json").read_text())
    assert config["conditioning"]["labels"] == FASHION_LABELS and config["dataset"]["name"] == "fashion-mnist"
    s = run_cli(["sample", "--model", "f1", "--class", "sneaker", "--steps", "3", "--seed", "0", "-o", "-"])
    assert s.code == 0, s.stderr
