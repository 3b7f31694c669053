"""`make bench`: every speed claim of docs/performance.md, measured on this machine, each as a ratio
against a baseline measured in the same run.

  startup     `diffcli --help` and `diffcli noise` (64x64 PNG) vs `python -c "import torch"`
  networks    training img/s (forward + backward + Adam, batch 128, 28x28) of the course UNet and UNet
              variants, vs the course UNet: where the default recipe's speed comes from
  optimizer   one AdamW step (and one EMA update) over the default network's parameters: the trainer's
              fused kernel vs torch's default (its per-tensor loop on a CPU)
  training    img/s of the default recipe vs the course recipe (same data, same batch)
  sampling    seconds for a 100-image class-conditional CFG grid: few-step samplers vs 300-step DDPM,
              and CFG's two estimates in one batched forward pass vs two passes
  quality     per-class accuracy and FID of each sampler setting (`diffcli eval`) vs 300-step DDPM
  distill     the embedded 4-step student `mnist-fast` at 1, 2, 4 and 8 steps vs its teacher `mnist` with
              its defaults (DDIM 20, CFG 3 in 0.2:0.7): 100-image grid time and `diffcli eval` (same seeds),
              and the distillation's wall time as its config recorded it
  scale-out   `torchrun --nproc-per-node 2` (gloo) vs one process: same loss curve, throughput ratio
  gpu         (only where CUDA is present) AMP bf16 + channels_last + compile vs plain fp32

Writes bench/results.json and bench/results.md and prints the table. `--quick` shrinks every size
(a smoke run of the harness itself, not figures to quote). Runs in a scratch registry; the sampling
and quality rows use the registry's default model (the embedded MNIST model).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from diffcli.io.atomic import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
DIFFCLI = [PYTHON, "-m", "diffcli"]


# ----- helpers -----------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from diffcli.device import cpu_has_native_bf16

    # Two CPUs of one model name can differ in bf16 support, which decides `--precision auto`'s choice.
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "native_bf16": cpu_has_native_bf16(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": "cpu",
    }
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
    return info


def run(cmd: list[str], env: dict[str, str], timeout: int = 1800) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=env.get("BENCH_CWD"))
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def wall(cmd: list[str], env: dict[str, str], repeat: int) -> float:
    """Median wall seconds of a command (one warm-up run first, so file caches are warm)."""
    run(cmd, env)
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run(cmd, env)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def last_json(text: str) -> dict[str, Any]:
    lines = [line for line in text.splitlines() if line.strip().startswith("{")]
    return json.loads(lines[-1])


def ratio(value: float, baseline: float) -> float:
    return round(value / baseline, 3) if baseline else float("nan")


# ----- benchmarks --------------------------------------------------------------------------------
def bench_startup(env: dict[str, str], work: Path, repeat: int) -> dict[str, Any]:
    from PIL import Image

    png = work / "in64.png"
    Image.new("RGB", (64, 64), (120, 80, 40)).save(png)
    torch_import = wall([PYTHON, "-c", "import torch"], env, repeat)
    help_s = wall([*DIFFCLI, "--help"], env, repeat)
    noise_s = wall([*DIFFCLI, "noise", str(png), "-t", "500", "--seed", "1", "-o", str(work / "out.png")], env, repeat)
    return {
        "baseline": "python -c 'import torch'",
        "import_torch_s": round(torch_import, 3),
        "help_s": round(help_s, 3),
        "noise_64px_s": round(noise_s, 3),
        "help_vs_import_torch": ratio(help_s, torch_import),
        "noise_vs_import_torch": ratio(noise_s, torch_import),
    }


def _train_rate(env: dict[str, str], preset: str, steps: int, extra: list[str], name: str) -> float:
    cmd = [
        *DIFFCLI,
        "train",
        "--preset",
        preset,
        "--dataset",
        "glyphs",
        "--limit",
        "8192",
        "--batch-size",
        "128",
        "--max-steps",
        str(steps),
        "--name",
        name,
        "--force",
        "--json",
        *extra,
    ]
    return float(last_json(run(cmd, env).stdout)["images_per_second"])


def bench_training(env: dict[str, str], quick: bool) -> dict[str, Any]:
    """The course preset, then the default recipe in fp32 and at its default precision (auto: bf16 on a
    CPU with native bf16, fp32 elsewhere)."""
    import torch

    from diffcli.device import resolve_precision

    steps = 5 if quick else 40
    course = _train_rate(env, "course", 3 if quick else 15, ["--device", "cpu"], "bench-course")
    fp32 = _train_rate(env, "default", steps, ["--device", "cpu", "--precision", "fp32"], "bench-default-fp32")
    default = _train_rate(env, "default", steps, ["--device", "cpu"], "bench-default")
    return {
        "baseline": "course preset (its UNet, width 64, full resolution, fp32)",
        "course_img_s": course,
        "default_fp32_img_s": fp32,
        "default_img_s": default,
        "default_precision": resolve_precision("auto", torch.device("cpu")),
        "default_vs_course": ratio(default, course),
        "default_fp32_vs_course": ratio(fp32, course),
        "default_vs_default_fp32": ratio(default, fp32),
    }


NETWORKS = [  # (label, UNet options): patch 2 folds 2x2 pixels into channels (the default recipe's choice)
    (
        "UNet w32, attention at 7x7, full resolution (the first default)",
        dict(width=32, mults=(1, 2, 2), attention=(2,), patch=1),
    ),
    ("UNet w32, no attention, full resolution", dict(width=32, mults=(1, 2, 2), attention=(), patch=1)),
    ("UNet w64, attention, 2x2 patches", dict(width=64, mults=(1, 2, 2), attention=(1,), patch=2)),
    ("UNet w48, two levels, attention, 2x2 patches", dict(width=48, mults=(1, 2), attention=(1,), patch=2)),
    ("UNet w32, no attention, 2x2 patches (the default)", dict(width=32, mults=(1, 2, 2), attention=(), patch=2)),
]


def bench_networks(quick: bool) -> dict[str, Any]:
    import torch

    from diffcli.models.course_unet import CourseUNet
    from diffcli.models.unet import UNet

    steps = 1 if quick else 6

    def rate(net) -> tuple[float, int]:
        torch.manual_seed(0)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        x, t, c = torch.randn(128, 1, 28, 28), torch.randint(0, 300, (128,)), torch.randint(0, 11, (128,))
        for i in range(steps + 2):  # two warm-up steps
            if i == 2:
                began = time.perf_counter()
            loss = (net(x, t, c) - x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return round(128 * steps / (time.perf_counter() - began), 1), sum(p.numel() for p in net.parameters())

    base, base_params = rate(CourseUNet(1, 64, 10, True, 300))
    rows = [
        {
            "network": "course UNet w64 (BatchNorm, full resolution)",
            "parameters": base_params,
            "img_s": base,
            "vs_course": 1.0,
        }
    ]
    for label, options in NETWORKS:
        value, params = rate(UNet(1, None, blocks=1, num_classes=10, timesteps=300, **options))
        rows.append({"network": label, "parameters": params, "img_s": value, "vs_course": ratio(value, base)})
    return {"baseline": rows[0]["network"], "rows": rows}


def bench_optimizer(quick: bool) -> dict[str, Any]:
    """Milliseconds per AdamW step over the default UNet's parameters (gradients set), torch's default
    construction (the baseline) vs foreach vs the trainer's `make_adamw` (fused where it can be)."""
    import torch

    from diffcli.models.unet import UNet
    from diffcli.training.ema import EMA
    from diffcli.training.optimizer import make_adamw

    torch.manual_seed(0)
    net = UNet(1, None, num_classes=10, timesteps=1000, width=32, mults=(1, 2, 2), patch=2)
    params = list(net.parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    steps = 5 if quick else 200

    def per_step(step) -> float:
        for _ in range(3):  # warm-up (the moments are allocated on the first step)
            step()
        began = time.perf_counter()
        for _ in range(steps):
            step()
        return round(1000 * (time.perf_counter() - began) / steps, 3)

    rows = []
    for label, opt in (
        ("torch's default AdamW (baseline)", torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)),
        ("AdamW, foreach=True", torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0, foreach=True)),
        ("make_adamw (the trainer's)", make_adamw(params, lr=1e-4, weight_decay=0.0)),
    ):
        rows.append({"optimizer": label, "fused": bool(opt.defaults.get("fused")), "ms_per_step": per_step(opt.step)})
    for row in rows:
        row["vs_default"] = ratio(row["ms_per_step"], rows[0]["ms_per_step"])
    ema = EMA(net)
    ema_ms = per_step(lambda: ema.update(net, 10_000))
    return {
        "baseline": rows[0]["optimizer"],
        "parameters": sum(p.numel() for p in params),
        "tensors": len(params),
        "rows": rows,
        "ema_update_ms": ema_ms,
    }


# (sampler, steps, guidance): CFG 2 throughout, as the published rows were measured, and the embedded
# model's own default (CFG 3 in 0.2:0.7 of the process: no null evaluation outside the interval)
CFG2 = ("2", None)
SAMPLER_ROWS = [
    ("ddpm", 300, CFG2),
    ("ddim", 20, CFG2),
    ("ddim", 10, CFG2),
    ("dpm++", 10, CFG2),
    ("heun", 10, CFG2),
    ("ddim", 20, ("3", "0.2:0.7")),
]


def guidance_flags(guidance: tuple[str, str | None]) -> list[str]:
    scale, interval = guidance
    return ["-g", scale] + (["--guidance-interval", interval] if interval else [])


def guidance_label(guidance: tuple[str, str | None]) -> str:
    return f"CFG {guidance[0]}" + (f" in {guidance[1]}" if guidance[1] else "")


def bench_sampling(env: dict[str, str], work: Path, quick: bool) -> dict[str, Any]:
    rows = []
    per_class = 1 if quick else 10  # 10 classes x 10 = the 100-image grid
    for sampler, steps, guidance in SAMPLER_ROWS:
        steps = min(steps, 20) if quick else steps
        cmd = [
            *DIFFCLI,
            "sample",
            "-n",
            str(per_class),
            "--sampler",
            sampler,
            "--steps",
            str(steps),
            *guidance_flags(guidance),
            "--seed",
            "0",
            "--device",
            "cpu",
            "-o",
            str(work / f"grid-{sampler}-{steps}.png"),
            "--json",
            "-q",
        ]
        began = time.perf_counter()
        info = last_json(run(cmd, env).stdout)
        rows.append(
            {
                "sampler": sampler,
                "steps": steps,
                "guidance": guidance_label(guidance),
                "images": 10 * per_class,
                "generate_s": info["seconds"],
                "command_s": round(time.perf_counter() - began, 2),
            }
        )
    base = rows[0]["generate_s"]
    for row in rows:
        row["vs_ddpm_300"] = ratio(row["generate_s"], base)
    return {
        "baseline": f"{SAMPLER_ROWS[0][0]} {SAMPLER_ROWS[0][1]} steps",
        "rows": rows,
        "cfg": bench_cfg_batching(quick),
    }


def bench_cfg_batching(quick: bool) -> dict[str, Any]:
    """CFG's conditional and unconditional estimates in one batched call (GuidedModel) vs two calls."""
    import torch

    from diffcli.diffusion.guidance import GuidedModel, classifier_free
    from diffcli.models.backends import load_model

    model = load_model(device="cpu")
    n, steps = (10, 3) if quick else (100, 20)
    cond = torch.arange(n) % len(model.labels)
    null = torch.full_like(cond, len(model.labels))
    guided = GuidedModel(model.net, classifier_free(cond, null, 5.0))
    x = torch.randn(n, model.channels, model.size, model.size)

    def two_passes(x, t):
        eps_c, eps_u = model.net(x, t, cond), model.net(x, t, null)
        return eps_u + 5.0 * (eps_c - eps_u)

    def timed(fn) -> float:
        with torch.no_grad():
            fn(x, torch.full((n,), 150))
            began = time.perf_counter()
            for i in range(steps):
                fn(x, torch.full((n,), 299 - 10 * i))
            return time.perf_counter() - began

    with torch.no_grad():
        same = torch.allclose(guided(x, torch.full((n,), 150)), two_passes(x, torch.full((n,), 150)), atol=1e-4)
    batched, separate = timed(guided), timed(two_passes)
    return {
        "images": n,
        "steps": steps,
        "batched_s": round(batched, 3),
        "two_passes_s": round(separate, 3),
        "batched_vs_two_passes": ratio(batched, separate),
        "same_result": same,
    }


def scores(report: dict[str, Any]) -> dict[str, Any]:
    """What a quality row keeps of `diffcli eval --json`'s report."""
    return {
        "n": report["n"],
        "accuracy": report["accuracy"],
        "min_class_accuracy": report["min_class_accuracy"],
        "worst": report["worst"],
        "fid": report["fid"]["value"],
        "fid_floor": report["fid"]["floor"],
    }


def bench_quality(env: dict[str, str], quick: bool, data_dir: str | None) -> dict[str, Any]:
    rows = []
    n = 2 if quick else 30
    for sampler, steps, guidance in SAMPLER_ROWS:
        steps = min(steps, 20) if quick else steps
        cmd = [
            *DIFFCLI,
            "eval",
            "-n",
            str(n),
            "--sampler",
            sampler,
            "--steps",
            str(steps),
            *guidance_flags(guidance),
            "--device",
            "cpu",
            "--json",
            "-q",
        ]
        if data_dir:
            cmd += ["--data-dir", data_dir]
        report = last_json(run(cmd, env).stdout)
        rows.append(
            {
                "sampler": sampler,
                "steps": steps,
                "guidance": guidance_label(guidance),
                **scores(report),
                "generate_s": report["seconds"],
            }
        )
    base = rows[0]
    for row in rows:
        row["accuracy_vs_ddpm_300"] = ratio(row["accuracy"], base["accuracy"])
        row["fid_vs_ddpm_300"] = ratio(row["fid"], base["fid"])
    return {"baseline": f"{SAMPLER_ROWS[0][0]} {SAMPLER_ROWS[0][1]} steps", "per_class": n, "rows": rows}


STUDENT, TEACHER, STUDENT_STEPS = "mnist-fast", "mnist", (1, 2, 4, 8)


def _grid_and_eval(env: dict[str, str], work: Path, model: str, steps: int | None, n: int, data_dir: str | None):
    """A 100-image grid's seconds and `diffcli eval`'s report for one model at its defaults or `steps`."""
    step_flags = ["--steps", str(steps)] if steps else []
    common = ["-m", model, *step_flags, "--seed", "0", "--device", "cpu", "--json", "-q"]
    grid = last_json(run([*DIFFCLI, "sample", "-n", "10", *common, "-o", str(work / f"grid-{model}.png")], env).stdout)
    data = ["--data-dir", data_dir] if data_dir else []
    report = last_json(run([*DIFFCLI, "eval", "-n", str(n), *common, *data], env).stdout)
    return grid["seconds"], report


def bench_distillation(env: dict[str, str], work: Path, quick: bool, data_dir: str | None) -> dict[str, Any]:
    import json as _json

    from diffcli.models.registry import Registry

    config = _json.loads((Registry().builtin_dir / STUDENT / "config.json").read_text())
    n = 2 if quick else 100
    rows = []
    for model, steps in [(TEACHER, None), *((STUDENT, k) for k in STUDENT_STEPS)]:
        seconds, report = _grid_and_eval(env, work, model, steps, n, data_dir)
        rows.append(
            {
                "model": model,
                "steps": report["steps"],
                "guidance": report["guidance"],
                "guidance_interval": report["guidance_interval"],
                "grid_s": seconds,
                **scores(report),
            }
        )
    base = rows[0]
    for row in rows:
        row["grid_speedup"] = ratio(base["grid_s"], row["grid_s"])
        row["fid_vs_floor"] = ratio(row["fid"], row["fid_floor"])
    plan = config["distillation"]
    return {
        "baseline": f"{TEACHER} at its defaults",
        "per_class": n,
        "rows": rows,
        "method": plan["method"],
        "teacher_steps": plan["teacher_steps"],
        "distill_s": config["training"].get("wall_seconds"),
        "distill_device": config["training"].get("device"),
    }


def bench_distributed(env: dict[str, str], quick: bool) -> dict[str, Any]:
    torchrun = Path(PYTHON).parent / "torchrun"
    if not torchrun.exists():
        return {"skipped": "torchrun is not installed beside this Python"}
    steps = 6 if quick else 40
    common = [
        "--dataset",
        "glyphs",
        "--limit",
        "4096",
        "--batch-size",
        "64",
        "--max-steps",
        str(steps),
        "--device",
        "cpu",
        "--seed",
        "0",
        "--force",
        "--json",
    ]
    one = last_json(run([*DIFFCLI, "train", *common, "--name", "bench-one"], env).stdout)
    two_env = {**env, "OMP_NUM_THREADS": "1"}
    two = last_json(
        run(
            [
                str(torchrun),
                "--nproc-per-node",
                "2",
                "--master-port",
                "29533",
                "-m",
                "diffcli",
                "train",
                *common,
                "--name",
                "bench-two",
            ],
            two_env,
        ).stdout
    )
    home = Path(env["DIFFCLI_HOME"]) / "models"
    curve = lambda name: [float(r["train_loss"]) for r in csv.DictReader((home / name / "train" / "loss.csv").open())]  # noqa: E731
    a, b = curve("bench-one"), curve("bench-two")
    return {
        "baseline": "one process, 2 threads",
        "steps": steps,
        "one_img_s": one["images_per_second"],
        "two_gloo_img_s": two["images_per_second"],
        "two_vs_one": ratio(two["images_per_second"], one["images_per_second"]),
        "max_loss_difference": round(max(abs(x - y) for x, y in zip(a, b)), 6) if len(a) == len(b) else None,
    }


def bench_gpu(env: dict[str, str], quick: bool) -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device"}
    steps = 10 if quick else 200
    plain = _train_rate(env, "default", steps, ["--device", "cuda", "--precision", "fp32"], "bench-gpu-fp32")
    tuned = _train_rate(
        env,
        "default",
        steps,
        ["--device", "cuda", "--precision", "bf16", "--channels-last", "--compile"],
        "bench-gpu-bf16",
    )
    return {
        "baseline": "default recipe, fp32",
        "device": torch.cuda.get_device_name(0),
        "fp32_img_s": plain,
        "bf16_channels_last_compile_img_s": tuned,
        "tuned_vs_fp32": ratio(tuned, plain),
    }


# ----- report ------------------------------------------------------------------------------------
def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    out = [
        f"Measured {results['date']} on {m['cpu']} ({m['cores']} cores, torch {m['torch']}, device {m['device']}).",
        "",
    ]
    s = results["startup"]
    out += [
        "| startup | seconds | vs `import torch` |",
        "|---|---|---|",
        f"| `python -c 'import torch'` (baseline) | {s['import_torch_s']} | 1 |",
        f"| `diffcli --help` | {s['help_s']} | {s['help_vs_import_torch']} |",
        f"| `diffcli noise` 64x64 PNG | {s['noise_64px_s']} | {s['noise_vs_import_torch']} |",
        "",
    ]
    out += ["| network | parameters | training img/s | vs course UNet |", "|---|---|---|---|"]
    out += [
        f"| {r['network']} | {r['parameters'] / 1e6:.2f} M | {r['img_s']} | {r['vs_course']} |"
        for r in results["networks"]["rows"]
    ]
    out += [""]
    o = results["optimizer"]
    out += [
        f"| optimizer step ({o['parameters'] / 1e6:.2f} M parameters "
        f"in {o['tensors']} tensors) | ms | vs torch's default |",
        "|---|---|---|",
    ]
    out += [f"| {r['optimizer']} | {r['ms_per_step']} | {r['vs_default']} |" for r in o["rows"]]
    out += ["", f"EMA update of the same parameters: {o['ema_update_ms']} ms.", ""]
    t = results["training"]
    out += [
        "| training recipe | img/s | vs course |",
        "|---|---|---|",
        f"| course (baseline) | {t['course_img_s']} | 1 |",
    ]
    if "default_fp32_img_s" in t:
        out += [
            f"| default, --precision fp32 | {t['default_fp32_img_s']} | {t['default_fp32_vs_course']} |",
            f"| default (--precision auto: {t['default_precision']} here) | {t['default_img_s']} "
            f"| {t['default_vs_course']} ({t['default_vs_default_fp32']}x fp32) |",
            "",
        ]
    else:
        out += [f"| default | {t['default_img_s']} | {t['default_vs_course']} |", ""]
    out += ["| sampler | steps | guidance | s per 100 images | vs DDPM 300 |", "|---|---|---|---|---|"]
    out += [
        f"| {r['sampler']} | {r['steps']} | {r.get('guidance', 'CFG 2')} | {r['generate_s']} | {r['vs_ddpm_300']} |"
        for r in results["sampling"]["rows"]
    ]
    c = results["sampling"]["cfg"]
    out += [
        "",
        f"CFG, {c['images']} images x {c['steps']} steps: one batched pass {c['batched_s']} s vs two passes "
        f"{c['two_passes_s']} s (ratio {c['batched_vs_two_passes']}, same result: {c['same_result']}).",
        "",
    ]
    q = results["quality"]
    out += [
        f"| sampler | steps | guidance | accuracy ({q['per_class']}/class) | "
        "lowest class | FID (floor) | accuracy vs DDPM 300 | FID vs DDPM 300 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    out += [
        f"| {r['sampler']} | {r['steps']} | {r.get('guidance', 'CFG 2')} | "
        f"{r['accuracy']:.3f} | {r['min_class_accuracy']:.3f} ({r['worst']}) | {r['fid']:.3f} "
        f"({r['fid_floor']:.3f}) | {r['accuracy_vs_ddpm_300']} | {r['fid_vs_ddpm_300']} |"
        for r in q["rows"]
    ]
    if "distill" in results:
        r0 = results["distill"]
        out += [
            "",
            "| model | steps | guidance | 100-image grid s | speed-up vs teacher | "
            f"accuracy ({r0['per_class']}/class) | lowest class | FID (floor) | FID / floor |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in r0["rows"]:
            cfg = (
                "built in"
                if r["model"] == STUDENT
                else f"CFG {r['guidance']:g}"
                + (f" in {r['guidance_interval'][0]:g}:{r['guidance_interval'][1]:g}" if r["guidance_interval"] else "")
            )
            out.append(
                f"| {r['model']} | {r['steps']} | {cfg} | {r['grid_s']} | {r['grid_speedup']} | {r['accuracy']:.3f} | "
                f"{r['min_class_accuracy']:.3f} ({r['worst']}) | {r['fid']:.3f} ({r['fid_floor']:.3f}) | "
                f"{r['fid_vs_floor']} |"
            )
        minutes = f"{r0['distill_s'] / 60:.1f} min" if r0.get("distill_s") else "not recorded"
        out += [
            "",
            f"{STUDENT}: {r0['method']} distillation of {TEACHER} (its {r0['teacher_steps']} DDIM steps per run of "
            f"targets), {minutes} of optimiser steps as its config records ({r0.get('distill_device') or '?'}).",
        ]
    d = results["distributed"]
    if "skipped" not in d:
        out += [
            "",
            f"torchrun 2 x gloo vs one process ({d['steps']} steps): {d['two_gloo_img_s']} vs {d['one_img_s']} "
            f"img/s (ratio {d['two_vs_one']}); largest loss difference per step {d['max_loss_difference']}.",
        ]
    g = results["gpu"]
    if "skipped" not in g:
        out += [
            "",
            f"GPU {g['device']}: fp32 {g['fp32_img_s']} img/s, bf16 + channels_last + compile "
            f"{g['bf16_channels_last_compile_img_s']} img/s (ratio {g['tuned_vs_fp32']}).",
        ]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the harness, not figures to quote")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("DIFFCLI_BENCH_DATA", str(REPO.parent / "shared" / "data")),
        help="MNIST for the quality rows",
    )
    parser.add_argument("--out", default=str(REPO / "bench"), help="folder for results.json and results.md")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated benchmarks to run "
        "(startup,networks,optimizer,training,sampling,quality,distill,distributed,gpu)",
    )
    args = parser.parse_args()
    everything = {
        "startup",
        "networks",
        "optimizer",
        "training",
        "sampling",
        "quality",
        "distill",
        "distributed",
        "gpu",
    }
    wanted = set(args.only.split(",")) if args.only else everything
    scratch = Path(tempfile.mkdtemp(prefix="diffcli-bench-"))
    env = {**os.environ, "DIFFCLI_HOME": str(scratch / "home"), "NO_COLOR": "1", "BENCH_CWD": str(scratch)}
    env.pop("DIFFCLI_MODEL", None)
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "quick": args.quick}
    began = time.perf_counter()
    try:
        steps = [
            ("startup", lambda: bench_startup(env, scratch, 3 if args.quick else 7)),
            ("networks", lambda: bench_networks(args.quick)),
            ("optimizer", lambda: bench_optimizer(args.quick)),
            ("training", lambda: bench_training(env, args.quick)),
            ("sampling", lambda: bench_sampling(env, scratch, args.quick)),
            (
                "quality",
                lambda: bench_quality(env, args.quick, args.data_dir if Path(args.data_dir).is_dir() else None),
            ),
            (
                "distill",
                lambda: bench_distillation(
                    env, scratch, args.quick, args.data_dir if Path(args.data_dir).is_dir() else None
                ),
            ),
            ("distributed", lambda: bench_distributed(env, args.quick)),
            ("gpu", lambda: bench_gpu(env, args.quick)),
        ]
        for name, fn in steps:
            if name in wanted:
                print(f"bench: {name} ...", file=sys.stderr, flush=True)
                results[name] = fn()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["wall_s"] = round(time.perf_counter() - began, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    if wanted >= everything:
        table = markdown(results)
        atomic_write_text(out / "results.md", table)
        print(table)
    else:
        print(json.dumps(results, indent=2))
    print(f"bench: {results['wall_s']} s; wrote {out / 'results.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
