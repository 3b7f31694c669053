"""How noise estimates are combined: one mechanism for CFG, visual anagrams and hybrid images,
plus the SDEdit start and the inpainting hook.

Every guided estimate is a weighted sum of terms,

    out(x_t) = sum_k  w_k * filter_k( V_k^-1( net(V_k(x_t), t, c_k) ) ),

evaluated in ONE batched forward pass over the distinct (condition, view) pairs (conditions compared by
value, so CFG's null condition is evaluated once however many terms use it). So:
- conditional sampling is one term (c, 1);
- classifier-free guidance with scale s is (c, s) + (null, 1 - s)  (eps_u + s (eps_c - eps_u));
- a visual anagram is CFG(A) weighted w plus CFG(B) seen through a view V, weighted 1 - w;
- a hybrid image is CFG(FAR) through a low-pass plus CFG(NEAR) through the matching high-pass.
All weights sum to 1, so the same combination holds for eps, v or velocity outputs alike.

A term may apply during a range of timesteps only (`Term.during`): a hybrid can take its low band from
FAR early and from NEAR late, an anagram can change its weights along the way. The builders keep the
weights summing to 1 at every timestep, and an evaluation that no term needs at a step is skipped.

A network with a learned variance (DeepFloyd IF) returns 2C channels; the variance half is taken as the
mean over the conditional evaluations (mapped back through each view's spatial inverse), as the
course does when it guides IF.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from diffcli.diffusion import filters
from diffcli.diffusion.samplers import AfterStep, NoiseSource
from diffcli.diffusion.schedule import NoiseSchedule
from diffcli.diffusion.views import VIEWS, View

Denoiser = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]
"""(x_t [B,C,H,W], t [B] long, cond: a batched tensor or None) -> raw output."""

Filter = Callable[[torch.Tensor], torch.Tensor]

ALWAYS = 1 << 62
"""A stop above every timestep: `during=(first, ALWAYS)` applies from `first` up to the start."""


@dataclass(frozen=True)
class Term:
    """One evaluation's share of the guided estimate.

    cond: the batched condition (class indices, text embeddings) or None for an unconditional model.
    unconditional: this is the null condition of CFG (its variance is not used).
    during: the timesteps [first, stop) at which the term applies (None: all of them).
    """

    cond: Any
    weight: float
    view: View = field(default_factory=lambda: VIEWS["identity"])
    filter: Filter | None = None
    unconditional: bool = False
    during: tuple[int, int] | None = None

    def applies(self, t: int) -> bool:
        """Whether the term is part of the estimate at timestep t."""
        return self.during is None or self.during[0] <= t < self.during[1]


def classifier_free(
    cond: Any,
    null: Any,
    scale: float,
    *,
    weight: float = 1.0,
    view: View | None = None,
    filter: Filter | None = None,
    during: tuple[int, int] | None = None,
    interval: tuple[int, int] | None = None,
) -> list[Term]:
    """CFG as terms: eps_u + scale * (eps_c - eps_u). A scale of 1 (or no null condition) is plain
    conditional sampling, one evaluation. `during`: the timesteps [first, stop) it applies at.

    interval: the timesteps [first, stop) where the guidance applies (Kynkaanniemi et al. 2024); at the
    other timesteps of `during` the estimate is the plain conditional one (scale 1), which also saves
    the null evaluation there. None: guided throughout."""
    view = view or VIEWS["identity"]
    if null is None or scale == 1.0:
        return [Term(cond, weight, view, filter, during=during)]

    def guided(span: tuple[int, int] | None) -> list[Term]:
        return [
            Term(cond, weight * scale, view, filter, during=span),
            Term(null, weight * (1.0 - scale), view, filter, unconditional=True, during=span),
        ]

    if interval is None:
        return guided(during)
    first, stop = during or (0, ALWAYS)
    inside = (max(first, interval[0]), min(stop, interval[1]))
    outside = [(first, min(stop, interval[0])), (max(first, interval[1]), stop)]
    terms = guided(_span(inside)) if inside[0] < inside[1] else []
    terms += [Term(cond, weight, view, filter, during=_span(piece)) for piece in outside if piece[0] < piece[1]]
    return terms


def _span(span: tuple[int, int]) -> tuple[int, int] | None:
    """A `during` range, None when it is every timestep."""
    return None if span[0] <= 0 and span[1] >= ALWAYS else span


def anagram_terms(
    cond_a: Any,
    cond_b: Any,
    null: Any,
    scale: float,
    view: View,
    weight: float | Sequence[tuple[int, int, float]] = 0.5,
    interval: tuple[int, int] | None = None,
) -> list[Term]:
    """eps = w * eps(x_t, A) + (1 - w) * V^-1(eps(V(x_t), B)), each term CFG-guided (docs/engine.md).

    weight: w, or a schedule of (first, stop, w) segments over the timesteps [first, stop) (w may change
    along the reverse process; the two weights still sum to 1 at every step). interval: where the
    guidance applies (`classifier_free`)."""
    segments = (
        [(None, float(weight))]
        if isinstance(weight, (int, float))
        else [((int(a), int(b)), float(w)) for a, b, w in weight]
    )
    terms: list[Term] = []
    for during, w in segments:
        if w != 0.0:
            terms += classifier_free(cond_a, null, scale, weight=w, during=during, interval=interval)
        if w != 1.0:
            terms += classifier_free(cond_b, null, scale, weight=1.0 - w, view=view, during=during, interval=interval)
    return terms


def hybrid_terms(
    cond_far: Any,
    cond_near: Any,
    null: Any,
    scale: float,
    kernel: int,
    sigma: float,
    low_switch: int = 0,
    high_switch: int | None = None,
    interval: tuple[int, int] | None = None,
) -> list[Term]:
    """eps = lowpass(eps(x_t, FAR)) + highpass(eps(x_t, NEAR)), each CFG-guided (factorized diffusion).

    Each band may come from its prompt during part of the reverse process only: the low band is FAR's
    at t >= low_switch and NEAR's below it (0: FAR's throughout); the high band is NEAR's at
    t < high_switch and FAR's from there up (None: NEAR's throughout). So the two bands always add up
    to one whole estimate. interval: where the guidance applies (`classifier_free`)."""
    low = lambda e: filters.lowpass(e, kernel, sigma)  # noqa: E731
    high = lambda e: filters.highpass(e, kernel, sigma)  # noqa: E731
    top = ALWAYS if high_switch is None else int(high_switch)
    bands = [
        (cond_far, low, (int(low_switch), ALWAYS)),
        (cond_near, low, (0, int(low_switch))),
        (cond_near, high, (0, top)),
        (cond_far, high, (top, ALWAYS)),
    ]
    terms: list[Term] = []
    for cond, band, span in bands:
        if span[0] < span[1]:
            terms += classifier_free(cond, null, scale, filter=band, during=_span(span), interval=interval)
    return terms


class GuidedModel:
    """A model function (x_t, t) -> combined output, for `run_reverse`.

    Terms whose conditions are equal in value (same dtype, shape, device and contents, compared once
    here) and whose views are the same share one evaluation; all distinct evaluations go through the
    network in one batched call.

    context: a tensor concatenated to x_t on the channel axis before the views are applied (stage II
    of DeepFloyd IF reads [x_t, the upsampled stage-I image]), so a view transforms the whole input,
    as the visual-anagrams reference does. The output keeps x_t's channels (and the variance half).
    """

    def __init__(
        self,
        denoiser: Denoiser,
        terms: Sequence[Term],
        learned_variance: bool = False,
        context: torch.Tensor | None = None,
    ) -> None:
        if not terms:
            raise ValueError("guidance needs at least one term")
        self.denoiser = denoiser
        self.terms = list(terms)
        self.learned_variance = learned_variance
        self.context = context
        self._evaluations: list[tuple[Any, View]] = []
        self._unconditional: list[bool] = []  # True when every term of the evaluation is CFG's null one
        self._term_eval: list[int] = []
        for term in self.terms:
            k = next(
                (
                    i
                    for i, (cond, view) in enumerate(self._evaluations)
                    if view.name == term.view.name and same_condition(cond, term.cond)
                ),
                None,
            )
            if k is None:
                k = len(self._evaluations)
                self._evaluations.append((term.cond, term.view))
                self._unconditional.append(True)
            self._unconditional[k] = self._unconditional[k] and term.unconditional
            self._term_eval.append(k)
        self._ranged = any(term.during is not None for term in self.terms)

    @property
    def evaluations(self) -> int:
        """How many network rows one sample costs per step."""
        return len(self._evaluations)

    def term_outputs(self, x: torch.Tensor, t: torch.Tensor) -> list[tuple[Term, torch.Tensor]]:
        """The terms that apply at t, each with the raw network output of its evaluation (in the view's
        frame, before the inverse and the filter), from the same one batched call `__call__` makes: for
        studies that combine the terms otherwise than by their weighted sum."""
        active, outputs, _ = self._evaluate(x, t)
        return [(term, outputs[k]) for term, k in active]

    def _evaluate(
        self, x: torch.Tensor, t: torch.Tensor
    ) -> tuple[list[tuple[Term, int]], dict[int, torch.Tensor], list[int]]:
        """(the active terms with their evaluation's index, each needed evaluation's output, the indices)."""
        step = self._step(t) if self._ranged else None
        active = [(term, k) for term, k in zip(self.terms, self._term_eval) if step is None or term.applies(step)]
        if not active:
            raise ValueError(f"no guidance term applies at timestep {step}")
        needed = sorted({k for _, k in active})
        full = x if self.context is None else torch.cat([x, self.context], dim=1)
        x_in = torch.cat([self._evaluations[k][1].apply(full) for k in needed])
        conds = [self._evaluations[k][0] for k in needed]
        cond_in = None if all(c is None for c in conds) else torch.cat(conds)
        outputs = dict(zip(needed, self.denoiser(x_in, t.repeat(len(needed)), cond_in).chunk(len(needed))))
        return active, outputs, needed

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        active, outputs, needed = self._evaluate(x, t)
        channels = x.shape[1]
        combined: torch.Tensor | None = None
        for term, k in active:
            e = term.view.inverse(outputs[k][:, :channels])
            if term.filter is not None:
                e = term.filter(e)
            combined = term.weight * e if combined is None else combined + term.weight * e
        assert combined is not None
        if not self.learned_variance:
            return combined
        chosen = [k for k in needed if not self._unconditional[k]] or needed
        variances = [self._evaluations[k][1].spatial_inverse(outputs[k][:, channels:]) for k in chosen]
        return torch.cat([combined, torch.stack(variances).mean(0)], dim=1)

    @staticmethod
    def _step(t: torch.Tensor) -> int:
        """The one timestep of a batch (terms with a `during` range need every row at the same step)."""
        first = int(t.reshape(-1)[0])
        if bool((t != first).any()):
            raise ValueError("terms limited to a range of timesteps need one timestep for the whole batch")
        return first


def same_condition(a: Any, b: Any) -> bool:
    """Whether two batched conditions are equal in value: both None, the same object, or tensors of
    the same dtype, shape and device with equal contents."""
    if a is b:
        return True
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        return False
    return a.dtype == b.dtype and a.shape == b.shape and a.device == b.device and bool(torch.equal(a, b))


# ----- image-to-image ------------------------------------------------------------------------------
def sdedit_start(schedule: NoiseSchedule, x0: torch.Tensor, t_start: int, noise: NoiseSource) -> torch.Tensor:
    """SDEdit (Meng et al. 2022): noise a clean image to t_start; the reverse loop then runs from there."""
    return schedule.q_sample(x0, t_start, noise.randn_like(x0))


def inpaint_hook(schedule: NoiseSchedule, x_orig: torch.Tensor, mask: torch.Tensor, noise: NoiseSource) -> AfterStep:
    """After every step keep the generated pixels where mask = 1 and put back the original, noised to
    the step's timestep, where mask = 0 (RePaint-style, as in the course):
    x_s = m * x_s + (1 - m) * q_sample(x_orig, s)."""

    def after_step(x: torch.Tensor, s: int) -> torch.Tensor:
        known = x_orig if s < 0 else schedule.q_sample(x_orig, s, noise.randn_like(x_orig))
        return mask * x + (1 - mask) * known

    return after_step
