"""From `diffcli train`'s options to a finished model: settings, data, registry folder, the loop, the report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from diffcli import console
from diffcli.errors import DiffcliError, UsageError


def default_name(settings) -> str:
    """DATASET-COND, e.g. mnist-class; a folder dataset uses the folder's name."""
    dataset = settings.dataset
    if dataset.startswith("folder:"):
        dataset = Path(dataset[len("folder:"):]).expanduser().resolve().name or "folder"
    suffix = "denoiser" if settings.objective == "denoise" else settings.cond
    return f"{dataset}-{suffix}"


def saved_settings(entry) -> dict[str, Any]:
    """The recipe a model was trained with (from its checkpoint), for --resume."""
    from diffcli.train.checkpoint import CHECKPOINT, load_checkpoint

    state = load_checkpoint(entry.train_dir / CHECKPOINT, f"model {entry.name!r}")
    return state["settings"]


def run_training(
    name: Optional[str],
    preset: str,
    overrides: dict[str, Any],
    *,
    resume: bool,
    force: bool,
    device: str,
    json_output: bool,
    quiet: bool,
    set_default: bool = False,
) -> None:
    import torch

    from diffcli.cli.common import command_line, registry
    from diffcli.data import load_dataset
    from diffcli.device import resolve_device
    from diffcli.train import distributed
    from diffcli.train.recipe import TrainSettings, settings_for
    from diffcli.train.trainer import Trainer, prepare_folder
    from diffcli.tui.progress import RunView, choose_mode

    dist = distributed.detect()
    reg = registry()
    if resume:
        if not name:
            raise UsageError("--resume needs --name: the model to continue")
        entry = reg.user_entry(name)
        settings = TrainSettings.from_dict(saved_settings(entry))
        changes = {k: overrides[k] for k in ("epochs", "max_steps", "data_dir") if overrides.get(k) is not None}
        if "epochs" in changes and changes["epochs"] != settings.epochs:
            console.notice(f"extending/shortening the run from {settings.epochs} to {changes['epochs']} epochs")
        settings = replace(settings, **changes)
        settings.validate()
    else:
        values = dict(overrides)
        values.setdefault("dataset", None)
        if values.get("dataset") is None:
            values["dataset"] = "mnist"
        settings = settings_for(preset, values)
        entry = reg.user_entry(name or default_name(settings))
    if not resume and any(e.name == entry.name and e.builtin for e in reg.entries()):
        console.notice(f"a built-in model is also called {entry.name!r}; yours will take its place in every command")

    torch_device = distributed.setup(dist, resolve_device(device))
    if dist.is_main:
        prepare_folder(entry, resume, force)
    distributed.barrier(dist)

    notify = console.notice if dist.is_main else (lambda message: None)
    train_data = load_dataset(settings.dataset, "train", settings.data_dir, limit=settings.limit, seed=settings.seed, notify=notify)
    try:
        val_data = load_dataset(settings.dataset, "test", settings.data_dir, limit=settings.val_limit, seed=settings.seed, notify=notify)
    except DiffcliError:
        val_data = None  # a folder dataset has no test split: validation is skipped
    if settings.cond == "class" and train_data.labels is None:
        raise DiffcliError(f"{settings.dataset} has no class labels", "use --cond time, or give the folder one subfolder per class")

    mode = choose_mode(quiet, json_output)
    trainer = Trainer(settings, entry, train_data, val_data, torch_device, RunView, resume=resume, dist=dist, command=command_line())
    if dist.is_main and not resume:
        console.info(
            f"training {entry.name!r} on {train_data.name} ({len(train_data)} images, {settings.epochs} epochs, batch {trainer.batch}"
            f"{f' over {dist.world_size} processes' if dist.enabled else ''}) on {torch_device}"
        )
    elif dist.is_main:
        console.info(f"resuming {entry.name!r} at step {trainer.step}/{trainer.total_steps} (epoch {trainer.epoch + 1})")
    try:
        result = trainer.run(mode)
    finally:
        distributed.teardown(dist)
    if not dist.is_main:
        return
    if set_default:
        reg.set_default(entry.name)
    if json_output:
        console.emit_json({"event": "done", **{k: v for k, v in result.__dict__.items() if k != "history"}})
        return
    state = "finished" if result.completed else "stopped"
    console.info(
        f"{state} {entry.name!r}: step {result.step}/{result.total_steps}, train loss {result.train_loss}, "
        f"validation loss {result.val_loss}, {result.wall_seconds:.0f} s at {result.images_per_second:.0f} img/s"
    )
    console.info(f"artifacts in {entry.train_dir}; try `diffcli sample --model {entry.name}" + (" --class 7`" if settings.cond == "class" else "`"))
