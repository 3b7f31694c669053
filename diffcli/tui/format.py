"""How the progress views write numbers: durations, loss-like values, rates, and JSON-safe values."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def format_duration(seconds: float) -> str:
    """Short human durations: 45s, 3m12s, 2h05m."""
    if not math.isfinite(seconds):
        return "-"
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def format_value(value: float) -> str:
    """A loss-like number with 4 decimals, or scientific notation when that would hide it."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.3e}"


def format_rate(rate: float) -> str:
    """A rate's number: whole from 100 up, one decimal from 1, two below."""
    return f"{rate:.0f}" if rate >= 100 else (f"{rate:.1f}" if rate >= 1 else f"{rate:.2f}")


def json_number(value: Any) -> Any:
    """JSON has no NaN/inf: map them to null; numpy scalars to Python numbers."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
