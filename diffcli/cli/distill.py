"""`diffcli distill`: a few-step student of a registered model, trained into the registry."""

from __future__ import annotations

from dataclasses import replace

from diffcli import console
from diffcli.cli import common, options, params
from diffcli.cli.options import examples
from diffcli.jobs.distill import DistillRequest

EXAMPLES = examples(
    "diffcli distill -m mnist --steps 4 --name m4 --data-dir ~/data",
    "diffcli distill --name m4 --resume              # after Ctrl-C",
    "diffcli distill -m mnist --method reflow --steps 2 --name r2",
    "diffcli sample -m m4 -n 8                        # 4 steps, no CFG",
)


@params.options(request=DistillRequest)
def distill(
    *,
    device: options.Device = "auto",
    quiet: options.Quiet = False,
    json_output: options.Json = False,
    request: DistillRequest,
) -> None:
    """Distil a registered model into a student that samples in --steps steps and register it under --name.

    The student starts as the teacher and is trained by `train`'s loop: the same live panel, checkpoints,
    Ctrl-C (saves, exits 130) and exact --resume. It learns the teacher's guidance, so it samples with
    one network evaluation per step; its config records its teacher, method, steps and that guidance.
    """
    common.start(quiet, json_output)
    from diffcli.errors import InterruptedRun
    from diffcli.jobs.distill import distill as distill_job

    request = replace(request, device=device, command=common.command_line())
    try:
        result = distill_job(request, common.progress(quiet, json_output, events=json_output))
    except InterruptedRun as exc:
        if exc.model is None:
            raise
        raise InterruptedRun(
            exc.message,
            f"continue with `diffcli distill --name {exc.model} --resume`",
            model=exc.model,
            saved=exc.saved,
        ) from None
    if result is None:
        return
    if json_output:
        console.emit_json({"event": "done", **{k: v for k, v in result.__dict__.items() if k != "history"}})
        return
    from diffcli.cli.train import summary_line

    console.info(summary_line(result))
    console.info(f"artifacts in {result.path}/train; try `diffcli sample --model {result.model} -n 8`")
