"""What an image-making job returns: the images, how they are laid out, and what made them.

`ImageSet` is the one result type of noise, denoise, sample, anagram and hybrid. A front end decides
where it goes: the CLI writes `figure()` to -o or each image to --out-dir; in Jupyter the set shows
itself inline (`_repr_png_`); a script takes `.images` (numpy [C, H, W] in [0, 1]), `.pil` or `.tensor`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ImageSet:
    """Images made by one job.

    images: one float32 [C, H, W] array in [0, 1] per image, in order.
    names: a file-name stem for each image (e.g. "7-1234"), unique within the set.
    per_image: metadata for each image (its seed, prompt, start ...), merged over `metadata` in its PNG.
    metadata: the settings that made the set (model, sampler, seed ...), recorded in every PNG.
    summary: the machine-readable result (what `--json` prints), without file paths.
    layout: draws the set as one figure (a labelled grid, strip or panel); default: a plain grid.
    extras: further (name, image, metadata) files that belong beside the images when they are
        written one per file (e.g. each sample's reverse-chain strip).
    """

    images: list[np.ndarray]
    names: list[str]
    per_image: list[dict[str, Any]]
    metadata: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)
    layout: Callable[[], np.ndarray] | None = None
    extras: list[tuple[str, np.ndarray, dict[str, Any]]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        """One line (what, how many, size, model, seeds), not the pixels: `print(grid)` stays readable."""
        job = self.metadata.get("subcommand", "image")
        n = len(self.images)
        parts = [f"{n} {job} image{'s' if n != 1 else ''}"]
        if self.images:
            c, h, w = np.shape(self.images[0])
            parts[0] += f" of {w}x{h}" + (" RGB" if c == 3 else "")
        if self.metadata.get("model"):
            parts.append(f"model {self.metadata['model']}")
        prompts = list(dict.fromkeys(str(m["prompt"]) for m in self.per_image if m.get("prompt") is not None))
        if prompts:
            parts.append(f"class{'es' if len(prompts) > 1 else ''} {_short(prompts)}")
        seeds = list(dict.fromkeys(m["seed"] for m in self.per_image if m.get("seed") is not None))
        seeds = seeds or ([self.metadata["seed"]] if self.metadata.get("seed") is not None else [])
        if seeds:
            parts.append(f"seed{'s' if len(seeds) > 1 else ''} {_short(seeds)}")
        return f"<diffcli.ImageSet: {', '.join(parts)}>"

    __str__ = __repr__

    def __getitem__(self, index: int) -> np.ndarray:
        return self.images[index]

    def figure(self) -> np.ndarray:
        """The whole set as one image: float32 [C, H, W] in [0, 1]."""
        if self.layout is not None:
            return self.layout()
        if len(self.images) == 1:
            return self.images[0]
        from diffcli.io.figures import grid

        return grid(self.images)

    @property
    def pil(self) -> list[Any]:
        """Each image as a Pillow image (8-bit grey or RGB)."""
        from diffcli.io.png import to_pil

        return [to_pil(image) for image in self.images]

    @property
    def tensor(self) -> Any:
        """All images as one torch tensor [N, C, H, W] in [0, 1]."""
        import torch

        return torch.from_numpy(np.stack(self.images))

    def png(self) -> bytes:
        """The figure as PNG bytes, with the metadata in its text chunk."""
        from diffcli.io.png import png_bytes

        return png_bytes(self.figure(), self.metadata)

    def _repr_png_(self) -> bytes:  # Jupyter shows the figure inline
        from diffcli.io.png import png_bytes

        return png_bytes(self.figure())

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the figure to a PNG file (atomically), with the metadata recorded in it."""
        from diffcli.io.output_paths import OutputTarget
        from diffcli.io.png import write_png

        target = Path(path)
        write_png(self.figure(), OutputTarget(target), self.metadata)
        return target

    def save_all(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write every image (and its extras) as NAME.png into `folder`; returns the paths."""
        from diffcli.io.output_paths import OutputTarget, prepare_out_dir
        from diffcli.io.png import write_png

        out = prepare_out_dir(str(folder))
        written = []
        for image, name, meta in self.files():
            path = out / f"{name}.png"
            write_png(image, OutputTarget(path), meta)
            written.append(path)
        return written

    def files(self) -> list[tuple[np.ndarray, str, dict[str, Any]]]:
        """(image, name, metadata) for every file of a one-file-per-image write, extras included."""
        rows = [
            (image, name, {**self.metadata, **meta})
            for image, name, meta in zip(self.images, self.names, self.per_image)
        ]
        rows += [(image, name, {**self.metadata, **meta}) for name, image, meta in self.extras]
        return rows


def _short(values: list[Any], most: int = 4) -> str:
    """'0-7' for a run of consecutive integers, else the first few values and how many more."""
    consecutive = all(isinstance(v, int) for v in values) and values == list(range(values[0], values[0] + len(values)))
    if len(values) > 2 and consecutive:
        return f"{values[0]}-{values[-1]}"
    shown = ", ".join(str(v)[:20] for v in values[:most])
    return shown + (f" (+{len(values) - most} more)" if len(values) > most else "")


def metadata(job: str, **fields: Any) -> dict[str, Any]:
    """What goes into a PNG's text chunk: the job and the settings that made the image (None dropped)."""
    return {"subcommand": job, **{k: v for k, v in fields.items() if v is not None}}


def safe_label(text: str) -> str:
    """A file-name-safe version of a label or prompt."""
    cleaned = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    while "--" in cleaned:
        cleaned = cleaned.replace("--", "-")
    return cleaned[:40] or "x"
