"""Validation of the values a job is given, shared by every job (and so by the CLI and the Python API).

Each helper names the parameter in backticks, as the Python API spells it; the CLI turns that name into
its flag. Floats must be finite (NaN passes every `<` test, so it is checked first), integers must be
real integers in range (numpy's count), and every message says what was given and what is accepted.

Each bounded quantity is one `Bound` (GUIDANCE, TIMESTEPS, SEED, ...), read by the jobs (and so the CLI
and the Python API), the training recipe and the config schema alike. `check_memory` refuses, before
allocating, what needs more than the memory limit (half the machine's memory, or $DIFFCLI_MEMORY_LIMIT).
"""

from __future__ import annotations

import math
import numbers
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from diffcli.errors import DiffcliError, UsageError

SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed and numpy accept this; seed + i must stay below it


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or type(value).__name__ in ("bool", "bool_")  # numpy's too, without importing it


def _is_int(value: Any) -> bool:
    """A whole number of any integer type (numpy's included: they register as numbers.Integral)."""
    return isinstance(value, numbers.Integral) and not _is_bool(value)


def number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite float in [low, high] (open ends when asked); a UsageError naming `name` otherwise. Text
    and booleans are refused as `integer` refuses them (float() would take "5" and True)."""
    if isinstance(value, (str, bytes)) or _is_bool(value):
        raise UsageError(f"`{name}` must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"`{name}` must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise UsageError(f"`{name}` must be a finite number, got {value}", _range_hint(low, high, low_open, high_open))
    too_low = low is not None and (x <= low if low_open else x < low)
    too_high = high is not None and (x >= high if high_open else x > high)
    if too_low or too_high:
        raise UsageError(f"`{name}` must be {_range_words(low, high, low_open, high_open)}, got {x:g}")
    return x


def optional_number(name: str, value: Any, **bounds: Any) -> float | None:
    """`number` for a value that may be left out (None)."""
    return None if value is None else number(name, value, **bounds)


def integer(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """An int in [low, high]; a UsageError naming `name` otherwise."""
    if not _is_int(value):
        whole = isinstance(value, numbers.Real) and not _is_bool(value) and math.isfinite(value)
        if whole and float(value).is_integer():
            value = int(value)
        else:
            raise UsageError(f"`{name}` must be a whole number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is None:
            words = "at least 1" if low == 1 else f"{low} or more"
        else:
            words = f"between {low} and {high}" if low is not None else f"at most {high}"
        raise UsageError(f"`{name}` must be {words}, got {value}")
    return int(value)


def optional_integer(name: str, value: Any, **bounds: Any) -> int | None:
    """`integer` for a value that may be left out (None)."""
    return None if value is None else integer(name, value, **bounds)


@dataclass(frozen=True)
class Bound:
    """One bounded quantity, declared once and read by every door: the CLI (through the jobs), the Python
    API, the request objects and the config schema (schema.bounded). `kind` is int or float; float ends
    may be open. `name` is the Python spelling used in messages; a caller may name it otherwise."""

    name: str
    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    help: str = ""

    def __call__(self, value: Any, name: str | None = None) -> int | float:
        """The value checked against this bound (an int for int bounds); a one-line UsageError otherwise."""
        if self.kind is int:
            return integer(name or self.name, value, low=self.low, high=self.high)  # type: ignore[arg-type]
        ends = {"low_open": self.low_open, "high_open": self.high_open}
        return number(name or self.name, value, low=self.low, high=self.high, **ends)

    def optional(self, value: Any, name: str | None = None) -> int | float | None:
        """The bound for a value that may be left out (None)."""
        return None if value is None else self(value, name)


MAX_TIMESTEPS = 100_000
# Every bounded quantity, once. The ends are far past any useful value and short of what breaks: a
# guidance of 1e308 overflows the guided noise estimate and turns every image black.
GUIDANCE = Bound("guidance", float, 0.0, 100.0, help="classifier-free guidance scale (1 to 10 is usual)")
ETA = Bound("eta", float, 0.0, 1.0, help="DDIM's noise share: 0 deterministic, 1 DDPM-like")
TIMESTEPS = Bound("timesteps", int, 1, MAX_TIMESTEPS, help="timesteps T of a noise schedule")
STEPS = Bound("steps", int, 1, MAX_TIMESTEPS, help="sampling steps")
STRIDE = Bound("stride", int, 1, MAX_TIMESTEPS, help="timesteps skipped per sampling step")
SEED = Bound("seed", int, 0, SEED_MAX, help="random seed")
IMAGE_SIZE = Bound("size", int, 1, 4096, help="a model's image side in pixels")
CHANNELS = Bound("channels", int, 1, 4, help="image channels: grey, grey + alpha, RGB, RGBA")
WIDTH = Bound("width", int, 1, 1024, help="a network's first-level channels")
COUNT = Bound("n", int, 1, 100_000, help="images per class or prompt")
BEST_OF = Bound("best_of", int, 1, 64, help="candidates per image")
WEIGHT = Bound("weight", float, 0.0, 1.0, help="the first prompt's share of an anagram")
SIGMA = Bound("sigma", float, 0.0, None, low_open=True, help="Gaussian blur sigma in pixels")
BATCH_SIZE = Bound("batch_size", int, 1, 65_536, help="images per training or scoring batch")
EPOCHS = Bound("epochs", int, 1, 100_000, help="training epochs")
LR = Bound("lr", float, 0.0, 10.0, low_open=True, help="learning rate")
P_UNCOND = Bound("p_uncond", float, 0.0, 1.0, high_open=True, help="share of training steps without a class")
NOISE_SIGMA = Bound("noise_sigma", float, 0.0, None, help="the single-step denoiser's noise level")


MEMORY_LIMIT_ENV = "DIFFCLI_MEMORY_LIMIT"
MEMORY_SHARE = 0.5  # of physical memory: one request may not take more, so the machine stays usable
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def memory_limit() -> int:
    """Bytes one request may allocate: $DIFFCLI_MEMORY_LIMIT (bytes, or with K, M, G or T), else
    MEMORY_SHARE of the machine's physical memory."""
    given = os.environ.get(MEMORY_LIMIT_ENV, "").strip().upper().removesuffix("B").removesuffix("I")
    if given:
        unit = given[-1] if given[-1] in _UNITS else ""
        try:
            return int(float(given[: len(given) - len(unit)]) * _UNITS[unit])
        except ValueError:
            given = os.environ[MEMORY_LIMIT_ENV]
            raise UsageError(f"{MEMORY_LIMIT_ENV}={given!r} is not a size", "write bytes, or e.g. 8G") from None
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * MEMORY_SHARE)
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): assume a small machine
        return 4 * 2**30


def check_memory(needed: float, what: str, hint: str) -> None:
    """Refuse, before allocating, `what` (e.g. "noising a 7000x7000 image") when it needs more than the
    memory limit: one line saying how much it needs, the limit, and `hint` (what to do)."""
    limit = memory_limit()
    if needed > limit:
        raise DiffcliError(
            f"{what} needs about {size_words(needed)} of memory, over the {size_words(limit)} limit",
            f"{hint} (or raise {MEMORY_LIMIT_ENV})",
        )


def rows_that_fit(rows: int, bytes_per_row: int) -> int:
    """At most `rows`, and no more than fit in the memory limit at `bytes_per_row` each (at least one)."""
    return max(1, min(rows, memory_limit() // bytes_per_row)) if bytes_per_row > 0 else rows


def size_words(count: float) -> str:
    """A byte count for people: 812 B, 3.4 MiB, 7.45 GiB."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{int(count)} B"


def text(name: str, value: Any) -> str:
    """A str; a UsageError naming `name` otherwise (None, a number, a list...)."""
    if not isinstance(value, str):
        raise UsageError(f"`{name}` must be text, got {_show(value)}")
    return value


def path(name: str, value: Any) -> str:
    """A file or folder path (str or os.PathLike) as a str; a UsageError naming `name` otherwise."""
    if not isinstance(value, (str, os.PathLike)):
        raise UsageError(f"`{name}` must be a path, got {_show(value)}")
    return os.fspath(value)  # type: ignore[return-value]


def flag(name: str, value: Any) -> bool:
    """True or False (numpy's bool too); a UsageError naming `name` otherwise ("no" is not False)."""
    if not _is_bool(value):
        raise UsageError(f"`{name}` must be True or False, got {_show(value)}")
    return bool(value)


def _show(value: Any) -> str:
    """A bad value and its type, short: "['glyphs'] (list)", "None"."""
    text = repr(value)
    text = text[:57] + "..." if len(text) > 60 else text
    return text if value is None else f"{text} ({type(value).__name__})"


def choice(name: str, value: Any, choices: Iterable[str], what: str | None = None) -> str:
    """One of `choices`; the message lists them. `what` names the kind of thing in words ("sampler")
    where that reads better than the parameter's name."""
    options = list(choices)
    if value not in options:
        raise UsageError(f"unknown {what or f'`{name}`'} {value!r}", f"choose one of {', '.join(options)}")
    return value


def odd_kernel(name: str, value: Any) -> int:
    """A Gaussian kernel size: an odd whole number of at least 1."""
    kernel = integer(name, value, low=1)
    if kernel % 2 == 0:
        raise UsageError(f"`{name}` must be an odd positive number, got {kernel}")
    return kernel


def seed(value: int | None, count: int = 1) -> tuple[int, bool]:
    """The seed to use and whether it is fresh: the given one (checked so that seed + count - 1 is still
    valid), or a new random one that the caller should report so the run can be repeated."""
    if value is None:
        return secrets.randbelow(2**31), True
    top = SEED_MAX - max(count - 1, 0)
    if not _is_int(value) or not SEED.low <= value <= top:
        raise UsageError(f"`seed` must be a whole number from 0 to {top}, got {value!r}")
    return int(value), False


def seeds_for(first: int, count: int) -> list[int]:
    """One seed per image: first, first + 1, ... (so image i can be regenerated alone)."""
    return [first + i for i in range(count)]


def exclusive(**given: Any) -> None:
    """At most one of the named values may be set (not None / not empty)."""
    present = [name for name, value in given.items() if value not in (None, False, [], ())]
    if len(present) > 1:
        names = " and ".join(f"`{n}`" for n in present)
        raise UsageError(f"give either {names}, not both" if len(present) == 2 else f"give only one of {names}")


MAX_ITEMS = 100_000  # values one list option may hold (timesteps, classes, starts): far past any figure


def as_list(value: Any) -> list | None:
    """None stays None; a single value becomes a one-element list; sequences (numpy arrays too) become
    lists of at most MAX_ITEMS, counted before they are copied (range(10**9) is a Sequence)."""
    if value is None:
        return None
    array = getattr(value, "ndim", 0) >= 1  # numpy arrays and torch tensors: their items as Python numbers
    if isinstance(value, (str, bytes)) or not (isinstance(value, Sequence) or array):
        return [value]
    if len(value) > MAX_ITEMS:
        raise UsageError(f"a list of {len(value)} values is too long", f"give at most {MAX_ITEMS}")
    return value.tolist() if array else list(value)


def parse_guidance_interval(value: Any) -> tuple[float, float] | None:
    """A guidance interval as (lo, hi) fractions of T with 0 <= lo < hi <= 1, from "LO:HI" or a pair;
    None for None. (0, 1) is guidance throughout."""
    if value is None:
        return None
    hint = (
        "write it as LO:HI, fractions of the reverse process with 0 <= LO < HI <= 1, "
        "e.g. 0.2:0.7 (0:1 guides throughout)"
    )
    parts = value.split(":") if isinstance(value, str) else value
    try:
        lo, hi = (float(v) for v in parts)
    except (TypeError, ValueError):
        raise UsageError(f"`guidance_interval` {value!r} is not two numbers", hint) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo < hi <= 1.0):
        raise UsageError(f"`guidance_interval` {value!r} is not an interval inside [0, 1]", hint)
    return lo, hi


def _range_words(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        left, right = ("(" if low_open else "["), (")" if high_open else "]")
        return f"in {left}{low:g}, {high:g}{right}"
    if low is not None:
        if low == 0:
            return "positive" if low_open else "0 or more"
        return f"{'more than' if low_open else 'at least'} {low:g}"
    if high is not None:
        return f"{'less than' if high_open else 'at most'} {high:g}"
    return "a finite number"


def _range_hint(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str | None:
    if low is None and high is None:
        return None
    return f"use a value {_range_words(low, high, low_open, high_open)}"
