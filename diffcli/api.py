"""diffcli's Python API: everything the command line does, from a notebook or a script.

    import diffcli
    m = diffcli.load("mnist")                      # a model from the registry (the default: None)
    grid = m.sample(classes=[3, 7], n=4, seed=0)   # an ImageSet: shows itself in Jupyter
    grid.save("sevens.png"); grid.images[0]        # numpy [C, H, W] in [0, 1]; .pil, .tensor
    m.anagram(6, 9, view="rot180"); m.hybrid(1, 7, explain=True)
    diffcli.noise("builtin:house", t=[250, 500])
    diffcli.train(dataset="glyphs", epochs=1, name="g")
    diffcli.evaluate("mnist", n=20)

Every function takes the same values as the command of the same name (docs/python.md lists them),
checks them the same way and raises DiffcliError (UsageError for a bad value) with the same one-line
message. Long runs show progress: a bar in Jupyter, a panel on a terminal; `progress=False` turns it off.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Optional

from diffcli.jobs import evaluate as _evaluate
from diffcli.jobs import generate as _generate
from diffcli.jobs import models as _models
from diffcli.jobs import progress as _progress
from diffcli.jobs.results import ImageSet

__all__ = [
    "Model", "ImageSet", "load", "noise", "denoise", "train", "evaluate",
    "list_models", "show_model", "remove_model", "import_model", "export_model", "default_model", "set_default_model",
]


class Model:
    """A registry model loaded for generating: `sample`, `anagram`, `hybrid`, `denoise`, `evaluate`."""

    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded

    def __repr__(self) -> str:
        labels = f", labels {self.loaded.describe_labels()}" if self.loaded.cond_type == "class" else ""
        return f"<diffcli.Model {self.name!r}: {self.loaded.config.kind}, {self.loaded.cond_type}-conditioned, {self.size}x{self.size}{labels}>"

    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def labels(self) -> list[str]:
        """The class names of a class-conditional model (empty otherwise)."""
        return list(self.loaded.labels)

    @property
    def size(self) -> int:
        return self.loaded.size

    @property
    def config(self) -> Any:
        """The model's config (kind, schedule, prediction, labels, training provenance, metrics)."""
        return self.loaded.config

    def sample(
        self,
        classes: Any = None,
        n: int = 1,
        *,
        seed: Optional[int] = None,
        sampler: Optional[str] = None,
        steps: Optional[int] = None,
        stride: Optional[int] = None,
        guidance: Optional[float] = None,
        guidance_interval: Any = None,
        eta: float = 0.0,
        init: Any = None,
        start: Any = None,
        mask: Any = None,
        chain: bool = False,
        upscale: bool = False,
        best_of: int = 1,
        progress: Any = True,
    ) -> ImageSet:
        """Generate `n` images per class or prompt (one class, a list, or None for every class).

        init / start / mask: SDEdit from an image (path, PIL image or array) noised to each `start`, and
        inpainting where the mask is white. chain: lay out each sample's reverse chain. best_of: make
        this many candidates per image and keep the one the dataset's classifier reads as its class most
        confidently (class models; `summary["kept"]` says which and how sure). guidance_interval: "LO:HI"
        or (lo, hi), the part of the reverse process where the guidance applies (None: the model's)."""
        from diffcli.checks import as_list

        request = _generate.SampleRequest(
            as_list(classes), n, _sampling(sampler, steps, stride, guidance, eta, guidance_interval), init, as_list(start), mask, chain, seed, upscale, best_of,
        )
        return _generate.sample(self.loaded, request, _progress.resolve(progress))

    def anagram(
        self,
        first: Any,
        second: Any,
        *,
        view: str = "flip",
        weight: Optional[float] = None,
        n: int = 1,
        seed: Optional[int] = None,
        sampler: Optional[str] = None,
        steps: Optional[int] = None,
        stride: Optional[int] = None,
        guidance: Optional[float] = None,
        guidance_interval: Any = None,
        eta: float = 0.0,
        upscale: bool = False,
        best_of: int = 1,
        progress: Any = True,
    ) -> ImageSet:
        """Visual anagrams: images that read as `first`, and as `second` after `view` (flip, rot180,
        hflip, rot90, negate). The set holds each image followed by its view. Unset sampling options
        take the illusion defaults (docs/illusions.md). best_of: make this many candidates per image
        and keep the one that reads both ways most confidently (`summary["kept"]`)."""
        request = _generate.AnagramRequest(str(first), str(second), view, weight, n, _sampling(sampler, steps, stride, guidance, eta, guidance_interval), seed, upscale, best_of)
        return _generate.anagram(self.loaded, request, _progress.resolve(progress))

    def hybrid(
        self,
        far: Any,
        near: Any,
        *,
        kernel: Optional[int] = None,
        sigma: Optional[float] = None,
        explain: bool = False,
        far_first: Optional[float] = None,
        near_last: Optional[float] = None,
        n: int = 1,
        seed: Optional[int] = None,
        sampler: Optional[str] = None,
        steps: Optional[int] = None,
        stride: Optional[int] = None,
        guidance: Optional[float] = None,
        guidance_interval: Any = None,
        eta: float = 0.0,
        upscale: bool = False,
        best_of: int = 1,
        progress: Any = True,
    ) -> ImageSet:
        """Hybrid images: `far` in the low frequencies, `near` in the high ones (factorized diffusion);
        `explain` lays each out as hybrid | low-pass | high-pass. far_first / near_last: the share of
        the reverse process that follows FAR alone at its start / NEAR alone at its end. Unset sampling
        options, filter and shares take the illusion defaults (docs/illusions.md). best_of: make this many candidates per image
        and keep the one that reads both ways most confidently (`summary["kept"]`)."""
        request = _generate.HybridRequest(str(far), str(near), kernel, sigma, explain, n, _sampling(sampler, steps, stride, guidance, eta, guidance_interval), seed, upscale, best_of, far_first, near_last)
        return _generate.hybrid(self.loaded, request, _progress.resolve(progress))

    def denoise(self, image: Any, **options: Any) -> ImageSet:
        """`diffcli.denoise` with this model (see it for the options)."""
        return denoise(image, model=self.loaded, **options)

    def evaluate(self, task: str = "sample", **options: Any) -> dict[str, Any]:
        """`diffcli.evaluate` of this model (see it for the options)."""
        return evaluate(self.loaded, task=task, **options)


def _sampling(sampler: Optional[str], steps: Optional[int], stride: Optional[int], guidance: Optional[float], eta: float, guidance_interval: Any = None) -> Any:
    return _generate.Sampling(sampler, steps, stride, guidance, eta, guidance_interval)


def load(name: Optional[str] = None, device: str = "auto", weights: str = "ema", offload: str = "auto", upscale: bool = False) -> Model:
    """A generating model from the registry by name (None: the registry's default, the embedded MNIST
    model on a fresh install). device: auto, cpu, cuda or mps. weights: ema or raw (models trained with
    EMA). offload / upscale: text-to-image models only."""
    return Model(_generate.load_generator(name, device, weights, offload, upscale))


def noise(image: Any, t: Any, *, timesteps: Optional[int] = None, schedule: str = "linear", size: Optional[int] = None, seed: Optional[int] = None) -> ImageSet:
    """The forward process: `image` (path, PIL image or array) noised to each timestep in `t`."""
    from diffcli.checks import as_list
    from diffcli.jobs.noise import NoiseRequest, noise as noise_job

    return noise_job(NoiseRequest(image, as_list(t) or [], timesteps, schedule, size, seed))


def denoise(
    image: Any,
    method: str = "iterative",
    *,
    t: Optional[int] = None,
    noisy: bool = False,
    compare: bool = False,
    kernel: int = 5,
    sigma: float = 2.0,
    stride: Optional[int] = None,
    steps: Optional[int] = None,
    sampler: str = "ddpm",
    prompt: Optional[str] = None,
    guidance: Optional[float] = None,
    noise_sigma: Any = None,
    seed: Optional[int] = None,
    model: Any = None,
    device: str = "auto",
    guidance_interval: Any = None,
) -> ImageSet:
    """Blur, one-step or iterative denoising of `image` noised to `t` (or already noisy); `compare`
    makes the course's panel. The set's `summary["scores"]` has MSE and PSNR against the original.
    model: a name, a loaded Model, or None (the default; blur needs none)."""
    from diffcli.checks import as_list
    from diffcli.jobs.denoise import DenoiseRequest, denoise as denoise_job

    if isinstance(model, Model):
        model = model.loaded
    request = DenoiseRequest(image, method, t, noisy, compare, kernel, sigma, stride, steps, sampler, prompt, guidance, as_list(noise_sigma), seed, guidance_interval)
    return denoise_job(request, model, device)


def train(
    name: Optional[str] = None, *, preset: str = "default", resume: bool = False, force: bool = False,
    set_default: bool = False, download: bool = False, device: str = "auto", progress: Any = True, **recipe: Any,
) -> Any:
    """Train a model into the registry and return its TrainResult (losses, steps, time).

    recipe: dataset (mnist, fashion-mnist, glyphs, folder:PATH), data_dir, epochs, batch_size, lr, ...
    (the options of `diffcli train`, with underscores). download: fetch a missing MNIST / Fashion-MNIST
    into the `data_dir` given (a named folder is otherwise only read). Interrupting (Ctrl-C /
    KeyboardInterrupt) saves a checkpoint and raises InterruptedRun; `resume=True` continues it exactly."""
    from diffcli.jobs.train import TrainRequest, train as train_job

    if "compile_model" in recipe:
        recipe["compile"] = recipe.pop("compile_model")
    command = "diffcli.train(" + ", ".join([*([repr(name)] if name else []), *(f"{k}={v!r}" for k, v in recipe.items())]) + ")"
    request = TrainRequest(
        name=name, preset=preset, recipe=recipe, resume=resume, force=force, set_default=set_default, device=device,
        command=command, download=download,
    )
    return train_job(request, _progress.resolve(progress))


def evaluate(model: Any = None, task: str = "sample", *, device: str = "auto", progress: Any = True, **options: Any) -> dict[str, Any]:
    """Score a model's samples (task sample: per-class accuracy, FID beside its floor; anagram / hybrid:
    success over class pairs; chain: when samples become recognisable). Returns the report dict.

    options: n, scorer, view, weight, pairs, kernel, sigma, sampler, steps, stride, guidance, guidance_interval, eta,
    batch_size, dataset, data_dir, retrain_classifier, record, seed (see EvalRequest)."""
    if isinstance(model, Model):
        model = model.loaded
    elif model is None or isinstance(model, str):
        model = _generate.load_generator(model, device)
    sampling_keys = ("sampler", "steps", "stride", "guidance", "eta", "guidance_interval")
    sampling = _generate.Sampling(**{k: options.pop(k) for k in sampling_keys if k in options})
    known = set(inspect.signature(_evaluate.EvalRequest).parameters)
    unknown = sorted(set(options) - known)
    if unknown:
        from diffcli.errors import UsageError

        raise UsageError(f"unknown evaluation option(s): {', '.join(unknown)}", f"known: {', '.join(sorted(known - {'sampling', 'task'}))}")
    request = _evaluate.EvalRequest(task=task, sampling=sampling, **options)
    return _evaluate.evaluate(model, request, _progress.resolve(progress))


def list_models() -> list[dict[str, Any]]:
    """Every registered model as a dict (name, kind, dataset, size, ...)."""
    return _models.list_models()


def show_model(name: str) -> dict[str, Any]:
    """A model's summary, config and files."""
    return _models.show(name)


def remove_model(name: str) -> None:
    """Delete a user model from the registry."""
    _models.remove(name)


def import_model(source: str | Path, name: Optional[str] = None, force: bool = False) -> str:
    """Add a model folder or .zip to the registry; returns its name."""
    return _models.import_model(source, name, force).name


def export_model(name: str, destination: str | Path) -> Path:
    """Write a model into a .zip; returns its path."""
    return _models.export(name, destination)


def default_model() -> Optional[str]:
    """The registry's default model."""
    return _models.default_model()


def set_default_model(name: str) -> None:
    """Make `name` the default model."""
    _models.set_default(name)

