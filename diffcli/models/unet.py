"""diffcli's UNet: time- and class-conditioned, GroupNorm, CFG-ready (the last class index is null).

GroupNorm instead of the course's BatchNorm: BatchNorm's statistics differ between train and eval mode
and between the conditional and unconditional halves of a batched CFG call, which makes samples depend
on batch composition. The course's own architecture stays available (course_unet.py) for comparison.

Conditioning enters every residual block as a per-channel scale and shift (FiLM) computed from
embedding(t) + embedding(class); a model without time conditioning (the single-step denoiser) has
plain residual blocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


def timestep_embedding(t: torch.Tensor, dim: int, timesteps: int) -> torch.Tensor:
    """Sinusoidal embedding of t / T scaled to [0, 1000), so it reads the same at any T."""
    position = t.float() * (1000.0 / timesteps)
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = position[:, None] * freqs[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def _groups(channels: int, preferred: int) -> int:
    g = min(preferred, channels)
    while channels % g:
        g -= 1
    return g


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, FiLM from the embedding, GroupNorm -> SiLU -> conv, residual."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int | None, groups: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in, groups), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * c_out) if emb_dim else None
        self.norm2 = nn.GroupNorm(_groups(c_out, groups), c_out)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.norm2(h)
        if self.film is not None and emb is not None:
            scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return h + self.skip(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention over pixels, used only at the coarsest resolution where it is cheap."""

    def __init__(self, channels: int, groups: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(_groups(channels, groups), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        attn = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(attn.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    """A small UNet for square images.

    width: channels at full resolution; mults: channel multiplier per level (each level after the
    first halves the resolution); blocks: residual blocks per level; attention: levels (0-based) with
    self-attention; num_classes: class conditioning with one extra null class (index num_classes) for
    classifier-free guidance; time_conditioned: False for the single-step denoiser.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int | None = None,
        width: int = 32,
        mults: Sequence[int] = (1, 2, 2),
        blocks: int = 1,
        attention: Sequence[int] = (),
        num_classes: int | None = None,
        time_conditioned: bool = True,
        timesteps: int = 1000,
        groups: int = 8,
        dropout: float = 0.0,
        patch: int = 1,
    ) -> None:
        super().__init__()
        self.patch = patch
        out_channels = out_channels or in_channels
        self.timesteps = timesteps
        self.num_classes = num_classes
        self.time_conditioned = time_conditioned
        self.width = width
        emb_dim = 4 * width if (time_conditioned or num_classes) else None
        self.emb_dim = emb_dim
        if time_conditioned:
            self.time_mlp = nn.Sequential(nn.Linear(width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if num_classes:
            self.class_emb = nn.Embedding(num_classes + 1, emb_dim)

        # patch > 1 folds p x p pixel blocks into channels (pixel unshuffle), so the network never runs
        # at full resolution: most of a small UNet's cost is there.
        self.stem = nn.Sequential(nn.PixelUnshuffle(patch), nn.Conv2d(in_channels * patch * patch, width, 3, padding=1))
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        channels = [width]
        c = width
        for level, mult in enumerate(mults):
            c_out = width * mult
            for _ in range(blocks):
                block = nn.ModuleList([ResBlock(c, c_out, emb_dim, groups, dropout)])
                if level in attention:
                    block.append(SelfAttention(c_out, groups))
                self.down.append(block)
                c = c_out
                channels.append(c)
            if level < len(mults) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                channels.append(c)
        self.mid1 = ResBlock(c, c, emb_dim, groups, dropout)
        self.mid_attn = SelfAttention(c, groups) if attention else nn.Identity()
        self.mid2 = ResBlock(c, c, emb_dim, groups, dropout)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(len(mults))):
            c_out = width * mults[level]
            for _ in range(blocks + 1):
                block = nn.ModuleList([ResBlock(c + channels.pop(), c_out, emb_dim, groups, dropout)])
                if level in attention:
                    block.append(SelfAttention(c_out, groups))
                self.up.append(block)
                c = c_out
            if level > 0:
                self.upsample.append(nn.Conv2d(c, c, 3, padding=1))
        self.head = nn.Sequential(
            nn.GroupNorm(_groups(c, groups), c),
            nn.SiLU(),
            nn.Conv2d(c, out_channels * patch * patch, 3, padding=1),
            nn.PixelShuffle(patch),
        )
        self.levels = len(mults)
        self.blocks = blocks

    def embed(
        self, t: torch.Tensor | None, cond: torch.Tensor | None, batch: int, device: torch.device
    ) -> torch.Tensor | None:
        """embedding(t) + embedding(class); None for a model with neither."""
        emb = None
        if self.time_conditioned:
            if t is None:
                raise ValueError("this model needs a timestep")
            emb = self.time_mlp(timestep_embedding(t, self.width, self.timesteps))
        if self.num_classes:
            if cond is None:
                cond = torch.full((batch,), self.num_classes, device=device, dtype=torch.long)
            c = self.class_emb(cond)
            emb = c if emb is None else emb + c
        return emb

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(t, cond, x.shape[0], x.device)
        h = self.stem(x)
        skips = [h]
        down_iter = iter(self.down)
        for level in range(self.levels):
            for _ in range(self.blocks):
                block = next(down_iter)
                h = _run_block(block, h, emb)
                skips.append(h)
            if level < self.levels - 1:
                h = self.downsample[level](h)
                skips.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        up_iter = iter(self.up)
        for i, level in enumerate(reversed(range(self.levels))):
            for _ in range(self.blocks + 1):
                h = _run_block(next(up_iter), torch.cat([h, skips.pop()], dim=1), emb)
            if level > 0:
                skip_shape = skips[-1].shape[-2:]
                h = self.upsample[i](F.interpolate(h, size=skip_shape, mode="nearest"))
        return self.head(h)


def _run_block(block: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
    h = block[0](h, emb)
    for extra in block[1:]:
        h = extra(h)
    return h
