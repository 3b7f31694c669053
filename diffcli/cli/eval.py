"""`diffcli eval`: measure what a model makes (per-class accuracy, FID with its floor, illusion success)
instead of showing hand-picked samples."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from diffcli import console
from diffcli.cli import common
from diffcli.cli.options import DATASETS, VIEWS, RunOptions, SamplingOptions, choices, examples, shared
from diffcli.errors import UsageError

TASK, SCORER, ILLUSION, DATA = "Task", "Scorer", "Illusions", "Data"
EXAMPLES = examples(
    "diffcli eval                       # the embedded model: accuracy and FID",
    "diffcli eval -m f1 -n 50 --json > f1.json",
    "diffcli eval --task anagram --view rot180 -n 5",
    "diffcli eval --task chain --plot chain.png",
)


@shared("sampling", "run", exclude=("n", "offload", "upscale", "seed", "out", "out_dir"))
def evaluate(
    task: Annotated[str, typer.Option("--task", metavar="TASK", rich_help_panel=TASK, autocompletion=choices("sample", "anagram", "hybrid", "chain"), help="sample (per-class scores and FID), anagram or hybrid (success rate over class pairs), chain (the step at which samples become recognisable).")] = "sample",
    n: Annotated[Optional[int], typer.Option("-n", metavar="INT", rich_help_panel=TASK, help="Samples per class (sample: 100, chain: 20) or seeds per pair (anagram/hybrid: 10).")] = None,
    scorer: Annotated[str, typer.Option("--scorer", metavar="NAME", rich_help_panel=SCORER, autocompletion=choices("classifier", "clip"), help="classifier (shipped for mnist and fashion-mnist, else trained once from the data and cached) or clip (open_clip, optional).")] = "classifier",
    view: Annotated[str, typer.Option("--view", metavar="VIEW", rich_help_panel=ILLUSION, autocompletion=choices(*VIEWS), help="Task anagram: flip, rot180, hflip, rot90 or negate.")] = "flip",
    weight: Annotated[Optional[float], typer.Option("--weight", metavar="W", rich_help_panel=ILLUSION, help="Task anagram: weight of the first prompt's estimate (default: the anagram command's, 0.5).")] = None,
    pairs: Annotated[Optional[str], typer.Option("--pairs", metavar="A:B,...", rich_help_panel=ILLUSION, help="Tasks anagram/hybrid: class pairs A:B, comma-separated (default: every ordered pair of distinct classes).")] = None,
    kernel: Annotated[Optional[int], typer.Option("--kernel", metavar="INT", rich_help_panel=ILLUSION, help="Task hybrid: low-pass kernel size (default scaled to the model).")] = None,
    sigma: Annotated[Optional[float], typer.Option("--sigma", metavar="PIXELS", rich_help_panel=ILLUSION, help="Task hybrid: low-pass sigma (default scaled to the model).")] = None,
    far_first: Annotated[Optional[float], typer.Option("--far-first", metavar="SHARE", rich_help_panel=ILLUSION, help="Task hybrid: share of the reverse process that follows FAR alone at its start (default: the hybrid command's).")] = None,
    near_last: Annotated[Optional[float], typer.Option("--near-last", metavar="SHARE", rich_help_panel=ILLUSION, help="Task hybrid: share of the reverse process that follows NEAR alone at its end (default: the hybrid command's).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", metavar="INT", rich_help_panel=TASK, help="Images generated per batch.")] = 250,
    dataset: Annotated[Optional[str], typer.Option("--dataset", metavar="NAME", rich_help_panel=DATA, autocompletion=choices(*DATASETS), help="Grade against this dataset (default: the one the model was trained on).")] = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", metavar="DIR", rich_help_panel=DATA, help="Where the dataset's files are; needed only for datasets without shipped scorers, or with --retrain-classifier (default: $DIFFCLI_DATA, else where the model was trained from).")] = None,
    download: Annotated[bool, typer.Option(
        "--download", metavar="", rich_help_panel=DATA, help="Download MNIST or Fashion-MNIST into --data-dir when the "
        "run needs the files and they are missing there (without it, a named --data-dir is only read).",
    )] = False,
    retrain_classifier: Annotated[bool, typer.Option("--retrain-classifier", metavar="", rich_help_panel=SCORER, help="Train the dataset's scoring classifier afresh from the data; it then takes precedence over the shipped one.")] = False,
    clip_model: Annotated[str, typer.Option("--clip-model", metavar="NAME", rich_help_panel=SCORER, help="Scorer clip: the open_clip model.")] = "ViT-B-32",
    clip_pretrained: Annotated[str, typer.Option("--clip-pretrained", metavar="TAG", rich_help_panel=SCORER, help="Scorer clip: the pretrained tag, read from the local open_clip / Hugging Face cache.")] = "laion2b_s34b_b79k",
    clip_weights: Annotated[Optional[str], typer.Option("--clip-weights", metavar="PATH", rich_help_panel=SCORER, help="Scorer clip: a local open_clip checkpoint file instead of the tag.")] = None,
    template: Annotated[Optional[str], typer.Option("--template", metavar="TEXT", rich_help_panel=SCORER, help='Scorer clip: prompt template with {label} (default: "a photo of the digit {label}" for digits).')] = None,
    plot: Annotated[Optional[str], typer.Option("--plot", metavar="PATH", rich_help_panel="Output", help="Task chain: also write the accuracy-along-the-chain plot as a PNG here (- for stdout).")] = None,
    record: Annotated[bool, typer.Option("--record", metavar="", rich_help_panel="Output", help="Store the headline figures in the model's config.json (metrics.eval).")] = False,
    seed: Annotated[int, typer.Option("--seed", metavar="INT", rich_help_panel="Sampling", help="First seed; image i uses seed + i (fixed by default, so scores repeat).")] = 0,
    best_of: Annotated[int, typer.Option("--best-of", metavar="K", rich_help_panel=ILLUSION, help="Tasks anagram/hybrid: also measure what --best-of K keeps (n images per pair from n*K seeds).")] = 1,
    *,
    sampling: SamplingOptions,
    run: RunOptions,
) -> None:
    """Score a model's samples: per-class accuracy and confidence by a classifier trained on its dataset,
    the best and worst classes, FID in the classifier's feature space beside the real-vs-real floor at the
    same n; or the success rate of anagrams / hybrids over class pairs. The report goes to stdout (a table,
    or JSON with --json); progress goes to stderr.
    """
    common.start(run.quiet, run.json_output)
    if plot is not None and task != "chain":
        raise UsageError("--plot draws the chain task's curve", "add --task chain")
    from diffcli.jobs.evaluate import EvalRequest, chain_plot, check, check_gradable, evaluate as evaluate_job
    from diffcli.jobs.generate import load_generator

    request = EvalRequest(
        task, n, scorer, view, weight, pairs, kernel, sigma, sampling.engine(), batch_size, dataset, data_dir,
        retrain_classifier, clip_model, clip_pretrained, clip_weights, template, record, seed, best_of, far_first, near_last,
        download=download,
    )
    check(request)
    if plot is not None:
        from diffcli.io import images

        images.check_output(plot, run.json_output)
    entry = common.registry().get(run.model)
    check_gradable(entry.name, entry.config().cond_type)  # before any load or download
    model = load_generator(entry.name, run.device)
    report = evaluate_job(model, request, common.progress(run.quiet, run.json_output))
    if plot is not None:
        from diffcli.io import images

        target = images.resolve_output(plot, "chain.png", run.json_output, console.notice)
        images.write_png(chain_plot(report), target, {"command": common.command_line(), "subcommand": "eval", "model": model.name, "task": "chain"})
        if not target.is_stdout:
            console.result(f"wrote {target.describe()}")
    if run.json_output:
        console.emit_json(report)
    else:  # the report is the result: -q silences progress, never this
        _print_report(report)


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _print_report(report: dict) -> None:
    """The report as a table on stdout (plain text when stdout is not a terminal): it is the command's output."""
    out = console.stdout()
    settings = f"{report['sampler']} {report['steps']} steps, {common.cfg_text(report)}, seeds {report['seed']}+"
    if report["task"] == "sample" and report.get("scorer") == "clip":
        common.print_table(
            f"{report['model']}: {report['per_class']} samples per class scored by CLIP {report['model_clip']}, "
            f"\"{report['template']}\"",
            ("class", "n", "CLIP score", "zero-shot acc."),
            [[c["label"], str(c["n"]), "-" if c["clip_score"] is None else f"{c['clip_score']:.2f}",
              _percent(c["zero_shot_accuracy"])] for c in report["classes"]],
        )
        out.print(f"CLIP score {report['clip_score']:.2f} over {report['n']} samples ({settings}); best {report['best']}, worst {report['worst']}", markup=False)
        return
    classifier = report.get("classifier", {})
    grader = f"graded by {classifier.get('name')} (test accuracy {_percent(classifier.get('test_accuracy'))})"
    if report["task"] == "sample":
        if "classes" in report:
            common.print_table(
                f"{report['model']}: {report['per_class']} samples per class, {settings}",
                ("class", "n", "accuracy", "confidence", "mistaken for"),
                [[c["label"], str(c["n"]), _percent(c["accuracy"]), _percent(c["confidence"]), c["mistaken_for"] or ""]
                 for c in report["classes"]],
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
            [[f"{s['step']}/{len(chain)}", str(s["t"]), _percent(s["accuracy"]), _percent(s["noisy_accuracy"])]
             for s in chain if s["step"] in marks or any(a and s["step"] == a["step"] for a in (at, noisy_at))],
        )

        def where(a) -> str:
            return "never" if a is None else f"from step {a['step']}/{len(chain)} (t={a['t']}, {_percent(a['fraction'])} of the way)"

        out.print(f"recognisable (accuracy >= {_percent(report['threshold'])} to the end): clean estimate {where(at)}, noisy image {where(noisy_at)}; {grader}", markup=False)
        return
    roles = ("image", "view") if report["task"] == "anagram" else ("far", "near")
    what = f"view {report['view']}" if report["task"] == "anagram" else f"low-pass {report['kernel']}/{report['sigma']:g}, FAR alone for the first {_percent(report['far_first'])}, NEAR alone for the last {_percent(report['near_last'])}"
    common.print_table(
        f"{report['model']}: {report['task']}s, {what}, {report['per_pair']} seeds per pair, {settings}",
        (roles[0], roles[1], "n", "success", f"{roles[0]} ok", f"{roles[1]} ok"),
        [[p[roles[0]], p[roles[1]], str(p["n"]), _percent(p["rate"]), _percent(p[f"{roles[0]}_rate"]),
          _percent(p[f"{roles[1]}_rate"])] for p in sorted(report["pairs"], key=lambda p: -(p["rate"] or 0))],
    )
    out.print(f"success {_percent(report['rate'])} per seed ({report['successes']}/{report['n']}); {grader}", markup=False)
    best = report.get("best_of")
    if best:
        out.print(f"with --best-of {best['k']}: {_percent(best['rate'])} of {best['n']} images read both ways ({best['successes']}/{best['n']})", markup=False)
