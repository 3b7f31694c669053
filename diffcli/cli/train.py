"""`diffcli train`: train a UNet on MNIST, Fashion-MNIST, synthetic glyphs or a folder, into the registry."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from diffcli import console
from diffcli.cli import common, options


def train(
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="mnist, fashion-mnist, glyphs (synthetic, offline) or folder:PATH (subfolders = classes).")] = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="A torchvision root or a folder holding the four IDX files (default: $DIFFCLI_DATA, else data/ beside the registry).")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Registry name of the model (default: DATASET-COND).")] = None,
    preset: Annotated[str, typer.Option("--preset", help="Recipe: default (the measured CPU recipe, docs/performance.md), course (the course's UNet and schedule), denoiser (course B.1).")] = "default",
    cond: Annotated[Optional[str], typer.Option("--cond", help="class (with CFG's null class), time (unconditional) or none (single-step denoiser).")] = None,
    objective: Annotated[Optional[str], typer.Option("--objective", help="eps (noise prediction), v, flow (flow matching) or denoise (map x + sigma z to x).")] = None,
    noise_sigma: Annotated[Optional[float], typer.Option("--noise-sigma", help="Objective denoise: the training noise level sigma.")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Passes over the training set.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Images per step (the global batch under torchrun).")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Peak learning rate (Adam).")] = None,
    lr_schedule: Annotated[Optional[str], typer.Option("--lr-schedule", help="exponential (the course's 0.1^(1/epochs) per epoch), cosine or constant.")] = None,
    arch: Annotated[Optional[str], typer.Option("--arch", help="unet (GroupNorm, ours) or course (the course's BatchNorm UNet).")] = None,
    width: Annotated[Optional[int], typer.Option("--width", help="Channels of the UNet's first level.")] = None,
    timesteps: Annotated[Optional[int], typer.Option("--timesteps", help="Diffusion timesteps T.")] = None,
    schedule: Annotated[Optional[str], typer.Option("--schedule", help="linear (betas 1e-4..0.02) or cosine.")] = None,
    ema: Annotated[Optional[bool], typer.Option("--ema/--no-ema", help="Keep an EMA of the weights for sampling (saved beside the raw weights).")] = None,
    p_uncond: Annotated[Optional[float], typer.Option("--p-uncond", help="Class models: probability of dropping the class (CFG's null class).")] = None,
    guidance: Annotated[Optional[float], typer.Option("--guidance", help="Default CFG scale recorded for `sample`.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed for weights, data order and noise.")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="Stop after this many optimiser steps in all (a resumable checkpoint is saved).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Train on the first N images only.")] = None,
    precision: Annotated[Optional[str], typer.Option("--precision", help="fp32, bf16 or fp16 (autocast; bf16/fp16 pay off on GPUs).")] = None,
    channels_last: Annotated[Optional[bool], typer.Option("--channels-last/--no-channels-last", help="Use the channels-last memory format.")] = None,
    compile_model: Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile the network.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the model's last checkpoint exactly where it stopped.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing model of the same name.")] = False,
    set_default: Annotated[bool, typer.Option("--set-default", help="Make the trained model the registry default.")] = False,
    device: options.Device = "auto",
    quiet: options.Quiet = False,
    json_output: options.Json = False,
) -> None:
    """Train a diffusion model (or the single-step denoiser) and register it under --name.

    Shows a live panel on a terminal (loss, progress, a preview of the reverse chain), a plain line
    every few seconds otherwise, one JSON line per epoch with --json. Ctrl-C saves a checkpoint and
    exits 130; --resume continues exactly. Runs under `torchrun --nproc-per-node N -m diffcli train ...`.
    """
    common.start(quiet, json_output)
    from diffcli.errors import InterruptedRun
    from diffcli.jobs.train import TrainRequest, train as train_job

    recipe = dict(
        dataset=dataset, data_dir=data_dir, cond=cond, objective=objective, noise_sigma=noise_sigma, epochs=epochs,
        batch_size=batch_size, lr=lr, lr_schedule=lr_schedule, arch=arch, width=width, timesteps=timesteps,
        schedule=schedule, ema=ema, p_uncond=p_uncond, guidance=guidance, seed=seed, max_steps=max_steps,
        limit=limit, precision=precision, channels_last=channels_last, compile=compile_model,
    )
    request = TrainRequest(name, preset, recipe, resume, force, set_default, device, common.command_line())
    try:
        result = train_job(request, common.progress(quiet, json_output))
    except InterruptedRun as exc:
        raise InterruptedRun(exc.message, f"continue with `diffcli train --name {exc.model} --resume`", model=exc.model, saved=exc.saved) from None
    if result is None:  # another rank under torchrun: rank 0 reports
        return
    if json_output:
        console.emit_json({"event": "done", **{k: v for k, v in result.__dict__.items() if k != "history"}})
        return
    state = "finished" if result.completed else "stopped"
    console.info(
        f"{state} {result.model!r}: step {result.step}/{result.total_steps}, train loss {result.train_loss}, "
        f"validation loss {result.val_loss}, {result.wall_seconds:.0f} s at {result.images_per_second:.0f} img/s"
    )
    hint = " --class 7" if _conditioning(result.model) == "class" else ""
    console.info(f"artifacts in {result.path}/train; try `diffcli sample --model {result.model}{hint}`")


def _conditioning(name: str) -> str:
    from diffcli.models.registry import Registry

    return Registry().get(name).config().cond_type
