"""The live preview while training: a short reverse chain from the current EMA weights."""

from __future__ import annotations

import numpy as np
import torch

from diffcli.generation import ChainRecorder, SamplerSettings, generate, prompt_terms, resolve_guidance

PREVIEW_STEPS = 10
FRAMES = 5


@torch.no_grad()
def chain_preview(
    model, settings, step: int, val_images: torch.Tensor | None = None
) -> tuple[list[tuple[str, list[np.ndarray]]], str]:
    """Rows ("x_t", frames) and ("x0", frames) along a 10-step DDIM chain of one sample (fewer for a model
    that samples in fewer: a distillation's student shows its own steps; the class cycles as training goes
    on), or noisy/denoised rows for the single-step denoiser."""
    if not model.is_diffusion:
        if val_images is None:
            return [], ""
        noisy = val_images + settings.noise_sigma * torch.randn(
            val_images.shape, generator=torch.Generator().manual_seed(step)
        ).to(val_images.device)
        return [
            ("noisy", [*model.to_pixels(noisy)]),
            ("clean", [*model.to_pixels(model.denoise_once(noisy))]),
        ], f"sigma {settings.noise_sigma:g}"
    prompt, what = None, "unconditional"
    if model.cond_type == "class":
        label = (step // 50) % len(model.labels)
        prompt = model.resolve_prompt(str(label))
        what = f"class {model.labels[label]}"
    steps = min(PREVIEW_STEPS, int((model.config.sampling or {}).get("steps") or PREVIEW_STEPS))
    recorder = ChainRecorder(steps, FRAMES)
    scale, interval = resolve_guidance(model, None)
    generate(
        model,
        prompt_terms(model, [prompt], scale, interval),
        [step],
        SamplerSettings("ddim", steps=steps),
        callback=recorder,
    )
    x_t = [model.to_pixels(x)[0] for x in recorder.x_t]
    x0 = [model.to_pixels(x)[0] for x in recorder.x0]
    return [
        ("x_t", x_t),
        ("x0", x0),
    ], f"{what}: DDIM {steps} step{'s' * (steps > 1)}, t = {recorder.steps[0]} -> {recorder.steps[-1]}"
