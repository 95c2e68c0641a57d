"""``costs.exact_sums``: each group's sum exact (as a fraction), whatever the exponents, the
order of the rows or how many rows are added up at once."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from shadeanalytics.analytics import costs


def _exact(codes: np.ndarray, groups: int, values: np.ndarray) -> list[Fraction]:
    """Each group's sum of its finite values, as a fraction."""
    totals = [Fraction(0)] * groups
    for code, value in zip(codes.tolist(), values.tolist(), strict=True):
        if math.isfinite(value):
            totals[code] += Fraction(value)
    return totals


def _fraction(total: int | float) -> Fraction:
    """An exact sum (an integer count of 2**-1126) as a fraction."""
    assert isinstance(total, int)
    return Fraction(total, 1 << costs._SCALE)


def test_sums_across_every_exponent_are_exact() -> None:
    """Subnormals, the largest doubles, cents and their negatives: exact, correctly rounded."""
    values = np.array(
        [
            5e-324,
            -5e-324,
            1.7e308,
            -1.7e308,
            1e-300,
            0.1,
            0.2,
            0.3,
            -0.6,
            2.0**60,
            1.0,
            -(2.0**60),
            3.5e10,
            0.0,
            -0.0,
            1e-7,
            math.nan,
        ]
    )
    codes = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 4])
    totals, known = costs.exact_sums(codes, 5, values)
    assert known.tolist() == [2, 3, 4, 3, 4]
    assert [_fraction(t) for t in totals] == _exact(codes, 5, values)
    # 0.1 + 0.2 + 0.3 - 0.6 of the doubles themselves, correctly rounded (not a float sum)
    assert costs.as_float(totals[2]) == float(
        Fraction(0.1) + Fraction(0.2) + Fraction(0.3) - Fraction(0.6)
    )
    assert costs.as_float(totals[3]) == 1.0
    assert costs.as_float(totals[1]) == 1e-300


@pytest.mark.parametrize("rows", [1, 3, 1 << 22])
def test_random_sums_are_exact_in_any_order_and_any_chunk(
    rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2,000 values over 300 orders of magnitude in 17 groups, with infinities: the finite
    sums are exact, the same reversed, added ``rows`` rows at a time."""
    monkeypatch.setattr(costs, "_ROWS", rows)
    rng = np.random.default_rng(24)
    values = rng.normal(0, 1, 2000) * 10.0 ** rng.integers(-150, 150, 2000)
    values[::97] = math.inf
    codes = rng.integers(0, 17, 2000)
    totals, known = costs.exact_sums(codes, 17, values)
    backwards, _ = costs.exact_sums(codes[::-1], 17, values[::-1])
    expected = _exact(codes, 17, values)
    for g in range(17):
        if isinstance(totals[g], float):  # a group holding an infinity sums as floats
            assert totals[g] == math.inf
        else:
            assert _fraction(totals[g]) == expected[g]
        assert repr(totals[g]) == repr(backwards[g])
    assert known.sum() == 2000
