"""Package a trained registry model as a built-in one: config.json plus float16 inference weights.

Usage: python scripts/package_builtin.py SOURCE_FOLDER DEST_FOLDER [--guidance G] [--guidance-interval LO:HI]

The built-in copy keeps what `sample` and `eval` need (config, EMA weights), drops the raw weights and
the training folder (checkpoint, logs), and halves the weights to float16 so the package stays small;
networks are always loaded back as float32. The destination is replaced by renames (the old folder
stays in place until the new one is complete).

--guidance / --guidance-interval record the sampling defaults measured for the shipped model (its
config's `sampling` block; the interval goes with that scale, see `generation.resolve_guidance`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from diffcli.models.weights import read_weights, save_weights


def _scrub(value, path: str, alias: str):
    """Replace the build machine's data path by an alias in every string of the config."""
    if isinstance(value, str):
        return value.replace(path, alias)
    if isinstance(value, list):
        return [_scrub(v, path, alias) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, path, alias) for k, v in value.items()}
    return value


def _swap_in(staged: Path, target: Path, aside: Path) -> None:
    """Put the folder `staged` at `target` by renames alone: the old folder goes aside first and comes back
    if the second rename fails, so `target` is never left empty (the package folder is no registry)."""
    moved = target.exists()
    if moved:
        target.rename(aside)
    try:
        staged.rename(target)
    except OSError:
        if moved and not target.exists():
            aside.rename(target)
        raise


def package(
    source: Path, destination: Path, guidance: float | None = None, interval: tuple[float, float] | None = None
) -> None:
    if not (source / "config.json").is_file():
        raise SystemExit(f"package_builtin: {source} holds no config.json (give a registry model's folder)")
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    if config.get("training", {}).get("status") not in (None, "complete"):
        raise SystemExit(f"{source} has not finished training (status {config['training']['status']!r})")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=destination.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the package folder is read by everyone
    try:
        state = read_weights(source / "model.safetensors", f"model {source.name!r}")
        save_weights(
            state,
            staging / "model.safetensors",
            dtype=torch.float16,
            metadata={"dtype": "float16", "source": "diffcli train"},
        )
        config["name"] = destination.name
        data_dir = config.get("training", {}).get("settings", {}).get("data_dir")
        if data_dir:  # provenance without this machine's paths: the data folder reads as $DATA
            config = _scrub(config, str(Path(data_dir).resolve()), "$DATA")
            config = _scrub(config, data_dir, "$DATA")
        config.setdefault("training", {})["shipped_dtype"] = "float16"
        sampling = config.setdefault("sampling", {})
        if guidance is not None:
            sampling["guidance"] = guidance
        if interval is not None:
            sampling["guidance_interval"] = list(interval)
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        aside = staging.with_name(staging.name.replace(".staging-", ".replaced-"))
        _swap_in(staging, destination, aside)
        shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone once renamed; what a failure left otherwise
    size = sum(p.stat().st_size for p in destination.iterdir())
    print(f"packaged {source} -> {destination} ({size / 1e6:.2f} MB)", file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument("source", type=Path)
    parser.add_argument("destination", type=Path)
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--guidance-interval", default=None)
    args = parser.parse_args()
    from diffcli.checks import parse_guidance_interval
    from diffcli.errors import DiffcliError

    try:
        package(args.source, args.destination, args.guidance, parse_guidance_interval(args.guidance_interval))
    except DiffcliError as exc:  # a bad interval, damaged weights: one line, as the CLI says it
        raise SystemExit(f"package_builtin: {exc.one_line()}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SystemExit(f"package_builtin: {args.source / 'config.json'} is not valid JSON ({exc})") from None
