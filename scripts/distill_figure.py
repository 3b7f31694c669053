"""The teacher-vs-student figure of docs/performance.md: the embedded `mnist` (its defaults, then 1, 2, 4 and 8
DDIM steps) beside its 4-step student `mnist-fast` at the same step counts, every class, the same seeds.

    python scripts/distill_figure.py --out docs/performance/distill.png [--teacher mnist --student mnist-fast]

Each column is one `diffcli sample` command (printed); `make pretrained` runs this after packaging mnist-fast.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from diffcli.io.atomic import atomic_write_bytes

STEPS = (1, 2, 4, 8)
HEADER = 30


def columns(teacher: str, student: str) -> list[tuple[str, list[str]]]:
    """(caption, `diffcli sample` arguments) per column: the teacher's defaults, then each step count."""
    cols = [(f"{teacher}\ndefaults", ["-m", teacher])]
    for k in STEPS:
        cols += [(f"{teacher}\n{k} step{'s' * (k > 1)}", ["-m", teacher, "--steps", str(k)])]
        cols += [(f"{student}\n{k} step{'s' * (k > 1)}", ["-m", student, "--steps", str(k)])]
    return cols


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--teacher", default="mnist")
    parser.add_argument("--student", default="mnist-fast")
    parser.add_argument("--seed", default="0")
    args = parser.parse_args()
    images = []
    with tempfile.TemporaryDirectory() as scratch:
        for i, (caption, model_args) in enumerate(columns(args.teacher, args.student)):
            path = Path(scratch) / f"{i}.png"
            command = [sys.executable, "-m", "diffcli", "sample", *model_args, "-n", "1", "--seed", args.seed]
            print("diffcli " + " ".join(command[3:]), file=sys.stderr)
            subprocess.run([*command, "--device", "cpu", "-q", "-o", str(path)], check=True)
            images.append((caption, Image.open(path).convert("L")))
    width = sum(image.width + 6 for _, image in images)
    height = max(image.height for _, image in images) + HEADER
    figure = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(figure)
    x = 0
    for caption, image in images:
        draw.multiline_text((x + 2, 0), caption, fill=0, spacing=2)
        figure.paste(image, (x, HEADER))
        x += image.width + 6
    args.out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    figure.save(buffer, format="PNG")
    atomic_write_bytes(args.out, buffer.getvalue())
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
