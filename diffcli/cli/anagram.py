"""`diffcli anagram A B`: one image that reads as A, and as B after a view (visual anagrams)."""

from __future__ import annotations

from diffcli.cli import common, params
from diffcli.cli.options import Output, examples
from diffcli.jobs.requests import AnagramRequest, ModelChoice, illusion_wording

EXAMPLES = examples(
    "diffcli anagram 6 9 --view rot180 -o six-nine.png",
    "diffcli anagram 2 7 --view flip --best-of 8 -n 4 --out-dir anagrams/",
    "diffcli eval --task anagram --view rot180 --pairs 6:9",
)


@params.options(
    exclude=("weights",),
    wording={**illusion_wording("anagram"), "*": "the illusion settings"},
    request=AnagramRequest,
    choice=ModelChoice,
    run=Output,
)
def anagram(*, request: AnagramRequest, choice: ModelChoice, run: Output) -> None:
    """One image that reads as FIRST, and as SECOND after a view (a visual anagram).

    Writes image | viewed image side by side (a row per view with -n > 1), or with --out-dir both views
    of every seed. Sampling left out takes the illusion settings measured in docs/illusions.md (each
    option's default below). Not every seed reads both ways: --best-of K keeps the best of K candidates
    per image, and `diffcli eval --task anagram` measures the rate.
    """
    common.start(run.quiet, run.json_output)
    common.check_outputs(run)
    from diffcli.jobs.anagram import prepare
    from diffcli.jobs.generating import load_generator

    model = load_generator(choice.model, choice.device, "ema", choice.offload, request.upscale)
    common.run_images(prepare(model, request), run, "anagram.png", request.seed)
