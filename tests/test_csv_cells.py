"""The CSV writer's shortcuts give the bytes of the plain rule: whole floats written by way of
their integer, categories formatted once, text columns with nothing to escape passed through,
long distinct text columns not factorized, times at the column's coarsest unit."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shadeanalytics._text import for_csv
from shadeanalytics.output import csvout
from shadeanalytics.output.csvout import csv_lines, escape_cell, write_csv

Unit = Literal["s", "ms", "us"]


def _cells(path: Path) -> list[str]:
    """The first column of a written CSV whose last column is all ``0``, a cell per row."""
    return [line.removesuffix(",0") for line in path.read_bytes().decode().split("\n")[1:-1]]


def test_floats_whole_and_fractional_are_written_as_repr(tmp_path: Path) -> None:
    """Whole floats below 1e16 (by their integer) and the rest (by repr) as repr writes them."""
    values = [
        2.0,
        -7.0,
        0.0,
        -0.0,
        1e15,
        9999999999999998.0,
        1e16,
        -1e16,
        2.0**53,
        0.5,
        -1.25,
        1e-7,
        1234567.1234565,
        math.nan,
        math.inf,
        -math.inf,
        1e300,
        3.0,
    ]
    write_csv(pd.DataFrame({"x": values, "k": 0}), tmp_path / "f.csv")
    assert _cells(tmp_path / "f.csv") == [
        "2.0",
        "-7.0",
        "0.0",
        "0.0",
        "1000000000000000.0",
        "9999999999999998.0",
        "1e+16",
        "-1e+16",
        "9007199254740992.0",
        "0.5",
        "-1.25",
        "0.0",
        "1234567.123456",
        "",
        "inf",
        "-inf",
        "1e+300",
        "3.0",
    ]


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    st.lists(
        st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**60), 2**60).map(float),
        min_size=1,
        max_size=80,
    )
)
def test_any_float_column_is_written_as_repr_of_its_rounded_value(values: list[float]) -> None:
    """Every float is written ``repr(round(v, 6) + 0.0)`` (NaN empty), whole or not."""
    arr = np.array(values, dtype="float64")
    body = csv_lines(pd.DataFrame({"x": arr, "k": 0}), ["x", "k"])
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = np.where(np.abs(arr) < 2.0**52, np.round(arr, 6), arr) + 0.0
    assert body == "".join(("" if v != v else repr(v)) + ",0\n" for v in rounded.tolist())


def test_a_long_categorical_column_is_written_as_its_text(tmp_path: Path) -> None:
    """Over 64 rows, a category column's cells are its values' text: escaped, quoted, NA empty,
    the same as the column as text; numeric categories are text too (``-2.0`` escaped)."""
    values = ["=cmd", "plain", None, "a,b", "nul\x00x"] * 20
    write_csv(pd.DataFrame({"c": pd.Categorical(values), "k": 0}), tmp_path / "c.csv")
    write_csv(pd.DataFrame({"c": pd.array(values, dtype="string"), "k": 0}), tmp_path / "s.csv")
    assert _cells(tmp_path / "c.csv")[:5] == ["'=cmd", "plain", "", '"a,b"', for_csv("nul\x00x")]
    assert (tmp_path / "c.csv").read_bytes() == (tmp_path / "s.csv").read_bytes()
    write_csv(
        pd.DataFrame({"n": pd.Categorical([1.5, -2.0, None] * 30), "k": 0}), tmp_path / "n.csv"
    )
    assert _cells(tmp_path / "n.csv")[:3] == ["1.5", "'-2.0", ""]


@pytest.mark.parametrize(
    ("odd", "written"),
    [
        ("=1+1", "'=1+1"),
        ("-5", "'-5"),
        ("\uff1dx", "'\uff1dx"),
        ("a,b", '"a,b"'),
        ('say "hi"', '"say ""hi"""'),
        ("x\ry", '"x\ry"'),
        ("tab\tin", "tab\tin"),
        ("bell\x07", for_csv("bell\x07")),
        ("del\x7f", for_csv("del\x7f")),
        ("zw\u200bj", for_csv("zw\u200bj")),
        ("c1\x85", for_csv("c1\x85")),
        ("nul\x00", for_csv("nul\x00")),
        ("caf\u00e9", "caf\u00e9"),
        ("'q", "''q"),
    ],
)
@pytest.mark.parametrize("at", [0, 1, 99])
def test_one_odd_cell_among_distinct_ids_is_still_escaped(
    tmp_path: Path, odd: str, written: str, at: int
) -> None:
    """A long column of distinct ids (not factorized) with one cell to escape, clean or quote,
    first, second or last: that cell alone changes."""
    ids = [f"id-{k:04d}" for k in range(100)]
    ids[at] = odd
    write_csv(
        pd.DataFrame({"id": pd.array(ids, dtype="string"), "n": range(100)}), tmp_path / "i.csv"
    )
    cells = [
        line.rsplit(",", 1)[0]
        for line in (tmp_path / "i.csv").read_bytes().decode().split("\n")[1:-1]
    ]
    assert cells[at] == written
    assert [c for k, c in enumerate(cells) if k != at] == [i for k, i in enumerate(ids) if k != at]


def test_times_at_the_coarsest_unit_with_nat_over_many_rows(tmp_path: Path) -> None:
    """A time column of 100 rows with NaT: seconds when every instant is whole, else ms."""
    base = pd.Timestamp("2026-03-01T23:59:59Z")
    times = [base + pd.Timedelta(seconds=k) for k in range(99)] + [pd.NaT]
    write_csv(
        pd.DataFrame({"t": pd.array(times, dtype="datetime64[us, UTC]"), "k": 0}),
        tmp_path / "s.csv",
    )
    cells = _cells(tmp_path / "s.csv")
    assert cells[:2] == ["2026-03-01T23:59:59Z", "2026-03-02T00:00:00Z"]
    assert cells[-1] == ""
    times[5] = base + pd.Timedelta(milliseconds=1500)
    write_csv(
        pd.DataFrame({"t": pd.array(times, dtype="datetime64[us, UTC]"), "k": 0}),
        tmp_path / "ms.csv",
    )
    cells = _cells(tmp_path / "ms.csv")
    assert cells[:2] == ["2026-03-01T23:59:59.000Z", "2026-03-02T00:00:00.000Z"]
    assert cells[5] == "2026-03-02T00:00:00.500Z"
    assert cells[-1] == ""


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    st.lists(
        st.text(
            alphabet=st.sampled_from(
                [*"=+-@'\t\r\n,\"ab\x00\x07\x7f\x85", "\u200b", "\uff0b", "\u00e9"]
            ),
            max_size=4,
        ),
        min_size=1,
        max_size=90,
    )
)
def test_any_text_column_is_written_cell_by_cell(texts: list[str]) -> None:
    """Every text cell is ``for_csv``-cleaned, formula-escaped and quoted as needed, whatever
    path the column takes (passed through, factorized or cell by cell)."""

    def expected(text: str) -> str:
        cell = for_csv(text)
        cell = "'" + cell if escape_cell(text) != text else cell
        return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\r\n') else cell

    body = csv_lines(pd.DataFrame({"t": pd.array(texts, dtype="string"), "n": 0}), ["t", "n"])
    assert body == "".join(f"{expected(t)},0\n" for t in texts)


def test_neighbouring_columns_of_few_values_are_written_as_each_alone() -> None:
    """200 rows of flags, counts, categories, text and times with NA among them (columns of
    few values are paired before the rows are joined): every cell as that column alone."""
    n = 200
    flags = [True, False, None, True]
    counts = [1, None, -3]
    kinds = ["=x", None, "a,b", "plain", "b"]
    texts = ["cpu", "gpu", None, "-1"]
    times = [pd.Timestamp("2026-01-01T00:00:00Z"), pd.NaT]
    df = pd.DataFrame(
        {
            "flag": pd.array([flags[k % 4] for k in range(n)], dtype="boolean"),
            "count": pd.array([counts[k % 3] for k in range(n)], dtype="Int64"),
            "kind": pd.Categorical([kinds[k % 5] for k in range(n)]),
            "text": pd.array([texts[k % 4] for k in range(n)], dtype="string"),
            "at": pd.array([times[k % 2] for k in range(n)], dtype="datetime64[us, UTC]"),
            "id": pd.array([f"i{k}" for k in range(n)], dtype="string"),
            "price": [0.5 * (k % 3) for k in range(n)],
        }
    )
    flag_text = {True: "true", False: "false", None: ""}
    kind_text = {"=x": "'=x", None: "", "a,b": '"a,b"', "plain": "plain", "b": "b"}
    text_text = {"cpu": "cpu", "gpu": "gpu", None: "", "-1": "'-1"}
    expected = "".join(
        f"{flag_text[flags[k % 4]]},{'' if counts[k % 3] is None else counts[k % 3]},"
        f"{kind_text[kinds[k % 5]]},{text_text[texts[k % 4]]},"
        f"{'2026-01-01T00:00:00Z' if k % 2 == 0 else ''},i{k},{0.5 * (k % 3)!r}\n"
        for k in range(n)
    )
    assert csv_lines(df, list(df.columns)) == expected


@pytest.mark.parametrize(
    ("scale", "units"), [(1_000_000, ("s", "ms", "us")), (1000, ("ms", "us")), (1, ("us",))]
)
def test_instants_are_written_as_numpy_writes_them(scale: int, units: tuple[Unit, ...]) -> None:
    """20,000 instants of years 1000 to 9999 (leap days, the epoch, before it, the range's
    ends) at each unit that holds them: the text of ``np.datetime_as_string`` and a ``Z``."""
    first, last = -30_610_224_000_000_000, 253_402_300_799_999_999
    rng = np.random.default_rng(scale)
    edges = [
        first,
        last,
        0,
        -1,
        951_782_400_000_000,
        951_868_799_999_999,
        4_107_542_400_000_000,
        -2_203_891_200_000_001,
    ]
    values = np.r_[rng.integers(first, last, 20_000), edges] // scale * scale
    values = values[(values >= first) & (values <= last)]
    column = pd.Series(values.view("datetime64[us]")).dt.tz_localize("UTC")
    for unit in units:
        expected = [
            t + "Z"
            for t in np.datetime_as_string(values.view("datetime64[us]"), unit=unit).tolist()
        ]
        if unit == units[0]:  # the column's own unit: its coarsest lossless one
            assert csv_lines(pd.DataFrame({"t": column, "k": 0}), ["t", "k"]) == "".join(
                f"{t},0\n" for t in expected
            )
        assert csvout._iso_texts(values, unit) == expected


def test_instants_outside_four_digit_years_are_written_as_numpy_writes_them() -> None:
    """Years past 9999 and before 1000 (a hostile clock): numpy's text, a ``Z``, NaT empty."""
    values = np.array(
        [
            253_402_300_800_000_000,
            -30_610_224_000_000_001 // 1_000_000 * 1_000_000,
            0,
            np.iinfo(np.int64).min,
        ]
        * 20
    )
    column = pd.Series(values.view("datetime64[us]")).dt.tz_localize("UTC")
    assert csv_lines(pd.DataFrame({"t": column, "k": 0}), ["t", "k"]).split("\n")[:4] == [
        "10000-01-01T00:00:00Z,0",
        "0999-12-31T23:59:59Z,0",
        "1970-01-01T00:00:00Z,0",
        ",0",
    ]


def test_floats_of_every_magnitude_are_written_as_repr() -> None:
    """60,000 values from 1e-8 to 1e16, rounded to 6 decimals as written (cents, millionths,
    the 0.0001 and billion edges, whole numbers), and unrounded: each text is ``repr``'s."""
    rng = np.random.default_rng(24)
    raw = rng.normal(0, 1, 50_000) * 10.0 ** rng.integers(-8, 17, 50_000)
    edges = [
        0.0001,
        -0.0001,
        0.00005,
        999_999_999.999999,
        -999_999_999.999999,
        1e9,
        1e15,
        100.000001,
        0.1,
        2.675,
        1.005,
        5e-324,
        1.7e308,
        math.nan,
        math.inf,
        -math.inf,
    ]
    raw = np.r_[raw, np.round(rng.uniform(-1e4, 1e4, 10_000), 2), edges]
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = np.where(np.abs(raw) < 2.0**52, np.round(raw, 6), raw) + 0.0
    for values in (rounded, raw):
        assert csvout._float_texts(values) == ["" if v != v else repr(v) for v in values.tolist()]
