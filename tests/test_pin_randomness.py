"""The real PIN generator draws every digit uniformly and independently (chi-square tests).

Thresholds are the chi-square quantiles at p = 1e-6 (Wilson-Hilferty), so a sound generator
fails about once in a million runs, while a biased one fails at this sample size: a byte taken
modulo 10 (chi-square about 360 over the million digits against 46), a PIN drawn from 9,000 of
the 10,000 four-digit values (about 21,000 against 10,700).
"""

from __future__ import annotations

import math
from collections import Counter

from activities.pins import secret_pin

DRAWS = 100_000
Z_ONE_IN_A_MILLION = 4.753


def chi_square(counts: Counter[int], bins: int) -> float:
    """Against the uniform distribution over the values 0 .. bins - 1."""
    expected = sum(counts.values()) / bins
    return sum((counts[value] - expected) ** 2 for value in range(bins)) / expected


def critical_value(degrees: int) -> float:
    h = 2 / (9 * degrees)
    return degrees * (1 - h + Z_ONE_IN_A_MILLION * math.sqrt(h)) ** 3


def test_the_digits_of_ten_digit_pins_are_uniform() -> None:
    counts = Counter(int(digit) for _ in range(DRAWS) for digit in secret_pin(10))

    assert chi_square(counts, 10) < critical_value(9)


def test_each_position_of_a_ten_digit_pin_is_uniform_over_the_ten_digits() -> None:
    pins = [secret_pin(10) for _ in range(DRAWS)]

    for position in range(10):
        counts = Counter(int(pin[position]) for pin in pins)
        assert chi_square(counts, 10) < critical_value(9), f"position {position}"


def test_four_digit_pins_cover_all_ten_thousand_values_uniformly() -> None:
    counts = Counter(int(secret_pin(4)) for _ in range(DRAWS))

    assert chi_square(counts, 10_000) < critical_value(9_999)


def test_consecutive_digits_are_independent() -> None:
    pins = [secret_pin(10) for _ in range(DRAWS // 5)]
    pairs = Counter(int(pin[i : i + 2]) for pin in pins for i in range(0, 10, 2))

    assert chi_square(pairs, 100) < critical_value(99)
