"""What a run shows of itself while it trains: the validation loss, the live preview and the epochs'
sample grids.

Sampling never changes a model: every preview, grid and validation pass runs the network in eval mode
(`inference`), so the course UNet's BatchNorm normalises with its running statistics and never updates
them from pure-noise batches (which would otherwise be saved in the checkpoint right after). Previews,
grids and validation use their own generators and the EMA copy, never the training state.

Each function takes the run's Trainer (training/trainer.py, which imports this module: not imported here).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from diffcli.training.artifacts import write_sample_grid
from diffcli.training.preview import chain_preview

VALIDATION_BATCH = 256
VALIDATION_SEED = 12345  # fixed noise: the validation loss is comparable across epochs


@contextmanager
def inference(network: nn.Module) -> Iterator[nn.Module]:
    """`network` in eval mode for the duration (BatchNorm reads its running statistics and leaves them
    alone, dropout is off), then back in the mode it was in."""
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            yield network
    finally:
        network.train(was_training)


@contextmanager
def sampling_model(trainer: Any) -> Iterator[Any]:
    """The inference network wrapped for `generate`, in eval mode: previews and sample grids."""
    from diffcli.models.backends.unet import UNetModel

    with inference(trainer.inference_network()) as network:
        yield UNetModel.from_network(trainer.entry, trainer.config, network, trainer.device)


def validation_loss(trainer: Any) -> float | None:
    """Mean loss of the raw network on the validation images, with fixed noise (comparable across epochs)."""
    val_images, val_labels = trainer.val_images, trainer.val_labels
    if val_images is None or len(val_images) == 0:
        return None
    limit = trainer.settings.val_limit or len(val_images)
    images = val_images[:limit]
    labels = val_labels[:limit] if val_labels is not None else None
    gen = torch.Generator().manual_seed(VALIDATION_SEED)
    device, total, count = trainer.device, 0.0, 0
    with inference(trainer.network) as network:
        for start in range(0, len(images), VALIDATION_BATCH):
            x0 = trainer.to_range(images[start : start + VALIDATION_BATCH].to(device))
            n = len(x0)
            t = torch.randint(0, trainer.schedule.timesteps, (n,), generator=gen).to(device)
            noise = torch.randn(x0.shape, generator=gen).to(device)
            lab = labels[start : start + VALIDATION_BATCH].to(device) if labels is not None else None
            kept = torch.zeros(n, dtype=torch.bool, device=device)  # no class dropout
            with trainer.autocast():
                per_sample, _ = trainer.batch_loss(network, x0, lab, t, noise, kept)
            total += float(per_sample.sum())
            count += n
    return total / count


def _preview_images(trainer: Any) -> torch.Tensor | None:
    """A few validation images, for the single-step denoiser's preview."""
    if trainer.val_images is None:
        return None
    return trainer.to_range(trainer.val_images[:4].to(trainer.device))


def show_preview(trainer: Any, view: Any) -> None:
    """Show the live reverse-chain preview (from the inference weights, in eval mode)."""
    with sampling_model(trainer) as model:
        view.preview(*chain_preview(model, trainer.settings, trainer.step, _preview_images(trainer)))


def write_grid(trainer: Any, path: Path) -> None:
    """Write the end-of-epoch sample grid (from the inference weights, in eval mode)."""
    with sampling_model(trainer) as model:
        write_sample_grid(model, trainer.settings, path, trainer.epoch, _preview_images(trainer))
