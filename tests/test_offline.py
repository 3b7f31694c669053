"""Working offline: `eval` of the embedded models with the shipped classifiers and FID statistics (no
network, no data), damaged assets, the floor rule, which classifier wins, and the dataset download's error."""

from __future__ import annotations

import shutil
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cli

from diffcli.errors import DiffcliError
from diffcli.scoring import classifier as clf
from diffcli.scoring import classifier_training as clf_training
from diffcli.scoring import shipped, splits

SHIPPED = ("mnist", "fashion-mnist")
DATA_FILES = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No data anywhere ($DIFFCLI_DATA an empty folder) and any attempt to reach the network or to
    download a dataset fails the test. Returns the empty data folder."""
    from diffcli.data import mnist

    data = tmp_path / "no-data"
    data.mkdir()
    monkeypatch.setenv("DIFFCLI_DATA", str(data))

    def forbidden(*args, **kwargs):
        raise AssertionError(f"tried to reach the network: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)
    monkeypatch.setattr(socket, "getaddrinfo", forbidden)
    monkeypatch.setattr(urllib.request, "urlopen", forbidden)
    monkeypatch.setattr(mnist, "download", forbidden)
    return data


# ----- eval on a fresh install, offline -----


def test_eval_of_the_embedded_model_runs_offline_with_no_data(home: Path, no_network: Path) -> None:
    started = time.perf_counter()
    r = run_cli(["eval", "-n", "5", "--device", "cpu", "--json"])
    seconds = time.perf_counter() - started
    assert r.code == 0, r.stderr
    report = r.json()
    assert report["model"] == "mnist" and report["dataset"] == "mnist" and report["n"] == 50
    assert report["accuracy"] >= 0.95, [(c["label"], c["accuracy"]) for c in report["classes"]]
    assert report["classifier"]["name"] == "mnist-classifier" and report["classifier"]["test_accuracy"] >= 0.98
    fid = report["fid"]
    assert fid["reference"] == "shipped" and fid["floor_source"] == "shipped" and fid["reference_n"] == 10000
    table = shipped.load_reference("mnist")
    assert fid["floor"] == round(float(table.floor[table.floor_n == 50][0]), 4) and fid["floor"] > 0
    # at n = 50 the floor itself varies by ~10 % with the choice of real images, and the embedded model's
    # samples sit within that (measured: FID 97.6, floor 100.0); pure noise would be far above it
    assert 0 < fid["value"] < 1.5 * fid["floor"]
    # nothing was trained, cached or downloaded
    assert not (home / "models").exists() or not any((home / "models").iterdir())
    assert not any(no_network.iterdir())
    print(f"\neval -n 5 offline: {seconds:.1f} s")


def test_eval_of_the_fashion_model_runs_offline(home: Path, no_network: Path) -> None:
    r = run_cli(["eval", "-m", "fashion", "-n", "2", "--device", "cpu", "--json"])
    assert r.code == 0, r.stderr
    report = r.json()
    assert report["dataset"] == "fashion-mnist" and report["classifier"]["name"] == "fashion-mnist-classifier"
    assert report["fid"]["reference"] == "shipped" and report["fid"]["n"] == 20 and report["accuracy"] >= 0.8


def test_retrain_without_data_says_why_the_download_failed(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--retrain-classifier needs the data: torchvision's real download runs, and the network fails under it."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("DIFFCLI_DATA", str(empty))

    def no_dns(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    def forbidden(*args, **kwargs):
        raise AssertionError("tried to reach the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_dns)
    monkeypatch.setattr(socket.socket, "connect", forbidden)
    r = run_cli(["eval", "--retrain-classifier", "-n", "1", "--device", "cpu", "--json"])
    assert r.code == 1 and r.stdout == "" and "Traceback" not in r.stderr
    error = [line for line in r.stderr.splitlines() if line.startswith("diffcli: error:")]
    assert len(error) == 1
    assert "downloading it failed (Temporary failure in name resolution)" in error[0]
    assert "--data-dir" in error[0] and "--dataset glyphs" in error[0] and "train-images-idx3-ubyte" in error[0]


# ----- the download's error message -----


@pytest.mark.parametrize(
    "failure,reason",
    [
        (urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")), "Connection refused"),
        (urllib.error.URLError("no host given"), "no host given"),
        (TimeoutError("timed out"), "timed out"),
    ],
)
def test_download_error_names_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, failure, reason
) -> None:
    """Through torchvision's real download code: its mirrors fail with `failure`."""
    from diffcli.data import mnist

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(urllib.request, "urlopen", fail)
    with pytest.raises(DiffcliError) as info:
        mnist.download("fashion-mnist", tmp_path, lambda message: None)
    line = info.value.one_line()
    assert f"downloading it failed ({reason})" in line and "--dataset glyphs" in line and "--data-dir" in line
    assert capsys.readouterr().out == ""  # stdout is for data, whatever torchvision prints


def test_a_failed_download_leaves_no_folders_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision makes <root>/MNIST/raw (and a partial file) before it fails: whatever it created
    goes; what was there before stays."""
    import torchvision.datasets as tvd

    from diffcli.data import mnist

    class Failing:
        def __init__(self, root, train, download):
            raw = Path(root) / "MNIST" / "raw"
            raw.mkdir(parents=True, exist_ok=True)
            (raw / "train-images-idx3-ubyte.gz").write_bytes(b"partial")
            raise urllib.error.URLError("no host given")

    monkeypatch.setattr(tvd, "MNIST", Failing)
    fresh = tmp_path / "new" / "deeper"
    with pytest.raises(DiffcliError, match="downloading it failed"):
        mnist.download("mnist", fresh, lambda message: None)
    assert not (tmp_path / "new").exists()  # the whole tree it made, from the first missing folder
    kept = tmp_path / "mine"
    (kept / "MNIST").mkdir(parents=True)
    (kept / "notes.txt").write_text("mine")
    with pytest.raises(DiffcliError):
        mnist.download("mnist", kept, lambda message: None)
    assert (kept / "notes.txt").exists() and (kept / "MNIST").is_dir() and not (kept / "MNIST" / "raw").exists()


def test_a_data_dir_that_is_a_file_is_named_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from diffcli.data import mnist

    monkeypatch.setattr(mnist, "download", lambda *a, **k: pytest.fail("tried to download into a file"))
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(DiffcliError) as info:
        mnist.load_idx_dataset("mnist", "train", afile, lambda message: None, fetch=True)
    expected = (
        f"`data_dir` {afile} is a file, not a folder; "
        "pass the folder that holds mnist's IDX files (or a torchvision root)"
    )
    assert info.value.one_line() == expected


def test_failure_reason_digs_through_the_chain() -> None:
    from diffcli.data.mnist import failure_reason

    try:
        try:
            raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))
        except urllib.error.URLError as inner:
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz") from inner
    except RuntimeError as outer:
        assert failure_reason(outer) == "Name or service not known"
    folded = RuntimeError(
        "Error downloading x.gz:\nTried https://a/, got:\n<urlopen error [Errno 111] Connection refused>\n"
    )
    assert failure_reason(folded) == "Connection refused"
    assert (
        failure_reason(RuntimeError("Error downloading x.gz:\nTried https://a/, got:\nHTTP Error 404: Not Found\n"))
        == "HTTP Error 404: Not Found"
    )
    assert failure_reason(RuntimeError()) == "RuntimeError"


# ----- the shipped assets -----


@pytest.mark.parametrize("spec", SHIPPED)
def test_shipped_assets_match_their_provenance(spec: str) -> None:
    record = shipped.provenance()
    assert record is not None and spec in record["datasets"]
    entry = record["datasets"][spec]
    assert {name.removesuffix(".gz") for name in entry["data"]["sha256"]} == DATA_FILES
    assert all(len(h) == 64 for h in entry["data"]["sha256"].values())
    built = entry["built"]
    assert (
        built["command"].startswith("python scripts/build_scorers.py") and built["torch"] and built["date"][:2] == "20"
    )
    for block in (entry["classifier"], entry["reference"]):
        data = (shipped.ASSETS / block["file"]).read_bytes()
        assert shipped.sha256_of(data) == block["sha256"] and len(data) == block["bytes"]
    assert entry["classifier"]["bytes"] < 600_000  # well under 1 MB
    assert (
        entry["classifier"]["training"]["seed"] == 0
        and entry["classifier"]["training"]["epochs"] == clf_training.DEFAULT_EPOCHS
    )

    loaded = shipped.load_classifier(spec)
    assert loaded.name == clf.classifier_name(spec) and loaded.test_accuracy == entry["classifier"]["test_accuracy"]
    assert loaded.fingerprint == entry["classifier"]["fingerprint"]  # the weights the statistics were computed with
    reference = loaded.reference
    assert (
        reference.mu.shape == (loaded.module.feature_dim,) and reference.sigma.shape == (loaded.module.feature_dim,) * 2
    )
    assert np.allclose(reference.sigma, reference.sigma.T) and reference.n == 10000
    floors = dict(zip(reference.floor_n.tolist(), reference.floor.tolist()))
    assert floors[10] > floors[100] > floors[1000] > floors[10000] > 0  # FID's small-sample bias shrinks with n
    assert round(floors[1000], 4) == entry["reference"]["floor"]["at_1000"]


def _damaged_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    assets = tmp_path / "assets"
    shutil.copytree(shipped.ASSETS, assets)
    monkeypatch.setattr(shipped, "ASSETS", assets)
    return assets


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "delete"])
def test_a_damaged_shipped_classifier_is_one_line(
    home: Path, no_network: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    assets = _damaged_copy(tmp_path, monkeypatch)
    target = assets / "mnist-classifier.safetensors"
    data = bytearray(target.read_bytes())
    if damage == "flip a byte":
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(bytes(data[:1000]))
    else:
        target.unlink()
    r = run_cli(["eval", "-n", "1", "--device", "cpu"])
    assert r.code == 1 and "Traceback" not in r.stderr
    assert (
        r.stderr.count("\n") == 1
        and "diffcli: error: the mnist scoring data shipped with diffcli is damaged" in r.stderr
    )
    assert (
        "missing" if damage == "delete" else "does not match the sha256"
    ) in r.stderr and "reinstall diffcli" in r.stderr


def test_damaged_reference_and_provenance_are_one_line(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assets = _damaged_copy(tmp_path, monkeypatch)
    reference = assets / "fashion-mnist-reference.safetensors"
    reference.write_bytes(reference.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(
        DiffcliError, match="fashion-mnist scoring data shipped with diffcli is damaged.*does not match"
    ):
        clf.load_or_train_classifier("fashion-mnist")
    (assets / shipped.PROVENANCE).write_text("{not json")
    with pytest.raises(DiffcliError, match="damaged.*provenance.json cannot be read") as info:
        clf.load_or_train_classifier("mnist")
    assert "\n" not in info.value.one_line()


def test_floor_rule_interpolates_in_one_over_n() -> None:
    ns = np.array([10, 20, 40], dtype=np.int64)
    reference = shipped.ShippedReference("toy", np.zeros(2), np.eye(2), 100, ns, 1.0 + 30.0 / ns)  # exactly a + b/n
    assert reference.floor_at(20) == (2.5, True)
    for n in (11, 15, 33):
        value, measured = reference.floor_at(n)
        assert not measured and value == pytest.approx(1.0 + 30.0 / n, rel=1e-12)
    for n in (9, 41):
        with pytest.raises(DiffcliError, match="needs 10 to 40 images"):
            reference.floor_at(n)


def test_shipped_floor_is_used_only_with_the_shipped_classifier(tmp_path: Path) -> None:
    """A registry classifier of the same dataset gets no shipped statistics (they describe other weights)."""
    from diffcli.scoring import fid

    classifier = shipped.load_classifier("mnist")
    mu, sigma, n, source = fid.reference_for(classifier, "mnist")
    assert source == "shipped" and mu is classifier.reference.mu and n == 10000
    assert fid.floor_for(classifier, "mnist", 1000) == (
        float(classifier.reference.floor[classifier.reference.floor_n == 1000][0]),
        "shipped",
    )
    assert fid.floor_for(classifier, "mnist", 1005)[1] == "shipped-interpolated"
    bare = clf.Classifier(**{**classifier.__dict__, "reference": None})
    with pytest.raises(DiffcliError):  # no shipped statistics: from the data, which is not there
        fid.reference_for(bare, "mnist", data_dir=tmp_path)


# ----- which classifier scores a dataset -----


def test_a_registry_classifier_takes_precedence_over_the_shipped_one(home: Path, no_network: Path) -> None:
    from diffcli.data import ImageDataset
    from diffcli.data.names import MNIST_LABELS
    from diffcli.models.registry import Registry
    from diffcli.scoring.network import ScoringCNN

    assert clf.load_or_train_classifier("mnist").reference is not None  # shipped: nothing in the registry
    assert (
        clf.load_or_train_classifier("mnist", data_dir=no_network).reference is not None
    )  # --data-dir changes nothing
    torch.manual_seed(0)
    own = ScoringCNN(1, 28, 10).eval()
    data = ImageDataset("mnist", torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.arange(4), list(MNIST_LABELS))
    clf.save_classifier(Registry(), "mnist-classifier", "mnist", own, 0.5, data, data, {})
    notes: list[str] = []
    chosen = clf.load_or_train_classifier("mnist", notify=notes.append)
    assert (
        chosen.reference is None and chosen.fingerprint == clf.weights_fingerprint(own) and chosen.test_accuracy == 0.5
    )
    assert any(
        "takes precedence over the shipped one" in n and "diffcli models rm mnist-classifier --yes" in n for n in notes
    )
    assert run_cli(["models", "rm", "mnist-classifier", "--yes"]).code == 0
    assert clf.load_or_train_classifier("mnist").reference is not None  # back to the shipped one


def test_datasets_without_shipped_assets_are_trained_from_their_data(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not shipped.available("glyphs") and not shipped.available("folder:/x")

    class Trained(Exception):
        pass

    def train(spec, **kwargs):
        raise Trained(spec)

    monkeypatch.setattr(clf, "train_for_dataset", train)
    with pytest.raises(Trained, match="glyphs"):
        clf.load_or_train_classifier("glyphs")
    with pytest.raises(Trained, match="mnist"):  # --retrain-classifier trains even where one ships
        clf.load_or_train_classifier("mnist", retrain=True)


# ----- the shipped statistics against the real data -----


@pytest.mark.realdata
@pytest.mark.parametrize("spec", SHIPPED)
def test_shipped_figures_are_what_the_data_gives(spec: str, home: Path) -> None:
    """Accuracy, reference statistics and floors recomputed from the real files with the shipped weights."""
    from conftest import fashion_dir, mnist_dir

    from diffcli.data.idx import find_file
    from diffcli.data.mnist import FILES, locate
    from diffcli.scoring import fid

    data_dir = mnist_dir() if spec == "mnist" else fashion_dir()
    entry = shipped.provenance()["datasets"][spec]
    folder = locate(spec, data_dir)
    assert folder is not None
    hashes = {path.name: shipped.sha256_of(path.read_bytes()) for path in (find_file(folder, stem) for stem in FILES)}
    if hashes != entry["data"]["sha256"]:
        pytest.skip(f"the {spec} files in {folder} are not the ones the shipped assets were built from")
    classifier = shipped.load_classifier(spec)
    test = splits.load_split(spec, "test", data_dir)
    assert clf_training.accuracy(classifier.module, test.images, test.labels) == pytest.approx(
        classifier.test_accuracy, abs=1e-6
    )

    from_data = clf.Classifier(
        **{**classifier.__dict__, "reference": None}
    )  # the same weights, statistics from the data
    mu, sigma, n = fid.reference_statistics(from_data, spec, data_dir=data_dir, cache_dir=home / "cache")
    # float32 features from whatever kernels this CPU picks: entries agree to about 1e-7 absolute across
    # machines (4e-7 at most seen, on entries of 0.002), far below anything a FID could show
    assert n == classifier.reference.n and np.allclose(mu, classifier.reference.mu, rtol=1e-5, atol=1e-6)
    assert np.allclose(sigma, classifier.reference.sigma, rtol=1e-5, atol=1e-6)
    for count in (50, 1000):  # eval's n at -n 5 and at its default
        shipped_floor, source = fid.floor_for(classifier, spec, count)
        assert source == "shipped" and shipped_floor == pytest.approx(
            fid.real_floor(from_data, spec, count, data_dir=data_dir), abs=1e-4
        )
    rule = entry["reference"]["floor"]["rule_error"]
    interpolated, source = fid.floor_for(classifier, spec, 1005)
    assert source == "shipped-interpolated"
    # 1005 is among the n the build tested the rule at, so it is within the recorded error
    assert interpolated == pytest.approx(
        fid.real_floor(from_data, spec, 1005, data_dir=data_dir), rel=rule["max_rel_above_100"] + 1e-6
    )
