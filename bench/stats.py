"""Percentiles and summaries of latency samples (seconds in, milliseconds out)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least p% of samples at or below it
    (no interpolation, so p99 of 50 samples is the largest one, not an invented value)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(samples: Sequence[float]) -> dict[str, Any]:
    """n, p50, p95, p99, max and mean in milliseconds (None when there is no sample)."""
    if not samples:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 50) * 1000, 2),
        "p95_ms": round(percentile(samples, 95) * 1000, 2),
        "p99_ms": round(percentile(samples, 99) * 1000, 2),
        "max_ms": round(max(samples) * 1000, 2),
        "mean_ms": round(statistics.fmean(samples) * 1000, 2),
    }


def ratio(value: float | None, floor: float | None) -> float | None:
    if value is None or floor is None or floor <= 0:
        return None
    return round(value / floor, 2)


def line(name: str, stats: dict[str, Any]) -> str:
    """One console line for a summary."""
    if not stats.get("n"):
        return f"{name}: no sample"
    return (
        f"{name}: n={stats['n']} p50={stats['p50_ms']:.1f} ms p95={stats['p95_ms']:.1f} ms "
        f"p99={stats['p99_ms']:.1f} ms max={stats['max_ms']:.1f} ms"
    )


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over repeated runs (and the runs themselves)."""
    keys = ("p50_ms", "p95_ms", "p99_ms", "max_ms", "per_second")
    merged: dict[str, Any] = {
        key: round(statistics.median(run[key] for run in runs), 2)
        for key in keys
        if all(run.get(key) is not None for run in runs)
    }
    merged["clients"] = runs[0]["clients"]
    merged["total_per_run"] = runs[0]["total"]
    merged["repeats"] = len(runs)
    merged["runs"] = runs
    return merged
