"""`diffcli eval`: measure what a model makes (per-class accuracy, FID with its floor, illusion success)
instead of showing hand-picked samples."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from diffcli import console
from diffcli.cli import common, generating
from diffcli.errors import DiffcliError, UsageError

TASKS = ("sample", "anagram", "hybrid", "chain")
SCORERS = ("classifier", "clip")
DEFAULT_N = {"sample": 100, "anagram": 10, "hybrid": 10, "chain": 20}


def evaluate(
    task: Annotated[str, typer.Option("--task", help="sample (per-class scores and FID), anagram or hybrid (success rate over class pairs), chain (the step at which samples become recognisable).")] = "sample",
    n: Annotated[Optional[int], typer.Option("-n", help="Samples per class (sample: 100, chain: 20) or seeds per pair (anagram/hybrid: 10).")] = None,
    scorer: Annotated[str, typer.Option("--scorer", help="classifier (trained once per dataset, cached in the registry) or clip (open_clip, optional).")] = "classifier",
    view: Annotated[str, typer.Option("--view", help="Task anagram: flip, rot180, hflip, rot90 or negate.")] = "flip",
    weight: Annotated[float, typer.Option("--weight", help="Task anagram: weight of the first prompt's estimate.")] = 0.5,
    pairs: Annotated[Optional[str], typer.Option("--pairs", help="Tasks anagram/hybrid: class pairs A:B, comma-separated (default: every ordered pair of distinct classes).")] = None,
    kernel: Annotated[Optional[int], typer.Option("--kernel", help="Task hybrid: low-pass kernel size (default scaled to the model).")] = None,
    sigma: Annotated[Optional[float], typer.Option("--sigma", help="Task hybrid: low-pass sigma (default scaled to the model).")] = None,
    sampler: common.SamplerName = None,
    steps: common.Steps = None,
    stride: common.Stride = None,
    guidance: common.Guidance = None,
    eta: common.Eta = 0.0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images generated per batch.")] = 250,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Grade against this dataset (default: the one the model was trained on).")] = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="Where the dataset's files are (default: $DIFFCLI_DATA, else where the model was trained from).")] = None,
    retrain_classifier: Annotated[bool, typer.Option("--retrain-classifier", help="Train the dataset's scoring classifier afresh (replaces the cached one).")] = False,
    clip_model: Annotated[str, typer.Option("--clip-model", help="Scorer clip: the open_clip model.")] = "ViT-B-32",
    clip_pretrained: Annotated[str, typer.Option("--clip-pretrained", help="Scorer clip: the pretrained tag, read from the local open_clip / Hugging Face cache.")] = "laion2b_s34b_b79k",
    clip_weights: Annotated[Optional[str], typer.Option("--clip-weights", help="Scorer clip: a local open_clip checkpoint file instead of the tag.")] = None,
    template: Annotated[Optional[str], typer.Option("--template", help='Scorer clip: prompt template with {label} (default: "a photo of the digit {label}" for digits).')] = None,
    plot: Annotated[Optional[str], typer.Option("--plot", help="Task chain: also write the accuracy-along-the-chain plot as a PNG here (- for stdout).")] = None,
    record: Annotated[bool, typer.Option("--record", help="Store the headline figures in the model's config.json (metrics.eval).")] = False,
    model: common.ModelName = None,
    device: common.Device = "auto",
    seed: Annotated[int, typer.Option("--seed", help="First seed; image i uses seed + i (fixed by default, so scores repeat).")] = 0,
    quiet: common.Quiet = False,
    json_output: common.Json = False,
) -> None:
    """Score a model's samples: per-class accuracy and confidence by a classifier trained on its dataset,
    the best and worst classes, FID in the classifier's features beside the real-vs-real floor at the
    same n; or the success rate of anagrams / hybrids over class pairs. A table on stderr, --json on stdout.
    """
    common.start(quiet, json_output)
    if task not in TASKS:
        raise UsageError(f"unknown --task {task!r}", f"choose one of {', '.join(TASKS)}")
    if scorer not in SCORERS:
        raise UsageError(f"unknown --scorer {scorer!r}", f"choose one of {', '.join(SCORERS)}")
    if plot is not None and task != "chain":
        raise UsageError("--plot draws the chain task's curve", "add --task chain")
    if scorer == "clip" and task != "sample":
        raise UsageError("--scorer clip scores --task sample only", "grade illusions with the classifier (the default)")
    n = DEFAULT_N[task] if n is None else n
    generating.positive_count(n)
    common.positive("--batch-size", batch_size)
    if not 0.0 <= weight <= 1.0:
        raise UsageError(f"--weight must be between 0 and 1, got {weight}")
    common.pick_seed(seed)

    from diffcli.evaluate import runner
    from diffcli.generation import guidance_scale

    gen = generating.load_generator(model, device)
    if gen.cond_type == "text":
        raise UsageError(f"model {gen.name!r} is text-to-image; eval grades class-conditional and unconditional models", "score its samples with your own prompts and `--scorer clip` on a class model, or sample it with `diffcli sample --prompt`")
    settings = generating.sampler_settings(gen, sampler, steps, stride, eta)
    plan = runner.GenerationPlan(settings, guidance_scale(gen, guidance), seed, batch_size)
    the_view = generating.pick_view(view, gen) if task == "anagram" else None
    filter_size = generating.hybrid_filter(gen, kernel, sigma) if task == "hybrid" else None
    pair_list = runner.parse_pairs(pairs, gen) if task in ("anagram", "hybrid") else []
    spec = runner.dataset_of(gen, dataset)
    where = runner.data_dir_for(gen, spec, data_dir)

    classifier = clip = None
    if scorer == "clip" and gen.cond_type != "class":
        raise UsageError(f"model {gen.name!r} is unconditional: CLIP scores need a class per sample", "use the classifier scorer (the default)")
    if scorer == "classifier":
        from diffcli.evaluate.classifier import load_or_train_classifier

        classifier = load_or_train_classifier(spec, data_dir=where, device=gen.device, retrain=retrain_classifier, notify=console.notice)
        runner.check_labels_match(gen, classifier)
    else:
        from diffcli.evaluate.clip_score import load_clip

        clip = load_clip(clip_model, clip_pretrained, gen.device, weights=clip_weights)

    if task in ("anagram", "hybrid"):
        count = n * len(pair_list)
    else:
        count = n * (len(gen.labels) if gen.cond_type == "class" else len(classifier.label_names))
    title = f"eval {gen.name} ({task}, {count} images)"
    total = runner.total_steps(gen, plan, count)

    def progress(job):
        return _with_progress(title, total, quiet, json_output, job)

    if task == "anagram":
        report = progress(lambda hook: runner.evaluate_anagrams(gen, classifier, plan, pair_list, n, the_view, weight, hook))
    elif task == "hybrid":
        report = progress(lambda hook: runner.evaluate_hybrids(gen, classifier, plan, pair_list, n, *filter_size, on_step=hook))
    elif task == "chain":
        report = progress(lambda hook: runner.evaluate_chain(gen, classifier, plan, n, on_step=hook))
    else:
        pixels, intended, seconds = progress(lambda hook: runner.sample_per_class(gen, plan, n, count // n, hook))
        head = {"task": "sample", "scorer": scorer, "per_class": n if intended is not None else None, "seconds_generating": round(seconds, 2)}
        if clip is not None:
            from diffcli.evaluate.clip_score import clip_scores, default_template

            scores = clip_scores(clip, pixels, intended, gen.labels, template or default_template(spec))
            scores["model_clip"] = scores.pop("model")
        else:
            scores = runner.score_with_classifier(gen, classifier, pixels, intended, spec, where)
        report = {**head, **scores}
    report = {
        "model": gen.name,
        "dataset": spec,
        **plan.describe(gen),
        **({"classifier": {"name": classifier.name, "test_accuracy": round(classifier.test_accuracy, 6)}} if classifier else {}),
        **report,
    }
    if plot is not None:
        from diffcli.io import images

        target = images.resolve_output(plot, "chain.png", json_output, console.notice)
        images.write_png(runner.chain_plot(report, f"{gen.name}: when do samples become recognisable?"), target, common.metadata("eval", model=gen.name, task="chain"))
    if record:
        _record(gen, report)
    if json_output:
        console.emit_json(report)
    else:
        _print_report(report)


def _with_progress(title: str, total: int, quiet: bool, json_output: bool, job):
    """Run job(on_step) under the progress view (a live panel on a terminal, plain lines otherwise)."""
    from diffcli.tui.progress import RunView, choose_mode

    with RunView(title, total=total, mode=choose_mode(quiet, json_output), unit="step") as view:
        return job(lambda i, t, x_t, x0: view.advance(1))


def _record(gen, report: dict) -> None:
    """Headline figures into the model's config (user models only: built-ins are read-only)."""
    from diffcli.io.atomic import atomic_write_text

    if gen.entry.builtin:
        raise DiffcliError(f"model {gen.name!r} is built in and read-only; --record cannot write to it", "drop --record")
    config = gen.entry.config()
    headline = {k: v for k, v in report.items() if k not in ("classes", "pairs")}
    if "classes" in report:
        headline["per_class_accuracy"] = {c["label"]: c["accuracy"] for c in report["classes"]}
    config.metrics.setdefault("eval", {})[report["task"] if report.get("scorer", "classifier") == "classifier" else "clip"] = headline
    atomic_write_text(gen.entry.config_path, config.to_json())
    console.notice(f"recorded the figures in {gen.entry.config_path}")


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _print_report(report: dict) -> None:
    """A Rich table on stderr (plain text when stderr is not a terminal)."""
    from rich.table import Table

    out = console.stderr()
    settings = f"{report['sampler']} {report['steps']} steps, CFG {report['guidance']:g}, seeds {report['seed']}+"
    if report["task"] == "sample" and report.get("scorer") == "clip":
        table = Table(title=f"{report['model']}: {report['per_class']} samples per class scored by CLIP {report['model_clip']}, \"{report['template']}\"")
        for col in ("class", "n", "CLIP score", "zero-shot acc."):
            table.add_column(col, justify="right")
        for c in report["classes"]:
            table.add_row(c["label"], str(c["n"]), "-" if c["clip_score"] is None else f"{c['clip_score']:.2f}", _percent(c["zero_shot_accuracy"]))
        out.print(table)
        out.print(f"CLIP score {report['clip_score']:.2f} over {report['n']} samples ({settings}); best {report['best']}, worst {report['worst']}", markup=False)
        return
    classifier = report.get("classifier", {})
    grader = f"graded by {classifier.get('name')} (test accuracy {_percent(classifier.get('test_accuracy'))})"
    if report["task"] == "sample":
        if "classes" in report:
            table = Table(title=f"{report['model']}: {report['per_class']} samples per class, {settings}")
            for col in ("class", "n", "accuracy", "confidence", "mistaken for"):
                table.add_column(col, justify="right")
            for c in report["classes"]:
                table.add_row(c["label"], str(c["n"]), _percent(c["accuracy"]), _percent(c["confidence"]), c["mistaken_for"] or "")
            out.print(table)
            out.print(
                f"accuracy {_percent(report['accuracy'])} over {report['n']} samples (lowest class {_percent(report['min_class_accuracy'])}); "
                f"best {report['best']}, worst {report['worst']}",
                markup=False,
            )
        else:
            shares = ", ".join(f"{k} {_percent(v)}" for k, v in report["class_shares"].items())
            out.print(f"{report['n']} unconditional samples ({settings}) read as: {shares}", markup=False)
        fid = report["fid"]
        out.print(f"FID {fid['value']:.3f} (n={fid['n']}; real-vs-real floor at the same n {fid['floor']:.3f}) in {fid['space']}; {grader}", markup=False)
        return
    if report["task"] == "chain":
        at = report["recognisable_at"]
        chain = report["chain"]
        marks = {max(1, round(f * len(chain))) for f in (0.1, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)}
        table = Table(title=f"{report['model']}: the classifier's verdict on the clean estimate along the chain ({report['n']} samples, {settings})")
        noisy_at = report["noisy_recognisable_at"]
        for col in ("step", "t", "x0 read as its class", "x_t read as its class"):
            table.add_column(col, justify="right")
        for s in chain:
            if s["step"] in marks or any(a and s["step"] == a["step"] for a in (at, noisy_at)):
                table.add_row(f"{s['step']}/{len(chain)}", str(s["t"]), _percent(s["accuracy"]), _percent(s["noisy_accuracy"]))
        out.print(table)

        def where(a) -> str:
            return "never" if a is None else f"from step {a['step']}/{len(chain)} (t={a['t']}, {_percent(a['fraction'])} of the way)"

        out.print(f"recognisable (accuracy >= {_percent(report['threshold'])} to the end): clean estimate {where(at)}, noisy image {where(noisy_at)}; {grader}", markup=False)
        return
    roles = ("image", "view") if report["task"] == "anagram" else ("far", "near")
    what = f"view {report['view']}" if report["task"] == "anagram" else f"low-pass {report['kernel']}/{report['sigma']:g}"
    table = Table(title=f"{report['model']}: {report['task']}s, {what}, {report['per_pair']} seeds per pair, {settings}")
    for col in (roles[0], roles[1], "n", "success", f"{roles[0]} ok", f"{roles[1]} ok"):
        table.add_column(col, justify="right")
    for p in sorted(report["pairs"], key=lambda p: -(p["rate"] or 0)):
        table.add_row(p[roles[0]], p[roles[1]], str(p["n"]), _percent(p["rate"]), _percent(p[f"{roles[0]}_rate"]), _percent(p[f"{roles[1]}_rate"]))
    out.print(table)
    out.print(f"success {_percent(report['rate'])} ({report['successes']}/{report['n']}); {grader}", markup=False)
