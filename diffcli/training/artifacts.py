"""What a training run leaves in `train/`: loss.csv, loss.png and a sample grid at chosen epochs."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import torch

from diffcli.io.atomic import atomic_write_text
from diffcli.io.figures import figure
from diffcli.io.output_paths import OutputTarget
from diffcli.io.plot import Series, line_plot, smooth
from diffcli.io.png import write_png

GRID_STEPS = 50  # sample grids during training use at most this many steps (the model's own sampler)


def write_loss_artifacts(train_dir: Path, history: list[dict[str, Any]]) -> None:
    """loss.csv (one row per step; val_loss on each epoch's last step) and the loss curve loss.png."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["step", "epoch", "train_loss", "lr", "val_loss"])
    for row in history:
        writer.writerow(
            [
                row["step"],
                row["epoch"],
                row["train_loss"],
                f"{row['lr']:.6g}",
                "" if row.get("val_loss") is None else row["val_loss"],
            ]
        )
    atomic_write_text(train_dir / "loss.csv", buffer.getvalue())
    if not history:
        return
    steps = [r["step"] for r in history]
    losses = [r["train_loss"] for r in history]
    series = [Series("train (smoothed)", steps, smooth(losses, max(1, len(losses) // 50)))]
    val = [(r["step"], r["val_loss"]) for r in history if r.get("val_loss") is not None]
    if val:
        series.append(Series("validation", [v[0] for v in val], [v[1] for v in val], markers=True))
    image = line_plot(series, title="training loss", xlabel="step", ylabel="MSE", log_y=True)
    write_png(image, OutputTarget(train_dir / "loss.png"), {"subcommand": "train", "artifact": "loss curve"})


@torch.no_grad()
def write_sample_grid(model, settings, path: Path, epoch: int, val_images: torch.Tensor | None = None) -> None:
    """Samples from the current (EMA) weights: one row per class (4 each) for class models, a 4x8
    grid for unconditional ones, noisy/denoised rows for the single-step denoiser."""
    from diffcli.generation import SamplerSettings, generate, prompt_terms, resolve_guidance

    if not model.is_diffusion:
        if val_images is None:
            return
        noise = torch.randn(val_images.shape, generator=torch.Generator().manual_seed(0)).to(val_images.device)
        noisy = val_images + settings.noise_sigma * noise
        rows = [[*model.to_pixels(noisy)], [*model.to_pixels(model.denoise_once(noisy))]]
        image = figure(rows, row_labels=["noisy", "denoised"], title=f"epoch {epoch}: sigma {settings.noise_sigma:g}")
        write_png(image, OutputTarget(path), {"subcommand": "train", "epoch": epoch})
        return
    defaults = model.config.sampling
    steps = min(int(defaults.get("steps") or model.schedule.timesteps), GRID_STEPS, model.schedule.timesteps)
    sampler = SamplerSettings(defaults.get("sampler", "ddpm"), steps=steps)
    scale, interval = resolve_guidance(model, None)
    if model.cond_type == "class":
        labels = list(range(len(model.labels)))
        prompts = [model.resolve_prompt(str(c)) for c in labels for _ in range(4)]
        samples = generate(model, prompt_terms(model, prompts, scale, interval), list(range(len(prompts))), sampler)
        pixels = model.to_pixels(samples)
        rows = [[*pixels[i * 4 : (i + 1) * 4]] for i in range(len(labels))]
        image = figure(
            rows,
            row_labels=model.labels,
            title=f"epoch {epoch}, {sampler.sampler} {steps} steps, CFG {scale:g}",
            scale=2,
        )
    else:
        samples = generate(model, prompt_terms(model, [None] * 32, 1.0), list(range(32)), sampler)
        pixels = model.to_pixels(samples)
        image = figure(
            [[*pixels[i * 8 : (i + 1) * 8]] for i in range(4)],
            title=f"epoch {epoch}, {sampler.sampler} {steps} steps",
            scale=2,
        )
    write_png(
        image, OutputTarget(path), {"subcommand": "train", "epoch": epoch, "sampler": sampler.sampler, "steps": steps}
    )
