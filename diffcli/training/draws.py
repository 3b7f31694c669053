"""What each training step draws: which images (the data order of an epoch) and the timesteps, noise and
class dropout of its batch.

Both are reproducible by construction, so that `--resume` continues exactly and N processes see what one
process sees:
- the data order of epoch e is a permutation seeded by (seed, e), so a resumed epoch skips to its
  position instead of replaying an iterator;
- timesteps, noise and class dropout come from one generator whose state is checkpointed, drawn for the
  whole global batch on every rank (each rank keeps its slice).
"""

from __future__ import annotations

import torch

from diffcli.training.distributed import DistInfo
from diffcli.training.recipe import TrainSettings
from diffcli.training.timesteps import draw_timesteps


class StepDraws:
    """The draws of every step of one run, for one rank; `rng` is the generator the checkpoint saves."""

    def __init__(self, settings: TrainSettings, images: int, batch: int, dist: DistInfo, timesteps: int) -> None:
        self.settings = settings
        self.images = images  # the training set's size
        self.batch = batch  # the global batch
        self.local_batch = batch // dist.world_size
        self.rank = dist.rank
        self.timesteps = timesteps
        self.rng = torch.Generator(device="cpu").manual_seed(settings.seed + 1)

    def _mine(self) -> slice:
        """This rank's part of a global batch."""
        return slice(self.rank * self.local_batch, (self.rank + 1) * self.local_batch)

    def indices(self, epoch: int, position: int) -> torch.Tensor:
        """The dataset indices of this rank's images at step `position` of `epoch` (on the CPU)."""
        seed = self.settings.seed * 1_000_003 + epoch
        order = torch.randperm(self.images, generator=torch.Generator().manual_seed(seed))
        return order[position * self.batch : (position + 1) * self.batch][self._mine()]

    def noise(self, image_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """t, noise and the class-dropout mask for the WHOLE global batch, then this rank's slice (CPU)."""
        t = draw_timesteps(self.settings.timestep_sampling, self.batch, self.timesteps, self.rng)
        noise = torch.randn((self.batch, *image_shape), generator=self.rng)
        drop = torch.rand(self.batch, generator=self.rng) < self.settings.p_uncond
        mine = self._mine()
        return t[mine], noise[mine], drop[mine]
