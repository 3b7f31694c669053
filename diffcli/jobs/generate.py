"""The generating jobs: `sample`, `anagram` and `hybrid`, from a request to an ImageSet.

Each job resolves its request against the model (prompts, sampler settings, guidance, seeds, filters,
views), checks every value, runs `generation.generate` (the one path to the engine's reverse loop) under
a progress view, and lays the result out. Nothing here prints progress or writes files: the caller
passes a progress factory and decides where the images go.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

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
    from diffcli.models.registry import Registry

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
    scale (1 = off). eta: DDIM's noise, 0 (deterministic) to 1 (DDPM-like).
    """

    sampler: Optional[str] = None
    steps: Optional[int] = None
    stride: Optional[int] = None
    guidance: Optional[float] = None
    eta: float = 0.0


def resolve_sampling(model, sampling: Sampling):
    """(SamplerSettings, guidance scale) for this model: the request's choices, else the model's."""
    from diffcli.generation import default_settings, guidance_scale

    steps = checks.optional_integer("steps", sampling.steps, low=1)
    checks.optional_integer("stride", sampling.stride, low=1)
    checks.number("eta", sampling.eta, low=0.0, high=1.0)
    checks.optional_number("guidance", sampling.guidance, low=0.0)
    if steps is not None and steps > model.schedule.timesteps:
        raise UsageError(f"`steps` {steps} is larger than the model's T = {model.schedule.timesteps}", f"use at most {model.schedule.timesteps}")
    settings = default_settings(model, sampling.sampler, steps, sampling.stride, sampling.eta)
    return settings, guidance_scale(model, sampling.guidance)


def count(name: str, value: Any) -> int:
    """A number of images per class / prompt: at least 1."""
    return checks.integer(name, value, low=1)


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
    """The hybrid low-pass (kernel, sigma): the given ones, else the course's 33 / 2 at 64 px scaled to
    the model's image size."""
    from diffcli.diffusion import filters

    default_kernel, default_sigma = filters.default_hybrid_filter(model.size)
    kernel = default_kernel if kernel is None else checks.odd_kernel("kernel", kernel)
    sigma = default_sigma if sigma is None else checks.number("sigma", sigma, low=0.0, low_open=True)
    if kernel // 2 >= model.size:
        raise UsageError(f"`kernel` {kernel} is larger than the model's {model.size}x{model.size} images", f"use an odd size below {2 * model.size - 1}")
    return kernel, sigma


def _run(model, terms, seeds: Sequence[int], settings, progress: ProgressFactory, title: str, *, init=None, start=None, mask=None, preview=None, chain=None):
    """`generation.generate` under a progress view: a step counter, and (when the view wants one) a
    preview of x_t and the clean estimate; `preview(x0)` may turn a batch into labelled rows."""
    from diffcli.generation import chain_callbacks, generate, plan_timesteps

    total = len(plan_timesteps(model.schedule, settings, start if init is not None else None))
    with progress(title, total=total, unit="step", preview_every_s=0.5) as view:

        def on_step(i: int, t: int, x_t, x0) -> None:
            view.advance(1, t=t)
            if view.wants_preview():
                k = min(PREVIEW_TILES, x_t.shape[0])
                rows = preview(x0[:k]) if preview else [("x0", [*model.to_pixels(x0[:k])])]
                view.preview([("x_t", [*model.to_pixels(x_t[:k])]), *rows], caption=f"step {i + 1}/{total}, t={t}")

        return generate(model, terms, seeds, settings, init=init, start=start, mask=mask, callback=chain_callbacks(on_step, chain))


def _first_seed(seed: Optional[int], images: int) -> int:
    """The given seed (checked for `images` consecutive seeds), or a fresh one (recorded in the result)."""
    return checks.seed(seed, images)[0]


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


def sample(model, request: SampleRequest, progress: ProgressFactory = silent) -> ImageSet:
    """Generate images with `model` (a LoadedModel) as `request` asks."""
    import torch

    from diffcli.generation import ChainRecorder, plan_timesteps, prompt_terms
    from diffcli.io import images as io_images
    from diffcli.io.figures import figure, grid

    n = count("n", request.n)
    if (request.starts or request.mask is not None) and request.init is None:
        raise UsageError("`start` and `mask` need `init` (the image to start from)")
    settings, scale = resolve_sampling(model, request.sampling)
    resolved = _sample_prompts(model, request.prompts)
    row_names = [model.label_name(p) if p is not None else "sample" for p in resolved]
    prompts = [p for p in resolved for _ in range(n)]
    seed = _first_seed(request.seed, len(prompts))
    seeds = checks.seeds_for(seed, len(prompts))

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
            mask_tensor = torch.from_numpy(mask)[None].repeat(len(prompts), 1, 1, 1)
        pixels = io_images.resize_square(init_pixels, model.size, init_name, console.notice)
        init_tensor = model.to_model(pixels)[None].repeat(len(prompts), 1, 1, 1)
        starts = list(request.starts or [default_start(model, request.mask is not None)])
        if not request.starts:
            console.notice(f"starting from t={starts[0]} ({'T-1: inpainting' if request.mask is not None else 'half of T'})")
        for value in starts:
            checks.integer("start", value)
            if not 0 <= value < model.schedule.timesteps:
                raise UsageError(f"`start` {value} is outside [0, {model.schedule.timesteps})")
    if len(starts) > 1 and request.chain:
        raise UsageError("`chain` shows one run per sample; give one `start` with it")

    recorder = ChainRecorder(len(plan_timesteps(model.schedule, settings, starts[0])), CHAIN_FRAMES) if request.chain else None
    began = time.perf_counter()
    runs = []  # one result per start (one run without init)
    for value in starts:
        title = f"sample {model.name}" + (f" from t={value}" if value is not None else "")
        terms = prompt_terms(model, prompts, scale)
        result = _run(model, terms, seeds, settings, progress, title, init=init_tensor, start=value, mask=mask_tensor, chain=recorder)
        if request.upscale:
            result = model.upscale(result, prompts)
        runs.append(model.to_pixels(result))
    seconds = time.perf_counter() - began
    pixels = runs[0]
    sweep = len(runs) > 1

    init_name = request.init if isinstance(request.init, str) else (None if request.init is None else "image")
    mask_name = request.mask if isinstance(request.mask, str) else (None if request.mask is None else "image")
    meta = metadata("sample", model=model.name, seed=seed, sampler=settings.sampler, steps=settings.steps, stride=settings.stride, guidance=scale,
                    eta=settings.eta if settings.sampler == "ddim" else None, init=init_name, start=list(request.starts) if request.starts else None, mask=mask_name)
    base_names = [f"{safe_label(model.label_name(p) if p else 'sample')}-{s}" for p, s in zip(prompts, seeds)]
    names = [f"{name}-t{value}" if sweep else name for value in starts for name in base_names]
    per_image = [{"seed": s, "prompt": p.text if p else None, **({"start": value} if value is not None else {})} for value in starts for p, s in zip(prompts, seeds)]

    def chain_figure(rows: range) -> np.ndarray:
        labels = [f"t={t}" for t in recorder.steps] + ["result"]
        return figure([[*(model.to_pixels(x[i : i + 1])[0] for x in recorder.x_t), pixels[i]] for i in rows], col_labels=labels, row_labels=[names[i] for i in rows])

    def layout() -> np.ndarray:
        if request.chain:
            return chain_figure(range(len(prompts)))
        if sweep:  # the SDEdit sweep: the input, then the result at each start, one row per sample
            first = model.to_pixels(init_tensor[:1])[0]
            return figure([[first, *(run[i] for run in runs)] for i in range(len(prompts))], col_labels=["input", *(f"t={v}" for v in starts)], row_labels=base_names)
        if len(prompts) == 1:
            return pixels[0]
        if len(resolved) == 1:
            return grid(list(pixels))
        return figure([[*pixels[i * n : (i + 1) * n]] for i in range(len(resolved))], row_labels=row_names)

    extras = [(f"{names[i]}-chain", chain_figure(range(i, i + 1)), per_image[i]) for i in range(len(prompts))] if request.chain else []
    summary = {
        "model": model.name, "seed": seed, "seeds": seeds, "sampler": settings.sampler, "steps": settings.steps, "stride": settings.stride,
        "guidance": scale, "prompts": [p.text if p else None for p in prompts], "starts": starts if request.init is not None else None,
        "seconds": round(seconds, 3), "images": len(prompts) * len(runs),
    }
    return ImageSet([image for run in runs for image in run], names, per_image, meta, summary, layout, extras)


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
    view: flip (upside down), rot180, hflip, rot90 (square images) or negate. weight: w in [0, 1].
    """

    first: str
    second: str
    view: str = "flip"
    weight: float = 0.5
    n: int = 1
    sampling: Sampling = field(default_factory=Sampling)
    seed: Optional[int] = None
    upscale: bool = False


def anagram(model, request: AnagramRequest, progress: ProgressFactory = silent) -> ImageSet:
    """Generate visual anagrams: each image and its view, side by side."""
    from diffcli.illusions import anagram_request
    from diffcli.io.figures import figure

    n = count("n", request.n)
    weight = checks.number("weight", request.weight, low=0.0, high=1.0)
    view = pick_view(request.view, model)
    a, b = model.resolve_prompt(str(request.first)), model.resolve_prompt(str(request.second))
    if (a.label, a.text) == (b.label, b.text) or (a.label is not None and a.label == b.label):
        console.warn(f"both prompts are {model.label_name(a)!r}: the image only has to read the same both ways")
    settings, scale = resolve_sampling(model, request.sampling)
    seed = _first_seed(request.seed, n)
    seeds = checks.seeds_for(seed, n)
    terms = anagram_request(model, [a] * n, [b] * n, scale, view, weight)
    name_a, name_b = model.label_name(a), model.label_name(b)
    viewed_label = f"{name_b} ({request.view})"

    def preview(x0):
        return [(name_a, [*model.to_pixels(x0)]), (viewed_label, [*model.to_pixels(view.apply(x0))])]

    began = time.perf_counter()
    result = _run(model, terms, seeds, settings, progress, f"anagram {name_a} / {name_b}", preview=preview)
    if request.upscale:
        result = model.upscale(result, [a] * n)
    seconds = time.perf_counter() - began
    plain, viewed = model.to_pixels(result), model.to_pixels(view.apply(result))

    def layout() -> np.ndarray:
        if n == 1:
            return figure([[plain[0], viewed[0]]], col_labels=[name_a, viewed_label])
        return figure([[*plain], [*viewed]], row_labels=[name_a, viewed_label], col_labels=[f"seed {s}" for s in seeds])

    meta = metadata("anagram", model=model.name, seed=seed, view=request.view, weight=weight, guidance=scale, sampler=settings.sampler, steps=settings.steps, stride=settings.stride, prompts=[request.first, request.second])
    images, names, per_image = [], [], []
    for i, s in enumerate(seeds):
        images += [plain[i], viewed[i]]
        names += [f"{safe_label(name_a)}-{s}", f"{safe_label(name_b)}-{request.view}-{s}"]
        per_image += [{"seed": s}, {"seed": s, "viewed": request.view}]
    summary = {"model": model.name, "seed": seed, "seeds": seeds, "view": request.view, "weight": weight, "guidance": scale, "prompts": [request.first, request.second], "seconds": round(seconds, 3)}
    return ImageSet(images, names, per_image, meta, summary, layout)


# ----- hybrid --------------------------------------------------------------------------------------
@dataclass
class HybridRequest:
    """A hybrid image: `far` in its low frequencies (seen from afar), `near` in its high ones.

    eps = lowpass(eps(x_t, far)) + highpass(eps(x_t, near)), each CFG-guided (factorized diffusion).
    kernel / sigma: the Gaussian low-pass (default: 33 / 2 at 64 px, scaled to the model's size).
    explain: lay each result out as hybrid | its low-pass | its high-pass.
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


def hybrid(model, request: HybridRequest, progress: ProgressFactory = silent) -> ImageSet:
    """Generate hybrid images (factorized diffusion)."""
    from diffcli.diffusion import filters
    from diffcli.illusions import hybrid_request
    from diffcli.io.figures import figure, grid

    n = count("n", request.n)
    kernel, sigma = hybrid_filter(model, request.kernel, request.sigma)
    a, b = model.resolve_prompt(str(request.far)), model.resolve_prompt(str(request.near))
    if (a.label is not None and a.label == b.label) or (a.label is None and a.text == b.text):
        console.warn(f"both prompts are {model.label_name(a)!r}: the hybrid is just a sample of it")
    settings, scale = resolve_sampling(model, request.sampling)
    seed = _first_seed(request.seed, n)
    seeds = checks.seeds_for(seed, n)
    terms = hybrid_request(model, [a] * n, [b] * n, scale, kernel, sigma)
    name_far, name_near = model.label_name(a), model.label_name(b)

    def preview(x0):
        return [("low", [*model.to_pixels(filters.lowpass(x0, kernel, sigma))])]

    began = time.perf_counter()
    result = _run(model, terms, seeds, settings, progress, f"hybrid {name_far} / {name_near}", preview=preview)
    shown_kernel, shown_sigma = kernel, sigma
    if request.upscale:
        result = model.upscale(result, [b] * n)
        factor = result.shape[-1] / model.size  # the explanation's filter scales with the image
        shown_kernel, shown_sigma = int(round(kernel * factor)) | 1, sigma * factor
    seconds = time.perf_counter() - began
    pixels = model.to_pixels(result)
    low = model.to_pixels(filters.lowpass(result, shown_kernel, shown_sigma))
    lo, hi = model.config.pixel_range
    high = model.to_pixels(filters.highpass(result, shown_kernel, shown_sigma) + (lo + hi) / 2)  # centred on mid-grey

    def layout() -> np.ndarray:
        if request.explain:
            rows = [[pixels[i], low[i], high[i]] for i in range(n)]
            return figure(rows, col_labels=["hybrid", f"low-pass ({name_far})", f"high-pass ({name_near})"], row_labels=[f"seed {s}" for s in seeds] if n > 1 else None)
        return pixels[0] if n == 1 else grid(list(pixels))

    meta = metadata("hybrid", model=model.name, seed=seed, kernel=shown_kernel, sigma=shown_sigma, guidance=scale, sampler=settings.sampler, steps=settings.steps, stride=settings.stride, prompts=[request.far, request.near])
    names = [f"{safe_label(name_far)}-{safe_label(name_near)}-{s}" for s in seeds]
    summary = {"model": model.name, "seed": seed, "seeds": seeds, "kernel": shown_kernel, "sigma": shown_sigma, "guidance": scale, "prompts": [request.far, request.near], "seconds": round(seconds, 3)}
    return ImageSet(list(pixels), names, [{"seed": s} for s in seeds], meta, summary, layout)

