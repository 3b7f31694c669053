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
from typing import Any

from diffcli import _API, checks, params
from diffcli.errors import UsageError
from diffcli.jobs import anagram as _anagram
from diffcli.jobs import evaluate as _evaluate
from diffcli.jobs import generating as _generating
from diffcli.jobs import hybrid as _hybrid
from diffcli.jobs import models as _models
from diffcli.jobs import sample as _sample
from diffcli.jobs.distill import DistillRequest
from diffcli.jobs.eval_request import EvalRequest
from diffcli.jobs.requests import (
    AnagramRequest,
    DenoiseRequest,
    HybridRequest,
    ModelChoice,
    NoiseRequest,
    SampleRequest,
)
from diffcli.jobs.results import ImageSet
from diffcli.tui import views as _progress

__all__ = list(_API)  # the names diffcli/__init__.py offers, listed there once


class Model:
    """A registry model loaded for generating: `sample`, `anagram`, `hybrid`, `denoise`, `evaluate`."""

    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded

    def __repr__(self) -> str:
        labels = f", labels {self.loaded.describe_labels()}" if self.loaded.cond_type == "class" else ""
        return (
            f"<diffcli.Model {self.name!r}: {self.loaded.config.kind}, "
            f"{self.loaded.cond_type}-conditioned, {self.size}x{self.size}{labels}>"
        )

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

    def sample(self, classes: Any = None, n: int = 1, *, progress: Any = True, **options: Any) -> ImageSet:
        """Generate `n` images per class or prompt (one class, a list, or None for every class), as `diffcli
        sample` does; `summary["kept"]` says what best_of kept. The keywords, with their defaults, are the
        command's options (docs/python.md); `help(diffcli.Model.sample)` lists them."""
        request = params.build_flat(SampleRequest, {"classes": classes, "n": n, **options})
        return _sample.sample(self.loaded, request, _progress.resolve(progress))

    def anagram(self, first: Any, second: Any, *, progress: Any = True, **options: Any) -> ImageSet:
        """Visual anagrams, as `diffcli anagram` makes them: images that read as `first`, and as `second`
        after `view`; the set holds each image followed by its view. Sampling left out takes the illusion
        defaults (docs/illusions.md)."""
        request = params.build_flat(AnagramRequest, {"first": first, "second": second, **options})
        return _anagram.anagram(self.loaded, request, _progress.resolve(progress))

    def hybrid(self, far: Any, near: Any, *, progress: Any = True, **options: Any) -> ImageSet:
        """Hybrid images, as `diffcli hybrid` makes them: `far` in the low frequencies, `near` in the high
        ones; `explain` lays each out as hybrid | low-pass | high-pass. Sampling, filter and shares left
        out take the illusion defaults (docs/illusions.md)."""
        request = params.build_flat(HybridRequest, {"far": far, "near": near, **options})
        return _hybrid.hybrid(self.loaded, request, _progress.resolve(progress))

    def denoise(self, image: Any, **options: Any) -> ImageSet:
        """`diffcli.denoise` with this model (see it for the options)."""
        return denoise(image, model=self.loaded, **options)

    def evaluate(self, task: str = "sample", **options: Any) -> dict[str, Any]:
        """`diffcli.evaluate` of this model (see it for the options)."""
        return evaluate(self.loaded, task=task, **options)


_PROGRESS = inspect.Parameter("progress", inspect.Parameter.KEYWORD_ONLY, default=True)
Model.sample.__signature__ = params.signature(SampleRequest, first=("self", "classes", "n"), extra=[_PROGRESS])
Model.anagram.__signature__ = params.signature(AnagramRequest, first=("self", "first", "second"), extra=[_PROGRESS])
Model.hybrid.__signature__ = params.signature(HybridRequest, first=("self", "far", "near"), extra=[_PROGRESS])


def _model(model: Any) -> Any:
    """`model` as the jobs take it: a loaded model, a registry name, or None (the default); anything else
    is a one-line UsageError rather than an AttributeError deep in a job."""
    if isinstance(model, Model):
        return model.loaded
    if model is None or isinstance(model, str):
        return model
    from diffcli.models.backends.base import LoadedModel

    if not isinstance(model, LoadedModel):
        raise UsageError(f"`model` must be a model name, a diffcli.Model or None (the default), got {model!r:.60}")
    return model


def load(
    name: str | None = None, device: str = "auto", weights: str = "ema", offload: str = "auto", upscale: bool = False
) -> Model:
    """A generating model from the registry by name (None: the registry's default, the embedded MNIST
    model on a fresh install). device: auto, cpu, cuda or mps. weights: ema or raw (models trained with
    EMA). offload / upscale: text-to-image models only."""
    if name is not None:
        checks.text("name", name)
    choice = params.check(ModelChoice(model=name, device=device, weights=weights, offload=offload))
    upscale = checks.flag("upscale", upscale)
    return Model(_generating.load_generator(choice.model, choice.device, choice.weights, choice.offload, upscale))


def noise(image: Any, t: Any, **options: Any) -> ImageSet:
    """The forward process, as `diffcli noise` runs it: `image` (a path, PIL image or array) noised to each
    timestep in `t` (the keywords are the command's options)."""
    from diffcli.jobs.noise import noise as noise_job

    return noise_job(params.build_flat(NoiseRequest, {"image": image, "t": t, **options}))


def denoise(
    image: Any, method: str = "iterative", *, model: Any = None, device: str = "auto", **options: Any
) -> ImageSet:
    """Blur, one-step or iterative denoising of `image` noised to `t` (or already noisy), as `diffcli
    denoise` runs it; `compare` makes the course's panel. The set's `summary["scores"]` has MSE and PSNR
    against the original. model: a name, a loaded Model, or None (the default; blur needs none)."""
    from diffcli.jobs.denoise import denoise as denoise_job

    model = _model(model)
    request = params.build_flat(DenoiseRequest, {"image": image, "method": method, **options})
    return denoise_job(request, model, params.check(ModelChoice(device=device)).device)


def train(
    name: str | None = None,
    *,
    preset: str = "default",
    resume: bool = False,
    force: bool = False,
    set_default: bool = False,
    download: bool = False,
    device: str = "auto",
    progress: Any = True,
    **recipe: Any,
) -> Any:
    """Train a model into the registry and return its TrainResult (losses, steps, time).

    recipe: dataset (mnist, fashion-mnist, glyphs, folder:PATH), data_dir, epochs, batch_size, lr, ...
    (the options of `diffcli train`, with underscores). download: fetch a missing MNIST / Fashion-MNIST
    into the `data_dir` given (a named folder is otherwise only read). Interrupting (Ctrl-C /
    KeyboardInterrupt) saves a checkpoint and raises InterruptedRun; `resume=True` continues it exactly."""
    from diffcli.jobs.train import TrainRequest
    from diffcli.jobs.train import train as train_job

    if name is not None:
        checks.text("name", name)
    if "compile_model" in recipe:
        recipe["compile"] = recipe.pop("compile_model")
    command = (
        "diffcli.train("
        + ", ".join([*([repr(name)] if name else []), *(f"{k}={v!r}" for k, v in recipe.items())])
        + ")"
    )
    request = TrainRequest(
        name=name,
        preset=preset,
        recipe=recipe,
        resume=resume,
        force=force,
        set_default=set_default,
        device=device,
        command=command,
        download=download,
    )
    return train_job(request, _progress.resolve(progress))


def distill(teacher: Any = None, *, device: str = "auto", progress: Any = True, **options: Any) -> Any:
    """Distil a registered model (`teacher`, a name; None: the default) into a few-step student and return
    its TrainResult. options: the options of `diffcli distill` (DistillRequest declares them: steps, name,
    method, ...). Interrupting saves a checkpoint and raises InterruptedRun; `resume=True` with the
    student's `name` continues it exactly."""
    from diffcli.jobs.distill import distill as distill_job

    request = params.build_flat(DistillRequest, {"teacher": teacher, **options}, what="distillation option")
    arguments = ", ".join([*([repr(teacher)] if teacher else []), *(f"{k}={v!r}" for k, v in options.items())])
    request.command = f"diffcli.distill({arguments})"
    request.device = params.check(ModelChoice(device=device)).device
    return distill_job(request, _progress.resolve(progress))


def evaluate(
    model: Any = None, task: str = "sample", *, device: str = "auto", progress: Any = True, **options: Any
) -> dict[str, Any]:
    """Score a model's samples (task sample: per-class accuracy, FID beside its floor; anagram / hybrid:
    success over class pairs; chain: when samples become recognisable). Returns the report dict.

    options: the options of `diffcli eval` (EvalRequest declares them)."""
    request = params.build_flat(EvalRequest, {"task": task, **options}, what="evaluation option")
    model = _model(model)
    if model is None or isinstance(model, str):
        model = _generating.load_generator(model, params.check(ModelChoice(device=device)).device)
    return _evaluate.evaluate(model, request, _progress.resolve(progress))


def list_models() -> list[dict[str, Any]]:
    """Every registered model as a dict (name, kind, dataset, size, ...)."""
    return _models.list_models()


def show_model(name: str) -> dict[str, Any]:
    """A model's summary, config and files."""
    return _models.show(checks.text("name", name))


def remove_model(name: str) -> None:
    """Delete a user model from the registry."""
    _models.remove(checks.text("name", name))  # never None: that would be the default model


def import_model(source: str | Path, name: str | None = None, force: bool = False) -> str:
    """Add a model folder or .zip to the registry; returns its name."""
    name = None if name is None else checks.text("name", name)
    return _models.import_model(checks.path("source", source), name, checks.flag("force", force)).name


def export_model(name: str, destination: str | Path) -> Path:
    """Write a model into a .zip; returns its path."""
    return _models.export(checks.text("name", name), checks.path("destination", destination))


def default_model() -> str | None:
    """The registry's default model."""
    return _models.default_model()


def set_default_model(name: str) -> None:
    """Make `name` the default model."""
    _models.set_default(checks.text("name", name))


_MODEL = [
    inspect.Parameter("model", inspect.Parameter.KEYWORD_ONLY, default=None),
    inspect.Parameter("device", inspect.Parameter.KEYWORD_ONLY, default="auto"),
]
noise.__signature__ = params.signature(NoiseRequest, first=("image", "t"))  # type: ignore[attr-defined]
denoise.__signature__ = params.signature(DenoiseRequest, first=("image", "method"), extra=_MODEL)  # type: ignore[attr-defined]
distill.__signature__ = params.signature(  # type: ignore[attr-defined]
    DistillRequest, first=("teacher",), extra=[_MODEL[1], _PROGRESS]
)  # type: ignore[attr-defined]
evaluate.__signature__ = inspect.Signature(
    [  # type: ignore[attr-defined]
        inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
        *params.signature(EvalRequest, first=("task",)).parameters.values(),
        *_MODEL[1:],
        inspect.Parameter("progress", inspect.Parameter.KEYWORD_ONLY, default=True),
    ]
)
