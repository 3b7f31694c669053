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

    def current_decay(self, step: int) -> float:
        """The decay used after optimiser step `step` (1-based)."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, network: nn.Module, step: int) -> None:
        d = self.current_decay(step)
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in network.parameters()]
        torch._foreach_mul_(ema_params, d)
        torch._foreach_add_(ema_params, params, alpha=1 - d)
        # Buffers (BatchNorm statistics of the course net) are copied, not averaged.
        for b_ema, b in zip(self.model.buffers(), network.buffers()):
            b_ema.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
