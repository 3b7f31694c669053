"""`diffcli models`: the registry every command shares (list, show, path, default, rm, import, export)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from diffcli import console
from diffcli.cli import common, options
from diffcli.errors import DiffcliError, UsageError

app = typer.Typer(help="The model registry shared by every command.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(metavar="NAME", help="Model name (see `diffcli models list`).", autocompletion=options._complete_models)]
COLUMNS = ("NAME", "STATUS", "KIND", "DATASET", "SIZE", "MODIFIED", "SOURCE")


def _human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def list_models(
    json_output: options.Json = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", metavar="", help="Names only, one per line (for scripts).")] = False,
) -> None:
    """List registered models: NAME, STATUS, KIND, DATASET, SIZE, MODIFIED, SOURCE (* marks the default).

    On a terminal a table; piped, tab-separated columns with a header line (names are never cut).
    """
    from diffcli.jobs.models import list_models as list_job
    from diffcli.models.registry import describe_age

    rows = list_job()
    if json_output:
        console.emit_json(rows)
        return
    if quiet:
        for row in rows:
            console.emit_line(row["name"])
        return
    if not rows:
        console.info("no models yet: train one with `diffcli train`, or `diffcli models import PATH`")
        return
    cells = [
        [row["name"] + (" *" if row["default"] else ""), row["status"],
         row["kind"] if row["kind"] == "broken" else f"{row['kind']}/{row['conditioning']}" + ("/denoise" if row.get("objective") == "denoise" else ""),
         row["dataset"] or "-", _human_size(row["size_bytes"]), describe_age(row["modified"]), row["source"]]
        for row in rows
    ]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        widths = [max(len(str(value)) for value in column) for column in zip(COLUMNS, *cells)]
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column, width in zip(COLUMNS, widths):
            table.add_column(column, no_wrap=True, min_width=width)
        for line in cells:
            table.add_row(*line)
        # As wide as the rows need, even on a narrow terminal: a long line wraps, a name is never cut.
        out = Console(file=sys.stdout, soft_wrap=True)
        out.width = max(out.width, sum(widths) + 2 * (len(widths) - 1))
        out.print(table)
    else:  # a pipe or a file: plain tab-separated columns, nothing cut, nothing wrapped
        console.emit_line("\t".join(COLUMNS))
        for line in cells:
            console.emit_line("\t".join(line))
    for row in rows:
        if row["kind"] == "broken":
            console.warn(row["error"] + (f"; {row['hint']}" if row.get("hint") else ""))


app.command("list")(list_models)
app.command("ls", hidden=True)(list_models)  # as in ollama and hf


@app.command("show")
def show(name: Name, json_output: options.Json = False) -> None:
    """Show a model's config, files and metrics."""
    from diffcli.jobs.models import show as show_job
    from diffcli.models.config import ModelConfig

    info = show_job(name)
    if json_output:
        console.emit_json(info)
        return
    config = ModelConfig.from_dict(info["config"])
    files = info["files"]
    out = sys.stdout
    out.write(f"{info['name']}  ({'built-in' if info['source'] == 'builtin' else 'user'}{', default' if info['default'] else ''})\n")
    out.write(f"  path        {info['path']}\n")
    if config.description:
        out.write(f"  about       {config.description}\n")
    out.write(f"  kind        {config.kind} ({config.architecture.get('type', '?')}), {config.objective}, conditioning: {config.cond_type}\n")
    out.write(f"  image       {config.channels} channel(s), {config.size}x{config.size}, range {list(config.pixel_range)}\n")
    out.write(f"  schedule    {config.schedule}\n  prediction  {config.prediction}\n")
    if config.labels:
        out.write(f"  labels      {', '.join(config.labels)}\n")
    if config.dataset:
        out.write(f"  dataset     {config.dataset}\n")
    if config.sampling:
        out.write(f"  sampling    {config.sampling}\n")
    for key in ("recipe", "epochs", "steps", "wall_seconds", "device", "seed"):
        if key in config.training:
            out.write(f"  training.{key:<8} {config.training[key]}\n")
    for key, value in config.metrics.items():
        out.write(f"  metrics.{key}: {value}\n")
    out.write("  files       " + ", ".join(f"{k} ({_human_size(v)})" for k, v in files.items()) + "\n")


@app.command("path")
def path(name: Annotated[Optional[str], typer.Argument(help="Model name (default: the registry root).")] = None) -> None:
    """Print the folder of a model (or of the registry)."""
    from diffcli.jobs.models import model_path

    console.emit_line(str(model_path(name)))


@app.command("default")
def default(name: Annotated[Optional[str], typer.Argument(help="Make this model the default.")] = None) -> None:
    """Print the default model, or set it."""
    from diffcli.jobs import models as jobs

    if name is None:
        current = jobs.default_model()
        if current is None:
            raise DiffcliError("no default model", "train one with `diffcli train` or `diffcli models import` one, then `diffcli models default NAME`")
        console.emit_line(current)
        return
    jobs.set_default(name)
    console.info(f"default model is now {name!r}")


@app.command("rm")
def remove(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a user model (built-in models cannot be removed)."""
    from diffcli.jobs import models as jobs

    entry = common.registry().get(name)
    if entry.builtin:
        raise DiffcliError(f"{name!r} is a built-in model and cannot be removed")
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to delete {name!r} without confirmation", "pass --yes")
        if not typer.confirm(f"Delete model {name!r} ({entry.path})?", err=True):
            raise typer.Exit(1)
    jobs.remove(name)
    console.info(f"removed {name}")


@app.command("import")
def import_model(
    source: Annotated[Path, typer.Argument(help="A model folder (config.json + model.safetensors) or a .zip from `models export`.")],
    name: Annotated[Optional[str], typer.Option("--name", help="Register under this name (default: the config's).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a model of the same name.")] = False,
) -> None:
    """Add a model to the registry, after checking that its weights load."""
    from diffcli.jobs.models import import_model as import_job

    entry = import_job(source, name, force)
    console.info(f"imported {entry.name} -> {entry.path}")


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Register the pipeline under this name.")],
    hub: Annotated[Optional[str], typer.Option("--hub", help="Hugging Face repo id, e.g. DeepFloyd/IF-I-XL-v1.0 (downloaded on first use, into the HF cache).")] = None,
    path: Annotated[Optional[Path], typer.Option("--path", help="A local diffusers pipeline folder (from save_pretrained).")] = None,
    upscaler: Annotated[Optional[str], typer.Option("--upscaler", help="Stage-II pipeline for --upscale: a repo id (e.g. DeepFloyd/IF-II-L-v1.0) or a folder.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a model of the same name.")] = False,
) -> None:
    """Register a pixel-space text-to-image pipeline (DeepFloyd IF stage I) by reference: config only,
    the weights stay in the Hugging Face cache or the folder. Nothing is downloaded now."""
    from diffcli.jobs.models import add_pipeline

    entry = add_pipeline(name, hub, path, upscaler, force)
    console.info(f"registered {entry.name} -> {entry.path} (try `diffcli sample -m {entry.name} --prompt 'a photo of a dog'`)")


@app.command("export")
def export(
    name: Name,
    destination: Annotated[Path, typer.Argument(help="The .zip to write (or a folder to put NAME.zip in).")],
) -> None:
    """Write a model's config and weights into a .zip that `models import` reads."""
    from diffcli.jobs.models import export as export_job

    path = export_job(name, destination)
    console.emit_line(str(path))
