"""Durations as operators write them: seconds or ISO 8601, no years or months."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("300", timedelta(minutes=5)),
        ("0", timedelta(0)),
        ("0.5", timedelta(milliseconds=500)),
        (" 300 ", timedelta(minutes=5)),
        (300, timedelta(minutes=5)),
        (1.5, timedelta(seconds=1.5)),
    ],
)
def test_plain_seconds(raw: str | int | float, expected: timedelta) -> None:
    assert parse_duration(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("PT5M", timedelta(minutes=5)),
        ("pt5m", timedelta(minutes=5)),
        ("PT30S", timedelta(seconds=30)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("P1D", timedelta(days=1)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("P2W", timedelta(weeks=2)),
        ("PT1.5H", timedelta(minutes=90)),
    ],
)
def test_iso_8601(raw: str, expected: timedelta) -> None:
    assert parse_duration(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "soon",
        "5m",
        "5 minutes",
        "P",
        "PT",
        "P1DT",
        "PT5M garbage",
        "-PT5M",
        "P1Y",
        "P1M",
        "P1Y2M3D",
        "nan",
        "inf",
        "-inf",
    ],
)
def test_garbage_is_rejected(raw: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(raw)


@pytest.mark.parametrize("raw", ["1e300", "P999999999999D", 10**20])
def test_duration_too_long_for_timedelta_is_a_value_error(raw: str | int) -> None:
    with pytest.raises(ValueError, match="too long"):
        parse_duration(raw)


def test_rejection_names_the_value_and_the_accepted_forms() -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration("P1Y")
    assert str(caught.value).startswith("'P1Y' ")
    assert "PT5M" in str(caught.value) and "300" in str(caught.value)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(0), "PT0S"),
        (timedelta(seconds=30), "PT30S"),
        (timedelta(minutes=5), "PT5M"),
        (timedelta(hours=1, minutes=30), "PT1H30M"),
        (timedelta(days=1), "P1D"),
        (timedelta(days=1, hours=2), "P1DT2H"),
        (timedelta(days=2, seconds=3), "P2DT3S"),
        (timedelta(milliseconds=500), "PT0.5S"),
    ],
)
def test_format_duration(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


def test_negative_duration_cannot_be_formatted() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-5))


@settings(database=None)
@given(st.timedeltas(min_value=timedelta(0)))
def test_format_then_parse_is_the_identity(duration: timedelta) -> None:
    assert parse_duration(format_duration(duration)) == duration


@settings(database=None)
@given(st.integers(min_value=0, max_value=10**9))
def test_whole_seconds_round_trip_through_both_forms(seconds: int) -> None:
    duration = parse_duration(str(seconds))
    assert duration == timedelta(seconds=seconds)
    assert parse_duration(format_duration(duration)) == duration
