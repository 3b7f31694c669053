"""Rebuild the measured tables and figures of docs/illusions.md (`make illusions`).

For anagrams (views rot180 and flip) and hybrids on a class model (default: the embedded `mnist`), over
every ordered pair of classes, with the dataset's scoring classifier (`diffcli eval`):

- before: the settings `anagram` / `hybrid` used before the illusion defaults (the model's own sampling
  defaults, weight 0.5, the course's low-pass scaled to the image size, no band shares), n seeds a pair;
- after: today's defaults (diffcli/generation/illusions.py), n x K seeds a pair, the per-seed rate over all of them;
- best of K: from the same run, the share of the n images per pair whose kept candidate (what
  `--best-of K` keeps) reads both ways.

Each is one `diffcli.evaluate` call (the same code as `diffcli eval --task ... --best-of K`). The tables
replace what lies between the `<!-- illusions:... -->` markers of docs/illusions.md; the figures are
written to docs/illusions/. Usage:

    python scripts/illusion_tables.py [--model mnist] [--n 5] [--best-of 8] [--data-dir DIR] [--json reports.json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "illusions.md"
FIGURES = REPO / "docs" / "illusions"
ILLUSIONS = [("anagram", "rot180"), ("anagram", "flip"), ("hybrid", None)]


def before_settings(model) -> dict:
    """What `anagram` / `hybrid` used before the illusion defaults: the model's sampling defaults (its
    guidance interval too), weight 0.5, the course's filter (33 / 2 at 64 px) scaled to the model, FAR and
    NEAR split all along."""
    from diffcli.diffusion.filters import default_hybrid_filter

    sampling = model.config.sampling or {}
    kernel, sigma = default_hybrid_filter(model.size)
    return {
        "sampler": sampling.get("sampler"),
        "steps": sampling.get("steps"),
        "guidance": sampling.get("guidance"),
        "guidance_interval": sampling.get("guidance_interval"),
        "anagram": {"weight": 0.5},
        "hybrid": {"kernel": kernel, "sigma": sigma, "far_first": 0.0, "near_last": 0.0},
    }


def measure(model, n: int, best_of: int, data_dir, seed: int) -> dict:
    """Every report, keyed "task/view" then "before" / "after"."""
    import diffcli

    old = before_settings(model)
    reports: dict = {}
    for task, view in ILLUSIONS:
        key = f"{task}/{view}" if view else task
        common = {"n": n, "seed": seed, "data_dir": data_dir, "progress": False, **({"view": view} if view else {})}
        started = time.perf_counter()
        before = diffcli.evaluate(
            model,
            task,
            sampler=old["sampler"],
            steps=old["steps"],
            guidance=old["guidance"],
            guidance_interval=old["guidance_interval"],
            **old[task],
            **common,
        )
        after = diffcli.evaluate(model, task, best_of=best_of, **common)
        reports[key] = {"before": before, "after": after}
        print(
            f"{key}: before {before['rate']:.3f}, after {after['rate']:.3f}, best of {best_of} "
            f"{after['best_of']['rate']:.3f} ({time.perf_counter() - started:.0f} s)",
            file=sys.stderr,
        )
    return reports


def percent(successes: int, n: int) -> str:
    return f"{100 * successes / n:.0f}%" if n else "-"


def settings_line(report: dict) -> str:
    interval = report.get("guidance_interval")
    s = f"{report['sampler']} {report['steps']} steps, CFG {report['guidance']:g}" + (
        f" in {interval[0]:g}:{interval[1]:g}" if interval else ""
    )
    if report["task"] == "anagram":
        return f"{s}, weight {report['weight']:g}"
    return (
        f"{s}, low-pass {report['kernel']} / {report['sigma']:g}, "
        f"FAR alone for the first {100 * report['far_first']:.0f}%"
    )


def summary_table(reports: dict, best_of: int) -> str:
    rows = [f"| illusion | before: per seed | after: per seed | after: best of {best_of} |", "|---|---|---|---|"]
    for key, pair in reports.items():
        b, a = pair["before"], pair["after"]
        best = a["best_of"]
        rows.append(
            f"| {key.replace('/', ' ')} | **{percent(b['successes'], b['n'])}** ({b['successes']}/{b['n']}) "
            f"| **{percent(a['successes'], a['n'])}** ({a['successes']}/{a['n']}) | "
            f"**{percent(best['successes'], best['n'])}** ({best['successes']}/{best['n']}) |"
        )
    lines = ["", *rows, ""]
    for key, pair in reports.items():
        b, a = pair["before"], pair["after"]
        roles = ("image", "view") if a["task"] == "anagram" else ("far", "near")
        lines.append(
            f"- {key.replace('/', ' ')}: before {settings_line(b)}, {b['per_pair']} seeds a pair ({roles[0]} "
            f"read right {100 * b[roles[0] + '_rate']:.0f}%, {roles[1]} {100 * b[roles[1] + '_rate']:.0f}%); "
            f"after {settings_line(a)}, {a['per_pair']} seeds a pair ({roles[0]} "
            f"{100 * a[roles[0] + '_rate']:.0f}%, {roles[1]} {100 * a[roles[1] + '_rate']:.0f}%)."
        )
    return "\n".join(lines) + "\n"


def pair_table(reports: dict, best_of: int) -> str:
    keys = list(reports)
    head = ["pair"] + [f"{k.replace('/', ' ')} {col}" for k in keys for col in ("before", "after", f"best {best_of}")]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    by_pair: dict = {}
    for k in keys:
        for when in ("before", "after"):
            report = reports[k][when]
            roles = ("image", "view") if report["task"] == "anagram" else ("far", "near")
            for p in report["pairs"]:
                by_pair.setdefault(f"{p[roles[0]]}:{p[roles[1]]}", {})[(k, when)] = percent(p["successes"], p["n"])
            if when == "after":
                for p in report["best_of"]["pairs"]:
                    by_pair[f"{p[roles[0]]}:{p[roles[1]]}"][(k, "best")] = percent(p["successes"], p["n"])
    for pair, cells in by_pair.items():
        rows.append(
            "| "
            + " | ".join([pair] + [cells.get((k, when), "-") for k in keys for when in ("before", "after", "best")])
            + " |"
        )
    return "\n" + "\n".join(rows) + "\n"


def replace_between(text: str, name: str, body: str) -> str:
    """The text with what lies between <!-- illusions:NAME --> and <!-- /illusions:NAME --> replaced."""
    pattern = re.compile(rf"(<!-- illusions:{name} -->\n).*?(<!-- /illusions:{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"docs/illusions.md has no <!-- illusions:{name} --> ... <!-- /illusions:{name} --> markers")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def figures(model, seed: int) -> list[Path]:
    """The examples docs/illusions.md shows, with today's defaults (every seed shown, none picked)."""
    FIGURES.mkdir(parents=True, exist_ok=True)
    made = [
        (model.anagram(6, 9, view="rot180", n=8, seed=seed, progress=False), "anagram-6-9-rot180.png"),
        (model.anagram(2, 7, view="flip", n=8, seed=seed, progress=False), "anagram-2-7-flip.png"),
        (model.hybrid(8, 3, explain=True, n=4, seed=seed, progress=False), "hybrid-8-3.png"),
        (model.hybrid(4, 5, explain=True, n=4, seed=seed, progress=False), "hybrid-4-5.png"),
    ]
    return [result.save(FIGURES / name) for result, name in made]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mnist")
    parser.add_argument("--n", type=int, default=5, help="images per ordered pair (default 5)")
    parser.add_argument(
        "--best-of", type=int, default=8, help="candidates per image for the best-of column (default 8)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data-dir", default=None, help="where the dataset is, if the scoring classifier must be trained"
    )
    parser.add_argument("--json", default=None, help="also write every report here")
    parser.add_argument("--no-figures", action="store_true")
    args = parser.parse_args(argv)

    import diffcli
    from diffcli.io.atomic import atomic_write_text

    model = diffcli.load(args.model, device="auto")
    reports = measure(model, args.n, args.best_of, args.data_dir, args.seed)
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(reports, indent=1))
    text = DOC.read_text()
    text = replace_between(text, "summary", summary_table(reports, args.best_of))
    text = replace_between(text, "pairs", pair_table(reports, args.best_of))
    atomic_write_text(DOC, text)
    if not args.no_figures:
        for path in figures(model, args.seed):
            print(f"wrote {path.relative_to(REPO)}", file=sys.stderr)
    print(f"updated {DOC.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
