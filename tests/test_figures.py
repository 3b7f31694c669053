"""`make figures` at tiny size: the gallery script runs every command end to end, so it cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import png_array

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gallery_script_runs_every_figure_at_tiny_size(tmp_path):
    out = tmp_path / "course"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "figures.py"), "--tiny", "--out", str(out), "--registry", str(tmp_path / "registry")],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    page = (out / "course.md").read_text()
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import figures
    finally:
        sys.path.pop(0)
    for fig in figures.figures():
        assert f"### {fig.title}" in page
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page)
    assert len(linked) >= len(figures.figures())
    for link in linked:
        image = png_array(out / link)
        assert image.size > 0 and image.std() > 0, link  # drawn, not a blank canvas
    blocks = re.findall(r"```bash\n((?:diffcli [^\n]+\n)+)```", page)
    assert len(blocks) == len(figures.figures()) and all(str(tmp_path) not in b for b in blocks)  # paths shown relative to the page
    assert sum(len(b.splitlines()) for b in blocks) == sum(1 + len(fig.before) for fig in figures.figures())
    assert "| class | n | accuracy |" in page and "Overall accuracy" in page  # the eval table
