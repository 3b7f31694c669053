"""Options several commands share, declared once.

A command lists its own options in its signature and asks for shared groups with `@shared(...)`:
the decorator adds the group's options to the signature Typer reads, and hands the command one small
object per group (`run: RunOptions`, `sampling: SamplingOptions`). So `--model`, `--device`, `--seed`,
`-o`, `--out-dir`, `-q`, `--json` and the sampler options have one declaration and one help text.

Nothing here imports torch: `diffcli --help` and shell completion must stay fast.
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass, fields
from typing import Annotated, Any, Callable, Optional

import typer


@dataclass
class RunOptions:
    """Where a command runs and where its output goes."""

    model: Optional[str] = None
    device: str = "auto"
    seed: Optional[int] = None
    out: Optional[str] = None
    out_dir: Optional[str] = None
    quiet: bool = False
    json_output: bool = False


@dataclass
class SamplingOptions:
    """How to walk the reverse process (None: the model's default)."""

    n: int = 1
    sampler: Optional[str] = None
    steps: Optional[int] = None
    stride: Optional[int] = None
    guidance: Optional[float] = None
    eta: float = 0.0
    offload: str = "auto"
    upscale: bool = False

    def engine(self):
        """The engine's Sampling (the model's defaults fill what is None)."""
        from diffcli.jobs.generate import Sampling

        return Sampling(self.sampler, self.steps, self.stride, self.guidance, self.eta)


# ----- the declarations (Typer reads these annotations) -------------------------------------------
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="Print nothing on stderr but warnings and errors.")]
Json = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON result on stdout.")]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Random seed (default: a fresh one, printed and recorded in the PNG). Sample i uses seed + i.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps (auto picks the GPU when there is one).", envvar="DIFFCLI_DEVICE")]
ModelName = Annotated[Optional[str], typer.Option("--model", "-m", help="Registry model name (default: the registry's default model; see `diffcli models list`).", envvar="DIFFCLI_MODEL")]
Out = Annotated[Optional[str], typer.Option("-o", "--out", help="Output PNG path, or - for stdout (default: stdout when piped, else a new file here).")]
OutDir = Annotated[Optional[str], typer.Option("--out-dir", help="Write one PNG per image into this folder; paths go to stdout.")]

Count = Annotated[int, typer.Option("-n", help="Samples per class / prompt (one seed each: seed, seed+1, ...).")]
SamplerName = Annotated[Optional[str], typer.Option("--sampler", help="ddpm, ddim, heun or dpm++ (default: the model's).")]
Steps = Annotated[Optional[int], typer.Option("--steps", help="Reverse steps, evenly spread from T-1 (default: the model's).")]
Stride = Annotated[Optional[int], typer.Option("--stride", help="Visit every STRIDE-th timestep instead (the course's 30 at T=1000).")]
Guidance = Annotated[Optional[float], typer.Option("--guidance", "-g", help="Classifier-free guidance scale (default: the model's, 2 for the embedded one; 1 = off).")]
Eta = Annotated[float, typer.Option("--eta", help="DDIM noise: 0 deterministic, 1 DDPM-like.")]
Weights = Annotated[str, typer.Option("--weights", help="ema (default) or raw weights of a model trained with EMA.")]
Offload = Annotated[str, typer.Option("--offload", help="Text-to-image models: auto, none, model or sequential CPU offload.")]
Upscale = Annotated[bool, typer.Option("--upscale", help="Text-to-image models with an upscaler: run stage II (64 -> 256 px).")]

GROUPS: dict[str, tuple[type, dict[str, tuple[Any, Any]]]] = {
    "run": (RunOptions, {
        "model": (ModelName, None), "device": (Device, "auto"), "seed": (Seed, None), "out": (Out, None),
        "out_dir": (OutDir, None), "quiet": (Quiet, False), "json_output": (Json, False),
    }),
    "sampling": (SamplingOptions, {
        "n": (Count, 1), "sampler": (SamplerName, None), "steps": (Steps, None), "stride": (Stride, None),
        "guidance": (Guidance, None), "eta": (Eta, 0.0), "offload": (Offload, "auto"), "upscale": (Upscale, False),
    }),
}


def shared(*groups: str, exclude: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the options of `groups` ("run", "sampling") to a command, without those in `exclude`.

    The command takes one keyword argument per group, named like the group, holding a RunOptions /
    SamplingOptions (excluded fields keep their defaults)."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(command, include_extras=True)
        own = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in inspect.signature(command).parameters.values() if p.name not in groups]
        added: list[inspect.Parameter] = []
        members: dict[str, list[str]] = {}
        for group in groups:
            _, options = GROUPS[group]
            members[group] = [name for name in options if name not in exclude]
            for name in members[group]:
                annotation, default = options[name]
                added.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation))

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for group in groups:
                cls, _ = GROUPS[group]
                kwargs[group] = cls(**{name: kwargs.pop(name) for name in members[group] if name in kwargs})
            return command(*args, **kwargs)

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD and p.default is not inspect.Parameter.empty else p for p in own]
        positional = [p for p in params if p.kind != inspect.Parameter.KEYWORD_ONLY]
        keyword = [p for p in params if p.kind == inspect.Parameter.KEYWORD_ONLY]
        wrapper.__signature__ = inspect.Signature(positional + keyword + added)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in positional + keyword + added}
        del wrapper.__wrapped__  # Typer must read the new signature, not the command's own
        return wrapper

    return decorate


def group_fields(group: str) -> list[str]:
    """The option names a group adds (for tests and docs)."""
    return [f.name for f in fields(GROUPS[group][0])]
