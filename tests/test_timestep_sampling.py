"""Which timesteps training draws (`--timestep-sampling`): uniform as before, logit-normal in the middle."""

from __future__ import annotations

import json

import torch

from diffcli.training.timesteps import draw_timesteps
from tests.helpers import run_cli
from tests.test_cli_train import TINY, _same, _weights


def test_uniform_draws_are_the_ones_runs_made_before_the_option():
    # a run trained before `timestep_sampling` existed resumes and reproduces with the same draws
    old = torch.randint(0, 1000, (4096,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(draw_timesteps("uniform", 4096, 1000, torch.Generator().manual_seed(3)), old)


def test_logit_normal_draws_the_middle_most_often_and_stays_in_range():
    t = draw_timesteps("logit-normal", 200_000, 1000, torch.Generator().manual_seed(0))
    assert t.dtype == torch.int64 and int(t.min()) >= 0 and int(t.max()) <= 999
    counts = torch.bincount(t // 100, minlength=10).double() / len(t)
    # sigmoid(N(0, 1)): P(0.4 <= u < 0.5) = Phi(0) - Phi(logit(0.4)) = 0.5 - Phi(-0.405) = 0.157
    assert abs(float(counts[4]) - 0.157) < 0.005 and abs(float(counts[5]) - 0.157) < 0.005
    # P(u < 0.1) = Phi(logit(0.1)) = Phi(-2.197) = 0.0140: the ends are rare, not absent
    assert abs(float(counts[0]) - 0.0140) < 0.002 and abs(float(counts[9]) - 0.0140) < 0.002
    assert int(t.min()) < 20 and int(t.max()) > 980  # P(u > 0.98) = Phi(-3.89): about 10 of 200,000


def test_the_flag_reaches_the_saved_recipe_trains_differently_and_resume_keeps_it(home):
    r = run_cli(
        ["train", *TINY, "--max-steps", "2", "--name", "ln", "-q", "--json"]
    )  # the default recipe draws logit-normal
    assert r.code == 0, r.stderr
    settings = json.loads((home / "models" / "ln" / "config.json").read_text())["training"]["settings"]
    assert settings["timestep_sampling"] == "logit-normal"
    r = run_cli(["train", *TINY, "--max-steps", "2", "--timestep-sampling", "uniform", "--name", "un", "-q", "--json"])
    assert r.code == 0, r.stderr
    assert (
        json.loads((home / "models" / "un" / "config.json").read_text())["training"]["settings"]["timestep_sampling"]
        == "uniform"
    )
    assert not _same(_weights(home, "ln"), _weights(home, "un"))  # the same seed, other timesteps
    r = run_cli(["train", "--name", "ln", "--resume", "--timestep-sampling", "uniform", "-q"])
    assert r.code == 2 and "drop --timestep-sampling" in r.stderr
    r = run_cli(["train", "--name", "ln", "--resume", "--max-steps", "3", "-q"])
    assert r.code == 0, r.stderr
    assert (
        json.loads((home / "models" / "ln" / "config.json").read_text())["training"]["settings"]["timestep_sampling"]
        == "logit-normal"
    )


def test_bad_timestep_samplings_are_one_line_refusals(home):
    for flags, message in (
        (
            ["--timestep-sampling", "normal"],
            "unknown --timestep-sampling 'normal'; choose one of uniform, logit-normal",
        ),
        (
            ["--timestep-sampling", "logit-normal", "--preset", "denoiser"],
            "--objective denoise has none; leave --timestep-sampling out",
        ),
    ):
        r = run_cli(["train", *TINY, "--max-steps", "1", "--name", "bad", *flags])
        assert (
            r.code == 2
            and message in r.stderr
            and len(r.stderr.strip().splitlines()) == 1
            and "Traceback" not in r.stderr
        ), r.stderr


def test_the_default_recipe_is_flow_with_logit_normal_and_old_recipes_keep_what_they_trained_with():
    from diffcli.training.recipe import TrainSettings, settings_for

    default = settings_for("default", {})
    assert (default.objective, default.timestep_sampling, default.guidance) == ("flow", "logit-normal", 1.5)
    course = settings_for("course", {})
    assert (course.objective, course.timestep_sampling) == ("eps", "uniform")  # the course draws t uniformly
    assert settings_for("denoiser", {}).timestep_sampling == "uniform"
    # A checkpoint saved before `timestep_sampling` existed resumes with what it trained with (uniform),
    # not with today's default recipe; so does one whose recipe lacks other fields.
    saved = default.to_dict()
    del saved["timestep_sampling"]
    assert TrainSettings.from_dict(saved).timestep_sampling == "uniform"
    del saved["objective"]
    assert TrainSettings.from_dict(saved).objective == "v"


def test_a_checkpoint_from_before_the_option_resumes_as_it_trained_not_as_todays_default(home):
    # A run whose saved recipe lacks `timestep_sampling` continues with uniform draws and its v objective,
    # whatever `diffcli train`'s default is (flow with logit-normal draws).
    from diffcli.training.checkpoint import load_checkpoint, save_checkpoint

    r = run_cli(
        [
            "train",
            *TINY,
            "--max-steps",
            "2",
            "--objective",
            "v",
            "--timestep-sampling",
            "uniform",
            "--name",
            "old",
            "-q",
        ]
    )
    assert r.code == 0, r.stderr
    (path,) = (home / "models" / "old").rglob("checkpoint.pt")
    state = load_checkpoint(path, "old")
    del state["settings"]["timestep_sampling"]
    save_checkpoint(path, {k: v for k, v in state.items() if k != "format"})
    r = run_cli(["train", "--name", "old", "--resume", "--max-steps", "3", "-q"])
    assert r.code == 0, r.stderr
    config = json.loads((home / "models" / "old" / "config.json").read_text())
    assert config["training"]["steps"] == 3
    assert (config["training"]["settings"]["objective"], config["training"]["settings"]["timestep_sampling"]) == (
        "v",
        "uniform",
    )
