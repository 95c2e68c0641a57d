"""Formula-safe, diffable CSV files, each written atomically."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from .._files import atomic_write
from .._text import DOCUMENT_CONTROLS, for_csv

__all__ = ["csv_header", "csv_lines", "escape_cell", "unescape_cell", "write_csv",
           "write_text"]

# A cell starting with one of these is a formula (or a line break) to a spreadsheet program;
# the full-width forms are folded to ASCII by some of them. A leading quote is escaped too, so
# that removing exactly one leading quote always gives the original text back.
_FULL_WIDTH = "\uff1d\uff0b\uff0d\uff20"  # the full-width forms of = + - @
_DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r", "\n", "'", *_FULL_WIDTH)
_DANGEROUS_PATTERN = f"^[=+\\-@\t\r\n'{_FULL_WIDTH}]"
# A cell holding the delimiter, the quote character, CR or LF is quoted (quotes doubled). Not
# left to csv.writer: with "\n" line ends it leaves a lone CR unquoted, and a spreadsheet then
# starts a new row there, with whatever follows unescaped.
_NEEDS_QUOTES = (",", '"', "\r", "\n")


def escape_cell(text: str) -> str:
    """``text`` made safe for spreadsheets: prefixed with ``'`` when it could start a formula."""
    return "'" + text if text.startswith(_DANGEROUS_START) else text


def unescape_cell(text: str) -> str:
    """The original of an ``escape_cell`` result."""
    return text[1:] if text.startswith("'") else text


def _quote(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in _NEEDS_QUOTES) else cell


def _quote_cells(cells: list[str]) -> list[str]:
    """``cells`` with the few that need it quoted (minimal quoting, as RFC 4180)."""
    joined = "".join(cells)
    if not any(ch in joined for ch in _NEEDS_QUOTES):
        return cells
    return [_quote(cell) for cell in cells]


def _by_value(codes: np.ndarray, texts: list[str]) -> list[str]:
    """``texts[code]`` for every code: each distinct value is formatted once."""
    return np.asarray(texts, dtype=object)[codes].tolist() if len(codes) else []


def _time_text(values: pd.Series) -> list[str]:
    """ISO-8601 UTC text with a ``Z``, at the coarsest unit that loses nothing."""
    return _by_value(*_time_codes(values))


def _time_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """``_time_text`` as each cell's code and the text of each code."""
    data = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    # a fleet shares few distinct instants (a cluster's members, one poll): format each once
    codes, uniques = pd.factorize(data.view(np.int64))  # NaT is one more value here
    nat = np.isnat(uniques.view("datetime64[us]"))
    valid = uniques[~nat]
    unit: Literal["s", "ms", "us"] = (
        "s" if (valid % 1_000_000 == 0).all() else "ms" if (valid % 1000 == 0).all() else "us")
    if valid.size and valid.min() >= _FIRST_US and valid.max() <= _LAST_US:
        texts = _iso_texts(np.where(nat, 0, uniques), unit)
        for i in np.flatnonzero(nat).tolist():  # one NaT at most: factorized
            texts[i] = ""
        return codes, texts
    text = np.datetime_as_string(uniques.view("datetime64[us]"), unit=unit)
    return codes, [("" if t == "NaT" else t + "Z") for t in text.tolist()]


#: The instants ``_iso_texts`` writes: years 1000 to 9999 (four digits).
_FIRST_US = -30_610_224_000_000_000
_LAST_US = 253_402_300_799_999_999
_DIGITS = {"s": 0, "ms": 3, "us": 6}


def _iso_texts(values: np.ndarray, unit: Literal["s", "ms", "us"]) -> list[str]:
    """``values`` (µs since the epoch, years 1000 to 9999) as ``np.datetime_as_string``
    writes them at ``unit``, with a ``Z``: each character computed for all values at once
    (the proleptic Gregorian calendar, as numpy's) instead of one text at a time."""
    days, micros = np.divmod(values, 86_400_000_000)
    # the civil date of a day number (H. Hinnant's days_from_civil, inverted)
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    seconds, fraction = np.divmod(micros, 1_000_000)
    digits = _DIGITS[unit]
    fraction //= 10 ** (6 - digits)
    width = 21 + (digits + 1 if digits else 0)  # a line each: ...Z\n
    chars = np.empty((len(values), width), dtype=np.uint8)
    fields = [(year, 4), ("-", 1), (month, 2), ("-", 1), (day, 2), ("T", 1),
              (seconds // 3600, 2), (":", 1), (seconds // 60 % 60, 2), (":", 1),
              (seconds % 60, 2), *([(".", 1), (fraction, digits)] if digits else []),
              ("Z", 1), ("\n", 1)]
    at = 0
    for field, size in fields:
        if isinstance(field, str):
            chars[:, at] = ord(field)
        else:
            small = field.astype(np.int32)  # < 10**6
            for k in range(size):
                chars[:, at + k] = ord("0") + small // 10 ** (size - 1 - k) % 10
        at += size
    texts: list[str] = chars.tobytes().decode("ascii").split("\n")[:-1]
    return texts


#: Columns of up to this many cells are formatted cell by cell (factorizing costs more).
_FEW = 64


def _column_cells(series: pd.Series) -> list[str]:
    """One column as the text of its CSV cells (NA as empty, quoted where ``csv`` would)."""
    codes, texts = _column_codes(series)
    return texts if codes is None else _by_value(codes, texts)


def _column_codes(series: pd.Series) -> tuple[np.ndarray | None, list[str]]:
    """``_column_cells`` as each cell's code (-1: the last text) and the text of each code,
    or as no codes and the cells themselves (a column of mostly distinct texts)."""
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        return _time_codes(series)
    if pd.api.types.is_bool_dtype(dtype):
        codes, uniques = pd.factorize(series)  # NA is code -1: the last text, ""
        return codes, [("true" if v else "false") for v in uniques] + [""]
    if pd.api.types.is_float_dtype(dtype):
        values = series.astype("float64").to_numpy()
        # past 2**52 a float has no fraction to round, and rounding it would overflow to inf
        with np.errstate(over="ignore", invalid="ignore"):
            rounded = np.where(np.abs(values) < 2.0**52, np.round(values, 6), values)
        # + 0.0 turns -0.0 (a zero difference, or a tiny negative rounded) into 0.0: no "-0.0"
        rounded = rounded + 0.0
        codes, uniques = pd.factorize(rounded.view(np.int64))
        return codes, _float_texts(uniques.view(np.float64))
    if pd.api.types.is_integer_dtype(dtype):
        codes, uniques = pd.factorize(series)  # NA is code -1: the last text, ""
        return codes, [str(int(v)) for v in uniques] + [""]
    if isinstance(dtype, pd.CategoricalDtype) and len(series) > _FEW:
        # the text of each category, once (as ``astype("string")`` of the column has it)
        categories = pd.Series(dtype.categories).astype("string")
        return series.cat.codes.to_numpy(), [*_column_cells(categories), ""]  # NA: -1
    if isinstance(dtype, pd.StringDtype) and len(series) > _FEW and not _distinct(series):
        # a cell's text is its value's alone: each distinct text (a fleet repeats its clouds,
        # statuses, ids) is escaped and quoted once; NA is code -1: the last text, ""
        codes, uniques = pd.factorize(series)
        if len(uniques) < len(series) // 2:
            return codes, [*_column_cells(pd.Series(uniques, dtype=dtype)), ""]
    if isinstance(dtype, pd.StringDtype):
        cells = series.to_numpy(dtype=object, na_value="").tolist()
        if _plain(cells):  # no cell to escape, clean or quote: the common case, at C speed
            return None, cells
    text = series.astype("string")
    risky = text.str.contains(_DANGEROUS_PATTERN, regex=True, na=False).to_numpy()
    if pd.api.types.is_object_dtype(dtype):  # numbers in a mixed column stay numbers
        risky &= np.fromiter((type(v) is str for v in series.tolist()), bool, len(series))
    cells = text.to_numpy(dtype=object, na_value="").tolist()
    controls = text.str.contains(DOCUMENT_CONTROLS, regex=True, na=False).to_numpy()
    if controls.any():  # a NUL or ESC never reaches the file (tab, CR, LF are quoted)
        for i in np.flatnonzero(controls):
            cells[i] = for_csv(cells[i])
    if risky.any():
        for i in np.flatnonzero(risky):
            cells[i] = "'" + cells[i]
    return None, _quote_cells(cells)


def _float_texts(values: np.ndarray) -> list[str]:
    """``repr`` of each of ``values`` (floats), NaN as empty, several times faster than
    ``repr`` one at a time: a value that is the double nearest a number of millionths k, 100 <=
    |k| < 10**15 (what rounding to 6 decimals gives, from 0.0001 up to a billion), is written
    as that decimal (``_decimal_texts``); a whole number below 1e16 by way of its integer
    (``repr(2.0)`` is ``"2.0"``); the rest by ``repr``."""
    with np.errstate(invalid="ignore", over="ignore"):
        millionths = np.rint(values * 1e6)
        decimal = (np.abs(millionths) >= 100) & (np.abs(millionths) < 1e15)
        decimal &= millionths / 1e6 == values  # the double nearest k / 10**6: its repr is k's
        whole = ~decimal & (values == np.floor(values)) & (np.abs(values) < 1e16)
    rest = ~(decimal | whole)
    text = np.empty(len(values), dtype=object)
    if decimal.any():
        text[decimal] = _objects(_decimal_texts(millionths[decimal].astype(np.int64)))
    if whole.any():
        text[whole] = _objects([f"{v}.0" for v in values[whole].astype(np.int64).tolist()])
    if rest.any():
        text[rest] = _objects(["" if v != v else repr(v) for v in values[rest].tolist()])
    return text.tolist()


def _decimal_texts(millionths: np.ndarray) -> list[str]:
    """The decimal text of each k / 10**6 (int64 k, 100 <= |k| < 10**15) as ``repr`` writes
    the double nearest it (at most 15 significant digits: the same digits, positional, no
    trailing zeros but one): each character computed for all values at once, on a line of
    its own with NULs for the characters a value has not, the NULs then dropped."""
    negative = millionths < 0
    whole, fraction = np.divmod(np.abs(millionths), 1_000_000)  # whole < 10**9
    chars = np.zeros((len(millionths), 18), dtype=np.uint8)  # -123456789.123456\n
    chars[:, 0] = np.where(negative, ord("-"), 0)
    for j in range(9):  # the whole part's digits, most significant first, no leading zeros
        place = 10 ** (8 - j)
        shown = (whole >= place) | (j == 8)
        chars[:, 1 + j] = np.where(shown, ord("0") + whole // place % 10, 0)
    chars[:, 10] = ord(".")
    for j in range(6):  # the fraction's digits, the first always, no trailing zeros
        shown = (j == 0) | (fraction % 10 ** (6 - j) != 0)
        chars[:, 11 + j] = np.where(shown, ord("0") + fraction // 10 ** (5 - j) % 10, 0)
    chars[:, 17] = ord("\n")
    flat = chars.ravel()
    texts: list[str] = flat[flat != 0].tobytes().decode("ascii").split("\n")[:-1]
    return texts


def _objects(texts: list[str]) -> np.ndarray:
    """``texts`` as an object array (never numpy's fixed-width text)."""
    array = np.empty(len(texts), dtype=object)
    array[:] = texts
    return array


#: Rows sampled to guess whether a text column is worth factorizing.
_SAMPLE = 1024


def _distinct(series: pd.Series) -> bool:
    """Whether ``series`` (text) looks like one of distinct values (ids, names), by its first
    ``_SAMPLE`` cells: then factorizing it would be work thrown away."""
    head = series.iloc[:_SAMPLE]
    return head.nunique(dropna=False) > len(head) * 3 // 4


_CONTROL = re.compile(DOCUMENT_CONTROLS)


def _plain(cells: list[str]) -> bool:
    """Whether no cell of ``cells`` (text) needs an escape, a control cleaned or quotes: by
    each cell's first character, and substring searches over the cells joined by NUL (a
    cell holding a NUL is a control)."""
    if not {cell[:1] for cell in cells}.isdisjoint(_DANGEROUS_START):
        return False
    joined = "\x00".join(cells)
    return not (any(ch in joined for ch in _NEEDS_QUOTES)
                or joined.count("\x00") != max(len(cells) - 1, 0)
                or (not joined.isascii() and _CONTROL.search(joined) is not None)
                or (joined.isascii() and _ascii_control(joined)))


_ASCII_CONTROLS = bytes([*range(0, 9), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def _ascii_control(text: str) -> bool:
    """Whether ASCII ``text`` holds a control of ``DOCUMENT_CONTROLS`` (besides NUL)."""
    data = text.encode("ascii")
    return len(data.translate(None, _ASCII_CONTROLS)) != len(data) - data.count(0)


def _merged(columns: list[tuple[np.ndarray | None, list[str]]], rows: int
            ) -> list[tuple[np.ndarray | None, list[str]]]:
    """``columns`` (of ``_column_codes``) with neighbours of few distinct texts each made one
    (a fleet's cloud, region, status and flags): the cells of such a run of columns are their
    texts joined by ``,``, one text per distinct combination, so that the rows are joined
    from fewer, longer cells."""
    out: list[tuple[np.ndarray | None, list[str]]] = []
    for codes, texts in columns:
        if out and codes is not None and texts:
            before, known = out[-1]
            if before is not None and known and len(known) * len(texts) <= rows // 8:
                # -1 (NA) is the last text: codes made non-negative, then paired
                pairs = (before.astype(np.int64) % len(known)) * len(texts) + (
                    codes.astype(np.int64) % len(texts))
                paired, distinct = pd.factorize(pairs)
                out[-1] = (paired, [known[p // len(texts)] + "," + texts[p % len(texts)]
                                    for p in distinct.tolist()])
                continue
        out.append((codes, texts))
    return out


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, as ``write_csv`` writes its files."""
    path = Path(path)
    atomic_write(path, text)
    return path


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str],
              columns: Sequence[str] | None = None, *, private: bool = False) -> Path:
    """Write ``df`` (its ``columns``, in that order) as a formula-safe CSV, atomically.

    Cells: text with a formula-like start escaped (``escape_cell``), ``true`` / ``false``,
    floats rounded to 6 decimals (``repr``), ISO-8601 UTC times with a ``Z`` at the coarsest
    lossless unit of the column, NA empty; minimal quoting (a cell holding ``,``, ``"``, CR or
    LF is quoted, quotes doubled: what ``csv`` readers expect), rows
    ended by ``\\n``. Built a column at a time (each distinct number or time formatted once)
    and joined in one pass, several times faster than ``csv.writer``. ``private``: the file
    holds network columns and gets an owner-only mode (:func:`file_mode`). A zero is written
    ``0.0``, never ``-0.0``.
    """
    path = Path(path)
    columns = list(columns if columns is not None else df.columns)
    # the header and the rows joined at once (not a second copy of the rows to add it)
    atomic_write(path, _lines(df, columns, csv_header(columns)), private=private)
    return path


def csv_header(columns: Sequence[str]) -> str:
    """The header line ``write_csv`` writes for ``columns``."""
    return ",".join(_quote(escape_cell(str(c))) for c in columns) + "\n"


def csv_lines(df: pd.DataFrame, columns: Sequence[str]) -> str:
    """The rows of ``df`` (its ``columns``) as ``write_csv`` writes them, each ended by
    ``\\n`` (no header): a file written a piece at a time is the header then the pieces. A
    time column is written at the coarsest unit that loses nothing in this piece."""
    return _lines(df, columns)


def _lines(df: pd.DataFrame, columns: Sequence[str], header: str = "") -> str:
    """``header`` (a line, or nothing) then ``csv_lines`` of ``df``, made in one join."""
    if len(columns) == 1:
        # a row of one empty field is written "" (a blank line would be no row at all)
        cells = [['""' if cell == "" else cell for cell in _column_cells(df[columns[0]])]]
    else:
        cells = [texts if codes is None else _by_value(codes, texts)
                 for codes, texts in _merged([_column_codes(df[c]) for c in columns], len(df))]
    rows = map(",".join, zip(*cells, strict=True))
    # each row, and the header, ended by "\n": joined with a last, empty line
    return "\n".join(itertools.chain((header[:-1],) if header else (), rows, ("",)))
