"""Validation of the values a job is given, shared by every job (and so by the CLI and the Python API).

Each helper names the parameter in backticks, as the Python API spells it; the CLI turns that name into
its flag. Floats must be finite (NaN passes every `<` test, so it is checked first), integers must be
real integers in range, and every message says what was given and what is accepted.
"""

from __future__ import annotations

import math
import numbers
import secrets
from typing import Any, Iterable, Optional, Sequence

from diffcli.errors import UsageError

# CFG scales past this only amplify the difference of two estimates into saturated pixels; the config
# schema, the requests and every command share it.
GUIDANCE_MAX = 100.0
SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed and numpy accept this; seed + i must stay below it


def _is_int(value: Any) -> bool:
    # numpy's integers are numbers.Integral too; booleans (Python's and numpy's) are not counts
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def number(name: str, value: Any, *, low: Optional[float] = None, high: Optional[float] = None, low_open: bool = False, high_open: bool = False) -> float:
    """A finite float in [low, high] (open ends when asked); a UsageError naming `name` otherwise. Text
    and booleans are refused as `integer` refuses them (float() would take "5" and True)."""
    if isinstance(value, (str, bytes, bool)):
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
        raise UsageError(f"`{name}` must be {_range_words(low, high, low_open, high_open)}, got {value:g}" if isinstance(value, (int, float)) else f"`{name}` is out of range")
    return x


def optional_number(name: str, value: Any, **bounds: Any) -> Optional[float]:
    """`number` for a value that may be left out (None)."""
    return None if value is None else number(name, value, **bounds)


def integer(name: str, value: Any, *, low: Optional[int] = None, high: Optional[int] = None) -> int:
    """An int in [low, high]; a UsageError naming `name` otherwise."""
    if not _is_int(value):
        if isinstance(value, float) and value.is_integer():
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


def optional_integer(name: str, value: Any, **bounds: Any) -> Optional[int]:
    """`integer` for a value that may be left out (None)."""
    return None if value is None else integer(name, value, **bounds)


def choice(name: str, value: Any, choices: Iterable[str], what: Optional[str] = None) -> str:
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


def seed(value: Optional[int], count: int = 1) -> tuple[int, bool]:
    """The seed to use and whether it is fresh: the given one (checked so that seed + count - 1 is still
    valid), or a new random one that the caller should report so the run can be repeated."""
    if value is None:
        return secrets.randbelow(2**31), True
    top = SEED_MAX - max(count - 1, 0)
    if not _is_int(value) or not 0 <= value <= top:
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


def as_list(value: Any) -> Optional[list]:
    """None stays None; a single value becomes a one-element list; sequences become lists."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def parse_guidance_interval(value: Any) -> Optional[tuple[float, float]]:
    """A guidance interval as (lo, hi) fractions of T with 0 <= lo < hi <= 1, from "LO:HI" or a pair;
    None for None. (0, 1) is guidance throughout."""
    if value is None:
        return None
    hint = "write it as LO:HI, fractions of the reverse process with 0 <= LO < HI <= 1, e.g. 0.2:0.7 (0:1 guides throughout)"
    parts = value.split(":") if isinstance(value, str) else value
    try:
        lo, hi = (float(v) for v in parts)
    except (TypeError, ValueError):
        raise UsageError(f"`guidance_interval` {value!r} is not two numbers", hint) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo < hi <= 1.0):
        raise UsageError(f"`guidance_interval` {value!r} is not an interval inside [0, 1]", hint)
    return lo, hi


def _range_words(low: Optional[float], high: Optional[float], low_open: bool, high_open: bool) -> str:
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


def _range_hint(low: Optional[float], high: Optional[float], low_open: bool, high_open: bool) -> Optional[str]:
    if low is None and high is None:
        return None
    return f"use a value {_range_words(low, high, low_open, high_open)}"
