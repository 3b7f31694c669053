"""`diffcli anagram A B`: one image that reads as A, and as B after a view (visual anagrams)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from diffcli.cli import common
from diffcli.cli.options import VIEWS, BestOf, RunOptions, SamplingOptions, choices, examples, shared, spoken

ILLUSION_PANEL = "Illusion"
EXAMPLES = examples(
    "diffcli anagram 6 9 --view rot180 -o six-nine.png",
    "diffcli anagram 2 7 --view flip --best-of 8 -n 4 --out-dir anagrams/",
    "diffcli eval --task anagram --view rot180 --pairs 6:9",
)


@shared("sampling", "run")
def anagram(
    first: Annotated[str, typer.Argument(metavar="FIRST", help="What the image shows as it is (class or prompt).")],
    second: Annotated[str, typer.Argument(metavar="SECOND", help="What it shows after the view.")],
    view: Annotated[str, typer.Option("--view", metavar="VIEW", help=f"{spoken(VIEWS, notes=True)}.", rich_help_panel=ILLUSION_PANEL, autocompletion=choices(*VIEWS))] = "flip",
    weight: Annotated[Optional[float], typer.Option("--weight", metavar="W", help="Weight w of the first prompt's estimate (1 - w for the second; default 0.5).", rich_help_panel=ILLUSION_PANEL)] = None,
    best_of: BestOf = 1,
    *,
    sampling: SamplingOptions,
    run: RunOptions,
) -> None:
    """Generate visual anagrams: eps = w eps(x_t, A) + (1 - w) V^-1(eps(V(x_t), B)), each CFG-guided.

    Writes image | viewed image side by side (a row per view with -n > 1), or with --out-dir both
    views of every seed. Sampler, steps and guidance default to the illusion settings measured in
    docs/illusions.md (for class models: DDIM 20 steps and CFG 5, a stronger guidance than `sample`). Not every
    seed reads both ways: --best-of K keeps the best of K candidates per image, and
    `diffcli eval --task anagram` measures the rate.
    """
    common.start(run.quiet, run.json_output)
    common.check_outputs(run)
    from diffcli.jobs.anagram import AnagramRequest, prepare
    from diffcli.jobs.generating import load_generator

    model = load_generator(run.model, run.device, "ema", sampling.offload, sampling.upscale)
    request = AnagramRequest(
        first=first, second=second, view=view, weight=weight, n=sampling.n, sampling=sampling.engine(), seed=run.seed,
        upscale=sampling.upscale, best_of=best_of,
    )
    common.run_images(prepare(model, request), run, "anagram.png")
