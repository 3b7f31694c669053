"""Guidance requests for illusions, shared by the `anagram` / `hybrid` commands and `eval --task`.

Each returns guidance terms for `generation.generate` (and, with the low-pass scaled to 256 px, for
stage II of DeepFloyd IF). Guidance compares conditions by value, so the null condition both prompts'
CFG terms use is evaluated once per step.
"""

from __future__ import annotations

from typing import Sequence

from diffcli.diffusion.guidance import Term, anagram_terms, hybrid_terms
from diffcli.diffusion.views import View
from diffcli.models.backends.base import LoadedModel, Prompt


def anagram_request(model: LoadedModel, first: Sequence[Prompt], second: Sequence[Prompt], scale: float, view: View, weight: float = 0.5) -> list[Term]:
    """Terms for a batch of anagrams: row i reads as first[i], and as second[i] after `view`."""
    null = model.null_condition(len(first)) if scale != 1.0 else None
    return anagram_terms(model.condition(first), model.condition(second), null, scale, view, weight)


def hybrid_request(model: LoadedModel, far: Sequence[Prompt], near: Sequence[Prompt], scale: float, kernel: int, sigma: float) -> list[Term]:
    """Terms for a batch of hybrids: row i is far[i] in its low frequencies and near[i] in its high."""
    null = model.null_condition(len(far)) if scale != 1.0 else None
    return hybrid_terms(model.condition(far), model.condition(near), null, scale, kernel, sigma)
