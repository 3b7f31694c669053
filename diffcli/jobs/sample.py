"""The `sample` job: images by class or prompt, with CFG, SDEdit (`init` + `starts`), inpainting (`mask`),
reverse chains and best-of, from a request to an ImageSet (jobs/generating.py runs it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from diffcli import checks, console, params
from diffcli.errors import UsageError
from diffcli.generation.batches import Part
from diffcli.generation.reverse import prompt_terms
from diffcli.generation.settings import best_of_count, count, resolve_sampling
from diffcli.io import images as io_images
from diffcli.io.figures import figure
from diffcli.jobs.generating import GRID_COLUMNS, Prepared, first_seed
from diffcli.jobs.requests import SampleRequest
from diffcli.jobs.results import ImageSet, metadata, safe_label
from diffcli.progress import ProgressFactory, silent


class PreparedSample(Prepared):
    """`sample`, resolved: one image row per (prompt, seed), for each start."""

    def __init__(self, model, request: SampleRequest, batch: int | None = None) -> None:
        n = count("n", request.n)
        best_of = best_of_count(request.best_of)
        if (request.start or request.mask is not None) and request.init is None:
            raise UsageError("`start` and `mask` need `init` (the image to start from)")
        if best_of > 1 and model.cond_type != "class":
            raise UsageError(
                f"`best_of` for samples needs a class model, whose classifier reads each one; "
                f"{model.name!r} is {model.cond_type}-conditioned",
                "for text-to-image models it picks illusions (`anagram`, `hybrid`)",
            )
        settings = resolve_sampling(model, request.sampling)
        self.resolved = _sample_prompts(model, request.classes)
        self.n = n
        self.prompts = [p for p in self.resolved for _ in range(n * best_of)]  # one per candidate
        seed = first_seed(request.seed, len(self.prompts))
        init_tensor = mask_tensor = None
        starts: list[int | None] = [None]
        if request.init is not None:
            init_pixels, init_name = io_images.decode_input(request.init, model.channels, console.notice)
            if request.mask is not None:
                mask_pixels, mask_name = io_images.decode_input(request.mask, 1, console.notice)
                if init_pixels.shape[1:] != mask_pixels.shape[1:]:
                    (ih, iw), (mh, mw) = init_pixels.shape[1:], mask_pixels.shape[1:]
                    raise UsageError(
                        f"`init` is {iw}x{ih} but `mask` is {mw}x{mh}", "give a mask of the same size as the image"
                    )
                mask = io_images.binary_mask(mask_pixels, model.size, mask_name, console.notice)
                mask_tensor = torch.from_numpy(mask)[None].expand(len(self.prompts), -1, -1, -1)
            pixels = io_images.resize_square(init_pixels, model.size, init_name, console.notice)
            init_tensor = model.to_model(pixels)[None].expand(len(self.prompts), -1, -1, -1)
            starts = list(request.start or [default_start(model, request.mask is not None)])
            if not request.start:
                console.notice(
                    f"starting from t={starts[0]} ({'T-1: inpainting' if request.mask is not None else 'half of T'})"
                )
            for value in starts:
                checks.integer("start", value)
                if not 0 <= value < model.schedule.timesteps:
                    raise UsageError(f"`start` {value} is outside [0, {model.schedule.timesteps})")
        if len(starts) > 1 and request.chain:
            raise UsageError("`chain` shows one run per sample; give one `start` with it")
        title = f"sample {model.name}" + (f" from t={starts[0]}" if len(starts) == 1 and starts[0] is not None else "")
        super().__init__(
            model,
            settings,
            checks.seeds_for(seed, len(self.prompts)),
            title,
            starts=starts,
            init=init_tensor,
            mask=mask_tensor,
            chain=request.chain,
            upscale=request.upscale,
            batch=batch,
            best_of=best_of,
        )
        self.request = request
        self.sweep = len(starts) > 1
        init_name = request.init if isinstance(request.init, str) else (None if request.init is None else "image")
        mask_name = request.mask if isinstance(request.mask, str) else (None if request.mask is None else "image")
        self.metadata = metadata(
            "sample",
            model=model.name,
            seed=seed,
            sampler=settings.sampler,
            steps=settings.steps,
            stride=settings.stride,
            **self.guidance_info(),
            eta=settings.eta if settings.sampler == "ddim" else None,
            init=init_name,
            start=list(request.start) if request.start else None,
            mask=mask_name,
        )
        self.base_names = [
            f"{safe_label(model.label_name(p) if p else 'sample')}-{s}" for p, s in zip(self.prompts, self.seeds)
        ]

    def terms(self, rows: Sequence[int]) -> list:
        return prompt_terms(self.model, [self.prompts[i] for i in rows], self.scale, self.settings.guidance_interval)

    def upscale_terms(self, rows: Sequence[int], guidance: float) -> list:
        return prompt_terms(self.model, [self.prompts[i] for i in rows], guidance)

    def readings(self, x, rows: Sequence[int]) -> list:
        return [self.reader.read(self.model.to_pixels(x), [self.prompts[i] for i in rows])]

    def reading_labels(self, row: int) -> list[str]:
        return [self.model.label_name(self.prompts[row])]

    def _name(self, i: int, start: int | None) -> str:
        return f"{self.base_names[i]}-t{start}" if self.sweep else self.base_names[i]

    def _chain_figure(self, part: Part, pixels, i: int) -> np.ndarray:
        k = part.rows.index(i)
        labels = [f"t={t}" for t in part.chain.steps] + ["result"]
        return figure(
            [[*(self.model.to_pixels(x[k : k + 1])[0] for x in part.chain.x_t), pixels[k]]],
            col_labels=labels,
            row_labels=[self._name(i, part.start)],
        )

    def images(self, part: Part) -> ImageSet:
        pixels = self.model.to_pixels(part.x)
        names = [self._name(i, part.start) for i in part.rows]
        per_image = [
            {
                **self.image_info(i, part.start),
                "prompt": self.prompts[i].text if self.prompts[i] else None,
                **({"start": part.start} if part.start is not None else {}),
            }
            for i in part.rows
        ]
        extras = (
            [(f"{names[k]}-chain", self._chain_figure(part, pixels, i), per_image[k]) for k, i in enumerate(part.rows)]
            if self.chain
            else []
        )
        return ImageSet(list(pixels), names, per_image, self.metadata, {}, None, extras)

    def layout(self, parts: list[Part], whole: ImageSet):
        if self.chain:
            rows = []
            for part in parts:
                pixels = self.model.to_pixels(part.x)
                for k in range(len(part.rows)):
                    rows.append([*(self.model.to_pixels(x[k : k + 1])[0] for x in part.chain.x_t), pixels[k]])
            labels = [f"t={t}" for t in parts[0].chain.steps] + ["result"]
            return figure(rows, col_labels=labels, row_labels=whole.names)
        if self.sweep:  # the SDEdit sweep: the input, then the result at each start, one row per sample
            first = self.model.to_pixels(self.init[:1])[0]
            runs = [whole.images[j * self.count : (j + 1) * self.count] for j in range(len(self.starts))]
            labels = (
                [self.base_names[row] for start, row in self.kept if start == self.starts[0]]
                if self.best_of > 1
                else self.base_names
            )
            return figure(
                [[first, *(run[i] for run in runs)] for i in range(self.count)],
                col_labels=["input", *(f"t={v}" for v in self.starts)],
                row_labels=labels,
            )
        if len(whole) == 1:
            return whole.images[0]
        # One labelled row per class or prompt (wrapped every GRID_COLUMNS images), the same cell size
        # whether one class is asked for or ten.
        rows, labels = [], []
        for i, prompt in enumerate(self.resolved):
            images = whole.images[i * self.n : (i + 1) * self.n]
            for j in range(0, len(images), GRID_COLUMNS):
                rows.append(images[j : j + GRID_COLUMNS])
                labels.append((self.model.label_name(prompt) if prompt is not None else "sample") if j == 0 else "")
        return figure(rows, row_labels=labels)

    def summary(self) -> dict[str, Any]:
        s = self.settings
        return {
            "model": self.model.name,
            "seed": self.seeds[0],
            "seeds": self.seeds,
            "sampler": s.sampler,
            "steps": s.steps,
            "stride": s.stride,
            **self.guidance_info(),
            "prompts": [p.text if p else None for p in self.prompts[:: self.best_of]],
            "starts": self.starts if self.init is not None else None,
            "seconds": round(self.seconds, 3),
            "images": self.total_images,
            **self.best_of_summary(),
        }


def sample(model, request: SampleRequest, progress: ProgressFactory = silent) -> ImageSet:
    """Generate images with `model` (a LoadedModel) as `request` asks."""
    return PreparedSample(model, request).collect(progress)


def default_start(model, inpainting: bool) -> int:
    """Where SDEdit starts when no start is given: T-1 for inpainting (the masked part is generated from
    noise), else half of T (keeps the input's layout, changes its details)."""
    return model.schedule.timesteps - 1 if inpainting else model.schedule.timesteps // 2


def _sample_prompts(model, prompts: Sequence[Any] | None) -> list:
    """The resolved prompt of each grid row (None: unconditional)."""
    if prompts:
        resolved = [model.resolve_prompt(str(p)) for p in prompts]
        if len({r.label if r.label is not None else r.text for r in resolved}) < len(resolved):
            console.warn("the same class or prompt is given more than once")
        return resolved
    if model.cond_type == "class":
        return [model.resolve_prompt(str(i)) for i in range(len(model.labels))]
    if model.cond_type == "text":
        raise UsageError(f"model {model.name!r} is text-to-image and needs a prompt")
    return [None]


def prepare(model, request: SampleRequest, batch: int | None = None) -> PreparedSample:
    """The `sample` job resolved and checked, ready to stream or collect (`batch`: images per batch)."""
    params.check(request)
    return PreparedSample(model, request, batch)
