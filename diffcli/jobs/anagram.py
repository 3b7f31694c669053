"""The `anagram` job: visual anagrams, images that read as one prompt and as another after a view, from a
request to an ImageSet (jobs/generating.py runs it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from diffcli import console, params
from diffcli.generation.batches import Part
from diffcli.generation.illusions import anagram_readings, anagram_request, anagram_weight, illusion_sampling, pick_view
from diffcli.generation.settings import best_of_count, count
from diffcli.io.figures import figure
from diffcli.jobs.generating import Illusion
from diffcli.jobs.requests import AnagramRequest
from diffcli.jobs.results import ImageSet, metadata, safe_label
from diffcli.progress import ProgressFactory, silent


class PreparedAnagram(Illusion):
    """`anagram`, resolved: n seeds of one pair; each result is written with its view."""

    kind = "anagram"

    def __init__(self, model, request: AnagramRequest, batch: int | None = None) -> None:
        n = count("n", request.n)
        self.weight = anagram_weight(model, request.weight)
        self.view = pick_view(request.view, model)
        a, b = model.resolve_prompt(str(request.first)), model.resolve_prompt(str(request.second))
        if (a.label, a.text) == (b.label, b.text) or (a.label is not None and a.label == b.label):
            console.warn(f"both prompts are {model.label_name(a)!r}: the image only has to read the same both ways")
        best_of = best_of_count(request.best_of)
        settings = illusion_sampling(model, request.sampling, "anagram")
        seeds = self.candidate_seeds(request.seed, n, best_of)
        self.a, self.b, self.request = a, b, request
        self.name_a, self.name_b = model.label_name(a), model.label_name(b)
        self.viewed_label = f"{self.name_b} ({request.view})"
        super().__init__(
            model,
            settings,
            seeds,
            f"anagram {self.name_a} / {self.name_b}",
            upscale=request.upscale,
            batch=batch,
            best_of=best_of,
        )
        self.metadata = metadata(
            "anagram",
            model=model.name,
            seed=seeds[0],
            view=request.view,
            weight=self.weight,
            **self.guidance_info(),
            sampler=settings.sampler,
            steps=settings.steps,
            stride=settings.stride,
            prompts=[request.first, request.second],
        )

    def terms(self, rows: Sequence[int]) -> list:
        return anagram_request(
            self.model,
            [self.a] * len(rows),
            [self.b] * len(rows),
            self.scale,
            self.view,
            self.weight,
            self.settings.guidance_interval,
        )

    def upscale_terms(self, rows: Sequence[int], guidance: float) -> list:
        return anagram_request(self.model, [self.a] * len(rows), [self.b] * len(rows), guidance, self.view, self.weight)

    def readings(self, x, rows: Sequence[int]) -> list:
        k = len(rows)
        return anagram_readings(self.reader, self.model, x, [self.a] * k, [self.b] * k, self.view)

    def reading_labels(self, row: int) -> list[str]:
        return [self.name_a, self.viewed_label]

    def preview(self, x0) -> list:
        return [
            (self.name_a, [*self.model.to_pixels(x0)]),
            (self.viewed_label, [*self.model.to_pixels(self.view.apply(x0))]),
        ]

    def images(self, part: Part) -> ImageSet:
        plain, viewed = self.model.to_pixels(part.x), self.model.to_pixels(self.view.apply(part.x))
        images, names, per_image = [], [], []
        for k, i in enumerate(part.rows):
            s = self.seeds[i]
            info = self.image_info(i, part.start)
            images += [plain[k], viewed[k]]
            names += [f"{safe_label(self.name_a)}-{s}", f"{safe_label(self.name_b)}-{self.request.view}-{s}"]
            per_image += [info, {**info, "viewed": self.request.view}]
        return ImageSet(images, names, per_image, self.metadata)

    def layout(self, parts: list[Part], whole: ImageSet):
        plain, viewed = whole.images[0::2], whole.images[1::2]
        if len(plain) == 1:
            return figure([[plain[0], viewed[0]]], col_labels=[self.name_a, self.viewed_label])
        return figure(
            [plain, viewed],
            row_labels=[self.name_a, self.viewed_label],
            col_labels=[f"seed {s}" for s in self.kept_seeds()],
        )

    def summary(self) -> dict[str, Any]:
        r, s = self.request, self.settings
        return {
            "model": self.model.name,
            "seed": self.seeds[0],
            "seeds": self.seeds,
            "view": r.view,
            "weight": self.weight,
            **self.guidance_info(),
            "sampler": s.sampler,
            "steps": s.steps,
            "stride": s.stride,
            "prompts": [r.first, r.second],
            "seconds": round(self.seconds, 3),
            **self.best_of_summary(),
        }

    @property
    def total_images(self) -> int:
        return 2 * self.count


def anagram(model, request: AnagramRequest, progress: ProgressFactory = silent) -> ImageSet:
    """Generate visual anagrams: each image, then its view."""
    return PreparedAnagram(model, request).collect(progress)


def prepare(model, request: AnagramRequest, batch: int | None = None) -> PreparedAnagram:
    """The `anagram` job resolved and checked, ready to stream or collect (`batch`: images per batch)."""
    params.check(request)
    return PreparedAnagram(model, request, batch)
