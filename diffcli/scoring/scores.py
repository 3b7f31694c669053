"""Per-class scores from classifier probabilities, and success rates for illusions (anagrams, hybrids).

Plain numbers in plain dicts, ready for `--json`: every rate comes with the count it was measured on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def _array(values, dtype) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype)


def class_scores(
    probs: torch.Tensor | np.ndarray,
    intended_labels: Sequence[int] | torch.Tensor | np.ndarray,
    label_names: Sequence[str],
) -> dict:
    """Per-class and overall accuracy and confidence of samples generated for `intended_labels`.

    probs: [N, K] class probabilities; intended_labels: [N] the class each sample was generated as.
    Per class: n, accuracy (share classified as the intended class), confidence (mean probability of
    the intended class) and the class it was most often mistaken for. `best` and `worst` are the classes
    with the highest and lowest accuracy (ties broken by confidence), among classes with samples.
    """
    p = _array(probs, np.float64)
    intended = _array(intended_labels, np.int64)
    if p.ndim != 2 or p.shape[1] != len(label_names) or intended.shape != (p.shape[0],):
        raise ValueError(f"probs must be [N, {len(label_names)}] and labels [N]; got {p.shape} and {intended.shape}")
    if intended.size and (intended.min() < 0 or intended.max() >= len(label_names)):
        raise ValueError("intended labels must index label_names")
    predicted = p.argmax(axis=1) if p.size else np.zeros(0, np.int64)
    confidence = p[np.arange(len(intended)), intended] if len(intended) else np.zeros(0)
    classes = []
    for k, name in enumerate(label_names):
        mask = intended == k
        n = int(mask.sum())
        row: dict = {"index": k, "label": name, "n": n, "accuracy": None, "confidence": None, "mistaken_for": None}
        if n:
            row["accuracy"] = float((predicted[mask] == k).mean())
            row["confidence"] = float(confidence[mask].mean())
            wrong = predicted[mask][predicted[mask] != k]
            if wrong.size:
                row["mistaken_for"] = label_names[int(np.bincount(wrong, minlength=len(label_names)).argmax())]
        classes.append(row)
    scored = [c for c in classes if c["n"]]
    key = lambda c: (c["accuracy"], c["confidence"])  # noqa: E731 - the ranking rule, used twice
    return {
        "classes": classes,
        "n": int(len(intended)),
        "accuracy": float((predicted == intended).mean()) if len(intended) else None,
        "confidence": float(confidence.mean()) if len(intended) else None,
        "min_class_accuracy": min(c["accuracy"] for c in scored) if scored else None,
        "best": max(scored, key=key)["label"] if scored else None,
        "worst": min(scored, key=key)["label"] if scored else None,
    }


def pair_success(
    first_predicted: Sequence[int] | torch.Tensor | np.ndarray,
    second_predicted: Sequence[int] | torch.Tensor | np.ndarray,
    first_intended: Sequence[int] | torch.Tensor | np.ndarray,
    second_intended: Sequence[int] | torch.Tensor | np.ndarray,
    label_names: Sequence[str],
    roles: tuple[str, str] = ("first", "second"),
) -> dict:
    """Success of two-reading images: a sample succeeds when BOTH readings are classified as intended.

    Each argument is [N] class indices: what the classifier saw in the first and second reading of
    each sample, and what each reading was meant to show. Returns per (first, second) pair, in order of
    first appearance, n, successes, rate and each reading's own rate (named by `roles`), and the same
    overall.
    """
    got1, got2 = _array(first_predicted, np.int64), _array(second_predicted, np.int64)
    want1, want2 = _array(first_intended, np.int64), _array(second_intended, np.int64)
    if not (got1.shape == got2.shape == want1.shape == want2.shape) or got1.ndim != 1:
        raise ValueError("pair_success needs four [N] label arrays of one length")
    ok1, ok2 = got1 == want1, got2 == want2
    both = ok1 & ok2

    def summary(mask: np.ndarray) -> dict:
        n = int(mask.sum())
        rate = lambda ok: float(ok[mask].mean()) if n else None  # noqa: E731
        return {
            "n": n,
            "successes": int(both[mask].sum()),
            "rate": rate(both),
            f"{roles[0]}_rate": rate(ok1),
            f"{roles[1]}_rate": rate(ok2),
        }

    pairs = []
    for a, b in dict.fromkeys(zip(want1.tolist(), want2.tolist())):  # ordered, unique
        pairs.append({roles[0]: label_names[a], roles[1]: label_names[b], **summary((want1 == a) & (want2 == b))})
    return {"pairs": pairs, **summary(np.ones(len(got1), dtype=bool))}


def anagram_success(image_predicted, view_predicted, label_a, label_b, label_names: Sequence[str]) -> dict:
    """Anagrams: success when the image reads as A and its transformed view as B."""
    return pair_success(image_predicted, view_predicted, label_a, label_b, label_names, roles=("image", "view"))


def hybrid_success(lowpass_predicted, image_predicted, label_far, label_near, label_names: Sequence[str]) -> dict:
    """Hybrids: success when the low-pass (seen from afar) reads as FAR and the image itself as NEAR."""
    return pair_success(lowpass_predicted, image_predicted, label_far, label_near, label_names, roles=("far", "near"))


__all__ = ["anagram_success", "class_scores", "hybrid_success", "pair_success"]
