"""Exponential moving average of a network's parameters (not its buffers), with a decay warm-up.

The warm-up, decay_t = min(decay, (1 + step) / (10 + step)), lets the average follow the fast early
changes instead of being dominated by the random initial weights for thousands of steps.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


class EMA:
    """Holds an averaged copy of a network; `update` after every optimiser step."""

    def __init__(self, network: nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.model = copy.deepcopy(network).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        # Listed once (load_state_dict copies into these same tensors): walking the modules on every
        # step cost more than the averaging itself.
        self._averaged = list(self.model.parameters())
        self._averaged_buffers = list(self.model.buffers())
        self._source: tuple[nn.Module, list[torch.Tensor], list[torch.Tensor]] | None = None

    def current_decay(self, step: int) -> float:
        """The decay used after optimiser step `step` (1-based)."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, network: nn.Module, step: int) -> None:
        d = self.current_decay(step)
        if self._source is None or self._source[0] is not network:
            self._source = (network, list(network.parameters()), list(network.buffers()))
        _, params, buffers = self._source
        torch._foreach_lerp_(self._averaged, params, 1 - d)  # ema + (1 - d) (p - ema), in one pass
        # Buffers (BatchNorm statistics of the course net) are copied, not averaged.
        for b_ema, b in zip(self._averaged_buffers, buffers):
            b_ema.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
