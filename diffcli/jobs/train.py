"""The `train` job: from a recipe (a preset plus overrides) to a finished model in the registry.

Settings, data, the registry folder, the loop (train/trainer.py) and the result. Runs the same under
`torchrun` (only rank 0 writes and reports).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from diffcli import console
from diffcli.errors import DiffcliError, UsageError
from diffcli.jobs.progress import ProgressFactory, silent

RESUMABLE = ("epochs", "max_steps", "data_dir")  # what may change when a run is resumed
RECIPE_FIELDS = (
    "dataset", "data_dir", "cond", "objective", "noise_sigma", "epochs", "batch_size", "lr", "lr_schedule", "arch", "width",
    "timesteps", "schedule", "ema", "p_uncond", "guidance", "seed", "max_steps", "limit", "precision", "channels_last", "compile",
)


@dataclass
class TrainRequest:
    """A training run.

    name: the registry name (default DATASET-COND). preset: default (the measured CPU recipe), course
    (the course's UNet and schedule) or denoiser (course B.1). recipe: single settings over the preset
    (see RECIPE_FIELDS and train/recipe.py; None values mean "the preset's"). resume: continue the
    model's last checkpoint exactly (only epochs, max_steps and data_dir may change). force: replace a
    model of the same name. command: provenance recorded in the model's config.
    """

    name: Optional[str] = None
    preset: str = "default"
    recipe: dict[str, Any] = field(default_factory=dict)
    resume: bool = False
    force: bool = False
    set_default: bool = False
    device: str = "auto"
    command: str = ""


def check(request: TrainRequest) -> None:
    """What can be refused before anything is loaded."""
    unknown = sorted(set(request.recipe) - set(RECIPE_FIELDS))
    if unknown:
        raise UsageError(f"unknown training setting(s): {', '.join(unknown)}", f"known: {', '.join(RECIPE_FIELDS)}")
    if request.resume and request.force:
        raise UsageError("`resume` continues a model and `force` replaces it: pick one")
    if request.resume:
        extra = [k for k, v in request.recipe.items() if v is not None and k not in RESUMABLE]
        if request.preset != "default":
            extra.append("preset")
        if extra:
            raise UsageError(f"`resume` continues with the saved recipe; drop {', '.join(f'`{k}`' for k in extra)}", "only `epochs`, `max_steps`, `data_dir` and `device` may change")


def default_name(settings) -> str:
    """DATASET-COND, e.g. mnist-class; a folder dataset uses the folder's name."""
    dataset = settings.dataset
    if dataset.startswith("folder:"):
        dataset = Path(dataset[len("folder:"):]).expanduser().resolve().name or "folder"
    suffix = "denoiser" if settings.objective == "denoise" else settings.cond
    return f"{dataset}-{suffix}"


def saved_settings(entry) -> dict[str, Any]:
    """The recipe a model was trained with (from its checkpoint), for resuming."""
    from diffcli.train.checkpoint import CHECKPOINT, load_checkpoint

    state = load_checkpoint(entry.train_dir / CHECKPOINT, f"model {entry.name!r}")
    return state["settings"]


def train(request: TrainRequest, progress: ProgressFactory = silent):
    """Train as `request` says; returns the TrainResult (train/trainer.py) on the process that reports
    (None on the other ranks under torchrun). Ctrl-C saves a resumable checkpoint and raises
    InterruptedRun."""
    from diffcli.data import load_dataset
    from diffcli.device import resolve_device
    from diffcli.models.registry import Registry
    from diffcli.train import distributed
    from diffcli.train.recipe import TrainSettings, settings_for
    from diffcli.train.trainer import Trainer, prepare_folder

    check(request)
    dist = distributed.detect()
    registry = Registry()
    if request.resume:
        if not request.name:
            raise UsageError("`resume` needs `name`: the model to continue")
        entry = registry.user_entry(request.name)
        settings = TrainSettings.from_dict(saved_settings(entry))
        changes = {k: request.recipe[k] for k in RESUMABLE if request.recipe.get(k) is not None}
        if "epochs" in changes and changes["epochs"] != settings.epochs:
            console.notice(f"extending/shortening the run from {settings.epochs} to {changes['epochs']} epochs")
        settings = replace(settings, **changes)
        settings.validate()
    else:
        values = dict(request.recipe)
        if values.get("dataset") is None:
            values["dataset"] = "mnist"
        settings = settings_for(request.preset, values)
        entry = registry.user_entry(request.name or default_name(settings))
    if not request.resume and any(e.name == entry.name and e.builtin for e in registry.entries()):
        console.notice(f"a built-in model is also called {entry.name!r}; yours will take its place everywhere")

    torch_device = distributed.setup(dist, resolve_device(request.device))
    if dist.is_main:
        prepare_folder(entry, request.resume, request.force)
    distributed.barrier(dist)

    notify = console.notice if dist.is_main else (lambda message: None)
    train_data = load_dataset(settings.dataset, "train", settings.data_dir, limit=settings.limit, seed=settings.seed, notify=notify)
    try:
        val_data = load_dataset(settings.dataset, "test", settings.data_dir, limit=settings.val_limit, seed=settings.seed, notify=notify)
    except DiffcliError:
        val_data = None  # a folder dataset has no test split: validation is skipped
    if settings.cond == "class" and train_data.labels is None:
        raise DiffcliError(f"{settings.dataset} has no class labels", "train with `cond` time, or give the folder one subfolder per class")

    trainer = Trainer(settings, entry, train_data, val_data, torch_device, progress, resume=request.resume, dist=dist, command=request.command)
    if dist.is_main and not request.resume:
        console.info(
            f"training {entry.name!r} on {train_data.name} ({len(train_data)} images, {settings.epochs} epochs, batch {trainer.batch}"
            f"{f' over {dist.world_size} processes' if dist.enabled else ''}) on {torch_device}"
        )
    elif dist.is_main:
        console.info(f"resuming {entry.name!r} at step {trainer.step}/{trainer.total_steps} (epoch {trainer.epoch + 1})")
    try:
        result = trainer.run()
    finally:
        distributed.teardown(dist)
    if not dist.is_main:
        return None
    if request.set_default:
        registry.set_default(entry.name)
    return result
