"""`make bench-quality`: time to quality of the default recipe beside the course's, on MNIST.

Every model is trained with `diffcli train` and scored with `diffcli eval` (per-class accuracy by the
dataset's scoring classifier, FID in its feature space beside the real-data floor at the same n), in
one scratch registry, one command after the other, so only the training commands' wall time counts as
training time and the scoring never does.

  default   complete `diffcli train` runs at several --epochs (each with its own learning-rate
            schedule: what a user gets for that wait), the default --epochs among them
  long      `diffcli train --epochs 20`, scored along the way (chunks of `--max-steps` continued
            with `--resume`, which is exact): longer training keeps improving or at least holds
  course    `diffcli train --preset course` (20 epochs planned, as in the course), scored after
            each of its first epochs (the same chunking): the course's UNet, linear T = 300, eps,
            DDPM 300 + CFG 5
  levers    complete short default runs (`--lever-epochs`, 1) with one set of extra flags each
            (`--levers`), the first (fp32, the recipe before them) the baseline every lever's speed and quality is
            compared with, measured in the same run; `--add-levers` keeps the earlier lever rows
            and adds the run's after them (its own first lever its baseline)

Writes bench/quality.json (every row with its commands, wall times, img/s and /proc/loadavg before
and after each command), bench/quality.md, and docs/performance/time-to-quality.png (accuracy and
FID / floor against training minutes). Time to 98 %: the training minutes of the first checkpoint
reading >= 98 %; the headline is the default's time over the course's.

`--quick` shrinks everything (glyphs data, a few steps: a check of the harness, not figures).
`--sections long` (any of course, default, long, levers) measures only those sections and keeps the others
from the existing bench/quality.json: the summary, table and plot are rebuilt from all of them, and
the table says when each later section was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from diffcli.io.atomic import atomic_write_text  # noqa: E402

PYTHON = sys.executable
DIFFCLI = [PYTHON, "-m", "diffcli"]
TARGET_ACCURACY = 0.98
GOAL = {"accuracy": 0.98, "min_class_accuracy": 0.95, "fid_over_floor": 1.5}
SECTIONS = ("course", "default", "long", "levers")
RECIPE_KEYS = ("objective", "timestep_sampling", "precision")  # shown beside each row's recipe name
# label=flags; the first is the baseline (the recipe before the levers: fp32). Each is one lever of time
# to quality on a CPU.
LEVERS = (
    "fp32=--precision fp32; bf16=--precision bf16; bf16 + channels-last=--precision bf16 --channels-last; "
    "bf16, lr 4e-3=--precision bf16 --lr 0.004; bf16, batch 64=--precision bf16 --batch-size 64; "
    "bf16, flow=--precision bf16 --objective flow; bf16, flow, lr 4e-3=--precision bf16 --objective flow --lr 0.004; "
    "bf16, 40000 images=--precision bf16 --limit 40000; "
    "bf16, flow, lr 4e-3, 40000 images=--precision bf16 --objective flow --lr 0.004 --limit 40000; "
    "bf16, flow, 2 epochs=--precision bf16 --objective flow --epochs 2"
)


def parse_levers(text: str) -> list[tuple[str, list[str]]]:
    """'label=flags; label=flags' -> [(label, [flag, ...])]; the first is the baseline (FLAGS may be empty)."""
    levers = []
    for item in (part.strip() for part in text.split(";")):
        if not item:
            continue
        label, sep, flags = item.partition("=")
        if not sep or not label.strip():
            raise SystemExit(f"bench-quality: --levers item {item!r}: write it as LABEL=FLAGS (FLAGS may be empty)")
        words = flags.split()
        if "--epochs" in words:  # checked here, before any run: lever_runs takes the value as the run's length
            i = words.index("--epochs")
            if i + 1 >= len(words) or not words[i + 1].isdigit() or int(words[i + 1]) < 1:
                raise SystemExit(
                    f"bench-quality: --levers item {item!r}: --epochs needs a whole number of epochs, at least 1"
                )
        levers.append((label.strip(), words))
    if not levers:
        raise SystemExit("bench-quality: --levers is empty: give at least one LABEL=FLAGS")
    return levers


def read_kept(path: Path, purpose: str) -> dict[str, Any]:
    """The earlier results that a partial run (--sections) keeps or --render-only draws (`purpose` says
    which, for the error); a file that is not a results object is refused in one line, before anything runs."""
    try:
        kept = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SystemExit(
            f"bench-quality: {purpose} {path}, which cannot be read "
            f"({exc}): restore it from git or measure every section"
        ) from None
    if not isinstance(kept, dict):
        raise SystemExit(f"bench-quality: {path} holds no results object: restore it from git or measure every section")
    return kept


def loadavg() -> list[float]:
    """The 1, 5 and 15-minute load averages (the machine is shared: every figure carries them)."""
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "bench"))
    from run import machine as describe  # the same description as `make bench`

    return describe()


def wait_for_quiet(threshold: float, patience_s: float, poll_s: float = 60.0) -> dict[str, Any]:
    """Wait (up to patience_s) until the 1-minute load average is at most threshold."""
    began = time.time()
    first = loadavg()
    while loadavg() and loadavg()[0] > threshold and time.time() - began < patience_s:
        print(f"bench-quality: load {loadavg()[0]:.2f} > {threshold}: waiting", file=sys.stderr, flush=True)
        time.sleep(poll_s)
    return {
        "threshold": threshold,
        "load_at_start": first,
        "waited_s": round(time.time() - began),
        "load_when_started": loadavg(),
    }


@dataclass
class Command:
    """One command's output, wall time and the load around it."""

    argv: list[str]
    stdout: str
    wall_s: float
    load_before: list[float]
    load_after: list[float]

    def last_json(self) -> dict[str, Any]:
        lines = [line for line in self.stdout.splitlines() if line.strip().startswith("{")]
        return json.loads(lines[-1])

    def describe(self) -> dict[str, Any]:
        return {
            "command": " ".join(self.argv[2:]),
            "wall_s": round(self.wall_s, 1),
            "load_before": self.load_before,
            "load_after": self.load_after,
        }


@dataclass
class Bench:
    env: dict[str, str]
    data: list[str]  # --dataset / --data-dir arguments
    per_class: int
    course_per_class: int
    extra_train: list[str] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    partial: Path | None = None  # every row so far, rewritten after each (an interrupted run keeps them)

    def record(self, results: dict[str, Any], section: str, rows: list[dict[str, Any]]) -> None:
        """Print the row just scored and save every row so far to `partial`."""
        r = rows[-1]
        print(
            f"bench-quality: {r['recipe']} {r['checkpoint']}: {_pct(r['accuracy'])} (lowest {_lowest(r)}), "
            f"FID {r['fid']} (floor {r['fid_floor']}), n = {r['n']}, {r['train_wall_s'] / 60:.1f} min of training",
            file=sys.stderr,
            flush=True,
        )
        if self.partial is not None:
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.partial, json.dumps({**results, section: rows}, indent=2) + "\n")

    def call(self, args: list[str], timeout: int = 4 * 3600) -> Command:
        argv = [*DIFFCLI, *args]
        before = loadavg()
        began = time.perf_counter()
        done = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=timeout, cwd=self.env["BENCH_CWD"]
        )
        elapsed = time.perf_counter() - began
        if done.returncode != 0:
            raise SystemExit(f"bench-quality: {' '.join(argv[2:])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        command = Command(argv, done.stdout, elapsed, before, loadavg())
        print(
            f"bench-quality: {elapsed:7.1f} s  load {before[:1]} -> {command.load_after[:1]}  {' '.join(argv[3:])}",
            file=sys.stderr,
            flush=True,
        )
        return command

    def train(self, name: str, args: list[str], max_steps: int | None, resume: bool) -> Command:
        if resume:
            cmd = ["train", "--name", name, "--resume", "--device", "cpu", "--json", "-q"]
        else:
            cmd = [
                "train",
                *self.data,
                *self.extra_train,
                *args,
                "--name",
                name,
                "--seed",
                "0",
                "--device",
                "cpu",
                "--force",
                "--json",
                "-q",
            ]
        if max_steps is not None:
            cmd += ["--max-steps", str(max_steps)]
        return self.call(cmd)

    def trained_with(self, name: str) -> dict[str, Any]:
        """The recipe fields that tell the default's rows apart across the recipe's history (the
        objective, the timestep sampling, the resolved precision), as the model's config.json saved them."""
        config = json.loads((Path(self.env["DIFFCLI_HOME"]) / "models" / name / "config.json").read_text())
        settings = config["training"]["settings"]
        return {key: settings.get(key) for key in RECIPE_KEYS}

    def score(self, name: str, per_class: int) -> tuple[dict[str, Any], Command]:
        data_dir = self.data[self.data.index("--data-dir") + 1] if "--data-dir" in self.data else None
        cmd = ["eval", "--model", name, "-n", str(per_class), "--device", "cpu", "--json", "-q"]
        if data_dir:
            cmd += ["--data-dir", data_dir]
        command = self.call(cmd)
        report = command.last_json()
        fid = report["fid"]
        scores = {
            "n": report["n"],
            "sampler": f"{report['sampler']} {report['steps']}",
            "guidance": report["guidance"],
            "accuracy": round(report["accuracy"], 4),
            "min_class_accuracy": round(report["min_class_accuracy"], 4),
            "worst": report["worst"],
            "per_class": {c["label"]: round(c["accuracy"], 3) for c in report["classes"]},
            "fid": fid["value"],
            "fid_floor": fid["floor"],
            "fid_over_floor": round(fid["value"] / fid["floor"], 3) if fid.get("floor") else None,
            "generate_s": report["seconds"],
        }
        return scores, command


def steps_per_epoch(preset: str, overrides: dict[str, Any], images: int) -> int:
    from diffcli.training.recipe import settings_for

    return max(1, images // settings_for(preset, overrides).batch_size)


def complete_runs(
    bench: Bench,
    recipe: str,
    args: list[str],
    epochs: list[int],
    per_class: int,
    results: dict[str, Any],
    section: str = "default",
    label: str | None = None,
    rows: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One complete `diffcli train --epochs E` per E, each scored: what a user gets for that wait.
    `label` names the checkpoint instead of its --epochs (a lever's row); `rows` continues a section."""
    rows = [] if rows is None else rows
    for e in epochs:
        name = f"{recipe}-e{e}" if label is None else f"{recipe}-{len(rows)}"
        trained = bench.train(name, [*args, "--epochs", str(e)], None, resume=False)
        done = trained.last_json()
        scores, scored = bench.score(name, per_class)
        rows.append(
            {
                "recipe": recipe,
                "checkpoint": f"--epochs {e}" if label is None else label,
                "flags": " ".join(args),
                "epochs": e,
                "steps": done["step"],
                "train_wall_s": round(trained.wall_s, 1),
                "train_step_s": done["training_seconds"],
                "img_s": done["images_per_second"],
                "trained_with": bench.trained_with(name),
                "train": [trained.describe()],
                "eval": scored.describe(),
                **scores,
            }
        )
        bench.record(results, section, rows)
    return rows


def chunked_run(
    bench: Bench,
    recipe: str,
    args: list[str],
    epochs: list[int],
    per_epoch: int,
    per_class: int,
    results: dict[str, Any],
    section: str,
) -> list[dict[str, Any]]:
    """One run (its schedule planned for its own --epochs), stopped with --max-steps after each of
    `epochs`, scored, then continued with --resume: a checkpoint's time is the sum of its chunks."""
    rows, chunks, name = [], [], recipe
    for i, e in enumerate(epochs):
        trained = bench.train(name, args, e * per_epoch, resume=i > 0)
        chunks.append(trained)
        done = trained.last_json()
        scores, scored = bench.score(name, per_class)
        # each chunk reports its own session's optimiser time and throughput: the checkpoint's are their sums
        sessions = [c.last_json() for c in chunks]
        step_s = sum(d["training_seconds"] for d in sessions)
        images = sum(d["training_seconds"] * d["images_per_second"] for d in sessions)
        rows.append(
            {
                "recipe": recipe,
                "checkpoint": f"epoch {e}",
                "epochs": e,
                "steps": done["step"],
                "train_wall_s": round(sum(c.wall_s for c in chunks), 1),
                "train_step_s": round(step_s, 1),
                "img_s": round(images / step_s, 1) if step_s else None,
                "trained_with": bench.trained_with(name),
                "train": [c.describe() for c in chunks],
                "eval": scored.describe(),
                **scores,
            }
        )
        bench.record(results, section, rows)
    return rows


def lever_runs(
    bench: Bench, levers: list[tuple[str, list[str]]], epochs: int, per_class: int, results: dict[str, Any]
) -> list[dict[str, Any]]:
    """Each lever as a complete `diffcli train --epochs EPOCHS FLAGS`, scored; the baseline among them."""
    rows: list[dict[str, Any]] = []
    for label, flags in levers:
        own = epochs
        if "--epochs" in flags:  # a lever may be a length: its own --epochs replaces the section's
            i = flags.index("--epochs")
            own, flags = int(flags[i + 1]), flags[:i] + flags[i + 2 :]
        complete_runs(bench, "lever", flags, [own], per_class, results, "levers", label=label, rows=rows)
    return rows


def with_levers(
    earlier: list[dict[str, Any]], measured: list[dict[str, Any]], date: str, earlier_date: str | None = None
) -> list[dict[str, Any]]:
    """The levers section after a run: its rows, tagged with the run's date, after the earlier rows that
    `--add-levers` keeps (each run's first row stays the baseline of that run's rows; earlier rows
    without a date get `earlier_date`)."""
    kept = [row if row.get("run") or not earlier_date else {**row, "run": earlier_date} for row in earlier]
    return [*kept, *({**row, "run": date} for row in measured)]


def levers_date(results: dict[str, Any]) -> str | None:
    """When the kept lever rows were measured: the last run that measured levers."""
    dated = [u["date"] for u in results.get("updates", []) if "levers" in u["sections"]]
    return dated[-1] if dated else (results.get("date") if results.get("levers") else None)


def later_updates(updates: list[dict[str, Any]], measured: list[str]) -> list[dict[str, Any]]:
    """The earlier partial runs, less the sections measured again now (their rows are replaced)."""
    kept = [{**u, "sections": [x for x in u["sections"] if x not in measured]} for u in updates]
    return [u for u in kept if u["sections"]]


def time_to(rows: list[dict[str, Any]], accuracy: float) -> dict[str, Any] | None:
    """The quickest checkpoint that reads at least `accuracy`."""
    hits = sorted((r for r in rows if r["accuracy"] >= accuracy), key=lambda r: r["train_wall_s"])
    return hits[0] if hits else None


def meets_goal(row: dict[str, Any]) -> bool:
    return (
        row["accuracy"] >= GOAL["accuracy"]
        and row["min_class_accuracy"] >= GOAL["min_class_accuracy"]
        and (row["fid_over_floor"] or 99) <= GOAL["fid_over_floor"]
    )


def summary(results: dict[str, Any]) -> dict[str, Any]:
    default, course = results.get("default", []), results.get("course", [])
    d98, c98 = time_to(default, TARGET_ACCURACY), time_to(course, TARGET_ACCURACY)
    goal = sorted((r for r in default if meets_goal(r)), key=lambda r: r["train_wall_s"])
    out: dict[str, Any] = {
        "default_time_to_98_s": d98["train_wall_s"] if d98 else None,
        "default_time_to_98_checkpoint": d98["checkpoint"] if d98 else None,
        "course_time_to_98_s": c98["train_wall_s"] if c98 else None,
        "course_time_to_98_checkpoint": c98["checkpoint"] if c98 else None,
        "goal": GOAL,
        "default_time_to_goal_s": goal[0]["train_wall_s"] if goal else None,
        "default_time_to_goal_checkpoint": goal[0]["checkpoint"] if goal else None,
    }
    if d98 and c98:
        out["time_to_98_ratio"] = round(d98["train_wall_s"] / c98["train_wall_s"], 4)
    elif d98 and course:  # the course never reached 98 %: the ratio is at most this
        out["time_to_98_ratio_at_most"] = round(d98["train_wall_s"] / max(r["train_wall_s"] for r in course), 4)
    if goal and c98:
        out["time_to_goal_vs_course_98"] = round(goal[0]["train_wall_s"] / c98["train_wall_s"], 4)
    return out


# ----- report ------------------------------------------------------------------------------------
def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def _lowest(row: dict[str, Any]) -> str:
    """The lowest class's accuracy, naming the class only when one is below the rest (not at 100 %)."""
    low = row["min_class_accuracy"]
    return _pct(low) if low >= 1.0 else f"{_pct(low)} ({row['worst']})"


def _recipe(row: dict[str, Any]) -> str:
    """The row's recipe name with what it trained with (objective, timesteps, precision) where recorded."""
    detail = _detail(row)
    return f"{row['recipe']} ({detail})" if detail else row["recipe"]


def _with_detail(label: str, row: dict[str, Any]) -> str:
    """A plot legend's label with what its rows trained with, where recorded (the default recipe changed)."""
    detail = _detail(row)
    return f"{label}: {detail}" if detail else label


def _detail(row: dict[str, Any]) -> str:
    """'flow, logit-normal, fp32': the recorded recipe fields of a row, '' for a row that has none."""
    kept = row.get("trained_with") or {}
    return ", ".join(str(kept[k]) for k in RECIPE_KEYS if kept.get(k))


def _machine(m: dict[str, Any]) -> str:
    """'AMD EPYC (2 cores, no native bf16, torch 2.14.1, device cpu)': native bf16 is named because two
    CPUs of one name can differ in it, and it decides what `--precision auto` trains in."""
    bf16 = {True: "native bf16, ", False: "no native bf16, "}.get(m.get("native_bf16"), "")  # older records lack it
    return f"{m['cpu']} ({m['cores']} cores, {bf16}torch {m['torch']}, device {m.get('device', 'cpu')})"


def markdown(results: dict[str, Any]) -> str:
    m, s = results["machine"], results["summary"]
    out = [
        f"Measured {results['date']} on {_machine(m)} by `make bench-quality` ({results['wall_s'] / 60:.0f} minutes). "
        f"Load average at the start {results['load']['load_when_started']}, at the end {results['load_at_end']}.",
        "",
        "| recipe | checkpoint | steps | training wall (steps only) | img/s | "
        "accuracy | lowest class | FID (floor), n | FID / floor | sampler |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in ("default", "long", "course"):
        for r in results.get(key, []):
            out.append(
                f"| {_recipe(r)} | {r['checkpoint']} | {r['steps']} | "
                f"{r['train_wall_s'] / 60:.2f} min ({r['train_step_s'] / 60:.2f}) | {r['img_s']} "
                f"| {_pct(r['accuracy'])} | {_lowest(r)} | {r['fid']:.2f} ({r['fid_floor']:.2f}), "
                f"{r['n']} | {r['fid_over_floor']} | {r['sampler']}, CFG {r['guidance']:g} |"
            )
    out.append("")
    for update in results.get("updates", []):
        u = update["machine"]
        out.append(
            f"The {', '.join(update['sections'])} rows were measured later, on {update['date']} on "
            f"{_machine(u)} (`--sections {','.join(update['sections'])}`, {update['wall_s'] / 60:.0f} "
            f"minutes; load average at the start {update['load']['load_when_started']})."
        )
    if results.get("updates"):
        out.append("")
    out += lever_table(results.get("levers", []))
    if s.get("course_time_to_98_s"):
        out.append(
            f"Course recipe to 98 %: {s['course_time_to_98_s'] / 60:.1f} min ({s['course_time_to_98_checkpoint']})."
        )
    else:
        out.append("Course recipe: below 98 % at every checkpoint measured.")
    if s.get("default_time_to_98_s"):
        out.append(
            f"Default recipe to 98 %: {s['default_time_to_98_s'] / 60:.2f} min ({s['default_time_to_98_checkpoint']})."
        )
    if "time_to_98_ratio" in s:
        out.append(f"Time to 98 %, default / course: **{s['time_to_98_ratio']}** (1/{1 / s['time_to_98_ratio']:.0f}).")
    elif "time_to_98_ratio_at_most" in s:
        out.append(
            f"Time to 98 %, default / course: at most {s['time_to_98_ratio_at_most']} (the course did not reach 98 %)."
        )
    if s.get("default_time_to_goal_s"):
        line = (
            "Default recipe to the goal (>= 98 %, every class >= 95 %, FID <= 1.5x floor): "
            f"{s['default_time_to_goal_s'] / 60:.2f} min ({s['default_time_to_goal_checkpoint']})"
        )
        if "time_to_goal_vs_course_98" in s:
            line += f", {s['time_to_goal_vs_course_98']} of the course's time to 98 %"
        out.append(line + ".")
    else:
        out.append("Default recipe: no checkpoint met the goal (>= 98 %, every class >= 95 %, FID <= 1.5x floor).")
    return "\n".join(out) + "\n"


def lever_table(rows: list[dict[str, Any]]) -> list[str]:
    """The levers, each beside the baseline of its run (the run's first row, measured in the same run)."""
    if not rows:
        return []
    baselines: dict[Any, dict[str, Any]] = {}
    for r in rows:
        baselines.setdefault(r.get("run"), r)
    several = len(baselines) > 1
    out = [
        "Levers: complete `diffcli train --epochs E` runs with the flags shown, "
        "the first of each run the baseline, measured one after the other:",
        "",
        "| lever | flags | epochs | training wall | vs baseline | img/s | accuracy | lowest class | FID / floor |"
        + (" run |" if several else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if several else ""),
    ]
    for r in rows:
        base = baselines[r.get("run")]
        out.append(
            f"| {r['checkpoint']} | `{r['flags'] or '(none)'}` | {r['epochs']} | "
            f"{r['train_wall_s'] / 60:.2f} min | {r['train_wall_s'] / base['train_wall_s']:.3f} "
            f"| {r['img_s']} | {_pct(r['accuracy'])} | {_lowest(r)} | {r['fid_over_floor']} |"
            + (f" {r.get('run') or 'first'} |" if several else "")
        )
    return out + [""]


def plot(results: dict[str, Any], path: Path) -> None:
    """Accuracy and FID / floor against training minutes, one line per recipe, stacked."""
    import numpy as np

    from diffcli.io.output_paths import OutputTarget
    from diffcli.io.plot import Series, line_plot
    from diffcli.io.png import write_png

    groups = [
        ("default recipe (complete runs)", results.get("default", [])),
        ("default, --epochs 20 run", results.get("long", [])),
        ("course recipe", results.get("course", [])),
    ]
    groups = [(_with_detail(label, rows[0]), rows) for label, rows in groups if rows]
    minutes = lambda rows: [r["train_wall_s"] / 60 for r in rows]  # noqa: E731
    accuracy = line_plot(
        [Series(label, minutes(rows), [100 * r["accuracy"] for r in rows], markers=True) for label, rows in groups],
        title="accuracy (diffcli eval) vs training minutes",
        xlabel="training minutes (wall)",
        ylabel="accuracy %",
    )
    fid = line_plot(
        [Series(label, minutes(rows), [r["fid_over_floor"] for r in rows], markers=True) for label, rows in groups],
        title="FID / real-data floor vs training minutes",
        xlabel="training minutes (wall)",
        ylabel="FID / floor",
        log_y=True,
    )
    image = np.concatenate([accuracy, fid], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(image, OutputTarget(path), {"subcommand": "bench-quality"})


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="glyphs data and a few steps: check the harness, not figures to quote"
    )
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("DIFFCLI_BENCH_DATA", str(REPO.parent / "shared" / "data")),
        help="a torchvision root holding MNIST",
    )
    parser.add_argument("--default-epochs", default="1,2,5", help="--epochs of the default recipe's complete runs")
    parser.add_argument(
        "--long-epochs", default="1,5,10,20", help="checkpoints of the 20-epoch default run ('' to skip it)"
    )
    parser.add_argument("--course-epochs", default="1,2,3", help="checkpoints of the course recipe")
    parser.add_argument(
        "-n", "--per-class", type=int, default=100, help="eval samples per class for the default recipe"
    )
    parser.add_argument(
        "--course-per-class",
        type=int,
        default=50,
        help="eval samples per class for the course recipe (300 DDPM steps with CFG each)",
    )
    parser.add_argument(
        "--wait-load",
        type=float,
        default=1.0,
        help="wait until the 1-minute load average is at most this before starting",
    )
    parser.add_argument("--wait-max", type=float, default=1800, help="seconds to wait for that at most")
    parser.add_argument(
        "--home",
        default=None,
        help="registry to use (keeps the scoring classifier between runs); default a scratch folder",
    )
    parser.add_argument("--out", default=str(REPO / "bench"), help="folder for quality.json and quality.md")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help="which sections to measure (course, default, long, levers); the others are kept from OUT/quality.json",
    )
    parser.add_argument(
        "--levers", default=LEVERS, help="the levers section's runs: 'LABEL=FLAGS; ...', the first the baseline"
    )
    parser.add_argument(
        "--add-levers",
        action="store_true",
        help="keep OUT/quality.json's lever rows and add this run's after them (its first lever is its own baseline)",
    )
    parser.add_argument("--lever-epochs", type=int, default=1, help="--epochs of every lever's run")
    parser.add_argument(
        "--plot", default=str(REPO / "docs" / "performance" / "time-to-quality.png"), help="where the plot goes"
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help=(
            "measure nothing: rewrite OUT/quality.md and the plot from OUT/quality.json "
            "(after a change to how they are drawn)"
        ),
    )
    args = parser.parse_args()
    if args.render_only:
        source = Path(args.out) / "quality.json"
        if not source.is_file():
            raise SystemExit(f"bench-quality: --render-only draws {source}, which does not exist: measure first")
        results = read_kept(source, "--render-only draws")
        lacking = [key for key in ("date", "machine", "wall_s", "load", "load_at_end") if key not in results]
        if lacking:
            raise SystemExit(
                f"bench-quality: --render-only: {source} lacks {', '.join(lacking)}, so it is "
                "not a complete results file: restore it from git or measure every section"
            )
        results["summary"] = summary(results)
        render(results, Path(args.out), Path(args.plot))
        return
    # A SIGTERM (a timeout, a job killer) unwinds like Ctrl-C, so subprocess.run stops the running command too.
    signal.signal(signal.SIGTERM, _interrupt)
    levers = parse_levers(args.levers)
    if args.add_levers and "levers" not in args.sections.split(","):
        raise SystemExit("bench-quality: --add-levers adds lever rows: give it with --sections levers")
    if args.lever_epochs < 1:
        raise SystemExit(f"bench-quality: --lever-epochs {args.lever_epochs}: give at least 1")
    epochs_of = lambda text: [int(v) for v in text.split(",") if v.strip()]  # noqa: E731
    sections = [v.strip() for v in args.sections.split(",") if v.strip()]
    if not sections or set(sections) - set(SECTIONS):
        raise SystemExit(
            f"bench-quality: --sections {args.sections!r}: give one or more of {', '.join(SECTIONS)}, comma-separated"
        )
    kept: dict[str, Any] = {}
    if set(sections) != set(SECTIONS) and not args.quick:
        previous = Path(args.out) / "quality.json"
        if not previous.is_file():
            raise SystemExit(
                f"bench-quality: --sections {args.sections} keeps the other sections "
                f"of {previous}, which does not exist: measure every section first"
            )
        kept = read_kept(previous, f"--sections {args.sections} keeps the other sections of")

    scratch = Path(tempfile.mkdtemp(prefix="diffcli-bench-quality-"))
    home = Path(args.home) if args.home else scratch / "home"
    env = {**os.environ, "DIFFCLI_HOME": str(home), "NO_COLOR": "1", "BENCH_CWD": str(scratch), "PYTHONPATH": str(REPO)}
    env.pop("DIFFCLI_MODEL", None)
    if args.quick:
        data = ["--dataset", "glyphs"]
        extra = ["--limit", "256", "--batch-size", "32", "--width", "8", "--timesteps", "50"]
        images, per_class, course_per_class = 256, 2, 1
        args.default_epochs, args.long_epochs, args.course_epochs = "1", "1,2", "1"
        levers = levers[:2]
    else:
        if not (Path(args.data_dir) / "MNIST" / "raw").is_dir() and not any(Path(args.data_dir).glob("train-images*")):
            raise SystemExit(
                f"bench-quality needs MNIST: none at {args.data_dir} (pass --data-dir or set DIFFCLI_BENCH_DATA)"
            )
        data = ["--dataset", "mnist", "--data-dir", args.data_dir]
        extra = []
        images, per_class, course_per_class = 60000, args.per_class, args.course_per_class
    partial = REPO / "out" / ("bench-quality-quick" if args.quick else "bench-quality") / "quality.partial.json"
    bench = Bench(env, data, per_class, course_per_class, extra_train=extra, partial=partial)

    run = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine()}
    run["load"] = wait_for_quiet(args.wait_load, 0 if args.quick else args.wait_max)
    # A partial run updates the kept results; its own date, machine and load are listed as an update.
    results: dict[str, Any] = kept or {**run, "quick": args.quick}
    began = time.perf_counter()
    try:
        if not args.quick:  # train the scoring classifier (once per registry) before any timing
            warm = bench.call(
                ["eval", "--model", "mnist", "-n", "1", "--device", "cpu", "--json", "-q", "--data-dir", args.data_dir]
            )
            results["classifier"] = {**warm.last_json().get("classifier", {}), "prepared_in": warm.describe()}
        quick_overrides = {"batch_size": 32} if args.quick else {}
        # The course first: its rows are the baseline every ratio needs, and the slowest to come.
        if "course" in sections:
            per_epoch = steps_per_epoch("course", quick_overrides, images)
            results["course"] = chunked_run(
                bench,
                "course",
                ["--preset", "course"],
                epochs_of(args.course_epochs),
                per_epoch,
                course_per_class,
                results,
                "course",
            )
        if "default" in sections:
            results["default"] = complete_runs(bench, "default", [], epochs_of(args.default_epochs), per_class, results)
        long_epochs = epochs_of(args.long_epochs)
        if "long" in sections and long_epochs:
            per_epoch = steps_per_epoch("default", quick_overrides, images)
            results["long"] = chunked_run(
                bench,
                f"default-e{long_epochs[-1]}",
                ["--epochs", str(long_epochs[-1])],
                long_epochs,
                per_epoch,
                per_class,
                results,
                "long",
            )
        if "levers" in sections:
            measured = lever_runs(bench, levers, args.lever_epochs, per_class, results)
            earlier = kept.get("levers", []) if args.add_levers else []
            results["levers"] = with_levers(earlier, measured, run["date"], levers_date(kept))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    run["wall_s"] = round(time.perf_counter() - began, 1)
    run["load_at_end"] = loadavg()
    if kept:
        replaced = [
            x for x in sections if not (x == "levers" and args.add_levers)
        ]  # added levers leave the earlier run listed
        results["updates"] = later_updates(results.get("updates", []), replaced) + [{"sections": sections, **run}]
    else:
        results.update(run)
    results["summary"] = summary(results)
    # A --quick run checks the harness: its files go to out/ (ignored by git), never over the figures.
    out = REPO / "out" / "bench-quality-quick" if args.quick else Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "quality.json", json.dumps(results, indent=2) + "\n")
    partial.unlink(missing_ok=True)
    render(results, out, out / "time-to-quality.png" if args.quick else Path(args.plot))
    print(f"bench-quality: {run['wall_s'] / 60:.1f} min; wrote {out / 'quality.json'}", file=sys.stderr)


def render(results: dict[str, Any], out: Path, plot_path: Path) -> None:
    """quality.md and the plot from the results (a run's, or quality.json's with --render-only)."""
    table = markdown(results)
    try:
        atomic_write_text(out / "quality.md", table)
        plot(results, plot_path)
    except OSError as exc:  # quality.json is already written: nothing measured is lost
        raise SystemExit(
            f"bench-quality: cannot write {exc.filename or plot_path} "
            f"({exc.strerror or exc}): fix --out / --plot, then redraw with --render-only"
        ) from None
    print(table)


if __name__ == "__main__":
    main()
