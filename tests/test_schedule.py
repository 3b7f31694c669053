"""The noise schedule against diffusers' schedulers, and its timestep plans."""

import numpy as np
import pytest
import torch

from diffcli.diffusion.schedule import NoiseSchedule, gaussian_noise

# diffusers builds its sigmas with np.array(tensor), which numpy 2 warns about; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.mark.parametrize("kind,diffusers_name", [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
@pytest.mark.parametrize("timesteps", [300, 1000])
def test_alphas_cumprod_match_diffusers(kind, diffusers_name, timesteps):
    from diffusers import DDPMScheduler

    ours = NoiseSchedule(kind, timesteps)
    theirs = DDPMScheduler(num_train_timesteps=timesteps, beta_schedule=diffusers_name)
    np.testing.assert_allclose(ours.alphas_cumprod, theirs.alphas_cumprod.numpy(), atol=1e-5)
    np.testing.assert_allclose(ours.betas, theirs.betas.numpy(), atol=1e-6)


def test_linear_endpoints_are_the_course_values():
    s = NoiseSchedule("linear", 300)
    assert s.betas[0] == pytest.approx(1e-4) and s.betas[-1] == pytest.approx(0.02)
    # Golden: abar at the last step of the course's T=300 schedule (prod of 1 - beta in plain Python).
    assert s.alphas_cumprod[-1] == pytest.approx(0.0480584289, rel=1e-8)


def test_q_sample_numpy_and_torch_agree_and_follow_the_formula():
    s = NoiseSchedule("linear", 1000)
    x0 = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 4, 4)
    eps = gaussian_noise(x0.shape, 3)
    t = 500
    expected = np.sqrt(s.alphas_cumprod[t]) * x0 + np.sqrt(1 - s.alphas_cumprod[t]) * eps
    np.testing.assert_allclose(s.q_sample(x0, t, eps), expected, atol=1e-6)
    got = s.q_sample(torch.from_numpy(x0)[None], torch.tensor([t]), torch.from_numpy(eps)[None])
    np.testing.assert_allclose(got[0].numpy(), expected, atol=1e-6)


def test_predict_x0_inverts_q_sample():
    s = NoiseSchedule("cosine", 100)
    x0, eps = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    t = torch.tensor([0, 50, 99])
    x_t = s.q_sample(x0, t, eps)
    torch.testing.assert_close(s.predict_x0(x_t, t, eps), x0, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_every_prediction_type_round_trips(prediction):
    s = NoiseSchedule("linear", 200)
    x0, eps = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    t = torch.tensor([10, 60, 120, 190])
    x_t = s.q_sample(x0, t, eps)
    target = s.training_target(x0, eps, t, prediction)
    x0_hat, eps_hat = s.to_x0_eps(x_t, t, target, prediction)
    torch.testing.assert_close(x0_hat, x0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(eps_hat, eps, atol=1e-4, rtol=1e-4)


def test_flow_schedule_velocity_round_trips():
    s = NoiseSchedule("flow", 100)
    x0, eps = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    t = torch.tensor([0, 99])
    x_t = s.q_sample(x0, t, eps)
    torch.testing.assert_close(x_t[1], eps[1])  # t = T-1 is pure noise on the straight path
    v = s.training_target(x0, eps, t, "velocity")
    x0_hat, eps_hat = s.to_x0_eps(x_t, t, v, "velocity")
    torch.testing.assert_close(x0_hat, x0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(eps_hat, eps, atol=1e-5, rtol=1e-5)


def test_clean_timestep_is_identity():
    s = NoiseSchedule("linear", 10)
    assert s.alpha(-1) == 1.0 and s.sigma(-1) == 0.0


@pytest.mark.parametrize("steps", [1, 5, 10])
def test_strided_timesteps_start_at_T_minus_1(steps):
    s = NoiseSchedule("linear", 1000)
    ts = s.strided_timesteps(steps)
    assert ts[0] == 999 and len(ts) == steps and ts == sorted(ts, reverse=True) and ts[-1] >= 0


def test_strided_timesteps_match_diffusers_trailing():
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(num_train_timesteps=1000, timestep_spacing="trailing")
    scheduler.set_timesteps(10)
    assert NoiseSchedule("linear", 1000).strided_timesteps(10) == scheduler.timesteps.tolist()


def test_course_stride_and_bad_plans():
    s = NoiseSchedule("linear", 1000)
    assert s.stride_timesteps(30, 990)[:3] == [990, 960, 930] and s.stride_timesteps(30, 990)[-1] == 0
    with pytest.raises(ValueError):
        s.strided_timesteps(0)
    with pytest.raises(ValueError):
        s.strided_timesteps(1001)
    with pytest.raises(ValueError):
        NoiseSchedule("linear", 0)
    with pytest.raises(ValueError):
        NoiseSchedule("quadratic", 10)


def test_gaussian_noise_is_seeded():
    np.testing.assert_array_equal(gaussian_noise((2, 3), 7), gaussian_noise((2, 3), 7))
    assert not np.array_equal(gaussian_noise((2, 3), 7), gaussian_noise((2, 3), 8))


@pytest.mark.parametrize("kind,diffusers_name", [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
def test_karras_sigma_is_diffusers_sigma(kind, diffusers_name):
    """sigma_t / alpha_t = sqrt((1 - abar) / abar), the noise level of Karras et al. that diffusers'
    Heun and DPM-Solver schedulers use."""
    from diffusers import HeunDiscreteScheduler

    ours = NoiseSchedule(kind, 1000)
    theirs = HeunDiscreteScheduler(
        num_train_timesteps=1000, beta_schedule=diffusers_name, beta_start=1e-4, beta_end=0.02
    )
    timesteps = [999, 998, 500, 100]  # not t = 0: float32 1 - abar loses digits there
    theirs.set_timesteps(timesteps=timesteps)
    np.testing.assert_allclose([ours.karras_sigma(t) for t in timesteps], theirs.sigmas[::2][:4].numpy(), rtol=1e-5)
    assert ours.karras_sigma(-1) == 0.0


def test_pure_noise_timesteps():
    """abar = 0 in the schedule's formula: flow's and cosine's t = T-1 (cosine's only through the beta
    cap, sigma/alpha ~ 2e4 there); no timestep of the linear schedule."""
    flow, cosine, linear = NoiseSchedule("flow", 100), NoiseSchedule("cosine", 1000), NoiseSchedule("linear", 1000)
    assert flow.is_pure_noise(99) and flow.karras_sigma(99) == float("inf") and not flow.is_pure_noise(98)
    assert cosine.is_pure_noise(999) and 1e4 < cosine.karras_sigma(999) < 1e5 and not cosine.is_pure_noise(998)
    assert not any(linear.is_pure_noise(t) for t in (-1, 0, 999))
