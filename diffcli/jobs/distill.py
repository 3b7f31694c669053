"""The `distill` job: a few-step student of a registered teacher, trained by the one training loop.

The request is turned into a whole training recipe (training/recipe.py TrainSettings) whose
`distillation` names the teacher, the method and the steps (training/distillation.py); `train` runs it
with its panel, checkpoints, Ctrl-C, `resume`, lock and registry promotion. The student's config records
its teacher, method, steps and the guidance it learnt, and samples with its steps and no CFG.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from diffcli import checks, params
from diffcli.diffusion.names import DISTILLATION_METHODS
from diffcli.errors import UsageError
from diffcli.jobs.train import FORCE, RESUME, SET_DEFAULT
from diffcli.params import param
from diffcli.progress import ProgressFactory, silent
from diffcli.training.recipe import BATCH, DATA, DOWNLOAD, MAX_STEPS, PEAK_LR, PRECISION, RECIPE

TEACHER, STUDENT = "Teacher", "Student"
# What a resumed distillation may be given besides its name (the rest is its saved recipe).
RESUMABLE = ("name", "teacher", "resume", "epochs", "max_steps", "data_dir", "download", "device", "command")


@dataclass(kw_only=True)
class DistillRequest:
    """A distillation: the teacher, the student's steps and name, the method and its training."""

    teacher: str | None = param(
        None,
        help="The teacher: a registered class- or time-conditioned UNet (default: the registry default).",
        flags=("--model", "-m"),
        metavar="NAME",
        panel=TEACHER,
        complete="model",
    )
    steps: int = param(4, help="The student's sampling steps.", bound=checks.STEPS, metavar="K", panel=STUDENT)
    name: str | None = param(
        None,
        help="Registry name of the student (default: TEACHER-Kstep).",
        metavar="NAME",
        panel=STUDENT,
        complete="models",
    )
    method: str = param(
        "progressive",
        help="progressive (the student's step matches the teacher's --teacher-steps / K DDIM steps; Salimans & Ho "
        "2022, guided as Meng et al. 2023) or reflow (flow matching on the teacher's own noise-image pairs; Liu et "
        "al. 2023). docs/engine.md.",
        choices=DISTILLATION_METHODS,
        metavar="KIND",
        panel=STUDENT,
    )
    teacher_steps: int | None = param(
        None,
        help="The teacher's DDIM steps behind the targets (progressive: a multiple of K, default 2K, one round of "
        "progressive distillation; reflow: default the teacher's own steps).",
        bound=checks.STEPS,
        metavar="N",
        panel=TEACHER,
    )
    guidance: float | None = param(
        None,
        help="The CFG scale the student learns (default: the teacher's, with its guidance interval).",
        flags=("--guidance", "-g"),
        bound=checks.GUIDANCE,
        metavar="SCALE",
        panel=TEACHER,
    )
    pairs: int = param(
        10000,
        help="Reflow: teacher samples to train on (made once, cached).",
        low=1,
        high=1_000_000,
        metavar="INT",
        panel=STUDENT,
    )
    epochs: int | None = param(
        None,
        help="Passes over the data (default: progressive 2, reflow 6).",
        bound=checks.EPOCHS,
        metavar="INT",
        panel=RECIPE,
    )
    batch_size: int = param(128, **BATCH)
    lr: float = param(2e-4, **PEAK_LR)
    seed: int = param(0, help="Seed for data order and noise.", bound=checks.SEED, metavar="INT", panel=RECIPE)
    precision: str = param("auto", **PRECISION)  # the student's; the teacher's targets are always fp32
    data_dir: str | None = param(
        None,
        help="Progressive: where the teacher's dataset is (as for `train`).",
        metavar="DIR",
        panel=DATA,
        rule=checks.path,
    )
    download: bool = param(False, **DOWNLOAD)
    max_steps: int | None = param(None, **MAX_STEPS)
    resume: bool = param(False, **RESUME)
    force: bool = param(False, **FORCE)
    set_default: bool = param(False, **SET_DEFAULT)
    device: str = "auto"
    command: str = ""


def student_settings(request: DistillRequest, teacher_entry):
    """The student's whole recipe: the teacher's network, schedule and prediction, the distillation plan."""
    from dataclasses import replace

    from diffcli.models.backends import load_model
    from diffcli.models.weights import weights_fingerprint
    from diffcli.training.distillation import Plan
    from diffcli.training.recipe import TrainSettings

    config = teacher_entry.config()
    name = teacher_entry.name
    if config.kind != "unet" or config.objective != "diffusion" or config.cond_type not in ("class", "time"):
        raise UsageError(
            f"{name!r} cannot teach: distillation needs a class- or time-conditioned diffusion UNet (the embedded "
            "mnist and fashion, or a model `diffcli train` made)",
            "pick one with `diffcli models list`",
        )
    objective = {"eps": "eps", "v": "v", "velocity": "flow"}.get(config.prediction)
    if objective is None:
        raise UsageError(f"{name!r} predicts {config.prediction}; distillation reads eps, v or velocity models")
    if request.method == "reflow" and objective != "flow":
        raise UsageError(
            f"reflow straightens a flow-matching model's paths, and {name!r} predicts {config.prediction}",
            "use `method` progressive",
        )
    sampling = config.sampling or {}
    K = request.steps
    T = int(config.schedule["timesteps"])
    if K > T:
        raise UsageError(f"`steps` {K} is more than the teacher's {T} timesteps")
    distilled = config.distillation or {}
    if request.guidance is not None and request.guidance != 1.0 and (distilled or not config.has_null_class):
        raise UsageError(
            f"`guidance` needs a teacher that can guide, and {name!r} has no null class"
            + (" (its guidance is already built in)" if distilled else ""),
            "leave `guidance` out",
        )
    if request.method == "progressive":
        teacher_steps = request.teacher_steps or 2 * K
        if teacher_steps % K or teacher_steps <= K or teacher_steps > T:
            raise UsageError(
                f"`teacher_steps` {teacher_steps} must be a multiple of `steps` {K} above it, at most {T}",
                f"use {2 * K} (one round of progressive distillation)",
            )
    else:
        teacher_steps = request.teacher_steps or int(sampling.get("steps") or 20)
    if request.guidance is None:
        guidance = float(sampling.get("guidance", 1.0)) if config.has_null_class else 1.0
        interval = sampling.get("guidance_interval")
    else:
        guidance, interval = request.guidance, None
    plan = Plan(
        teacher=name,
        method=request.method,
        steps=K,
        teacher_steps=teacher_steps,
        guidance=guidance,
        guidance_interval=tuple(interval) if interval and guidance != 1.0 else None,
        pairs=request.pairs if request.method == "reflow" else 0,
        digest=weights_fingerprint(load_model(entry=teacher_entry, device="cpu").network),
    )
    lo, hi = config.pixel_range
    taught = (config.training or {}).get("settings") or {}
    settings = replace(
        TrainSettings(),
        dataset=config.dataset_name or "mnist",
        data_dir=request.data_dir,
        limit=taught.get("limit"),  # the images the teacher learnt from
        cond=config.cond_type,
        objective=objective,
        schedule=config.schedule.get("kind") if config.schedule.get("kind") in ("linear", "cosine") else "cosine",
        timesteps=T,
        architecture=dict(config.architecture),
        epochs=request.epochs or (2 if request.method == "progressive" else 6),
        batch_size=request.batch_size,
        lr=request.lr,
        warmup_steps=20,
        timestep_sampling="uniform" if request.method == "progressive" else "logit-normal",
        p_uncond=0.0,  # the guidance is learnt, so the student needs no null class
        guidance=1.0,
        seed=request.seed,
        precision=request.precision,
        max_steps=request.max_steps,
        sampler="ddim",
        sample_steps=K,
        pixel_range=(lo, hi),
        preset="distill",
        distillation=plan.to_dict(),
        val_limit=500,
    )
    return settings


def check_teacher(request: DistillRequest) -> None:
    """A resumed student's teacher, when named, must be the one it was distilled from."""
    from diffcli.models.registry import Registry

    entry = Registry().user_entry(request.name)
    if request.teacher is None or not (entry.path / "config.json").is_file():
        return
    teacher = (entry.config().distillation or {}).get("teacher")
    if teacher != request.teacher:
        was = f"distilled from {teacher!r}" if teacher else "not a distillation's student"
        raise UsageError(f"{request.name!r} is {was}, not from {request.teacher!r}", "drop `teacher` to resume it")


def distill(request: DistillRequest, progress: ProgressFactory = silent):
    """Distil as `request` says; returns the TrainResult of the student's training. Ctrl-C saves a
    resumable checkpoint (or keeps reflow's pairs made so far) and raises InterruptedRun."""
    from diffcli.jobs.train import TrainRequest, train
    from diffcli.models.registry import Registry

    params.check(request)
    run = TrainRequest(
        name=request.name,
        resume=request.resume,
        force=request.force,
        set_default=request.set_default,
        device=request.device,
        command=request.command,
        download=request.download,
    )
    if request.resume:
        if not request.name:
            raise UsageError("`resume` needs `name`: the student to continue")
        fixed = [f for f in fields(request) if f.name not in RESUMABLE and getattr(request, f.name) != f.default]
        if fixed:
            raise UsageError(
                f"`resume` continues with the saved distillation; drop {', '.join(f'`{f.name}`' for f in fixed)}",
                "only `epochs`, `max_steps`, `data_dir` and `device` may change",
            )
        check_teacher(request)
        changes = {"max_steps": request.max_steps, "epochs": request.epochs, "data_dir": request.data_dir}
        return train(
            TrainRequest(**{**run.__dict__, "recipe": {k: v for k, v in changes.items() if v is not None}}), progress
        )
    registry = Registry()
    registry.recover()
    teacher = registry.get(request.teacher)
    settings = student_settings(request, teacher)
    if run.name is None:
        run.name = f"{teacher.name}-{request.steps}step"
    return train(run, progress, prepared=settings)
