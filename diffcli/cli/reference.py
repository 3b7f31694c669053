"""The command reference (docs/commands.md), generated from the same Typer objects that print --help,
so the two cannot drift apart. `make docs` rewrites it; a test fails when it is stale."""

from __future__ import annotations

import inspect
from typing import Any


def _commands(group: Any, prefix: str) -> list[tuple[str, Any]]:
    found = []
    for name in sorted(group.commands):
        command = group.commands[name]
        path = f"{prefix} {name}"
        if hasattr(command, "commands"):
            found.append((path, command))
            found.extend(_commands(command, path))
        else:
            found.append((path, command))
    return found


TERMS = [
    "## Terms",
    "",
    "One word for one idea, in every command (and the same names, with underscores, in the Python API,",
    "docs/python.md):",
    "",
    "| term | option | meaning |",
    "|---|---|---|",
    (
        "| timestep | `-t` | a point t in [0, T) of the forward process: `noise -t 500`, `denoise -t 500`, "
        "`sample --init X -t 600` (SDEdit's start) |"
    ),
    (
        "| timesteps T | `--timesteps` | the length of a noise schedule: "
        "`noise --timesteps 300`, `train --timesteps 1000` |"
    ),
    "| steps | `--steps` | how many reverse (sampler) steps to take; `--stride` visits every k-th timestep instead |",
    (
        "| guidance | `-g`, `--guidance` | the classifier-free guidance scale (1 = off), "
        "on every command that generates or denoises |"
    ),
    (
        "| class | `CLASS` or `-c`, `--class` | a class by index or name (`7`, `seven`, `sneaker`), "
        "or a text prompt for text-to-image models; `anagram` and `hybrid` take their two as arguments |"
    ),
    (
        "| Gaussian filter | `--kernel`, `--sigma` | the size (odd) and standard deviation in pixels "
        "of a Gaussian filter: `denoise`'s blur and `hybrid`'s low-pass are both this filter |"
    ),
    (
        "| noise level | `--noise-sigma` | the standard deviation of x + sigma z "
        "for the single-step denoiser (train and denoise) |"
    ),
    (
        "| n | `-n` | images per class or prompt: `sample -n 8` makes 8 of each class asked for "
        "(the total is said before more than 100 are made) |"
    ),
    "| dataset | `--dataset` | mnist, fashion-mnist (or fashion), glyphs, folder:PATH |",
    "",
    "JSON output uses one key per figure: `outputs` (the files written), `seconds` (wall time),",
    "`images_per_second`. Renamed options keep their old spelling, hidden, for one release:",
    "`sample --start` (now `-t`) and `noise --steps` (now `--timesteps`).",
    "",
]


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render() -> str:
    """Markdown for every command: usage, description, arguments and options."""
    import typer

    from diffcli.cli.app import app

    root = typer.main.get_command(app)
    lines = [
        "# Command reference",
        "",
        "Generated from the CLI itself (`make docs`); `diffcli COMMAND --help` shows the same text.",
        "",
        *TERMS,
    ]
    for path, command in _commands(root, "diffcli"):
        lines += [f"## `{path}`", ""]
        doc = inspect.cleandoc(command.help or "")
        if doc:
            lines += [doc, ""]
        if hasattr(command, "commands"):
            lines += ["Subcommands: " + ", ".join(f"`{n}`" for n in sorted(command.commands)), ""]
            continue
        args = [p for p in command.params if p.param_type_name == "argument"]
        opts = [p for p in command.params if p.param_type_name == "option"]
        usage = " ".join([path, "[OPTIONS]", *[a.name.upper() + ("..." if a.nargs == -1 else "") for a in args]])
        lines += [f"Usage: `{usage}`", ""]
        if args or opts:
            lines += ["| argument / option | default | description |", "|---|---|---|"]
        for a in args:
            default = "required" if a.required else _cell(a.default)
            description = _cell(getattr(a, "help", "") or "")
            lines.append(f"| `{a.name.upper()}` | {default} | {description} |")
        for o in opts:
            flags = ", ".join(f"`{f}`" for f in [*o.opts, *o.secondary_opts])
            if o.is_flag:
                default = ""
            elif o.required:
                default = "required"
            elif o.default is None or o.default == [] or o.default == ():
                default = ""
            else:
                default = f"`{_cell(o.default)}`"
            env = f" (env: `{o.envvar}`)" if getattr(o, "envvar", None) else ""
            lines.append(f"| {flags} | {default} | {_cell(o.help or '')}{env} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
