"""The `hybrid` job: hybrid images (factorized diffusion), one prompt in the low frequencies and another in
the high ones, from a request to an ImageSet (jobs/generating.py runs it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from diffcli import console, params
from diffcli.diffusion import filters
from diffcli.generation.batches import Part
from diffcli.generation.illusions import hybrid_bands, hybrid_filter, hybrid_readings, hybrid_request, illusion_sampling
from diffcli.generation.settings import best_of_count, count
from diffcli.io.figures import figure, grid
from diffcli.jobs.generating import Illusion
from diffcli.jobs.requests import HybridRequest
from diffcli.jobs.results import ImageSet, metadata, safe_label
from diffcli.progress import ProgressFactory, silent


class PreparedHybrid(Illusion):
    """`hybrid`, resolved: n seeds of one (far, near) pair."""

    kind = "hybrid"

    def __init__(self, model, request: HybridRequest, batch: int | None = None) -> None:
        n = count("n", request.n)
        self.kernel, self.sigma = hybrid_filter(model, request.kernel, request.sigma)
        self.far_first, self.near_last = hybrid_bands(model, request.far_first, request.near_last)
        a, b = model.resolve_prompt(str(request.far)), model.resolve_prompt(str(request.near))
        if (a.label is not None and a.label == b.label) or (a.label is None and a.text == b.text):
            console.warn(f"both prompts are {model.label_name(a)!r}: the hybrid is just a sample of it")
        best_of = best_of_count(request.best_of)
        settings = illusion_sampling(model, request.sampling, "hybrid")
        seeds = self.candidate_seeds(request.seed, n, best_of)
        self.a, self.b, self.request = a, b, request
        self.name_far, self.name_near = model.label_name(a), model.label_name(b)
        super().__init__(
            model,
            settings,
            seeds,
            f"hybrid {self.name_far} / {self.name_near}",
            upscale=request.upscale,
            batch=batch,
            best_of=best_of,
        )
        self.shown = (self.kernel, self.sigma)  # the filter at the output's size (scaled after stage II)
        self.metadata = metadata(
            "hybrid",
            model=model.name,
            seed=seeds[0],
            kernel=self.kernel,
            sigma=self.sigma,
            far_first=self.far_first,
            near_last=self.near_last,
            **self.guidance_info(),
            sampler=settings.sampler,
            steps=settings.steps,
            stride=settings.stride,
            prompts=[request.far, request.near],
        )

    def terms(self, rows: Sequence[int]) -> list:
        return hybrid_request(
            self.model,
            [self.a] * len(rows),
            [self.b] * len(rows),
            self.scale,
            self.kernel,
            self.sigma,
            self.far_first,
            self.near_last,
            self.settings.guidance_interval,
        )

    def upscale_terms(self, rows: Sequence[int], guidance: float) -> list:
        kernel, sigma = self._filter_for_factor(self.model.upscale_factor)
        return hybrid_request(self.model, [self.a] * len(rows), [self.b] * len(rows), guidance, kernel, sigma)

    def readings(self, x, rows: Sequence[int]) -> list:
        k = len(rows)
        return hybrid_readings(self.reader, self.model, x, [self.a] * k, [self.b] * k, self.kernel, self.sigma)

    def reading_labels(self, row: int) -> list[str]:
        return [f"{self.name_far} (afar)", f"{self.name_near} (up close)"]

    def preview(self, x0) -> list:
        return [("low", [*self.model.to_pixels(filters.lowpass(x0, self.kernel, self.sigma))])]

    def _filter_for_factor(self, factor: float) -> tuple[int, float]:
        return (self.kernel, self.sigma) if factor == 1 else filters.scale_filter(self.kernel, self.sigma, factor)

    def _filter_for(self, x) -> tuple[int, float]:
        """The low-pass at the size of `x` (stage II's output is larger: the filter scales with it)."""
        return self._filter_for_factor(x.shape[-1] / self.model.size)

    def images(self, part: Part) -> ImageSet:
        self.shown = self._filter_for(part.x)
        kernel, sigma = self.shown
        self.metadata.update(kernel=kernel, sigma=sigma)
        names = [f"{safe_label(self.name_far)}-{safe_label(self.name_near)}-{self.seeds[i]}" for i in part.rows]
        return ImageSet(
            list(self.model.to_pixels(part.x)),
            names,
            [self.image_info(i, part.start) for i in part.rows],
            self.metadata,
        )

    def layout(self, parts: list[Part], whole: ImageSet):
        if not self.request.explain:
            return whole.images[0] if len(whole) == 1 else grid(whole.images)
        lo, hi = self.model.config.pixel_range
        rows = []
        for part in parts:
            kernel, sigma = self._filter_for(part.x)
            low = self.model.to_pixels(filters.lowpass(part.x, kernel, sigma))
            high = self.model.to_pixels(filters.highpass(part.x, kernel, sigma) + (lo + hi) / 2)  # centred on mid-grey
            pixels = self.model.to_pixels(part.x)
            rows += [[pixels[k], low[k], high[k]] for k in range(len(part.rows))]
        return figure(
            rows,
            col_labels=["hybrid", f"low-pass ({self.name_far})", f"high-pass ({self.name_near})"],
            row_labels=[f"seed {s}" for s in self.kept_seeds()] if len(rows) > 1 else None,
        )

    def summary(self) -> dict[str, Any]:
        r, s = self.request, self.settings
        kernel, sigma = self.shown
        return {
            "model": self.model.name,
            "seed": self.seeds[0],
            "seeds": self.seeds,
            "kernel": kernel,
            "sigma": sigma,
            "far_first": self.far_first,
            "near_last": self.near_last,
            **self.guidance_info(),
            "sampler": s.sampler,
            "steps": s.steps,
            "stride": s.stride,
            "prompts": [r.far, r.near],
            "seconds": round(self.seconds, 3),
            **self.best_of_summary(),
        }


def hybrid(model, request: HybridRequest, progress: ProgressFactory = silent) -> ImageSet:
    """Generate hybrid images (factorized diffusion)."""
    return PreparedHybrid(model, request).collect(progress)


def prepare(model, request: HybridRequest, batch: int | None = None) -> PreparedHybrid:
    """The `hybrid` job resolved and checked, ready to stream or collect (`batch`: images per batch)."""
    params.check(request)
    return PreparedHybrid(model, request, batch)
