"""`diffcli train`: train a UNet on MNIST, Fashion-MNIST, synthetic glyphs or a folder, into the registry."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from diffcli import console
from diffcli.cli import common, options
from diffcli.cli.options import DATASETS, choices, examples
from diffcli.training.recipe import PRESETS, TrainSettings

DATA, RECIPE, NETWORK, SPEED, RUN = "Data", "Recipe", "Network", "Speed", "Run"
EXAMPLES = examples(
    "diffcli train --dataset mnist --data-dir ~/data --name m1",
    "diffcli train --dataset fashion --data-dir DIR --name f1",
    "diffcli train --preset course --epochs 5 --name course5",
    "diffcli train --name m1 --resume           # after Ctrl-C",
    "torchrun --nproc-per-node 2 -m diffcli train --name m2",
)


def defaults(field: str, show: Any = None) -> str:
    """What each preset uses for a recipe field, for --help: "[default: 6; course: 20; denoiser: 5]"."""

    def value(preset: str) -> Any:
        settings = TrainSettings(preset=preset, **PRESETS[preset])
        v = show(settings) if show else getattr(settings, field)
        return f"{v:g}" if isinstance(v, float) else v

    return "[default: " + "; ".join(f"{value(p)}" if p == "default" else f"{p}: {value(p)}" for p in PRESETS) + "]"


def train(
    dataset: Annotated[Optional[str], typer.Option("--dataset", metavar="NAME", help="mnist, fashion-mnist (or fashion), glyphs (synthetic, offline) or folder:PATH (subfolders = classes).  [default: mnist]", rich_help_panel=DATA, autocompletion=choices(*DATASETS))] = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", metavar="DIR", help="A torchvision root or a folder holding the four IDX files (default: $DIFFCLI_DATA, else data/ beside the registry).", rich_help_panel=DATA)] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", metavar="INT", help="Train on the first INT images only.", rich_help_panel=DATA)] = None,
    name: Annotated[Optional[str], typer.Option("--name", metavar="NAME", help="Registry name of the model (default: DATASET-COND).", rich_help_panel=RUN, autocompletion=options._complete_models)] = None,
    preset: Annotated[str, typer.Option("--preset", metavar="NAME", help="Recipe: default (the measured CPU recipe, docs/performance.md), course (the course's UNet and schedule), denoiser (course B.1).", rich_help_panel=RECIPE, autocompletion=choices(*PRESETS))] = "default",
    cond: Annotated[Optional[str], typer.Option("--cond", metavar="KIND", help="class (with CFG's null class), time (unconditional) or none (single-step denoiser). " + defaults("cond"), rich_help_panel=RECIPE, autocompletion=choices("class", "time", "none"))] = None,
    objective: Annotated[Optional[str], typer.Option("--objective", metavar="KIND", help="eps (noise prediction), v, flow (flow matching) or denoise (map x + sigma z to x). " + defaults("objective"), rich_help_panel=RECIPE, autocompletion=choices("eps", "v", "flow", "denoise"))] = None,
    noise_sigma: Annotated[Optional[float], typer.Option("--noise-sigma", metavar="SIGMA", help="Objective denoise: the training noise level sigma. " + defaults("noise_sigma"), rich_help_panel=RECIPE)] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", metavar="INT", help="Passes over the training set. " + defaults("epochs"), rich_help_panel=RECIPE)] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", metavar="INT", help="Images per step (the global batch under torchrun). " + defaults("batch_size"), rich_help_panel=RECIPE)] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", metavar="RATE", help="Peak learning rate (Adam). " + defaults("lr"), rich_help_panel=RECIPE)] = None,
    lr_schedule: Annotated[Optional[str], typer.Option("--lr-schedule", metavar="KIND", help="exponential (the course's 0.1^(1/epochs) per epoch), cosine or constant. " + defaults("lr_schedule"), rich_help_panel=RECIPE, autocompletion=choices("exponential", "cosine", "constant"))] = None,
    warmup_steps: Annotated[Optional[int], typer.Option("--warmup-steps", metavar="INT", help="Optimiser steps over which the learning rate rises linearly to its peak. " + defaults("warmup_steps"), rich_help_panel=RECIPE)] = None,
    loss_weighting: Annotated[Optional[str], typer.Option("--loss-weighting", metavar="KIND", help="none, or min-snr (Hang et al. 2023: each timestep's loss weighted by min(SNR, 5) / SNR; / (SNR + 1) for v). " + defaults("loss_weighting"), rich_help_panel=RECIPE, autocompletion=choices("none", "min-snr"))] = None,
    timestep_sampling: Annotated[Optional[str], typer.Option("--timestep-sampling", metavar="KIND", help="Which timesteps a step trains on: uniform, or logit-normal (the middle of the schedule most often; Esser et al. 2024). " + defaults("timestep_sampling"), rich_help_panel=RECIPE, autocompletion=choices("uniform", "logit-normal"))] = None,
    timesteps: Annotated[Optional[int], typer.Option("--timesteps", metavar="T", help="Diffusion timesteps T. " + defaults("timesteps"), rich_help_panel=RECIPE)] = None,
    schedule: Annotated[Optional[str], typer.Option("--schedule", metavar="KIND", help="linear (betas 1e-4..0.02) or cosine. " + defaults("schedule"), rich_help_panel=RECIPE, autocompletion=choices("linear", "cosine"))] = None,
    ema: Annotated[Optional[bool], typer.Option("--ema/--no-ema", help="Keep an EMA of the weights for sampling (saved beside the raw weights). " + defaults("ema"), rich_help_panel=RECIPE)] = None,
    p_uncond: Annotated[Optional[float], typer.Option("--p-uncond", metavar="P", help="Class models: probability of dropping the class (CFG's null class). " + defaults("p_uncond"), rich_help_panel=RECIPE)] = None,
    guidance: Annotated[Optional[float], typer.Option("--guidance", "-g", metavar="SCALE", help="The CFG scale `sample` uses by default for this model. " + defaults("guidance"), rich_help_panel=RECIPE)] = None,
    guidance_interval: Annotated[Optional[str], typer.Option("--guidance-interval", metavar="LO:HI", help="Record that `sample` guides only in this part of the reverse process (fractions of T, e.g. 0.2:0.7; docs/performance.md: it pays on well-trained models). Default: throughout.", rich_help_panel=RECIPE)] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", metavar="INT", help="Seed for weights, data order and noise. " + defaults("seed"), rich_help_panel=RECIPE)] = None,
    arch: Annotated[Optional[str], typer.Option("--arch", metavar="KIND", help="unet (GroupNorm, ours) or course (the course's BatchNorm UNet). " + defaults("arch", lambda s: s.architecture["type"]), rich_help_panel=NETWORK, autocompletion=choices("unet", "course"))] = None,
    width: Annotated[Optional[int], typer.Option("--width", metavar="INT", help="Channels of the network's first level. " + defaults("width", lambda s: s.architecture["width"]), rich_help_panel=NETWORK)] = None,
    precision: Annotated[Optional[str], typer.Option("--precision", metavar="KIND", help="auto (bf16 on a CPU with native bf16, else fp32), fp32, bf16 or fp16 (autocast). " + defaults("precision"), rich_help_panel=SPEED, autocompletion=choices("auto", "fp32", "bf16", "fp16"))] = None,
    channels_last: Annotated[Optional[bool], typer.Option("--channels-last/--no-channels-last", help="Use the channels-last memory format.", rich_help_panel=SPEED)] = None,
    compile_model: Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile the network.", rich_help_panel=SPEED)] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", metavar="INT", help="Stop after this many optimiser steps in all (a resumable checkpoint is saved).", rich_help_panel=RUN)] = None,
    resume: Annotated[bool, typer.Option("--resume", metavar="", help="Continue the model's last checkpoint exactly where it stopped.", rich_help_panel=RUN)] = False,
    force: Annotated[bool, typer.Option("--force", metavar="", help="Replace an existing model of the same name (once the new run has saved its first checkpoint).", rich_help_panel=RUN)] = False,
    set_default: Annotated[bool, typer.Option("--set-default", metavar="", help="Make the trained model the registry default.", rich_help_panel=RUN)] = False,
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
        batch_size=batch_size, lr=lr, lr_schedule=lr_schedule, warmup_steps=warmup_steps, loss_weighting=loss_weighting, timestep_sampling=timestep_sampling, arch=arch, width=width, timesteps=timesteps,
        schedule=schedule, ema=ema, p_uncond=p_uncond, guidance=guidance, guidance_interval=guidance_interval, seed=seed, max_steps=max_steps,
        limit=limit, precision=precision, channels_last=channels_last, compile=compile_model,
    )
    request = TrainRequest(name, preset, recipe, resume, force, set_default, device, common.command_line())
    try:
        result = train_job(request, common.progress(quiet, json_output, events=json_output))
    except InterruptedRun as exc:
        raise InterruptedRun(exc.message, f"continue with `diffcli train --name {exc.model} --resume`", model=exc.model, saved=exc.saved) from None
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
    from diffcli.tui.progress import format_duration, format_value

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
