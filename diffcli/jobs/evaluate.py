"""The `evaluate` job: measure what a model makes instead of showing hand-picked samples.

Tasks: sample (per-class accuracy and confidence by the dataset's scoring classifier, best and worst
class, FID in the classifier's features beside the real-vs-real floor at the same n), anagram and hybrid
(success over class pairs), chain (the step at which samples become recognisable). The scoring and the
generation live in scoring/runner.py; this job checks the request, picks the scorer, runs the task under
a progress view and returns the report as a plain dict.
"""

from __future__ import annotations

from typing import Any

from diffcli import checks, console, params
from diffcli.errors import DiffcliError, UsageError
from diffcli.generation.illusions import anagram_weight, hybrid_bands, hybrid_filter, illusion_sampling, pick_view
from diffcli.generation.settings import best_of_count, count, resolve_sampling
from diffcli.jobs.eval_request import EvalRequest
from diffcli.progress import ProgressFactory, silent

DEFAULT_N = {"sample": 100, "anagram": 10, "hybrid": 10, "chain": 20}


MAX_ILLUSION_IMAGES = 1_000_000  # an illusion evaluation's n x best_of x pairs: far past any study here


def check(request: EvalRequest) -> int:
    """Validate the parts of a request that need no model; returns n."""
    params.check(request)
    if request.scorer == "clip" and request.task != "sample":
        raise UsageError("`scorer` clip scores `task` sample only", "grade illusions with the classifier (the default)")
    n = DEFAULT_N[request.task] if request.n is None else count("n", request.n)
    checks.BATCH_SIZE(request.batch_size)
    if request.weight is not None:
        checks.WEIGHT(request.weight)
    checks.seed(request.seed)
    best_of = best_of_count(request.best_of)
    if best_of > 1 and request.task not in ("anagram", "hybrid"):
        raise UsageError("`best_of` is measured for `task` anagram and hybrid", "leave it out for this task")
    return n


def check_gradable(name: str, cond_type: str) -> None:
    """Evaluation grades class-conditional and unconditional models; front ends call this with the
    registry's config before loading (a text model would load, or download, gigabytes first)."""
    if cond_type == "text":
        raise UsageError(
            f"model {name!r} is text-to-image; evaluation grades class-conditional and unconditional models",
            "score its samples with your own prompts, or sample it with a prompt",
        )


def evaluate(model, request: EvalRequest, progress: ProgressFactory = silent) -> dict[str, Any]:
    """Score `model` (a LoadedModel) as `request` asks; the report as JSON-ready data."""
    from diffcli.scoring import grading, runner

    n = check(request)
    check_gradable(model.name, model.cond_type)
    task = request.task
    settings = (
        illusion_sampling(model, request.sampling, task)
        if task in ("anagram", "hybrid")
        else resolve_sampling(model, request.sampling)
    )
    run = {"seed": request.seed, "batch": request.batch_size}
    view = pick_view(request.view, model) if task == "anagram" else None
    filter_size = hybrid_filter(model, request.kernel, request.sigma) if task == "hybrid" else None
    bands = hybrid_bands(model, request.far_first, request.near_last) if task == "hybrid" else None
    pair_list = grading.parse_pairs(request.pairs, model) if task in ("anagram", "hybrid") else []
    candidates = n * request.best_of * len(pair_list)
    if candidates > MAX_ILLUSION_IMAGES:  # refused before lists of that many prompts are built
        raise UsageError(
            (
                f"{n} seeds x {request.best_of} candidates x {len(pair_list)} pairs is {candidates} images, "
                f"more than one evaluation makes ({MAX_ILLUSION_IMAGES})"
            ),
            "lower `n` or `best_of`, or pick `pairs`",
        )
    spec = grading.dataset_of(model, request.dataset)
    where = grading.data_dir_for(model, spec, request.data_dir)

    classifier = clip = None
    if request.scorer == "clip" and model.cond_type != "class":
        raise UsageError(
            f"model {model.name!r} is unconditional: CLIP scores need a class per sample",
            "use the classifier scorer (the default)",
        )
    if request.scorer == "classifier":
        from diffcli.scoring.classifier import load_or_train_classifier

        classifier = load_or_train_classifier(
            spec,
            data_dir=where,
            device=model.device,
            retrain=request.retrain_classifier,
            download=request.download,
            notify=console.notice,
        )
        grading.check_labels_match(model, classifier)
    else:
        from diffcli.scoring.clip_score import load_clip

        clip = load_clip(request.clip_model, request.clip_pretrained, model.device, weights=request.clip_weights)

    images = (
        n * request.best_of * len(pair_list)
        if task in ("anagram", "hybrid")
        else n * (len(model.labels) if model.cond_type == "class" else len(classifier.label_names))
    )
    title = f"eval {model.name} ({task}, {images} images)"
    with progress(title, total=runner.total_steps(model, settings, images, request.batch_size), unit="step") as view_:
        hook = lambda i, t, x_t, x0: view_.advance(1)  # noqa: E731
        if task == "anagram":
            report = runner.evaluate_anagrams(
                model,
                classifier,
                settings,
                pair_list,
                n,
                view,
                anagram_weight(model, request.weight),
                hook,
                request.best_of,
                **run,
            )
        elif task == "hybrid":
            report = runner.evaluate_hybrids(
                model,
                classifier,
                settings,
                pair_list,
                n,
                *filter_size,
                *bands,
                on_step=hook,
                best_of=request.best_of,
                **run,
            )
        elif task == "chain":
            report = runner.evaluate_chain(model, classifier, settings, n, on_step=hook, **run)
        else:
            pixels, intended, seconds = runner.sample_per_class(model, settings, n, images // n, hook, **run)
            head = {
                "task": "sample",
                "scorer": request.scorer,
                "per_class": n if intended is not None else None,
                "seconds": round(seconds, 2),
            }
            if clip is not None:
                from diffcli.scoring.clip_score import clip_scores, default_template

                scores = clip_scores(clip, pixels, intended, model.labels, request.template or default_template(spec))
                scores["model_clip"] = scores.pop("model")
            else:
                scores = runner.score_with_classifier(model, classifier, pixels, intended, spec, where)
            report = {**head, **scores}
    report = {
        "model": model.name,
        "dataset": spec,
        **settings.describe(model, request.seed),
        **(
            {"classifier": {"name": classifier.name, "test_accuracy": round(classifier.test_accuracy, 6)}}
            if classifier
            else {}
        ),
        **report,
    }
    if request.record:
        record(model, report)
    return report


def record(model, report: dict[str, Any]) -> str:
    """Store the headline figures in the model's config (user models only: built-ins are read-only);
    returns the config's path."""
    from diffcli.models.registry import Registry

    if model.entry.builtin:
        raise DiffcliError(
            f"model {model.name!r} is built in and read-only, so its figures cannot be recorded",
            "evaluate without recording",
        )
    headline = {k: v for k, v in report.items() if k not in ("classes", "pairs")}
    if "classes" in report:
        headline["per_class_accuracy"] = {c["label"]: c["accuracy"] for c in report["classes"]}
    key = report["task"] if report.get("scorer", "classifier") == "classifier" else "clip"

    def store(config) -> None:
        config.metrics.setdefault("eval", {})[key] = headline

    path = Registry().update_config(model.name, store, "recording its evaluation")
    console.notice(f"recorded the figures in {path}")
    return str(path)


def chain_plot(report: dict[str, Any]):
    """The chain task's accuracy-along-the-chain plot, as pixels."""
    from diffcli.scoring import runner

    return runner.chain_plot(report, f"{report['model']}: when do samples become recognisable?")
