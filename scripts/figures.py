"""`make figures`: every course figure, each made by one `diffcli` command, into docs/course/ and the
gallery page docs/course.md (which this script writes, so the commands on the page are the ones that ran).

    python scripts/figures.py                       # the real gallery (embedded model, MNIST from ../shared/data)
    python scripts/figures.py --tiny --out DIR      # the same script at tiny size (the test suite runs this)
    python scripts/figures.py --embedded-only       # remake only the embedded model's figures (minutes, not
                                                    # hours: after `make pretrained`), keeping Part B's images

Everything runs in a scratch registry (out/figures-registry), so the small models trained on the way
never touch the user's. Seeds are fixed; no seed is picked by hand: where a command makes several
seeds, all of them are shown.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from diffcli.io.atomic import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
COURSE_STARTS = ["960", "900", "840", "780", "690", "390"]  # the course's i_start 1, 3, 5, 7, 10, 20 on 990 -> 0 by 30
COURSE_EPOCH_STEPS = 60000 // 128  # one MNIST epoch of the course recipe (batch 128)
TINY_EPOCH_STEPS = 2  # one epoch in --tiny mode (--limit 32, --batch-size 16)


@dataclass
class Figure:
    """One command and what it shows."""

    key: str
    section: str
    title: str
    argv: list[str]  # diffcli arguments; {out} and {data} are filled in
    caption: str
    shows: list[str] = field(default_factory=list)  # files (in {out}) the page shows; default {key}.png
    json_table: bool = False  # the command prints JSON that the page renders as a table
    before: list[list[str]] = field(
        default_factory=list
    )  # commands run (and shown) first, e.g. the training a sample needs

    @property
    def embedded(self) -> bool:
        """Made with the embedded model alone: no command trains a model or names one trained on the way."""
        return not any(command[0] == "train" or "--model" in command for command in (*self.before, self.argv))


def figures() -> list[Figure]:
    a, b, m = (
        "Part A: sampling, denoising and illusions",
        "Part B: training UNets from scratch",
        "The notebook's analysis, measured",
    )
    starts = [arg for s in COURSE_STARTS for arg in ("--start", s)]

    def sdedit(init: str, out: str) -> list[str]:
        """The course's SDEdit sweep of `init` towards a 7 (its i_start values on the 990 -> 0 by 30 schedule)."""
        flags = "--class 7 --stride 30 --sampler ddpm --guidance 2 -n 2 --seed 0".split()
        return ["sample", "--init", init, *flags[:2], *starts, *flags[2:], "-o", out]

    return [
        Figure(
            "noise-strip",
            a,
            "Forward process at t = 250, 500, 750",
            "noise builtin:house -t 250 -t 500 -t 750 --seed 1 -o {out}/noise-strip.png".split(),
            "x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps on the linear "
            "schedule (T = 1000): by t = 750 little of the image is left.",
        ),
        Figure(
            "denoise-compare",
            a,
            "Classical, one-step and iterative denoising",
            ["denoise", "builtin:digit", "--compare", "-t", "500", "--seed", "1", "-o", "{out}/denoise-compare.png"],
            "The same noisy digit (t = 500) cleaned three ways: the reverse loop (iterative), one "
            "noise estimate (one-step), and a Gaussian blur. Blur removes noise and detail alike.",
        ),
        Figure(
            "cfg-off",
            a,
            "Sampling from pure noise, no guidance",
            ["sample", "-n", "4", "--guidance", "1", "--seed", "0", "-o", "{out}/cfg-off.png"],
            "Four samples per class with the class as the only condition (CFG scale 1).",
        ),
        Figure(
            "cfg-on",
            a,
            "Classifier-free guidance (scale 5)",
            ["sample", "-n", "4", "--guidance", "5", "--seed", "0", "-o", "{out}/cfg-on.png"],
            "The same seeds with eps = eps_u + 5 (eps_c - eps_u): "
            "strokes get bolder and more typical; variety shrinks.",
        ),
        Figure(
            "sdedit-sketch",
            a,
            "SDEdit on a hand-drawn sketch (the course's i_start sweep)",
            sdedit("{out}/sketch.png", "{out}/sdedit-sketch.png"),
            "A few Pillow strokes noised to t = 960 ... 390 (i_start 1, 3, 5, 7, 10, 20 on the course's "
            "990 -> 0 by 30 schedule), then denoised as a 7. The later the start, the more of the sketch survives.",
        ),
        Figure(
            "sdedit-digit",
            a,
            "SDEdit on a real digit",
            sdedit("builtin:digit", "{out}/sdedit-digit.png"),
            "The same sweep from a clean 7: early starts invent a new 7, late ones keep this one.",
        ),
        Figure(
            "img2img-7-to-1",
            a,
            "Class-conditional image-to-image: a 7 pushed towards 1",
            [
                "sample",
                "--init",
                "builtin:digit",
                "--class",
                "1",
                *starts,
                "--stride",
                "30",
                "--sampler",
                "ddpm",
                "--guidance",
                "2",
                "-n",
                "2",
                "--seed",
                "0",
                "-o",
                "{out}/img2img-7-to-1.png",
            ],
            "The course's text-conditional image-to-image, with a class "
            "as the prompt: the start decides how much of the 7 is kept.",
        ),
        Figure(
            "inpaint",
            a,
            "Inpainting",
            (
                "sample --init builtin:digit --mask {out}/mask.png --class 7 --guidance 2 -n 4 "
                "--seed 0 -o {out}/inpaint.png"
            ).split(),
            "The top half (white in the mask) is regenerated; after every step the bottom "
            "half is put back, noised to the step's t, so the result must agree with it.",
        ),
        Figure(
            "anagram-rot180",
            a,
            "Visual anagram: 6 that reads as 9 upside down",
            ["anagram", "6", "9", "--view", "rot180", "-n", "6", "--seed", "0", "-o", "{out}/anagram-rot180.png"],
            "eps = 0.5 eps(x_t, 6) + 0.5 R^-1(eps(R(x_t), 9)), each CFG-guided. Every seed is "
            "shown: illusions fail often, which is why `eval --task anagram` measures the rate.",
        ),
        Figure(
            "anagram-flip",
            a,
            "Visual anagram with the course's vertical flip: 1 / 7",
            ["anagram", "1", "7", "--view", "flip", "-n", "6", "--seed", "0", "-o", "{out}/anagram-flip.png"],
            "The course's view (upside down, a vertical flip) on a pair of digits.",
        ),
        Figure(
            "hybrid",
            a,
            "Hybrid image: 8 from afar, 3 up close",
            ["hybrid", "8", "3", "--explain", "-n", "3", "--seed", "0", "-o", "{out}/hybrid.png"],
            "eps = lowpass(eps(x_t, 8)) + highpass(eps(x_t, 3)), each CFG-guided (scale 5), with a Gaussian "
            "of sigma 1.75 px (kernel 13) and FAR alone for the first 10 % of the reverse process: `hybrid`'s "
            "defaults at 28 px, chosen by the study in [illusions.md](illusions.md). Columns: the hybrid, its "
            "low-pass (what you see from afar) and its high-pass (centred on grey). By the scorer 8 / 3 works "
            "for 50 % of seeds; over all 90 pairs 33 %, and by eye a hybrid is weaker than its rate.",
        ),
        Figure(
            "hybrid-course-filter",
            a,
            "The course's filter at 28 px: 1 from afar, 7 up close",
            (
                "hybrid 1 7 --kernel 15 --sigma 0.875 --far-first 0 --guidance 2 --explain -n 3 "
                "--seed 0 -o {out}/hybrid-course-filter.png"
            ).split(),
            "The course's Gaussian (kernel 33, sigma 2 at 64 px) scaled to 28 px is kernel 15, sigma 0.875: "
            "at this size it keeps too much, the far prompt takes the whole image and the near one never shows "
            "(over all 90 pairs, with the model's own CFG 3 in 0.2:0.7: 4 % success, far "
            'read right 90 %, near 10 %; `make illusions`, the "before" column).',
        ),
        Figure(
            "denoiser-train",
            b,
            "B.1: the single-step denoiser, trained at sigma = 0.5",
            (
                "train --preset denoiser --dataset mnist --data-dir {data} --width 32 --epochs 1 "
                "--limit 20000 --batch-size 64 --lr 1e-3 --name course-denoiser --seed 0 --force "
                "-q"
            ).split(),
            "The course's denoiser UNet (BatchNorm) mapping x + 0.5 z to x; width 32 and "
            "20,000 images instead of 128 and 5 epochs, to stay within minutes on a CPU. "
            "Left: its loss; right: noisy and denoised test digits after the epoch.",
            shows=["course-denoiser/loss.png", "course-denoiser/samples-epoch-001.png"],
        ),
        Figure(
            "denoiser-sweep",
            b,
            "B.1: the denoiser at sigma 0 ... 1 (out of distribution)",
            (
                "denoise builtin:digit --model course-denoiser --noise-sigma 0 --noise-sigma 0.2 "
                "--noise-sigma 0.4 --noise-sigma 0.5 --noise-sigma 0.6 --noise-sigma 0.8 "
                "--noise-sigma 1.0 --seed 0 -o {out}/denoiser-sweep.png"
            ).split(),
            "Trained only at sigma = 0.5: up to about 0.6 the digit comes back "
            "clean; at 0.8 and 1.0, noise levels it never saw, it breaks up.",
        ),
        Figure(
            "time-train",
            b,
            "B.2: a time-conditioned (unconditional) DDPM, samples by epoch",
            (
                "train --cond time --dataset mnist --data-dir {data} --epochs 5 --limit 20000 "
                "--name course-time --seed 0 --force -q"
            ).split(),
            "Samples after epochs 1 and 5 (the course's grids come at epochs 1, 5, 10, 15, 20) and the "
            "loss; the course trains 20 epochs on all 60,000 digits, this is a short run of the same idea.",
            shows=["course-time/samples-epoch-001.png", "course-time/samples-epoch-005.png", "course-time/loss.png"],
        ),
        Figure(
            "course-class-1",
            b,
            "B.3: the course's class-conditioned UNet after epoch 1 (DDPM 300, CFG 5)",
            ["sample", "--model", "course-class", "-n", "4", "--seed", "0", "-o", "{out}/course-class-1.png"],
            "The course's own recipe, `--preset course`: its BatchNorm UNet (width 64), one-hot classes that scale "
            "the features, the class dropped 10 % of the time; linear T = 300, eps-prediction, batch 128, Adam 1e-3 "
            "decayed by 0.1^(1/20) per epoch over the 20 planned epochs, stopped after the first (`--max-steps`, a "
            "resumable checkpoint). Sampled as in the course: 300 DDPM steps, CFG 5, four seeds per class. One epoch "
            "is not enough for every class to be reliable: how well the weakest digits (the 6 and 7 here) read after "
            "it depends on the training seed (seed 0: 91 %, the 7 at 50 %, in this gallery's run, and 95 %, the 7 at "
            "60 %, in a later run on another CPU; seed 1: 85 %, the 7 at 40 %, by `diffcli eval -n 10`), and so it "
            "does in an independent implementation of the recipe ([performance.md](performance.md)).",
            before=[
                [
                    "train",
                    "--preset",
                    "course",
                    "--dataset",
                    "mnist",
                    "--data-dir",
                    "{data}",
                    "--epochs",
                    "20",
                    "--max-steps",
                    str(COURSE_EPOCH_STEPS),
                    "--name",
                    "course-class",
                    "--seed",
                    "0",
                    "--force",
                    "-q",
                ]
            ],
        ),
        Figure(
            "course-class-5",
            b,
            "B.3: the course's class-conditioned UNet after epoch 5",
            ["sample", "--model", "course-class", "-n", "4", "--seed", "0", "-o", "{out}/course-class-5.png"],
            "The same run continued to the end of epoch 5 (`--resume` continues exactly), the same "
            "seeds. Its scores per epoch are in [performance.md](performance.md) (`make bench-quality`).",
            before=[["train", "--name", "course-class", "--resume", "--max-steps", str(5 * COURSE_EPOCH_STEPS), "-q"]],
        ),
        Figure(
            "chain",
            b,
            "The reverse chain (the notebook's generation steps)",
            "sample --class 3 --class 8 --chain --guidance 2 --seed 0 -o {out}/chain.png".split(),
            "x_t at ten evenly spaced steps of the chain, then the result: "
            "the digit's shape settles long before the noise is gone.",
        ),
        Figure(
            "eval",
            m,
            "Per-class scores, best and worst class",
            ["eval", "-n", "100", "--guidance", "2", "--data-dir", "{data}", "--json"],
            "100 samples per class with the model's own sampler, graded by a classifier trained on "
            "MNIST; FID in that classifier's feature space beside the real-vs-real floor at the same n.",
            json_table=True,
        ),
        Figure(
            "eval-chain",
            m,
            "When does a digit become recognisable?",
            (
                "eval --task chain -n 20 --sampler ddpm --steps 100 --guidance 1 --data-dir "
                "{data} --plot {out}/eval-chain.png -q"
            ).split(),
            "The classifier's verdict at every step of a 100-step DDPM chain without guidance, "
            "on the clean estimate x0_t and on the noisy x_t itself (what you see when you watch "
            "the chain). The class is in the clean estimate from the first step; the noisy image "
            "reads as its class only about 80 % of the way down (the notebook guessed 70 %).",
        ),
    ]


GPU_COMMANDS = [
    (
        "Register DeepFloyd IF (once; needs `pip install 'diffcli[hub]'`, "
        "an accepted licence and `huggingface-cli login`)",
        "diffcli models add if --hub DeepFloyd/IF-I-XL-v1.0 --upscaler DeepFloyd/IF-II-L-v1.0",
    ),
    ("A.1.1 forward process on a photo", "diffcli noise campanile.png --size 64 -t 250 -t 500 -t 750 -o strip.png"),
    (
        "A.1.3-A.1.5 one-step and iterative denoising (the course's strided 990 -> 0 by 30)",
        "diffcli denoise campanile.png --model if --compare -t 690 --stride 30 -o compare.png",
    ),
    (
        "A.1.5 sampling from pure noise, and A.1.6 CFG (scale 7)",
        "diffcli sample --model if --prompt 'a high quality photo' "
        "-n 5 --stride 30 --guidance 7 --upscale -o samples.png",
    ),
    (
        "A.1.7 SDEdit sweep (i_start 1, 3, 5, 7, 10, 20)",
        "diffcli sample --model if --init campanile.png --prompt 'a high quality photo' "
        + " ".join(f"--start {s}" for s in COURSE_STARTS)
        + " --stride 30 --guidance 7 -o sdedit.png",
    ),
    (
        "A.1.7.2 inpainting",
        "diffcli sample --model if --init campanile.png --mask top.png "
        "--prompt 'a high quality photo' --guidance 7 -o inpaint.png",
    ),
    (
        "A.1.8 visual anagram",
        "diffcli anagram 'an oil painting of an old man' 'an oil painting of people "
        "around a campfire' --model if --view flip --guidance 7 -n 4 --out-dir anagrams/",
    ),
    (
        "A.1.9 hybrid image (kernel 33, sigma 2)",
        "diffcli hybrid 'a lithograph of a skull' 'a lithograph of waterfalls' "
        "--model if --kernel 33 --sigma 2 --guidance 7 --explain -o hybrid.png",
    ),
]


# ----- drawing the inputs the course draws by hand ---------------------------------------------------
def draw_inputs(out: Path) -> None:
    """A rough hand-drawn 7 (a few strokes) and an inpainting mask (white top half = regenerate)."""
    sketch = Image.new("L", (28, 28), 0)
    draw = ImageDraw.Draw(sketch)
    draw.line([(6, 7), (21, 6), (19, 12), (14, 23)], fill=255, width=3, joint="curve")
    draw.line([(10, 15), (20, 14)], fill=200, width=2)
    sketch.save(out / "sketch.png")
    mask = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(mask).rectangle([0, 0, 27, 13], fill=255)
    mask.save(out / "mask.png")


# ----- tiny mode: the same commands, shrunk --------------------------------------------------------------
def _set(argv: list[str], flag: str, value: str | None) -> list[str]:
    """argv with every `flag VALUE` removed, then `flag value` appended (value None: just removed)."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == flag:
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out + ([flag, value] if value is not None else [])


def shrink(argv: list[str]) -> list[str]:
    """Tiny sizes for the test: glyphs instead of MNIST, a few steps, one sample per class."""
    command = argv[0]
    if "--max-steps" in argv:  # whole epochs of the full data -> the same number of tiny epochs
        steps = int(argv[argv.index("--max-steps") + 1])
        argv = _set(argv, "--max-steps", str(max(1, steps // COURSE_EPOCH_STEPS) * TINY_EPOCH_STEPS))
    if command == "train" and "--resume" in argv:
        return argv
    if command == "train":
        argv = _set(_set(argv, "--dataset", "glyphs"), "--data-dir", None)
        for flag, value in (("--limit", "32"), ("--width", "8"), ("--batch-size", "16")):  # 2 steps an epoch
            argv = _set(argv, flag, value)
        return argv
    if command in ("sample", "anagram", "hybrid", "eval") or (command == "denoise" and "--compare" in argv):
        argv = _set(_set(argv, "--stride", None), "--steps", "2")
    if command in ("anagram", "hybrid", "eval") or (command == "sample" and "-n" in argv):
        argv = _set(argv, "-n", "1")
    if command == "eval":
        argv = _set(argv, "--data-dir", None)
    return argv


# ----- running and writing the page ----------------------------------------------------------------------
def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "diffcli", *argv], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"figures: `diffcli {' '.join(argv)}` failed ({done.returncode}):\n{done.stderr[-3000:]}")
    print(f"figures: {time.perf_counter() - began:6.1f} s  diffcli {' '.join(argv)}", file=sys.stderr, flush=True)
    return done


def eval_table(report: dict) -> str:
    rows = ["| class | n | accuracy | confidence | mistaken for |", "|---|---|---|---|---|"]
    for c in report["classes"]:
        rows.append(
            f"| {c['label']} | {c['n']} | {100 * c['accuracy']:.1f}% | "
            f"{100 * c['confidence']:.1f}% | {c['mistaken_for'] or ''} |"
        )
    fid = report["fid"]
    rows += [
        "",
        f"Overall accuracy {100 * report['accuracy']:.1f}% over {report['n']} samples ({report['sampler']}, "
        f"{report['steps']} steps, CFG {report['guidance']:g}); best class {report['best']}, worst "
        f"{report['worst']} (lowest class accuracy {100 * report['min_class_accuracy']:.1f}%). FID "
        f"{fid['value']:.2f} against a real-vs-real floor of {fid['floor']:.2f} at n = {fid['n']}; graded by "
        f"{report['classifier']['name']} (test accuracy {100 * report['classifier']['test_accuracy']:.2f}%).",
    ]
    return "\n".join(rows)


def page(
    done: list[tuple[Figure, list[list[str]], str]],
    out: Path,
    data: str,
    wall: float,
    docs_relative: str,
    embedded_only: bool = False,
) -> str:
    when = (
        f"`scripts/figures.py`; the figures of the embedded model were remade on {time.strftime('%Y-%m-%d')} by "
        f"`--embedded-only` in {wall / 60:.1f} minutes on a CPU, Part B's training figures are from the last full run"
        if embedded_only
        else f"`scripts/figures.py`; this run took {wall / 60:.1f} minutes on a CPU"
    )
    lines = [
        "# The course, reproduced",
        "",
        "Every figure below was made by the `diffcli` commands printed above it, by `make figures`",
        f"({when}). The class-conditional model is the",
        "embedded `mnist` model; Part B's small models are trained on the way with short recipes, and the course's",
        "own class-conditioned UNet with its own recipe (5 of its 20 epochs: most of this page's time). Seeds are",
        "fixed and every generated seed is shown: nothing here is hand-picked. `$MNIST` is a folder holding",
        "MNIST (a torchvision root or the four IDX files); without `--data-dir`, diffcli downloads it.",
        "",
    ]
    section = None
    for fig, commands, extra in done:
        if fig.section != section:
            section = fig.section
            lines += [f"## {section}", ""]
        shown = [
            " ".join(["diffcli", *(f"'{a}'" if " " in a else a for a in command)])
            .replace(str(out), docs_relative)
            .replace(data, "$MNIST")
            for command in commands
        ]
        lines += [f"### {fig.title}", "", "```bash", *shown, "```", "", fig.caption, ""]
        if fig.json_table:
            lines += [extra, ""]
        for name in fig.shows if (fig.shows or fig.json_table) else [f"{fig.key}.png"]:
            lines += [f"![{fig.title}]({docs_relative}/{name})", ""]
    lines += [
        "## Text-to-image (DeepFloyd IF): commands for a GPU",
        "",
        "These need the IF weights (a GPU with about 16 GB, see "
        "[deepfloyd-if.md](deepfloyd-if.md)); they are not run by",
        "`make figures`. The settings are the course's: strided "
        "timesteps 990 -> 0 by 30, CFG 7, i_start 1-20, a 33 / 2 blur.",
        "",
    ]
    for title, command in GPU_COMMANDS:
        lines += [f"- {title}:", "", "  ```bash", f"  {command}", "  ```", ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="Rebuild the course gallery (docs/course.md and docs/course/).")
    parser.add_argument(
        "--tiny", action="store_true", help="tiny models and few steps (a check of the script, not a gallery)"
    )
    parser.add_argument("--out", default=str(REPO / "docs" / "course"), help="folder for the images")
    parser.add_argument(
        "--page",
        default=None,
        help="where to write the Markdown page (default: docs/course.md, or OUT/course.md with --tiny)",
    )
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("MNIST_DIR", str(REPO.parent / "shared" / "data")),
        help="MNIST (a torchvision root or IDX folder)",
    )
    parser.add_argument(
        "--registry",
        default=str(REPO / "out" / "figures-registry"),
        help="scratch registry for the models trained on the way",
    )
    parser.add_argument(
        "--embedded-only",
        action="store_true",
        help=(
            "remake only the figures of the embedded model; keep the images of the models trained on the way "
            "from the last full run in OUT"
        ),
    )
    args = parser.parse_args()

    out = Path(args.out).resolve()
    if out.exists() and not out.is_dir():
        raise SystemExit(f"figures: --out {out} is a file, not a folder: give a folder for the images")
    if (
        args.embedded_only
    ):  # the kept figures must be there, or the page would link to nothing (checked before anything is written)
        missing = [
            name
            for fig in figures()
            if not fig.embedded
            for name in fig.shows or [f"{fig.key}.png"]
            if not (out / name).is_file()
        ]
        if missing:
            raise SystemExit(
                "figures: --embedded-only keeps Part B's images, but "
                f"{out} lacks {', '.join(missing)}: run without it once"
            )
    out.mkdir(parents=True, exist_ok=True)
    registry = Path(args.registry).resolve()
    if registry.exists():
        shutil.rmtree(registry)
    env = {**os.environ, "DIFFCLI_HOME": str(registry), "NO_COLOR": "1", "DIFFCLI_DEVICE": "cpu"}
    env.pop("DIFFCLI_MODEL", None)
    began = time.perf_counter()
    draw_inputs(out)
    if args.tiny:  # a tiny class model stands in for the embedded one
        run(shrink(["train", "--dataset", "mnist", "--name", "tiny", "--set-default", "-q"]), env)
    done = []
    for fig in figures():
        commands = [[a.format(out=out, data=args.data_dir) for a in command] for command in (*fig.before, fig.argv)]
        if args.tiny:
            commands = [shrink(command) for command in commands]
        if args.embedded_only and not fig.embedded:
            done.append((fig, commands, ""))  # shown with the image of the last full run
            continue
        for command in commands[:-1]:
            run(command, env)
        argv = commands[-1]
        result = run(argv, env)
        extra = ""
        if fig.json_table:
            extra = eval_table(json.loads(result.stdout.strip().splitlines()[-1]))
        if argv[0] == "train":  # its artifacts are the figure: copy them out of the scratch registry
            name = argv[argv.index("--name") + 1]
            target = out / name
            target.mkdir(exist_ok=True)
            for shown in fig.shows:
                source = registry / "models" / name / "train" / Path(shown).name
                if source.exists():
                    shutil.copyfile(source, target / source.name)
                elif not args.tiny:
                    raise SystemExit(f"figures: {source} was not written by `diffcli {' '.join(argv)}`")
        done.append((fig, commands, extra))
    wall = time.perf_counter() - began
    page_path = Path(args.page) if args.page else (out / "course.md" if args.tiny else REPO / "docs" / "course.md")
    relative = os.path.relpath(out, page_path.parent)
    atomic_write_text(page_path, page(done, out, args.data_dir, wall, relative, args.embedded_only))
    print(f"figures: {len(done)} figures in {wall / 60:.1f} min; wrote {page_path} and {out}/", file=sys.stderr)


if __name__ == "__main__":
    main()
