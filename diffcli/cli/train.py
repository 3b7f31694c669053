"""`diffcli train`: train a UNet on MNIST, Fashion-MNIST, synthetic glyphs or a folder, into the registry."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from diffcli import console
from diffcli.cli import common, options, params
from diffcli.cli.options import examples
from diffcli.jobs.train import TrainRequest
from diffcli.training.recipe import NetworkChoice, TrainSettings, preset_defaults

EXAMPLES = examples(
    "diffcli train --dataset mnist --data-dir ~/data --name m1",
    "diffcli train --dataset fashion --data-dir DIR --name f1",
    "diffcli train --preset course --epochs 5 --name course5",
    "diffcli train --name m1 --resume           # after Ctrl-C",
    "torchrun --nproc-per-node 2 -m diffcli train --name m2",
)


@params.options(
    overrides=("recipe", "network"),
    describe=lambda item: preset_defaults(item.name),
    recipe=TrainSettings,
    network=NetworkChoice,
    request=TrainRequest,
)
def train(
    *,
    device: options.Device = "auto",
    quiet: options.Quiet = False,
    json_output: options.Json = False,
    request: TrainRequest,
    recipe: dict[str, Any],
    network: dict[str, Any],
) -> None:
    """Train a diffusion model (or the single-step denoiser) and register it under --name.

    Shows a live panel on a terminal (loss, progress, a preview of the reverse chain), a plain line
    every few seconds otherwise, one JSON line per epoch with --json. Ctrl-C saves a checkpoint and
    exits 130; --resume continues exactly. Runs under `torchrun --nproc-per-node N -m diffcli train ...`.
    """
    common.start(quiet, json_output)
    from diffcli.errors import InterruptedRun
    from diffcli.jobs.train import train as train_job

    request = replace(request, recipe={**recipe, **network}, device=device, command=common.command_line())
    try:
        result = train_job(request, common.progress(quiet, json_output, events=json_output))
    except InterruptedRun as exc:
        raise InterruptedRun(
            exc.message, f"continue with `diffcli train --name {exc.model} --resume`", model=exc.model, saved=exc.saved
        ) from None
    if result is None:  # another rank under torchrun: rank 0 reports
        return
    if json_output:
        console.emit_json({"event": "done", **{k: v for k, v in result.__dict__.items() if k != "history"}})
        return
    console.info(summary_line(result))
    hint = " --class 7" if _conditioning(result.model) == "class" else ""
    console.info(f"artifacts in {result.path}/train; try `diffcli sample --model {result.model}{hint}`")


def summary_line(result) -> str:
    """One line for people: where the run ended, its losses, and where the time went (the same
    img/s as the panel showed)."""
    from diffcli.tui.format import format_duration, format_value

    state = "finished" if result.completed else "stopped"
    parts = [f"{state} {result.model!r}: epoch {result.epoch}, step {result.step}/{result.total_steps}"]
    if result.train_loss is not None:
        parts.append(f"mean train loss {format_value(result.train_loss)}")
    if result.val_loss is not None:
        parts.append(f"validation loss {format_value(result.val_loss)}")
    parts.append(
        f"{format_duration(result.seconds)} in all ({format_duration(result.training_seconds)} of optimiser steps at "
        f"{result.images_per_second:.0f} img/s; the rest validation, sample grids and saving)"
    )
    return ", ".join(parts)


def _conditioning(name: str) -> str:
    from diffcli.models.registry import Registry

    return Registry().get(name).config().cond_type
