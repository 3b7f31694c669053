"""The loss curve of a live panel: the whole run's loss in a bounded number of buckets, drawn as a
sparkline of Unicode bars."""

from __future__ import annotations

import math
from collections.abc import Sequence

SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 60  # sparkline columns


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH, log: bool = True) -> str:
    """Unicode bars for the last `width` values, scaled between their min and max (on a log scale when
    all are positive, so the slow late part of a loss curve stays visible after the early drop)."""
    recent = [v for v in list(values)[-width:] if math.isfinite(v)]
    if not recent:
        return ""
    if log and min(recent) > 0:
        recent = [math.log(v) for v in recent]
    lo, hi = min(recent), max(recent)
    span = (hi - lo) or 1.0
    top = len(SPARK) - 1
    return "".join(SPARK[min(top, int((v - lo) / span * top + 0.5))] for v in recent)


class LossHistory:
    """The whole run's loss in at most `width` buckets: when they fill up, neighbours merge in pairs and
    each bucket then covers twice as many steps. O(1) amortised per value, bounded memory, and the
    sparkline shows the entire run rather than the last second of it."""

    def __init__(self, width: int = SPARK_WIDTH) -> None:
        self.width = width - width % 2 or 2
        self.span = 1  # steps per bucket
        self.buckets: list[float] = []
        self._sum = 0.0
        self._n = 0
        self.last = math.nan
        self.best = math.inf
        self.count = 0

    def add(self, value: float) -> None:
        """Record one loss value (non-finite ones are shown as `last` but kept out of the curve)."""
        self.last = value
        self.count += 1
        if not math.isfinite(value):
            return
        self.best = min(self.best, value)
        self._sum += value
        self._n += 1
        if self._n == self.span:
            buckets = self.buckets + [self._sum / self._n]
            self._sum, self._n = 0.0, 0
            if len(buckets) >= self.width:
                buckets = [(a + b) / 2 for a, b in zip(buckets[::2], buckets[1::2])]
                self.span *= 2
            self.buckets = buckets  # one reference swap: safe to read from a drawing thread

    def values(self) -> list[float]:
        """Bucket means, oldest first, including the bucket still filling."""
        values = list(self.buckets)
        if self._n:
            values.append(self._sum / self._n)
        return values
