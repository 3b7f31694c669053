"""Writing images: float pixels [C, H, W] in [0, 1] as 8-bit Pillow images and PNG bytes (with diffcli's
metadata as a text chunk, which `images.read_metadata` reads back), written atomically to a file or to stdout.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from diffcli import __version__
from diffcli.io.atomic import atomic_write_bytes
from diffcli.io.output_paths import OutputTarget


def to_pil(pixels: np.ndarray) -> Image.Image:
    """float [C, H, W] in [0, 1] -> an 8-bit grey or RGB Pillow image."""
    array = np.clip(np.round(np.asarray(pixels, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    if array.shape[0] == 1:
        return Image.fromarray(array[0], mode="L")
    return Image.fromarray(array.transpose(1, 2, 0), mode="RGB")


def png_bytes(pixels: np.ndarray, metadata: dict[str, Any] | None = None) -> bytes:
    """Encode as PNG, recording `metadata` (seed, command, model, settings) as a JSON text chunk."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", f"diffcli {__version__}")
    if metadata:
        info.add_text("diffcli", json.dumps(metadata, sort_keys=True, default=str))
    buffer = io.BytesIO()
    to_pil(pixels).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def write_png(pixels: np.ndarray, target: OutputTarget, metadata: dict[str, Any] | None = None) -> None:
    """Write a PNG to a file (atomically) or to stdout."""
    data = png_bytes(pixels, metadata)
    if target.path is None:
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            # The reader went away (e.g. `| head`); not our error to report.
            from diffcli import console

            console.discard_stdout()
    else:
        atomic_write_bytes(target.path, data)
