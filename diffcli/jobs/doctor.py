"""The job behind `diffcli doctor`: what the tool sees (versions, devices, the registry, the data, the
extras) as plain JSON-ready data, and what to do about each gap. Never fails on a machine without CUDA,
torchvision or the optional extras: each missing piece is a value in the report, not an error.

The data search is the datasets' own (`data.mnist.locate`), so doctor lists exactly the folders
`diffcli train` would read.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from diffcli import __version__

EXTRAS = {
    "hub": ("diffusers", "transformers", "sentencepiece", "accelerate", "protobuf"),
    "clip": ("open_clip_torch",),
}
IDX_DATASETS = ("mnist", "fashion-mnist")  # the datasets read from files in a data folder


def collect() -> dict[str, Any]:
    """Everything doctor reports, as plain JSON-ready data, with `advice`: what to do about each gap."""
    from diffcli.device import describe_devices
    from diffcli.models.hub import package_version

    report: dict[str, Any] = {
        "versions": {
            "diffcli": __version__,
            "python": platform.python_version(),
            "torch": package_version("torch"),
            "torchvision": package_version("torchvision"),
        },
        "platform": f"{platform.system()} {platform.machine()}",
        "devices": describe_devices(),
        "registry": _registry(),
        "data": _data_dirs(),
        "extras": {name: {pkg: package_version(pkg) for pkg in pkgs} for name, pkgs in EXTRAS.items()},
        "huggingface": _huggingface(),
    }
    report["advice"] = advice(report)
    return report


def _registry() -> dict[str, Any]:
    from diffcli.errors import DiffcliError
    from diffcli.models.registry import Registry

    registry = Registry()
    try:
        entries = registry.entries()
    except DiffcliError as exc:  # the registry folder itself is unusable: say so, once
        return {
            "path": str(registry.root),
            "exists": False,
            "default": None,
            "models": [],
            "cache": str(registry.cache_dir),
            "error": exc.one_line(),
        }
    models = []
    for entry in entries:
        try:
            config = entry.config()
            row = {"name": entry.name, "kind": f"{config.kind}/{config.cond_type}", "builtin": entry.builtin}
            if config.kind == "diffusers":
                from diffcli.models.pipeline_config import source_ref

                row["source"] = source_ref(config.architecture.get("source") or {})
        except DiffcliError as exc:
            row = {"name": entry.name, "kind": "broken", "builtin": entry.builtin, "error": exc.message}
        models.append(row)
    return {
        "path": str(registry.root),
        "exists": registry.root.is_dir(),
        "default": registry.default_name(),
        "models": models,
        "cache": str(registry.cache_dir),
    }


def _data_dirs() -> list[dict[str, Any]]:
    """The data folder beside the registry and $DIFFCLI_DATA, with the datasets found in each."""
    from diffcli.home import home_data_dir

    candidates = [("default", home_data_dir())]
    env = os.environ.get("DIFFCLI_DATA")
    if env:
        candidates.append(("DIFFCLI_DATA", Path(env).expanduser()))
    return [
        {"source": label, "path": str(path), "exists": path.is_dir(), "datasets": find_datasets(path)}
        for label, path in candidates
    ]


def find_datasets(root: Path) -> dict[str, str]:
    """The datasets `train --data-dir root` would read, each with its folder (data.mnist.locate: a
    torchvision layout under root). Four IDX files in root itself are read as whichever dataset is asked
    for, so they are listed once, as "idx"."""
    from diffcli.data.mnist import locate

    found: dict[str, str] = {}
    if not root.is_dir():
        return found
    for dataset in IDX_DATASETS:
        folder = locate(dataset, root)
        if folder is None:
            continue
        if folder == root:
            found["idx"] = str(folder)
        else:
            found[dataset] = str(folder)
    return found


def _huggingface() -> dict[str, Any]:
    """Hugging Face cache settings (never credentials)."""
    info: dict[str, Any] = {
        "HF_HOME": os.environ.get("HF_HOME"),
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE"),
        "cache": None,
    }
    try:
        from huggingface_hub import constants

        info["cache"] = str(constants.HF_HUB_CACHE)
    except Exception:  # not installed, or a broken install: doctor reports what it can
        pass
    return info


def advice(report: dict[str, Any]) -> list[str]:
    """What to do about each gap."""
    tips = []
    devices = report["devices"]
    if devices.get("error"):
        tips.append(f"{devices['error']}: reinstall torch for this machine (see pytorch.org), or run with --device cpu")
    if not devices["cuda"] and not devices["mps"]:
        tips.append(
            "no GPU visible to torch: everything runs on the CPU (fine for the MNIST models; "
            "DeepFloyd IF needs a CUDA GPU, see docs/deepfloyd-if.md)"
        )
    if report["versions"]["torchvision"] is None:
        tips.append("torchvision is missing: `pip install torchvision` (diffcli depends on it)")
    if report["registry"].get("error"):
        pass  # already on the registry line, with what to do
    elif not report["registry"]["models"]:
        tips.append("no models registered: `diffcli train` makes one, `diffcli models import` adds one")
    if not any(d["datasets"] for d in report["data"]):
        tips.append(
            "no MNIST / Fashion-MNIST files found in the data dirs: put the IDX files under $DIFFCLI_DATA "
            "(or pass --data-dir to `diffcli train`)"
        )
    hub = report["extras"]["hub"]
    missing = [p for p in ("diffusers", "transformers", "sentencepiece", "accelerate") if hub.get(p) is None]
    if missing:
        tips.append(
            f"hub extra incomplete (missing {', '.join(missing)}): `pip install 'diffcli[hub]'` "
            "for DeepFloyd IF and other text-to-image models"
        )
    elif hub.get("protobuf") is None:
        tips.append(
            "protobuf is missing: transformers needs it to read T5 tokenizers shipped as spiece.model "
            "(`pip install protobuf`)"
        )
    if all(v is None for v in report["extras"]["clip"].values()):
        tips.append("clip extra not installed: `pip install 'diffcli[clip]'` for optional CLIP scores")
    if any(m["kind"].startswith("diffusers") for m in report["registry"]["models"]) and not devices["cuda"]:
        tips.append("a text-to-image model is registered but there is no CUDA GPU: it will run on the CPU, very slowly")
    return tips
