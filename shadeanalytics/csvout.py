"""Formula-safe, diffable CSV files, each written atomically."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ReportError

__all__ = ["escape_cell", "unescape_cell", "write_csv"]

# A cell starting with one of these is a formula (or a line break) to a spreadsheet program;
# the full-width forms are folded to ASCII by some of them. A leading quote is escaped too, so
# that removing exactly one leading quote always gives the original text back.
_FULL_WIDTH = "\uff1d\uff0b\uff0d\uff20"  # the full-width forms of = + - @
_DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r", "\n", "'", *_FULL_WIDTH)
_DANGEROUS_PATTERN = f"^[=+\\-@\t\r\n'{_FULL_WIDTH}]"



def escape_cell(text: str) -> str:
    """``text`` made safe for spreadsheets: prefixed with ``'`` when it could start a formula."""
    return "'" + text if text.startswith(_DANGEROUS_START) else text


def unescape_cell(text: str) -> str:
    """The original of an ``escape_cell`` result."""
    return text[1:] if text.startswith("'") else text


def _time_text(values: pd.Series) -> list[str]:
    """ISO-8601 UTC text with a ``Z``, at the coarsest unit that loses nothing."""
    data = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    valid = data[~np.isnat(data)].astype(np.int64)
    unit = "s" if (valid % 1_000_000 == 0).all() else "ms" if (valid % 1000 == 0).all() else "us"
    text = np.datetime_as_string(data, unit=unit)
    return [("" if t == "NaT" else t + "Z") for t in text.tolist()]


def _column_cells(series: pd.Series) -> list[object]:
    """One column as Python values ready for ``csv.writer`` (NA as empty)."""
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        return _time_text(series)
    if pd.api.types.is_bool_dtype(dtype):
        return ["" if v is pd.NA or v is None else ("true" if v else "false")
                for v in series.astype("object").tolist()]
    if pd.api.types.is_float_dtype(dtype):
        rounded = series.astype("float64").round(6)
        return ["" if v != v else repr(v) for v in rounded.tolist()]
    if pd.api.types.is_integer_dtype(dtype):
        return ["" if v is pd.NA else v for v in series.astype("object").tolist()]
    text = series.astype("string")
    risky = text.str.contains(_DANGEROUS_PATTERN, regex=True, na=False).to_numpy()
    cells = text.astype("object").where(text.notna(), "").tolist()
    if risky.any():
        for i in np.flatnonzero(risky):
            cells[i] = "'" + cells[i]
    return cells


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash leaves the old file or the new, never half."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ReportError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ReportError(f"{path}: cannot write ({exc.strerror}); the previous file, if any, "
                          "is unchanged") from None


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str],
              columns: Sequence[str] | None = None) -> Path:
    """Write ``df`` (its ``columns``, in that order) as a formula-safe CSV, atomically."""
    path = Path(path)
    columns = list(columns if columns is not None else df.columns)
    cells = [_column_cells(df[c]) for c in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([escape_cell(c) for c in columns])
    writer.writerows(zip(*cells, strict=True))
    _atomic_write(path, buffer.getvalue())
    return path
