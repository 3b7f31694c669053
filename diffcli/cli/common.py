"""What every command does around its job: apply -q/--json, announce a fresh seed, pick the progress
view, write an ImageSet where -o / --out-dir / stdout say, and report it.

Nothing here imports torch: `diffcli --help` and shell completion must stay fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from diffcli import console
from diffcli.cli.options import Output
from diffcli.errors import InterruptedRun, UsageError


def start(quiet: bool = False, json_output: bool = False) -> None:
    """Apply the output switches of the command that is starting."""
    console.configure(quiet=quiet, json_output=json_output)


def report_seed(given: int | None, used: int, summary: dict | None = None) -> None:
    """When the user gave no seed, say which one was drawn, so the run can be repeated. After --best-of
    the kept candidates' seeds were named too: say which seed does what."""
    if given is None:
        also = ""
        if (summary or {}).get("best_of", 1) > 1:
            also = "; a kept candidate's seed, without --best-of, makes that image alone"
        console.info(f"seed {used} (pass --seed {used} to repeat this run{also})")


def progress(quiet: bool, json_output: bool, events: bool = False):
    """The progress factory for this invocation: a live panel when stderr is a terminal (with --json
    too: stdout carries the JSON), plain lines otherwise (none with --json, whose reader is a program).
    events: also one JSON line per epoch on stdout (train --json)."""
    from diffcli.tui.progress import RunView, choose_mode

    mode = choose_mode(quiet or console.settings.quiet_all, False)
    if json_output and mode == "plain":
        mode = "quiet"
    return lambda title, total, **options: RunView(title, total, mode=mode, events=events, **options)


def registry():
    """The registry at $DIFFCLI_HOME (or the platform default)."""
    from diffcli.models.registry import Registry

    return Registry()


def command_line() -> str:
    """The command as typed, for the PNG metadata."""
    return " ".join(["diffcli", *sys.argv[1:]])[:2000]


def check_outputs(run: Output) -> None:
    """Before any work: -o and --out-dir exclude each other, -o - needs a pipe, and the file or folder
    must be one that can be written."""
    from diffcli.io import output_paths

    if run.out and run.out_dir:
        raise UsageError("use either -o or --out-dir, not both")
    if run.out and Path(run.out).suffix.lower() in NOT_PNG:
        out = Path(run.out)
        raise UsageError(
            f"-o {run.out}: diffcli writes PNG (exact pixels, the settings in its text chunk)",
            f"name the file {out.stem}.png and convert it afterwards if you need {out.suffix}",
        )
    if run.out_dir:
        output_paths.check_out_dir(run.out_dir)
    else:
        output_paths.check_output(run.out, run.json_output)


ANNOUNCE_OVER = 100  # say how many images a command will make before making more than this
NOT_PNG = {".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}  # -o names that promise another format


def run_images(prepared, run: Output, default_name: str, seed: int | None = None) -> None:
    """Run a prepared generating job and write what it makes: with --out-dir batch by batch as they are
    made (memory stays flat), else the whole set's figure. Then report (seed, --json)."""
    if not run.out_dir:
        prepared.check_figure()
    if prepared.total_images > ANNOUNCE_OVER:
        console.info(f"making {prepared.total_images} images")
    view = progress(run.quiet, run.json_output)
    if run.out_dir:
        written: list[str] = []
        try:
            for part in prepared.stream(view):
                written += write_images(part, run, default_name)
        except KeyboardInterrupt:
            raise InterruptedRun(f"stopped (Ctrl-C) after writing {_count(written)} to {run.out_dir}") from None
        summary = prepared.summary()
    else:
        result = prepared.collect(view)
        written, summary = write_images(result, run, default_name), result.summary
    if "images" in summary:
        s = summary
        steps = s["steps"] or f"stride {s['stride']}"
        console.info(f"{s['images']} image(s) in {s['seconds']:.1f} s ({s['sampler']}, {steps} steps, {cfg_text(s)})")
    if run.out_dir:
        report_folder(written, run)
    report_seed(seed, summary["seed"], summary)
    if run.json_output:
        console.emit_json({**summary, "outputs": written})


def cfg_text(summary: dict) -> str:
    """'CFG 3' or 'CFG 3 in 0.2:0.7' from a summary's guidance and guidance_interval; a student's learnt
    guidance reads 'CFG 3 in 0.2:0.7 of mnist, built in'."""
    learnt = summary.get("learnt_guidance")
    if learnt and summary.get("guidance") == 1.0:
        return f"{cfg_text(learnt)} of {learnt['teacher']}, built in"
    interval = summary.get("guidance_interval")
    return f"CFG {summary['guidance']:g}" + (f" in {interval[0]:g}:{interval[1]:g}" if interval else "")


def _count(written: list[str]) -> str:
    return f"{len(written)} image{'s' if len(written) != 1 else ''}"


def paths_on_stdout(run: Output) -> bool:
    """--out-dir names each file on stdout when a program reads it (`| xargs`); a terminal gets one
    summary line instead, so a big run's paths never scroll through the live panel."""
    return not run.json_output and not sys.stdout.isatty()


def report_folder(written: list[str], run: Output) -> None:
    """The one line that says what --out-dir received (the result: shown with -q too on a terminal)."""
    line = f"wrote {_count(written)} to {run.out_dir}"
    if paths_on_stdout(run):
        console.info(line)  # the paths on stdout are the result; this is a note beside them
    else:
        console.result(line)


def write_images(result, run: Output, default_name: str) -> list[str]:
    """Write a job's ImageSet: one PNG per image (and its extras) into --out-dir (the paths on stdout when
    it is piped), or its figure to -o / stdout / a new file here. Returns where each file went."""
    from diffcli.io import output_paths, png

    command = {"command": command_line()}
    written: list[str] = []
    if run.out_dir:
        folder = output_paths.prepare_out_dir(run.out_dir)
        for image, name, meta in result.files():
            path = folder / f"{name}.png"
            png.write_png(image, output_paths.OutputTarget(path), {**command, **meta})
            written.append(str(path))
            if paths_on_stdout(run):
                console.emit_line(str(path))
        return written
    chosen: list[str] = []  # resolve_output's note that it picked a name: folded into the one "wrote" line
    target = output_paths.resolve_output(run.out, default_name, run.json_output, chosen.append)
    png.write_png(result.figure(), target, {**command, **result.metadata})
    if not target.is_stdout:
        console.result(f"wrote {target.describe()}" + (" (no -o given: a new file here)" if chosen else ""))
    return [target.describe()]


def emit_result(result, written: list[str], run: Output, seed: int | None = None) -> None:
    """Report a finished image job: the seed drawn (when none was given) and, with --json, the job's
    summary with where its files went."""
    if run.out_dir:
        report_folder(written, run)
    if "seed" in result.summary:
        report_seed(seed, result.summary["seed"])
    if run.json_output:
        console.emit_json({**result.summary, "outputs": written})


def report_json(payload: Any) -> None:
    """One JSON document on stdout."""
    console.emit_json(payload)


def print_table(title: str, columns: tuple[str, ...], rows: list[list[str]]) -> None:
    """A report table on stdout: drawn on a terminal; piped, plain tab-separated columns under a header
    line (the title first, as a `# ` comment), as `models list` writes them."""
    if sys.stdout.isatty():
        from rich.table import Table

        table = Table(title=title)
        for column in columns:
            table.add_column(column, justify="right")
        for row in rows:
            table.add_row(*row)
        console.stdout().print(table)
        return
    console.emit_line(f"# {title}")
    for row in [list(columns), *rows]:
        console.emit_line("\t".join(row))
