"""The `evaluate` job: measure what a model makes instead of showing hand-picked samples.

Tasks: sample (per-class accuracy and confidence by the dataset's scoring classifier, best and worst
class, FID in the classifier's features beside the real-vs-real floor at the same n), anagram and hybrid
(success over class pairs), chain (the step at which samples become recognisable). The scoring and the
generation live in scoring/runner.py; this job checks the request, picks the scorer, runs the task under
a progress view and returns the report as a plain dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from diffcli import console
from diffcli.errors import DiffcliError, UsageError
from diffcli import checks
from diffcli.jobs.generate import Sampling, anagram_weight, best_of_count, count, hybrid_bands, hybrid_filter, illusion_sampling, pick_view, resolve_sampling
from diffcli.progress import ProgressFactory, silent

TASKS = ("sample", "anagram", "hybrid", "chain")
SCORERS = ("classifier", "clip")
DEFAULT_N = {"sample": 100, "anagram": 10, "hybrid": 10, "chain": 20}


MAX_ILLUSION_IMAGES = 1_000_000  # an illusion evaluation's n x best_of x pairs: far past any study here


@dataclass
class EvalRequest:
    """What to measure and how.

    n: samples per class (sample: 100, chain: 20) or seeds per pair (anagram / hybrid: 10).
    scorer: classifier (the dataset's scoring CNN) or clip (open_clip, optional; task sample only).
    pairs: anagram / hybrid class pairs "A:B,C:D" (default: every ordered pair of distinct classes).
    dataset / data_dir: grade against this dataset (default: the one the model was trained on).
    download: when training a scorer needs the dataset's files and `data_dir` lacks them, download them there.
    record: store the headline figures in the model's config.json (user models only).
    seed: the first seed; image i uses seed + i (fixed, so scores repeat).
    Tasks anagram and hybrid generate exactly as the `anagram` and `hybrid` commands do: what the
    request leaves out (sampler, steps, guidance, weight, filter) takes the same illusion defaults.
    best_of: tasks anagram and hybrid: also report what `best_of` K would keep (n images per pair
    from n * K seeds; the per-seed figures then cover all n * K).
    """

    task: str = "sample"
    n: Optional[int] = None
    scorer: str = "classifier"
    view: str = "flip"
    weight: Optional[float] = None
    pairs: Optional[str] = None
    kernel: Optional[int] = None
    sigma: Optional[float] = None
    sampling: Sampling = field(default_factory=Sampling)
    batch_size: int = 250
    dataset: Optional[str] = None
    data_dir: Optional[str] = None
    retrain_classifier: bool = False
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = "laion2b_s34b_b79k"
    clip_weights: Optional[str] = None
    template: Optional[str] = None
    record: bool = False
    seed: int = 0
    best_of: int = 1
    far_first: Optional[float] = None
    near_last: Optional[float] = None
    download: bool = False


def check(request: EvalRequest) -> int:
    """Validate the parts of a request that need no model; returns n."""
    checks.choice("task", request.task, TASKS)
    checks.choice("scorer", request.scorer, SCORERS)
    if request.scorer == "clip" and request.task != "sample":
        raise UsageError("`scorer` clip scores `task` sample only", "grade illusions with the classifier (the default)")
    n = DEFAULT_N[request.task] if request.n is None else count("n", request.n)
    checks.integer("batch_size", request.batch_size, low=1)
    if request.weight is not None:
        checks.number("weight", request.weight, low=0.0, high=1.0)
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
    from diffcli.scoring import runner

    n = check(request)
    check_gradable(model.name, model.cond_type)
    task = request.task
    settings, scale = illusion_sampling(model, request.sampling, task) if task in ("anagram", "hybrid") else resolve_sampling(model, request.sampling)
    plan = runner.GenerationPlan(settings, scale, request.seed, request.batch_size)
    view = pick_view(request.view, model) if task == "anagram" else None
    filter_size = hybrid_filter(model, request.kernel, request.sigma) if task == "hybrid" else None
    bands = hybrid_bands(model, request.far_first, request.near_last) if task == "hybrid" else None
    pair_list = runner.parse_pairs(request.pairs, model) if task in ("anagram", "hybrid") else []
    candidates = n * request.best_of * len(pair_list)
    if candidates > MAX_ILLUSION_IMAGES:  # refused before lists of that many prompts are built
        raise UsageError(f"{n} seeds x {request.best_of} candidates x {len(pair_list)} pairs is {candidates} images, more than one evaluation makes ({MAX_ILLUSION_IMAGES})", "lower `n` or `best_of`, or pick `pairs`")
    spec = runner.dataset_of(model, request.dataset)
    where = runner.data_dir_for(model, spec, request.data_dir)

    classifier = clip = None
    if request.scorer == "clip" and model.cond_type != "class":
        raise UsageError(f"model {model.name!r} is unconditional: CLIP scores need a class per sample", "use the classifier scorer (the default)")
    if request.scorer == "classifier":
        from diffcli.scoring.classifier import load_or_train_classifier

        classifier = load_or_train_classifier(
            spec, data_dir=where, device=model.device, retrain=request.retrain_classifier, download=request.download,
            notify=console.notice,
        )
        runner.check_labels_match(model, classifier)
    else:
        from diffcli.scoring.clip_score import load_clip

        clip = load_clip(request.clip_model, request.clip_pretrained, model.device, weights=request.clip_weights)

    images = n * request.best_of * len(pair_list) if task in ("anagram", "hybrid") else n * (len(model.labels) if model.cond_type == "class" else len(classifier.label_names))
    title = f"eval {model.name} ({task}, {images} images)"
    with progress(title, total=runner.total_steps(model, plan, images), unit="step") as view_:
        hook = lambda i, t, x_t, x0: view_.advance(1)  # noqa: E731
        if task == "anagram":
            report = runner.evaluate_anagrams(model, classifier, plan, pair_list, n, view, anagram_weight(model, request.weight), hook, request.best_of)
        elif task == "hybrid":
            report = runner.evaluate_hybrids(model, classifier, plan, pair_list, n, *filter_size, *bands, on_step=hook, best_of=request.best_of)
        elif task == "chain":
            report = runner.evaluate_chain(model, classifier, plan, n, on_step=hook)
        else:
            pixels, intended, seconds = runner.sample_per_class(model, plan, n, images // n, hook)
            head = {"task": "sample", "scorer": request.scorer, "per_class": n if intended is not None else None, "seconds": round(seconds, 2)}
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
        **plan.describe(model),
        **({"classifier": {"name": classifier.name, "test_accuracy": round(classifier.test_accuracy, 6)}} if classifier else {}),
        **report,
    }
    if request.record:
        record(model, report)
    return report


def record(model, report: dict[str, Any]) -> str:
    """Store the headline figures in the model's config (user models only: built-ins are read-only);
    returns the config's path."""
    from diffcli.io.atomic import atomic_write_text

    if model.entry.builtin:
        raise DiffcliError(f"model {model.name!r} is built in and read-only, so its figures cannot be recorded", "evaluate without recording")
    config = model.entry.config()
    headline = {k: v for k, v in report.items() if k not in ("classes", "pairs")}
    if "classes" in report:
        headline["per_class_accuracy"] = {c["label"]: c["accuracy"] for c in report["classes"]}
    config.metrics.setdefault("eval", {})[report["task"] if report.get("scorer", "classifier") == "classifier" else "clip"] = headline
    atomic_write_text(model.entry.config_path, config.to_json())
    console.notice(f"recorded the figures in {model.entry.config_path}")
    return str(model.entry.config_path)


def chain_plot(report: dict[str, Any]):
    """The chain task's accuracy-along-the-chain plot, as pixels."""
    from diffcli.scoring import runner

    return runner.chain_plot(report, f"{report['model']}: when do samples become recognisable?")
