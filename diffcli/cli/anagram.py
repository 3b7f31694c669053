"""`diffcli anagram A B`: one image that reads as A, and as B after a view (visual anagrams)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from diffcli import console
from diffcli.cli import common, generating
from diffcli.errors import UsageError


def anagram(
    first: Annotated[str, typer.Argument(help="What the image shows as it is (class or prompt).")],
    second: Annotated[str, typer.Argument(help="What it shows after the view.")],
    view: Annotated[str, typer.Option("--view", help="flip (upside down, the course's), rot180, hflip, rot90 (square images) or negate.")] = "flip",
    weight: Annotated[float, typer.Option("--weight", help="Weight w of the first prompt's estimate (1 - w for the second).")] = 0.5,
    n: common.Count = 1,
    sampler: common.SamplerName = None,
    steps: common.Steps = None,
    stride: common.Stride = None,
    guidance: common.Guidance = None,
    eta: common.Eta = 0.0,
    model: common.ModelName = None,
    device: common.Device = "auto",
    offload: common.Offload = "auto",
    upscale: common.Upscale = False,
    out: common.Out = None,
    out_dir: common.OutDir = None,
    seed: common.Seed = None,
    quiet: common.Quiet = False,
    json_output: common.Json = False,
) -> None:
    """Generate visual anagrams: eps = w eps(x_t, A) + (1 - w) V^-1(eps(V(x_t), B)), each CFG-guided.

    Writes image | viewed image side by side (a row per view with -n > 1), or with --out-dir both
    views of every seed. Illusions often fail: generate several seeds with -n and pick, or measure
    the success rate with `diffcli eval --task anagram`.
    """
    common.start(quiet, json_output)
    generating.check_out_options(out, out_dir)
    generating.positive_count(n)
    if not 0.0 <= weight <= 1.0:
        raise UsageError(f"--weight must be between 0 and 1, got {weight}")
    from diffcli.generation import guidance_scale
    from diffcli.illusions import anagram_request

    gen = generating.load_generator(model, device, "ema", offload, upscale)
    the_view = generating.pick_view(view, gen)
    a, b = gen.resolve_prompt(first), gen.resolve_prompt(second)
    if (a.label, a.text) == (b.label, b.text) or (a.label is not None and a.label == b.label):
        console.warn(f"both prompts are {gen.label_name(a)!r}: the image only has to read the same both ways")
    settings = generating.sampler_settings(gen, sampler, steps, stride, eta)
    scale = guidance_scale(gen, guidance)
    seed = common.pick_seed(seed)
    seeds = generating.seeds_for(seed, n)
    terms = anagram_request(gen, [a] * n, [b] * n, scale, the_view, weight)
    name_a, name_b = gen.label_name(a), gen.label_name(b)

    def preview(x0):
        return [(name_a, [*gen.to_pixels(x0)]), (f"{name_b} ({view})", [*gen.to_pixels(the_view.apply(x0))])]

    result = generating.run_generation(gen, terms, seeds, settings, title=f"anagram {name_a} / {name_b}", quiet=quiet, json_output=json_output, preview=preview)
    if upscale:  # stage II: both prompts and the view again, as the visual-anagrams reference does
        stage_two = gen.upscale_settings(illusion_guidance=scale)
        result = gen.upscale(result, anagram_request(gen, [a] * n, [b] * n, stage_two.guidance, the_view, weight), seeds, stage_two)
    plain, viewed = gen.to_pixels(result), gen.to_pixels(the_view.apply(result))

    from diffcli.io.figures import figure

    def panel():
        if n == 1:
            return figure([[plain[0], viewed[0]]], col_labels=[name_a, f"{name_b} ({view})"])
        return figure([[*plain], [*viewed]], row_labels=[name_a, f"{name_b} ({view})"], col_labels=[f"seed {s}" for s in seeds])

    meta = common.metadata("anagram", model=gen.name, seed=seed, view=view, weight=weight, guidance=scale, sampler=settings.sampler, steps=settings.steps, stride=settings.stride, prompts=[first, second])
    images_out, names, per_image = [], [], []
    for i, s in enumerate(seeds):
        images_out += [plain[i], viewed[i]]
        names += [f"{generating.safe_label(name_a)}-{s}", f"{generating.safe_label(name_b)}-{view}-{s}"]
        per_image += [{"seed": s}, {"seed": s, "viewed": view}]
    written = generating.write_outputs(images_out, names, out=out, out_dir=out_dir, default_name="anagram.png", json_output=json_output, metadata=meta, per_image_meta=per_image, figure_maker=panel)
    if json_output:
        console.emit_json({"model": gen.name, "outputs": written, "seed": seed, "seeds": seeds, "view": view, "weight": weight, "guidance": scale, "prompts": [first, second]})
