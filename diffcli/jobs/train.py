"""The `train` job: from a recipe (a preset plus overrides) to a finished model in the registry.

Settings, data, the registry folder, the loop (training/trainer.py) and the result. Runs the same under
`torchrun` (only rank 0 writes and reports).
"""

from __future__ import annotations

import contextlib
import difflib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from diffcli import console, params
from diffcli.errors import DiffcliError, UsageError
from diffcli.params import param
from diffcli.progress import ProgressFactory, silent
from diffcli.training.recipe import DOWNLOAD, PRESET_NAMES, RECIPE, RUN, recipe_fields

RESUMABLE = ("epochs", "max_steps", "data_dir")  # what may change when a run is resumed

# What `train` and `distill` do with the registry: declared once.
RESUME = dict(help="Continue the model's last checkpoint exactly where it stopped.", panel=RUN)
FORCE = dict(
    help="Replace an existing model of the same name (once the new run has saved its first checkpoint).", panel=RUN
)
SET_DEFAULT = dict(help="Make the trained model the registry default.", panel=RUN)


@dataclass(kw_only=True)
class TrainRequest:
    """A training run: the registry name, a preset with single recipe settings over it (`recipe`: the
    fields of training/recipe.py's TrainSettings and NetworkChoice; None means "the preset's"), and what to
    do with a model of the same name. command: provenance recorded in the model's config."""

    name: str | None = param(
        None,
        help="Registry name of the model (default: DATASET-COND).",
        metavar="NAME",
        panel=RUN,
        complete="models",
    )
    preset: str = param(
        "default",
        help="Recipe: default (the measured CPU recipe, docs/performance.md), course (the course's "
        "UNet and schedule), denoiser (course B.1).",
        choices=PRESET_NAMES,
        metavar="NAME",
        panel=RECIPE,
    )
    recipe: dict[str, Any] = field(default_factory=dict)
    # Not part of the recipe: where the data comes from is no property of the model, so it is not recorded.
    download: bool = param(False, **DOWNLOAD)
    resume: bool = param(False, **RESUME)
    force: bool = param(False, **FORCE)
    set_default: bool = param(False, **SET_DEFAULT)
    device: str = "auto"
    command: str = ""


def check(request: TrainRequest) -> None:
    """What can be refused before anything is loaded."""
    params.check(request)
    if not isinstance(request.recipe, dict):
        raise UsageError(f"`recipe` must be a mapping of training settings, got {request.recipe!r}")
    known = recipe_fields()
    for key in request.recipe:
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean `{near[0]}`?" if near else f"known: {', '.join(known)}"
            raise UsageError(f"unknown training setting `{key}`", hint)
    if request.resume and request.force:
        raise UsageError("`resume` continues a model and `force` replaces it: pick one")
    if request.resume:
        extra = [k for k, v in request.recipe.items() if v is not None and k not in RESUMABLE]
        if request.preset != "default":
            extra.append("preset")
        if extra:
            raise UsageError(
                f"`resume` continues with the saved recipe; drop {', '.join(f'`{k}`' for k in extra)}",
                "only `epochs`, `max_steps`, `data_dir` and `device` may change",
            )


def default_name(settings) -> str:
    """DATASET-COND, e.g. mnist-class; a folder dataset uses the folder's name."""
    dataset = settings.dataset
    if dataset.startswith("folder:"):
        dataset = Path(dataset[len("folder:") :]).expanduser().resolve().name or "folder"
    suffix = "denoiser" if settings.objective == "denoise" else settings.cond
    return f"{dataset}-{suffix}"


def saved_settings(entry) -> tuple[dict[str, Any], int]:
    """The recipe a model was trained with and the steps it has done (from its checkpoint), for resuming."""
    from diffcli.training.checkpoint import CHECKPOINT, load_checkpoint

    state = load_checkpoint(entry.train_dir / CHECKPOINT, f"model {entry.name!r}")
    return state["settings"], int(state.get("step", 0))


def train(request: TrainRequest, progress: ProgressFactory = silent, prepared=None):
    """Train as `request` says; returns the TrainResult (training/trainer.py) on the process that reports
    (None on the other ranks under torchrun). Ctrl-C saves a resumable checkpoint and raises
    InterruptedRun. `prepared`: a fresh run's whole recipe (TrainSettings) instead of a preset with
    `request.recipe` over it (`diffcli distill` builds its student's)."""
    from diffcli.device import resolve_device
    from diffcli.models.registry import Registry, os_failure
    from diffcli.training import distributed
    from diffcli.training.recipe import TrainSettings, settings_for

    check(request)
    dist = distributed.detect()
    registry = Registry()
    registry.check_root()
    registry.recover()  # before anything is read: a killed writer's half-done swap is finished first
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
            console.notice(
                f"the run already stopped at its `max_steps` {settings.max_steps}: nothing to continue; "
                "pass a larger `max_steps` to go on"
            )
    elif prepared is not None:
        settings = prepared
        settings.validate()
        entry = registry.user_entry(request.name or default_name(settings))
    else:
        values = dict(request.recipe)
        if values.get("dataset") is None:
            values["dataset"] = "mnist"
        settings = settings_for(request.preset, values)
        entry = registry.user_entry(request.name or default_name(settings))
    if not request.resume and any(e.name == entry.name and e.builtin for e in registry.entries()):
        console.notice(f"a built-in model is also called {entry.name!r}; yours will take its place everywhere")

    torch_device = distributed.setup(dist, resolve_device(request.device))
    staging: StagedRun | None = None
    try:
        with contextlib.ExitStack() as held:
            if dist.is_main:
                # The model's lock for the whole run (resumed runs write in place, fresh ones promote
                # through it): no import, rm or second run touches the model meanwhile.
                try:
                    txn = held.enter_context(registry.transaction(entry.name, "training it"))
                except OSError as exc:
                    raise os_failure(f"cannot train {entry.name!r}", exc) from None
                check_target(entry, request.resume, request.force)
                if not request.resume:
                    staging = held.enter_context(StagedRun(entry, registry, txn, request.force))
            distributed.barrier(dist)
            try:
                return _run(request, settings, entry, staging, registry, dist, torch_device, progress)
            except (DiffcliError, OSError) as exc:
                if staging is not None and not staging.promoted:
                    raise staging.reword(exc) from None
                raise
    finally:
        distributed.teardown(dist)


def _run(request: TrainRequest, settings, entry, staging: StagedRun | None, registry, dist, torch_device, progress):
    """Load the data, build the trainer (in the staging folder of a fresh run) and train."""
    from diffcli.data import load_dataset
    from diffcli.training.trainer import Trainer

    notify = console.notice if dist.is_main else (lambda message: None)
    data = dict(download=request.download, seed=settings.seed, notify=notify)
    if (settings.distillation or {}).get("method") == "reflow":
        from diffcli.training.reflow import teacher_pairs

        # The teacher's own samples are the data; there is no held-out set to validate on.
        train_data, val_data = teacher_pairs(settings, torch_device, progress), None
    else:
        train_data = load_dataset(settings.dataset, "train", settings.data_dir, limit=settings.limit, **data)
        try:
            val_data = load_dataset(settings.dataset, "test", settings.data_dir, limit=settings.val_limit, **data)
        except DiffcliError:
            val_data = None  # a folder dataset has no test split: validation is skipped
    if settings.cond == "class" and train_data.labels is None:
        raise DiffcliError(
            f"{settings.dataset} has no class labels",
            "train with `cond` time, or give the folder one subfolder per class",
        )

    trainer = Trainer(
        settings,
        staging.entry if staging else entry,
        train_data,
        val_data,
        torch_device,
        progress,
        resume=request.resume,
        dist=dist,
        command=request.command,
    )
    if staging is not None:
        trainer.on_saved = lambda status: staging.promote(trainer, status)
    if dist.is_main and not request.resume:
        processes = f" over {dist.world_size} processes" if dist.enabled else ""
        plan = settings.distillation
        doing = (
            f"distilling {entry.name!r} from {plan['teacher']!r} ({plan['method']}, {plan['steps']} steps from its"
            f" {plan['teacher_steps']})"
            if plan
            else f"training {entry.name!r}"
        )
        console.info(
            f"{doing} on {train_data.name} ({planned_work(trainer, len(train_data))}{processes})"
            f" on {torch_device}, {trainer.settings.precision}"
        )
    elif dist.is_main:
        console.info(
            f"resuming {entry.name!r} at step {trainer.step}/{trainer.total_steps} (epoch {trainer.epoch + 1})"
        )
    result = trainer.run()
    if not dist.is_main:
        return None
    if request.set_default:
        registry.set_default(entry.name)
    return result


def planned_work(trainer, images: int) -> str:
    """What the run will do, for its announcement: its epochs, or, when `max_steps` stops it first, the
    steps, images and share of an epoch that will actually run."""
    epochs = trainer.settings.epochs
    if trainer.total_steps >= trainer.planned_steps:
        return f"{images} images, {epochs} epoch{'' if epochs == 1 else 's'}, batch {trainer.batch}"
    steps = trainer.total_steps
    share = steps / trainer.steps_per_epoch
    number = f"{share:.2f}".rstrip("0").rstrip(".") if share >= 0.01 else "under 0.01"
    if share < 1 and number != "1":
        epoch = f"{number} of an epoch"
    else:
        epoch = f"{number} epoch{'' if number == '1' else 's'}"
    run = f"{steps} step{'' if steps == 1 else 's'} of batch {trainer.batch}: {steps * trainer.batch} images"
    return f"{images} images; {run}, {epoch} of the {epochs} planned"


class StagedRun:
    """A fresh run trains in a staging folder of the registry (models/transaction.py) and becomes the model
    only when it has saved its first checkpoint, through the model's transaction: until then a failure
    (bad data, a bad option, Ctrl-C before anything was saved) leaves an existing model of that name
    untouched and no half-made model behind, and a kill at any point of the swap leaves the old model or
    the new one. A run whose first save diverged, or whose weights are not finite, is never promoted.
    Without `force` it never replaces a model, whatever appeared while it trained."""

    def __init__(self, entry, registry, txn, force: bool) -> None:
        from diffcli.models.registry import ModelEntry
        from diffcli.models.transaction import Staging

        self.final = entry
        self.txn = txn
        self.force = force
        self.staging = Staging(registry.models_dir)
        self.path = self.staging.__enter__()
        self.entry = ModelEntry(entry.name, self.path, builtin=False)
        self.promoted = False

    def __enter__(self) -> StagedRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.staging.__exit__(*exc)  # a run that never swapped in leaves nothing

    def promote(self, trainer, status: str) -> None:
        """Swap the staged run into place after its first save."""
        if self.promoted:
            return
        from diffcli.io.atomic import os_error

        if status == "diverged" or not finite_weights(self.entry):
            raise DiffcliError(
                f"training {self.final.name!r} diverged (the loss or the weights stopped being finite) before its"
                " first checkpoint; nothing was registered",
                "lower `lr` or raise `warmup_steps`, and train again",
            )
        try:
            hint = "continue it with `resume`, replace it with `force`, or pick another `name`"
            self.txn.put(self.path, self.force, hint)
        except OSError as exc:
            raise os_error("move the new model into", self.final.path, exc) from exc
        self.promoted = True
        trainer.move_to(self.final)

    def reword(self, exc: BaseException) -> BaseException:
        """The error with the staging folder's path replaced by the model's own folder."""
        return self.staging.reword(exc, self.final.path)


def finite_weights(entry) -> bool:
    """Whether every weights file of the model folder (EMA and raw) holds finite values only."""
    import torch
    from safetensors.torch import load_file

    for which in ("ema", "raw"):
        path = entry.weights_path(which)
        if path.exists():
            for tensor in load_file(str(path)).values():
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    return False
    return True


def check_target(entry, resume: bool, force: bool) -> bool:
    """Refuse to train over an existing model unless `resume` or `force` says what to do; True when a
    model is already there (it is replaced only once the new run has saved its first checkpoint)."""
    from diffcli.training.checkpoint import CHECKPOINT

    exists = entry.path.exists() and any(entry.path.iterdir())
    if resume:
        if not (entry.train_dir / CHECKPOINT).exists():
            raise DiffcliError(f"model {entry.name!r} has no checkpoint to resume from", "train it without `resume`")
        return True
    if exists and not force:
        raise DiffcliError(
            f"a model named {entry.name!r} already exists",
            "continue it with `resume`, replace it with `force`, or pick another `name`",
        )
    return exists
