"""The CLI's own options (`Output`: -o, --out-dir, -q, --json), declared once as every request field is
(diffcli/params.py), and the small helpers commands share.

Each command builds its options from declarations with `@params.options(...)` (cli/params.py): the
request's fields, `ModelChoice` (-m, --device, ...) and `Output`. So each flag, its default and its help
text are written once. Nothing here imports torch: `diffcli --help` and shell completion must stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from diffcli.cli.params import annotated
from diffcli.jobs.requests import ModelChoice
from diffcli.params import param

OUTPUT_PANEL = "Output"


@dataclass(kw_only=True)
class Output:
    """Where a command's output goes and how much it says: CLI options only (the Python API returns its
    results)."""

    out: str | None = param(
        None,
        help="Output PNG, or - for stdout (default: stdout when piped, else a new file here).",
        flags=("-o", "--out"),
        metavar="PATH",
        panel=OUTPUT_PANEL,
    )
    out_dir: str | None = param(
        None,
        help="Write one PNG per image into this folder (as they are made); paths go to stdout when piped.",
        metavar="DIR",
        panel=OUTPUT_PANEL,
    )
    quiet: bool = param(
        False,
        help="No progress or notes: only the result (what was written, the report), warnings and errors.",
        flags=("-q", "--quiet"),
        panel=OUTPUT_PANEL,
    )
    json_output: bool = param(
        False, help="Print a machine-readable JSON result on stdout.", flags=("--json",), panel=OUTPUT_PANEL
    )


# For commands that take these alone (train, doctor, models): the same declarations as Typer annotations.
Quiet = annotated(Output, "quiet")
Json = annotated(Output, "json_output")
Device = annotated(ModelChoice, "device")

DATASETS = ("mnist", "fashion-mnist", "fashion", "glyphs", "folder:")


def choices(*values: str) -> Callable[[str], list[str]]:
    """Shell completion from a fixed list of values."""
    return lambda incomplete: [v for v in values if v.startswith(incomplete)]


def examples(*lines: str) -> str:
    """A command's help epilog: real commands, one per paragraph (Typer keeps them on their lines)."""
    return "**Examples**\n\n" + "\n\n".join(lines)


def renamed(old: str, new: str, value: Any) -> Any:
    """A value given under an old spelling (a hidden option kept for a release; docs/commands.md lists
    the renames). Silent, so a bad value still gets exactly one line."""
    return value
