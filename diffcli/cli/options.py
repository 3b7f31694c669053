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

from diffcli.diffusion.names import SAMPLERS, VIEWS, spoken


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
    guidance_interval: Optional[str] = None
    eta: float = 0.0
    offload: str = "auto"
    upscale: bool = False

    def engine(self):
        """The request's Sampling: the options it declares, by name (the model's defaults fill what is None)."""
        from diffcli.jobs.generating import Sampling

        return Sampling(**{name: getattr(self, name) for name in Sampling.keys()})


# ----- the declarations (Typer reads these annotations) -------------------------------------------
MODEL_PANEL, SAMPLING_PANEL, OUTPUT_PANEL, T2I_PANEL = "Model", "Sampling", "Output", "Text-to-image models"


def _complete_models(incomplete: str) -> list[str]:
    """Registry model names for shell completion (never fails: completion must stay quiet)."""
    try:
        from diffcli.models.registry import Registry

        return [name for name in Registry().names() if name.startswith(incomplete)]
    except Exception:
        return []


KNOWN_PIPELINES = {"if": "DeepFloyd/IF-I-XL-v1.0"}  # names people type before adding them (docs/deepfloyd-if.md)


def _check_model(ctx: typer.Context, value: Optional[str]) -> Optional[str]:
    """-m NAME names a registered model, checked before anything loads or downloads: a near miss gets
    "did you mean", a known pipeline that is not added yet gets the `models add` line."""
    if value is None or ctx.resilient_parsing:
        return value
    import difflib

    from diffcli.errors import UsageError
    from diffcli.models.registry import Registry

    names = Registry().names()
    if value in names:
        return value
    if value in KNOWN_PIPELINES:
        add = f"diffcli models add {value} --hub {KNOWN_PIPELINES[value]}"
        raise UsageError(f"no model named {value!r} yet",
                         f"add it first: `{add}` (a GPU and `pip install 'diffcli[hub]'`; see docs/deepfloyd-if.md)")
    close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
    guess = f"did you mean {close[0]!r}? " if close else ""
    known = ", ".join(names) or "none"
    raise UsageError(f"no model named {value!r}", f"{guess}registered: {known} (`diffcli models list`)")


def choices(*values: str) -> Callable[[str], list[str]]:
    """Shell completion from a fixed list of values."""
    return lambda incomplete: [v for v in values if v.startswith(incomplete)]


DATASETS = ("mnist", "fashion-mnist", "fashion", "glyphs", "folder:")
DEVICES = ("auto", "cpu", "cuda", "mps")

Quiet = Annotated[bool, typer.Option(
    "-q", "--quiet", help="No progress or notes: only the result (what was written, the report), warnings and errors.",
    rich_help_panel=OUTPUT_PANEL, metavar="")]
Json = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON result on stdout.", rich_help_panel=OUTPUT_PANEL, metavar="")]
Seed = Annotated[Optional[int], typer.Option("--seed", metavar="INT", help="Random seed (default: a fresh one, printed and recorded in the PNG). Image i uses seed + i.", rich_help_panel=SAMPLING_PANEL)]
Device = Annotated[str, typer.Option("--device", metavar="DEVICE", help="auto, cpu, cuda or mps (auto picks the GPU when there is one).", envvar="DIFFCLI_DEVICE", rich_help_panel=MODEL_PANEL, autocompletion=choices(*DEVICES))]
ModelName = Annotated[Optional[str], typer.Option(
    "--model", "-m", metavar="NAME",
    help="Registry model (default: the registry's default; see `diffcli models list`).", envvar="DIFFCLI_MODEL",
    rich_help_panel=MODEL_PANEL, autocompletion=_complete_models, callback=_check_model)]
Out = Annotated[Optional[str], typer.Option("-o", "--out", metavar="PATH", help="Output PNG, or - for stdout (default: stdout when piped, else a new file here).", rich_help_panel=OUTPUT_PANEL)]
OutDir = Annotated[Optional[str], typer.Option("--out-dir", metavar="DIR", help="Write one PNG per image into this folder (as they are made); paths go to stdout.", rich_help_panel=OUTPUT_PANEL)]

Count = Annotated[int, typer.Option("-n", metavar="INT", help="Images per class / prompt (one seed each: seed, seed+1, ...).", rich_help_panel=SAMPLING_PANEL)]
SamplerName = Annotated[Optional[str], typer.Option("--sampler", metavar="NAME", help=f"{spoken(SAMPLERS)} (default: the model's).", rich_help_panel=SAMPLING_PANEL, autocompletion=choices(*SAMPLERS))]
Steps = Annotated[Optional[int], typer.Option("--steps", metavar="INT", help="Sampler steps, evenly spread from T-1 (default: the model's).", rich_help_panel=SAMPLING_PANEL)]
Stride = Annotated[Optional[int], typer.Option("--stride", metavar="INT", help="Visit every INT-th timestep instead of --steps (the course's 30 at T=1000).", rich_help_panel=SAMPLING_PANEL)]
Guidance = Annotated[Optional[float], typer.Option("--guidance", "-g", metavar="SCALE", help="Classifier-free guidance scale (default: the model's: 3 in 0.2:0.7 for the embedded mnist; 1 = off).", rich_help_panel=SAMPLING_PANEL)]
GuidanceInterval = Annotated[Optional[str], typer.Option("--guidance-interval", metavar="LO:HI", help="Guide only in this part of the reverse process (fractions of T from the clean end, e.g. 0.2:0.7; plainly conditional elsewhere; 0:1 = throughout). Default: the model's, with its own scale.", rich_help_panel=SAMPLING_PANEL)]
Eta = Annotated[float, typer.Option("--eta", metavar="ETA", help="DDIM noise: 0 deterministic, 1 DDPM-like.", rich_help_panel=SAMPLING_PANEL)]
Weights = Annotated[str, typer.Option("--weights", metavar="WHICH", help="ema (default) or raw weights of a model trained with EMA.", rich_help_panel=MODEL_PANEL, autocompletion=choices("ema", "raw"))]
Offload = Annotated[str, typer.Option("--offload", metavar="MODE", help="auto, none, model or sequential CPU offload.", rich_help_panel=T2I_PANEL, autocompletion=choices("auto", "none", "model", "sequential"))]
Upscale = Annotated[bool, typer.Option("--upscale", help="Run the upscaler (stage II, 64 -> 256 px).", rich_help_panel=T2I_PANEL, metavar="")]
BestOf = Annotated[int, typer.Option("--best-of", metavar="K", help="Make K candidates per image and keep the one the scorer reads best (the dataset's classifier; CLIP for text-to-image models); its own seed is recorded.", rich_help_panel=SAMPLING_PANEL)]

def examples(*lines: str) -> str:
    """A command's help epilog: real commands, one per paragraph (Typer keeps them on their lines)."""
    return "**Examples**\n\n" + "\n\n".join(lines)


def renamed(old: str, new: str, value: Any) -> Any:
    """A value given under an old spelling (a hidden option kept for a release; docs/commands.md lists
    the renames). Silent, so a bad value still gets exactly one line."""
    return value


GROUPS: dict[str, tuple[type, dict[str, tuple[Any, Any]]]] = {
    "run": (RunOptions, {
        "model": (ModelName, None), "device": (Device, "auto"), "seed": (Seed, None), "out": (Out, None),
        "out_dir": (OutDir, None), "quiet": (Quiet, False), "json_output": (Json, False),
    }),
    "sampling": (SamplingOptions, {
        "n": (Count, 1), "sampler": (SamplerName, None), "steps": (Steps, None), "stride": (Stride, None),
        "guidance": (Guidance, None), "guidance_interval": (GuidanceInterval, None), "eta": (Eta, 0.0), "offload": (Offload, "auto"), "upscale": (Upscale, False),
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
