"""The training loop: one implementation for every objective, on CPU, GPU, or several processes.

Reproducibility is by construction, so that an interrupted and resumed run ends with the same weights
as an uninterrupted one:
- the data order of epoch e is a permutation seeded by (seed, e), so a resumed epoch skips to its
  position instead of replaying an iterator;
- timesteps, noise and class dropout come from one generator whose state is checkpointed, and they
  are drawn for the whole global batch on every rank (each rank keeps its slice), so N processes see
  exactly what one process sees;
- previews, sample grids and validation use their own generators and the EMA copy, never the
  training state;
- sampling never changes a model: every preview, grid and validation pass runs the network in eval
  mode (`_inference`), so the course UNet's BatchNorm normalises with its running statistics and never
  updates them from pure-noise batches (which would otherwise be saved in the checkpoint right after).
"""

from __future__ import annotations

import math
import os
import platform
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch
import torch.nn as nn

from diffcli import __version__
from diffcli.data import ImageDataset
from diffcli.device import resolve_precision
from diffcli.diffusion.schedule import NoiseSchedule
from diffcli.errors import DiffcliError, InterruptedRun
from diffcli.io.atomic import atomic_write_text, check_free_space, make_dirs
from diffcli.models.networks import build_network, parameter_count
from diffcli.models.registry import ModelEntry
from diffcli.models.weights import save_weights
from diffcli.progress import SilentView
from diffcli.training import distributed
from diffcli.training.artifacts import write_loss_artifacts, write_sample_grid
from diffcli.training.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from diffcli.training.ema import EMA
from diffcli.training.interrupt import InterruptGuard
from diffcli.training.objective import objective_loss
from diffcli.training.optimizer import make_adamw
from diffcli.training.outputs import TrainResult, build_config
from diffcli.training.preview import chain_preview
from diffcli.training.recipe import TrainSettings
from diffcli.training.timesteps import draw_timesteps


class Trainer:
    """Runs one training job into a registry folder."""

    def __init__(
        self,
        settings: TrainSettings,
        entry: ModelEntry,
        train_data: ImageDataset,
        val_data: Optional[ImageDataset],
        device: torch.device,
        view_factory: Callable[..., Any],
        resume: bool = False,
        dist: Optional[distributed.DistInfo] = None,
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
        self.on_saved: Optional[Callable[[str], None]] = None  # called with the status after every save
        self.saved: Optional[tuple[int, str]] = None  # (step, status) of the last save

        self.config = build_config(entry.name, settings, train_data)
        self.schedule = NoiseSchedule.from_config(self.config.schedule)
        self.lo, self.hi = settings.pixel_range
        self.images = train_data.images.to(device)
        self.labels = train_data.labels.to(device) if train_data.labels is not None else None
        if settings.cond == "class" and self.labels is None:
            raise DiffcliError(f"dataset {train_data.name} has no labels", "train with `cond` time, or give the folder one subfolder per class")
        self.val_images = val_data.images if val_data is not None else None
        self.val_labels = val_data.labels if val_data is not None else None
        self.null_class = len(self.config.labels)

        world = self.dist.world_size
        if settings.batch_size % world:
            raise DiffcliError(f"`batch_size` {settings.batch_size} is not divisible by the {world} processes", f"use a multiple of {world}")
        self.batch = min(settings.batch_size, len(train_data))
        if self.batch % world:
            self.batch -= self.batch % world
        self.local_batch = self.batch // world
        self.steps_per_epoch = max(1, len(train_data) // self.batch)
        self.planned_steps = settings.epochs * self.steps_per_epoch  # the LR schedule spans these, whatever --max-steps says
        self.total_steps = min(self.planned_steps, settings.max_steps) if settings.max_steps else self.planned_steps

        torch.manual_seed(settings.seed)  # identical initial weights on every rank
        self.network = build_network(self.config).to(device)
        if settings.channels_last:
            self.network = self.network.to(memory_format=torch.channels_last)
        self.ema = EMA(self.network, settings.ema_decay) if settings.ema else None
        self.trained_parameters = list(self.network.parameters())  # listed once: walking the modules every step costs
        self.optimizer = make_adamw(self.trained_parameters, lr=settings.lr, weight_decay=settings.weight_decay)
        self.rng = torch.Generator(device="cpu").manual_seed(settings.seed + 1)
        self.step = 0
        self.epoch = 0
        self.position = 0  # step within the current epoch
        self.history: list[dict[str, Any]] = []
        self.wall_seconds = 0.0
        self.images_seen = 0
        if resume:
            self._restore()
        self.train_model: nn.Module = self.network
        if settings.compile:
            self.train_model = torch.compile(self.network)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.train_model = DistributedDataParallel(self.train_model, device_ids=[device.index] if device.type == "cuda" else None)
        self.scaler = torch.amp.GradScaler("cuda") if settings.precision == "fp16" and device.type == "cuda" else None

    # ----- state ------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "settings": self.settings.to_dict(),
            "network": self.network.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.get_state(),
            "step": self.step,
            "epoch": self.epoch,
            "position": self.position,
            "history": self.history,
            "wall_seconds": self.wall_seconds,
            "images_seen": self.images_seen,
        }

    def _restore(self) -> None:
        state = load_checkpoint(self.checkpoint_path, f"model {self.entry.name!r}")
        try:
            self.network.load_state_dict(state["network"])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"] if state.get("ema") is not None else state["network"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.rng.set_state(state["rng"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise DiffcliError(f"model {self.entry.name!r}: {self.checkpoint_path} does not match this recipe ({str(exc).splitlines()[0][:160]})", "start over with `force`") from None
        self.step, self.epoch, self.position = int(state["step"]), int(state["epoch"]), int(state["position"])
        self.history = list(state.get("history", []))
        self.wall_seconds = float(state.get("wall_seconds", 0.0))
        self.images_seen = int(state.get("images_seen", 0))

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

    def _batch_indices(self) -> torch.Tensor:
        order = torch.randperm(len(self.images), generator=torch.Generator().manual_seed(self.settings.seed * 1_000_003 + self.epoch))
        chosen = order[self.position * self.batch : (self.position + 1) * self.batch]
        r = self.dist.rank
        return chosen[r * self.local_batch : (r + 1) * self.local_batch]

    def _draws(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """t, noise and the class-dropout mask for the WHOLE global batch, then this rank's slice."""
        shape = (self.batch, *self.images.shape[1:])
        t = draw_timesteps(self.settings.timestep_sampling, self.batch, self.schedule.timesteps, self.rng)
        noise = torch.randn(shape, generator=self.rng)
        drop = torch.rand(self.batch, generator=self.rng) < self.settings.p_uncond
        sl = slice(self.dist.rank * self.local_batch, (self.dist.rank + 1) * self.local_batch)
        return t[sl].to(self.device), noise[sl].to(self.device), drop[sl].to(self.device)

    def _to_range(self, images_uint8: torch.Tensor) -> torch.Tensor:
        return self.lo + (self.hi - self.lo) * images_uint8.float() / 255.0

    def _loss(self, model: nn.Module, x0: torch.Tensor, labels: Optional[torch.Tensor], t: torch.Tensor, noise: torch.Tensor, drop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample loss and the network's clean estimate (for previews)."""
        cond = None
        if self.settings.cond == "class" and labels is not None:
            cond = torch.where(drop, torch.full_like(labels, self.null_class), labels)
        return objective_loss(self.settings, self.schedule, self.config.prediction, model, x0, cond, t, noise)

    def _autocast(self):
        p = self.settings.precision
        if p == "fp32":
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if p == "bf16" else torch.float16)

    def _train_step(self) -> float:
        idx = self._batch_indices().to(self.device)
        x0 = self._to_range(self.images[idx])
        labels = self.labels[idx] if self.labels is not None else None
        t, noise, drop = self._draws()
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        with self._autocast():
            per_sample, _ = self._loss(self.train_model, x0, labels, t, noise, drop)
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

    # ----- evaluation and artifacts -------------------------------------------------------------
    def inference_network(self) -> nn.Module:
        """The weights samples come from: the EMA copy when there is one, else the training network."""
        return self.ema.model if self.ema is not None else self.network

    @contextmanager
    def _inference(self, network: nn.Module) -> Iterator[nn.Module]:
        """`network` in eval mode for the duration (BatchNorm reads its running statistics and leaves
        them alone, dropout is off), then back in the mode it was in."""
        was_training = network.training
        network.eval()
        try:
            with torch.no_grad():
                yield network
        finally:
            network.train(was_training)

    @contextmanager
    def sampling_model(self) -> Iterator[Any]:
        """The inference network wrapped for `generate`, in eval mode: previews and sample grids."""
        from diffcli.models.backends.unet import UNetModel

        with self._inference(self.inference_network()) as network:
            yield UNetModel.from_network(self.entry, self.config, network, self.device)

    def validation_loss(self) -> Optional[float]:
        """Mean loss of the raw network on the validation images, with fixed noise (comparable across epochs)."""
        if self.val_images is None or len(self.val_images) == 0:
            return None
        limit = self.settings.val_limit or len(self.val_images)
        images = self.val_images[:limit]
        labels = self.val_labels[:limit] if self.val_labels is not None else None
        gen = torch.Generator().manual_seed(12345)
        total, count = 0.0, 0
        with self._inference(self.network) as network:
            for start in range(0, len(images), 256):
                x0 = self._to_range(images[start : start + 256].to(self.device))
                n = len(x0)
                t = torch.randint(0, self.schedule.timesteps, (n,), generator=gen).to(self.device)
                noise = torch.randn(x0.shape, generator=gen).to(self.device)
                lab = labels[start : start + 256].to(self.device) if labels is not None else None
                with self._autocast():
                    per_sample, _ = self._loss(network, x0, lab, t, noise, torch.zeros(n, dtype=torch.bool, device=self.device))
                total += float(per_sample.sum())
                count += n
        return total / count

    def _preview_images(self) -> Optional[torch.Tensor]:
        """A few validation images, for the single-step denoiser's preview."""
        if self.val_images is None:
            return None
        return self._to_range(self.val_images[:4].to(self.device))

    def show_preview(self, view: Any) -> None:
        """Show the live reverse-chain preview (from the inference weights, in eval mode)."""
        with self.sampling_model() as model:
            view.preview(*chain_preview(model, self.settings, self.step, self._preview_images()))

    def write_grid(self, path: Path) -> None:
        """Write the end-of-epoch sample grid (from the inference weights, in eval mode)."""
        with self.sampling_model() as model:
            write_sample_grid(model, self.settings, path, self.epoch, self._preview_images())

    def _write_weights(self, status: str, metrics: Optional[dict[str, Any]] = None) -> None:
        """Inference weights (EMA), raw weights, and the config with provenance: usable mid-training."""
        folder = self.entry.path
        save_weights(self.inference_network(), folder / "model.safetensors")
        if self.ema is not None:
            save_weights(self.network, folder / "model-raw.safetensors")
        self.config.training.update(
            status=status,
            epochs_done=self.epoch,
            steps=self.step,
            total_steps=self.total_steps,
            wall_seconds=round(self.wall_seconds, 1),
            images_seen=self.images_seen,
            images_per_second=round(self.images_seen / self.wall_seconds, 1) if self.wall_seconds else None,
            parameters=parameter_count(self.network),
            device=str(self.device) + (f" x{self.dist.world_size}" if self.dist.enabled else ""),
            torch=torch.__version__,
            diffcli=__version__,
            machine=f"{platform.machine()} {os.cpu_count()} cores",
            command=self.command,
            recipe=self.settings.preset,
            seed=self.settings.seed,
        )
        if metrics:
            self.config.metrics.update(metrics)
        atomic_write_text(folder / "config.json", self.config.to_json())

    def _save(self, status: str) -> None:
        if not self.dist.is_main or self.saved == (self.step, status):
            return  # the same state again (the end right after an epoch's save): it may only fail, never add
        make_dirs(self.train_dir)
        rewritten = [self.checkpoint_path, self.entry.weights_path("ema"), self.entry.weights_path("raw")]
        check_free_space(self.entry.path, rewritten, f"cannot save model {self.entry.name!r}")
        save_checkpoint(self.checkpoint_path, self._state())
        self._write_weights(status)
        write_loss_artifacts(self.train_dir, self.history)
        self.saved = (self.step, status)
        if self.on_saved is not None:
            self.on_saved(status)

    def _diverged(self, loss: float) -> DiffcliError:
        """The error for a non-finite loss. The state is saved only while its weights are still finite (a
        skipped mixed-precision step): a model's last good checkpoint is never overwritten with NaN."""
        fix = "lower `lr` or raise `warmup_steps`, and start over with `force` (resuming repeats the same steps)"
        tensors = [t for net in (self.network, self.inference_network()) for t in net.state_dict().values()]
        if all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point()):
            self._save("diverged")
            return DiffcliError(f"the loss became {loss} at step {self.step}; the last finite state was saved", fix)
        if not self.checkpoint_path.exists():  # a fresh run not promoted yet: nothing to keep
            return DiffcliError(
                f"the loss became {loss} at step {self.step} and the weights are no longer finite;"
                " nothing was registered",
                "lower `lr` or raise `warmup_steps`, and train again",
            )
        return DiffcliError(
            f"the loss became {loss} at step {self.step} and the weights are no longer finite;"
            f" model {self.entry.name!r} keeps its last checkpoint",
            fix,
        )

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
            title=f"train {self.entry.name}",
            total=self.total_steps,
            unit="step",
            epochs=self.settings.epochs,
            images_per_step=self.batch,
            start=self.step,
        )
        began = time.perf_counter()
        epoch_losses: list[float] = [h["train_loss"] for h in self.history if h["epoch"] == self.epoch]
        last_val: Optional[float] = None
        self.network.train()
        with InterruptGuard() as guard, view:
            while self.epoch < self.settings.epochs and self.step < self.total_steps:
                tick = time.perf_counter()
                loss = self._train_step()
                self.wall_seconds += time.perf_counter() - tick
                self.images_seen += self.batch
                if not math.isfinite(loss):
                    raise self._diverged(loss)
                self.history.append({"step": self.step, "epoch": self.epoch + 1, "train_loss": round(loss, 6), "lr": self._lr()})
                epoch_losses.append(loss)
                self.position += 1
                view.advance(1, loss=loss, lr=self._lr(), epoch=self.epoch + 1, images_per_second=self._throughput())
                if main and view.wants_preview():
                    self.show_preview(view)
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
            self._save(status)  # everything up to this step boundary (cheap even right after an epoch end)
            view.phase(None)
            distributed.barrier(self.dist)
            if guard.requested and not completed:
                raise InterruptedRun(
                    f"stopped at step {self.step}/{self.total_steps} (Ctrl-C); checkpoint saved in {self.checkpoint_path}",
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
            training_seconds=round(self.wall_seconds, 1),
            images_per_second=self._throughput(),
            history=[h for h in self.history if h.get("val_loss") is not None],
        )

    def _throughput(self) -> float:
        """Training images per second over the optimiser steps (one figure for the panel and the summary)."""
        return round(self.images_seen / self.wall_seconds, 1) if self.wall_seconds else 0.0

    def _end_epoch(self, view: Any, epoch_losses: list[float]) -> Optional[float]:
        self.epoch += 1
        self.position = 0
        val = None
        if self.dist.is_main:
            view.phase(f"epoch {self.epoch}: validation loss")
            val = self.validation_loss()
            train_loss = float(np.mean(epoch_losses)) if epoch_losses else float("nan")
            self.history[-1].update(val_loss=None if val is None else round(val, 6), epoch_train_loss=round(train_loss, 6))
            if self.epoch in self.settings.sample_epochs or self.epoch == self.settings.epochs:
                view.phase(f"epoch {self.epoch}: sampling its grid")
                self.write_grid(self.train_dir / f"samples-epoch-{self.epoch:03d}.png")
            view.phase(f"epoch {self.epoch}: saving the checkpoint")
            self._save("complete" if self.epoch >= self.settings.epochs else "training")
            view.phase(None)
            view.end_epoch(
                self.epoch,
                step=self.step,
                train_loss=round(train_loss, 6),
                val_loss=None if val is None else round(val, 6),
                images_per_second=self._throughput(),
                training_seconds=round(self.wall_seconds, 1),
            )
        distributed.barrier(self.dist)
        return val
