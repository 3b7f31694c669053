"""Distillation: a few-step student trained from a registered teacher, as a recipe of the one trainer.

The student starts as a copy of the teacher's (EMA) weights and is trained by training/trainer.py's loop;
only what a step is trained to output differs (docs/engine.md, "Distillation"):

- progressive (Salimans & Ho 2022), guided (Meng et al. 2023): the student's one deterministic DDIM step
  from t to s on its K-step grid must land where M DDIM steps of the guided teacher land (M = 2 is one
  round of progressive distillation). The teacher runs with its own guidance (scale and interval), so the
  student learns the guided output and samples with one evaluation per step and no CFG.
- reflow (Liu et al. 2023, rectified flow): the teacher samples pairs (noise z, its image x) once; the
  student is trained by flow matching on the straight line between each x and ITS z (not fresh noise), so
  its paths straighten and few Euler (DDIM) steps follow them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from diffcli.diffusion.guidance import GuidedModel, Term, classifier_free
from diffcli.diffusion.samplers import make_sampler, run_reverse
from diffcli.errors import DiffcliError


@dataclass(frozen=True)
class Plan:
    """What a distillation recorded in its recipe (TrainSettings.distillation) and the student's config.

    teacher: the teacher's registry name; steps: the student's DDIM steps (K); teacher_steps: the teacher's
    DDIM steps behind the targets (progressive: K * M; reflow: the pairs' sampling); guidance and
    guidance_interval: the teacher's CFG the student learns (fractions of T; None: throughout); pairs:
    reflow's number of teacher samples; digest: the teacher's weights fingerprint (models/weights.py), so
    a resumed run and the reflow cache know they have the same teacher."""

    teacher: str
    method: str
    steps: int
    teacher_steps: int
    guidance: float
    guidance_interval: tuple[float, float] | None = None
    pairs: int = 0
    digest: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        values = dict(data)
        if values.get("guidance_interval") is not None:
            values["guidance_interval"] = tuple(values["guidance_interval"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "teacher": self.teacher,
            "method": self.method,
            "steps": self.steps,
            "teacher_steps": self.teacher_steps,
            "guidance": self.guidance,
            "guidance_interval": list(self.guidance_interval) if self.guidance_interval else None,
            "digest": self.digest,
        }
        if self.method == "reflow":
            data["pairs"] = self.pairs
        return data


def teacher_terms(teacher: Any, cond: torch.Tensor | None, plan: Plan) -> list[Term]:
    """The teacher's guided estimate for a batch of conditions, as guidance terms: its CFG scale inside its
    interval, plainly conditional elsewhere (one term when it does not guide)."""
    from diffcli.generation.settings import interval_timesteps

    if cond is None or plan.guidance == 1.0 or not teacher.supports_guidance:
        return [Term(cond, 1.0)]
    null = torch.full_like(cond, len(teacher.config.labels))
    return classifier_free(cond, null, plan.guidance, interval=interval_timesteps(teacher, plan.guidance_interval))


def step_x0(schedule: Any, x_t: torch.Tensor, t: int, s: int, x_s: torch.Tensor) -> torch.Tensor:
    """The clean estimate whose one deterministic DDIM step from (x_t, t) lands on x_s at s (Salimans & Ho
    2022, Algorithm 2): x0 = (x_s - (sigma_s / sigma_t) x_t) / (alpha_s - (sigma_s / sigma_t) alpha_t)."""
    a_t, s_t, a_s, s_s = schedule.alpha(t), schedule.sigma(t), schedule.alpha(s), schedule.sigma(s)
    ratio = s_s / s_t
    return (x_s - ratio * x_t) / (a_s - ratio * a_t)


def output_for(schedule: Any, prediction: str, x_t: torch.Tensor, t: Any, x0: torch.Tensor) -> torch.Tensor:
    """The network output (of its prediction type) that reads as clean estimate x0 at (x_t, t), with the
    noise estimate eps = (x_t - alpha_t x0) / sigma_t that goes with it."""
    return schedule.training_target(x0, schedule.predict_eps(x_t, t, x0), t, prediction)


def step_target(schedule: Any, prediction: str, x_t: torch.Tensor, t: int, s: int, x_s: torch.Tensor) -> torch.Tensor:
    """The network output whose one DDIM step from (x_t, t) lands on x_s (step_x0 in output form)."""
    return output_for(schedule, prediction, x_t, t, step_x0(schedule, x_t, t, s, x_s))


def reachable(target: torch.Tensor, estimate: torch.Tensor, clip: tuple[float, float] | None) -> torch.Tensor:
    """The clean target as a clamped sampling step sees it. A DDIM step is x_s = c x0 + (sigma_s / sigma_t)
    x_t with c > 0 per pixel, and sampling clamps x0 to the pixel range: the nearest point it can reach is
    the target clamped, and where the target is at a bound and the student's estimate is already past it,
    the clamped step lands there exactly (no loss: the estimate is its own target there)."""
    if clip is None:
        return target
    lo, hi = clip
    target = target.clamp(lo, hi)
    past = ((target <= lo) & (estimate < lo)) | ((target >= hi) & (estimate > hi))
    return torch.where(past, estimate, target)


class Distiller:
    """The teacher of a run and the loss of one batch of the student. `teacher` is a LoadedModel."""

    def __init__(self, plan: Plan, teacher: Any) -> None:
        self.plan = plan
        self.teacher = teacher
        self.schedule = teacher.schedule
        self.prediction = teacher.config.prediction
        self.grid = self.schedule.strided_timesteps(plan.steps)
        if plan.method == "progressive":
            # The trailing grid of K * M steps holds the K-step grid: point k * M is the student's k-th.
            self.fine = self.schedule.strided_timesteps(plan.teacher_steps)
            self.per_step = plan.teacher_steps // plan.steps
            if self.fine[:: self.per_step] != self.grid:
                raise ValueError(f"the {plan.teacher_steps}-step grid does not hold the {plan.steps}-step grid")
        self.sampler = make_sampler("ddim")

    def student_state(self) -> dict[str, torch.Tensor]:
        """The weights the student starts from: the teacher's."""
        return {k: v.detach().clone() for k, v in self.teacher.network.state_dict().items()}

    def timesteps(self, t: torch.Tensor) -> torch.Tensor:
        """Progressive: the student's grid timestep each drawn t falls to (uniform t: uniform grid points)."""
        k = (t.long() * self.plan.steps) // self.schedule.timesteps
        return torch.as_tensor(self.grid, device=t.device)[k]

    @torch.no_grad()
    def teacher_x0(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """For each row, the clean estimate that takes the student's DDIM step where the teacher's M go."""
        target = torch.empty_like(x_t, dtype=torch.float32)
        with torch.autocast(x_t.device.type, enabled=False):  # targets in full precision
            for k, start in enumerate(self.grid):
                rows = (t == start).nonzero().flatten()
                if len(rows) == 0:
                    continue
                end = self.grid[k + 1] if k + 1 < len(self.grid) else -1
                sub = self.fine[k * self.per_step : (k + 1) * self.per_step]
                cond_rows = cond[rows] if cond is not None else None
                guided = GuidedModel(self.teacher.net, teacher_terms(self.teacher, cond_rows, self.plan))
                x = x_t[rows].float()
                x_s = run_reverse(guided, x, sub, self.schedule, self.teacher.spec, self.sampler, end=end)
                target[rows] = step_x0(self.schedule, x, start, end, x_s)
        return target

    def loss(
        self,
        model: nn.Module,
        x0: torch.Tensor,
        cond: torch.Tensor | None,
        t: torch.Tensor,
        noise: torch.Tensor,
        channels_last: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample loss of the student and its output: the squared error of its output to the output that
        reads as the reachable target (`reachable`), unweighted as `train`'s objective is."""
        if self.plan.method != "progressive":
            raise ValueError("reflow trains with the recipe's objective on the teacher's pairs")
        t = self.timesteps(t)
        x_t = self.schedule.q_sample(x0, t, noise)
        goal = self.teacher_x0(x_t, t, cond)
        model_in = x_t.contiguous(memory_format=torch.channels_last) if channels_last else x_t
        pred = model(model_in, t, cond)
        with torch.no_grad():
            estimate, _ = self.schedule.to_x0_eps(x_t, t, pred.detach().float(), self.prediction)
            goal = reachable(goal, estimate, self.teacher.spec.clip)
            target = output_for(self.schedule, self.prediction, x_t, t, goal)
        return (pred.float() - target).pow(2).flatten(1).mean(1), pred


def load_teacher(plan: Plan, device: torch.device) -> Any:
    """The teacher, loaded from the registry and checked against the digest the run recorded."""
    from diffcli.models.backends import load_model
    from diffcli.models.registry import Registry
    from diffcli.models.weights import weights_fingerprint

    teacher = load_model(entry=Registry().get(plan.teacher), device=str(device))
    if plan.digest and weights_fingerprint(teacher.network) != plan.digest:
        raise DiffcliError(
            f"teacher {plan.teacher!r} has changed since this distillation started (its weights differ)",
            "distill again from the teacher as it is now (`force`), or restore the teacher",
        )
    for p in teacher.network.parameters():
        p.requires_grad_(False)
    return teacher


def make_distiller(settings: Any, device: torch.device) -> Distiller:
    """The distiller of a recipe whose `distillation` names a teacher."""
    plan = Plan.from_dict(settings.distillation)
    return Distiller(plan, load_teacher(plan, device))


def pair_noise(seed: int, indices: torch.Tensor, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """The starting noise of reflow pairs `indices`: pair i's is drawn from seed + i, as the teacher drew it."""
    from diffcli.diffusion.samplers import NoiseSource

    return NoiseSource([seed + int(i) for i in indices.tolist()], device).randn(shape)
