"""Invertible image views for visual anagrams: an image that reads as A, and as B once viewed.

A view is a pair of functions on [B, C, H, W] tensors, `apply` and `inverse`. Adding a view is a View
passed to `register_view` (here or in its own module) and its line in diffusion/names.py.
`spatial_inverse` is what the view does to where pixels are, without changing their values: it maps a
learned variance map back (negating a variance would be meaningless).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from diffcli.diffusion import names

TensorMap = Callable[[torch.Tensor], torch.Tensor]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@dataclass(frozen=True)
class View:
    """An invertible transform of images."""

    name: str
    description: str
    apply: TensorMap
    inverse: TensorMap
    spatial_inverse: TensorMap
    square_only: bool = False

    def check_fits(self, height: int, width: int) -> None:
        """Raise ValueError when the view cannot map an image of this size onto itself."""
        if self.square_only and height != width:
            raise ValueError(f"the {self.name} view needs a square image, not {width}x{height}")


def _rot90(x: torch.Tensor) -> torch.Tensor:
    return torch.rot90(x, 1, dims=(-2, -1))


def _rot270(x: torch.Tensor) -> torch.Tensor:
    return torch.rot90(x, -1, dims=(-2, -1))


def _vflip(x: torch.Tensor) -> torch.Tensor:
    return torch.flip(x, dims=(-2,))


def _hflip(x: torch.Tensor) -> torch.Tensor:
    return torch.flip(x, dims=(-1,))


def _rot180(x: torch.Tensor) -> torch.Tensor:
    return torch.flip(x, dims=(-2, -1))


def _negate(x: torch.Tensor) -> torch.Tensor:
    return -x


VIEWS: dict[str, View] = {}


def register_view(view: View) -> View:
    """Make `view` available by its name to `get_view` (users' names also need their line in
    diffusion/names.py, which the CLI reads)."""
    VIEWS[view.name] = view
    return view


for _view in (
    View("identity", "the image as it is", _identity, _identity, _identity),
    View("flip", "upside down (vertical flip), the course's view", _vflip, _vflip, _vflip),
    View("hflip", "mirrored left to right", _hflip, _hflip, _hflip),
    View("rot180", "rotated by 180 degrees", _rot180, _rot180, _rot180),
    View("rot90", "rotated a quarter turn counter-clockwise", _rot90, _rot270, _rot270, square_only=True),
    View("negate", "colours inverted (x -> -x in the model's [-1, 1] range)", _negate, _negate, _identity),
):
    register_view(_view)


def get_view(name: str) -> View:
    """A view by name (diffusion/names.py lists them); ValueError listing the known ones otherwise."""
    if name not in VIEWS and name in names.VIEW_MODULES:
        importlib.import_module(names.VIEW_MODULES[name][0])  # the module registers its views
    try:
        return VIEWS[name]
    except KeyError:
        raise ValueError(f"unknown view {name!r}; choose one of {', '.join(names.VIEWS)}") from None
