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
            lines.append(f"| `{a.name.upper()}` | {'required' if a.required else _cell(a.default)} | {_cell(getattr(a, 'help', '') or '')} |")
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
