"""Latency summaries and rates."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of an unsorted list; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Latency:
    """Milliseconds."""

    n: int
    p50: float
    p99: float
    mean: float
    max: float

    @classmethod
    def of_seconds(cls, samples: list[float]) -> Latency:
        ms = [s * 1000 for s in samples]
        return cls(
            n=len(ms), p50=percentile(ms, 50), p99=percentile(ms, 99),
            mean=statistics.fmean(ms) if ms else math.nan, max=max(ms) if ms else math.nan,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rate:
    """`count` things in `seconds`."""

    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else math.nan

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "seconds": self.seconds, "per_second": self.per_second}
