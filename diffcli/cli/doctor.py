"""`diffcli doctor`: one screen of what the tool sees (versions, devices, registry, data, extras), and what
to do about each gap. Never fails on a machine without CUDA, torchvision or the optional extras."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any, Optional

from diffcli import __version__, console
from diffcli.cli import common, options

EXTRAS = {
    "hub": ("diffusers", "transformers", "sentencepiece", "accelerate", "protobuf"),
    "clip": ("open_clip_torch",),
}
DATASETS = {
    "mnist": ("MNIST", "mnist"),
    "fashion-mnist": ("FashionMNIST", "fashion-mnist", "fashion_mnist", "Fashion-MNIST"),
}
IDX_FILE = "train-images-idx3-ubyte"


def doctor(json_output: options.Json = False) -> None:
    """Show versions, devices and free memory, the registry and its models, the data found, the
    optional extras installed, and what to do about each gap."""
    common.start(False, json_output)
    report = collect()
    if json_output:
        console.emit_json(report)
        return
    sys.stdout.write(render(report))
    sys.stdout.flush()


def collect() -> dict[str, Any]:
    """Everything doctor reports, as plain JSON-ready data."""
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
        return {"path": str(registry.root), "exists": False, "default": None, "models": [], "cache": str(registry.cache_dir), "error": exc.one_line()}
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
    return {"path": str(registry.root), "exists": registry.root.is_dir(), "default": registry.default_name(), "models": models, "cache": str(registry.cache_dir)}


def _data_dirs() -> list[dict[str, Any]]:
    """The default data dir and $DIFFCLI_DATA, with the datasets found in each."""
    from diffcli.models.registry import Registry

    registry = Registry()
    candidates = [("default", registry.root / "data")]
    env = os.environ.get("DIFFCLI_DATA")
    if env:
        candidates.append(("DIFFCLI_DATA", Path(env).expanduser()))
    return [{"source": label, "path": str(path), "exists": path.is_dir(), "datasets": find_datasets(path)} for label, path in candidates]


def find_datasets(root: Path) -> dict[str, str]:
    """MNIST / Fashion-MNIST IDX files under `root` (torchvision layout NAME/raw, NAME/, or root itself)."""
    found: dict[str, str] = {}
    if not root.is_dir():
        return found
    for dataset, names in DATASETS.items():
        for name in names:
            for folder in (root / name / "raw", root / name):
                if _has_idx(folder):
                    found.setdefault(dataset, str(folder))
    if not found and _has_idx(root):
        found["idx"] = str(root)
    return found


def _has_idx(folder: Path) -> bool:
    return (folder / IDX_FILE).is_file() or (folder / f"{IDX_FILE}.gz").is_file()


def _huggingface() -> dict[str, Any]:
    """Hugging Face cache settings (never credentials)."""
    info: dict[str, Any] = {"HF_HOME": os.environ.get("HF_HOME"), "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE"), "cache": None}
    try:
        from huggingface_hub import constants

        info["cache"] = str(constants.HF_HUB_CACHE)
    except Exception:
        pass
    return info


def advice(report: dict[str, Any]) -> list[str]:
    """What to do about each gap."""
    tips = []
    devices = report["devices"]
    if devices.get("error"):
        tips.append(f"{devices['error']}: reinstall torch for this machine (see pytorch.org), or run with --device cpu")
    if not devices["cuda"] and not devices["mps"]:
        tips.append("no GPU visible to torch: everything runs on the CPU (fine for the MNIST models; DeepFloyd IF needs a CUDA GPU, see docs/deepfloyd-if.md)")
    if report["versions"]["torchvision"] is None:
        tips.append("torchvision is missing: `pip install torchvision` (diffcli depends on it)")
    if report["registry"].get("error"):
        pass  # already on the registry line, with what to do
    elif not report["registry"]["models"]:
        tips.append("no models registered: `diffcli train` makes one, `diffcli models import` adds one")
    if not any(d["datasets"] for d in report["data"]):
        tips.append("no MNIST / Fashion-MNIST files found in the data dirs: put the IDX files under $DIFFCLI_DATA (or pass --data-dir to `diffcli train`)")
    hub = report["extras"]["hub"]
    missing = [p for p in ("diffusers", "transformers", "sentencepiece", "accelerate") if hub.get(p) is None]
    if missing:
        tips.append(f"hub extra incomplete (missing {', '.join(missing)}): `pip install 'diffcli[hub]'` for DeepFloyd IF and other text-to-image models")
    elif hub.get("protobuf") is None:
        tips.append("protobuf is missing: transformers needs it to read T5 tokenizers shipped as spiece.model (`pip install protobuf`)")
    if all(v is None for v in report["extras"]["clip"].values()):
        tips.append("clip extra not installed: `pip install 'diffcli[clip]'` for optional CLIP scores")
    if any(m["kind"].startswith("diffusers") for m in report["registry"]["models"]) and not devices["cuda"]:
        tips.append("a text-to-image model is registered but there is no CUDA GPU: it will run on the CPU, very slowly")
    return tips


def render(report: dict[str, Any]) -> str:
    """The human-readable screen."""
    v = report["versions"]
    lines = [f"diffcli {v['diffcli']}  python {v['python']}  torch {v['torch'] or 'MISSING'}  torchvision {v['torchvision'] or 'MISSING'}  ({report['platform']})"]
    d = report["devices"]
    ram = f", {d['ram_gib']} GiB RAM" if d["ram_gib"] else ""
    lines.append(f"devices     cpu ({d['cpu_cores']} cores{ram})" + (", mps" if d["mps"] else ""))
    for gpu in d["cuda"]:
        lines.append(f"            cuda:{gpu['index']} {gpu['name']}: {gpu['free_gib']} of {gpu['total_gib']} GiB free")
    if not d["cuda"]:
        lines.append(f"            no CUDA GPU (torch built for CUDA {d['torch_cuda']})" if d["torch_cuda"] else "            no CUDA GPU (CPU-only torch)")
    r = report["registry"]
    if r.get("error"):
        lines.append(f"registry    {r['error']}")
    else:
        lines.append(f"registry    {r['path']}" + ("" if r["exists"] else " (not created yet)"))
    for m in r["models"]:
        mark = "*" if m["name"] == r["default"] else " "
        extra = f"  {m['source']}" if m.get("source") else (f"  {m['error']}" if m.get("error") else "")
        lines.append(f"          {mark} {m['name']}  {m['kind']}{'  (built-in)' if m['builtin'] else ''}{extra}")
    for data in report["data"]:
        found = ", ".join(f"{k} ({p})" for k, p in data["datasets"].items()) or ("nothing found" if data["exists"] else "missing")
        lines.append(f"data        {data['source']}: {data['path']}: {found}")
    for name, pkgs in report["extras"].items():
        lines.append(f"extra {name:<5} " + ", ".join(f"{p} {ver}" if ver else f"{p} -" for p, ver in pkgs.items()))
    hf = report["huggingface"]
    if hf["cache"]:
        lines.append(f"hf cache    {hf['cache']}" + (" (HF_HUB_OFFLINE set)" if hf["HF_HUB_OFFLINE"] not in (None, "", "0") else ""))
    if report["advice"]:
        lines.append("to do")
        lines.extend(f"  - {tip}" for tip in report["advice"])
    else:
        lines.append("all good")
    return "\n".join(lines) + "\n"
