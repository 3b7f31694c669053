"""Training a scoring classifier: the one recipe (augmentation, optimizer, learning-rate schedule, epochs
for a dataset's size) that `diffcli eval` uses when it trains a dataset's classifier and that
scripts/build_scorers.py uses for the shipped ones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial

import torch
import torch.nn.functional as F

from diffcli.errors import DiffcliError, UsageError
from diffcli.scoring.network import ScoringCNN
from diffcli.scoring.splits import canonical_spec, check_labelled, load_split
from diffcli.training.optimizer import make_adamw

Notify = Callable[[str], None]

DEFAULT_EPOCHS = 2
DEFAULT_BATCH = 128
MIN_STEPS = 300  # small datasets (folders) train for more epochs, so every classifier gets enough updates
MAX_LR = 3e-3
MAX_SHIFT = 2  # pixels: generated digits are often a little off-centre
BLUR_SHARE = 0.25  # of each batch is Gaussian-blurred, so hybrids' low-pass ("seen from afar") can be read
BLUR_SIGMA = (0.5, 2.5)  # pixels at 28 px, scaled with the image size


def _quiet(message: str) -> None:
    pass


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
    check_labelled(train, "train")
    check_labelled(test, "test")
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


def training_plan(n: int, epochs: int | None = None) -> tuple[int, int]:
    """(epochs, batch size) for n training images: MNIST gets 2 epochs of 128; a 150-image folder gets
    batches of 16 and enough epochs for MIN_STEPS updates. An explicit `epochs` is kept as given."""
    batch = min(DEFAULT_BATCH, max(16, n // 8))
    if epochs is None:
        epochs = max(DEFAULT_EPOCHS, math.ceil(MIN_STEPS / math.ceil(n / batch)))
    return epochs, batch


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
