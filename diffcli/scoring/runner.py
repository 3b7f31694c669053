"""Generating and scoring for evaluations: the pieces the `evaluate` job (jobs/evaluate.py) puts together.

- `sample_per_class` + `score_with_classifier`: n samples per class (or n x classes unconditional ones),
  graded by the dataset's classifier: per-class accuracy and confidence, best and worst class, FID in
  the classifier's feature space with the real-vs-real floor at the same n (from the package for the shipped
  classifiers, so the embedded models are scored offline; see scoring/shipped.py);
- `evaluate_anagrams` / `evaluate_hybrids`: n seeds per class pair, a success when both readings of
  the image are classified as intended;
- `evaluate_chain`: at every reverse step, the share of clean estimates (and of noisy images) that read
  as their class, and where that share stays above a threshold;
- `dataset_of`, `data_dir_for`, `parse_pairs`, `check_labels_match`: what is graded against what.
Samples are generated in batches with `generation.generate`, so every sampler, guidance scale and
backend that `sample` supports is scored the same way. Nothing here prints: progress goes through
`on_step`, results come back as plain dicts (ready for JSON).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import permutations
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from diffcli.errors import DiffcliError, UsageError
from diffcli.generation import SamplerSettings, generate, guidance_report, plan_timesteps, prompt_terms
from diffcli.models.backends.base import LoadedModel, Prompt

StepHook = Callable[[int, int, torch.Tensor, torch.Tensor], None]
TermsFor = Callable[[slice], list]


@dataclass(frozen=True)
class GenerationPlan:
    """How every evaluated image is generated: sampler settings, CFG scale, first seed, batch size."""

    settings: SamplerSettings
    scale: float
    seed: int = 0
    batch_size: int = 250

    def describe(self, model: LoadedModel) -> dict:
        steps = len(plan_timesteps(model.schedule, self.settings))
        return {"sampler": self.settings.sampler, "steps": steps, **guidance_report(self.scale, self.settings.guidance_interval), "seed": self.seed, "eta": self.settings.eta if self.settings.sampler == "ddim" else None}


def dataset_of(model: LoadedModel, dataset: Optional[str]) -> str:
    """The dataset the model's samples are graded against: --dataset, else what its config records."""
    from diffcli.data.names import canonical_dataset

    spec = canonical_dataset(dataset) if dataset else model.config.dataset_name
    if not spec:
        raise UsageError(
            f"model {model.name!r} records no training dataset, so there is no classifier to grade it",
            "give the `dataset` (mnist, fashion-mnist, glyphs or folder:PATH) and its `data_dir`",
        )
    return spec


def data_dir_for(model: LoadedModel, spec: str, given: Optional[str]) -> Optional[Path]:
    """--data-dir, else the default data dir when it holds the dataset, else the folder the model was
    trained from (its config records it), so `eval` finds the data that `train` used."""
    if given:
        return Path(given).expanduser()
    if spec not in ("mnist", "fashion-mnist"):
        return None
    from diffcli.data import default_data_dir
    from diffcli.data.mnist import locate

    default = default_data_dir()
    if locate(spec, default) is not None:
        return default
    source = (model.config.dataset or {}).get("source")
    if source and Path(source).is_dir() and locate(spec, Path(source)) is not None:
        return Path(source)
    return default


def total_steps(model: LoadedModel, plan: GenerationPlan, count: int) -> int:
    """Reverse steps a run of `count` images takes in batches (for a progress bar)."""
    batches = -(-count // plan.batch_size)
    return batches * len(plan_timesteps(model.schedule, plan.settings))


def generate_batches(model: LoadedModel, terms_for: TermsFor, count: int, plan: GenerationPlan, on_step: Optional[StepHook] = None) -> torch.Tensor:
    """`count` images (model range, on the CPU); image i uses seed plan.seed + i whatever the batching.
    terms_for(slice) builds the guidance terms of the rows in that slice."""
    out = []
    for start in range(0, count, plan.batch_size):
        rows = slice(start, min(count, start + plan.batch_size))
        seeds = list(range(plan.seed + rows.start, plan.seed + rows.stop))
        out.append(generate(model, terms_for(rows), seeds, plan.settings, callback=on_step).float().cpu())
    return torch.cat(out)


def class_prompts(model: LoadedModel) -> list[Prompt]:
    if model.cond_type != "class":
        return []
    return [Prompt(name, k) for k, name in enumerate(model.labels)]


def check_labels_match(model: LoadedModel, classifier) -> None:
    """A class model is graded by a classifier of the same classes, in the same order."""
    if model.cond_type == "class" and list(model.labels) != list(classifier.label_names):
        raise DiffcliError(
            f"model {model.name!r} has classes {', '.join(model.labels)} but classifier {classifier.name!r} has {', '.join(classifier.label_names)}",
            "give the `dataset` the model was trained on",
        )
    if (model.channels, model.size) != (classifier.channels, classifier.size):
        raise DiffcliError(
            f"model {model.name!r} makes {model.channels}x{model.size}x{model.size} images but classifier {classifier.name!r} reads {classifier.channels}x{classifier.size}x{classifier.size}",
            "give the `dataset` the model was trained on",
        )


def sample_per_class(model: LoadedModel, plan: GenerationPlan, n: int, classes_if_unconditional: int, on_step: Optional[StepHook] = None) -> tuple[np.ndarray, Optional[list[int]], float]:
    """n samples per class of a class model (class-major order), or n x classes unconditional ones.

    Returns pixels [N, C, H, W] in [0, 1], the intended class of each (None: unconditional) and the
    seconds spent generating."""
    classes = class_prompts(model)
    prompts: list[Optional[Prompt]] = [p for p in classes for _ in range(n)] if classes else [None] * (n * classes_if_unconditional)
    began = time.perf_counter()
    x = generate_batches(model, lambda rows: prompt_terms(model, prompts[rows], plan.scale, plan.settings.guidance_interval), len(prompts), plan, on_step)
    seconds = time.perf_counter() - began
    return model.to_pixels(x), ([p.label for p in prompts] if classes else None), seconds


def score_with_classifier(model: LoadedModel, classifier, pixels: np.ndarray, intended: Optional[list[int]], spec: str, data_dir: Optional[Path] = None) -> dict:
    """Per-class accuracy and confidence (or, unconditional, the share of each class) and FID with
    its real-vs-real floor at the same n, all in the classifier's terms."""
    from diffcli.scoring.classifier import predict
    from diffcli.scoring.fid import fid_of_pixels, floor_for, reference_for
    from diffcli.scoring.scores import class_scores

    probs = predict(classifier, pixels)
    if intended is not None:
        report = class_scores(probs, intended, model.labels)
    else:  # unconditional: what the samples are, not whether they hit a class
        predicted = probs.argmax(1).numpy()
        report = {"n": len(pixels), "class_shares": {name: float((predicted == k).mean()) for k, name in enumerate(classifier.label_names)}, "confidence": float(probs.max(1).values.mean())}
    mu, sigma, reference_n, reference_source = reference_for(classifier, spec, data_dir=data_dir)
    floor, floor_source = floor_for(classifier, spec, len(pixels), data_dir=data_dir)
    report["fid"] = {
        "value": round(fid_of_pixels(classifier, pixels, mu, sigma), 4),
        "n": len(pixels),
        "floor": round(floor, 4),
        "reference_n": int(reference_n),
        "space": f"{classifier.name} features",
        # "shipped": statistics and floor from the package (shipped.py); "data": measured from the dataset files
        "reference": reference_source,
        "floor_source": floor_source,
    }
    return report


def parse_pairs(text: Optional[str], model: LoadedModel) -> list[tuple[Prompt, Prompt]]:
    """'6:9,1:7' -> resolved prompt pairs; None -> every ordered pair of distinct classes."""
    if model.cond_type != "class":
        raise UsageError(f"model {model.name!r} is not class-conditional: illusions are scored for class pairs")
    if not text:
        classes = class_prompts(model)
        return list(permutations(classes, 2))
    pairs = []
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) != 2 or not all(parts):
            raise UsageError(f"`pairs` entry {item.strip()!r} is not A:B", "write pairs like 6:9,1:7")
        pairs.append((model.resolve_prompt(parts[0].strip()), model.resolve_prompt(parts[1].strip())))
    return pairs


def _pair_rows(pairs: Sequence[tuple[Prompt, Prompt]], n: int) -> tuple[list[Prompt], list[Prompt]]:
    first = [a for a, _ in pairs for _ in range(n)]
    second = [b for _, b in pairs for _ in range(n)]
    return first, second


def _best_of(readings, first: Sequence[Prompt], second: Sequence[Prompt], best_of: int, roles: tuple[str, str], label_names: Sequence[str]) -> dict:
    """What `best_of` would keep from consecutive groups of `best_of` candidates (the commands' own
    `choose`): the share of groups whose kept candidate reads as intended both ways, overall and per pair."""
    from diffcli.scoring.readings import choose

    keep, every = choose(readings, best_of)
    pairs: dict[tuple[int, int], list[bool]] = {}
    for group, reads in enumerate(every):
        row = group * best_of
        pairs.setdefault((first[row].label, second[row].label), []).append(reads)
    return {
        "k": best_of,
        "n": len(every),
        "successes": int(sum(every)),
        "rate": sum(every) / len(every) if every else None,
        "pairs": [{roles[0]: label_names[a], roles[1]: label_names[b], "n": len(r), "successes": int(sum(r)), "rate": sum(r) / len(r)} for (a, b), r in pairs.items()],
    }


def _readings(classifier, pixels_by_reading, targets_by_reading) -> list:
    from diffcli.scoring.readings import ClassifierReader

    reader = ClassifierReader(classifier)
    return [reader.read(pixels, targets) for pixels, targets in zip(pixels_by_reading, targets_by_reading)]


def evaluate_anagrams(model: LoadedModel, classifier, plan: GenerationPlan, pairs, n: int, view, weight: float = 0.5, on_step: Optional[StepHook] = None, best_of: int = 1) -> dict:
    """Anagram success over n seeds per pair: the image reads as A and its view as B.

    best_of K > 1: n images per pair from n * K seeds; the per-seed figures cover every seed, and
    `best_of` the share of images whose kept candidate (as `anagram --best-of K` keeps it) reads both ways."""
    from diffcli.scoring.scores import anagram_success
    from diffcli.illusions import anagram_request

    check_labels_match(model, classifier)
    view.check_fits(model.size, model.size)
    first, second = _pair_rows(pairs, n * best_of)
    began = time.perf_counter()
    x = generate_batches(model, lambda rows: anagram_request(model, first[rows], second[rows], plan.scale, view, weight, plan.settings.guidance_interval), len(first), plan, on_step)
    seconds = time.perf_counter() - began
    readings = _readings(classifier, [model.to_pixels(x), model.to_pixels(view.apply(x))], [first, second])
    report = anagram_success(readings[0].predicted, readings[1].predicted, [p.label for p in first], [p.label for p in second], model.labels)
    extra = {"best_of": _best_of(readings, first, second, best_of, ("image", "view"), model.labels)} if best_of > 1 else {}
    return {"task": "anagram", "view": view.name, "weight": weight, "per_pair": n * best_of, "seconds": round(seconds, 2), **report, **extra}


def evaluate_hybrids(model: LoadedModel, classifier, plan: GenerationPlan, pairs, n: int, kernel: int, sigma: float, far_first: float = 0.0, near_last: float = 0.0, on_step: Optional[StepHook] = None, best_of: int = 1) -> dict:
    """Hybrid success over n seeds per pair: the low-pass reads as FAR and the image as NEAR.
    far_first / near_last: the shares of the reverse process with one prompt alone (`hybrid_request`).
    best_of: as for `evaluate_anagrams`."""
    from diffcli.diffusion import filters
    from diffcli.scoring.scores import hybrid_success
    from diffcli.illusions import hybrid_request

    check_labels_match(model, classifier)
    far, near = _pair_rows(pairs, n * best_of)
    began = time.perf_counter()
    x = generate_batches(model, lambda rows: hybrid_request(model, far[rows], near[rows], plan.scale, kernel, sigma, far_first, near_last, plan.settings.guidance_interval), len(far), plan, on_step)
    seconds = time.perf_counter() - began
    readings = _readings(classifier, [model.to_pixels(filters.lowpass(x, kernel, sigma)), model.to_pixels(x)], [far, near])
    report = hybrid_success(readings[0].predicted, readings[1].predicted, [p.label for p in far], [p.label for p in near], model.labels)
    bands = {"far_first": far_first, "near_last": near_last}
    extra = {"best_of": _best_of(readings, far, near, best_of, ("far", "near"), model.labels)} if best_of > 1 else {}
    return {"task": "hybrid", "kernel": kernel, "sigma": sigma, **bands, "per_pair": n * best_of, "seconds": round(seconds, 2), **report, **extra}


def evaluate_chain(model: LoadedModel, classifier, plan: GenerationPlan, n: int, threshold: float = 0.9, on_step: Optional[StepHook] = None) -> dict:
    """Where along the reverse chain a sample becomes recognisable: at every step, the share of the
    clean estimates x0_t that the classifier reads as the intended class (and, for comparison, the
    share of the noisy x_t themselves, which is what a person looking at the chain sees).

    `recognisable_at` is the first step from which the x0 share stays at or above `threshold` (and
    `noisy_recognisable_at` the same for x_t), also as a fraction of the way (the ITAI notebook
    guesses about 70 %)."""
    from diffcli.scoring.classifier import predict

    check_labels_match(model, classifier)
    classes = class_prompts(model)
    if not classes:
        raise UsageError(f"model {model.name!r} is not class-conditional: the chain task needs an intended class per sample")
    prompts = [p for p in classes for _ in range(n)]
    intended = torch.tensor([p.label for p in prompts])
    steps = len(plan_timesteps(model.schedule, plan.settings))
    correct_x0, correct_xt = torch.zeros(steps), torch.zeros(steps)
    timesteps = [0] * steps
    offset = [0]  # rows done in earlier batches

    def read(x: torch.Tensor, rows: torch.Tensor) -> float:
        return float((predict(classifier, model.to_pixels(x)).argmax(1) == rows).sum())

    def record(i: int, t: int, x_t: torch.Tensor, x0: torch.Tensor) -> None:
        rows = intended[offset[0] : offset[0] + x0.shape[0]]
        correct_x0[i] += read(x0, rows)
        correct_xt[i] += read(x_t, rows)
        timesteps[i] = t
        if i == steps - 1:
            offset[0] += x0.shape[0]
        if on_step is not None:
            on_step(i, t, x_t, x0)

    began = time.perf_counter()
    generate_batches(model, lambda rows: prompt_terms(model, prompts[rows], plan.scale, plan.settings.guidance_interval), len(prompts), plan, record)
    accuracy, noisy = (correct_x0 / len(prompts)).tolist(), (correct_xt / len(prompts)).tolist()

    def first_stable(values: list[float]) -> Optional[dict]:
        above = [a >= threshold for a in values]
        first = next((i for i in range(steps) if all(above[i:])), None)
        return None if first is None else {"step": first + 1, "t": timesteps[first], "fraction": round((first + 1) / steps, 3)}

    return {
        "task": "chain",
        "n": len(prompts),
        "per_class": n,
        "threshold": threshold,
        "seconds": round(time.perf_counter() - began, 2),
        "chain": [{"step": i + 1, "t": t, "accuracy": round(a, 4), "noisy_accuracy": round(b, 4)} for i, (t, a, b) in enumerate(zip(timesteps, accuracy, noisy))],
        "recognisable_at": first_stable(accuracy),
        "noisy_recognisable_at": first_stable(noisy),
    }


def chain_plot(report: dict, title: str) -> np.ndarray:
    """Accuracy of the clean estimate against the fraction of the reverse chain done."""
    from diffcli.io.plot import Series, line_plot

    steps = report["chain"]
    x = [s["step"] / len(steps) for s in steps]
    series = [
        Series("clean estimate x0", x, [s["accuracy"] for s in steps], markers=len(steps) <= 30),
        Series("noisy x_t", x, [s["noisy_accuracy"] for s in steps], markers=len(steps) <= 30),
    ]
    series.append(Series(f"threshold {report['threshold']:g}", [0.0, 1.0], [report["threshold"]] * 2))
    return line_plot(series, title=title, xlabel="fraction of the reverse chain done", ylabel="read as its class")
