"""Write docs/models.md from the embedded models' config.json files (recipe, provenance, eval figures),
so the page always says what the shipped models are. Run by `make pretrained`; safe to rerun alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from diffcli.io.atomic import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
BUILTIN = REPO / "diffcli" / "models" / "builtin"


def pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def cfg(settings: dict) -> str:
    """'CFG 3' or 'CFG 3 in 0.2:0.7 of the reverse process' from a sampling block or an eval report."""
    from diffcli.cli.common import cfg_text

    return cfg_text(settings) + (" of the reverse process" if settings.get("guidance_interval") else "")


def command_line(training: dict) -> str:
    """The command that trained the model; a run made in stages (`training.commands`, recorded when it was
    packaged) lists every stage, since its config's `command` is only the last."""
    stages = training.get("commands")
    if stages and len(stages) > 1:
        listed = ", then ".join(f"`{c}`" for c in stages)
        return (
            f"- Commands: {listed} (one run, stopped by `--max-steps` and continued with `--resume`, "
            "which continues exactly; `make pretrained` trains it in one command)."
        )
    return f"- Command: `{training.get('command')}` (`make pretrained` reruns it)."


def guidance_line(config: dict, settings: dict) -> str:
    """How the model guides: its class dropout for CFG, or the guidance a student learnt from its teacher."""
    plan = config.get("distillation")
    if plan:
        learnt = cfg({"guidance": plan["guidance"], "guidance_interval": plan.get("guidance_interval")})
        return (
            f"distilled by {plan['method']} distillation from `{plan['teacher']}` (its {plan['teacher_steps']} DDIM "
            f"steps per target), with the teacher's {learnt} built in (no CFG at sampling)."
        )
    return f"class dropped with p = {settings.get('p_uncond')} for classifier-free guidance."


def section(config: dict) -> list[str]:
    name, training, metrics = config["name"], config.get("training", {}), config.get("metrics", {}).get("eval", {})
    s = training.get("settings", {})
    arch = s.get("architecture", {})
    lines = [f"## `{name}`", "", config.get("description", ""), ""]
    lines += [
        f"- Data: {config['dataset'].get('name')} ({config['dataset'].get('count')} training images, "
        f"{config['dataset'].get('channels')}x{config['dataset'].get('size')}x{config['dataset'].get('size')}); "
        f"classes: {', '.join(config['conditioning']['labels'])}.",
        f"- Network: UNet width {arch.get('width')}, levels {arch.get('mults')}, on "
        f"{arch.get('patch')}x{arch.get('patch')} patches, attention "
        f"{arch.get('attention') or 'none'}; {training.get('parameters', 0) / 1e6:.2f} "
        f"M parameters, shipped as {training.get('shipped_dtype', 'float32')}.",
        f"- Diffusion: {config['schedule']['kind']} schedule, T = {config['schedule']['timesteps']}, "
        f"{config['prediction']}-prediction, " + guidance_line(config, s),
        f"- Training: objective {s.get('objective')}, {s.get('timestep_sampling', 'uniform')} timesteps, "
        f"{s.get('epochs')} epochs, batch {s.get('batch_size')}, AdamW lr {s.get('lr')} ({s.get('lr_schedule')}, "
        f"{s.get('warmup_steps')} warm-up steps), EMA {s.get('ema_decay')}, seed {training.get('seed')}; "
        f"{training.get('wall_seconds', 0) / 60:.1f} minutes on {training.get('device')} "
        f"({training.get('machine')}, {training.get('images_per_second')} img/s, torch {training.get('torch')}).",
        command_line(training),
        f"- Sampling defaults: {config['sampling'].get('sampler')} "
        f"{config['sampling'].get('steps')} steps, {cfg(config['sampling'])}.",
        "",
    ]
    sample = metrics.get("sample")
    if sample:
        lines += [
            f"### `diffcli eval` ({sample['per_class']} samples per class, {sample['sampler']} "
            f"{sample['steps']} steps, {cfg(sample)}, seeds {sample['seed']}+)",
            "",
        ]
        lines += ["| class | accuracy |", "|---|---|"] + [
            f"| {label} | {pct(acc)} |" for label, acc in sample["per_class_accuracy"].items()
        ]
        fid = sample["fid"]
        lines += [
            "",
            f"Overall {pct(sample['accuracy'])} over {sample['n']} samples; lowest class "
            f"{pct(sample['min_class_accuracy'])}; best {sample['best']}, worst {sample['worst']}. "
            f"FID {fid['value']:.2f} (n = {fid['n']}) against a real-vs-real floor of "
            f"{fid['floor']:.2f} at the same n, in the features of {sample['classifier']['name']} "
            f"(test accuracy {pct(sample['classifier']['test_accuracy'])}).",
            "",
        ]
    for task in ("anagram", "hybrid"):
        result = metrics.get(task)
        if result:
            what = (
                f"view {result['view']}"
                if task == "anagram"
                else f"low-pass kernel {result['kernel']}, sigma {result['sigma']:g}"
                + (f", FAR alone for the first {100 * result['far_first']:.0f} %" if result.get("far_first") else "")
            )
            what += f", the illusion defaults: {result['sampler']} {result['steps']} steps, {cfg(result)}"
            lines += [
                f"- `eval --task {task}` ({what}, {result['per_pair']} seeds for each "
                f"of the {result['n'] // result['per_pair']} ordered class pairs): "
                f"success {pct(result['rate'])} ({result['successes']}/{result['n']})."
            ]
    lines += [""]
    return lines


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "models.md"
    lines = [
        "# The embedded models",
        "",
        "diffcli ships these models inside the package (read-only, listed by `diffcli models list`); `mnist` is the",
        "default until you set another (`diffcli models default NAME`). Each was trained by `diffcli train` itself",
        "and scored by `diffcli eval` as shipped; `make pretrained` (scripts/pretrained.sh) retrains them with the",
        "recipes below ([performance.md](performance.md) compares them). This page is written from their",
        "config.json by `scripts/models_doc.py` (run by `make pretrained`).",
        "",
    ]
    for folder in sorted(BUILTIN.iterdir()):
        if (folder / "config.json").is_file():
            lines += section(json.loads((folder / "config.json").read_text()))
    atomic_write_text(out, "\n".join(lines).rstrip() + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
