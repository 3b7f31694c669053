"""docs/commands.md is generated from the CLI; it must match what --help says now."""

from pathlib import Path

from diffcli.cli.reference import render

DOC = Path(__file__).resolve().parents[1] / "docs" / "commands.md"


def test_command_reference_is_in_sync_with_help():
    assert DOC.read_text() == render(), "docs/commands.md is stale: run `make docs`"
