"""Startup stays light: the CLI and --help never import torch, and the commands checked succeed."""

import subprocess
import sys
from pathlib import Path


def _probe(code: str) -> tuple[int, bool]:
    """Run `code` in a fresh interpreter; it sets `status` (a command's exit code from `run`).
    Returns (status, whether torch got imported)."""
    probe = f"import sys\n{code}\nsys.stdout = sys.__stdout__\nprint()\nprint(status, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    status, torch_loaded = done.stdout.split()[-2:]
    return int(status), torch_loaded == "True"


def _command(args: list[str]) -> str:
    return f"from diffcli.cli.app import run\nstatus = run({args!r})"


def test_importing_the_cli_does_not_import_torch():
    assert _probe("import diffcli.cli.app\nstatus = 0") == (0, False)


def test_help_does_not_import_torch():
    for args in (["--help"], ["noise", "--help"], ["denoise", "--help"], ["models", "--help"]):
        assert _probe(_command(args)) == (0, False), args


def test_a_failing_command_is_seen():  # the probe reads the exit code, so a broken command cannot pass
    status, _ = _probe(_command(["noise", "--no-such-option"]))
    assert status == 2


def test_noise_runs_without_torch(tmp_path: Path):
    out = tmp_path / "noise.png"
    command = _command(["noise", "builtin:digit", "-t", "10", "--seed", "0", "-o", str(out)])
    code = "import io\nsys.stdout = io.TextIOWrapper(io.BytesIO())\n" + command
    assert _probe(code) == (0, False)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
