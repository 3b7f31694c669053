"""The registry jobs behind `diffcli models`: list, show, remove, import, export, default, add.

Each returns plain data (dicts, paths, entries); the CLI draws tables and asks for confirmation.
Registering a diffusers pipeline (`add_pipeline`) records it by reference: config.json only, the weights
stay in the Hugging Face cache or the user's folder; values that need the pipeline's files (image size,
schedule) come from the folder, from a copy already in the cache, or from the known DeepFloyd IF repos
(otherwise IF's are assumed and config.json is corrected on the first load).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffcli import console
from diffcli.errors import DiffcliError, UsageError
from diffcli.io.atomic import atomic_write_text
from diffcli.models import pipeline_config as pc
from diffcli.models.hub import HUB_EXTRA_HINT, Source, package_version
from diffcli.models.registry import CONFIG, ModelEntry, Registry, os_failure, validate_name
from diffcli.models.transaction import Staging


def summary(entry: ModelEntry, default: str | None) -> dict[str, Any]:
    """One row of the model list: name, kind, dataset, size, age, ... (kind "broken", with the error and
    what to do about it, when its config cannot be read)."""
    row: dict[str, Any] = {
        "name": entry.name,
        "source": "builtin" if entry.builtin else "user",
        "default": entry.name == default,
        "path": str(entry.path),
        "size_bytes": entry.size_bytes(),
        "modified": entry.modified(),
    }
    try:
        config = entry.config()
    except DiffcliError as exc:
        row.update(
            kind="broken",
            conditioning=None,
            dataset=None,
            error=exc.message,
            hint=exc.hint,
            status=f"broken: {_short(exc.message)}",
        )
        return row
    row.update(
        status=status_of(config),
        kind=config.kind,
        conditioning=config.cond_type,
        objective=config.objective,
        dataset=config.dataset_name,
        image=config.image,
        labels=config.labels,
        description=config.description,
    )
    return row


def status_of(config) -> str:
    """complete, training (step N of M), interrupted at step N of M, diverged at step N; "ready" for
    models not trained here (imported, text-to-image pipelines, classifiers)."""
    training = config.training or {}
    state = training.get("status")
    steps, total = training.get("steps"), training.get("total_steps")
    where = f"step {steps}" + (f" of {total}" if total else "") if steps is not None else ""
    if state == "complete":
        return "complete"
    if state == "interrupted":
        return f"interrupted at {where}" if where else "interrupted"
    if state == "training":
        return f"training ({where})" if where else "training"
    if state == "diverged":
        return f"diverged at {where}" if where else "diverged"
    return "ready"


def _short(text: str, limit: int = 80) -> str:
    text = text.split(": ", 1)[-1] if text.startswith("model ") else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def list_models() -> list[dict[str, Any]]:
    """Every registered model (built-in and user), as `summary` rows."""
    registry = Registry()
    default = registry.default_name()
    return [summary(e, default) for e in registry.entries()]


def show(name: str) -> dict[str, Any]:
    """A model's summary, its whole config and its files (name -> bytes)."""
    registry = Registry()
    entry = registry.get(name)
    config = entry.config()
    files = {p.name: p.stat().st_size for p in sorted(entry.path.iterdir()) if p.is_file()}
    return {**summary(entry, registry.default_name()), "config": config.to_dict(), "files": files}


def default_model() -> str | None:
    """The registry's default model name (None when there is none)."""
    return Registry().default_name()


def set_default(name: str) -> None:
    """Make `name` the default model of every command."""
    Registry().set_default(name)


def model_path(name: str | None = None) -> Path:
    """The folder of a model, or of the registry itself."""
    registry = Registry()
    return registry.get(name).path if name else registry.root


def remove(name: str) -> ModelEntry:
    """Delete a user model (built-in models cannot be removed)."""
    registry = Registry()
    entry = registry.get(name)
    if entry.builtin:
        raise DiffcliError(f"{name!r} is a built-in model and cannot be removed")
    return registry.remove(name)


def import_model(source: Path | str, name: str | None = None, force: bool = False) -> ModelEntry:
    """Add a model folder or .zip to the registry, after checking that each of its weights files (the
    EMA and, when present, the raw ones) loads: right shapes and types, finite values."""
    from diffcli.models.backends import load_model

    def validate(entry: ModelEntry) -> None:
        for which in ("ema", "raw"):
            if which == "ema" or entry.weights_path(which).exists():
                load_model(entry=entry, device="cpu", weights=which)

    return Registry().import_model(Path(source), name, force, validate)


def export(name: str, destination: Path | str) -> Path:
    """Write a model's config and weights into a .zip that `import_model` reads."""
    return Registry().export(name, Path(destination))


def add_pipeline(
    name: str, hub: str | None = None, path: Path | None = None, upscaler: str | None = None, force: bool = False
) -> ModelEntry:
    """Register a pixel-space text-to-image pipeline (DeepFloyd IF stage I) by reference: writes
    models/NAME/config.json for a pipeline given by a hub repo id or a local folder (and its stage-II
    upscaler). Nothing is downloaded now."""
    registry = Registry()
    validate_name(name)
    if (hub is None) == (path is None):
        raise UsageError("give exactly one of `hub` (a repo id) or `path` (a folder)")
    target = registry.user_entry(name)
    if target.config_path.exists() and not force:
        raise DiffcliError(f"a model named {name!r} already exists", "replace it with `force`, or choose another name")

    if path is not None:
        source = pc.parse_source(str(path), hub=False)
        index = pc.validate_folder(Path(source["path"]))
        scheduler = pc.read_json(Path(source["path"]) / pc.SCHEDULER_CONFIG, str(path))
        unet: dict[str, Any] | None = pc.read_json(Path(source["path"]) / pc.UNET_CONFIG, str(path))
        resolved = True
    else:
        source = pc.parse_source(hub, hub=True)
        index, scheduler, unet, resolved = _from_hub_cache(source["hub"])
    pipeline = index.get("_class_name") or "IFPipeline"
    if pipeline != "IFPipeline":
        console.warn(
            f"{pc.source_ref(source)} is a {pipeline}; diffcli is tested with DeepFloyd IF (IFPipeline) "
            "and runs only its UNet, text encoder and scheduler settings"
        )
    upscaler_source = _upscaler_source(upscaler) if upscaler else None
    config, notes = pc.build_config(name, source, upscaler_source, scheduler, unet, pipeline, resolved)
    for note in notes:
        console.warn(note)
    if not resolved:
        console.notice(
            f"{source['hub']} is not downloaded yet: it is fetched into the Hugging Face cache on first use "
            "(the licence must be accepted first for DeepFloyd IF)"
        )
    missing = [p for p in ("diffusers", "transformers", "sentencepiece") if package_version(p) is None]
    if missing:
        console.warn(f"running this model needs {', '.join(missing)}: {HUB_EXTRA_HINT}")

    try:
        with registry.transaction(name, "registering it") as txn, Staging(registry.models_dir) as staged:
            atomic_write_text(staged / CONFIG, config.to_json())
            txn.put(staged, force, "replace it with `force`, or choose another name")
    except OSError as exc:
        raise os_failure(f"cannot register {name!r}", exc) from None
    return target


def _from_hub_cache(repo_id: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None, bool]:
    """model_index, scheduler and unet configs from the local HF cache when present (never downloads);
    otherwise IF's, checked against the known repos."""
    known = pc.KNOWN_REPOS.get(repo_id)
    if known is not None and known.stage != 1:
        raise DiffcliError(
            f"{repo_id} is a stage-II upscaler, not a text-to-image model",
            "use it as the `upscaler` of a stage-I model such as DeepFloyd/IF-I-XL-v1.0",
        )
    source = Source({"hub": repo_id}, repo_id)
    files = [source.cached_file(f) for f in (pc.MODEL_INDEX, pc.SCHEDULER_CONFIG, pc.UNET_CONFIG)]
    if all(f is not None for f in files):
        index = pc.read_json(files[0], repo_id)
        pc.check_pixel_space(index, repo_id)
        unet = pc.read_json(files[2], repo_id)
        pc.check_unet(unet, repo_id)
        return index, pc.read_json(files[1], repo_id), unet, True
    if files[0] is not None:
        pc.check_pixel_space(pc.read_json(files[0], repo_id), repo_id)
    return {"_class_name": "IFPipeline"}, dict(pc.IF_SCHEDULER), None, False


def _upscaler_source(value: str) -> dict[str, str]:
    """The upscaler: an existing folder (validated now) or a repo id (recorded)."""
    folder = Path(value).expanduser()
    if folder.exists():
        source = pc.parse_source(value, hub=False)
        pc.validate_folder(Path(source["path"]), upscaler=True)
        return source
    source = pc.parse_source(value, hub=True)
    known = pc.KNOWN_REPOS.get(value)
    if known is not None and known.stage != 2:
        raise DiffcliError(
            f"{value} is a stage-I model, not an upscaler",
            "give a stage-II repo as the `upscaler`, e.g. DeepFloyd/IF-II-L-v1.0",
        )
    return source
