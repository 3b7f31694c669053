"""The classifier `diffcli eval` grades samples with: shipped for the embedded models' datasets, else
trained once per dataset and cached in the registry.

Which classifier scores a dataset (`load_or_train_classifier`), first match wins:
1. `<dataset>-classifier` in the registry (e.g. `mnist-classifier`, written by a first `eval` on a dataset
   that ships none, or by `eval --retrain-classifier`): a registry classifier takes precedence over a
   shipped one, as user models do over built-in ones; FID statistics are then computed from the data.
2. the classifier shipped inside the package (mnist and fashion-mnist, see shipped.py), with its FID
   reference statistics and floors: no dataset is read, whether or not --data-dir is given.
3. otherwise one is trained from the data and cached in the registry as in 1.
`--retrain-classifier` always trains from the data (so it needs the data) and replaces the registry copy;
`diffcli models rm <dataset>-classifier --yes` returns to the shipped one.

A registry classifier is an ordinary registry folder with `config.json` (kind "classifier", test accuracy
and training provenance) and `model.safetensors`, so `diffcli models list/show/rm` see it and nothing is
ever unpickled.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from diffcli.errors import DiffcliError, UsageError
from diffcli.models.config import ModelConfig
from diffcli.models.registry import ModelEntry, Registry, validate_name
from diffcli.scoring.network import ScoringCNN
from diffcli.scoring.scorer import Classifier, weights_fingerprint
from diffcli.training.optimizer import make_adamw

Notify = Callable[[str], None]

DEFAULT_EPOCHS = 2
DEFAULT_BATCH = 128
MIN_STEPS = 300  # small datasets (folders) train for more epochs, so every classifier gets enough updates
MAX_LR = 3e-3
MAX_SHIFT = 2  # pixels: generated digits are often a little off-centre
BLUR_SHARE = 0.25  # of each batch is Gaussian-blurred, so hybrids' low-pass ("seen from afar") can be read
BLUR_SIGMA = (0.5, 2.5)  # pixels at 28 px, scaled with the image size
HOLDOUT = 0.1  # share of a folder dataset kept back as its test split (folders have none)
GLYPH_LIMITS = {"train": 20000, "test": 2000}  # synthetic: enough to learn, quick to draw


def _quiet(message: str) -> None:
    pass


# ----- training -----


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by its own random whole-pixel offset in [-max_shift, max_shift] (edges repeat)."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator).to(x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)  # [N, H]
    cols = dx[:, None] + torch.arange(w, device=x.device)  # [N, W]
    batch = torch.arange(n, device=x.device)[:, None, None]
    # One gather for the whole batch instead of a Python loop over images.
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def _check_labelled(data, role: str) -> None:
    if data.labels is None or len(data.label_names) < 2:
        raise DiffcliError(
            f"dataset {data.name!r} has no class labels, so no classifier can be trained on it",
            "use a dataset with classes (mnist, fashion-mnist, glyphs, or a folder of class subfolders)",
        )
    if data.images.ndim != 4 or data.images.shape[2] != data.images.shape[3]:
        raise DiffcliError(
            f"dataset {data.name!r} ({role}) must hold square images [N, C, S, S], got {list(data.images.shape)}"
        )


@torch.no_grad()
def accuracy(module: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of uint8 `images` the module classifies as `labels`."""
    module.eval()
    device = next(module.parameters()).device
    correct = 0
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device).float() / 255.0
        correct += int((module(x).argmax(1).cpu() == labels[start : start + batch_size]).sum())
    return correct / max(1, len(images))


def random_blur(x: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """Blur the first `share` of a (shuffled) batch with one random Gaussian sigma in BLUR_SIGMA (scaled
    to the image size): a scorer that has seen blurred images can read a hybrid's low-pass."""
    from diffcli.diffusion.filters import gaussian_blur

    count = int(round(share * len(x)))
    if count == 0:
        return x
    size = x.shape[-1]
    lo, hi = BLUR_SIGMA
    sigma = (lo + (hi - lo) * float(torch.rand(1, generator=generator))) * size / 28
    kernel = min(2 * math.ceil(3 * sigma) + 1, 2 * (size // 2) - 1)
    return torch.cat([gaussian_blur(x[:count], kernel, sigma), x[count:]])


def one_cycle(step: int, total: int, warmup: float = 0.25) -> float:
    """Learning-rate factor: linear warm-up from 4 % over the first quarter, then cosine down to 0.

    Like torch's OneCycleLR, but defined for any number of steps (OneCycleLR divides by zero below 8).
    """
    warm = max(1, int(warmup * total))
    if step < warm:
        return 0.04 + 0.96 * step / warm
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


def _fit(
    train, epochs: int, batch_size: int, seed: int, max_shift: int, device: torch.device, notify: Notify
) -> ScoringCNN:
    """The training loop of `train_classifier` (run inside its forked, seeded RNG)."""
    images = train.images.to(device)  # uint8 on the device: 47 MB for MNIST, converted per batch
    labels = train.labels.to(device)
    steps_per_epoch = (len(images) + batch_size - 1) // batch_size
    model = ScoringCNN(int(train.images.shape[1]), int(train.images.shape[2]), len(train.label_names)).to(device)
    generator = torch.Generator().manual_seed(seed)  # data order and shifts
    optimizer = make_adamw(model.parameters(), lr=MAX_LR, weight_decay=1e-4)  # the trainer's AdamW (fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(one_cycle, total=epochs * steps_per_epoch))
    for epoch in range(epochs):
        model.train()
        started, total = time.perf_counter(), 0.0
        order = torch.randperm(len(images), generator=generator).to(device)
        for step in range(steps_per_epoch):
            index = order[step * batch_size : (step + 1) * batch_size]
            x = random_blur(random_shift(images[index].float() / 255.0, max_shift, generator), BLUR_SHARE, generator)
            loss = F.cross_entropy(model(x), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach())
        notify(
            f"classifier epoch {epoch + 1}/{epochs}: loss {total / steps_per_epoch:.4f} "
            f"({time.perf_counter() - started:.1f} s)"
        )
    return model


def train_classifier(
    train,
    test,
    *,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH,
    device: str | torch.device = "cpu",
    seed: int = 0,
    max_shift: int = MAX_SHIFT,
    notify: Notify = _quiet,
) -> tuple[ScoringCNN, float]:
    """Train a ScoringCNN on `train` (an ImageDataset) and return it (in eval mode) with its accuracy on `test`.

    AdamW with a one-cycle learning rate and random shifts of up to `max_shift` pixels; deterministic
    for a seed on a given device, and the global torch RNG is left as it was.
    """
    _check_labelled(train, "train")
    _check_labelled(test, "test")
    if tuple(train.images.shape[1:]) != tuple(test.images.shape[1:]):
        raise DiffcliError(
            f"train and test images differ in shape: {list(train.images.shape[1:])} vs {list(test.images.shape[1:])}"
        )
    if epochs < 1 or batch_size < 1:
        raise UsageError("epochs and batch size must be at least 1")
    device = torch.device(device)
    # Weight init and dropout draw from the global RNG: seed a fork of it, so the caller's stream is untouched.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        model = _fit(train, epochs, batch_size, seed, max_shift, device, notify)
    model.eval()
    test_accuracy = accuracy(model, test.images, test.labels)
    notify(f"classifier test accuracy {100 * test_accuracy:.2f}% on {len(test)} images")
    return model, test_accuracy


# ----- the registry cache -----


def canonical_spec(dataset_spec: str) -> str:
    """`folder:` specs with an absolute path, so `folder:cats` and `folder:./cats` share one classifier."""
    if dataset_spec.startswith("folder:"):
        return "folder:" + str(Path(dataset_spec[len("folder:") :]).expanduser().resolve())
    return dataset_spec


def classifier_name(dataset_spec: str) -> str:
    """The registry name of a dataset's classifier: `mnist-classifier`, `folder-cats-1a2b3c4d-classifier`."""
    if dataset_spec.startswith("folder:"):
        path = dataset_spec[len("folder:") :]
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", path.rstrip("/").split("/")[-1]).strip("-")[:40] or "root"
        digest = hashlib.sha256(path.encode("utf-8")).hexdigest()[:8]  # two folders called "cats" differ
        return validate_name(f"folder-{slug}-{digest}-classifier")
    return validate_name(f"{dataset_spec}-classifier")


def split_limit(dataset_spec: str, split: str) -> int | None:
    """How many images scoring draws from a split: all of a real dataset, a fixed number of synthetic glyphs."""
    return GLYPH_LIMITS[split] if dataset_spec == "glyphs" else None


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
    _check_labelled(whole, "train")
    cut = max(1, int(round(HOLDOUT * len(whole))))
    if len(whole) - cut < 2:
        raise DiffcliError(f"dataset {dataset_spec!r} has only {len(whole)} images: too few to train a classifier")
    order = torch.randperm(len(whole), generator=torch.Generator().manual_seed(0))
    index = order[:cut] if split == "test" else order[cut:]
    return ImageDataset(whole.name, whole.images[index], whole.labels[index], whole.label_names, whole.source, split)


def _rm_hint(name: str) -> str:
    return f"delete it with `diffcli models rm {name} --yes`; `diffcli eval` then retrains it"


def load_classifier(entry: ModelEntry, device: str | torch.device = "cpu") -> Classifier:
    """Rebuild a cached classifier from its registry folder (safetensors only, shapes checked)."""
    from diffcli.models.weights import load_into, read_weights

    label = f"classifier {entry.name!r}"
    try:
        config = entry.config()
    except DiffcliError as exc:
        raise DiffcliError(exc.message, _rm_hint(entry.name)) from None
    if config.kind != "classifier":  # someone's own model under this name: never advise deleting it
        raise DiffcliError(
            f"model {entry.name!r} is a {config.kind} model, not a classifier",
            (
                "rename it (`diffcli models export`, `rm`, `import --name`) "
                "so `diffcli eval` can cache its classifier there"
            ),
        )
    try:
        arch = config.architecture
        try:
            module = ScoringCNN(
                config.channels,
                config.size,
                len(config.labels),
                width=int(arch["width"]),
                feature_dim=int(arch["feature_dim"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DiffcliError(
                f"{label}: {entry.config_path} has an invalid architecture ({type(exc).__name__}: {exc})"
            ) from None
        path = entry.weights_path()
        load_into(module, read_weights(path, label), path, label)
    except DiffcliError as exc:
        # Whatever broke (config, weights file, shapes), the fix for a cache is the same: delete it.
        raise DiffcliError(exc.message, _rm_hint(entry.name)) from None
    module.eval().to(torch.device(device) if not isinstance(device, torch.device) else device)
    accuracy_value = float(config.metrics.get("test_accuracy", float("nan")))
    return Classifier(
        module,
        entry.name,
        config.dataset_name or "?",
        config.labels,
        accuracy_value,
        config.channels,
        config.size,
        weights_fingerprint(module),
    )


def save_classifier(
    registry: Registry,
    name: str,
    dataset_spec: str,
    module: ScoringCNN,
    test_accuracy: float,
    train,
    test,
    training: dict,
) -> ModelEntry:
    """Write the classifier into the registry as every model is written: staged whole (weights, then
    config.json), then put in place by the registry's transaction under the model's lock, replacing an
    earlier classifier of the same name."""
    from diffcli.io.atomic import atomic_write_text
    from diffcli.models import transaction
    from diffcli.models.layout import CONFIG, WEIGHTS
    from diffcli.models.weights import save_weights

    config = ModelConfig(
        name=name,
        kind="classifier",
        architecture=module.architecture(),
        image={"channels": module.channels, "size": module.size, "range": [0.0, 1.0]},
        schedule={},
        prediction="logits",
        objective="classify",
        conditioning={"type": "class", "labels": list(train.label_names), "null_class": False},
        dataset={**train.describe(), "name": dataset_spec, "test_count": len(test)},
        training=training,
        metrics={"test_accuracy": round(test_accuracy, 6)},
        description=(
            f"scoring classifier for `diffcli eval` on {dataset_spec} (test accuracy {100 * test_accuracy:.2f}%)"
        ),
    )
    with transaction.Staging(registry.models_dir) as staged:
        save_weights(module, staged / WEIGHTS)
        atomic_write_text(staged / CONFIG, config.to_json())
        with registry.transaction(name, "saving the scoring classifier") as change:
            change.put(staged, replace=True)
    return registry.user_entry(name)


def training_plan(n: int, epochs: int | None = None) -> tuple[int, int]:
    """(epochs, batch size) for n training images: MNIST gets 2 epochs of 128; a 150-image folder gets
    batches of 16 and enough epochs for MIN_STEPS updates. An explicit `epochs` is kept as given."""
    batch = min(DEFAULT_BATCH, max(16, n // 8))
    if epochs is None:
        epochs = max(DEFAULT_EPOCHS, math.ceil(MIN_STEPS / math.ceil(n / batch)))
    return epochs, batch


def _find(registry: Registry, name: str) -> ModelEntry | None:
    return next((e for e in registry.entries() if e.name == name), None)


def load_or_train_classifier(
    dataset_spec: str,
    *,
    data_dir=None,
    device: str | torch.device = "cpu",
    registry: Registry | None = None,
    retrain: bool = False,
    epochs: int | None = None,
    seed: int = 0,
    download: bool = False,
    notify: Notify = _quiet,
) -> Classifier:
    """The classifier that scores `dataset_spec`: the registry's `<dataset>-classifier`, else the shipped
    one, else one trained from the data and cached in the registry (see the module docstring).

    A cached classifier that cannot be read is an error naming the file (delete it to retrain); a damaged
    shipped one is an error too. `retrain=True` trains afresh and replaces the registry copy. `epochs`
    None: see `training_plan`. `download`: a dataset that training needs and `data_dir` lacks is fetched there.
    """
    from diffcli.device import resolve_device
    from diffcli.scoring import shipped

    registry = registry or Registry()
    dataset_spec = canonical_spec(dataset_spec)
    name = classifier_name(dataset_spec)
    torch_device = resolve_device(device) if isinstance(device, str) else device
    entry = _find(registry, name)
    if entry is not None and not retrain:
        classifier = load_classifier(entry, torch_device)
        if classifier.dataset != dataset_spec:
            raise DiffcliError(
                f"classifier {name!r} was trained on {classifier.dataset!r}, not {dataset_spec!r}", _rm_hint(name)
            )
        if shipped.available(dataset_spec):
            notify(
                f"scoring with {name} from the registry, which takes precedence over the shipped one "
                f"(`diffcli models rm {name} --yes` returns to it)"
            )
        return classifier
    has_shipped = shipped.available(dataset_spec)
    if has_shipped and not retrain:
        return shipped.load_classifier(dataset_spec, torch_device)
    _check_can_cache(registry, name)  # before minutes of training, not after
    if has_shipped:
        notify(
            f"training the {dataset_spec} scoring classifier afresh (cached as model {name!r}, "
            f"which takes precedence over the shipped one until `diffcli models rm {name} --yes`)"
        )
    else:
        notify(f"training the {dataset_spec} scoring classifier (cached as model {name!r})")
    trained = train_for_dataset(
        dataset_spec, data_dir=data_dir, device=torch_device, epochs=epochs, seed=seed, download=download, notify=notify
    )
    save_classifier(
        registry,
        name,
        dataset_spec,
        trained.module,
        trained.test_accuracy,
        trained.train,
        trained.test,
        trained.training,
    )
    return Classifier(
        trained.module,
        name,
        dataset_spec,
        list(trained.train.label_names),
        trained.test_accuracy,
        trained.module.channels,
        trained.module.size,
        weights_fingerprint(trained.module),
    )


def _check_can_cache(registry: Registry, name: str) -> None:
    """Refuse a registry that cannot take the classifier (read-only, no permission) before training it."""
    from diffcli.io.atomic import check_can_create_files, first_missing

    missing = first_missing(registry.models_dir)
    folder = registry.models_dir if missing is None else missing.parent
    hint = "make the registry writable, or point DIFFCLI_HOME at a folder you can write to"
    check_can_create_files(folder, f"the scoring classifier {name!r} into the registry", hint)


@dataclass
class TrainedClassifier:
    """What `train_for_dataset` returns: the network, its test accuracy, the splits and the training record."""

    module: ScoringCNN
    test_accuracy: float
    train: object  # ImageDataset
    test: object  # ImageDataset
    training: dict


def train_for_dataset(
    dataset_spec: str,
    *,
    data_dir=None,
    device: str | torch.device = "cpu",
    epochs: int | None = None,
    seed: int = 0,
    download: bool = False,
    notify: Notify = _quiet,
) -> TrainedClassifier:
    """Train a dataset's scoring classifier from its files with the one recipe (`training_plan`, `train_classifier`).

    Shared by `load_or_train_classifier` and scripts/build_scorers.py, so a shipped classifier and one that
    `eval --retrain-classifier` trains come from the same code, seed and settings."""
    from diffcli import __version__

    dataset_spec = canonical_spec(dataset_spec)
    torch_device = torch.device(device) if not isinstance(device, torch.device) else device
    train = load_split(dataset_spec, "train", data_dir, download=download, notify=notify)
    test = load_split(dataset_spec, "test", data_dir, download=download, notify=notify)
    epochs, batch_size = training_plan(len(train), epochs)
    started = time.perf_counter()
    module, test_accuracy = train_classifier(
        train, test, epochs=epochs, batch_size=batch_size, device=torch_device, seed=seed, notify=notify
    )
    training = {
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": f"AdamW, one-cycle lr up to {MAX_LR}",
        "augmentation": (
            f"random shifts up to {MAX_SHIFT} px; {int(100 * BLUR_SHARE)} % of each batch blurred "
            f"(sigma {BLUR_SIGMA[0]}-{BLUR_SIGMA[1]} px at 28 px)"
        ),
        "train_images": len(train),
        "test_images": len(test),
        "seed": seed,
        "device": str(torch_device),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "torch": torch.__version__,
        "diffcli": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return TrainedClassifier(module, test_accuracy, train, test, training)


# ----- inference -----


def as_pixels(classifier: Classifier, pixels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """float32 [N, C, S, S] in [0, 1] (uint8 is scaled), checked against what the classifier reads."""
    x = torch.as_tensor(pixels)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.ndim == 3 and classifier.channels == 1:
        x = x[:, None]  # [N, H, W] greyscale
    want = [classifier.channels, classifier.size, classifier.size]
    if x.ndim != 4 or list(x.shape[1:]) != want:
        got = "x".join(map(str, x.shape[1:])) if x.ndim == 4 else f"shape {list(x.shape)}"
        raise DiffcliError(
            f"images are {got} but classifier {classifier.name!r} reads {'x'.join(map(str, want))}",
            "score a model trained on the same dataset",
        )
    return x


@torch.no_grad()
def _batched(classifier: Classifier, pixels, batch_size: int, fn, width: int) -> torch.Tensor:
    x = as_pixels(classifier, pixels)
    classifier.module.eval()
    device = classifier.device
    outs = [fn(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0, width)


def predict(classifier: Classifier, pixels: torch.Tensor | np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """Class probabilities [N, K] (float32, CPU) for [0, 1] pixels [N, C, S, S]."""
    return _batched(classifier, pixels, batch_size, classifier.module, classifier.module.num_classes).softmax(dim=1)


def embed(classifier: Classifier, pixels: torch.Tensor | np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """Penultimate-layer features [N, D] (float32, CPU): the space FID is measured in."""
    return _batched(classifier, pixels, batch_size, classifier.module.features, classifier.module.feature_dim)
