"""Durations as operators write them: seconds ("300", "0.5") or ISO 8601 ("PT5M", "P1DT2H")."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_ISO_8601 = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)


def parse_duration(value: str | int | float) -> timedelta:
    """Parse seconds or an ISO 8601 duration (no years or months: their length varies).

    Anything else, including NaN, infinity and amounts too large for a `timedelta`, raises
    `ValueError` (never `OverflowError`, which settings validation would not turn into a message).
    """
    if isinstance(value, int | float):
        return _seconds(value, value)
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return _seconds(seconds, value)
    match = _ISO_8601.match(text)
    if not match:
        raise ValueError(_not_a_duration(value))
    parts = {name: float(amount) for name, amount in match.groupdict().items() if amount}
    try:
        return timedelta(**parts)
    except OverflowError:
        raise ValueError(f"{value!r} is too long a duration") from None


def _seconds(seconds: float, value: str | int | float) -> timedelta:
    if not math.isfinite(seconds):
        raise ValueError(_not_a_duration(value))
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{value!r} is too long a duration") from None


def _not_a_duration(value: str | int | float) -> str:
    return f"{value!r} is not a duration: give seconds (300) or ISO 8601 (PT5M, P1DT2H)"


def format_duration(value: timedelta) -> str:
    """ISO 8601, the inverse of `parse_duration` (microseconds kept as a seconds fraction).

    Negative durations have no ISO 8601 form: `ValueError`.
    """
    if value < timedelta(0):
        raise ValueError(f"{value} is negative: ISO 8601 durations cannot be")
    days, rest = value.days, value.seconds
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M")) if n)
    if value.microseconds:
        time += f"{seconds}.{value.microseconds:06d}".rstrip("0") + "S"
    elif seconds:
        time += f"{seconds}S"
    text = "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
    return text if text != "P" else "PT0S"
