"""Can `--best-of` screen candidates early? (docs/illusions.md, "How many candidates")

`anagram --best-of K` runs K whole reverse chains per image and keeps the one that reads best. A cheaper
search would start S > K candidates, read their clean estimates x0 after a few of the 20 steps, and
finish only the K most promising. That pays only if an early x0 predicts how the finished image reads.
This script measures it: for every ordered digit pair it makes M anagrams with the illusion defaults
(seed 100 on, the same seeds and settings as `diffcli eval --task anagram -n 1 --best-of M --seed 100`),
reads every step's clean estimate and its view with the dataset's scoring classifier, and then replays
each screening policy on the recorded chains (DDIM is deterministic: finishing a candidate does not
depend on which others were dropped).

    python studies/best_of_screening.py [--model mnist] [--view rot180] [-m 32]

prints the per-seed rate, plain best-of-K for K = 1, 2, 4, ..., M, and each policy "screen S at step
i, finish K" with its success and its cost in whole chains.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

STEPS = 20  # the illusion defaults for class models (docs/illusions.md): DDIM 20 steps, CFG 5
GUIDANCE = 5.0


def plain_best_of(final: np.ndarray, k: int) -> float:
    """final [pairs, M] bool (each candidate reads both ways): the share of groups of k consecutive
    candidates with at least one that reads both ways (what `best_of` k keeps reads both ways then)."""
    pairs, m = final.shape
    groups = final[:, : (m // k) * k].reshape(pairs, m // k, k)
    return float(groups.any(2).mean())


def screened(final: np.ndarray, early: np.ndarray, s: int, k: int) -> float:
    """Groups of s consecutive candidates; keep the k with the highest early score (early [pairs, M]),
    succeed when one of those reads both ways once finished."""
    pairs, m = final.shape
    cut = (m // s) * s
    groups, scores = final[:, :cut].reshape(pairs, m // s, s), early[:, :cut].reshape(pairs, m // s, s)
    top = np.argsort(-scores, axis=2, kind="stable")[:, :, :k]
    return float(np.take_along_axis(groups, top, 2).any(2).mean())


def chain_cost(s: int, k: int, step: int, steps: int = STEPS) -> float:
    """Whole chains' worth of network evaluations: s candidates for `step` steps, k for the rest."""
    return (s * step + k * (steps - step)) / steps


def record(model_name: str, view_name: str, m: int, seed: int = 100, batch: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """Per step the weaker of the two readings' confidences of each candidate's clean estimate
    [steps, pairs, m], and whether each finished image reads both ways [pairs, m]."""
    import diffcli
    from diffcli.diffusion.views import get_view
    from diffcli.scoring.classifier import load_or_train_classifier

    model = diffcli.load(model_name).loaded
    if model.cond_type != "class" or not model.config.dataset_name:
        raise SystemExit(f"best-of screening: model {model_name!r} is not a class model with a dataset; give one")
    classifier = load_or_train_classifier(model.config.dataset_name, device=model.device)
    view = get_view(view_name)
    prompts = [model.resolve_prompt(str(k)) for k in range(len(model.labels))]
    pairs = [(p, q) for p in prompts for q in prompts if p.label != q.label]  # eval's order of the pairs
    first = [p for p, _ in pairs for _ in range(m)]
    second = [q for _, q in pairs for _ in range(m)]
    n = len(first)
    weaker = np.zeros((STEPS, n), dtype=np.float32)
    reads = np.zeros(n, dtype=bool)
    for start in range(0, n, batch):
        rows = slice(start, min(n, start + batch))
        seeds = list(range(seed + start, seed + rows.stop))
        weaker[:, rows], reads[rows] = record_batch(model, classifier, view, first[rows], second[rows], seeds)
        print(f"{rows.stop} of {n} candidates", file=sys.stderr, flush=True)
    return weaker.reshape(STEPS, len(pairs), m), reads.reshape(len(pairs), m)


def record_batch(model, classifier, view, first: list, second: list, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """One batch of anagrams made as `anagram` makes them with the illusion defaults (the engine's reverse
    loop, DDIM 20 steps, CFG 5, weight 0.5): the weaker reading's confidence of each step's clean
    estimate [STEPS, batch] and whether each finished image reads both ways [batch]."""
    import torch

    from diffcli.diffusion.guidance import GuidedModel, anagram_terms
    from diffcli.diffusion.samplers import DDIMSampler, NoiseSource, run_reverse
    from diffcli.scoring.inference import predict

    a, b = torch.tensor([p.label for p in first]), torch.tensor([p.label for p in second])
    index = torch.arange(len(a))
    weaker = np.zeros((STEPS, len(a)), dtype=np.float32)

    def both(x) -> tuple:
        return predict(classifier, model.to_pixels(x)), predict(classifier, model.to_pixels(view.apply(x)))

    def read(i: int, t: int, x_t, x0) -> None:
        pa, pb = both(x0)
        weaker[i] = torch.minimum(pa[index, a], pb[index, b]).numpy()

    null = model.null_condition(len(first))
    terms = anagram_terms(model.condition(first), model.condition(second), null, GUIDANCE, view)
    noise = NoiseSource(seeds, model.device)
    x_start = noise.randn((model.channels, model.size, model.size)).to(model.device)
    timesteps = model.schedule.strided_timesteps(STEPS, model.schedule.timesteps - 1)
    guided = GuidedModel(model.net, terms, learned_variance=model.learned_variance)
    x = run_reverse(guided, x_start, timesteps, model.schedule, model.spec, DDIMSampler(), noise, read)
    pa, pb = both(x)
    return weaker, ((pa.argmax(1) == a) & (pb.argmax(1) == b)).numpy()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mnist")
    parser.add_argument("--view", default="rot180")
    parser.add_argument("-m", type=int, default=32, help="candidates per pair (a power of two)")
    args = parser.parse_args(argv)
    if args.m < 2 or args.m & (args.m - 1):
        raise SystemExit(f"best-of screening: -m {args.m}: give a power of two, at least 2")
    began = time.perf_counter()
    early, final = record(args.model, args.view, args.m)
    print(
        f"{args.model}, anagram {args.view}, {final.shape[0]} pairs "
        f"x {args.m} seeds ({time.perf_counter() - began:.0f} s)"
    )
    k = 1
    while k <= args.m:
        print(f"plain best-of-{k}: {100 * plain_best_of(final, k):.1f} %")
        k *= 2
    for s in (16, 32):
        for keep in (4, 8):
            for step in (1, 3, 5, 8, 10):
                if s <= args.m:
                    print(
                        f"screen {s} at step {step}, finish {keep}: "
                        f"{100 * screened(final, early[step - 1], s, keep):.1f} % "
                        f"for {chain_cost(s, keep, step):.1f} chains"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
