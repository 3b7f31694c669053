"""`diffcli models`: the registry every command shares (list, show, path, default, rm, import, export)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from diffcli import console
from diffcli.cli import common, options, params
from diffcli.errors import DiffcliError, UsageError

app = typer.Typer(help="The model registry shared by every command.", no_args_is_help=True)

Name = Annotated[
    str,
    typer.Argument(
        metavar="NAME", help="Model name (see `diffcli models list`).", autocompletion=params.COMPLETERS["models"]
    ),
]
COLUMNS = ("NAME", "STATUS", "KIND", "DATASET", "SIZE", "MODIFIED", "SOURCE")


def _human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def list_models(
    json_output: options.Json = False,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", metavar="", help="Names only, one per line (for scripts).")
    ] = False,
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
        [
            row["name"] + (" *" if row["default"] else ""),
            row["status"],
            row["kind"]
            if row["kind"] == "broken"
            else f"{row['kind']}/{row['conditioning']}" + ("/denoise" if row.get("objective") == "denoise" else ""),
            row["dataset"] or "-",
            _human_size(row["size_bytes"]),
            describe_age(row["modified"]),
            row["source"],
        ]
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
def show(
    name: Name,
    json_output: Annotated[
        bool, typer.Option("--json", metavar="", help="Everything: the whole config, files and paths, as JSON.")
    ] = False,
) -> None:
    """Show a model: what it is, its sampling defaults, its training recipe and its recorded scores
    (--json for everything)."""
    from diffcli.jobs.models import show as show_job

    info = show_job(name)
    if json_output:
        console.emit_json(info)
        return
    for line in show_lines(info):
        console.emit_line(line)


SHOW_WIDTH = 100  # `models show` wraps its fields to this many characters (a path is never cut)


def show_lines(info: dict[str, Any]) -> list[str]:
    """`models show` for people: one field a line (wrapped to SHOW_WIDTH), the scores as a few lines."""
    import textwrap

    from diffcli.models.config import ModelConfig

    config = ModelConfig.from_dict(info["config"])
    origin = "built-in" if info["source"] == "builtin" else "user"
    lines = [f"{info['name']}  ({origin}{', the default' if info['default'] else ''})"]

    def field(label: str, text: str) -> None:
        lines.extend(
            textwrap.wrap(
                text,
                SHOW_WIDTH,
                initial_indent=f"  {label:<10} ",
                subsequent_indent=" " * 13,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )

    if config.description:
        field("about", config.description)
    field("path", str(info["path"]))
    schedule = config.schedule if isinstance(config.schedule, dict) else {}
    arch = config.architecture.get("type", "?")
    network = config.kind if arch == config.kind else f"{config.kind} ({arch})"
    field(
        "network",
        f"{network}, {config.objective}, {config.cond_type}-conditioned; "
        f"{config.channels} channel{'s' if config.channels != 1 else ''} {config.size}x{config.size}",
    )
    if schedule:
        kind, timesteps = schedule.get("kind", "?"), schedule.get("timesteps", "?")
        field("process", f"{kind} schedule, {timesteps} timesteps, predicts {config.prediction}")
    if config.labels:
        field("classes", f"{', '.join(config.labels)} ({len(config.labels)})")
    dataset = config.dataset if isinstance(config.dataset, dict) else {}
    if dataset:
        count = f", {dataset['count']} images" if dataset.get("count") else ""
        field("dataset", f"{dataset.get('name', '?')}{count}")
    if config.sampling:
        field("sampling", _sampling_text(config.sampling) + " (the defaults of sample; flags override them)")
    if config.distillation:
        field("distilled", _distillation_text(config.distillation))
    if config.training:
        field("training", _training_text(config.training))
    scores = _score_lines(config.metrics.get("eval", {}) if isinstance(config.metrics, dict) else {})
    for i, text in enumerate(scores):
        field("scores" if i == 0 else "", text)
    field("files", ", ".join(f"{k} ({_human_size(v)})" for k, v in info["files"].items()))
    field("more", f"diffcli models show {info['name']} --json")
    return lines


def _sampling_text(sampling: dict[str, Any]) -> str:
    parts = [str(sampling.get("sampler", "?"))]
    if sampling.get("steps"):
        parts.append(f"{sampling['steps']} steps")
    if sampling.get("guidance") is not None:
        parts.append(common.cfg_text(sampling))
    return ", ".join(parts)


def _distillation_text(plan: dict[str, Any]) -> str:
    """A student's teacher and how it learnt: "from 'mnist' by progressive distillation, its 8 DDIM steps at
    CFG 3 in 0.2:0.7 (built in)"."""
    cfg = common.cfg_text({"guidance": plan.get("guidance", 1.0), "guidance_interval": plan.get("guidance_interval")})
    steps = plan.get("teacher_steps")
    return (
        f"from {plan.get('teacher')!r} by {plan.get('method')} distillation, its {steps} DDIM steps at {cfg}"
        " (built in: the student takes no -g)"
    )


def _training_text(training: dict[str, Any]) -> str:
    from diffcli.tui.format import format_duration

    parts = []
    if training.get("recipe"):
        parts.append(f"recipe {training['recipe']}")
    if training.get("steps"):
        epochs = training.get("epochs_done")
        epochs_text = f" ({epochs:g} epochs)" if isinstance(epochs, (int, float)) else ""
        parts.append(f"{training['steps']} steps{epochs_text}")
    if training.get("wall_seconds"):
        device = f" on {training['device']}" if training.get("device") else ""
        parts.append(format_duration(training["wall_seconds"]) + device)
    if training.get("seed") is not None:
        parts.append(f"seed {training['seed']}")
    return ", ".join(parts) or "-"


def _score_lines(evals: dict[str, Any]) -> list[str]:
    """The recorded eval reports as a few lines: accuracy and its lowest class, FID beside its floor,
    how often an anagram / hybrid reads both ways."""
    lines = []
    sample = evals.get("sample")
    if isinstance(sample, dict) and sample.get("accuracy") is not None:
        text = f"samples: accuracy {_pct(sample['accuracy'])} over {sample.get('n', '?')}"
        per_class = sample.get("per_class_accuracy") or {}
        if per_class and min(per_class.values()) < max(per_class.values()):
            low = min(per_class, key=per_class.get)
            text += f" (lowest: class {low}, {_pct(per_class[low])})"
        fid = sample.get("fid") or {}
        if fid.get("value") is not None:
            text += f"; FID {fid['value']:.2f}, real-vs-real floor {fid['floor']:.2f} at n={fid.get('n', '?')}"
        lines.append(text)
    for task, what in (("anagram", "view {view}"), ("hybrid", "low-pass {kernel}/{sigma}")):
        report = evals.get(task)
        if isinstance(report, dict) and report.get("rate") is not None:
            how = what.format(**{k: report.get(k, "?") for k in ("view", "kernel", "sigma")})
            settings = f"{how}, {report.get('n', '?')} seeds, CFG {report.get('guidance', '?')}"
            lines.append(f"{task}s: {_pct(report['rate'])} of seeds read both ways ({settings})")
    return lines


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


@app.command("path")
def path(name: Annotated[str | None, typer.Argument(help="Model name (default: the registry root).")] = None) -> None:
    """Print the folder of a model (or of the registry)."""
    from diffcli.jobs.models import model_path

    console.emit_line(str(model_path(name)))


@app.command("default")
def default(name: Annotated[str | None, typer.Argument(help="Make this model the default.")] = None) -> None:
    """Print the default model, or set it."""
    from diffcli.jobs import models as jobs

    if name is None:
        current = jobs.default_model()
        if current is None:
            raise DiffcliError(
                "no default model",
                "train one with `diffcli train` or `diffcli models import` one, then `diffcli models default NAME`",
            )
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
    source: Annotated[
        Path, typer.Argument(help="A model folder (config.json + model.safetensors) or a .zip from `models export`.")
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="Register under this name (default: the config's).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a model of the same name.")] = False,
) -> None:
    """Add a model to the registry, after checking that its weights load."""
    from diffcli.jobs.models import import_model as import_job

    entry = import_job(source, name, force)
    console.info(f"imported {entry.name} -> {entry.path}")


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Register the pipeline under this name.")],
    hub: Annotated[
        str | None,
        typer.Option(
            "--hub",
            help="Hugging Face repo id, e.g. DeepFloyd/IF-I-XL-v1.0 (downloaded on first use, into the HF cache).",
        ),
    ] = None,
    path: Annotated[
        Path | None, typer.Option("--path", help="A local diffusers pipeline folder (from save_pretrained).")
    ] = None,
    upscaler: Annotated[
        str | None,
        typer.Option(
            "--upscaler", help="Stage-II pipeline for --upscale: a repo id (e.g. DeepFloyd/IF-II-L-v1.0) or a folder."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a model of the same name.")] = False,
) -> None:
    """Register a pixel-space text-to-image pipeline (DeepFloyd IF stage I) by reference: config only,
    the weights stay in the Hugging Face cache or the folder. Nothing is downloaded now."""
    from diffcli.jobs.models import add_pipeline

    entry = add_pipeline(name, hub, path, upscaler, force)
    console.info(
        f"registered {entry.name} -> {entry.path} (try `diffcli sample -m {entry.name} --prompt 'a photo of a dog'`)"
    )


@app.command("export")
def export(
    name: Name,
    destination: Annotated[Path, typer.Argument(help="The .zip to write (or a folder to put NAME.zip in).")],
) -> None:
    """Write a model's config and weights into a .zip that `models import` reads."""
    from diffcli.jobs.models import export as export_job

    path = export_job(name, destination)
    console.emit_line(str(path))
