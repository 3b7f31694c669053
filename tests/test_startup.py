"""Startup stays light: the CLI and --help never import torch."""

import subprocess
import sys


def _imports_torch(code: str) -> bool:
    probe = f"import sys\n{code}\nprint('torch' in sys.modules)"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "True"


def test_importing_the_cli_does_not_import_torch():
    assert not _imports_torch("import diffcli.cli.app")


def test_help_does_not_import_torch():
    for args in ([" --help"], ["noise", "--help"], ["denoise", "--help"], ["models", "--help"]):
        code = f"import sys\nsys.argv=['diffcli', *{args!r}]\nfrom diffcli.cli.app import run\nrun([a.strip() for a in sys.argv[1:]])"
        assert not _imports_torch(code), args


def test_noise_runs_without_torch():
    code = "from diffcli.cli.app import run\nimport sys, io\nsys.stdout = io.TextIOWrapper(io.BytesIO())\nrun(['noise', 'builtin:digit', '-t', '10', '--seed', '0', '-o', __import__('tempfile').mktemp(suffix='.png')])\nsys.stdout = sys.__stdout__"
    assert not _imports_torch(code)
