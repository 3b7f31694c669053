"""`diffcli distill`: the targets' algebra, a tiny student end to end (CLI and Python), exact resume, what
a student records and refuses, and reflow's cached pairs."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import run_cli

from diffcli.diffusion.samplers import Prediction, ddim_step
from diffcli.diffusion.schedule import NoiseSchedule
from diffcli.training.distillation import step_target

# A teacher trained enough that its 1-step and 2-step samples differ (a barely trained one draws nearly the
# same image at any step count, and no student could beat copying it).
TEACHER = "--dataset glyphs --limit 512 --batch-size 32 --width 16 --timesteps 40 --device cpu --seed 0 --epochs 8"
STUDENT = ["--batch-size", "32", "--device", "cpu", "-q"]


@pytest.mark.parametrize(
    "kind,prediction", [("flow", "velocity"), ("cosine", "v"), ("cosine", "eps"), ("linear", "eps")]
)
@pytest.mark.parametrize("t,s", [(39, 19), (19, -1), (39, 29)])
def test_the_target_output_takes_one_ddim_step_onto_the_teachers_point(kind, prediction, t, s):
    schedule = NoiseSchedule(kind, 40)
    gen = torch.Generator().manual_seed(0)
    x_t, x_s = torch.randn(3, 1, 4, 4, generator=gen), torch.randn(3, 1, 4, 4, generator=gen)
    target = step_target(schedule, prediction, x_t, t, s, x_s)
    x0, eps = schedule.to_x0_eps(x_t, t, target, prediction)
    landed = ddim_step(schedule, x_t, t, s, Prediction(x0=x0, eps=eps), None)
    assert torch.allclose(landed, x_s, atol=1e-4), (landed - x_s).abs().max()


@pytest.fixture(scope="module")
def trained_teacher(tmp_path_factory) -> Path:
    """The teacher, trained once for the module in a registry of its own."""
    import os

    home = tmp_path_factory.mktemp("teacher-home")
    before = os.environ.get("DIFFCLI_HOME")
    os.environ["DIFFCLI_HOME"] = str(home)
    try:
        r = run_cli(["train", *TEACHER.split(), "--name", "g", "-q"])
    finally:
        if before is None:
            os.environ.pop("DIFFCLI_HOME", None)
        else:
            os.environ["DIFFCLI_HOME"] = before
    assert r.code == 0, r.stderr
    return home / "models" / "g"


@pytest.fixture
def teacher(trained_teacher, home):
    shutil.copytree(trained_teacher, home / "models" / "g")
    return "g"


def _samples(name: str, steps: int, seeds=range(8)) -> torch.Tensor:
    import diffcli

    model = diffcli.load(name, device="cpu")
    images = [
        model.sample(classes=[c % 10], n=1, seed=s, steps=steps, progress=False).tensor for c, s in enumerate(seeds)
    ]
    return torch.cat(images).float()


def test_a_student_follows_its_teacher_closer_than_an_undistilled_copy(teacher, home):
    r = run_cli(["distill", "-m", teacher, "--steps", "1", "--name", "s1", "--epochs", "4", "--lr", "1e-3", *STUDENT])
    assert r.code == 0, r.stderr
    target = _samples(teacher, 2)  # the teacher's 2K-step DDIM samples
    copy = _samples(teacher, 1)  # the undistilled copy: the teacher itself at K steps
    student = _samples("s1", 1)
    student_gap = (student - target).pow(2).mean()
    copy_gap = (copy - target).pow(2).mean()
    assert student_gap < 0.75 * copy_gap, (student_gap, copy_gap)
    config = json.loads((home / "models" / "s1" / "config.json").read_text())
    plan = config["distillation"]
    assert (plan["teacher"], plan["method"], plan["steps"], plan["teacher_steps"]) == (teacher, "progressive", 1, 2)
    assert config["sampling"]["steps"] == 1 and config["sampling"]["guidance"] == 1.0
    assert plan["guidance"] == 1.5 and config["conditioning"]["null_class"] is False


def test_distill_resumes_exactly_and_the_python_api_does_the_same(teacher, home):
    import diffcli

    common = dict(steps=2, epochs=1, batch_size=32, device="cpu", progress=False)
    whole = diffcli.distill(teacher, name="whole", **common)
    assert whole.completed and whole.step == 16
    r = run_cli(
        ["distill", "-m", teacher, "--steps", "2", "--epochs", "1", "--name", "cut", "--max-steps", "5", *STUDENT]
    )
    assert r.code == 0, r.stderr
    r = run_cli(["distill", "--name", "cut", "--resume", "--max-steps", "16", "-q"])
    assert r.code == 0, r.stderr
    from safetensors.torch import load_file

    for file in ("model.safetensors", "model-raw.safetensors"):
        a, b = load_file(home / "models" / "whole" / file), load_file(home / "models" / "cut" / file)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), file


def test_a_student_samples_with_its_steps_and_refuses_guidance(teacher, home):
    assert run_cli(["distill", "-m", teacher, "--steps", "2", "--name", "s", "--max-steps", "2", *STUDENT]).code == 0
    r = run_cli(["sample", "-m", "s", "--class", "3", "--seed", "0", "-o", "s.png", "--json"])
    assert r.code == 0, r.stderr
    report = r.json_lines()[-1]
    assert report["steps"] == 2 and report["guidance"] == 1.0, report
    assert report["learnt_guidance"] == {"teacher": "g", "guidance": 1.5, "guidance_interval": None}
    r = run_cli(["sample", "-m", "s", "--class", "3", "--seed", "0", "-o", "s.png"])
    assert r.code == 0 and "(ddim, 2 steps, CFG 1.5 of g, built in)" in r.stderr, r.stderr
    r = run_cli(["sample", "-m", "s", "--class", "3", "-g", "3", "-o", "-"])
    assert r.code == 2 and "distilled with the guidance of 'g' built in" in r.stderr and "Traceback" not in r.stderr
    shown = run_cli(["models", "show", "s"])
    assert shown.code == 0 and "from 'g' by progressive distillation, its 4 DDIM steps at CFG 1.5" in shown.stdout
    assert run_cli(["anagram", "-m", "s", "6", "9", "--seed", "0", "-o", "-"]).code == 0


@pytest.mark.parametrize(
    "args,message",
    [
        (["--steps", "4", "--teacher-steps", "6"], "must be a multiple of --steps 4"),
        (["--steps", "50"], "more than the teacher's 40 timesteps"),
        (["--method", "jump"], "--method"),
        (["--name", "x", "--resume"], "no checkpoint"),
        (["--name", "x", "--resume", "--steps", "2"], "drop --steps"),
    ],
)
def test_bad_distillations_are_refused_in_one_line(teacher, args, message):
    r = run_cli(["distill", "-m", teacher, *args, "--device", "cpu"])
    assert r.code in (1, 2) and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_only_a_diffusion_unet_can_teach(teacher, home):
    folder = home / "models" / "d"
    shutil.copytree(home / "models" / teacher, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(name="d", objective="denoise", conditioning={"type": "none"}, sampling={})
    (folder / "config.json").write_text(json.dumps(config))
    r = run_cli(["distill", "-m", "d", "--device", "cpu"])
    assert r.code == 2 and "'d' cannot teach" in r.stderr, r.stderr


def test_reflow_trains_on_cached_teacher_pairs(teacher, home):
    args = ["distill", "-m", teacher, "--method", "reflow", "--pairs", "64", "--epochs", "1", "--steps", "2", *STUDENT]
    assert run_cli([*args, "--name", "r"]).code == 0
    caches = list((home / "cache" / "reflow").iterdir())
    assert len(caches) == 1 and len(list(caches[0].glob("pairs-*.safetensors"))) == 1
    made = {p.name: p.stat().st_mtime_ns for p in caches[0].iterdir()}
    assert run_cli([*args, "--name", "r2"]).code == 0  # the same pairs: read, not sampled again
    assert {p.name: p.stat().st_mtime_ns for p in caches[0].iterdir()} == made
    from safetensors.torch import load_file

    a, b = (
        load_file(home / "models" / "r" / "model.safetensors"),
        load_file(home / "models" / "r2" / "model.safetensors"),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    config = json.loads((home / "models" / "r" / "config.json").read_text())
    assert config["distillation"]["method"] == "reflow" and config["distillation"]["pairs"] == 64
    # pair 3 is the teacher's sample started from the noise the trainer draws again for it
    import diffcli
    from diffcli.generation import generate, resolve_sampling
    from diffcli.generation.requests import Sampling
    from diffcli.training.distillation import Plan, pair_noise, teacher_terms
    from diffcli.training.reflow import PAIR_SEED

    chunk = next(caches[0].glob("pairs-*.safetensors"))
    images = load_file(chunk)["images"].clone()  # the file is overwritten below: not a view of it
    teacher_model = diffcli.load(teacher, device="cpu").loaded
    z = pair_noise(PAIR_SEED, torch.tensor([3]), (1, 28, 28), torch.device("cpu"))
    plan = Plan.from_dict(config["distillation"])
    terms = teacher_terms(teacher_model, torch.tensor([3]), plan)
    settings = resolve_sampling(teacher_model, Sampling(sampler="ddim", steps=plan.teacher_steps))
    x = generate(teacher_model, terms, [0], settings, noisy=z, start=teacher_model.schedule.timesteps - 1)
    assert (teacher_model.to_pixels(x)[0] * 255 - images[3].float().numpy()).__abs__().max() <= 1.0
    # a damaged chunk is made again, the same
    chunk.write_bytes(b"not a chunk")
    assert run_cli([*args, "--name", "r3"]).code == 0
    assert torch.equal(load_file(chunk)["images"], images)
