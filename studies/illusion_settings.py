"""The study behind the illusion defaults (docs/illusions.md, "What raises success per seed").

Each row is one measurement over all 90 ordered digit pairs with the MNIST scoring classifier, through
the same seeds and scoring classifier as `diffcli eval --task anagram|hybrid`. Rows
whose settings the commands offer print the equivalent `diffcli eval` command; a few try combinations
the commands do not offer (a weight that alternates per step, a guidance scale that changes over time,
the other prompt as a negative, one CFG scale per hybrid band) and build their guidance terms here.

    python studies/illusion_settings.py [--rows a1,h3] [--model mnist] [--data-dir DIR]

prints one line per row (its rate, each reading's rate, the command) and, at the end, a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

BIG = 1 << 62  # above every timestep


@dataclass
class Row:
    key: str
    what: str
    task: str  # anagram or hybrid
    options: dict  # eval options (view, sampler, steps, guidance, kernel, sigma, far_first, near_last)
    n: int = 2
    seed: int = 100
    custom: dict = field(default_factory=dict)  # terms the commands do not offer


def rows() -> list[Row]:
    a = {"view": "rot180", "sampler": "ddim", "steps": 20}
    f = {"view": "flip", "sampler": "ddim", "steps": 20}
    h = {"sampler": "ddim", "steps": 20, "guidance": 5.0, "kernel": 13, "sigma": 1.75, "far_first": 0.2}
    out = [Row("a1", "rot180, DDIM 20, CFG 2 (before)", "anagram", {**a, "guidance": 2.0})]
    out += [
        Row(f"a{i}", f"rot180, DDIM 20, CFG {g:g}", "anagram", {**a, "guidance": g})
        for i, g in enumerate((3.0, 4.0, 5.0, 6.0, 7.0), 2)
    ]
    out += [
        Row("a7", "rot180, DDIM 10, CFG 5", "anagram", {**a, "steps": 10, "guidance": 5.0}),
        Row("a8", "rot180, DDIM 50, CFG 5", "anagram", {**a, "steps": 50, "guidance": 5.0}),
        Row(
            "a9",
            "rot180, DDPM 50, CFG 5 (stochastic)",
            "anagram",
            {**a, "sampler": "ddpm", "steps": 50, "guidance": 5.0},
        ),
        Row(
            "a10",
            "rot180, DDPM 100, CFG 5 (stochastic)",
            "anagram",
            {**a, "sampler": "ddpm", "steps": 100, "guidance": 5.0},
        ),
        Row(
            "a11",
            "rot180, DDIM 50 eta 1, CFG 5 (stochastic)",
            "anagram",
            {**a, "steps": 50, "eta": 1.0, "guidance": 5.0},
        ),
        Row("a12", "rot180, Heun 10, CFG 5", "anagram", {**a, "sampler": "heun", "steps": 10, "guidance": 5.0}),
        Row("a13", "rot180, DPM++ 20, CFG 5", "anagram", {**a, "sampler": "dpm++", "steps": 20, "guidance": 5.0}),
        Row(
            "a14",
            "rot180, DDIM 20, CFG 5, weight 1 / 0 alternating per step",
            "anagram",
            {**a, "guidance": 5.0},
            custom={"alternate": True},
        ),
        Row(
            "a15",
            "rot180, DDIM 20, CFG 8 falling to 2",
            "anagram",
            {**a, "guidance": 8.0},
            custom={"guidance_late": 2.0},
        ),
        Row(
            "a16",
            "rot180, DDIM 20, CFG 2 rising to 8",
            "anagram",
            {**a, "guidance": 2.0},
            custom={"guidance_late": 8.0},
        ),
        Row(
            "a17",
            "rot180, DDIM 20, CFG 5, negative: half the other prompt",
            "anagram",
            {**a, "guidance": 5.0},
            custom={"negative": 0.5},
        ),
        Row(
            "a18",
            "rot180, DDIM 20, CFG 5, negative: the other prompt",
            "anagram",
            {**a, "guidance": 5.0},
            custom={"negative": 1.0},
        ),
    ]
    out += [
        Row(f"a{i}", f"flip, DDIM 20, CFG {g:g}", "anagram", {**f, "guidance": g})
        for i, g in enumerate((3.0, 4.0, 5.0, 6.0, 7.0), 19)
    ]
    out += [
        Row("a24", "rot180, DDIM 20, CFG 5, 5 seeds a pair", "anagram", {**a, "guidance": 5.0}, n=5),
        Row("a25", "flip, DDIM 20, CFG 5, 5 seeds a pair", "anagram", {**f, "guidance": 5.0}, n=5),
        Row(
            "a26",
            "rot180, DDIM 20, CFG 5, the mean estimate's noise rescaled to the views' own (5 seeds)",
            "anagram",
            {**a, "guidance": 5.0},
            n=5,
            custom={"rectify": True},
        ),
        Row(
            "a27",
            "rot180, DDIM 20, CFG 5, each step redone 3 times after renoising (all steps, 5 seeds)",
            "anagram",
            {**a, "guidance": 5.0},
            n=5,
            custom={"time_travel": (3, 1.0)},
        ),
        Row(
            "a28",
            "rot180, DDIM 20, CFG 5, each step redone 3 times in the first half (5 seeds)",
            "anagram",
            {**a, "guidance": 5.0},
            n=5,
            custom={"time_travel": (3, 0.5)},
        ),
        Row(
            "a29",
            "rot180, DDIM 20, CFG 5, the clean estimate not clipped (5 seeds)",
            "anagram",
            {**a, "guidance": 5.0},
            n=5,
            custom={"spec": {"clip": None}},
        ),
        Row(
            "a30",
            "rot180, DDIM 20, CFG 5, dynamic thresholding at 0.95 (5 seeds)",
            "anagram",
            {**a, "guidance": 5.0},
            n=5,
            custom={"spec": {"dynamic_threshold": 0.95, "threshold_max": 1.5}},
        ),
        Row(
            "a31",
            "rot180, DDIM 20, CFG 5 at timesteps [200, 700) only, conditional elsewhere (5 seeds)",
            "anagram",
            {**a, "guidance": 5.0, "guidance_interval": "0.2:0.7"},
            n=5,
        ),
        Row(
            "a32",
            "rot180, DDIM 20, CFG 8 at timesteps [200, 700) only (5 seeds)",
            "anagram",
            {**a, "guidance": 8.0, "guidance_interval": "0.2:0.7"},
            n=5,
        ),
        Row(
            "a33",
            "rot180, DDIM 20, CFG 8 at timesteps below 700 only (5 seeds)",
            "anagram",
            {**a, "guidance": 8.0, "guidance_interval": "0:0.7"},
            n=5,
        ),
        Row(
            "a34",
            "rot180, DDIM 20, CFG 5, each view weighted per image and step by the size of its guidance (5 seeds)",
            "anagram",
            {**a, "guidance": 5.0},
            n=5,
            custom={"adaptive": 1.0},
        ),
        Row(
            "a35",
            "rot180, DDIM 20, CFG 5, each view weighted by its guidance's size squared (5 seeds)",
            "anagram",
            {**a, "guidance": 5.0},
            n=5,
            custom={"adaptive": 2.0},
        ),
        Row(
            "a36",
            "rot180, DDIM 20, CFG 5, the starting noise x 0.9 (5 seeds)",
            "anagram",
            {**a, "guidance": 5.0},
            n=5,
            custom={"temperature": 0.9},
        ),
        Row(
            "a37",
            "rot180, DDIM 20, CFG 5, the starting noise x 0.8 (5 seeds)",
            "anagram",
            {**a, "guidance": 5.0},
            n=5,
            custom={"temperature": 0.8},
        ),
    ]
    out += [
        Row(f"h{i}", f"sigma {s:g}, DDIM 20, CFG 5", "hybrid", {**h, "sigma": s, "kernel": k, "far_first": 0.0})
        for i, (s, k) in enumerate(((1.0, 7), (1.5, 11), (2.0, 13), (2.5, 17), (3.0, 19)), 1)
    ]
    out += [
        Row("h6", "sigma 1.75, CFG 3", "hybrid", {**h, "guidance": 3.0, "far_first": 0.0}),
        Row("h7", "sigma 1.75, CFG 7", "hybrid", {**h, "guidance": 7.0, "far_first": 0.0}),
        Row("h8", "sigma 1.75, CFG 5, FAR alone for the first 10%", "hybrid", {**h, "far_first": 0.1}),
        Row("h9", "sigma 1.75, CFG 5, FAR alone for the first 20%", "hybrid", dict(h)),
        Row("h10", "sigma 1.75, CFG 5, FAR alone for the first 30%", "hybrid", {**h, "far_first": 0.3}),
        Row("h11", "sigma 1.75, CFG 5, FAR alone for the first 40%", "hybrid", {**h, "far_first": 0.4}),
        Row(
            "h12", "sigma 1.75, CFG 5, NEAR alone for the last 20%", "hybrid", {**h, "far_first": 0.0, "near_last": 0.2}
        ),
        Row(
            "h13", "sigma 1.75, CFG 5, NEAR alone for the last 40%", "hybrid", {**h, "far_first": 0.0, "near_last": 0.4}
        ),
        Row("h14", "sigma 1.75, CFG 5, FAR first 20%, NEAR last 20%", "hybrid", {**h, "near_last": 0.2}),
        Row("h15", "sigma 1.75, FAR first 20%, DDIM 50", "hybrid", {**h, "steps": 50}),
        Row(
            "h16", "sigma 1.75, FAR first 20%, DDPM 100 (stochastic)", "hybrid", {**h, "sampler": "ddpm", "steps": 100}
        ),
        Row(
            "h17",
            "sigma 1.75, FAR first 20%, CFG 3 for FAR, 7 for NEAR",
            "hybrid",
            dict(h),
            custom={"far_guidance": 3.0, "near_guidance": 7.0},
        ),
        Row(
            "h18",
            "sigma 1.75, FAR first 20%, CFG 7 for FAR, 3 for NEAR",
            "hybrid",
            dict(h),
            custom={"far_guidance": 7.0, "near_guidance": 3.0},
        ),
        Row(
            "h19",
            "sigma 1.75, FAR first 20%, CFG 5 for FAR, 8 for NEAR",
            "hybrid",
            dict(h),
            custom={"far_guidance": 5.0, "near_guidance": 8.0},
        ),
        Row("h20", "sigma 1.75, FAR first 20%, CFG 5, 5 seeds a pair", "hybrid", dict(h), n=5),
        Row("h21", "sigma 1.75, FAR first 20%, CFG 4, 5 seeds a pair", "hybrid", {**h, "guidance": 4.0}, n=5),
        Row("h22", "sigma 1.75, FAR first 20%, CFG 6, 5 seeds a pair", "hybrid", {**h, "guidance": 6.0}, n=5),
        Row("h23", "sigma 2, FAR first 20%, CFG 5, 5 seeds a pair", "hybrid", {**h, "sigma": 2.0}, n=5),
        Row("h24", "sigma 2, CFG 5, 5 seeds a pair", "hybrid", {**h, "sigma": 2.0, "far_first": 0.0}, n=5),
        Row("h25", "sigma 1.75, FAR first 10%, CFG 5, 5 seeds a pair", "hybrid", {**h, "far_first": 0.1}, n=5),
        Row(
            "h26",
            "sigma 1.75, FAR first 20%, CFG 5, the clean estimate not clipped, 5 seeds a pair",
            "hybrid",
            dict(h),
            n=5,
            custom={"spec": {"clip": None}},
        ),
        Row(
            "h27",
            "sigma 1.75, FAR first 20%, CFG 5, dynamic thresholding at 0.95, 5 seeds a pair",
            "hybrid",
            dict(h),
            n=5,
            custom={"spec": {"dynamic_threshold": 0.95, "threshold_max": 1.5}},
        ),
        Row(
            "h28",
            "sigma 1.75, FAR first 20%, CFG 5 only above 0.2 T (the last fifth plainly conditional), 5 seeds a pair",
            "hybrid",
            {**h, "guidance_interval": "0.2:1"},
            n=5,
        ),
        Row(
            "h29",
            "sigma 1.75, FAR first 20%, CFG 5 only below 0.7 T, 5 seeds a pair",
            "hybrid",
            {**h, "guidance_interval": "0:0.7"},
            n=5,
        ),
        Row(
            "h30",
            "sigma 1.75, FAR first 20%, CFG 8 in [0.2, 0.7) T only, 5 seeds a pair",
            "hybrid",
            {**h, "guidance": 8.0, "guidance_interval": "0.2:0.7"},
            n=5,
        ),
        Row(
            "h31",
            "sigma 1.75, FAR first 20%, CFG 5, NEAR's high band of the estimate x 1.25, 5 seeds a pair",
            "hybrid",
            dict(h),
            n=5,
            custom={"near_gain": 1.25},
        ),
        Row(
            "h32",
            "sigma 1.75, FAR first 20%, CFG 5, NEAR's high band of the estimate x 1.5, 5 seeds a pair",
            "hybrid",
            dict(h),
            n=5,
            custom={"near_gain": 1.5},
        ),
        Row(
            "h33",
            "sigma 1.75, FAR first 20%, CFG 5, the starting noise x 0.9, 5 seeds a pair",
            "hybrid",
            dict(h),
            n=5,
            custom={"temperature": 0.9},
        ),
    ]
    return out


def command(row: Row, model: str) -> str | None:
    """The `diffcli eval` command that measures the same row (None for custom terms)."""
    if row.custom:
        return None
    flags = [f"--task {row.task}", f"-n {row.n}", f"--seed {row.seed}"] + ([f"-m {model}"] if model != "mnist" else [])
    names = {
        "view": "--view",
        "sampler": "--sampler",
        "steps": "--steps",
        "guidance": "-g",
        "eta": "--eta",
        "kernel": "--kernel",
        "sigma": "--sigma",
        "far_first": "--far-first",
        "near_last": "--near-last",
        "guidance_interval": "--guidance-interval",
    }
    flags += [f"{names[k]} {v:g}" if isinstance(v, float) else f"{names[k]} {v}" for k, v in row.options.items()]
    return "diffcli eval " + " ".join(flags)


def custom_terms(model, row: Row, first, second, timesteps):
    """Guidance terms the commands do not offer, one segment per reverse step."""
    from diffcli.diffusion import filters
    from diffcli.diffusion.guidance import Term, classifier_free
    from diffcli.diffusion.views import VIEWS, get_view

    null = model.null_condition(len(first))
    a, b = model.condition(first), model.condition(second)
    c = row.custom
    terms: list = []
    if row.task == "hybrid":
        k, s = row.options["kernel"], row.options["sigma"]
        low, high = (lambda e: filters.lowpass(e, k, s)), (lambda e: filters.highpass(e, k, s))
        gain = c.get("near_gain", 1.0)  # h31, h32: NEAR's detail made stronger than a whole estimate's
        near_high = high if gain == 1.0 else (lambda e: gain * filters.highpass(e, k, s))
        top = round((1 - row.options.get("far_first", 0.0)) * model.schedule.timesteps)
        far_scale, near_scale = (
            c.get("far_guidance", row.options["guidance"]),
            c.get("near_guidance", row.options["guidance"]),
        )
        terms += classifier_free(a, null, far_scale, filter=low)
        terms += classifier_free(b, null, near_scale, filter=near_high, during=(0, top))
        terms += classifier_free(a, null, far_scale, filter=high, during=(top, BIG))
        return terms
    view, identity = get_view(row.options["view"]), VIEWS["identity"]
    T = model.schedule.timesteps
    for i, t in enumerate(timesteps):
        during = (t, timesteps[i - 1] if i else BIG)
        w = (1.0 if i % 2 == 0 else 0.0) if c.get("alternate") else 0.5
        scale = row.options["guidance"]
        if "guidance_late" in c:  # linear in t: the given scale at t = T, guidance_late at t = 0
            scale = c["guidance_late"] + (scale - c["guidance_late"]) * t / T
        share = c.get("negative", 0.0)  # of the other prompt in each term's negative (CFG's unconditional)
        for cond, other, v, weight in ((a, b, identity, w), (b, a, view, 1 - w)):
            if weight == 0:
                continue
            terms.append(Term(cond, weight * scale, v, during=during))
            if share:
                terms.append(Term(other, weight * (1 - scale) * share, v, during=during))
            if share != 1:
                terms.append(Term(null, weight * (1 - scale) * (1 - share), v, unconditional=True, during=during))
    return terms


def loop_pieces(model, row: Row) -> dict:
    """What a row changes in the sampling loop itself (not only its terms), as arguments of `generate`:
    the guided estimate's combination (rectify, adaptive), the sampler (time_travel), the output spec
    (clip, dynamic thresholding) or the starting noise (temperature). The model is left as it is."""
    from dataclasses import replace

    from diffcli.diffusion.guidance import GuidedModel
    from diffcli.diffusion.samplers import make_sampler

    c = row.custom
    sampler = make_sampler(row.options["sampler"], row.options.get("eta", 0.0))
    guided = GuidedModel
    if c.get("rectify"):
        guided = rectified_guidance(model)
    if "adaptive" in c:
        guided = adaptive_guidance(c["adaptive"])
    if "time_travel" in c:
        sampler = time_travel_sampler(sampler, *c["time_travel"])
    spec = replace(model.spec, **c["spec"]) if "spec" in c else model.spec
    return {"guided": guided, "sampler": sampler, "spec": spec, "temperature": c.get("temperature", 1.0)}


def generate(model, terms, seeds: list[int], timesteps: list[int], guided, sampler, spec, temperature: float = 1.0):
    """One image per seed from pure noise through the engine's reverse loop, as the commands start it
    (each row's noise from its own seed), with the starting noise x_T scaled by `temperature`: a lower
    one starts nearer the mean image. Returns the images in the model's range."""
    from diffcli.diffusion.samplers import NoiseSource, run_reverse

    noise = NoiseSource(seeds, model.device)
    x = noise.randn((model.channels, model.size, model.size))
    x = (x if temperature == 1.0 else x * temperature).to(model.device)
    model_fn = guided(model.net, terms, learned_variance=model.learned_variance)
    return run_reverse(model_fn, x, timesteps, model.schedule, spec, sampler, noise)


def rectified_guidance(model):
    """The anagram's mean estimate with its noise part rescaled, per image, to the root mean square of
    the two views' own noise estimates (averaging two partly independent estimates shrinks it; the
    'noise variance rectification' of anagrams as multi-task learning, Xu et al. 2025)."""
    from diffcli.diffusion.guidance import GuidedModel

    schedule, prediction = model.schedule, model.spec.prediction

    class Rectified(GuidedModel):
        def __call__(self, x, t):
            views: dict = {}  # view name -> [weighted sum, weight]: each view's own CFG estimate
            for term, output in self.term_outputs(x, t):
                part = views.setdefault(term.view.name, [0.0, 0.0])
                part[0] = part[0] + term.weight * term.view.inverse(output)
                part[1] += term.weight
            mean_eps, power = 0.0, 0.0
            for total, weight in views.values():
                _, eps = schedule.to_x0_eps(x, t, total / weight, prediction)
                mean_eps = mean_eps + weight * eps
                power = power + weight * eps.flatten(1).pow(2).sum(1)
            eps = mean_eps * (power.sqrt() / mean_eps.flatten(1).norm(dim=1)).view(-1, 1, 1, 1)
            return schedule.training_target(schedule.predict_x0(x, t, eps), eps, t, prediction)

    return Rectified


def adaptive_guidance(power: float):
    """The anagram's two views weighted per image and step by the size of each one's guidance,
    |cond - null| ** power, normalised: the view the model would still change most (the reading that is
    furthest from settled) pulls hardest. Each view's own CFG estimate is unchanged."""
    from diffcli.diffusion.guidance import GuidedModel

    class Adaptive(GuidedModel):
        def __call__(self, x, t):
            views: dict = {}  # view name -> {"cond": output, "null": output, "scale": CFG scale}
            for term, output in self.term_outputs(x, t):
                part = views.setdefault(term.view.name, {})
                part["null" if term.unconditional else "cond"] = term.view.inverse(output)
                if not term.unconditional:
                    part["scale"] = term.weight / 0.5  # the study's anagram terms weigh each view 0.5
            estimates, sizes = [], []
            for part in views.values():
                gap = part["cond"] - part["null"]
                estimates.append(part["null"] + part["scale"] * gap)
                sizes.append(gap.flatten(1).norm(dim=1).clamp_min(1e-8) ** power)
            total = sum(sizes)
            return sum((size / total).view(-1, 1, 1, 1) * e for size, e in zip(sizes, estimates))

    return Adaptive


def time_travel_sampler(inner, repeats: int, fraction: float):
    """`inner`'s step, then (in the first `fraction` of the reverse process) `repeats - 1` times: noise the
    result back to t with the forward process and take the step again (RePaint's resampling)."""
    import torch

    from diffcli.diffusion.samplers import Sampler

    class TimeTravel(Sampler):
        name, stochastic = inner.name, inner.stochastic
        generator = torch.Generator().manual_seed(0)

        def step(self, schedule, model_fn, x_t, t, s, pred, noise):
            x_s = inner.step(schedule, model_fn, x_t, t, s, pred, noise)
            if s < 0 or t < (1 - fraction) * schedule.timesteps:
                return x_s
            for _ in range(repeats - 1):
                back = schedule.alpha(t) / schedule.alpha(s)
                z = torch.randn(x_s.shape, generator=self.generator).to(x_s)
                x_t = back * x_s + max(schedule.sigma(t) ** 2 - back**2 * schedule.sigma(s) ** 2, 0.0) ** 0.5 * z
                x_s = inner.step(schedule, model_fn, x_t, t, s, model_fn(x_t, t), noise)
            return x_s

    return TimeTravel()


def measure(model, classifier, row: Row, batch: int = 250) -> dict:
    """A row's success report: `diffcli.evaluate` where the commands offer its settings, else its own
    terms and loop pieces over every ordered class pair, seed `row.seed + i` for image i (as eval seeds
    them), read by the same scoring classifier."""
    import torch

    import diffcli
    from diffcli.diffusion import filters
    from diffcli.diffusion.views import get_view
    from diffcli.scoring.inference import predict
    from diffcli.scoring.scores import anagram_success, hybrid_success

    if not row.custom:
        return diffcli.evaluate(model, row.task, n=row.n, seed=row.seed, progress=False, **row.options)
    o = row.options
    prompts = [model.resolve_prompt(str(k)) for k in range(len(model.labels))]
    pairs = [(p, q) for p in prompts for q in prompts if p.label != q.label]
    first = [p for p, _ in pairs for _ in range(row.n)]
    second = [q for _, q in pairs for _ in range(row.n)]
    timesteps = model.schedule.strided_timesteps(o["steps"], model.schedule.timesteps - 1)
    pieces = loop_pieces(model, row)
    parts = []
    for start in range(0, len(first), batch):
        rows_ = slice(start, min(len(first), start + batch))
        terms = custom_terms(model, row, first[rows_], second[rows_], timesteps)
        seeds = list(range(row.seed + rows_.start, row.seed + rows_.stop))
        parts.append(generate(model, terms, seeds, timesteps, **pieces).float().cpu())
    x = torch.cat(parts)
    labels = ([p.label for p in first], [p.label for p in second])
    if row.task == "anagram":
        view = get_view(o["view"])
        one, two = (predict(classifier, model.to_pixels(v)).argmax(1) for v in (x, view.apply(x)))
        return anagram_success(one, two, *labels, model.labels)
    low = filters.lowpass(x, o["kernel"], o["sigma"])
    one, two = (predict(classifier, model.to_pixels(v)).argmax(1) for v in (low, x))
    return hybrid_success(one, two, *labels, model.labels)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=None, help="comma-separated row keys (default: all)")
    parser.add_argument("--model", default="mnist")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)

    known = [r.key for r in rows()]
    asked = None if args.rows is None else [k.strip() for k in args.rows.split(",") if k.strip()]
    unknown = [k for k in asked or [] if k not in known]
    if unknown or asked == []:
        raise SystemExit(
            f"illusions study: unknown row(s) {', '.join(unknown) or '(none given)'}; the rows are {', '.join(known)}"
        )

    import diffcli
    from diffcli.errors import DiffcliError

    try:
        return study(args, [r for r in rows() if asked is None or r.key in asked], diffcli)
    except DiffcliError as exc:  # a model, a folder or a dataset the library refuses: its own one line
        raise SystemExit(f"illusions study: {exc.one_line()}") from None


def study(args, chosen: list, diffcli) -> int:
    """Measure the chosen rows; the table on stdout, one progress line per row on stderr."""
    from diffcli.scoring.classifier import load_or_train_classifier

    model = diffcli.load(args.model).loaded
    dataset = model.config.dataset_name
    if model.cond_type != "class" or not dataset:
        raise SystemExit(f"illusions study: model {args.model!r} is not a class model with a dataset; give one that is")
    classifier = load_or_train_classifier(dataset, data_dir=args.data_dir, device=model.device)
    table = ["| row | settings | seeds | success | readings | command |", "|---|---|---|---|---|---|"]
    for row in chosen:
        started = time.perf_counter()
        report = measure(model, classifier, row)
        roles = ("image", "view") if row.task == "anagram" else ("far", "near")
        readings = (
            f"{roles[0]} {100 * report[roles[0] + '_rate']:.0f}%, {roles[1]} {100 * report[roles[1] + '_rate']:.0f}%"
        )
        cmd = command(row, args.model)
        command_cell = f"`{cmd}`" if cmd else "studies/illusion_settings.py --rows " + row.key
        line = (
            f"| {row.key} | {row.task} {row.what} | {row.n} x 90 | {100 * report['rate']:.1f}% | "
            f"{readings} | {command_cell} |"
        )
        table.append(line)
        print(
            f"{row.key}: {100 * report['rate']:.1f}% ({readings}) in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
