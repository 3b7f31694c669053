"""Reading images from a path or stdin and converting them to what a model needs (png.py writes them,
output_paths.py checks where they go).

Images travel inside diffcli as float32 numpy arrays [C, H, W] with values in [0, 1] ("pixels"); a
model maps them to its own range. Reading never decodes an image over MAX_PIXELS or the memory limit
(sized from the header first), names the file when a reader refuses it (text-chunk limits, corrupt data),
converts rather than rejects unusual modes (16-bit, palette, alpha), and reports what it changed through
`notify`.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from diffcli import checks
from diffcli.errors import DiffcliError, UsageError

MAX_PIXELS = 50_000_000
MAX_INPUT_BYTES = 256 * 2**20  # an image file read whole (stdin): far past any PNG of MAX_PIXELS that compresses
# Peak bytes per pixel while decoding and converting (an RGBA PNG: the decoded image, its RGBA copy, the
# white background, the composite, RGB, then float32 pixels and their clipped copy), rounded up.
DECODE_BYTES_PER_PIXEL = 48
Notify = Callable[[str], None]
BUILTIN_PREFIX = "builtin:"
ASSETS = Path(__file__).with_name("assets")

# We check the size ourselves before decoding; Pillow's own bomb check would fire later and louder.
Image.MAX_IMAGE_PIXELS = None


def _ignore(_: str) -> None:
    pass


def builtin_images() -> list[str]:
    """Names of the sample images shipped with diffcli (use as `builtin:NAME`)."""
    return sorted(p.stem for p in ASSETS.glob("*.png"))


def open_image(source: str, notify: Notify = _ignore) -> tuple[Image.Image, str]:
    """Open and fully decode an image from a path, `-` (stdin) or `builtin:NAME`.

    Returns the image and a short name for messages. Raises DiffcliError with a one-line reason for
    missing files, non-images, truncated files, oversized images and empty stdin.
    """
    if source == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError("IMAGE is '-' but nothing is piped in", "pipe an image, e.g. `cat in.png | diffcli ...`")
        limit = min(MAX_INPUT_BYTES, checks.memory_limit())
        data = sys.stdin.buffer.read(limit + 1)
        if len(data) > limit:
            hint = "pipe an image file, or pass its path"
            raise DiffcliError(f"stdin holds more than {checks.size_words(limit)}, more than an image may be", hint)
        if not data:
            raise DiffcliError("stdin is empty: expected image bytes", "pipe a PNG, JPEG or WebP image")
        name, stream = "stdin", io.BytesIO(data)
    elif source.startswith(BUILTIN_PREFIX):
        key = source[len(BUILTIN_PREFIX) :]
        path = ASSETS / f"{key}.png"
        if not path.is_file():
            raise UsageError(f"no built-in image {key!r}", f"built-in images: {', '.join(builtin_images())}")
        name, stream = source, path.open("rb")
    else:
        path = Path(source)
        if not path.exists():
            raise DiffcliError(f"{source}: no such file")
        if path.is_dir():
            raise DiffcliError(f"{source} is a folder, not an image file")
        name, stream = source, path.open("rb")
    try:
        try:
            image = Image.open(stream)
        except UnidentifiedImageError:
            raise DiffcliError(f"{name} is not an image (expected PNG, JPEG or WebP)") from None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise _unreadable(name, exc) from None
        check_decode(name, *image.size)  # the header's size, before a pixel is decoded
        try:
            image.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise _unreadable(name, exc) from None
    finally:
        if stream is not None and not isinstance(stream, io.BytesIO):
            stream.close()
    return image, name


def check_decode(name: str, width: int, height: int, bytes_per_pixel: int = DECODE_BYTES_PER_PIXEL) -> None:
    """Refuse an image of `width` x `height` over MAX_PIXELS, or whose decoding needs more than the memory
    limit, before decoding it."""
    if width * height > MAX_PIXELS:
        raise DiffcliError(
            f"{name} is {width}x{height} ({width * height / 1e6:.0f} megapixels), "
            f"over the {MAX_PIXELS // 1_000_000} MP limit",
            "downscale it first",
        )
    checks.check_memory(width * height * bytes_per_pixel, f"reading {name} ({width}x{height})", "downscale it first")


def _unreadable(name: str, exc: BaseException) -> DiffcliError:
    """A reader's refusal as one line naming the file: Pillow's limits on text chunks (whose messages
    name MAX_TEXT_CHUNK / MAX_TEXT_MEMORY), decompression bombs, truncated or corrupt data."""
    reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    if "text chunk" in reason.lower() or "MAX_TEXT" in reason:
        hint = "strip its metadata and retry"
        return DiffcliError(f"{name} carries more text metadata than an image reader accepts ({reason})", hint)
    return DiffcliError(f"{name} is truncated or corrupt ({reason})")


def to_pixels(
    image: Image.Image, channels: int | None = None, name: str = "image", notify: Notify = _ignore
) -> np.ndarray:
    """Convert a decoded image to float32 [C, H, W] in [0, 1].

    channels: 1 (grey), 3 (RGB), or None to keep grey images grey and everything else RGB.
    16-bit images keep their precision; palette images are expanded; transparency is flattened onto
    white (as image viewers show it), with a notice.
    """
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        grey = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if grey.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
        array = (grey / scale)[None]
    elif image.mode == "F":
        array = np.asarray(image, dtype=np.float64)[None]
        if not np.isfinite(array).all():  # as arrays are refused (array_pixels): clipping would hide it
            raise DiffcliError(f"{name} holds NaN or infinite values", "pass finite pixels in [0, 1]")
        if array.max(initial=0) > 1.0:
            array = array / 255.0
    else:
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            if rgba.getextrema()[3][0] < 255:
                notify(f"{name} has transparency; flattened it onto white")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, rgba).convert("RGB")
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB" if image.mode not in ("1",) else "L")
        # float32 gives the float64 result for every 8-bit value (x / 255 checked for all 256) in half the memory
        array = np.asarray(image, dtype=np.float32) / np.float32(255.0)
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    array = np.clip(array, 0.0, 1.0, out=array if array.dtype == np.float32 else None).astype(np.float32, copy=False)
    return convert_channels(array, channels)


def convert_channels(pixels: np.ndarray, channels: int | None) -> np.ndarray:
    """1 <-> 3 channels: ITU-R 601 luminance one way (as Pillow's "L"), repetition the other."""
    current = pixels.shape[0]
    if channels is None or channels == current:
        return pixels
    if channels == 1 and current == 3:
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32).reshape(3, 1, 1)
        return (pixels * weights).sum(0, keepdims=True).astype(np.float32)
    if channels == 3 and current == 1:
        return np.repeat(pixels, 3, axis=0)
    raise ValueError(f"cannot convert {current} channels to {channels}")


def resize_square(pixels: np.ndarray, size: int, name: str = "image", notify: Notify = _ignore) -> np.ndarray:
    """Centre-crop to a square and resize to size x size (antialiased), with a notice when it changes."""
    _, height, width = pixels.shape
    if (height, width) == (size, size):
        return pixels
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    cropped = pixels[:, top : top + side, left : left + side]
    planes = [
        np.asarray(
            Image.fromarray(plane, mode="F").resize(
                (size, size), Image.Resampling.LANCZOS if side > size else Image.Resampling.BICUBIC
            )
        )
        for plane in cropped
    ]
    how = " (centre crop)" if height != width else ""
    notify(f"resized {name} from {width}x{height} to {size}x{size}{how}")
    return np.clip(np.stack(planes), 0.0, 1.0).astype(np.float32)


def load_image(
    source: str,
    channels: int | None = None,
    size: int | None = None,
    notify: Notify = _ignore,
) -> np.ndarray:
    """Read `source` (path, `-` or builtin:NAME) as float32 [C, H, W] in [0, 1], converted to
    `channels` and, when `size` is given, to size x size."""
    return load_input(source, channels, size, notify)


ImageInput = Any
"""An image given to a job: a path, `-` (stdin), `builtin:NAME`, a Pillow image, or an array / tensor
([C, H, W] or [H, W] (or [H, W, C] with C of 1, 3 or 4), floats in [0, 1] or uint8)."""


def decode_input(source: ImageInput, channels: int | None = None, notify: Notify = _ignore) -> tuple[np.ndarray, str]:
    """Any ImageInput as float32 [C, H, W] pixels in [0, 1] (converted to `channels` when given), and a
    short name for messages."""
    if isinstance(source, (str, os.PathLike)):
        image, name = open_image(str(source), notify)
        return to_pixels(image, channels, name, notify), name
    if isinstance(source, Image.Image):
        check_decode("the image", source.width, source.height)
        return to_pixels(source, channels, "image", notify), "image"
    return convert_channels(array_pixels(source), channels), "array"


def array_pixels(source: Any) -> np.ndarray:
    """A numpy array or torch tensor as float32 [C, H, W] in [0, 1] (see ImageInput)."""
    if hasattr(source, "detach"):  # a torch tensor, without importing torch here
        source = source.detach().float().cpu().numpy()
    try:
        array = np.asarray(source)
    except Exception as exc:
        raise DiffcliError(
            f"cannot read a {type(source).__name__} as an image ({exc})",
            "pass a path, a PIL image, or an array [C, H, W] in [0, 1]",
        ) from None
    if array.dtype == object or array.ndim not in (2, 3) or array.size == 0:
        raise DiffcliError(
            f"an image array must be [C, H, W] or [H, W], got shape {array.shape}",
            "pass [1, H, W] grey or [3, H, W] RGB pixels in [0, 1]",
        )
    if array.ndim == 2:
        array = array[None]
    elif array.shape[0] not in (1, 3) and array.shape[-1] in (1, 3, 4):
        array = np.moveaxis(array, -1, 0)
    if array.shape[0] == 4:
        array = array[:3]
    if array.shape[0] not in (1, 3):
        raise DiffcliError(
            f"an image array needs 1 or 3 channels, got shape {array.shape}",
            "pass [1, H, W] grey or [3, H, W] RGB pixels",
        )
    check_decode("the image array", array.shape[2], array.shape[1], bytes_per_pixel=array.shape[0] * 8 * 2)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == bool:
        return array.astype(np.float32)
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise DiffcliError("the image array holds NaN or infinite values", "pass finite pixels in [0, 1]")
    return np.clip(values, 0.0, 1.0).astype(np.float32)


def load_input(
    source: ImageInput, channels: int | None = None, size: int | None = None, notify: Notify = _ignore
) -> np.ndarray:
    """`load_image` for every kind of ImageInput."""
    pixels, name = decode_input(source, channels, notify)
    return resize_square(pixels, size, name, notify) if size is not None else pixels


def binary_mask(image: Image.Image | np.ndarray, size: int, name: str = "mask", notify: Notify = _ignore) -> np.ndarray:
    """A mask (decoded image or grey pixels) as {0, 1} float32 [1, size, size]; anything not purely black
    and white is thresholded at 50% grey, with a notice."""
    grey = image if isinstance(image, np.ndarray) else to_pixels(image, 1, name, notify)
    if grey.shape[1:] != (size, size):
        grey = resize_square(grey, size, name, notify)
    if np.any((grey > 0.02) & (grey < 0.98)):
        notify(f"{name} is not pure black and white; thresholded it at 50% grey")
    return (grey >= 0.5).astype(np.float32)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The diffcli metadata recorded in a PNG written by diffcli ({} if none)."""
    # Here, not in png.py beside the writer: opening a file relies on this module's Pillow setting above.
    with Image.open(path) as image:
        text = image.info.get("diffcli")
    return json.loads(text) if text else {}
