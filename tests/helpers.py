"""Running the CLI in-process with controlled stdin/stdout, and building tiny registry models."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


class _Stream(io.TextIOWrapper):
    """A text stream over bytes that can pretend to be (or not be) a terminal."""

    def __init__(self, raw: io.BytesIO, tty: bool) -> None:
        super().__init__(raw, encoding="utf-8", write_through=True)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@dataclass
class Result:
    code: int
    stdout_bytes: bytes
    stderr: str

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.stdout)

    def json_lines(self):
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def run_cli(
    args: Sequence[str], stdin: bytes | None = None, stdout_tty: bool = False, stdin_tty: bool = False
) -> Result:
    """Run `diffcli ARGS` in this process; stdin None means an interactive (tty) stdin with no data."""
    from diffcli.cli.app import run

    out_raw, err_raw = io.BytesIO(), io.BytesIO()
    old = sys.stdin, sys.stdout, sys.stderr, sys.argv
    sys.stdout = _Stream(out_raw, stdout_tty)
    sys.stderr = _Stream(err_raw, False)
    sys.stdin = _Stream(io.BytesIO(stdin or b""), stdin is None or stdin_tty)
    sys.argv = ["diffcli", *args]
    try:
        code = run(list(args))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        out_bytes, err_bytes = out_raw.getvalue(), err_raw.getvalue()
        sys.stdin, sys.stdout, sys.stderr, sys.argv = old
    return Result(code, out_bytes, err_bytes.decode("utf-8", errors="replace"))


def png_array(data: bytes | Path) -> np.ndarray:
    """Decode PNG bytes or a file to a uint8 array."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with Image.open(source) as image:
        return np.asarray(image).copy()


def write_image(path: Path, size=(32, 32), mode="RGB", seed: int = 0) -> Path:
    """A random test image of the given mode."""
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        Image.fromarray(rng.integers(0, 65535, size[::-1], dtype=np.uint16)).save(path)
    elif mode == "P":
        Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).convert("P").save(path)
    else:
        channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
        array = rng.integers(0, 255, (*size[::-1], channels), dtype=np.uint8)
        Image.fromarray(array[..., 0] if channels == 1 else array, mode=mode).save(path)
    return path


def make_tiny_model(
    registry_root: Path,
    name: str = "tiny",
    cond: str = "class",
    objective: str = "diffusion",
    timesteps: int = 50,
    size: int = 16,
    channels: int = 1,
    seed: int = 0,
    architecture: dict | None = None,
    null_class: bool = True,
    labels: list[str] | None = None,
    prediction: str = "eps",
) -> Path:
    """A randomly initialised tiny UNet registered under `name` (for tests that need any model)."""
    import torch

    from diffcli.data.names import MNIST_LABELS
    from diffcli.models.config import MNIST_ALIASES, ModelConfig
    from diffcli.models.networks import build_network
    from diffcli.models.weights import save_weights

    labels = labels if labels is not None else (MNIST_LABELS if cond == "class" else [])
    config = ModelConfig(
        name=name,
        architecture=architecture
        or {"type": "unet", "width": 8, "mults": [1, 2], "blocks": 1, "attention": [], "groups": 4},
        image={"channels": channels, "size": size, "range": [0.0, 1.0] if objective == "denoise" else [-1.0, 1.0]},
        schedule={"kind": "linear", "timesteps": timesteps, "beta_start": 1e-4, "beta_end": 0.02},
        prediction="x0" if objective == "denoise" else prediction,
        objective=objective,
        conditioning={
            "type": cond,
            "labels": labels,
            "aliases": MNIST_ALIASES if cond == "class" and labels == MNIST_LABELS else {},
            "null_class": null_class and cond == "class",
        },
        sampling={"sampler": "ddpm", "steps": timesteps, "guidance": 2.0} if cond == "class" and null_class else {},
        dataset={"name": "glyphs"},
        training={"noise_sigma": 0.5} if objective == "denoise" else {},
    )
    folder = registry_root / "models" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(config.to_json())
    torch.manual_seed(seed)
    save_weights(build_network(config), folder / "model.safetensors")
    return folder


def load_script(path: Path, name: str):
    """Import a script that is not a package module (bench/, scripts/) under `name`; registered in
    sys.modules first, as dataclasses look their module up."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
