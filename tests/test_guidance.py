"""Guidance terms: CFG, anagram and hybrid combinations in one batched evaluation; views; filters."""

import numpy as np
import pytest
import torch

from diffcli.diffusion import filters
from diffcli.diffusion.guidance import (
    GuidedModel,
    anagram_terms,
    classifier_free,
    hybrid_terms,
    inpaint_hook,
    same_condition,
)
from diffcli.diffusion.samplers import NoiseSource
from diffcli.diffusion.schedule import NoiseSchedule
from diffcli.diffusion.views import VIEWS, get_view


class CountingNet:
    """eps = x * (1 + cond) + t/100: easy to compute by hand; counts calls and rows."""

    def __init__(self):
        self.calls, self.rows = 0, 0

    def __call__(self, x, t, cond):
        self.calls += 1
        self.rows += x.shape[0]
        c = torch.zeros(x.shape[0]) if cond is None else cond.float()
        return x * (1 + c[:, None, None, None]) + t.float()[:, None, None, None] / 100


def test_cfg_is_one_batched_call_with_the_textbook_formula():
    net = CountingNet()
    x, t = torch.randn(2, 1, 4, 4), torch.tensor([10, 10])
    cond, null = torch.tensor([3, 3]), torch.tensor([0, 0])
    out = GuidedModel(net, classifier_free(cond, null, 5.0))(x, t)
    e_c, e_u = net(x, t, cond), net(x, t, null)
    torch.testing.assert_close(out, e_u + 5.0 * (e_c - e_u))
    assert net.calls == 3 and net.rows == 4 + 4  # one guided call of 2B rows, then our two checks


def test_scale_one_is_a_single_conditional_evaluation():
    net = CountingNet()
    model = GuidedModel(net, classifier_free(torch.tensor([2]), torch.tensor([0]), 1.0))
    assert model.evaluations == 1


def test_anagram_combines_viewed_estimates():
    net = CountingNet()
    x, t = torch.randn(1, 1, 4, 4), torch.tensor([5])
    a, b, null = torch.tensor([1]), torch.tensor([2]), torch.tensor([0])
    view = VIEWS["rot180"]
    out = GuidedModel(net, anagram_terms(a, b, null, 3.0, view, weight=0.5))(x, t)
    cfg = lambda xx, c: net(xx, t, null) + 3.0 * (net(xx, t, c) - net(xx, t, null))  # noqa: E731
    expected = 0.5 * cfg(x, a) + 0.5 * view.inverse(cfg(view.apply(x), b))
    torch.testing.assert_close(out, expected)


def test_hybrid_is_lowpass_of_far_plus_highpass_of_near_and_shares_the_null_evaluation():
    net = CountingNet()
    x, t = torch.randn(1, 1, 16, 16), torch.tensor([5])
    far, near, null = torch.tensor([1]), torch.tensor([2]), torch.tensor([0])
    model = GuidedModel(net, hybrid_terms(far, near, null, 2.0, kernel=5, sigma=1.0))
    assert model.evaluations == 3  # far, near and one shared null
    out = model(x, t)
    cfg = lambda c: net(x, t, null) + 2.0 * (net(x, t, c) - net(x, t, null))  # noqa: E731
    expected = filters.lowpass(cfg(far), 5, 1.0) + filters.highpass(cfg(near), 5, 1.0)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_conditions_equal_in_value_share_one_evaluation():
    """Distinct tensors with the same contents are one evaluation; a different dtype, shape or value is not."""
    net = CountingNet()
    x, t = torch.randn(2, 1, 4, 4), torch.tensor([10, 10])
    null_a, null_b = torch.tensor([0, 0]), torch.tensor([0, 0])
    model = GuidedModel(net, classifier_free(null_a, null_b, 5.0))
    assert model.evaluations == 1
    out = model(x, t)
    assert net.rows == 2
    torch.testing.assert_close(out, net(x, t, null_a))  # eps_u + 5 (eps_u - eps_u)
    assert (
        model.evaluations == 1 and GuidedModel(net, classifier_free(torch.tensor([3, 3]), null_b, 5.0)).evaluations == 2
    )
    assert same_condition(None, None) and same_condition(null_a, null_a.clone())
    assert (
        not same_condition(null_a, null_a.float())
        and not same_condition(null_a, null_a[:1])
        and not same_condition(null_a, None)
    )
    # same condition, different views: two evaluations
    assert (
        GuidedModel(net, anagram_terms(torch.tensor([1]), torch.tensor([1]), None, 1.0, VIEWS["flip"])).evaluations == 2
    )
    assert (
        GuidedModel(net, anagram_terms(torch.tensor([1]), torch.tensor([1]), None, 1.0, VIEWS["identity"])).evaluations
        == 1
    )


def test_context_is_concatenated_before_the_view_and_the_output_keeps_x_channels():
    """Stage II of IF reads [x_t, upsampled image]: the view transforms both, the inverse view maps the
    estimate back, and only x_t's channels (plus the variance half) come out."""
    seen = []

    def net(x, t, cond):
        seen.append(x.clone())
        return torch.cat([x[:, :1] * 2, x[:, 1:2] * 0 + 7], 1)  # an eps half from x, a variance half of 7s

    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    context = -torch.arange(16.0).reshape(1, 1, 4, 4)
    view = VIEWS["flip"]
    out = GuidedModel(
        net,
        anagram_terms(torch.tensor([1]), torch.tensor([2]), None, 1.0, view),
        learned_variance=True,
        context=context,
    )(x, torch.tensor([3]))
    assert seen[0].shape == (2, 2, 4, 4)
    torch.testing.assert_close(seen[0][1], view.apply(torch.cat([x, context], 1))[0])
    assert out.shape == (1, 2, 4, 4)
    torch.testing.assert_close(out[:, :1], 2 * x)  # 0.5 * 2x + 0.5 * V^-1(2 V(x))
    assert torch.all(out[:, 1] == 7)


def _spy_on_network_rows(monkeypatch) -> list[int]:
    from diffcli.models.backends.unet import UNetModel

    rows: list[int] = []
    real = UNetModel.net

    def spy(self, x, t, cond):
        rows.append(x.shape[0])
        return real(self, x, t, cond)

    monkeypatch.setattr(UNetModel, "net", spy)
    return rows


@pytest.mark.parametrize(
    "args,rows_per_step",
    [
        (["denoise", "builtin:digit"], 1),  # unconditional with CFG 2: the condition IS the null class
        (["sample", "--class", "3"], [1, 2, 2]),  # CFG (class 3 and the null class) in 0.2:0.7 of T only, the model's
        (["sample", "--class", "3", "--guidance", "1"], 1),
        (["sample", "--class", "3", "--guidance", "2"], 2),  # a scale of one's own guides throughout
        (["anagram", "6", "9"], 4),  # (6, null) as is, (9, null) flipped
        (["hybrid", "1", "7", "--far-first", "0"], 3),  # 1, 7 and one shared null
        (["hybrid", "1", "7"], [2, 3, 3]),  # the first fifth follows FAR alone: 1 and null, no 7 (CFG 5 throughout)
    ],
)
def test_network_rows_per_step_on_the_embedded_model(args, rows_per_step, monkeypatch):
    from helpers import run_cli

    rows = _spy_on_network_rows(monkeypatch)
    extra = [] if args[0] == "denoise" else ["--steps", "3"]
    r = run_cli([*args, *extra, "--seed", "0", "--device", "cpu", "-q", "-o", "out.png"])
    assert r.code == 0, r.stderr
    if isinstance(rows_per_step, list):  # one entry per step (3 steps: t = 999, 666, 332)
        assert rows == rows_per_step, rows
    else:
        assert rows and set(rows) == {rows_per_step}, rows


def test_learned_variance_comes_from_conditional_evaluations():
    def net(x, t, cond):
        return torch.cat([x, cond.float()[:, None, None, None].expand_as(x)], 1)

    x, t = torch.zeros(1, 1, 2, 2), torch.tensor([1])
    out = GuidedModel(net, classifier_free(torch.tensor([4]), torch.tensor([0]), 7.0), learned_variance=True)(x, t)
    assert out.shape == (1, 2, 2, 2) and torch.all(out[:, 1] == 4)


@pytest.mark.parametrize("name", [n for n in VIEWS])
def test_views_are_invertible(name):
    view = VIEWS[name]
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(view.inverse(view.apply(x)), x)


def test_rot90_refuses_non_square_and_unknown_views_are_listed():
    with pytest.raises(ValueError, match="square"):
        VIEWS["rot90"].check_fits(8, 16)
    with pytest.raises(ValueError, match="flip"):
        get_view("spin")


def test_blur_matches_torchvision_and_numpy_matches_torch():
    from torchvision.transforms.functional import gaussian_blur

    x = torch.rand(1, 3, 20, 24)
    ours = filters.gaussian_blur(x, 5, 2.0)
    torch.testing.assert_close(ours, gaussian_blur(x, [5, 5], [2.0, 2.0]), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(filters.gaussian_blur(x.numpy(), 5, 2.0), ours.numpy(), atol=1e-5)


def test_low_plus_high_is_identity_and_bad_kernels_fail():
    x = torch.randn(1, 1, 16, 16)
    torch.testing.assert_close(filters.lowpass(x, 7, 2) + filters.highpass(x, 7, 2), x)
    with pytest.raises(ValueError, match="odd"):
        filters.gaussian_kernel1d(4, 1.0)
    with pytest.raises(ValueError, match="too large"):
        filters.gaussian_blur(x, 33, 2.0)
    assert filters.default_hybrid_filter(64) == (33, 2.0)
    assert filters.scale_filter(33, 2.0, 4) == (133, 8.0) == filters.default_hybrid_filter(256)  # stage II of IF


def test_inpaint_hook_keeps_known_pixels_exactly_at_the_end():
    schedule = NoiseSchedule("linear", 100)
    orig = torch.ones(1, 1, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2] = 1
    hook = inpaint_hook(schedule, orig, mask, NoiseSource([0]))
    x = torch.full((1, 1, 4, 4), -1.0)
    out = hook(x, -1)
    assert torch.all(out[..., :2] == -1) and torch.all(out[..., 2:] == 1)


def _scales_by_timestep(terms, timesteps):
    """{t: (sum of weights, conditional weight, whether a null evaluation is used)} for CFG terms."""
    out = {}
    for t in timesteps:
        active = [term for term in terms if term.applies(t)]
        out[t] = (
            sum(term.weight for term in active),
            sum(term.weight for term in active if not term.unconditional),
            any(term.unconditional for term in active),
        )
    return out


def test_guidance_interval_guides_inside_and_is_plainly_conditional_outside():
    terms = classifier_free(torch.tensor([3, 3]), torch.tensor([10, 10]), 3.0, interval=(200, 700))
    got = _scales_by_timestep(terms, (999, 700, 699, 200, 199, 0))
    assert got == {
        999: (1.0, 1.0, False),
        700: (1.0, 1.0, False),
        699: (1.0, 3.0, True),
        200: (1.0, 3.0, True),
        199: (1.0, 1.0, False),
        0: (1.0, 1.0, False),
    }
    # outside the interval the null condition is not evaluated at all: one network row per sample
    net = CountingNet()
    model = GuidedModel(net, terms)
    x = torch.randn(2, 1, 4, 4)
    model(x, torch.tensor([900, 900]))
    assert net.rows == 2
    torch.testing.assert_close(
        model(x, torch.tensor([900, 900])), net(x, torch.tensor([900, 900]), torch.tensor([3, 3]))
    )
    out = model(x, torch.tensor([500, 500]))
    e_c, e_u = (
        net(x, torch.tensor([500, 500]), torch.tensor([3, 3])),
        net(x, torch.tensor([500, 500]), torch.tensor([10, 10])),
    )
    torch.testing.assert_close(out, e_u + 3.0 * (e_c - e_u))


def test_guidance_interval_meets_each_terms_own_range():
    """Anagram weight segments and hybrid bands keep their weights summing to one at every timestep,
    guided only where their range meets the interval."""
    a, b, null = torch.tensor([1]), torch.tensor([2]), torch.tensor([0])
    schedule = [(0, 500, 0.25), (500, 1 << 62, 0.75)]
    terms = anagram_terms(a, b, null, 4.0, VIEWS["flip"], schedule, interval=(300, 800))
    for t, guided in (
        (999, False),
        (800, False),
        (799, True),
        (500, True),
        (499, True),
        (300, True),
        (299, False),
        (0, False),
    ):
        active = [term for term in terms if term.applies(t)]
        assert sum(term.weight for term in active) == pytest.approx(1.0), t
        assert any(term.unconditional for term in active) == guided, t
        first = sum(term.weight for term in active if term.view.name == "identity" and not term.unconditional)
        assert first == pytest.approx((0.25 if t < 500 else 0.75) * (4.0 if guided else 1.0)), t
    bands = hybrid_terms(a, b, null, 2.0, 5, 1.0, low_switch=100, high_switch=900, interval=(0, 600))
    for t, guided in ((950, False), (600, False), (599, True), (50, True)):
        active = [term for term in bands if term.applies(t)]
        assert sum(term.weight for term in active) == pytest.approx(2.0), t  # a low band and a high band
        assert any(term.unconditional for term in active) == guided, t


def _stub_model(sampling, guide=True):
    from types import SimpleNamespace

    return SimpleNamespace(
        name="stub",
        supports_guidance=guide,
        config=SimpleNamespace(sampling=sampling, distillation={}),
        schedule=SimpleNamespace(timesteps=1000),
    )


def test_the_models_interval_goes_with_the_models_scale():
    from diffcli.generation import interval_timesteps, resolve_guidance

    model = _stub_model({"guidance": 3.0, "guidance_interval": [0.2, 0.7]})
    assert resolve_guidance(model, None) == (3.0, (0.2, 0.7))
    assert resolve_guidance(model, 2.0) == (2.0, None)  # a scale of one's own guides throughout
    assert resolve_guidance(model, 2.0, "0.3:0.9") == (2.0, (0.3, 0.9))
    assert resolve_guidance(model, None, "0:1") == (3.0, None)  # 0:1 is throughout
    assert resolve_guidance(model, 1.0, "0.2:0.7") == (1.0, None)  # nothing to limit
    assert resolve_guidance(_stub_model({"guidance": 2.0}), None) == (2.0, None)
    from diffcli.errors import UsageError

    with pytest.raises(UsageError, match="cannot guide"):
        resolve_guidance(_stub_model({}, guide=False), None, "0.2:0.7")
    assert resolve_guidance(_stub_model({"guidance_interval": [0.2, 0.7]}, guide=False), None) == (1.0, None)
    assert interval_timesteps(model, (0.2, 0.7)) == (200, 700)
    assert interval_timesteps(model, (0.5, 1.0)) == (500, 1 << 62)  # T-1 included
    assert interval_timesteps(model, None) is None


@pytest.mark.parametrize("value", ["0.7:0.2", "0.2", "a:b", "0:1.5", "-0.1:0.5", "nan:1", (0.5,), 3])
def test_a_bad_guidance_interval_is_one_clear_error(value):
    from diffcli.checks import parse_guidance_interval
    from diffcli.errors import UsageError

    with pytest.raises(UsageError, match="guidance_interval") as caught:
        parse_guidance_interval(value)
    assert "LO:HI" in caught.value.one_line()


def test_guidance_interval_on_the_command_line(monkeypatch):
    """CFG 3 in 0.5:0.7 with 3 steps (t = 999, 666, 332): guided at 666 only; --json records it."""
    import json

    from helpers import run_cli

    rows = _spy_on_network_rows(monkeypatch)
    r = run_cli(
        ("sample --class 3 --steps 3 -g 3 --guidance-interval 0.5:0.7 --seed 0 --device cpu --json -o out.png").split()
    )
    assert r.code == 0, r.stderr
    assert rows == [1, 2, 1]
    assert json.loads(r.stdout)["guidance_interval"] == [0.5, 0.7]
    bad = run_cli(
        ["sample", "--class", "3", "--guidance-interval", "0.6:0.4", "--device", "cpu", "-q", "-o", "bad.png"]
    )
    assert (
        bad.code == 2
        and len(bad.stderr.strip().splitlines()) == 1
        and "--guidance-interval" in bad.stderr
        and "Traceback" not in bad.stderr
    )
