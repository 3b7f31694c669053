"""Noise schedules: the one object every sampler, trainer and command uses for the forward process.

A schedule gives, for each integer timestep t in [0, T), a signal coefficient alpha_t and a noise
coefficient sigma_t, so that the forward process is

    x_t = alpha_t * x0 + sigma_t * eps.

For the variance-preserving schedules of DDPM (linear, cosine) alpha_t = sqrt(abar_t) and
sigma_t = sqrt(1 - abar_t), abar_t = prod_{i<=t} (1 - beta_i) (Ho et al. 2020; cosine: Nichol &
Dhariwal 2021). The `flow` schedule is the straight path of rectified flow / flow matching
(alpha_t = 1 - s, sigma_t = s, s = (t + 1) / T), so a velocity model uses the same samplers.

Timestep -1 means "clean" (alpha = 1, sigma = 0): the last step of every reverse loop goes there, which
is why strided schedules land exactly on the clean estimate.

Coefficients are computed once in float64 numpy. `q_sample` and the conversions accept numpy arrays or
torch tensors, so `diffcli noise` never has to import torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SCHEDULE_KINDS = ("linear", "cosine", "flow")
PREDICTION_TYPES = ("eps", "x0", "v", "velocity")
COSINE_MAX_BETA = 0.999


def _cosine_betas(timesteps: int, s: float = 0.008, max_beta: float = COSINE_MAX_BETA) -> np.ndarray:
    """Nichol & Dhariwal's cosine schedule, as betas (the same construction as diffusers'
    `squaredcos_cap_v2`). Their abar reaches exactly 0 at t = T; the cap on beta keeps abar_{T-1}
    finite (about 2.4e-9 at T = 1000) "to prevent singularities" there."""

    def abar(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    return np.array(
        [min(1 - abar((i + 1) / timesteps) / abar(i / timesteps), max_beta) for i in range(timesteps)],
        dtype=np.float64,
    )


@dataclass(frozen=True)
class NoiseSchedule:
    """alpha_t and sigma_t for t in [0, T), plus t = -1 for the clean image."""

    kind: str = "linear"
    timesteps: int = 300
    beta_start: float = 1e-4
    beta_end: float = 0.02

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(f"unknown schedule {self.kind!r}; expected one of {', '.join(SCHEDULE_KINDS)}")
        if self.timesteps < 1:
            raise ValueError("a schedule needs at least one timestep")
        if self.kind == "flow":
            s = np.arange(1, self.timesteps + 1, dtype=np.float64) / self.timesteps
            alphas, sigmas = 1.0 - s, s
            betas = np.full(self.timesteps, np.nan)
        else:
            if self.kind == "linear":
                betas = np.linspace(self.beta_start, self.beta_end, self.timesteps, dtype=np.float64)
            else:
                betas = _cosine_betas(self.timesteps)
            abar = np.cumprod(1.0 - betas)
            alphas, sigmas = np.sqrt(abar), np.sqrt(1.0 - abar)
        # Index 0 holds t = -1 (clean); index t + 1 holds timestep t.
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "_alpha", np.concatenate([[1.0], alphas]))
        object.__setattr__(self, "_sigma", np.concatenate([[0.0], sigmas]))
        object.__setattr__(self, "_torch_cache", {})

    # ----- construction -----------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: dict[str, Any]) -> NoiseSchedule:
        """Build from the `schedule` block of a model config."""
        return cls(
            kind=config.get("kind", "linear"),
            timesteps=int(config.get("timesteps", 300)),
            beta_start=float(config.get("beta_start", 1e-4)),
            beta_end=float(config.get("beta_end", 0.02)),
        )

    def to_config(self) -> dict[str, Any]:
        """The `schedule` block of a model config."""
        config: dict[str, Any] = {"kind": self.kind, "timesteps": self.timesteps}
        if self.kind == "linear":
            config.update(beta_start=self.beta_start, beta_end=self.beta_end)
        return config

    # ----- coefficients -----------------------------------------------------------------------
    @property
    def alphas_cumprod(self) -> np.ndarray:
        """abar_t for t in [0, T) (for the flow schedule, the equivalent signal fraction)."""
        a, s = self._alpha[1:], self._sigma[1:]
        return a**2 / (a**2 + s**2)

    def alpha(self, t: int) -> float:
        """Signal coefficient at timestep t (t = -1: clean, 1.0)."""
        return float(self._alpha[self._index(t)])

    def sigma(self, t: int) -> float:
        """Noise coefficient at timestep t (t = -1: clean, 0.0)."""
        return float(self._sigma[self._index(t)])

    def karras_sigma(self, t: int) -> float:
        """The noise level of Karras et al. (2022), sigma_t / alpha_t = sqrt((1 - abar_t) / abar_t):
        x_t / alpha_t = x0 + karras_sigma * eps. Infinite where alpha_t = 0."""
        a, s = self.alpha(t), self.sigma(t)
        return math.inf if a == 0.0 else s / a

    def is_pure_noise(self, t: int) -> bool:
        """True at a timestep whose abar is 0 in the schedule's own formula, so that its noise level
        sigma / alpha is infinite in principle: the flow schedule's t = T-1 (alpha = 0 exactly) and the
        cosine schedule's t = T-1, where abar is only kept above 0 by the cap on beta (sigma / alpha
        ~ 2e4 at T = 1000). The linear schedules have no such timestep."""
        if t < 0:
            return False
        if self.alpha(t) == 0.0:
            return True
        return self.kind == "cosine" and float(self.betas[t]) >= COSINE_MAX_BETA

    def _index(self, t: int) -> int:
        if not -1 <= t < self.timesteps:
            raise ValueError(f"timestep {t} is outside [0, {self.timesteps})")
        return t + 1

    def _coefficients(self, t: Any, like: Any) -> tuple[Any, Any]:
        """alpha_t, sigma_t shaped to broadcast against `like` (numpy array or torch tensor)."""
        if isinstance(like, np.ndarray):
            idx = np.asarray(t) + 1
            a, s = self._alpha[idx], self._sigma[idx]
            if np.ndim(a):
                shape = (-1,) + (1,) * (like.ndim - 1)
                a, s = a.reshape(shape), s.reshape(shape)
            return a.astype(like.dtype), s.astype(like.dtype)
        import torch

        key = (like.device, like.dtype)
        if key not in self._torch_cache:
            self._torch_cache[key] = (
                torch.as_tensor(self._alpha, dtype=like.dtype, device=like.device),
                torch.as_tensor(self._sigma, dtype=like.dtype, device=like.device),
            )
        alpha, sigma = self._torch_cache[key]
        if isinstance(t, int):
            return alpha[t + 1], sigma[t + 1]
        idx = torch.as_tensor(t, device=like.device).long() + 1
        shape = (-1,) + (1,) * (like.ndim - 1)
        return alpha[idx].reshape(shape), sigma[idx].reshape(shape)

    # ----- the forward process and its inverses -----------------------------------------------
    def q_sample(self, x0: Any, t: Any, noise: Any) -> Any:
        """x_t = alpha_t * x0 + sigma_t * noise, for one t or a batch of them."""
        a, s = self._coefficients(t, x0)
        return a * x0 + s * noise

    def predict_x0(self, x_t: Any, t: Any, eps: Any) -> Any:
        """The clean estimate from a noise estimate: x0 = (x_t - sigma_t * eps) / alpha_t."""
        a, s = self._coefficients(t, x_t)
        return (x_t - s * eps) / a

    def predict_eps(self, x_t: Any, t: Any, x0: Any) -> Any:
        """The noise implied by a clean estimate: eps = (x_t - alpha_t * x0) / sigma_t."""
        a, s = self._coefficients(t, x_t)
        return (x_t - a * x0) / s

    def to_x0_eps(self, x_t: Any, t: Any, output: Any, prediction: str) -> tuple[Any, Any]:
        """Turn a network output of the given prediction type into (x0, eps).

        eps: the noise; x0: the clean image; v: alpha*eps - sigma*x0 (Salimans & Ho 2022);
        velocity: d x_t / d s = eps - x0 on the flow schedule.
        """
        a, s = self._coefficients(t, x_t)
        if prediction == "eps":
            return (x_t - s * output) / a, output
        if prediction == "x0":
            return output, (x_t - a * output) / s
        if prediction == "v":
            return a * x_t - s * output, s * x_t + a * output
        if prediction == "velocity":
            return x_t - s * output, x_t + a * output
        raise ValueError(f"unknown prediction type {prediction!r}")

    def training_target(self, x0: Any, noise: Any, t: Any, prediction: str) -> Any:
        """What a network of the given prediction type should output at (x0, noise, t)."""
        a, s = self._coefficients(t, x0)
        if prediction == "eps":
            return noise
        if prediction == "x0":
            return x0
        if prediction == "v":
            return a * noise - s * x0
        if prediction == "velocity":
            return noise - x0
        raise ValueError(f"unknown prediction type {prediction!r}")

    def snr(self, t: Any, like: Any) -> Any:
        """Signal-to-noise ratio alpha_t^2 / sigma_t^2, for loss weighting."""
        a, s = self._coefficients(t, like)
        return (a / s) ** 2

    # ----- timesteps for the reverse process ---------------------------------------------------
    def strided_timesteps(self, steps: int, start: int | None = None) -> list[int]:
        """`steps` timesteps from `start` (default T-1) down towards 0, evenly spread.

        "Trailing" spacing: the first is always `start` itself, so a few-step run begins from pure
        noise rather than from a partly clean timestep. The loop then steps from the last one to
        t = -1 (clean).
        """
        start = self.timesteps - 1 if start is None else start
        if not 0 <= start < self.timesteps:
            raise ValueError(f"start timestep {start} is outside [0, {self.timesteps})")
        if not 1 <= steps <= start + 1:
            raise ValueError(f"steps must be between 1 and {start + 1}, got {steps}")
        span = start + 1
        return [int(round(span - i * span / steps)) - 1 for i in range(steps)]

    def stride_timesteps(self, stride: int, start: int | None = None) -> list[int]:
        """Every `stride`-th timestep from `start` down to 0 (the course's 990, 960, ..., 0)."""
        start = self.timesteps - 1 if start is None else start
        if not 0 <= start < self.timesteps:
            raise ValueError(f"start timestep {start} is outside [0, {self.timesteps})")
        if stride < 1:
            raise ValueError(f"stride must be at least 1, got {stride}")
        return list(range(start, -1, -stride))


def validate_timesteps(timesteps: Sequence[int], schedule: NoiseSchedule) -> None:
    """Check a reverse-process timestep list: strictly decreasing, inside [0, T)."""
    if not timesteps:
        raise ValueError("no timesteps to sample")
    for a, b in zip(timesteps, timesteps[1:]):
        if b >= a:
            raise ValueError(f"timesteps must decrease, got {a} then {b}")
    if timesteps[0] >= schedule.timesteps or timesteps[-1] < 0:
        raise ValueError(f"timesteps must lie in [0, {schedule.timesteps})")


def gaussian_noise(shape: Sequence[int], seed: int) -> np.ndarray:
    """Standard normal float32 noise from numpy's PCG64 seeded with `seed`.

    The forward process of `noise` and `denoise` draws from here, so the same seed gives the same
    noisy image in both commands, on every machine, without importing torch."""
    return np.random.Generator(np.random.PCG64(seed)).standard_normal(tuple(shape), dtype=np.float32)


COURSE_STRIDE_SHARE = 0.03  # the course's stride: 30 of T = 1000


def course_stride(timesteps: int) -> int:
    """The course's stride for iterative denoising and strided sampling: 3 % of T (30 at T = 1000)."""
    return max(1, round(COURSE_STRIDE_SHARE * timesteps))
