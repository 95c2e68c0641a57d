"""The clusters' and instances' raw rows as one Arrow struct array: the loader's hot path.

``tables`` converts a table's rows (tuples of the walk) in one ``pa.array`` call instead of a
Python list per column; a split walk's second process (``normalize``) converts its own
instances the same way and sends them as Arrow IPC, so that the loader converts only its part.
Every value pyarrow accepts here is one the general conversion passes unchanged, and comes
back from ``to_pylist`` as it was (text stays text: times and dollars are parsed later).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import pandas as pd

from .schema import Column

__all__ = ["ARROW_TABLES", "from_ipc", "ipc_into", "pyarrow_or_none", "rows_to_arrow",
           "struct_type", "to_ipc", "to_rows"]

#: the tables whose rows become Arrow columns in one conversion: the hot path of every load.
#: Their raw fields no column describes are flags (bool).
ARROW_TABLES = frozenset({"clusters", "instances"})
#: the Arrow type of each ``parse`` kind: a value of another Python type fails the conversion
_ARROW_KINDS = {"str": "large_string", "status": "large_string", "time": "large_string",
                "time_or_na": "large_string", "dollars": "large_string", "int": "int64",
                "cents": "int64", "bool": "bool_"}
_ARROW_DTYPES = {"string": "large_string", "boolean": "bool_", "Int64": "int64"}


def pyarrow_or_none() -> Any:
    """pyarrow (with ``pyarrow.compute``) when installed (the ``parquet`` extra), else None:
    it builds the columns from Python lists 3-5x faster than pandas' checks of every value,
    into the same arrays."""
    try:
        import pyarrow as pa
        import pyarrow.compute
    except ImportError:  # pragma: no cover - pyarrow is optional
        return None
    return pa


def struct_type(table: str, names: Sequence[str], described: Mapping[str, Column]) -> Any:
    """The Arrow struct of ``table``'s raw fields ``names``, or None: pyarrow missing, pandas
    not keeping text in Arrow, a table not in ``ARROW_TABLES`` or a field of no Arrow kind."""
    pa = pyarrow_or_none()
    if pa is None or table not in ARROW_TABLES or pd.StringDtype().storage != "pyarrow":
        return None
    fields = []
    for name in names:
        column = described.get(name)
        if name == "observed_at":
            kind = "large_string"
        elif column is None:
            kind = "bool_"
        elif column.parse == "derived":
            kind = _ARROW_DTYPES.get(column.dtype, "")
        else:
            kind = _ARROW_KINDS.get(column.parse, "")
        if not kind:
            return None
        fields.append(pa.field(name, getattr(pa, kind)()))
    return pa.struct(fields)


def rows_to_arrow(rows: list[tuple[Any, ...]], struct: Any) -> Any:
    """``rows`` as an Arrow struct array of type ``struct``, or None when a value is of another
    type than its column's (an object where text belongs, a string where a number belongs, an
    integer past 64 bits, a float in an integer column...): the general conversion then
    reports each such value by its path."""
    pa = pyarrow_or_none()
    try:
        array = pa.array(rows, type=struct)
    except (pa.ArrowException, TypeError, ValueError, OverflowError, UnicodeError):
        return None
    # pyarrow truncates a float into an integer field (1.5 -> 1) where the general conversion
    # refuses it: any float in an integer column sends the table the general way (one pass of
    # C-level iteration per integer column, no Python per value)
    for k, arrow_field in enumerate(struct):
        if arrow_field.type == pa.int64() and float in set(map(type, map(itemgetter(k), rows))):
            return None
    return array


def to_rows(array: Any) -> list[tuple[Any, ...]]:
    """The rows (tuples) of a struct array of ``rows_to_arrow``: the rows it was made of."""
    columns = [array.field(k).to_pylist() for k in range(array.type.num_fields)]
    return list(zip(*columns, strict=True))


def _write_ipc(array: Any, sink: Any) -> int:
    pa = pyarrow_or_none()
    batch = pa.RecordBatch.from_arrays(array.flatten(), schema=pa.schema(list(array.type)))
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return int(sink.tell())


def to_ipc(array: Any) -> bytes:
    """A struct array as Arrow IPC stream bytes (``from_ipc`` reads it back)."""
    sink = pyarrow_or_none().BufferOutputStream()
    _write_ipc(array, sink)
    return bytes(sink.getvalue())


def ipc_into(array: Any, target: Any) -> int:
    """A struct array written as Arrow IPC stream at the start of ``target`` (a writable
    buffer: shared memory), no copy in between; the bytes written, or 0 when it does not fit
    (nothing written)."""
    pa = pyarrow_or_none()
    size = _write_ipc(array, pa.MockOutputStream())
    if size > len(target):
        return 0
    return _write_ipc(array, pa.FixedSizeBufferWriter(pa.py_buffer(target)))


def from_ipc(data: Any) -> Any:
    """The struct array of ``to_ipc`` bytes or of ``ipc_into``'s buffer (its buffers view
    ``data``: no copy)."""
    pa = pyarrow_or_none()
    batch = pa.ipc.open_stream(pa.py_buffer(data)).read_next_batch()
    return pa.StructArray.from_arrays(batch.columns, fields=list(batch.schema))
