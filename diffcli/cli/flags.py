"""Library errors name parameters as the Python API spells them, in backticks ("`steps` must be at least
1"); on the command line the same text should name the flag ("--steps must be at least 1"). This module
finds the command being run and rewrites each backticked parameter name into that command's flag."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

NAME = re.compile(r"`([a-z][a-z0-9_]*)`")


def flags_of(app: Any, args: Sequence[str]) -> dict[str, str]:
    """{parameter name: its first flag (or its metavar, for arguments)} of the (sub)command in args."""
    import typer.main

    command = typer.main.get_command(app)
    for token in args:
        commands = getattr(command, "commands", None)
        if commands is None:
            break
        if token in commands:
            command = commands[token]
    mapping: dict[str, str] = {}
    for param in getattr(command, "params", []):
        if param.name is None:
            continue
        if getattr(param, "param_type_name", "") == "option":
            mapping[param.name] = param.opts[0]
        else:
            mapping[param.name] = param.name.upper()
    return mapping


def render(text: str, mapping: dict[str, str]) -> str:
    """`text` with each backticked parameter known to the command replaced by its flag."""
    return NAME.sub(lambda m: mapping.get(m.group(1), m.group(0)), text)
