"""The batched run every generating path shares: `sample`, `anagram`, `hybrid`, `eval` and the Python API.

`run_batches` calls the reverse loop (generation/reverse.py) batch by batch, so memory stays flat however
many images are asked for, and image i always uses seeds[i] whatever the batching. With best_of K > 1 the
seeds hold K candidates per image (image i: seeds[i*K : i*K+K]), generated in the same batches; each group
is read (`readings`) and only the best candidate goes on, to stage II when asked and into the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from diffcli import checks
from diffcli.diffusion.guidance import Term
from diffcli.diffusion.samplers import StepCallback
from diffcli.generation.reverse import ChainRecorder, chain_callbacks, generate
from diffcli.generation.settings import SamplerSettings, plan_timesteps
from diffcli.models.backends.base import LoadedModel

BATCH = 256  # images per call of the reverse loop for the commands (`eval` takes its own, 250 by default)
CHAIN_FRAMES = 10  # frames a recorded chain keeps

TermsFor = Callable[[Sequence[int]], list[Term]]
"""rows (indices into the run's seeds) -> the guidance terms of those rows."""
ReadingsFor = Callable[[torch.Tensor, Sequence[int]], list]
"""(images, rows) -> how each candidate reads (scoring.readings.Reading per reading)."""


@dataclass
class Kept:
    """What best_of kept of one group of candidates: the row, which candidate it was (0-based), whether it
    reads as intended in every reading, its confidence in each, and the row of the group's first candidate."""

    row: int
    candidate: int
    reads: bool
    confidence: list[float]
    first: int


@dataclass
class Part:
    """One batch of a run: the rows it covers (indices into the run's seeds; with best_of, the kept
    candidates'), the SDEdit start it ran from, the images (model range, on the CPU), the recorded reverse
    chain when asked, and what best_of kept."""

    rows: list[int]
    start: int | None
    x: Any
    chain: Any = None
    kept: list[Kept] = field(default_factory=list)


def batch_rows(batch: int | None, best_of: int = 1, bytes_per_row: int = 0) -> int:
    """Rows per batch: `batch` (default BATCH), fewer when a row's forward pass (`bytes_per_row`) would
    take the batch past the memory limit, rounded down to whole groups of best_of candidates."""
    rows = checks.integer("batch", batch if batch is not None else BATCH, low=1)
    rows = checks.rows_that_fit(rows, bytes_per_row) if bytes_per_row else rows
    return max(best_of, rows - rows % best_of)


def split(count: int, batch: int) -> list[list[int]]:
    """Rows 0..count-1 in batches of `batch`."""
    return [list(range(i, min(i + batch, count))) for i in range(0, count, batch)]


def total_steps(
    model: LoadedModel, settings: SamplerSettings, count: int, batch: int, starts: Sequence[int | None] = (None,)
) -> int:
    """Reverse steps a run of `count` rows takes in batches, for each start (for a progress bar)."""
    batches = -(-count // batch)
    return sum(len(plan_timesteps(model.schedule, settings, start)) for start in starts) * batches


def choose(readings: Sequence[Any], group: int) -> tuple[list[int], list[bool]]:
    """For consecutive groups of `group` candidates: the index (within its group) of the one to keep, and
    whether it reads as intended in every reading.

    Kept: the candidate with the most readings as intended, then the highest lowest confidence (the
    weakest reading decides), then the highest product of confidences; ties keep the first."""
    confidence = torch.stack([r.confidence.double().cpu() for r in readings])  # [R, N]
    correct = torch.stack([r.correct.cpu() for r in readings])
    if confidence.shape[1] % group:
        raise ValueError(f"{confidence.shape[1]} candidates do not split into groups of {group}")
    keys = list(zip(correct.sum(0).tolist(), confidence.min(0).values.tolist(), confidence.prod(0).tolist()))
    every = correct.all(0).tolist()
    keep = [max(range(group), key=lambda k: (keys[start + k], -k)) for start in range(0, len(keys), group)]
    return keep, [every[start + k] for start, k in zip(range(0, len(keys), group), keep)]


def keep_best(rows: list[int], x: torch.Tensor, readings: list, best_of: int) -> tuple[list[Kept], torch.Tensor]:
    """The best candidate of each group of this batch (rows hold whole groups), and its images."""
    keep, every = choose(readings, best_of)
    kept, local = [], []
    for group, (k, reads) in enumerate(zip(keep, every)):
        j = group * best_of + k
        confidence = [round(float(r.confidence[j]), 4) for r in readings]
        kept.append(Kept(rows[j], k, bool(reads), confidence, rows[group * best_of]))
        local.append(j)
    return kept, x[local]


def run_batches(
    model: LoadedModel,
    *,
    terms: TermsFor,
    seeds: Sequence[int],
    settings: SamplerSettings,
    batch: int = BATCH,
    starts: Sequence[int | None] = (None,),
    init: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    chain: bool = False,
    on_step: StepCallback | None = None,
    best_of: int = 1,
    readings: ReadingsFor | None = None,
    upscale: Any = None,
    upscale_terms: Callable[[Sequence[int], float], list[Term]] | None = None,
) -> Iterator[Part]:
    """Generate one image per seed, batch by batch, for each SDEdit start (init / mask: one row per seed).

    best_of > 1: `readings` reads each batch's candidates and the best of each group goes on.
    upscale: stage II's settings (a text-to-image model's UpscaleSettings), with `upscale_terms(rows,
    scale)` its guidance terms; None: stage I only."""
    if best_of > 1 and readings is None:
        raise ValueError("best_of needs the candidates' readings")
    for start in starts:
        for rows in split(len(seeds), batch):
            sl = slice(rows[0], rows[-1] + 1)
            steps = len(plan_timesteps(model.schedule, settings, start if init is not None else None))
            recorder = ChainRecorder(steps, CHAIN_FRAMES) if chain else None
            x = generate(
                model,
                terms(rows),
                seeds[sl],
                settings,
                init=None if init is None else init[sl],
                start=start,
                mask=None if mask is None else mask[sl],
                callback=chain_callbacks(on_step, recorder),
            )
            kept: list[Kept] = []
            if best_of > 1:
                kept, x = keep_best(rows, x, readings(x, rows), best_of)
                rows = [k.row for k in kept]
            if upscale is not None:
                x = model.upscale(x, upscale_terms(rows, upscale.guidance), [seeds[i] for i in rows], upscale)
            yield Part(rows, start, x.float().cpu(), recorder, kept)


def generate_all(model: LoadedModel, **run: Any) -> torch.Tensor:
    """Every image of a `run_batches` run (model range, on the CPU), in row order."""
    return torch.cat([part.x for part in run_batches(model, **run)])
