"""Reflow's data: pairs (noise, the teacher's image from that noise), sampled once and kept.

Pair i starts from the noise of seed `pair_seed + i` (what training/distillation.pair_noise draws again
while training) and is the teacher's sample of class i mod classes, made with the teacher's guidance.
Pairs are made in chunks, each written atomically into a cache folder named by the teacher's weights
and the sampling, so Ctrl-C keeps every finished chunk and the same command continues from them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from diffcli.data import ImageDataset
from diffcli.errors import DiffcliError, InterruptedRun
from diffcli.home import home_dir
from diffcli.training.distillation import Plan, load_teacher, teacher_terms
from diffcli.training.interrupt import InterruptGuard

CHUNK = 500
PAIR_SEED = 7_000_000  # pair seeds start here (+ the recipe's seed times the pairs): clear of `sample`'s 0, 1, ...


def pair_seed(settings: Any, plan: Plan) -> int:
    """The seed of pair 0 of a run."""
    return PAIR_SEED + settings.seed * plan.pairs


def cache_folder(plan: Plan, seed: int) -> Path:
    """Where a teacher's pairs for this sampling are kept (the same teacher, guidance, steps and seeds)."""
    key = json.dumps(
        [plan.digest, plan.teacher_steps, plan.guidance, plan.guidance_interval, seed, CHUNK], sort_keys=True
    )
    return home_dir() / "cache" / "reflow" / hashlib.sha256(key.encode()).hexdigest()[:16]


def cached_chunk(path: Path, count: int) -> torch.Tensor | None:
    """A chunk made earlier, or None when there is none or it cannot be read as one (it is made again)."""
    from safetensors.torch import load_file

    if not path.is_file():
        return None
    try:
        images = load_file(str(path))["images"]
    except Exception:  # a damaged or foreign file: safetensors raises its own error types
        return None
    return images if images.dtype == torch.uint8 and len(images) == count else None


def teacher_pairs(settings: Any, device: torch.device, progress: Any) -> ImageDataset:
    """The run's pairs as a dataset of the teacher's images (uint8, labels), sampling the missing chunks;
    `extra["pair_seed"]` tells the trainer which noise goes with each image."""
    from safetensors.torch import save

    from diffcli.generation.reverse import generate
    from diffcli.generation.settings import SamplerSettings
    from diffcli.io.atomic import atomic_write_bytes, make_dirs

    plan = Plan.from_dict(settings.distillation)
    teacher = load_teacher(plan, device)
    first = pair_seed(settings, plan)
    folder = cache_folder(plan, first)
    classes = max(1, len(teacher.config.labels))
    labels = torch.arange(plan.pairs) % classes
    sampling = SamplerSettings(
        "ddim", plan.teacher_steps, guidance=plan.guidance, guidance_interval=plan.guidance_interval
    )
    chunks: list[torch.Tensor] = []
    starts = range(0, plan.pairs, CHUNK)
    done = 0
    with (
        InterruptGuard() as guard,
        progress(title=f"reflow pairs from {plan.teacher}", total=plan.pairs, unit="pair") as view,
    ):
        for start in starts:
            stop = min(start + CHUNK, plan.pairs)
            path = folder / f"pairs-{start:07d}-{stop:07d}.safetensors"
            images = cached_chunk(path, stop - start)
            if images is None:
                if guard.requested:
                    raise InterruptedRun(
                        f"stopped while the teacher sampled reflow pairs ({done} of {plan.pairs} made, kept in "
                        f"{folder}); nothing was registered",
                        "run the same command again: it continues from the pairs made",
                        saved=str(folder),
                    )
                cond = labels[start:stop].to(device) if teacher.config.labels else None
                terms = teacher_terms(teacher, cond, plan)
                with torch.no_grad():
                    x = generate(teacher, terms, list(range(first + start, first + stop)), sampling)
                lo, hi = teacher.config.pixel_range
                images = ((x.float().cpu() - lo) / (hi - lo) * 255).round().clamp(0, 255).to(torch.uint8)
                make_dirs(folder)
                atomic_write_bytes(path, save({"images": images.contiguous()}))
            chunks.append(images)
            done = stop
            view.advance(stop - start)
    if not chunks:
        raise DiffcliError("reflow needs at least one pair", "raise `pairs`")
    config = teacher.config
    return ImageDataset(
        name=config.dataset_name or plan.teacher,
        images=torch.cat(chunks),
        labels=labels if config.labels else None,
        label_names=list(config.labels),
        source=f"reflow pairs of {plan.teacher} ({folder})",
        extra={"pair_seed": first},
    )
