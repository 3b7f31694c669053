"""`diffcli models add`: register a diffusers text-to-image pipeline by reference (config.json only).

--path validates the folder now; --hub records the repo id without downloading (the first load fetches
the files through diffusers, with one-line errors for the licence and the network). Values that need the
pipeline's files (image size, schedule) come from the folder, from a copy already in the Hugging Face
cache, or from the known DeepFloyd IF repos; otherwise IF's are assumed and config.json is corrected on
the first load.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Optional

from diffcli import console
from diffcli.errors import DiffcliError, UsageError
from diffcli.io.atomic import atomic_write_text
from diffcli.models import pipeline_config as pc
from diffcli.models.hub import HUB_EXTRA_HINT, Source, package_version
from diffcli.models.registry import ModelEntry, Registry, validate_name


def register(registry: Registry, name: str, hub: Optional[str], path: Optional[Path], upscaler: Optional[str], force: bool = False) -> ModelEntry:
    """Write models/NAME/config.json for a pipeline given by --hub or --path (and --upscaler)."""
    validate_name(name)
    if (hub is None) == (path is None):
        raise UsageError("give exactly one of --hub REPO_ID or --path DIR")
    target = registry.user_entry(name)
    if target.config_path.exists() and not force:
        raise DiffcliError(f"a model named {name!r} already exists", "pass --force to replace it, or choose another name")

    if path is not None:
        source = pc.parse_source(str(path), hub=False)
        index = pc.validate_folder(Path(source["path"]))
        scheduler = pc.read_json(Path(source["path"]) / pc.SCHEDULER_CONFIG, str(path))
        unet: Optional[dict[str, Any]] = pc.read_json(Path(source["path"]) / pc.UNET_CONFIG, str(path))
        resolved = True
    else:
        source = pc.parse_source(hub, hub=True)
        index, scheduler, unet, resolved = _from_hub_cache(source["hub"])
    pipeline = index.get("_class_name") or "IFPipeline"
    if pipeline != "IFPipeline":
        console.warn(f"{pc.source_ref(source)} is a {pipeline}; diffcli is tested with DeepFloyd IF (IFPipeline) and runs only its UNet, text encoder and scheduler settings")
    upscaler_source = _upscaler_source(upscaler) if upscaler else None
    config, notes = pc.build_config(name, source, upscaler_source, scheduler, unet, pipeline, resolved)
    for note in notes:
        console.warn(note)
    if not resolved:
        console.notice(f"{source['hub']} is not downloaded yet: it is fetched into the Hugging Face cache on first use (the licence must be accepted first for DeepFloyd IF)")
    missing = [p for p in ("diffusers", "transformers", "sentencepiece") if package_version(p) is None]
    if missing:
        console.warn(f"running this model needs {', '.join(missing)}: {HUB_EXTRA_HINT}")

    if target.path.exists() and force:
        shutil.rmtree(target.path)
    target.path.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target.config_path, config.to_json())
    return target


def _from_hub_cache(repo_id: str) -> tuple[dict[str, Any], dict[str, Any], Optional[dict[str, Any]], bool]:
    """model_index, scheduler and unet configs from the local HF cache when present (never downloads);
    otherwise IF's, checked against the known repos."""
    known = pc.KNOWN_REPOS.get(repo_id)
    if known is not None and known.stage != 1:
        raise DiffcliError(f"{repo_id} is a stage-II upscaler, not a text-to-image model", f"use it as --upscaler {repo_id} with a stage-I model such as DeepFloyd/IF-I-XL-v1.0")
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
    """--upscaler: an existing folder (validated now) or a repo id (recorded)."""
    folder = Path(value).expanduser()
    if folder.exists():
        source = pc.parse_source(value, hub=False)
        pc.validate_folder(Path(source["path"]), upscaler=True)
        return source
    source = pc.parse_source(value, hub=True)
    known = pc.KNOWN_REPOS.get(value)
    if known is not None and known.stage != 2:
        raise DiffcliError(f"{value} is a stage-I model, not an upscaler", "pass a stage-II repo, e.g. --upscaler DeepFloyd/IF-II-L-v1.0")
    return source
