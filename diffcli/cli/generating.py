"""What `sample`, `anagram` and `hybrid` share: loading a generator, running `generate` under the live
view, and writing images (a grid, one file per image, or stdout). Keeps the three commands thin."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from diffcli import console
from diffcli.errors import DiffcliError, UsageError

PREVIEW_TILES = 4


def load_generator(name: Optional[str], device: str, weights: str = "ema", offload: str = "auto", upscale: bool = False):
    """A diffusion model from the registry, ready to sample (not a single-step denoiser or classifier)."""
    from diffcli.models.backends import load_model
    from diffcli.models.registry import Registry

    entry = Registry().get(name)
    kind = entry.config().kind
    options: dict[str, Any] = {}
    if kind == "diffusers":
        options["offload"] = offload
    elif upscale:
        raise UsageError(f"--upscale needs a text-to-image model with an upscaler; {entry.name!r} is a {kind} model")
    model = load_model(entry=entry, device=device, weights=weights, **options)
    if not model.is_diffusion:
        raise DiffcliError(f"model {model.name!r} is a single-step denoiser and cannot generate", "use `diffcli denoise --method onestep` with it")
    return model


def sampler_settings(model, sampler: Optional[str], steps: Optional[int], stride: Optional[int], eta: float):
    from diffcli.generation import default_settings

    if steps is not None and steps > model.schedule.timesteps:
        raise UsageError(f"--steps {steps} is larger than the model's T = {model.schedule.timesteps}", f"use at most {model.schedule.timesteps}")
    return default_settings(model, sampler, steps, stride, eta)


def run_generation(
    model,
    terms,
    seeds: Sequence[int],
    settings,
    *,
    title: str,
    quiet: bool,
    json_output: bool,
    init=None,
    start: Optional[int] = None,
    mask=None,
    preview: Optional[Callable[[Any], list[tuple[str, list]]]] = None,
    chain=None,
):
    """`generate` with the live view (progress + half-block preview of x_t and x0) and optional chain
    recording. `preview(x)` may turn a batch into labelled rows (anagram shows both views)."""
    from diffcli.generation import chain_callbacks, generate, plan_timesteps
    from diffcli.tui.progress import RunView, choose_mode

    first = start if (init is not None and start is not None) else None
    total = len(plan_timesteps(model.schedule, settings, first if init is not None else None))
    mode = choose_mode(quiet, json_output)
    with RunView(title, total=total, mode=mode, unit="step", preview_every_s=0.5) as view:

        def on_step(i: int, t: int, x_t, x0) -> None:
            view.advance(1, t=t)
            if view.wants_preview():
                k = min(PREVIEW_TILES, x_t.shape[0])
                rows = preview(x0[:k]) if preview else [("x0", [*model.to_pixels(x0[:k])])]
                view.preview([("x_t", [*model.to_pixels(x_t[:k])]), *rows], caption=f"step {i + 1}/{total}, t={t}")

        return generate(model, terms, seeds, settings, init=init, start=start, mask=mask, callback=chain_callbacks(on_step, chain))


def seeds_for(seed: int, count: int) -> list[int]:
    """One seed per image: seed, seed+1, ... (so image i can be regenerated alone)."""
    return [seed + i for i in range(count)]


def write_outputs(
    images: Sequence[Any],
    names: Sequence[str],
    *,
    out: Optional[str],
    out_dir: Optional[str],
    default_name: str,
    json_output: bool,
    metadata: dict[str, Any],
    per_image_meta: Sequence[dict[str, Any]],
    figure_maker: Callable[[], Any],
) -> list[str]:
    """Write one PNG per image into --out-dir (paths on stdout), or one figure / single image to -o."""
    from diffcli.io import images as io_images

    written: list[str] = []
    if out_dir:
        folder = io_images.prepare_out_dir(out_dir)
        for image, name, meta in zip(images, names, per_image_meta):
            path = folder / f"{name}.png"
            io_images.write_png(image, io_images.OutputTarget(path), {**metadata, **meta})
            written.append(str(path))
            if not json_output:
                console.emit_line(str(path))
        return written
    target = io_images.resolve_output(out, default_name, json_output, console.notice)
    io_images.write_png(figure_maker(), target, metadata)
    if not target.is_stdout:
        console.info(f"wrote {target.describe()}")
    written.append(target.describe())
    return written


def safe_label(text: str) -> str:
    """A file-name-safe version of a label or prompt."""
    cleaned = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    while "--" in cleaned:
        cleaned = cleaned.replace("--", "-")
    return cleaned[:40] or "x"


def check_out_options(out: Optional[str], out_dir: Optional[str]) -> None:
    if out and out_dir:
        raise UsageError("use either -o or --out-dir, not both")


def positive_count(n: int) -> None:
    if n < 1:
        raise UsageError(f"-n must be at least 1, got {n}")



def pick_view(name: str, model):
    """An anagram view by name that fits the model's images (a usage error otherwise)."""
    from diffcli.diffusion.views import get_view

    try:
        view = get_view(name)
        view.check_fits(model.size, model.size)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return view


def hybrid_filter(model, kernel: Optional[int], sigma: Optional[float]) -> tuple[int, float]:
    """The hybrid low-pass (kernel, sigma): the user's, else the course's 33 / 2 at 64 px scaled to the model."""
    from diffcli.diffusion import filters

    default_kernel, default_sigma = filters.default_hybrid_filter(model.size)
    kernel = default_kernel if kernel is None else kernel
    sigma = default_sigma if sigma is None else sigma
    if kernel < 1 or kernel % 2 == 0:
        raise UsageError(f"--kernel must be an odd positive number, got {kernel}")
    if kernel // 2 >= model.size:
        raise UsageError(f"--kernel {kernel} is larger than the model's {model.size}x{model.size} images", f"use an odd size below {2 * model.size - 1}")
    if sigma <= 0:
        raise UsageError(f"--sigma must be positive, got {sigma}")
    return kernel, sigma
