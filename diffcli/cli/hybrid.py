"""`diffcli hybrid FAR NEAR`: one image that reads as FAR from afar and as NEAR up close (hybrid images)."""

from __future__ import annotations

from diffcli.cli import common, params
from diffcli.cli.options import Output, examples
from diffcli.jobs.requests import HybridRequest, ModelChoice, illusion_wording

EXAMPLES = examples(
    "diffcli hybrid 1 7 --explain -o hybrid.png",
    "diffcli hybrid 0 8 -n 8 --out-dir hybrids/",
    'diffcli hybrid "old man" "campfire" -m if --upscale -o fire.png',
)


@params.options(
    exclude=("weights",),
    wording={**illusion_wording("hybrid"), "*": "the illusion settings"},
    request=HybridRequest,
    choice=ModelChoice,
    run=Output,
)
def hybrid(*, request: HybridRequest, choice: ModelChoice, run: Output) -> None:
    """One image that reads as FAR from afar and as NEAR up close (a hybrid image: FAR in its low
    frequencies, NEAR in its high ones).

    Sampling and the low-pass left out take the illusion settings measured in docs/illusions.md (each
    option's default below). Not every seed reads both ways: --best-of K keeps the best of K candidates
    per image, and `diffcli eval --task hybrid` measures the rate.
    """
    common.start(run.quiet, run.json_output)
    common.check_outputs(run)
    from diffcli.jobs.generating import load_generator
    from diffcli.jobs.hybrid import prepare

    model = load_generator(choice.model, choice.device, "ema", choice.offload, request.upscale)
    common.run_images(prepare(model, request), run, "hybrid.png", request.seed)
