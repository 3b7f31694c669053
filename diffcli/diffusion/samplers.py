"""Reverse-process samplers and the ONE loop that runs them.

Every command that denoises (`denoise --method iterative`, `sample`, SDEdit, inpainting, `anagram`,
`hybrid`, `eval`, the training previews) goes through `run_reverse`. A sampler is one small class with a
`step`; guidance lives in the model function it is given (see guidance.py), so a new sampler or a new
guidance mode never needs a second loop.

Step formulas (docs/engine.md), written with alpha_t, sigma_t (schedule.py) so they hold for every schedule.
For a step t -> s (s < t, s = -1 is clean): alpha_ts = alpha_t / alpha_s, var_ts = sigma_t^2 - alpha_ts^2 sigma_s^2.
- DDPM posterior: mean = alpha_s var_ts / sigma_t^2 * x0 + alpha_ts sigma_s^2 / sigma_t^2 * x_t,
  variance = var_ts sigma_s^2 / sigma_t^2. For VP schedules this is exactly the strided DDPM step
  `sqrt(abar_s) b / (1 - abar_t) x0 + sqrt(a) (1 - abar_s) / (1 - abar_t) x_t`, a = abar_t / abar_s, b = 1 - a.
- DDIM: x_s = alpha_s x0 + sqrt(sigma_s^2 - std^2) eps + std z, std = eta * sqrt(DDPM variance).
- Heun (Karras et al. 2022, Alg. 1): Euler in sigma_t / alpha_t (= the DDIM step), then the trapezoidal
  correction with a second evaluation at the Euler point.
- DPM-Solver++(2M) (Lu et al. 2022): a multistep solver on x0 estimates, one evaluation a step.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from diffcli.diffusion import names
from diffcli.diffusion.schedule import NoiseSchedule, validate_timesteps

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(x_t [B,C,H,W], t [B] long) -> raw network output ([B,C,H,W], or [B,2C,H,W] with learned variance)."""

StepCallback = Callable[[int, int, torch.Tensor, torch.Tensor], None]
"""(step index, t, x_t, predicted x0) after each step's model evaluation."""

AfterStep = Callable[[torch.Tensor, int], torch.Tensor]
"""(x_s, s) -> x_s: a hook run after every step (inpainting puts the known pixels back here)."""


@dataclass(frozen=True)
class OutputSpec:
    """How to read a network's output.

    prediction: what it predicts (eps, x0, v, velocity; schedule.to_x0_eps).
    learned_variance: the output has twice the image channels, the second half an interpolation
        value in [-1, 1] between the posterior variance and beta (`learned_range`, Nichol & Dhariwal).
    clip: clamp the clean estimate to this pixel range at every step (None: no clamp).
    dynamic_threshold: Imagen's dynamic thresholding percentile (e.g. 0.95), applied instead of clip.
    """

    prediction: str = "eps"
    learned_variance: bool = False
    clip: tuple[float, float] | None = (-1.0, 1.0)
    dynamic_threshold: float | None = None
    threshold_max: float = 1.0


@dataclass
class Prediction:
    """A model evaluation read as a clean estimate and a noise estimate."""

    x0: torch.Tensor
    eps: torch.Tensor
    variance_value: torch.Tensor | None = None  # learned_range interpolation in [-1, 1]


class NoiseSource:
    """Gaussian noise drawn per sample from its own seed, so sample i of a batch is the same image
    as a run of one sample with seed + i, whatever the batch size."""

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.seeds = list(seeds)
        gen_device = self.device if self.device.type in ("cuda", "mps") else torch.device("cpu")
        self.generators = [torch.Generator(device=gen_device).manual_seed(int(s)) for s in seeds]
        self._gen_device = gen_device

    def __len__(self) -> int:
        return len(self.generators)

    def randn(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """A [len(seeds), *shape] tensor, row i drawn from generator i."""
        rows = [torch.randn(tuple(shape), generator=g, device=self._gen_device, dtype=dtype) for g in self.generators]
        return torch.stack(rows).to(self.device)

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        """Noise shaped like a batch x with one row per seed."""
        if x.shape[0] != len(self.generators):
            raise ValueError(f"batch of {x.shape[0]} but {len(self.generators)} seeds")
        return self.randn(x.shape[1:], dtype=x.dtype)


def predict(
    schedule: NoiseSchedule, spec: OutputSpec, x_t: torch.Tensor, t: torch.Tensor, output: torch.Tensor
) -> Prediction:
    """Read a raw network output as (x0, eps, variance), clipping x0 as the spec asks."""
    channels = x_t.shape[1]
    variance_value = None
    if spec.learned_variance:
        output, variance_value = output[:, :channels], output[:, channels:]
    x0, eps = schedule.to_x0_eps(x_t, t, output, spec.prediction)
    clipped = _threshold(x0, spec)
    if clipped is not x0:
        x0 = clipped
        # Keep eps consistent with the clipped x0 wherever there is noise to explain.
        _, s = schedule._coefficients(t, x_t)
        if bool((s > 0).all()):
            eps = schedule.predict_eps(x_t, t, x0)
    return Prediction(x0=x0, eps=eps, variance_value=variance_value)


def _threshold(x0: torch.Tensor, spec: OutputSpec) -> torch.Tensor:
    if spec.dynamic_threshold is not None:
        flat = x0.reshape(x0.shape[0], -1).abs().float()
        s = torch.quantile(flat, spec.dynamic_threshold, dim=1).clamp(min=1.0, max=spec.threshold_max)
        s = s.to(x0.dtype).reshape(-1, *([1] * (x0.ndim - 1)))
        return torch.maximum(torch.minimum(x0, s), -s) / s
    if spec.clip is not None:
        return x0.clamp(*spec.clip)
    return x0


# ----- single steps (pure math, tested against diffusers) -------------------------------------------
def _step_coefficients(schedule: NoiseSchedule, t: int, s: int) -> tuple[float, float, float, float, float]:
    """alpha_t, sigma_t, alpha_s, sigma_s and the DDPM posterior variance of the step t -> s."""
    a_t, s_t, a_s, s_s = schedule.alpha(t), schedule.sigma(t), schedule.alpha(s), schedule.sigma(s)
    alpha_ts = a_t / a_s
    var_ts = s_t**2 - alpha_ts**2 * s_s**2
    posterior_var = var_ts * s_s**2 / s_t**2
    return a_t, s_t, a_s, s_s, posterior_var


def ddpm_step(
    schedule: NoiseSchedule,
    x_t: torch.Tensor,
    t: int,
    s: int,
    pred: Prediction,
    noise: torch.Tensor | None,
) -> torch.Tensor:
    """One strided DDPM ancestral step t -> s, with the posterior variance (or the learned one)."""
    a_t, s_t, a_s, s_s, posterior_var = _step_coefficients(schedule, t, s)
    alpha_ts = a_t / a_s
    var_ts = s_t**2 - alpha_ts**2 * s_s**2
    mean = (a_s * var_ts / s_t**2) * pred.x0 + (alpha_ts * s_s**2 / s_t**2) * x_t
    if s < 0 or noise is None:
        return mean
    if pred.variance_value is not None:
        # learned_range: interpolate the log variance between the posterior variance and beta_ts.
        min_log = math.log(max(posterior_var, 1e-20))
        max_log = math.log(max(var_ts, 1e-20))  # beta of the strided step
        frac = (pred.variance_value + 1) / 2
        std = torch.exp(0.5 * (frac * max_log + (1 - frac) * min_log))
        return mean + std * noise
    return mean + math.sqrt(posterior_var) * noise


def ddim_step(
    schedule: NoiseSchedule,
    x_t: torch.Tensor,
    t: int,
    s: int,
    pred: Prediction,
    noise: torch.Tensor | None,
    eta: float = 0.0,
) -> torch.Tensor:
    """One DDIM step t -> s; eta = 0 is deterministic, eta = 1 matches DDPM's variance."""
    _, _, a_s, s_s, posterior_var = _step_coefficients(schedule, t, s)
    std = eta * math.sqrt(max(posterior_var, 0.0))
    direction = math.sqrt(max(s_s**2 - std**2, 0.0))
    x_s = a_s * pred.x0 + direction * pred.eps
    if std > 0 and noise is not None and s >= 0:
        x_s = x_s + std * noise
    return x_s


# ----- samplers ----------------------------------------------------------------------------------
_REGISTRY: dict[str, type[Sampler]] = {}


def register_sampler(*aliases: str) -> Callable[[type[Sampler]], type[Sampler]]:
    """Class decorator: make a sampler available by its `name` (and `aliases`) to `make_sampler`; its
    name also needs its line in diffusion/names.py, which the CLI and the config schema read."""

    def register(cls: type[Sampler]) -> type[Sampler]:
        for key in (cls.name, *aliases):
            _REGISTRY[key] = cls
        return cls

    return register


class Sampler:
    """A reverse-process step rule. `step` gets the prediction at (x_t, t) that the loop already made,
    and may call `model` again (Heun) or keep state between steps (DPM-Solver++)."""

    name = "sampler"
    stochastic = False

    @classmethod
    def make(cls, eta: float = 0.0) -> Sampler:
        """A fresh sampler for one run (`eta` matters to DDIM only)."""
        return cls()

    def step(
        self,
        schedule: NoiseSchedule,
        model: Callable[[torch.Tensor, int], Prediction],
        x_t: torch.Tensor,
        t: int,
        s: int,
        pred: Prediction,
        noise: NoiseSource | None,
    ) -> torch.Tensor:
        raise NotImplementedError


@register_sampler()
class DDPMSampler(Sampler):
    """Ancestral sampling with the DDPM posterior (Ho et al. 2020), strided as in the course."""

    name = "ddpm"
    stochastic = True

    def step(self, schedule, model, x_t, t, s, pred, noise):
        z = noise.randn_like(x_t) if (noise is not None and s >= 0) else None
        return ddpm_step(schedule, x_t, t, s, pred, z)


@register_sampler()
class DDIMSampler(Sampler):
    """DDIM (Song et al. 2021); eta between 0 (deterministic) and 1 (DDPM-like noise)."""

    name = "ddim"

    def __init__(self, eta: float = 0.0) -> None:
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be between 0 and 1, got {eta}")
        self.eta = eta
        self.stochastic = eta > 0

    @classmethod
    def make(cls, eta: float = 0.0) -> DDIMSampler:
        return cls(eta)

    def step(self, schedule, model, x_t, t, s, pred, noise):
        z = noise.randn_like(x_t) if (self.eta > 0 and noise is not None and s >= 0) else None
        return ddim_step(schedule, x_t, t, s, pred, z, self.eta)


@register_sampler()
class HeunSampler(Sampler):
    """Karras et al. (2022), Algorithm 1: the deterministic second-order Heun method on the probability
    flow ODE dx/dsigma = (x - x0(x; sigma)) / sigma, in their variables x = x_t / alpha_t and
    sigma = sigma_t / alpha_t, over the timesteps the loop is given.

    In the model's own (VP) variables the Euler step of Algorithm 1 is exactly the DDIM step, and
    the trapezoidal correction adds alpha_s (sigma_s - sigma_t) / 2 * (eps_s - eps_t), with eps_s the
    noise estimate at the Euler point (Karras sigmas). Written that way nothing is ever divided by
    a tiny alpha_t. Two first-order (Euler) steps, where the algorithm itself has no second evaluation:
    - into the clean image (sigma = 0), as in Algorithm 1;
    - out of a timestep of infinite sigma (`NoiseSchedule.is_pure_noise`: the flow schedule's
      t = T-1, alpha = 0, and the cosine schedule's t = T-1, whose abar is 0 in its formula and
      ~2.4e-9 only through the cap on beta). There the trapezoid's weight alpha_s * sigma_t / 2 is
      infinite (for the capped cosine ~1.6e3 on the step 999 -> 899): the rule weighs the slope at
      the end of a step from sigma ~ 2e4 down to ~6 as if it held over half the step. docs/engine.md
      measures what that does.
    """

    name = "heun"

    def step(self, schedule, model, x_t, t, s, pred, noise):
        euler = ddim_step(schedule, x_t, t, s, pred, None)
        if s < 0 or schedule.is_pure_noise(t):
            return euler
        pred_s = model(euler, s)
        weight = schedule.alpha(s) * (schedule.karras_sigma(s) - schedule.karras_sigma(t)) / 2
        return euler + weight * (pred_s.eps - pred.eps)


@register_sampler("dpmpp", "dpm-solver++")
class DPMSolverPP2MSampler(Sampler):
    """DPM-Solver++(2M) (Lu et al. 2022): second-order multistep on x0 estimates, one model
    evaluation a step; strong at 10-25 steps."""

    name = "dpm++"

    def __init__(self) -> None:
        self._previous: tuple[torch.Tensor, float] | None = None

    def step(self, schedule, model, x_t, t, s, pred, noise):
        a_t, s_t, a_s, s_s = schedule.alpha(t), schedule.sigma(t), schedule.alpha(s), schedule.sigma(s)
        if s < 0:  # into the clean image: the estimate itself
            self._previous = None
            return pred.x0
        if a_t == 0.0:  # pure noise on the flow path has no log-SNR: take a first-order (DDIM) step
            self._previous = None
            return ddim_step(schedule, x_t, t, s, pred, None)
        lam_t = math.log(a_t / s_t)
        lam_s = math.log(a_s / s_s)
        h = lam_s - lam_t
        d = pred.x0
        if self._previous is not None:
            prev_x0, lam_prev = self._previous
            r = (lam_t - lam_prev) / h
            d = (1 + 1 / (2 * r)) * pred.x0 - (1 / (2 * r)) * prev_x0
        self._previous = (pred.x0, lam_t)
        return (s_s / s_t) * x_t - a_s * math.expm1(-h) * d


SAMPLERS = names.SAMPLERS


def make_sampler(name: str, eta: float = 0.0) -> Sampler:
    """A sampler by name (diffusion/names.py lists them; ddim takes eta); a fresh one per run, since a
    multistep sampler keeps state."""
    if name not in _REGISTRY and name in names.SAMPLER_MODULES:
        importlib.import_module(names.SAMPLER_MODULES[name])  # the module registers its samplers
    if name not in _REGISTRY:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return _REGISTRY[name].make(eta)


# ----- the loop ----------------------------------------------------------------------------------
@torch.no_grad()
def run_reverse(
    model_fn: ModelFn,
    x_start: torch.Tensor,
    timesteps: Sequence[int],
    schedule: NoiseSchedule,
    spec: OutputSpec,
    sampler: Sampler,
    noise: NoiseSource | None = None,
    callback: StepCallback | None = None,
    after_step: AfterStep | None = None,
    end: int = -1,
) -> torch.Tensor:
    """Run the reverse process from `x_start` at timesteps[0] down through each timestep to `end` (-1:
    clean; a distillation's teacher stops at the student's next timestep).

    model_fn: raw network output at (x_t, t); CFG, anagram views and hybrid filters are already in it.
    noise: per-sample noise for stochastic samplers (required when the sampler is stochastic).
    callback(i, t, x_t, x0): after each evaluation, for live previews and chain strips.
    after_step(x_s, s): applied to each step's result (inpainting).
    """
    validate_timesteps(timesteps, schedule)
    if sampler.stochastic and noise is None:
        raise ValueError(f"the {sampler.name} sampler needs a noise source")
    batch = x_start.shape[0]

    def evaluate(x: torch.Tensor, t: int) -> Prediction:
        t_batch = torch.full((batch,), t, device=x.device, dtype=torch.long)
        return predict(schedule, spec, x, t_batch, model_fn(x, t_batch))

    x = x_start
    for i, t in enumerate(timesteps):
        s = timesteps[i + 1] if i + 1 < len(timesteps) else end
        pred = evaluate(x, t)
        if callback is not None:
            callback(i, t, x, pred.x0)
        x = sampler.step(schedule, evaluate, x, t, s, pred, noise)
        if after_step is not None:
            x = after_step(x, s)
    return x
