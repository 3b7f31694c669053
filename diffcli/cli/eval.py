"""`diffcli eval`: measure what a model makes (per-class accuracy, FID with its floor, illusion success)
instead of showing hand-picked samples."""

from __future__ import annotations

from typing import Annotated

import typer

from diffcli import console
from diffcli.cli import common, params
from diffcli.cli.options import Output, examples
from diffcli.errors import UsageError
from diffcli.jobs.eval_request import EvalRequest
from diffcli.jobs.requests import ModelChoice

EXAMPLES = examples(
    "diffcli eval                       # the embedded model: accuracy and FID",
    "diffcli eval -m f1 -n 50 --json > f1.json",
    "diffcli eval --task anagram --view rot180 -n 5",
    "diffcli eval --task chain --plot chain.png",
)


@params.options(exclude=("weights", "offload", "out", "out_dir"), request=EvalRequest, choice=ModelChoice, run=Output)
def evaluate(
    *,
    plot: Annotated[
        str | None,
        typer.Option(
            "--plot",
            metavar="PATH",
            rich_help_panel="Output",
            help="Task chain: also write the accuracy-along-the-chain plot as a PNG here (- for stdout).",
        ),
    ] = None,
    request: EvalRequest,
    choice: ModelChoice,
    run: Output,
) -> None:
    """Score a model's samples: per-class accuracy and confidence by a classifier trained on its dataset,
    the best and worst classes, FID in the classifier's feature space beside the real-vs-real floor at the
    same n; or the success rate of anagrams / hybrids over class pairs. The report goes to stdout (a table,
    or JSON with --json); progress goes to stderr.
    """
    common.start(run.quiet, run.json_output)
    if plot is not None and request.task != "chain":
        raise UsageError("--plot draws the chain task's curve", "add --task chain")
    from diffcli.jobs.evaluate import chain_plot, check, check_gradable
    from diffcli.jobs.evaluate import evaluate as evaluate_job
    from diffcli.jobs.generating import load_generator

    check(request)
    if plot is not None:
        from diffcli.io import output_paths

        output_paths.check_output(plot, run.json_output)
    entry = common.registry().get(choice.model)
    check_gradable(entry.name, entry.config().cond_type)  # before any load or download
    model = load_generator(entry.name, choice.device)
    report = evaluate_job(model, request, common.progress(run.quiet, run.json_output))
    if plot is not None:
        from diffcli.io import output_paths, png

        target = output_paths.resolve_output(plot, "chain.png", run.json_output, console.notice)
        png.write_png(
            chain_plot(report),
            target,
            {"command": common.command_line(), "subcommand": "eval", "model": model.name, "task": "chain"},
        )
        if not target.is_stdout:
            console.result(f"wrote {target.describe()}")
    if run.json_output:
        console.emit_json(report)
    else:  # the report is the result: -q silences progress, never this
        _print_report(report)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _print_report(report: dict) -> None:
    """The report as a table on stdout (plain text when stdout is not a terminal): it is the command's output."""
    out = console.stdout()
    settings = f"{report['sampler']} {report['steps']} steps, {common.cfg_text(report)}, seeds {report['seed']}+"
    if report["task"] == "sample" and report.get("scorer") == "clip":
        common.print_table(
            f"{report['model']}: {report['per_class']} samples per class scored by CLIP {report['model_clip']}, "
            f'"{report["template"]}"',
            ("class", "n", "CLIP score", "zero-shot acc."),
            [
                [
                    c["label"],
                    str(c["n"]),
                    "-" if c["clip_score"] is None else f"{c['clip_score']:.2f}",
                    _percent(c["zero_shot_accuracy"]),
                ]
                for c in report["classes"]
            ],
        )
        out.print(
            (
                f"CLIP score {report['clip_score']:.2f} over {report['n']} samples ({settings}); "
                f"best {report['best']}, worst {report['worst']}"
            ),
            markup=False,
        )
        return
    classifier = report.get("classifier", {})
    grader = f"graded by {classifier.get('name')} (test accuracy {_percent(classifier.get('test_accuracy'))})"
    if report["task"] == "sample":
        if "classes" in report:
            common.print_table(
                f"{report['model']}: {report['per_class']} samples per class, {settings}",
                ("class", "n", "accuracy", "confidence", "mistaken for"),
                [
                    [
                        c["label"],
                        str(c["n"]),
                        _percent(c["accuracy"]),
                        _percent(c["confidence"]),
                        c["mistaken_for"] or "",
                    ]
                    for c in report["classes"]
                ],
            )
            accuracies = [c["accuracy"] for c in report["classes"] if c["accuracy"] is not None]
            lowest = _percent(report["min_class_accuracy"])
            ranked = f" (lowest class {lowest}); best {report['best']}, worst {report['worst']}"
            if accuracies and min(accuracies) == max(accuracies):
                ranked = ", the same for every class"  # a best and a worst among equals would be noise
            out.print(f"accuracy {_percent(report['accuracy'])} over {report['n']} samples{ranked}", markup=False)
        else:
            shares = ", ".join(f"{k} {_percent(v)}" for k, v in report["class_shares"].items())
            out.print(f"{report['n']} unconditional samples ({settings}) read as: {shares}", markup=False)
        fid = report["fid"]
        below = ""
        if fid["value"] < fid["floor"]:  # both are noisy at small n: say so, or it reads as better than real
            below = f" (below its floor: at n={fid['n']} both are mostly sampling noise; use -n 100 or more)"
        floor = f"real-vs-real floor at the same n {fid['floor']:.3f}"
        out.print(f"FID {fid['value']:.3f} (n={fid['n']}; {floor}){below} in {fid['space']}; {grader}", markup=False)
        return
    if report["task"] == "chain":
        at = report["recognisable_at"]
        chain = report["chain"]
        marks = {max(1, round(f * len(chain))) for f in (0.1, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)}
        noisy_at = report["noisy_recognisable_at"]
        common.print_table(
            f"{report['model']}: the classifier's verdict on the clean estimate along the chain "
            f"({report['n']} samples, {settings})",
            ("step", "t", "x0 read as its class", "x_t read as its class"),
            [
                [f"{s['step']}/{len(chain)}", str(s["t"]), _percent(s["accuracy"]), _percent(s["noisy_accuracy"])]
                for s in chain
                if s["step"] in marks or any(a and s["step"] == a["step"] for a in (at, noisy_at))
            ],
        )

        def where(a) -> str:
            return (
                "never"
                if a is None
                else f"from step {a['step']}/{len(chain)} (t={a['t']}, {_percent(a['fraction'])} of the way)"
            )

        out.print(
            (
                f"recognisable (accuracy >= {_percent(report['threshold'])} to the end): "
                f"clean estimate {where(at)}, noisy image {where(noisy_at)}; {grader}"
            ),
            markup=False,
        )
        return
    roles = ("image", "view") if report["task"] == "anagram" else ("far", "near")
    what = (
        f"view {report['view']}"
        if report["task"] == "anagram"
        else (
            f"low-pass {report['kernel']}/{report['sigma']:g}, "
            f"FAR alone for the first {_percent(report['far_first'])}, "
            f"NEAR alone for the last {_percent(report['near_last'])}"
        )
    )
    common.print_table(
        f"{report['model']}: {report['task']}s, {what}, {report['per_pair']} seeds per pair, {settings}",
        (roles[0], roles[1], "n", "success", f"{roles[0]} ok", f"{roles[1]} ok"),
        [
            [
                p[roles[0]],
                p[roles[1]],
                str(p["n"]),
                _percent(p["rate"]),
                _percent(p[f"{roles[0]}_rate"]),
                _percent(p[f"{roles[1]}_rate"]),
            ]
            for p in sorted(report["pairs"], key=lambda p: -(p["rate"] or 0))
        ],
    )
    out.print(
        f"success {_percent(report['rate'])} per seed ({report['successes']}/{report['n']}); {grader}", markup=False
    )
    best = report.get("best_of")
    if best:
        out.print(
            (
                f"with --best-of {best['k']}: {_percent(best['rate'])} of {best['n']} images read both ways "
                f"({best['successes']}/{best['n']})"
            ),
            markup=False,
        )
