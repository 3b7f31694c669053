"""Saving a run into its model folder: the resumable checkpoint, the inference weights with the config and
its provenance (usable mid-training), the loss artifacts; and what a non-finite loss leaves behind.

Each function takes the run's Trainer (training/trainer.py, which imports this module: not imported here).
"""

from __future__ import annotations

import os
import platform
from typing import Any

import torch

from diffcli import __version__
from diffcli.errors import DiffcliError
from diffcli.io.atomic import atomic_write_text, check_free_space, make_dirs
from diffcli.models.networks import parameter_count
from diffcli.models.weights import save_weights
from diffcli.training.artifacts import write_loss_artifacts
from diffcli.training.checkpoint import save_checkpoint, trainer_state


def write_weights(trainer: Any, status: str) -> None:
    """Inference weights (EMA), raw weights, and the config with provenance: usable mid-training."""
    folder = trainer.entry.path
    save_weights(trainer.inference_network(), folder / "model.safetensors")
    if trainer.ema is not None:
        save_weights(trainer.network, folder / "model-raw.safetensors")
    seconds, seen = trainer.wall_seconds, trainer.images_seen
    dist = trainer.dist
    trainer.config.training.update(
        status=status,
        epochs_done=trainer.epoch,
        steps=trainer.step,
        total_steps=trainer.total_steps,
        wall_seconds=round(seconds, 1),
        images_seen=seen,
        images_per_second=round(seen / seconds, 1) if seconds else None,
        parameters=parameter_count(trainer.network),
        device=str(trainer.device) + (f" x{dist.world_size}" if dist.enabled else ""),
        torch=torch.__version__,
        diffcli=__version__,
        machine=f"{platform.machine()} {os.cpu_count()} cores",
        command=trainer.command,
        recipe=trainer.settings.preset,
        seed=trainer.settings.seed,
    )
    atomic_write_text(folder / "config.json", trainer.config.to_json())


def save(trainer: Any, status: str) -> None:
    """Checkpoint, weights, config and loss artifacts as of the trainer's step (rank 0 only), then
    `trainer.on_saved(status)`. Space is checked before anything is rewritten."""
    if not trainer.dist.is_main or trainer.saved == (trainer.step, status):
        return  # the same state again (the end right after an epoch's save): it may only fail, never add
    entry = trainer.entry
    make_dirs(trainer.train_dir)
    rewritten = [trainer.checkpoint_path, entry.weights_path("ema"), entry.weights_path("raw")]
    check_free_space(entry.path, rewritten, f"cannot save model {entry.name!r}")
    save_checkpoint(trainer.checkpoint_path, trainer_state(trainer))
    write_weights(trainer, status)
    write_loss_artifacts(trainer.train_dir, trainer.history)
    trainer.saved = (trainer.step, status)
    if trainer.on_saved is not None:
        trainer.on_saved(status)


def diverged(trainer: Any, loss: float) -> DiffcliError:
    """The error for a non-finite loss. The state is saved only while its weights are still finite (a
    skipped mixed-precision step): a model's last good checkpoint is never overwritten with NaN."""
    step = trainer.step
    fix = "lower `lr` or raise `warmup_steps`, and start over with `force` (resuming repeats the same steps)"
    tensors = [t for net in (trainer.network, trainer.inference_network()) for t in net.state_dict().values()]
    if all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point()):
        save(trainer, "diverged")
        return DiffcliError(f"the loss became {loss} at step {step}; the last finite state was saved", fix)
    if not trainer.checkpoint_path.exists():  # a fresh run not promoted yet: nothing to keep
        return DiffcliError(
            f"the loss became {loss} at step {step} and the weights are no longer finite; nothing was registered",
            "lower `lr` or raise `warmup_steps`, and train again",
        )
    return DiffcliError(
        f"the loss became {loss} at step {step} and the weights are no longer finite;"
        f" model {trainer.entry.name!r} keeps its last checkpoint",
        fix,
    )
