"""What the generating jobs (`sample`, `anagram`, `hybrid`; jobs/sample.py, anagram.py, hybrid.py) share:
loading a model that can generate, and `Prepared`, a request resolved against it that runs through the
one batched run (generation/batches.py) under a progress view and lays its images out as an ImageSet.

Nothing here prints progress or writes files: the caller passes a progress factory and decides where the
images go.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from diffcli import checks, console
from diffcli.errors import DiffcliError, UsageError
from diffcli.generation.batches import batch_rows, run_batches, total_steps
from diffcli.generation.illusions import REFERENCE_STAGE_TWO_STEPS
from diffcli.generation.settings import SamplerSettings, Sampling
from diffcli.io.figures import grid
from diffcli.jobs.results import ImageSet
from diffcli.models.backends import load_model
from diffcli.models.backends.memory import check_offload
from diffcli.models.registry import Registry
from diffcli.progress import ProgressFactory, silent
from diffcli.scoring.readings import reader_for

__all__ = ["Sampling", "Prepared", "Illusion", "load_generator"]

PREVIEW_TILES = 4
MAX_FIGURE_IMAGES = 1024  # one figure holds at most this many images; more go one file each
GRID_COLUMNS = 10  # images per row of a sample figure


def load_generator(
    name: str | None = None, device: str = "auto", weights: str = "ema", offload: str = "auto", upscale: bool = False
):
    """A diffusion model from the registry (None: the default), ready to sample: not a single-step
    denoiser or a classifier. `upscale` asks for a text-to-image model with a stage-II upscaler."""
    check_offload(offload)  # a typo is refused for every model, not only where it would take effect
    entry = Registry().get(name)
    kind = entry.config().kind
    options: dict[str, Any] = {}
    if kind == "diffusers":
        options.update(offload=offload, upscale=upscale)
    elif upscale:
        raise UsageError(f"`upscale` needs a text-to-image model with an upscaler; {entry.name!r} is a {kind} model")
    model = load_model(entry=entry, device=device, weights=weights, **options)
    if not model.is_diffusion:
        raise DiffcliError(
            f"model {model.name!r} is a single-step denoiser and cannot generate",
            "denoise with it instead (the one-step method)",
        )
    return model


def first_seed(seed: int | None, images: int) -> int:
    """The given seed (checked for `images` consecutive seeds), or a fresh one (recorded in the result)."""
    return checks.seed(seed, images)[0]


class Prepared:
    """A generating job resolved and checked, not run yet. `stream` yields one ImageSet per batch
    (what --out-dir writes as it goes); `collect` returns the whole set with its figure.

    With best_of K > 1, `seeds` holds K candidate seeds per requested image (image i: seeds[i*K : i*K+K]);
    the run keeps the candidate of each group that reads best (`readings`). Its own seed is recorded, so
    a run with that seed and one image makes it again."""

    kind = "sample"

    def __init__(
        self,
        model,
        settings: SamplerSettings,
        seeds: list[int],
        title: str,
        *,
        starts=(None,),
        init=None,
        mask=None,
        chain: bool = False,
        upscale: bool = False,
        batch: int | None = None,
        best_of: int = 1,
    ) -> None:
        self.model, self.settings, self.seeds, self.title = model, settings, seeds, title
        self.starts, self.init, self.mask, self.chain, self.upscale = list(starts), init, mask, chain, upscale
        self.best_of = best_of
        # whole groups of candidates per batch; 4 rows a row: an anagram's two guided terms
        self.batch = batch_rows(batch, best_of, model.forward_bytes(4))
        self.seconds = 0.0
        self.kept: dict[tuple[int | None, int], dict[str, Any]] = {}  # (start, row) -> what best_of kept
        self.reader = None
        if best_of > 1:
            if chain:
                raise UsageError(
                    "`best_of` keeps one image of several and `chain` records every run; use one or the other"
                )
            self.reader = reader_for(model, console.notice)

    @property
    def scale(self) -> float:
        """The run's classifier-free guidance scale."""
        return self.settings.guidance

    # what each job defines
    def terms(self, rows: Sequence[int]) -> list:
        raise NotImplementedError

    def readings(self, x, rows: Sequence[int]) -> list:
        """best_of: how each candidate reads (scoring.readings.Reading per reading)."""
        raise UsageError(f"`best_of` is not available for {self.kind}")

    def reading_labels(self, row: int) -> list[str]:
        """best_of: what each reading of this row should show, for people."""
        return []

    def upscale_terms(self, rows: Sequence[int], guidance: float) -> list:
        """Stage II's guidance terms for these rows (the same combination as stage I, at stage II's scale)."""
        raise NotImplementedError

    def upscale_settings(self):
        """Stage II's steps, scale and noise level (the model's defaults; illusions follow the reference)."""
        return self.model.upscale_settings()

    def preview(self, x0) -> list | None:
        return None

    def images(self, part) -> ImageSet:
        raise NotImplementedError

    def layout(self, parts: list, whole: ImageSet):
        """The figure of the whole set (default: the image itself, or a plain grid)."""
        return whole.images[0] if len(whole) == 1 else grid(whole.images)

    def summary(self) -> dict[str, Any]:
        """The machine-readable result, once the run is done."""
        return {
            "model": self.model.name,
            "seed": self.seeds[0],
            "seeds": self.seeds,
            **self.guidance_info(),
            "seconds": round(self.seconds, 3),
        }

    def guidance_info(self) -> dict[str, Any]:
        """The CFG scale and the interval it applied in (None: throughout), for summaries and PNG metadata;
        a distilled student's adds the guidance it learnt from its teacher (`learnt_guidance`)."""
        plan = self.model.config.distillation
        if not plan:
            return self.settings.report()
        learnt = {k: plan.get(k) for k in ("teacher", "guidance", "guidance_interval")}
        return {**self.settings.report(), "learnt_guidance": learnt}

    # the run
    @property
    def count(self) -> int:
        """Images per start (requested ones: with best_of, one of each group of candidates)."""
        return len(self.seeds) // self.best_of

    @property
    def total_images(self) -> int:
        return self.count * len(self.starts)

    def parts(self, progress: ProgressFactory) -> Iterator[Any]:
        """Run the batched run under one progress view, part by part."""
        starts = self.starts if self.init is not None else [None] * len(self.starts)
        total = total_steps(self.model, self.settings, len(self.seeds), self.batch, starts)
        began = time.perf_counter()
        with progress(self.title, total=total, unit="step", preview_every_s=0.5) as view:

            def on_step(i: int, t: int, x_t, x0) -> None:
                view.advance(1, t=t)
                if view.wants_preview():
                    # tiles spread over the batch, so a grid of several classes previews several classes
                    pick = sorted(
                        {round(j * (x_t.shape[0] - 1) / max(PREVIEW_TILES - 1, 1)) for j in range(PREVIEW_TILES)}
                    )
                    rows = self.preview(x0[pick]) or [("x0", [*self.model.to_pixels(x0[pick])])]
                    view.preview([("x_t", [*self.model.to_pixels(x_t[pick])]), *rows], caption=f"preview at t={t}")

            for part in run_batches(
                self.model,
                terms=self.terms,
                seeds=self.seeds,
                settings=self.settings,
                batch=self.batch,
                starts=self.starts,
                init=self.init,
                mask=self.mask,
                chain=self.chain,
                on_step=on_step,
                best_of=self.best_of,
                readings=self.readings,
                upscale=self.upscale_settings() if self.upscale else None,
                upscale_terms=self.upscale_terms,
            ):
                if part.kept:
                    self._record_kept(part)
                yield part
        self.seconds = time.perf_counter() - began

    def _record_kept(self, part) -> None:
        """Say what best_of kept and record it; warn when no candidate of a group reads as intended in
        every reading."""
        for kept in part.kept:
            labels = self.reading_labels(kept.row)
            seed, k = self.seeds[kept.row], kept.candidate
            self.kept[(part.start, kept.row)] = {
                "seed": seed,
                "candidate": k + 1,
                "of": self.best_of,
                "reads": kept.reads,
                "confidence": dict(zip(labels, kept.confidence)),
            }
            scores = ", ".join(f"{label} {100 * c:.0f}%" for label, c in zip(labels, kept.confidence))
            which = f"candidate {k + 1} of {self.best_of} (seed {seed})"
            if kept.reads:
                console.info(f"kept {which}: {scores}")
            else:
                wanted = " and ".join(labels)
                console.warn(
                    f"none of the {self.best_of} candidates reads as {wanted}; kept the closest, {which}: {scores}"
                )
        self.metadata["best_of"] = self.best_of
        self.metadata.setdefault("kept_seeds", []).extend(self.seeds[k.row] for k in part.kept)
        if self.count == 1 and len(self.starts) == 1:
            self.metadata["seed"] = self.seeds[part.kept[0].row]  # the one image: its own seed makes it again

    def image_info(self, row: int, start: int | None) -> dict[str, Any]:
        """Per-image metadata: its seed and, with best_of, which candidate it was and how it read."""
        info: dict[str, Any] = {"seed": self.seeds[row]}
        kept = self.kept.get((start, row))
        if kept is not None:
            info.update(candidate=kept["candidate"], best_of=kept["of"], confidence=kept["confidence"])
        return info

    def best_of_summary(self) -> dict[str, Any]:
        """The --json fields of best_of: what was kept (seed, candidate, confidences, whether it reads)."""
        if self.best_of == 1:
            return {}
        kept = list(self.kept.values())
        return {
            "best_of": self.best_of,
            "seeds": [k["seed"] for k in kept],
            "kept": kept,
            "read_as_intended": sum(k["reads"] for k in kept),
        }

    def stream(self, progress: ProgressFactory = silent) -> Iterator[ImageSet]:
        """One ImageSet per batch, made as the run goes (constant memory in the number of images)."""
        for part in self.parts(progress):
            yield self.images(part)

    def check_figure(self) -> None:
        """Refuse a figure of more than MAX_FIGURE_IMAGES images (before generating any)."""
        if self.total_images > MAX_FIGURE_IMAGES:
            raise UsageError(
                f"{self.total_images} images are too many for one figure (at most {MAX_FIGURE_IMAGES})",
                "write them one file per image with `out_dir`, or ask for fewer",
            )

    def collect(self, progress: ProgressFactory = silent) -> ImageSet:
        """Every image, with the job's figure (refused beyond MAX_FIGURE_IMAGES images)."""
        self.check_figure()
        parts = list(self.parts(progress))
        sets = [self.images(part) for part in parts]
        first = sets[0]
        whole = ImageSet(
            [i for s in sets for i in s.images],
            [n for s in sets for n in s.names],
            [m for s in sets for m in s.per_image],
            first.metadata,
            {},
            None,
            [e for s in sets for e in s.extras],
        )
        whole.summary = self.summary()
        whole.layout = lambda: self.layout(parts, whole)
        return whole


class Illusion(Prepared):
    """What anagrams and hybrids share: one prompt pair, n seeds (times best_of candidates), stage II
    with the reference's illusion settings."""

    @staticmethod
    def candidate_seeds(seed: int | None, n: int, best_of: int) -> list[int]:
        """best_of seeds for each of n images: seed, seed + 1, ... (image i: the i-th group)."""
        return checks.seeds_for(first_seed(seed, n * best_of), n * best_of)

    def upscale_settings(self):
        return replace(self.model.upscale_settings(illusion_guidance=self.scale), steps=REFERENCE_STAGE_TWO_STEPS)

    def kept_seeds(self) -> list[int]:
        """The seed of each image in the result, in order."""
        return [k["seed"] for k in self.kept.values()] if self.best_of > 1 else list(self.seeds)
