"""The illusion study's loop changes (studies/illusion_settings.py rows a26-a37): each does what its row
says and nothing when it should be neutral, through the engine's public pieces, leaving the model alone."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import torch
from helpers import load_script

from diffcli.diffusion.guidance import GuidedModel, Term, anagram_terms
from diffcli.diffusion.samplers import DDIMSampler, OutputSpec
from diffcli.diffusion.schedule import NoiseSchedule
from diffcli.diffusion.views import VIEWS

STUDY = Path(__file__).resolve().parents[1] / "studies" / "illusion_settings.py"


def _study():
    return load_script(STUDY, "illusions_study")


def _model(prediction="v"):
    schedule = NoiseSchedule.from_config({"kind": "cosine", "timesteps": 100})
    return SimpleNamespace(schedule=schedule, spec=OutputSpec(prediction=prediction))


def _net(x, t, cond):  # distinct per condition, any prediction type
    return torch.tanh(x) * (1 + cond.float()[:, None, None, None]) / 3


def test_rectified_anagram_matches_the_mean_when_the_views_agree_and_restores_the_noise_size_when_not():
    study = _study()
    model = _model()
    rectified = study.rectified_guidance(model)
    a, b = torch.tensor([1, 1]), torch.tensor([1, 1])
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([60, 60])
    same = anagram_terms(a, b, None, 1.0, VIEWS["identity"])  # both "views" the same estimate
    torch.testing.assert_close(rectified(_net, same)(x, t), GuidedModel(_net, same)(x, t), atol=1e-5, rtol=1e-5)

    terms = anagram_terms(torch.tensor([0, 0]), torch.tensor([2, 2]), None, 1.0, VIEWS["rot180"])
    eps_of = lambda out: model.schedule.to_x0_eps(x, t, out, "v")[1]  # noqa: E731
    plain, fixed = eps_of(GuidedModel(_net, terms)(x, t)), eps_of(rectified(_net, terms)(x, t))
    own = [eps_of(GuidedModel(_net, [replace(term, weight=1.0)])(x, t)) for term in terms]  # each view's own estimate
    target = (0.5 * own[0].flatten(1).pow(2).sum(1) + 0.5 * own[1].flatten(1).pow(2).sum(1)).sqrt()
    assert bool((plain.flatten(1).norm(dim=1) < target).all())  # the mean shrank the noise part
    torch.testing.assert_close(fixed.flatten(1).norm(dim=1), target, atol=1e-4, rtol=1e-4)


def test_time_travel_with_one_pass_is_the_plain_step_and_more_passes_call_the_model_again():
    study = _study()
    schedule = _model().schedule
    calls = []

    def model_fn(x, t):
        calls.append(t)
        return SimpleNamespace(x0=0.5 * x, eps=x)

    x = torch.randn(1, 1, 4, 4)
    pred = model_fn(x, 80)
    plain = DDIMSampler().step(schedule, model_fn, x, 80, 60, pred, None)
    torch.testing.assert_close(
        study.time_travel_sampler(DDIMSampler(), 1, 1.0).step(schedule, model_fn, x, 80, 60, pred, None), plain
    )
    calls.clear()
    again = study.time_travel_sampler(DDIMSampler(), 3, 0.5).step(schedule, model_fn, x, 80, 60, pred, None)
    assert calls == [80, 80] and not torch.equal(again, plain)  # renoised to t twice and stepped again
    calls.clear()
    study.time_travel_sampler(DDIMSampler(), 3, 0.5).step(schedule, model_fn, x, 30, 10, pred, None)
    assert calls == []  # the second half of the reverse process is left alone


def test_loop_pieces_change_the_loop_and_leave_the_model_alone():
    study = _study()
    model = _model()
    spec = model.spec
    custom = {"adaptive": 1.0, "time_travel": (2, 1.0), "spec": {"clip": None}, "temperature": 0.8}
    row = study.Row("x", "x", "anagram", {"sampler": "ddim"}, custom=custom)
    pieces = study.loop_pieces(model, row)
    assert pieces["guided"] is not GuidedModel and issubclass(pieces["guided"], GuidedModel)
    assert pieces["sampler"].name == "ddim" and type(pieces["sampler"]) is not DDIMSampler
    assert pieces["spec"].clip is None and pieces["temperature"] == 0.8
    assert model.spec is spec and spec.clip is not None  # the loaded model is not changed
    plain = study.loop_pieces(model, study.Row("y", "y", "anagram", {"sampler": "ddim"}, custom={"negative": 1.0}))
    assert plain["guided"] is GuidedModel and type(plain["sampler"]) is DDIMSampler
    assert plain["spec"] is spec and plain["temperature"] == 1.0


def test_an_unknown_model_or_row_is_one_line(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("DIFFCLI_HOME", str(tmp_path))
    for args, expected in ((["--model", "nope", "--rows", "a24"], "nope"), (["--rows", "a24,zz9"], "zz9")):
        done = subprocess.run([sys.executable, str(STUDY), *args], capture_output=True, text=True)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert (
            done.stderr.startswith("illusions study: ")
            and expected in done.stderr
            and len(done.stderr.strip().splitlines()) == 1
        )


def test_adaptive_weights_are_the_plain_mean_for_equal_guidance_and_favour_the_view_with_more_to_do():
    study = _study()
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([60, 60])
    same = anagram_terms(torch.tensor([1, 1]), torch.tensor([1, 1]), torch.tensor([0, 0]), 5.0, VIEWS["identity"])
    torch.testing.assert_close(study.adaptive_guidance(1.0)(_net, same)(x, t), GuidedModel(_net, same)(x, t))

    # class 2's guidance (cond - null) is twice class 1's for this net, so its view gets 2/3 (power 1), 4/5 (power 2)
    terms = anagram_terms(torch.tensor([1, 1]), torch.tensor([2, 2]), torch.tensor([0, 0]), 5.0, VIEWS["rot180"])
    own = [
        GuidedModel(_net, [replace(term, weight=2 * term.weight) for term in terms if term.view.name == name])(x, t)
        for name in ("identity", "rot180")
    ]
    for power, share in ((1.0, 2 / 3), (2.0, 4 / 5)):
        expected = (1 - share) * own[0] + share * own[1]
        torch.testing.assert_close(study.adaptive_guidance(power)(_net, terms)(x, t), expected, atol=1e-5, rtol=1e-5)


def test_generate_makes_the_pixels_of_the_anagram_command(home):
    from helpers import make_tiny_model

    import diffcli
    from diffcli.diffusion.samplers import make_sampler

    study = _study()
    make_tiny_model(home, "tiny")
    loaded = diffcli.load("tiny", device="cpu")
    made = loaded.anagram("1", "2", view="rot180", n=2, seed=5, sampler="ddim", steps=5, guidance=3.0, progress=False)
    model = loaded.loaded
    first, second = [model.resolve_prompt("1")] * 2, [model.resolve_prompt("2")] * 2
    null = model.null_condition(2)
    terms = anagram_terms(model.condition(first), model.condition(second), null, 3.0, VIEWS["rot180"])
    timesteps = model.schedule.strided_timesteps(5, model.schedule.timesteps - 1)
    x = study.generate(model, terms, [5, 6], timesteps, GuidedModel, make_sampler("ddim"), model.spec)
    ours = model.to_pixels(x)
    for i in range(2):  # the command's set holds each image followed by its view
        assert abs(made.images[2 * i] - ours[i]).max() < 1e-6


def test_temperature_scales_the_starting_noise():
    study = _study()
    schedule = NoiseSchedule.from_config({"kind": "linear", "timesteps": 50})
    zero = lambda x, t, c: torch.zeros_like(x)  # noqa: E731
    model = SimpleNamespace(device="cpu", channels=1, size=4, schedule=schedule, net=zero, learned_variance=False)
    spec = OutputSpec(prediction="eps", clip=None)  # a zero noise estimate: one DDIM step returns x_T / alpha_T
    terms = [Term(None, 1.0)]
    one, cool = (study.generate(model, terms, [3, 4], [49], GuidedModel, DDIMSampler(), spec, k) for k in (1.0, 0.8))
    torch.testing.assert_close(cool, 0.8 * one)
    assert not torch.equal(cool, one)
