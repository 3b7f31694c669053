"""Options every command shares, as annotated types, and small helpers for reporting results.

Nothing here imports torch: `diffcli --help` and shell completion must stay fast.
"""

from __future__ import annotations

import os
import secrets
from typing import Annotated, Any, Optional

import typer

from diffcli import console
from diffcli.errors import UsageError

Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="Print nothing on stderr but warnings and errors.")]
Json = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON result on stdout.")]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Random seed (default: a fresh one, printed and recorded in the PNG). Sample i uses seed + i.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps (auto picks the GPU when there is one).", envvar="DIFFCLI_DEVICE")]
ModelName = Annotated[Optional[str], typer.Option("--model", "-m", help="Registry model name (default: the registry's default model; see `diffcli models list`).", envvar="DIFFCLI_MODEL")]
Out = Annotated[Optional[str], typer.Option("-o", "--out", help="Output PNG path, or - for stdout (default: stdout when piped, else a new file here).")]
OutDir = Annotated[Optional[str], typer.Option("--out-dir", help="Write one PNG per image into this folder; paths go to stdout.")]


def start(quiet: bool = False, json_output: bool = False) -> None:
    """Apply the output switches of the command that is starting."""
    console.configure(quiet=quiet, json_output=json_output)


def pick_seed(seed: Optional[int]) -> int:
    """The user's seed, or a fresh random one (announced, so the run can be repeated)."""
    if seed is not None:
        if seed < 0:
            raise UsageError(f"--seed must be 0 or more, got {seed}")
        return seed
    fresh = secrets.randbelow(2**31)
    console.info(f"seed {fresh} (pass --seed {fresh} to repeat this run)")
    return fresh


def positive(name: str, value: Optional[int | float], allow_zero: bool = False) -> None:
    """A UsageError unless `value` is > 0 (or >= 0)."""
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        raise UsageError(f"{name} must be {'0 or more' if allow_zero else 'at least 1'}, got {value}")


def registry():
    """The registry at $DIFFCLI_HOME (or the platform default)."""
    from diffcli.models.registry import Registry

    return Registry()


def command_line() -> str:
    """The command as typed, for the PNG metadata."""
    import sys

    return " ".join(["diffcli", *sys.argv[1:]])[:2000]


def metadata(command: str, **fields: Any) -> dict[str, Any]:
    """What goes into a PNG's text chunk: the command line plus the settings that made the image."""
    return {"command": command_line(), "subcommand": command, **{k: v for k, v in fields.items() if v is not None}}


def is_debug() -> bool:
    return console.settings.debug or os.environ.get("DIFFCLI_DEBUG", "") not in ("", "0")


# ----- options shared by the commands that generate (sample, anagram, hybrid, eval) -----
Count = Annotated[int, typer.Option("-n", help="Samples per class / prompt (one seed each: seed, seed+1, ...).")]
SamplerName = Annotated[Optional[str], typer.Option("--sampler", help="ddpm, ddim, heun or dpm++ (default: the model's).")]
Steps = Annotated[Optional[int], typer.Option("--steps", help="Reverse steps, evenly spread from T-1 (default: the model's).")]
Stride = Annotated[Optional[int], typer.Option("--stride", help="Visit every STRIDE-th timestep instead (the course's 30 at T=1000).")]
Guidance = Annotated[Optional[float], typer.Option("--guidance", "-g", help="Classifier-free guidance scale (default: the model's, 2 for the embedded one; 1 = off).")]
Eta = Annotated[float, typer.Option("--eta", help="DDIM noise: 0 deterministic, 1 DDPM-like.")]
Weights = Annotated[str, typer.Option("--weights", help="ema (default) or raw weights of a model trained with EMA.")]
Offload = Annotated[str, typer.Option("--offload", help="Text-to-image models: auto, none, model or sequential CPU offload.")]
Upscale = Annotated[bool, typer.Option("--upscale", help="Text-to-image models with an upscaler: run stage II (64 -> 256 px).")]
