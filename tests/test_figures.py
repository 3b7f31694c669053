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
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "figures.py"),
            "--tiny",
            "--out",
            str(out),
            "--registry",
            str(tmp_path / "registry"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    page = (out / "course.md").read_text()
    figures = _figures_module()
    for fig in figures.figures():
        assert f"### {fig.title}" in page
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page)
    assert len(linked) >= len(figures.figures())
    for link in linked:
        image = png_array(out / link)
        assert image.size > 0 and image.std() > 0, link  # drawn, not a blank canvas
    blocks = re.findall(r"```bash\n((?:diffcli [^\n]+\n)+)```", page)
    assert len(blocks) == len(figures.figures()) and all(
        str(tmp_path) not in b for b in blocks
    )  # paths shown relative to the page
    assert sum(len(b.splitlines()) for b in blocks) == sum(1 + len(fig.before) for fig in figures.figures())
    assert "| class | n | accuracy |" in page and "Overall accuracy" in page  # the eval table


def _figures_module():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import figures
    finally:
        sys.path.pop(0)
    return figures


def test_embedded_only_runs_only_the_embedded_figures_and_keeps_the_rest(tmp_path, monkeypatch):
    """After `make pretrained`: only the embedded model's commands run (the full gallery test above runs
    every command for real; here a stand-in records them), Part B's images are kept byte for byte, and
    the page still shows every figure with its commands."""
    import json
    from types import SimpleNamespace

    from PIL import Image

    figures = _figures_module()
    out = tmp_path / "course"
    kept = [name for fig in figures.figures() if not fig.embedded for name in fig.shows or [f"{fig.key}.png"]]
    for i, name in enumerate(kept):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (8, 8), 40 + 10 * i).save(out / name)
    before = {name: (out / name).read_bytes() for name in kept}
    ran: list[list[str]] = []
    report = {
        "classes": [{"label": "0", "n": 1, "accuracy": 1.0, "confidence": 1.0, "mistaken_for": None}],
        "fid": {"value": 1.0, "floor": 1.0, "n": 1},
        "accuracy": 1.0,
        "n": 1,
        "sampler": "ddim",
        "steps": 2,
        "guidance": 2.0,
        "best": "0",
        "worst": "0",
        "min_class_accuracy": 1.0,
        "classifier": {"name": "stand-in", "test_accuracy": 1.0},
    }

    def run(argv, env):
        ran.append(argv)
        if "-o" in argv:
            Image.new("L", (8, 8), 200).save(argv[argv.index("-o") + 1])
        return SimpleNamespace(stdout=json.dumps(report) + "\n")

    monkeypatch.setattr(figures, "run", run)
    monkeypatch.setattr(
        sys,
        "argv",
        ["figures.py", "--tiny", "--embedded-only", "--out", str(out), "--registry", str(tmp_path / "registry")],
    )
    figures.main()
    assert {name: (out / name).read_bytes() for name in kept} == before
    assert not any(
        "--name" in argv and "course-" in argv[argv.index("--name") + 1] for argv in ran
    )  # Part B trains nothing
    assert not any("--model" in argv for argv in ran)  # and samples no model trained on the way
    assert sum(argv[0] != "train" for argv in ran) == sum(
        fig.embedded for fig in figures.figures()
    )  # every embedded figure ran
    page = (out / "course.md").read_text()
    assert all(f"### {fig.title}" in page for fig in figures.figures()) and "by `--embedded-only`" in page
    assert len(re.findall(r"```bash\n((?:diffcli [^\n]+\n)+)```", page)) == len(figures.figures())
    assert "train --preset course" in page  # Part B's commands are still shown, though not run


def test_embedded_only_refuses_when_part_b_images_are_missing(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "figures.py"),
            "--tiny",
            "--embedded-only",
            "--out",
            str(tmp_path / "course"),
            "--registry",
            str(tmp_path / "registry"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "run without it once" in done.stderr and "course-class-1.png" in done.stderr
    assert not (tmp_path / "course").exists()  # refused before writing anything


def test_an_out_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "course").write_text("not a folder")
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "figures.py"),
            "--tiny",
            "--out",
            str(tmp_path / "course"),
            "--registry",
            str(tmp_path / "registry"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "is a file, not a folder" in done.stderr
