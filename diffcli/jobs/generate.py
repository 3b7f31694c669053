"""The generating jobs: `sample`, `anagram` and `hybrid`, from a request to an ImageSet.

Each job resolves its request against the model (prompts, sampler settings, guidance, seeds, filters,
views), checks every value, runs `generation.generate` (the one path to the engine's reverse loop) under
a progress view, and lays the result out. Nothing here prints progress or writes files: the caller
passes a progress factory and decides where the images go.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from diffcli import console
from diffcli.errors import DiffcliError, UsageError
from diffcli import checks
from diffcli.jobs.progress import ProgressFactory, silent
from diffcli.jobs.results import ImageSet, metadata, safe_label

PREVIEW_TILES = 4
CHAIN_FRAMES = 10
VIEW_NAMES = ("flip", "rot180", "hflip", "rot90", "negate")


# ----- loading and shared settings ------------------------------------------------------------------
def load_generator(name: Optional[str] = None, device: str = "auto", weights: str = "ema", offload: str = "auto", upscale: bool = False):
    """A diffusion model from the registry (None: the default), ready to sample: not a single-step
    denoiser or a classifier. `upscale` asks for a text-to-image model with a stage-II upscaler."""
    from diffcli.models.backends import load_model
    from diffcli.models.backends.memory import check_offload
    from diffcli.models.registry import Registry

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
        raise DiffcliError(f"model {model.name!r} is a single-step denoiser and cannot generate", "denoise with it instead (the one-step method)")
    return model


@dataclass(frozen=True)
class Sampling:
    """How to walk the reverse process; None means the model's own default.

    sampler: ddpm, ddim, heun or dpm++. steps: reverse steps, evenly spread from T-1. stride: visit every
    stride-th timestep instead (the course's 30 at T = 1000). guidance: the classifier-free guidance
    scale (1 = off). eta: DDIM's noise, 0 (deterministic) to 1 (DDPM-like). guidance_interval: "LO:HI"
    or (lo, hi), the part of the reverse process (fractions of T, counted from the clean end) where
    the guidance applies, plainly conditional elsewhere (None: the model's recorded interval when the
    scale is the model's too, else throughout; `generation.resolve_guidance`).
    """

    sampler: Optional[str] = None
    steps: Optional[int] = None
    stride: Optional[int] = None
    guidance: Optional[float] = None
    eta: float = 0.0
    guidance_interval: Any = None


def resolve_sampling(model, sampling: Sampling):
    """(SamplerSettings, guidance scale) for this model: the request's choices, else the model's. The
    settings carry the guidance interval."""
    from dataclasses import replace

    from diffcli.generation import default_settings, resolve_guidance

    steps = checks.STEPS.optional(sampling.steps)
    checks.STRIDE.optional(sampling.stride)
    checks.ETA(sampling.eta)
    checks.GUIDANCE.optional(sampling.guidance)
    if steps is not None and steps > model.schedule.timesteps:
        raise UsageError(f"`steps` {steps} is larger than the model's T = {model.schedule.timesteps}", f"use at most {model.schedule.timesteps}")
    settings = default_settings(model, sampling.sampler, steps, sampling.stride, sampling.eta)
    scale, interval = resolve_guidance(model, sampling.guidance, sampling.guidance_interval)
    return replace(settings, guidance_interval=interval), scale


MAX_PER_PROMPT = checks.COUNT.high  # images per class / prompt in one run: far past any figure or evaluation, and
# a typo like -n 100000000 is refused at once instead of building lists of its seeds for minutes


def count(name: str, value: Any) -> int:
    """A number of images per class / prompt: 1 to MAX_PER_PROMPT."""
    return checks.COUNT(value, name)


MAX_BEST_OF = checks.BEST_OF.high


def best_of_count(value: Any) -> int:
    """Candidates per image for `best_of`: 1 (off) to MAX_BEST_OF."""
    return checks.BEST_OF(value)


def pick_view(name: str, model):
    """An anagram view by name that fits the model's images."""
    from diffcli.diffusion.views import get_view

    try:
        view = get_view(name)
        view.check_fits(model.size, model.size)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return view


def hybrid_filter(model, kernel: Optional[int], sigma: Optional[float]) -> tuple[int, float]:
    """The hybrid low-pass (kernel, sigma): the given ones, else the model's illusion default
    (diffcli/illusions.py); a sigma given alone gets the odd kernel covering 3 sigma each side."""
    import math

    from diffcli import illusions

    default_kernel, default_sigma = illusions.hybrid_filter(model)
    sigma = default_sigma if sigma is None else checks.SIGMA(sigma)
    if kernel is None:
        kernel = default_kernel if sigma == default_sigma else min(2 * math.ceil(3 * sigma) + 1, 2 * model.size - 1)
    else:
        kernel = checks.odd_kernel("kernel", kernel)
    if kernel // 2 >= model.size:
        raise UsageError(f"`kernel` {kernel} is larger than the model's {model.size}x{model.size} images", f"use an odd size below {2 * model.size - 1}")
    return kernel, sigma


def _first_seed(seed: Optional[int], images: int) -> int:
    """The given seed (checked for `images` consecutive seeds), or a fresh one (recorded in the result)."""
    return checks.seed(seed, images)[0]


# ----- the batched run every generating job shares --------------------------------------------------
BATCH = 256  # images per call of the reverse loop: memory stays flat however many are asked for
MAX_FIGURE_IMAGES = 1024  # one figure holds at most this many images; more go one file each
GRID_COLUMNS = 10  # images per row of a sample figure


@dataclass
class Part:
    """One batch of a job's result: the rows it covers (indices into the job's seeds; with `best_of`, the
    kept candidates'), the SDEdit start it ran from, the images (model range, on the CPU) and, when
    asked, the recorded reverse chain."""

    rows: list[int]
    start: Optional[int]
    x: Any
    chain: Any = None


class Prepared:
    """A generating job resolved and checked, not run yet. `stream` yields one ImageSet per batch
    (what --out-dir writes as it goes); `collect` returns the whole set with its figure.

    With best_of K > 1, `seeds` holds K candidate seeds per requested image (image i: seeds[i*K : i*K+K]),
    generated in the same batches; after stage I each group is read by the scorer (`readings`) and only
    the best candidate goes on (to stage II, when asked, and into the result). Its own seed is recorded,
    so a run with that seed and one image makes it again."""

    kind = "sample"

    def __init__(self, model, settings, scale: float, seeds: list[int], title: str, *, starts=(None,), init=None, mask=None, chain: bool = False, upscale: bool = False, batch: Optional[int] = None, best_of: int = 1) -> None:
        self.model, self.settings, self.scale, self.seeds, self.title = model, settings, scale, seeds, title
        self.starts, self.init, self.mask, self.chain, self.upscale = list(starts), init, mask, chain, upscale
        self.best_of = best_of
        rows = checks.integer("batch", batch if batch is not None else BATCH, low=1)
        rows = checks.rows_that_fit(rows, model.forward_bytes(4))  # 4: an anagram's two guided terms
        self.batch = max(best_of, rows - rows % best_of)  # whole groups of candidates per batch
        self.seconds = 0.0
        self.kept: dict[tuple[Optional[int], int], dict[str, Any]] = {}  # (start, row) -> what best_of kept
        self.reader = None
        if best_of > 1:
            if chain:
                raise UsageError("`best_of` keeps one image of several and `chain` records every run; use one or the other")
            from diffcli.scoring.readings import reader_for

            self.reader = reader_for(model, console.notice)

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

    def preview(self, x0) -> Optional[list]:
        return None

    def images(self, part: Part) -> ImageSet:
        raise NotImplementedError

    def layout(self, parts: list[Part], whole: ImageSet):
        """The figure of the whole set (default: the image itself, or a plain grid)."""
        from diffcli.io.figures import grid

        return whole.images[0] if len(whole) == 1 else grid(whole.images)

    def summary(self) -> dict[str, Any]:
        """The machine-readable result, once the run is done."""
        return {"model": self.model.name, "seed": self.seeds[0], "seeds": self.seeds, **self.guidance_info(), "seconds": round(self.seconds, 3)}

    def guidance_info(self) -> dict[str, Any]:
        """The CFG scale and the interval it applied in (None: throughout), for summaries and PNG metadata."""
        from diffcli.generation import guidance_report

        return guidance_report(self.scale, self.settings.guidance_interval)

    # the run
    @property
    def count(self) -> int:
        """Images per start (requested ones: with best_of, one of each group of candidates)."""
        return len(self.seeds) // self.best_of

    @property
    def total_images(self) -> int:
        return self.count * len(self.starts)

    def _steps(self, start: Optional[int]) -> int:
        from diffcli.generation import plan_timesteps

        return len(plan_timesteps(self.model.schedule, self.settings, start if self.init is not None else None))

    def parts(self, progress: ProgressFactory) -> Iterator[Part]:
        """Run the reverse loop batch by batch under one progress view."""
        from diffcli.generation import ChainRecorder, chain_callbacks, generate

        batches = [list(range(i, min(i + self.batch, len(self.seeds)))) for i in range(0, len(self.seeds), self.batch)]
        total = sum(self._steps(start) for start in self.starts) * len(batches)
        began = time.perf_counter()
        with progress(self.title, total=total, unit="step", preview_every_s=0.5) as view:

            def on_step(i: int, t: int, x_t, x0) -> None:
                view.advance(1, t=t)
                if view.wants_preview():
                    # tiles spread over the batch, so a grid of several classes previews several classes
                    pick = sorted({round(j * (x_t.shape[0] - 1) / max(PREVIEW_TILES - 1, 1)) for j in range(PREVIEW_TILES)})
                    rows = self.preview(x0[pick]) or [("x0", [*self.model.to_pixels(x0[pick])])]
                    view.preview([("x_t", [*self.model.to_pixels(x_t[pick])]), *rows], caption=f"preview at t={t}")

            for start in self.starts:
                for rows in batches:
                    sl = slice(rows[0], rows[-1] + 1)
                    recorder = ChainRecorder(self._steps(start), CHAIN_FRAMES) if self.chain else None
                    init = self.init[sl] if self.init is not None else None
                    mask = self.mask[sl] if self.mask is not None else None
                    x = generate(self.model, self.terms(rows), self.seeds[sl], self.settings, init=init, start=start, mask=mask, callback=chain_callbacks(on_step, recorder))
                    if self.best_of > 1:
                        rows, x = self._keep_best(rows, x, start)
                    if self.upscale:
                        stage_two = self.upscale_settings()
                        x = self.model.upscale(x, self.upscale_terms(rows, stage_two.guidance), [self.seeds[i] for i in rows], stage_two)
                    yield Part(rows, start, x.float().cpu(), recorder)
        self.seconds = time.perf_counter() - began

    def _keep_best(self, rows: list[int], x, start: Optional[int]):
        """Read every candidate of this batch, keep the best of each group; say what was kept and warn
        when no candidate of a group reads as intended in every reading."""
        from diffcli.scoring.readings import choose

        readings = self.readings(x, rows)
        keep, every = choose(readings, self.best_of)
        kept_rows, local = [], []
        for group, (k, reads) in enumerate(zip(keep, every)):
            j = group * self.best_of + k
            row = rows[j]
            confidence = [round(float(r.confidence[j]), 4) for r in readings]
            labels = self.reading_labels(row)
            self.kept[(start, row)] = {"seed": self.seeds[row], "candidate": k + 1, "of": self.best_of, "reads": bool(reads), "confidence": dict(zip(labels, confidence))}
            scores = ", ".join(f"{label} {100 * c:.0f}%" for label, c in zip(labels, confidence))
            kept = f"candidate {k + 1} of {self.best_of} (seed {self.seeds[row]})"
            if reads:
                console.info(f"kept {kept}: {scores}")
            else:
                wanted = " and ".join(labels)
                console.warn(f"none of the {self.best_of} candidates reads as {wanted}; kept the closest, {kept}: "
                             f"{scores}")
            kept_rows.append(row)
            local.append(j)
        self.metadata["best_of"] = self.best_of
        self.metadata.setdefault("kept_seeds", []).extend(self.seeds[r] for r in kept_rows)
        if self.count == 1 and len(self.starts) == 1:
            self.metadata["seed"] = self.seeds[kept_rows[0]]  # the one image: its own seed makes it again
        return kept_rows, x[local]

    def image_info(self, row: int, start: Optional[int]) -> dict[str, Any]:
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
        return {"best_of": self.best_of, "seeds": [k["seed"] for k in kept], "kept": kept, "read_as_intended": sum(k["reads"] for k in kept)}

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
            [i for s in sets for i in s.images], [n for s in sets for n in s.names], [m for s in sets for m in s.per_image],
            first.metadata, {}, None, [e for s in sets for e in s.extras],
        )
        whole.summary = self.summary()
        whole.layout = lambda: self.layout(parts, whole)
        return whole


# ----- sample --------------------------------------------------------------------------------------
@dataclass
class SampleRequest:
    """What `sample` makes.

    prompts: classes (index or name: "7", "seven", "sneaker") or text prompts, one grid row each;
        None: every class of a class model (a text model needs a prompt).
    n: images per prompt (seed, seed + 1, ...). init: SDEdit / image-to-image from this image, noised to
    each of `starts` (default T/2, or T-1 with a mask). mask: inpaint where it is white (needs init).
    chain: also record the reverse chain (x_t at 10 steps) of each sample.
    upscale: run a text-to-image model's stage II (64 -> 256 px).
    best_of: make this many candidates per image and keep the one the dataset's scoring classifier
        reads as its class most confidently (class models).
    """

    prompts: Optional[Sequence[str]] = None
    n: int = 1
    sampling: Sampling = field(default_factory=Sampling)
    init: Any = None
    starts: Optional[Sequence[int]] = None
    mask: Any = None
    chain: bool = False
    seed: Optional[int] = None
    upscale: bool = False
    best_of: int = 1


class PreparedSample(Prepared):
    """`sample`, resolved: one image row per (prompt, seed), for each start."""

    def __init__(self, model, request: SampleRequest, batch: Optional[int] = None) -> None:
        import torch

        from diffcli.io import images as io_images

        n = count("n", request.n)
        best_of = best_of_count(request.best_of)
        if (request.starts or request.mask is not None) and request.init is None:
            raise UsageError("`start` and `mask` need `init` (the image to start from)")
        if best_of > 1 and model.cond_type != "class":
            raise UsageError(f"`best_of` for samples needs a class model, whose classifier reads each one; {model.name!r} is {model.cond_type}-conditioned", "for text-to-image models it picks illusions (`anagram`, `hybrid`)")
        settings, scale = resolve_sampling(model, request.sampling)
        self.resolved = _sample_prompts(model, request.prompts)
        self.n = n
        self.prompts = [p for p in self.resolved for _ in range(n * best_of)]  # one per candidate
        seed = _first_seed(request.seed, len(self.prompts))
        init_tensor = mask_tensor = None
        starts: list[Optional[int]] = [None]
        if request.init is not None:
            init_pixels, init_name = io_images.decode_input(request.init, model.channels, console.notice)
            if request.mask is not None:
                mask_pixels, mask_name = io_images.decode_input(request.mask, 1, console.notice)
                if init_pixels.shape[1:] != mask_pixels.shape[1:]:
                    (ih, iw), (mh, mw) = init_pixels.shape[1:], mask_pixels.shape[1:]
                    raise UsageError(f"`init` is {iw}x{ih} but `mask` is {mw}x{mh}", "give a mask of the same size as the image")
                mask = io_images.binary_mask(mask_pixels, model.size, mask_name, console.notice)
                mask_tensor = torch.from_numpy(mask)[None].expand(len(self.prompts), -1, -1, -1)
            pixels = io_images.resize_square(init_pixels, model.size, init_name, console.notice)
            init_tensor = model.to_model(pixels)[None].expand(len(self.prompts), -1, -1, -1)
            starts = list(request.starts or [default_start(model, request.mask is not None)])
            if not request.starts:
                console.notice(f"starting from t={starts[0]} ({'T-1: inpainting' if request.mask is not None else 'half of T'})")
            for value in starts:
                checks.integer("start", value)
                if not 0 <= value < model.schedule.timesteps:
                    raise UsageError(f"`start` {value} is outside [0, {model.schedule.timesteps})")
        if len(starts) > 1 and request.chain:
            raise UsageError("`chain` shows one run per sample; give one `start` with it")
        title = f"sample {model.name}" + (f" from t={starts[0]}" if len(starts) == 1 and starts[0] is not None else "")
        super().__init__(model, settings, scale, checks.seeds_for(seed, len(self.prompts)), title, starts=starts, init=init_tensor, mask=mask_tensor, chain=request.chain, upscale=request.upscale, batch=batch, best_of=best_of)
        self.request = request
        self.sweep = len(starts) > 1
        init_name = request.init if isinstance(request.init, str) else (None if request.init is None else "image")
        mask_name = request.mask if isinstance(request.mask, str) else (None if request.mask is None else "image")
        self.metadata = metadata(
            "sample", model=model.name, seed=seed, sampler=settings.sampler, steps=settings.steps, stride=settings.stride, **self.guidance_info(),
            eta=settings.eta if settings.sampler == "ddim" else None, init=init_name, start=list(request.starts) if request.starts else None, mask=mask_name,
        )
        self.base_names = [f"{safe_label(model.label_name(p) if p else 'sample')}-{s}" for p, s in zip(self.prompts, self.seeds)]

    def terms(self, rows: Sequence[int]) -> list:
        from diffcli.generation import prompt_terms

        return prompt_terms(self.model, [self.prompts[i] for i in rows], self.scale, self.settings.guidance_interval)

    def upscale_terms(self, rows: Sequence[int], guidance: float) -> list:
        from diffcli.generation import prompt_terms

        return prompt_terms(self.model, [self.prompts[i] for i in rows], guidance)

    def readings(self, x, rows: Sequence[int]) -> list:
        return [self.reader.read(self.model.to_pixels(x), [self.prompts[i] for i in rows])]

    def reading_labels(self, row: int) -> list[str]:
        return [self.model.label_name(self.prompts[row])]

    def _name(self, i: int, start: Optional[int]) -> str:
        return f"{self.base_names[i]}-t{start}" if self.sweep else self.base_names[i]

    def _chain_figure(self, part: Part, pixels, i: int) -> np.ndarray:
        from diffcli.io.figures import figure

        k = part.rows.index(i)
        labels = [f"t={t}" for t in part.chain.steps] + ["result"]
        return figure([[*(self.model.to_pixels(x[k : k + 1])[0] for x in part.chain.x_t), pixels[k]]], col_labels=labels, row_labels=[self._name(i, part.start)])

    def images(self, part: Part) -> ImageSet:
        pixels = self.model.to_pixels(part.x)
        names = [self._name(i, part.start) for i in part.rows]
        per_image = [{**self.image_info(i, part.start), "prompt": self.prompts[i].text if self.prompts[i] else None, **({"start": part.start} if part.start is not None else {})} for i in part.rows]
        extras = [(f"{names[k]}-chain", self._chain_figure(part, pixels, i), per_image[k]) for k, i in enumerate(part.rows)] if self.chain else []
        return ImageSet(list(pixels), names, per_image, self.metadata, {}, None, extras)

    def layout(self, parts: list[Part], whole: ImageSet):
        from diffcli.io.figures import figure

        if self.chain:
            rows = []
            for part in parts:
                pixels = self.model.to_pixels(part.x)
                for k, i in enumerate(part.rows):
                    rows.append([*(self.model.to_pixels(x[k : k + 1])[0] for x in part.chain.x_t), pixels[k]])
            labels = [f"t={t}" for t in parts[0].chain.steps] + ["result"]
            return figure(rows, col_labels=labels, row_labels=whole.names)
        if self.sweep:  # the SDEdit sweep: the input, then the result at each start, one row per sample
            first = self.model.to_pixels(self.init[:1])[0]
            runs = [whole.images[j * self.count : (j + 1) * self.count] for j in range(len(self.starts))]
            labels = [self.base_names[row] for start, row in self.kept if start == self.starts[0]] if self.best_of > 1 else self.base_names
            return figure([[first, *(run[i] for run in runs)] for i in range(self.count)], col_labels=["input", *(f"t={v}" for v in self.starts)], row_labels=labels)
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
            "model": self.model.name, "seed": self.seeds[0], "seeds": self.seeds, "sampler": s.sampler, "steps": s.steps, "stride": s.stride,
            **self.guidance_info(), "prompts": [p.text if p else None for p in self.prompts[:: self.best_of]], "starts": self.starts if self.init is not None else None,
            "seconds": round(self.seconds, 3), "images": self.total_images, **self.best_of_summary(),
        }


def sample(model, request: SampleRequest, progress: ProgressFactory = silent) -> ImageSet:
    """Generate images with `model` (a LoadedModel) as `request` asks."""
    return PreparedSample(model, request).collect(progress)


def default_start(model, inpainting: bool) -> int:
    """Where SDEdit starts when no start is given: T-1 for inpainting (the masked part is generated from
    noise), else half of T (keeps the input's layout, changes its details)."""
    return model.schedule.timesteps - 1 if inpainting else model.schedule.timesteps // 2


def _sample_prompts(model, prompts: Optional[Sequence[Any]]) -> list:
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


# ----- anagram -------------------------------------------------------------------------------------
@dataclass
class AnagramRequest:
    """A visual anagram: reads as `first`, and as `second` after `view`.

    eps = w eps(x_t, first) + (1 - w) V^-1(eps(V(x_t), second)), each term CFG-guided (docs/engine.md).
    view: flip (upside down), rot180, hflip, rot90 (square images) or negate. weight: w in [0, 1]
    (None: the illusion default, 0.5). Sampling left unset takes the illusion defaults of the model
    (diffcli/illusions.py). best_of: make this many candidates per image and keep the one that reads
    both ways most confidently (the dataset's scoring classifier; CLIP for text-to-image models).
    """

    first: str
    second: str
    view: str = "flip"
    weight: Optional[float] = None
    n: int = 1
    sampling: Sampling = field(default_factory=Sampling)
    seed: Optional[int] = None
    upscale: bool = False
    best_of: int = 1


def illusion_sampling(model, sampling: Sampling, kind: str):
    """(SamplerSettings, guidance scale) of an illusion: the request's choices, else the illusion
    defaults of the model (diffcli/illusions.py), else the model's own."""
    from diffcli.illusions import fill_sampling

    checks.STEPS.optional(sampling.steps)
    return resolve_sampling(model, fill_sampling(model, sampling, kind))


def anagram_weight(model, weight: Optional[float]) -> float:
    """An anagram's weight of its first prompt: the given one (checked), else the illusion default."""
    from diffcli.illusions import defaults

    return defaults(model, "anagram").weight if weight is None else checks.WEIGHT(weight)


class Illusion(Prepared):
    """What anagrams and hybrids share: one prompt pair, n seeds (times best_of candidates), stage II
    with the reference's illusion settings."""

    @staticmethod
    def candidate_seeds(seed: Optional[int], n: int, best_of: int) -> list[int]:
        """best_of seeds for each of n images: seed, seed + 1, ... (image i: the i-th group)."""
        return checks.seeds_for(_first_seed(seed, n * best_of), n * best_of)

    def upscale_settings(self):
        from dataclasses import replace as replaced

        from diffcli.illusions import REFERENCE_STAGE_TWO_STEPS

        return replaced(self.model.upscale_settings(illusion_guidance=self.scale), steps=REFERENCE_STAGE_TWO_STEPS)

    def kept_seeds(self) -> list[int]:
        """The seed of each image in the result, in order."""
        return [k["seed"] for k in self.kept.values()] if self.best_of > 1 else list(self.seeds)


class PreparedAnagram(Illusion):
    """`anagram`, resolved: n seeds of one pair; each result is written with its view."""

    kind = "anagram"

    def __init__(self, model, request: AnagramRequest, batch: Optional[int] = None) -> None:
        n = count("n", request.n)
        self.weight = anagram_weight(model, request.weight)
        self.view = pick_view(request.view, model)
        a, b = model.resolve_prompt(str(request.first)), model.resolve_prompt(str(request.second))
        if (a.label, a.text) == (b.label, b.text) or (a.label is not None and a.label == b.label):
            console.warn(f"both prompts are {model.label_name(a)!r}: the image only has to read the same both ways")
        best_of = best_of_count(request.best_of)
        settings, scale = illusion_sampling(model, request.sampling, "anagram")
        seeds = self.candidate_seeds(request.seed, n, best_of)
        self.a, self.b, self.request = a, b, request
        self.name_a, self.name_b = model.label_name(a), model.label_name(b)
        self.viewed_label = f"{self.name_b} ({request.view})"
        super().__init__(model, settings, scale, seeds, f"anagram {self.name_a} / {self.name_b}", upscale=request.upscale, batch=batch, best_of=best_of)
        self.metadata = metadata("anagram", model=model.name, seed=seeds[0], view=request.view, weight=self.weight, **self.guidance_info(), sampler=settings.sampler, steps=settings.steps, stride=settings.stride, prompts=[request.first, request.second])

    def terms(self, rows: Sequence[int]) -> list:
        from diffcli.illusions import anagram_request

        return anagram_request(self.model, [self.a] * len(rows), [self.b] * len(rows), self.scale, self.view, self.weight, self.settings.guidance_interval)

    def upscale_terms(self, rows: Sequence[int], guidance: float) -> list:
        from diffcli.illusions import anagram_request

        return anagram_request(self.model, [self.a] * len(rows), [self.b] * len(rows), guidance, self.view, self.weight)

    def readings(self, x, rows: Sequence[int]) -> list:
        k = len(rows)
        return [
            self.reader.read(self.model.to_pixels(x), [self.a] * k, [[self.b]] * k),
            self.reader.read(self.model.to_pixels(self.view.apply(x)), [self.b] * k, [[self.a]] * k),
        ]

    def reading_labels(self, row: int) -> list[str]:
        return [self.name_a, self.viewed_label]

    def preview(self, x0) -> list:
        return [(self.name_a, [*self.model.to_pixels(x0)]), (self.viewed_label, [*self.model.to_pixels(self.view.apply(x0))])]

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
        from diffcli.io.figures import figure

        plain, viewed = whole.images[0::2], whole.images[1::2]
        if len(plain) == 1:
            return figure([[plain[0], viewed[0]]], col_labels=[self.name_a, self.viewed_label])
        return figure([plain, viewed], row_labels=[self.name_a, self.viewed_label], col_labels=[f"seed {s}" for s in self.kept_seeds()])

    def summary(self) -> dict[str, Any]:
        r, s = self.request, self.settings
        return {
            "model": self.model.name, "seed": self.seeds[0], "seeds": self.seeds, "view": r.view, "weight": self.weight, **self.guidance_info(),
            "sampler": s.sampler, "steps": s.steps, "stride": s.stride, "prompts": [r.first, r.second], "seconds": round(self.seconds, 3), **self.best_of_summary(),
        }

    @property
    def total_images(self) -> int:
        return 2 * self.count


def anagram(model, request: AnagramRequest, progress: ProgressFactory = silent) -> ImageSet:
    """Generate visual anagrams: each image, then its view."""
    return PreparedAnagram(model, request).collect(progress)


# ----- hybrid --------------------------------------------------------------------------------------
@dataclass
class HybridRequest:
    """A hybrid image: `far` in its low frequencies (seen from afar), `near` in its high ones.

    eps = lowpass(eps(x_t, far)) + highpass(eps(x_t, near)), each CFG-guided (factorized diffusion).
    kernel / sigma: the Gaussian low-pass (default: the model's illusion default, diffcli/illusions.py;
    a sigma alone gets a kernel covering 3 sigma each side).
    far_first / near_last: the share of the reverse process (of T) that follows FAR alone at its start
    (its high frequencies too) and NEAR alone at its end (default: the model's illusion default).
    explain: lay each result out as hybrid | its low-pass | its high-pass.
    best_of: make this many candidates per image and keep the one whose low-pass reads as `far` and
    whole as `near` most confidently (the dataset's scoring classifier; CLIP for text-to-image models).
    """

    far: str
    near: str
    kernel: Optional[int] = None
    sigma: Optional[float] = None
    explain: bool = False
    n: int = 1
    sampling: Sampling = field(default_factory=Sampling)
    seed: Optional[int] = None
    upscale: bool = False
    best_of: int = 1
    far_first: Optional[float] = None
    near_last: Optional[float] = None


def hybrid_bands(model, far_first: Optional[float], near_last: Optional[float]) -> tuple[float, float]:
    """A hybrid's (far_first, near_last): the given ones (checked), else the model's illusion defaults."""
    from diffcli.illusions import defaults

    d = defaults(model, "hybrid")
    far_first = d.far_first if far_first is None else checks.number("far_first", far_first, low=0.0, high=1.0)
    near_last = d.near_last if near_last is None else checks.number("near_last", near_last, low=0.0, high=1.0)
    if far_first + near_last > 1.0:
        raise UsageError(f"`far_first` {far_first:g} and `near_last` {near_last:g} add up to more than the whole reverse process", "keep their sum at most 1")
    return far_first, near_last


class PreparedHybrid(Illusion):
    """`hybrid`, resolved: n seeds of one (far, near) pair."""

    kind = "hybrid"

    def __init__(self, model, request: HybridRequest, batch: Optional[int] = None) -> None:
        n = count("n", request.n)
        self.kernel, self.sigma = hybrid_filter(model, request.kernel, request.sigma)
        self.far_first, self.near_last = hybrid_bands(model, request.far_first, request.near_last)
        a, b = model.resolve_prompt(str(request.far)), model.resolve_prompt(str(request.near))
        if (a.label is not None and a.label == b.label) or (a.label is None and a.text == b.text):
            console.warn(f"both prompts are {model.label_name(a)!r}: the hybrid is just a sample of it")
        best_of = best_of_count(request.best_of)
        settings, scale = illusion_sampling(model, request.sampling, "hybrid")
        seeds = self.candidate_seeds(request.seed, n, best_of)
        self.a, self.b, self.request = a, b, request
        self.name_far, self.name_near = model.label_name(a), model.label_name(b)
        super().__init__(model, settings, scale, seeds, f"hybrid {self.name_far} / {self.name_near}", upscale=request.upscale, batch=batch, best_of=best_of)
        self.shown = (self.kernel, self.sigma)  # the filter at the output's size (scaled after stage II)
        self.metadata = metadata("hybrid", model=model.name, seed=seeds[0], kernel=self.kernel, sigma=self.sigma, far_first=self.far_first, near_last=self.near_last, **self.guidance_info(), sampler=settings.sampler, steps=settings.steps, stride=settings.stride, prompts=[request.far, request.near])

    def terms(self, rows: Sequence[int]) -> list:
        from diffcli.illusions import hybrid_request

        return hybrid_request(self.model, [self.a] * len(rows), [self.b] * len(rows), self.scale, self.kernel, self.sigma, self.far_first, self.near_last, self.settings.guidance_interval)

    def upscale_terms(self, rows: Sequence[int], guidance: float) -> list:
        from diffcli.illusions import hybrid_request

        kernel, sigma = self._filter_for_factor(self.model.upscale_factor)
        return hybrid_request(self.model, [self.a] * len(rows), [self.b] * len(rows), guidance, kernel, sigma)

    def readings(self, x, rows: Sequence[int]) -> list:
        from diffcli.diffusion import filters

        k = len(rows)
        return [
            self.reader.read(self.model.to_pixels(filters.lowpass(x, self.kernel, self.sigma)), [self.a] * k, [[self.b]] * k),
            self.reader.read(self.model.to_pixels(x), [self.b] * k, [[self.a]] * k),
        ]

    def reading_labels(self, row: int) -> list[str]:
        return [f"{self.name_far} (afar)", f"{self.name_near} (up close)"]

    def preview(self, x0) -> list:
        from diffcli.diffusion import filters

        return [("low", [*self.model.to_pixels(filters.lowpass(x0, self.kernel, self.sigma))])]

    def _filter_for_factor(self, factor: float) -> tuple[int, float]:
        from diffcli.diffusion import filters

        return (self.kernel, self.sigma) if factor == 1 else filters.scale_filter(self.kernel, self.sigma, factor)

    def _filter_for(self, x) -> tuple[int, float]:
        """The low-pass at the size of `x` (stage II's output is larger: the filter scales with it)."""
        return self._filter_for_factor(x.shape[-1] / self.model.size)

    def images(self, part: Part) -> ImageSet:
        self.shown = self._filter_for(part.x)
        kernel, sigma = self.shown
        self.metadata.update(kernel=kernel, sigma=sigma)
        names = [f"{safe_label(self.name_far)}-{safe_label(self.name_near)}-{self.seeds[i]}" for i in part.rows]
        return ImageSet(list(self.model.to_pixels(part.x)), names, [self.image_info(i, part.start) for i in part.rows], self.metadata)

    def layout(self, parts: list[Part], whole: ImageSet):
        from diffcli.diffusion import filters
        from diffcli.io.figures import figure, grid

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
        return figure(rows, col_labels=["hybrid", f"low-pass ({self.name_far})", f"high-pass ({self.name_near})"], row_labels=[f"seed {s}" for s in self.kept_seeds()] if len(rows) > 1 else None)

    def summary(self) -> dict[str, Any]:
        r, s = self.request, self.settings
        kernel, sigma = self.shown
        return {
            "model": self.model.name, "seed": self.seeds[0], "seeds": self.seeds, "kernel": kernel, "sigma": sigma, "far_first": self.far_first, "near_last": self.near_last, **self.guidance_info(),
            "sampler": s.sampler, "steps": s.steps, "stride": s.stride, "prompts": [r.far, r.near], "seconds": round(self.seconds, 3), **self.best_of_summary(),
        }


def hybrid(model, request: HybridRequest, progress: ProgressFactory = silent) -> ImageSet:
    """Generate hybrid images (factorized diffusion)."""
    return PreparedHybrid(model, request).collect(progress)


def prepare(model, request: Any, batch: Optional[int] = None) -> Prepared:
    """The prepared job for a SampleRequest, AnagramRequest or HybridRequest."""
    kinds = {SampleRequest: PreparedSample, AnagramRequest: PreparedAnagram, HybridRequest: PreparedHybrid}
    return kinds[type(request)](model, request, batch)
