"""diffcli.scoring: the scoring classifier and its registry cache, FID, per-class and illusion scores, CLIP."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffcli.data import ImageDataset
from diffcli.errors import DiffcliError, UsageError
from diffcli.models.registry import Registry
from diffcli.scoring import classifier as clf
from diffcli.scoring import classifier_training as clf_training
from diffcli.scoring import fid, inference, splits
from diffcli.scoring.scores import anagram_success, class_scores, hybrid_success

SHAPES = ["hbar", "vbar", "ring"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks on a busy 2-core machine: one thread avoids OpenMP threads waiting on each other
    (measured here: 2.5 s instead of 11.5 s for the shapes classifier)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def shapes_dataset(n: int, size: int = 16, channels: int = 1, seed: int = 0, split: str = "train") -> ImageDataset:
    """Three visually distinct classes (horizontal bar, vertical bar, hollow square), jittered and noisy."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, (n, channels, size, size), dtype=np.uint8)
    labels = np.arange(n) % 3
    for i, label in enumerate(labels):
        dy, dx = rng.integers(-2, 3, 2)
        c = size // 2
        if label == 0:
            images[i, :, c + dy - 1 : c + dy + 1, 3 + dx : size - 3 + dx] = 255
        elif label == 1:
            images[i, :, 3 + dy : size - 3 + dy, c + dx - 1 : c + dx + 1] = 255
        else:
            top, left = c - 4 + dy, c - 4 + dx
            images[i, :, top : top + 8, left : left + 8] = 255
            images[i, :, top + 2 : top + 6, left + 2 : left + 6] = 20
    return ImageDataset(
        "shapes", torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)), list(SHAPES), "test", split
    )


def write_shapes_folder(root: Path, per_class: int = 50, size: int = 16) -> Path:
    """The same three classes as an RGB `folder:` dataset, one subfolder per class."""
    data = shapes_dataset(3 * per_class, size, channels=3, seed=1)
    for name in SHAPES:
        (root / name).mkdir(parents=True)
    for i, (image, label) in enumerate(zip(data.images, data.labels)):
        Image.fromarray(image.permute(1, 2, 0).numpy(), "RGB").save(root / SHAPES[int(label)] / f"{i:04d}.png")
    return root


@pytest.fixture(scope="module")
def trained() -> clf.Classifier:
    """One classifier trained on the 1-channel shapes, shared by the tests that only read it."""
    module, accuracy = clf_training.train_classifier(
        shapes_dataset(240), shapes_dataset(90, seed=5, split="test"), epochs=3, batch_size=32
    )
    return clf.Classifier(
        module, "shapes-classifier", "shapes", list(SHAPES), accuracy, 1, 16, clf.weights_fingerprint(module)
    )


@pytest.fixture(scope="module")
def shapes_folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return "folder:" + str(write_shapes_folder(tmp_path_factory.mktemp("data") / "shapes"))


@pytest.fixture(scope="module")
def folder_classifier(shapes_folder: str) -> clf.Classifier:
    """A classifier of the RGB folder dataset, for the FID tests (which load that dataset by spec)."""
    train, test = splits.load_split(shapes_folder, "train"), splits.load_split(shapes_folder, "test")
    module, accuracy = clf_training.train_classifier(train, test, epochs=3, batch_size=32)
    return clf.Classifier(
        module, "shapes", shapes_folder, train.label_names, accuracy, 3, 16, clf.weights_fingerprint(module)
    )


# ----- the classifier -----


def test_classifier_learns_distinct_classes_and_leaves_global_rng_alone(trained: clf.Classifier) -> None:
    assert trained.test_accuracy >= 0.95
    # and an untrained network of the same shape does not (so the bar above measures learning)
    untrained = clf.ScoringCNN(1, 16, 3).eval()
    test = shapes_dataset(90, seed=5, split="test")
    assert clf_training.accuracy(untrained, test.images, test.labels) < 0.7
    state = torch.get_rng_state()
    clf_training.train_classifier(shapes_dataset(30), shapes_dataset(9, seed=5), epochs=1, batch_size=16, seed=3)
    assert torch.equal(state, torch.get_rng_state())


def test_training_is_deterministic_for_a_seed() -> None:
    train, test = shapes_dataset(60), shapes_dataset(9, seed=5)
    a, _ = clf_training.train_classifier(train, test, epochs=1, batch_size=16, seed=7)
    b, _ = clf_training.train_classifier(train, test, epochs=1, batch_size=16, seed=7)
    c, _ = clf_training.train_classifier(train, test, epochs=1, batch_size=16, seed=8)
    assert clf.weights_fingerprint(a) == clf.weights_fingerprint(b) != clf.weights_fingerprint(c)


def test_training_refuses_unlabelled_data() -> None:
    data = shapes_dataset(12)
    unlabelled = ImageDataset("faces", data.images, None, [])
    with pytest.raises(DiffcliError, match="no class labels"):
        clf_training.train_classifier(unlabelled, data, epochs=1)


def test_random_shift_moves_each_image_by_at_most_max_shift() -> None:
    x = torch.zeros(64, 1, 12, 12)
    x[:, 0, 6, 6] = 1.0
    shifted = clf_training.random_shift(x, 2, torch.Generator().manual_seed(0))
    where = shifted[:, 0].flatten(1).argmax(1)
    rows, cols = where // 12, where % 12
    assert shifted.shape == x.shape and torch.all(shifted.flatten(1).sum(1) == 1.0)
    assert rows.sub(6).abs().max() <= 2 and cols.sub(6).abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10  # per-image offsets, not one for the batch
    assert torch.equal(clf_training.random_shift(x, 0, torch.Generator()), x)


def test_random_blur_blurs_the_first_share_and_keeps_the_rest() -> None:
    x = torch.zeros(8, 1, 28, 28)
    x[:, 0, 14, 14] = 1.0
    out = clf_training.random_blur(x, 0.25, torch.Generator().manual_seed(0))
    assert torch.equal(out[2:], x[2:])
    assert float(out[:2, 0, 14, 14].max()) < 0.7 and torch.allclose(
        out[:2].sum(dim=(1, 2, 3)), torch.ones(2), atol=1e-4
    )  # spread, mass kept
    assert torch.equal(clf_training.random_blur(x, 0.0, torch.Generator()), x)


def test_predict_and_embed(trained: clf.Classifier) -> None:
    test = shapes_dataset(30, seed=9)
    probs = inference.predict(trained, test.images.float() / 255.0, batch_size=7)
    assert probs.shape == (30, 3) and torch.allclose(probs.sum(1), torch.ones(30), atol=1e-5)
    assert torch.allclose(inference.predict(trained, test.images), probs, atol=1e-6)  # uint8 is scaled the same
    assert (probs.argmax(1) == test.labels).float().mean() >= 0.9
    assert inference.embed(trained, test.images).shape == (30, trained.module.feature_dim)
    with pytest.raises(DiffcliError, match="images are 3x16x16 but classifier 'shapes-classifier' reads 1x16x16"):
        inference.predict(trained, torch.rand(2, 3, 16, 16))


def test_network_takes_any_channels_and_square_size() -> None:
    for channels, size in ((1, 28), (3, 32), (3, 64), (1, 9)):
        net = clf.ScoringCNN(channels, size, 10).eval()
        x = torch.rand(2, channels, size, size)
        assert net(x).shape == (2, 10) and net.features(x).shape == (2, net.feature_dim)


def test_training_plan() -> None:
    assert clf_training.training_plan(60000) == (2, 128)  # MNIST
    assert clf_training.training_plan(135) == (34, 16)  # a small folder: 9 batches an epoch, >= 300 updates
    assert clf_training.training_plan(135, epochs=3) == (3, 16)
    assert clf_training.one_cycle(0, 4) == pytest.approx(0.04) and clf_training.one_cycle(1, 4) == pytest.approx(1.0)
    assert clf_training.one_cycle(3, 4) == pytest.approx(0.25)  # cosine: a quarter left one step before the end


def test_classifier_names() -> None:
    assert clf.classifier_name("mnist") == "mnist-classifier"
    assert clf.classifier_name("fashion-mnist") == "fashion-mnist-classifier"
    a, b = clf.classifier_name("folder:/a/my cats"), clf.classifier_name("folder:/b/my cats")
    assert a.startswith("folder-my-cats-") and a.endswith("-classifier") and a != b


# ----- the registry cache -----


def test_classifier_is_trained_once_and_cached_in_the_registry(
    home: Path, shapes_folder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real_train = clf_training.train_classifier

    def counting_train(*args, **kwargs):
        calls.append(kwargs)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(clf_training, "train_classifier", counting_train)
    first = clf.load_or_train_classifier(shapes_folder)  # 135 images: batches of 16, 34 epochs (training_plan)
    assert len(calls) == 1 and calls[0]["batch_size"] == 16 and calls[0]["epochs"] == 34
    assert first.test_accuracy >= 0.9
    name = clf.classifier_name(shapes_folder)
    folder = home / "models" / name
    config = json.loads((folder / "config.json").read_text())
    assert config["kind"] == "classifier" and (folder / "model.safetensors").is_file()
    assert config["image"] == {"channels": 3, "size": 16, "range": [0.0, 1.0]}
    assert (
        config["conditioning"]["labels"] == sorted(SHAPES) and config["dataset"]["name"] == shapes_folder
    )  # folder order
    assert config["metrics"]["test_accuracy"] == pytest.approx(first.test_accuracy, abs=1e-6)
    assert config["training"]["train_images"] == 135 and config["training"]["test_images"] == 15  # 10 % held out

    second = clf.load_or_train_classifier(shapes_folder)
    assert len(calls) == 1  # loaded, not retrained
    assert second.fingerprint == first.fingerprint and second.label_names == sorted(SHAPES)
    x = torch.rand(5, 3, 16, 16)
    assert torch.allclose(inference.predict(first, x), inference.predict(second, x), atol=1e-6)

    clf.load_or_train_classifier(shapes_folder, retrain=True, epochs=1, seed=1)
    assert len(calls) == 2

    from diffcli.models.backends import load_model

    with pytest.raises(DiffcliError, match=f"model '{name}' is a classifier used by `diffcli eval`, not a generator"):
        load_model(name, device="cpu")


def test_corrupt_cached_classifier_names_the_file_and_says_to_delete_it(
    home: Path, trained: clf.Classifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry()
    train = shapes_dataset(12)
    clf.save_classifier(
        registry, "glyphs-classifier", "glyphs", trained.module, trained.test_accuracy, train, train, {}
    )
    monkeypatch.setattr(
        clf_training, "train_classifier", lambda *a, **k: pytest.fail("a corrupt cache must not be silently retrained")
    )
    loaded = clf.load_or_train_classifier("glyphs", registry=registry)
    assert loaded.fingerprint == trained.fingerprint

    weights = home / "models" / "glyphs-classifier" / "model.safetensors"
    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(DiffcliError) as info:
        clf.load_or_train_classifier("glyphs", registry=registry)
    assert str(weights) in info.value.one_line() and "diffcli models rm glyphs-classifier" in info.value.one_line()

    config = home / "models" / "glyphs-classifier" / "config.json"
    config.write_text("{broken")
    with pytest.raises(DiffcliError) as info:
        clf.load_or_train_classifier("glyphs", registry=registry)
    assert str(config) in info.value.one_line() and "diffcli models rm glyphs-classifier" in info.value.one_line()


def test_a_generator_under_the_classifier_name_is_not_loaded_as_one(home: Path) -> None:
    from helpers import make_tiny_model

    make_tiny_model(home, name="glyphs-classifier")
    with pytest.raises(DiffcliError, match="is a unet model, not a classifier") as info:
        clf.load_or_train_classifier("glyphs")
    assert "rm glyphs-classifier --yes" not in info.value.one_line()  # someone's model: never advise deleting it


# ----- FID -----


def random_covariance(rng: np.random.Generator, d: int, rank: int | None = None) -> np.ndarray:
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


def scipy_fid(mu1, s1, mu2, s2) -> float:
    from scipy import linalg

    covmean = linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_distance_matches_scipy_sqrtm(seed: int) -> None:
    pytest.importorskip("scipy")
    rng = np.random.default_rng(seed)
    d = 12
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = random_covariance(rng, d), random_covariance(rng, d)
    expected = scipy_fid(mu1, s1, mu2, s2)
    assert expected > 1.0
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-7)
    assert fid.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-7)  # symmetric


def test_frechet_distance_of_rank_deficient_covariances() -> None:
    pytest.importorskip("scipy")
    rng = np.random.default_rng(3)  # fewer samples than features, as with few generated images
    s1, s2 = random_covariance(rng, 10, rank=4), random_covariance(rng, 10, rank=6)
    mu = np.zeros(10)
    value = fid.frechet_distance(mu, s1, mu, s2)
    assert np.isfinite(value) and value == pytest.approx(scipy_fid(mu, s1, mu, s2), rel=1e-4)


def test_frechet_distance_of_identical_and_shifted_statistics() -> None:
    rng = np.random.default_rng(4)
    mu, sigma = rng.normal(size=16), random_covariance(rng, 16)
    assert fid.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)
    shift = np.zeros(16)
    shift[3] = 2.0
    assert fid.frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(4.0, rel=1e-7)
    with pytest.raises(ValueError, match="do not match"):
        fid.frechet_distance(mu, sigma, mu[:8], sigma[:8, :8])


def test_feature_statistics() -> None:
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    mu, sigma = fid.feature_statistics(x)
    assert mu.dtype == sigma.dtype == np.float64 and sigma.shape == (6, 6)
    assert np.allclose(mu, x.double().mean(0).numpy()) and np.allclose(sigma, np.cov(x.double().numpy(), rowvar=False))
    with pytest.raises(DiffcliError, match="at least 2 images"):
        fid.feature_statistics(x[:1])


def test_reference_statistics_are_cached_per_classifier(
    tmp_path: Path, folder_classifier: clf.Classifier, shapes_folder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    mu, sigma, n = fid.reference_statistics(folder_classifier, shapes_folder, cache_dir=cache)
    files = list((cache / "fid-reference").glob("*.npz"))
    assert n == 15 and len(files) == 1 and mu.shape == (folder_classifier.module.feature_dim,)

    def no_loading(*args, **kwargs):
        raise AssertionError("cached statistics must not reload the dataset")

    monkeypatch.setattr(fid, "load_split", no_loading)
    mu2, sigma2, n2 = fid.reference_statistics(folder_classifier, shapes_folder, cache_dir=cache)
    assert n2 == n and np.array_equal(mu, mu2) and np.array_equal(sigma, sigma2)

    # a retrained classifier (other weights) misses the cache and computes afresh
    retrained = clf.Classifier(**{**folder_classifier.__dict__, "fingerprint": "0" * 64})
    with pytest.raises(AssertionError, match="must not reload"):
        fid.reference_statistics(retrained, shapes_folder, cache_dir=cache)
    monkeypatch.undo()
    # a damaged cache file (not a zip; a truncated zip) is recomputed, not fatal
    for damage in (b"garbage", files[0].read_bytes()[:100]):
        files[0].write_bytes(damage)
        mu3, _, _ = fid.reference_statistics(folder_classifier, shapes_folder, cache_dir=cache)
        assert np.allclose(mu3, mu)


def test_real_floor(tmp_path: Path, folder_classifier: clf.Classifier, shapes_folder: str) -> None:
    train = splits.load_split(shapes_folder, "train")
    own = fid.feature_statistics(inference.embed(folder_classifier, train.images))
    # every training image against the statistics of the same images: zero, so it reads the train split
    assert fid.real_floor(folder_classifier, shapes_folder, len(train), reference=(*own, len(train))) == pytest.approx(
        0.0, abs=1e-6
    )
    a = fid.real_floor(folder_classifier, shapes_folder, 20, seed=0, cache_dir=tmp_path)
    assert a > 0 and a == fid.real_floor(folder_classifier, shapes_folder, 20, seed=0, cache_dir=tmp_path)
    assert a != fid.real_floor(folder_classifier, shapes_folder, 20, seed=1, cache_dir=tmp_path)
    with pytest.raises(DiffcliError, match="needs 2 to 135 images"):
        fid.real_floor(folder_classifier, shapes_folder, 1000, cache_dir=tmp_path)


# ----- per-class scores and illusions -----


def test_class_scores_on_hand_made_probabilities() -> None:
    names = ["zero", "one", "two", "three"]
    probs = torch.tensor(
        [
            [0.9, 0.1, 0.0, 0.0],  # zero: 2/2 right, confidence (0.9 + 0.7) / 2 = 0.8
            [0.7, 0.3, 0.0, 0.0],
            [0.1, 0.6, 0.3, 0.0],  # one: 2/2 right, confidence (0.6 + 0.9) / 2 = 0.75 -> ties zero, loses on confidence
            [0.0, 0.9, 0.1, 0.0],
            [0.0, 0.8, 0.2, 0.0],  # two: 0/2 right, mistaken for "one"
            [0.3, 0.6, 0.1, 0.0],
        ]
    )
    scores = class_scores(probs, [0, 0, 1, 1, 2, 2], names)
    by = {c["label"]: c for c in scores["classes"]}
    assert by["zero"]["n"] == 2 and by["zero"]["accuracy"] == 1.0 and by["zero"]["confidence"] == pytest.approx(0.8)
    assert by["one"]["confidence"] == pytest.approx(0.75) and by["one"]["mistaken_for"] is None
    assert by["two"]["accuracy"] == 0.0 and by["two"]["mistaken_for"] == "one"
    assert by["three"] == {
        "index": 3,
        "label": "three",
        "n": 0,
        "accuracy": None,
        "confidence": None,
        "mistaken_for": None,
    }
    assert scores["best"] == "zero" and scores["worst"] == "two"  # "three" has no samples: not ranked
    assert scores["n"] == 6 and scores["accuracy"] == pytest.approx(4 / 6) and scores["min_class_accuracy"] == 0.0
    assert scores["confidence"] == pytest.approx((0.9 + 0.7 + 0.6 + 0.9 + 0.2 + 0.1) / 6)
    json.dumps(scores)  # plain types, ready for --json
    with pytest.raises(ValueError):
        class_scores(probs, [0, 1], names)


def test_worst_class_ties_break_on_confidence() -> None:
    probs = np.array([[0.6, 0.4], [0.4, 0.6], [0.9, 0.1], [0.1, 0.9]])
    scores = class_scores(probs, [0, 1, 0, 1], ["a", "b"])  # both 100 % right, equal confidence
    assert scores["classes"][0]["confidence"] == scores["classes"][1]["confidence"]
    probs[3] = [0.2, 0.8]  # b now slightly less confident
    assert class_scores(probs, [0, 1, 0, 1], ["a", "b"])["worst"] == "b"
    assert class_scores(probs, [0, 1, 0, 1], ["a", "b"])["best"] == "a"


def test_anagram_and_hybrid_success() -> None:
    names = [str(i) for i in range(10)]
    # pair 6/9 three times (one full success, one where only the view reads right), pair 1/7 once
    image_pred = [6, 6, 5, 1]
    view_pred = [9, 8, 9, 7]
    a, b = [6, 6, 6, 1], [9, 9, 9, 7]
    result = anagram_success(image_pred, view_pred, a, b, names)
    assert result["n"] == 4 and result["successes"] == 2 and result["rate"] == 0.5
    assert result["image_rate"] == 0.75 and result["view_rate"] == 0.75
    six_nine, one_seven = result["pairs"]
    assert (six_nine["image"], six_nine["view"], six_nine["n"], six_nine["successes"]) == ("6", "9", 3, 1)
    assert six_nine["rate"] == pytest.approx(1 / 3) and six_nine["image_rate"] == pytest.approx(2 / 3)
    assert (one_seven["rate"], one_seven["n"]) == (1.0, 1)

    hybrid = hybrid_success(torch.tensor([3, 3]), torch.tensor([8, 3]), [3, 3], [8, 8], names)
    assert hybrid["pairs"] == [
        {"far": "3", "near": "8", "n": 2, "successes": 1, "rate": 0.5, "far_rate": 1.0, "near_rate": 0.5}
    ]
    with pytest.raises(ValueError):
        hybrid_success([1], [1, 2], [1], [2], names)


# ----- CLIP -----


def tiny_clip(tmp_path: Path, seed: int = 0):
    """A randomly initialised CLIP with tiny towers, registered with open_clip under a test-only name."""
    open_clip = pytest.importorskip("open_clip")
    config = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    path = tmp_path / "diffcli-tiny-clip.json"
    path.write_text(json.dumps(config))
    open_clip.add_model_config(path)
    torch.manual_seed(seed)
    return open_clip.create_model("diffcli-tiny-clip"), open_clip.get_tokenizer("diffcli-tiny-clip")


def test_clip_scores_with_a_tiny_clip(tmp_path: Path) -> None:
    from diffcli.scoring.clip_score import ClipModel, clip_scores, prepare_images

    model, tokenizer = tiny_clip(tmp_path)
    clip = ClipModel.wrap(model, tokenizer, "tiny")
    assert clip.image_size == 32
    data = shapes_dataset(12)  # 1-channel 16x16: expanded to RGB and resized to 32x32
    prepared = prepare_images(data.images, 32, clip.mean, clip.std)
    assert prepared.shape == (12, 3, 32, 32)
    assert torch.allclose(
        prepared[:, 0] * clip.std[0] + clip.mean[0], prepared[:, 1] * clip.std[1] + clip.mean[1], atol=1e-5
    )  # grey: R = G

    scores = clip_scores(clip, data.images, data.labels, SHAPES, template="a photo of a {label}", batch_size=5)
    assert scores["n"] == 12 and [c["n"] for c in scores["classes"]] == [4, 4, 4]
    assert scores["classes"][1]["prompt"] == "a photo of a vbar"
    assert scores == clip_scores(
        clip, data.images, data.labels, SHAPES, template="a photo of a {label}", batch_size=5
    )  # deterministic
    whole = clip_scores(clip, data.images, data.labels, SHAPES, template="a photo of a {label}")  # batch-independent
    assert [c["clip_score"] for c in whole["classes"]] == pytest.approx(
        [c["clip_score"] for c in scores["classes"]], abs=1e-4
    )
    # one image by hand: 100 x cosine with its class prompt
    with torch.no_grad():
        text = torch.nn.functional.normalize(model.encode_text(tokenizer(["a photo of a hbar"])), dim=-1)
        image = torch.nn.functional.normalize(model.encode_image(prepared[:1]), dim=-1)
    single = clip_scores(clip, data.images[:1], data.labels[:1], SHAPES, template="a photo of a {label}")
    assert single["clip_score"] == pytest.approx(100 * float(image @ text.T), abs=1e-3)
    assert 0.0 <= scores["zero_shot_accuracy"] <= 1.0 and scores["best"] in SHAPES and scores["worst"] in SHAPES
    with pytest.raises(UsageError, match="has no {label}"):
        clip_scores(clip, data.images, data.labels, SHAPES, template="a photo")


def test_load_clip_from_a_local_weights_file(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from diffcli.scoring.clip_score import load_clip

    model, _ = tiny_clip(tmp_path)
    weights = tmp_path / "tiny.safetensors"
    save_file(model.state_dict(), weights)
    clip = load_clip("diffcli-tiny-clip", weights=weights)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(clip.model.encode_image(x), model.eval().encode_image(x), atol=1e-6)
    assert clip.image_size == 32 and clip.name == "diffcli-tiny-clip/tiny.safetensors"
    weights.write_bytes(b"junk")
    with pytest.raises(DiffcliError, match="could not load CLIP diffcli-tiny-clip from"):
        load_clip("diffcli-tiny-clip", weights=weights)


def test_load_clip_errors_name_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("open_clip")
    from diffcli.scoring.clip_score import load_clip

    with pytest.raises(DiffcliError) as info:
        load_clip("ViT-B-32", "laion2b_s34b_b79k", cache_dir=str(tmp_path / "empty-hub"))
    message = info.value.one_line()
    assert (
        "ViT-B-32/laion2b_s34b_b79k" in message
        and "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in message
        and "`clip_weights`" in message
    )  # the CLI shows --clip-weights

    with pytest.raises(DiffcliError, match="CLIP weights file .*nowhere.safetensors not found") as info:
        load_clip("ViT-B-32", weights=tmp_path / "nowhere.safetensors")
    assert "`clip_weights`" in info.value.one_line()
    with pytest.raises(UsageError, match="not a pretrained tag"):
        load_clip("ViT-B-32", "no-such-tag")
    with pytest.raises(UsageError, match="unknown CLIP model"):
        load_clip("no-such-model")

    monkeypatch.setitem(sys.modules, "open_clip", None)  # as if not installed
    with pytest.raises(DiffcliError) as info:
        load_clip()
    assert "pip install 'diffcli[clip]'" in info.value.one_line()


def test_default_templates() -> None:
    from diffcli.scoring.clip_score import default_template

    assert default_template("mnist") == "a photo of the digit {label}"
    assert default_template("fashion-mnist") == "a photo of a {label}"


# ----- real MNIST -----


def _check_mnist_classifier(classifier: clf.Classifier, data_dir: Path, home: Path) -> None:
    """Centred, shifted and blurred test digits, and FID sanity, for a classifier of MNIST."""
    assert classifier.test_accuracy >= 0.985
    test = splits.load_split("mnist", "test", data_dir)
    images, labels = test.images[:2000], test.labels[:2000]
    shifted = torch.roll(images, shifts=(2, -2), dims=(2, 3))  # two pixels down and left
    probs = inference.predict(classifier, shifted, batch_size=500)
    assert (probs.argmax(1) == labels).float().mean() >= 0.96  # measured 97.7 % (99.05 % centred)
    from diffcli.diffusion.filters import lowpass

    blurred = lowpass(images.float() / 255.0, 13, 2.0)  # a hybrid's low-pass, much stronger than the default
    blurred_accuracy = float(
        (inference.predict(classifier, blurred, batch_size=500).argmax(1) == labels).float().mean()
    )
    print(f"MNIST classifier on digits blurred at sigma 2: {100 * blurred_accuracy:.1f}%")
    assert blurred_accuracy >= 0.9

    # FID sanity: real images sit near the floor, shifted ones further away
    reference = fid.reference_statistics(classifier, "mnist", data_dir=data_dir, cache_dir=home / "cache")
    floor = fid.real_floor(classifier, "mnist", 1000, data_dir=data_dir, reference=reference)
    assert fid.fid_of_pixels(classifier, shifted[:1000], reference[0], reference[1]) > 2 * floor


@pytest.mark.realdata
def test_mnist_classifier_reaches_98_5_percent_and_reads_off_centre_digits(home: Path) -> None:
    """The recipe itself: trained here from the data (what --retrain-classifier does), cached in the registry."""
    from conftest import mnist_dir

    data_dir = mnist_dir()
    started = time.perf_counter()
    classifier = clf.load_or_train_classifier("mnist", data_dir=data_dir, retrain=True)
    seconds = time.perf_counter() - started
    print(f"\nMNIST classifier: test accuracy {100 * classifier.test_accuracy:.2f}% in {seconds:.1f} s")
    assert (home / "models" / "mnist-classifier" / "config.json").is_file() and classifier.reference is None
    _check_mnist_classifier(classifier, data_dir, home)


@pytest.mark.realdata
def test_the_shipped_mnist_classifier_passes_the_same_checks(home: Path) -> None:
    from conftest import mnist_dir

    classifier = clf.load_or_train_classifier("mnist", data_dir=mnist_dir())
    assert classifier.reference is not None and not (home / "models").exists()  # shipped: nothing trained
    _check_mnist_classifier(classifier, mnist_dir(), home)
