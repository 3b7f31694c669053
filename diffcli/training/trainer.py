"""The training loop: one implementation for every objective, on CPU, GPU, or several processes.

Reproducibility is by construction, so that an interrupted and resumed run ends with the same weights
as an uninterrupted one: what each step draws is a function of the seed, the epoch and a checkpointed
generator (training/draws.py), and previews, sample grids and validation never touch the training state
(training/evaluation.py). The checkpoint's contents are in training/checkpoint.py, what a save writes in
training/saving.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from diffcli.data import ImageDataset
from diffcli.device import resolve_precision
from diffcli.diffusion.schedule import NoiseSchedule
from diffcli.errors import DiffcliError, InterruptedRun
from diffcli.io.atomic import atomic_write_text, make_dirs
from diffcli.models.networks import build_network
from diffcli.models.registry import ModelEntry
from diffcli.progress import SilentView
from diffcli.training import distributed
from diffcli.training.checkpoint import CHECKPOINT, restore_trainer
from diffcli.training.distillation import make_distiller, pair_noise
from diffcli.training.draws import StepDraws
from diffcli.training.ema import EMA
from diffcli.training.evaluation import show_preview, validation_loss, write_grid
from diffcli.training.interrupt import InterruptGuard
from diffcli.training.objective import objective_loss
from diffcli.training.optimizer import make_adamw
from diffcli.training.outputs import TrainResult, build_config
from diffcli.training.recipe import TrainSettings
from diffcli.training.saving import diverged, save


class Trainer:
    """Runs one training job into a registry folder."""

    def __init__(
        self,
        settings: TrainSettings,
        entry: ModelEntry,
        train_data: ImageDataset,
        val_data: ImageDataset | None,
        device: torch.device,
        view_factory: Callable[..., Any],
        resume: bool = False,
        dist: distributed.DistInfo | None = None,
        command: str = "",
    ) -> None:
        if settings.precision == "auto":  # saved resolved, so a resumed run computes the same way
            settings = replace(settings, precision=resolve_precision("auto", device))
        self.settings = settings
        self.entry = entry
        self.dist = dist or distributed.DistInfo()
        self.device = device
        self.view_factory = view_factory
        self.command = command
        self.train_dir = entry.train_dir
        self.checkpoint_path = self.train_dir / CHECKPOINT
        self.on_saved: Callable[[str], None] | None = None  # called with the status after every save
        self.saved: tuple[int, str] | None = None  # (step, status) of the last save

        self.config = build_config(entry.name, settings, train_data)
        self.schedule = NoiseSchedule.from_config(self.config.schedule)
        self.lo, self.hi = settings.pixel_range
        self.images = train_data.images.to(device)
        self.labels = train_data.labels.to(device) if train_data.labels is not None else None
        if settings.cond == "class" and self.labels is None:
            hint = "train with `cond` time, or give the folder one subfolder per class"
            raise DiffcliError(f"dataset {train_data.name} has no labels", hint)
        self.val_images = val_data.images if val_data is not None else None
        self.val_labels = val_data.labels if val_data is not None else None
        self.null_class = len(self.config.labels)

        world = self.dist.world_size
        if settings.batch_size % world:
            message = f"`batch_size` {settings.batch_size} is not divisible by the {world} processes"
            raise DiffcliError(message, f"use a multiple of {world}")
        self.batch = min(settings.batch_size, len(train_data))
        if self.batch % world:
            self.batch -= self.batch % world
        self.steps_per_epoch = max(1, len(train_data) // self.batch)
        # the LR schedule spans the planned steps, whatever --max-steps says
        self.planned_steps = settings.epochs * self.steps_per_epoch
        self.total_steps = min(self.planned_steps, settings.max_steps) if settings.max_steps else self.planned_steps

        # A distillation's student starts as its teacher (training/distillation.py).
        self.distiller = make_distiller(settings, device) if settings.distillation else None
        # Reflow's pairs: training image i goes with the teacher's noise of seed pair_seed + i.
        self.pair_seed: int | None = train_data.extra.get("pair_seed")
        torch.manual_seed(settings.seed)  # identical initial weights on every rank
        self.network = build_network(self.config).to(device)
        if self.distiller is not None:
            self.network.load_state_dict(self.distiller.student_state())
        if settings.channels_last:
            self.network = self.network.to(memory_format=torch.channels_last)
        self.ema = EMA(self.network, settings.ema_decay) if settings.ema else None
        # listed once: walking the modules every step costs
        self.trained_parameters = list(self.network.parameters())
        self.optimizer = make_adamw(self.trained_parameters, lr=settings.lr, weight_decay=settings.weight_decay)
        self.draws = StepDraws(settings, len(train_data), self.batch, self.dist, self.schedule.timesteps)
        self.step = 0
        self.epoch = 0
        self.position = 0  # step within the current epoch
        self.history: list[dict[str, Any]] = []
        self.wall_seconds = 0.0  # optimiser steps of every session of the run (the model's provenance)
        self.images_seen = 0
        if resume:
            restore_trainer(self)
        # This session's optimiser steps: what its panel and summary measure, beside its own wall time.
        self.session_seconds = 0.0
        self.session_images = 0
        self.train_model: nn.Module = self.network
        if settings.compile:
            self.train_model = torch.compile(self.network)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.train_model, device_ids=ids)
        fp16_cuda = settings.precision == "fp16" and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if fp16_cuda else None

    # ----- one step -----------------------------------------------------------------------------
    def _lr(self) -> float:
        s = self.settings
        if s.lr_schedule == "exponential":  # the course: gamma = 0.1^(1/epochs), stepped each epoch
            lr = s.lr * 0.1 ** (self.epoch / s.epochs)
        elif s.lr_schedule == "cosine":
            progress = min(1.0, self.step / max(1, self.planned_steps))
            lr = s.lr * 0.5 * (1 + math.cos(math.pi * progress))
        else:
            lr = s.lr
        if s.warmup_steps and self.step < s.warmup_steps:
            lr *= (self.step + 1) / s.warmup_steps
        return lr

    def to_range(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """Stored uint8 images in the recipe's pixel range."""
        return self.lo + (self.hi - self.lo) * images_uint8.float() / 255.0

    def batch_loss(
        self,
        model: nn.Module,
        x0: torch.Tensor,
        labels: torch.Tensor | None,
        t: torch.Tensor,
        noise: torch.Tensor,
        drop: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample loss and the network's clean estimate (for previews); `drop` marks the samples whose
        class is replaced by the null class."""
        cond = None
        if self.settings.cond == "class" and labels is not None:
            cond = torch.where(drop, torch.full_like(labels, self.null_class), labels)
        if self.distiller is not None and self.distiller.plan.method == "progressive":
            return self.distiller.loss(model, x0, cond, t, noise, self.settings.channels_last)
        return objective_loss(self.settings, self.schedule, self.config.prediction, model, x0, cond, t, noise)

    def autocast(self):
        """The recipe's precision as an autocast context (fp32: autocast off)."""
        p = self.settings.precision
        if p == "fp32":
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if p == "bf16" else torch.float16)

    def _train_step(self) -> float:
        idx = self.draws.indices(self.epoch, self.position).to(self.device)
        x0 = self.to_range(self.images[idx])
        labels = self.labels[idx] if self.labels is not None else None
        t, noise, drop = (d.to(self.device) for d in self.draws.noise(tuple(self.images.shape[1:])))
        if self.pair_seed is not None:
            noise = pair_noise(self.pair_seed, idx, tuple(self.images.shape[1:]), self.device)
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        with self.autocast():
            per_sample, _ = self.batch_loss(self.train_model, x0, labels, t, noise, drop)
            loss = per_sample.mean()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.settings.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.trained_parameters, self.settings.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.step += 1
        if self.ema is not None:
            self.ema.update(self.network, self.step)
        value = loss.detach()
        if self.dist.enabled:  # report the global batch's loss, as one process would
            import torch.distributed as dist

            dist.all_reduce(value, op=dist.ReduceOp.AVG)
        return float(value)

    def inference_network(self) -> nn.Module:
        """The weights samples come from: the EMA copy when there is one, else the training network."""
        return self.ema.model if self.ema is not None else self.network

    def move_to(self, entry: ModelEntry) -> None:
        """Carry on in another folder of the same model (a staged run, once swapped into place)."""
        self.entry = entry
        self.train_dir = entry.train_dir
        self.checkpoint_path = self.train_dir / CHECKPOINT

    # ----- the loop -------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train until the epochs (or --max-steps) are done; Ctrl-C saves and raises InterruptedRun."""
        main = self.dist.is_main
        if main:
            make_dirs(self.train_dir)
            if self.step == 0:
                atomic_write_text(self.entry.path / "config.json", self.config.to_json())
        view = (self.view_factory if main else SilentView)(
            title=self.title(),
            total=self.total_steps,
            unit="step",
            epochs=self.settings.epochs,
            images_per_step=self.batch,
            start=self.step,
        )
        began = time.perf_counter()
        epoch_losses: list[float] = [h["train_loss"] for h in self.history if h["epoch"] == self.epoch]
        last_val: float | None = None
        self.network.train()
        with InterruptGuard() as guard, view:
            while self.epoch < self.settings.epochs and self.step < self.total_steps:
                tick = time.perf_counter()
                loss = self._train_step()
                spent = time.perf_counter() - tick
                self.wall_seconds += spent
                self.session_seconds += spent
                self.images_seen += self.batch
                self.session_images += self.batch
                if not math.isfinite(loss):
                    raise diverged(self, loss)
                lr = self._lr()
                self.history.append(
                    {"step": self.step, "epoch": self.epoch + 1, "train_loss": round(loss, 6), "lr": lr}
                )
                epoch_losses.append(loss)
                self.position += 1
                view.advance(1, loss=loss, lr=lr, epoch=self.epoch + 1, images_per_second=self._throughput())
                if main and view.wants_preview():
                    show_preview(self, view)
                epoch_done = self.position >= self.steps_per_epoch
                if epoch_done:
                    last_val = self._end_epoch(view, epoch_losses)
                    epoch_losses = []
                stop = distributed.any_rank(guard.requested, self.dist, self.device)
                if stop or self.step >= self.total_steps:
                    break
            completed = self.epoch >= self.settings.epochs or self.step >= self.total_steps
            status = "complete" if completed else "interrupted"
            view.phase("saving the checkpoint")
            save(self, status)  # everything up to this step boundary (cheap even right after an epoch end)
            view.phase(None)
            distributed.barrier(self.dist)
            if guard.requested and not completed:
                raise InterruptedRun(
                    f"stopped at step {self.step}/{self.total_steps} (Ctrl-C);"
                    f" checkpoint saved in {self.checkpoint_path}",
                    f"continue it by training {self.entry.name!r} again with `resume`",
                    model=self.entry.name,
                    saved=str(self.checkpoint_path),
                )
        train_losses = [h["train_loss"] for h in self.history[-self.steps_per_epoch :]]
        return TrainResult(
            model=self.entry.name,
            path=str(self.entry.path),
            epoch=self.epoch + (1 if self.position else 0),
            epochs_done=self.epoch,
            step=self.step,
            total_steps=self.total_steps,
            completed=completed,
            train_loss=round(float(np.mean(train_losses)), 6) if train_losses else None,
            val_loss=last_val,
            seconds=round(time.perf_counter() - began, 1),
            training_seconds=round(self.session_seconds, 1),
            images_per_second=self._throughput(),
            history=[h for h in self.history if h.get("val_loss") is not None],
        )

    def title(self) -> str:
        """The panel's title: "train NAME", or what a distillation makes from which teacher."""
        if self.distiller is None:
            return f"train {self.entry.name}"
        plan = self.distiller.plan
        return f"distill {self.entry.name}: {plan.steps}-step student of {plan.teacher} ({plan.method})"

    def _throughput(self) -> float:
        """Training images per second over this session's optimiser steps (one figure for the panel and the
        summary, measured on the same steps as the summary's time)."""
        return round(self.session_images / self.session_seconds, 1) if self.session_seconds else 0.0

    def _end_epoch(self, view: Any, epoch_losses: list[float]) -> float | None:
        self.epoch += 1
        self.position = 0
        val = None
        if self.dist.is_main:
            view.phase(f"epoch {self.epoch}: validation loss")
            val = validation_loss(self)
            train_loss = float(np.mean(epoch_losses)) if epoch_losses else float("nan")
            rounded_val = None if val is None else round(val, 6)
            self.history[-1].update(val_loss=rounded_val, epoch_train_loss=round(train_loss, 6))
            if self.epoch in self.settings.sample_epochs or self.epoch == self.settings.epochs:
                view.phase(f"epoch {self.epoch}: sampling its grid")
                write_grid(self, self.train_dir / f"samples-epoch-{self.epoch:03d}.png")
            view.phase(f"epoch {self.epoch}: saving the checkpoint")
            save(self, "complete" if self.epoch >= self.settings.epochs else "training")
            view.phase(None)
            view.end_epoch(
                self.epoch,
                step=self.step,
                train_loss=round(train_loss, 6),
                val_loss=rounded_val,
                images_per_second=self._throughput(),
                training_seconds=round(self.session_seconds, 1),
            )
        distributed.barrier(self.dist)
        return val
