"""The `train` job: from a recipe (a preset plus overrides) to a finished model in the registry.

Settings, data, the registry folder, the loop (training/trainer.py) and the result. Runs the same under
`torchrun` (only rank 0 writes and reports).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from diffcli import checks, console
from diffcli.errors import DiffcliError, UsageError
from diffcli.jobs.progress import ProgressFactory, silent

RESUMABLE = ("epochs", "max_steps", "data_dir")  # what may change when a run is resumed
RECIPE_FIELDS = (
    "dataset", "data_dir", "cond", "objective", "noise_sigma", "epochs", "batch_size", "lr", "lr_schedule", "warmup_steps", "loss_weighting", "timestep_sampling", "arch", "width",
    "timesteps", "schedule", "ema", "p_uncond", "guidance", "guidance_interval", "seed", "max_steps", "limit", "precision", "channels_last", "compile",
)

TEXT_SETTINGS = (
    "dataset", "cond", "objective", "lr_schedule", "loss_weighting", "timestep_sampling", "arch", "schedule", "precision",
)
FLAG_SETTINGS = ("ema", "channels_last", "compile")


@dataclass
class TrainRequest:
    """A training run.

    name: the registry name (default DATASET-COND). preset: default (the measured CPU recipe), course
    (the course's UNet and schedule) or denoiser (course B.1). recipe: single settings over the preset
    (see RECIPE_FIELDS and training/recipe.py; None values mean "the preset's"). resume: continue the
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
    if request.name is not None:
        checks.text("name", request.name)
    for key, value in request.recipe.items():  # the types the recipe reads; numbers are checked by their bounds
        if value is not None and key in TEXT_SETTINGS:
            checks.text(key, value)
        elif value is not None and key in FLAG_SETTINGS:
            checks.flag(key, value)
        elif value is not None and key == "data_dir":
            checks.path(key, value)
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


def saved_settings(entry) -> tuple[dict[str, Any], int]:
    """The recipe a model was trained with and the steps it has done (from its checkpoint), for resuming."""
    from diffcli.training.checkpoint import CHECKPOINT, load_checkpoint

    state = load_checkpoint(entry.train_dir / CHECKPOINT, f"model {entry.name!r}")
    return state["settings"], int(state.get("step", 0))


def train(request: TrainRequest, progress: ProgressFactory = silent):
    """Train as `request` says; returns the TrainResult (training/trainer.py) on the process that reports
    (None on the other ranks under torchrun). Ctrl-C saves a resumable checkpoint and raises
    InterruptedRun."""
    from diffcli.device import resolve_device
    from diffcli.models.locks import ModelLock
    from diffcli.models.registry import Registry
    from diffcli.training import distributed
    from diffcli.training.recipe import TrainSettings, settings_for
    from diffcli.training.trainer import check_target

    check(request)
    dist = distributed.detect()
    registry = Registry()
    if request.resume:
        if not request.name:
            raise UsageError("`resume` needs `name`: the model to continue")
        entry = registry.user_entry(request.name)
        saved, steps_done = saved_settings(entry)
        settings = TrainSettings.from_dict(saved)
        changes = {k: request.recipe[k] for k in RESUMABLE if request.recipe.get(k) is not None}
        if "epochs" in changes and changes["epochs"] != settings.epochs:
            console.notice(f"extending/shortening the run from {settings.epochs} to {changes['epochs']} epochs")
        settings = replace(settings, **changes)
        settings.validate()
        if settings.max_steps is not None and steps_done >= settings.max_steps:
            console.notice(f"the run already stopped at its `max_steps` {settings.max_steps}: nothing to continue; pass a larger `max_steps` to go on")
    else:
        values = dict(request.recipe)
        if values.get("dataset") is None:
            values["dataset"] = "mnist"
        settings = settings_for(request.preset, values)
        entry = registry.user_entry(request.name or default_name(settings))
    if not request.resume and any(e.name == entry.name and e.builtin for e in registry.entries()):
        console.notice(f"a built-in model is also called {entry.name!r}; yours will take its place everywhere")

    torch_device = distributed.setup(dist, resolve_device(request.device))
    lock = ModelLock(registry.root, entry.name) if dist.is_main else None
    staging: Optional[StagedRun] = None
    try:
        if lock is not None:
            lock.acquire()
            replacing = check_target(entry, request.resume, request.force)
            if not request.resume:
                staging = StagedRun(entry, registry.models_dir, replacing)
        distributed.barrier(dist)
        return _run(request, settings, entry, staging, registry, dist, torch_device, progress)
    finally:
        if staging is not None:
            staging.discard()
        if lock is not None:
            lock.release()
        distributed.teardown(dist)


def _run(request: TrainRequest, settings, entry, staging: Optional["StagedRun"], registry, dist, torch_device, progress):
    """Load the data, build the trainer (in the staging folder of a fresh run) and train."""
    from diffcli.data import load_dataset
    from diffcli.training.trainer import Trainer

    notify = console.notice if dist.is_main else (lambda message: None)
    train_data = load_dataset(settings.dataset, "train", settings.data_dir, limit=settings.limit, seed=settings.seed, notify=notify)
    try:
        val_data = load_dataset(settings.dataset, "test", settings.data_dir, limit=settings.val_limit, seed=settings.seed, notify=notify)
    except DiffcliError:
        val_data = None  # a folder dataset has no test split: validation is skipped
    if settings.cond == "class" and train_data.labels is None:
        raise DiffcliError(f"{settings.dataset} has no class labels", "train with `cond` time, or give the folder one subfolder per class")

    trainer = Trainer(settings, staging.entry if staging else entry, train_data, val_data, torch_device, progress, resume=request.resume, dist=dist, command=request.command)
    if staging is not None:
        trainer.on_saved = lambda status: staging.promote(trainer, status)
    if dist.is_main and not request.resume:
        console.info(
            f"training {entry.name!r} on {train_data.name} ({len(train_data)} images, {settings.epochs} epoch{'' if settings.epochs == 1 else 's'}, batch {trainer.batch}"
            f"{f' over {dist.world_size} processes' if dist.enabled else ''}) on {torch_device}, {trainer.settings.precision}"
        )
    elif dist.is_main:
        console.info(f"resuming {entry.name!r} at step {trainer.step}/{trainer.total_steps} (epoch {trainer.epoch + 1})")
    result = trainer.run()
    if not dist.is_main:
        return None
    if request.set_default:
        registry.set_default(entry.name)
    return result


class StagedRun:
    """A fresh run trains in a hidden folder beside the registry's models and takes the model's place
    only when it has saved its first checkpoint: until then a failure (bad data, a bad option, Ctrl-C
    before anything was saved) leaves an existing model of that name untouched, and leaves no half-made
    model behind. The swap is two renames: the old folder aside, the new one into place; then the old
    one is deleted."""

    def __init__(self, entry, models_dir: Path, replacing: bool) -> None:
        from diffcli.io.atomic import make_dirs
        from diffcli.models.registry import ModelEntry

        self.final = entry
        self.replacing = replacing
        recover(models_dir)
        self.path = make_dirs(models_dir) / f".staging-{entry.name}-{os.getpid()}"
        if self.path.exists():
            shutil.rmtree(self.path)
        self.entry = ModelEntry(entry.name, self.path, builtin=False)
        self.promoted = False

    def promote(self, trainer, status: str) -> None:
        """Swap the staged run into place after its first save (a diverged first save replaces nothing)."""
        if self.promoted or (status == "diverged" and self.replacing):
            return
        from diffcli.io.atomic import os_error, swap_in_folder

        aside = self.final.path.with_name(f".replaced-{self.final.name}-{os.getpid()}")
        try:
            swap_in_folder(self.path, self.final.path, aside)
        except OSError as exc:
            raise os_error("move the new model into", self.final.path, exc) from exc
        self.promoted = True
        trainer.move_to(self.final)
        shutil.rmtree(aside, ignore_errors=True)

    def discard(self) -> None:
        """Remove what a run that never swapped in left behind."""
        if not self.promoted:
            shutil.rmtree(self.path, ignore_errors=True)


def recover(models_dir: Path) -> None:
    """Tidy what killed runs left (kill -9, a closed terminal): a staging folder of a dead process is
    removed; a model moved aside by a swap that never finished is put back."""
    from diffcli.io.atomic import _pid_alive

    if not models_dir.is_dir():
        return
    for folder in models_dir.iterdir():
        kind, _, rest = folder.name.partition("-")
        name, _, pid = rest.rpartition("-")
        if kind not in (".staging", ".replaced") or not pid.isdigit() or _pid_alive(int(pid)):
            continue
        if kind == ".replaced" and not (models_dir / name).exists():
            os.rename(folder, models_dir / name)  # the new run never arrived: the old model returns
        else:
            shutil.rmtree(folder, ignore_errors=True)
