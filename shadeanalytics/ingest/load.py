"""Sources (dicts, JSON text, files, folders, globs) -> ``Tables``.

A source is any of: a parsed response (dict or list), JSON text (``str`` starting with ``{`` or
``[``) or bytes, a path to a ``.json``, ``.jsonl`` (one response per line) or ``.json.gz`` /
``.jsonl.gz`` file, a folder (read recursively, in name order), a glob pattern, or an iterable
mixing these. A response may be wrapped in a snapshot envelope
``{"observed_at": "<RFC 3339>", "endpoint": "/clusters", "response": {...}}`` (what the
collector and the sample data write); ``observed_at`` then dates every row it yields.
"""

from __future__ import annotations

import gc
import glob
import os
import stat
import warnings
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import orjson
import pandas as pd

from .._common import progress
from ..errors import DataWarning, InputError, InvalidJSONError, printable
from .decode import decode_list_response
from .normalize import Document, Lines, normalize, splits
from .tables import Tables, build_tables

try:  # python-isal (igzip): zlib's interface, about 1.4x faster expanding a .gz source
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - a platform without its wheel: the standard library
    _zlib = zlib  # type: ignore[misc]
#: what expanding a damaged gzip source raises (isal's error is not zlib's)
_GZIP_ERRORS = (OSError, EOFError, zlib.error, cast(type[Exception], _zlib.error))

__all__ = ["MAX_SOURCE_BYTES", "Source", "gc_paused", "iter_documents", "read", "read_clusters",
           "read_instance_types", "read_instances", "read_regular_file"]

Source = Any  # dict | list | str | bytes | os.PathLike | Iterable of these

_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
#: The largest source file read, and the most a ``.gz`` source may expand to: far above a
#: year of snapshots of a large fleet, far below what would exhaust a machine's memory.
MAX_SOURCE_BYTES = 2 * 1024**3
_CHUNK = 1024 * 1024
_GLOB_CHARS = frozenset("*?[")
_KINDS = {
    "clusters": frozenset({"clusters"}),
    "instances": frozenset({"instances"}),
    "instance_types": frozenset({"instance_types"}),
}


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: parsing creates millions of objects and no cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parse(data: bytes | str, source: str) -> Any:
    if not data.strip() if isinstance(data, str) else not bytes(data).strip():
        raise InvalidJSONError("empty, expected JSON", source=source)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if isinstance(data, bytes | bytearray | memoryview):
            try:
                bytes(data).decode("utf-8")
            except UnicodeDecodeError as bad:
                raise InvalidJSONError(f"not valid UTF-8 (byte {bad.start})",
                                       source=source) from None
        if "recursion" in str(exc) or "depth limit" in str(exc):
            problem = "nested too deeply to be a Shadeform response"
        else:
            problem = f"invalid JSON (line {exc.lineno}, column {exc.colno})"
        raise InvalidJSONError(problem, source=source) from None


def _document(data: bytes, source: str, explicit: bool) -> Document:
    """One JSON document: typed when it is exactly a list response (fast), else parsed."""
    typed = decode_list_response(data)
    if typed is not None and _valid_time(typed.observed_at):
        return Document(typed, source, explicit=explicit)
    return Document(_parse(data, source), source, explicit=explicit)


def _valid_time(value: Any) -> bool:
    if value is None:
        return True
    if type(value) is not str:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def read_regular_file(path: Path, limit: int, what: str = "file") -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes, else ``OSError``-free
    ``ValueError`` with the reason ("not a regular file (a FIFO)", "larger than ...").

    Opened without blocking (a FIFO with no writer would hang ``open``), checked with
    ``fstat`` on the open descriptor (no race with a rename), read at most ``limit + 1``
    bytes (a file that grows while read is caught too).
    """
    mode = os.stat(path).st_mode  # a socket cannot even be opened
    if not stat.S_ISREG(mode):
        raise ValueError(f"not a regular file ({_file_kind(mode)}); refused")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"not a regular file ({_file_kind(mode)}); refused")
        os.set_blocking(fd, True)
        first = os.fstat(fd).st_size
        if first > limit:
            raise ValueError(f"larger than the {limit:,}-byte limit for a {what}; refused")
        chunks, size = [], 0
        # the size fstat gives in one read (no chunks to join: a copy less of a big file),
        # then on in chunks until the end: a file that grew while read is caught too
        first += 1
        while chunk := os.read(fd, min(first or _CHUNK, limit + 1 - size) or 1):
            first = 0
            size += len(chunk)
            if size > limit:
                raise ValueError(f"larger than the {limit:,}-byte limit for a {what}; refused")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a file"


def _gunzip(data: bytes, limit: int) -> bytes:
    """Every member of a gzip file, expanded to at most ``limit`` bytes (``ValueError``).

    Expanded 16 MiB at a time: asked for everything at once, zlib grows one buffer by
    doubling, and a bomb takes twice the limit before it is caught."""
    chunks, size = [], 0
    while data:
        decoder = _zlib.decompressobj(wbits=31)
        while data:
            out = decoder.decompress(data, min(16 * _CHUNK, limit + 1 - size))
            size += len(out)
            if size > limit:
                raise ValueError(f"expands to more than {limit:,} bytes, the decompressed-size "
                                 "limit of a source; refused")
            chunks.append(out)
            data = decoder.unconsumed_tail
            if decoder.eof:
                break
        if not decoder.eof:
            raise EOFError("truncated")
        data = decoder.unused_data
        if data and not data.lstrip(b"\0"):  # trailing zero padding, as gzip allows
            break
    return b"".join(chunks)


def _read_file(path: Path, explicit: bool, batch: bool = False) -> Iterator[Document]:
    """The documents of a file; ``batch``: a big JSONL file's lines as one ``Lines`` document
    (the walk may split them between two processes)."""
    name = _label(str(path))
    try:
        data = read_regular_file(path, MAX_SOURCE_BYTES, "source")
    except FileNotFoundError:
        raise InputError("no such file", source=name) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", source=name) from None
    except ValueError as exc:  # not a regular file, too large, a NUL byte in the name
        reason = str(exc) if "refused" in str(exc) else "cannot read (not a usable path)"
        raise InputError(reason, source=name) from None
    lower = path.name.lower()
    if lower.endswith(".gz"):
        try:
            data = _gunzip(data, MAX_SOURCE_BYTES)
        except _GZIP_ERRORS:
            raise InvalidJSONError("not a valid gzip file", source=name) from None
        except ValueError as exc:
            raise InputError(str(exc), source=name) from None
        lower = lower[:-3]
    if lower.endswith(".jsonl"):
        if batch and splits(len(data)):
            yield Document(Lines(data, name, explicit, _document), name, explicit=explicit)
            return
        for number, line in enumerate(data.splitlines(), start=1):
            if line.strip():
                yield _document(line, f"{name} line {number}", explicit)
    else:
        yield _document(data, name, explicit)


def _read_folder(folder: Path, batch: bool) -> Iterator[Document]:
    files = sorted(p for p in folder.rglob("*")
                   if p.is_file() and p.name.lower().endswith(_SUFFIXES))
    if not files:
        raise InputError("no .json, .jsonl or .json.gz files in this folder", source=str(folder))
    for file in files:
        yield from _read_file(file, explicit=False, batch=batch)


def _read_path(text: str | os.PathLike[str], explicit: bool, batch: bool
               ) -> Iterator[Document]:
    path = Path(text).expanduser()
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte...
        reason = getattr(exc, "strerror", None) or "not a usable path"
        raise InputError(f"cannot read ({reason})", source=_label(str(text))) from None
    if is_dir:
        yield from _read_folder(path, batch)
    elif _GLOB_CHARS & set(str(text)) and not exists:
        matches = sorted(glob.glob(str(text), recursive=True))
        if not matches:
            raise InputError("no files match this pattern", source=str(text))
        for match in matches:
            yield from _read_path(match, explicit=False, batch=batch)
    else:
        yield from _read_file(path, explicit, batch)


def _label(name: str) -> str:
    """A path as it can appear in a message: at most 200 characters."""
    return name if len(name) <= 200 else f"{name[:100]}...({len(name)} characters)"


def iter_documents(source: Source, *, explicit: bool = True) -> Iterator[Document]:
    """Every JSON document in ``source``, parsed, with the name of where it came from."""
    return _documents(source, explicit, batch=False)


def _documents(source: Source, explicit: bool, batch: bool) -> Iterator[Document]:
    """``iter_documents``; ``batch``: a big JSONL file's lines as one ``Lines`` document."""
    if isinstance(source, dict):
        yield Document(source, "<dict>", explicit=explicit)
    elif isinstance(source, bytes | bytearray | memoryview):
        yield _document(bytes(source), "<bytes>", explicit)
    elif isinstance(source, str) and source.lstrip()[:1] in ("{", "["):
        yield _document(source.encode("utf-8", "surrogatepass"), "<text>", explicit)
    elif isinstance(source, str | os.PathLike):
        yield from _read_path(source, explicit, batch)
    elif isinstance(source, list) and all(isinstance(item, dict | list) for item in source):
        yield Document(source, "<list>", explicit=explicit)
    elif isinstance(source, Iterable):
        for item in source:
            yield from _documents(item, explicit, batch)
    else:
        raise InputError(f"cannot read a {type(source).__name__}: pass a dict, JSON text, "
                         "bytes, a path, a folder, a glob or a list of these")


def _load(source: Source, kind: str | None, errors: str, observed_at: Any,
          stacklevel: int) -> Tables:
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
    default_time = None
    if observed_at is not None:
        default_time = pd.Timestamp(observed_at)
        if default_time.tzinfo is None:
            raise ValueError("observed_at must be timezone-aware (UTC)")
        default_time = default_time.tz_convert("UTC").isoformat()
    documents = _documents(source, True, batch=True)
    if default_time is not None:
        documents = (d if d.observed_at else d.with_time(default_time) for d in documents)
    with gc_paused(), progress(None, "loading", unit=" responses") as bar:
        documents = _counted(documents, bar)
        norm = normalize(documents, errors=errors, kinds=_KINDS.get(kind or ""))
        tables = build_tables(norm)
        # free the parsed JSON and the raw rows by reference counting while the collector is
        # still off: left to it, its first pass would walk millions of them for nothing
        del norm, documents
    for message in tables.warnings:
        warnings.warn(printable(message), DataWarning, stacklevel=stacklevel)
    return tables


def _counted(documents: Iterable[Document], bar: Any) -> Iterator[Document]:
    for doc in documents:
        yield doc
        bar.update(doc.value.count if type(doc.value) is Lines else 1)  # a JSONL's lines


def read(source: Source, *, errors: str = "raise", observed_at: Any = None) -> Tables:
    """Load every Shadeform response in ``source``: clusters, instances (lists and
    ``/instances/{id}/info``), instance types, volumes, volume types, SSH keys, templates and
    cluster types.

    ``errors="raise"`` stops at the first record that cannot load with an ``InputError``
    naming the file, JSON path and id; ``errors="skip"`` drops such records, warns and counts
    them in ``Tables.skipped``. ``observed_at`` dates responses that carry no envelope.
    """
    return _load(source, None, errors, observed_at, stacklevel=3)


def read_clusters(source: Source, *, errors: str = "raise", observed_at: Any = None) -> Tables:
    """Load cluster info responses and ``GET /clusters`` lists into ``Tables``.

    Example::

        >>> import shadeanalytics as sa
        >>> tables = read_clusters(sa.sample_path() / "clusters.jsonl")
        >>> tables.instances[["instance_id", "hourly_price_usd", "total_vram_gb"]].head(2)
                                    instance_id  hourly_price_usd  total_vram_gb
        0  35c86b78-74f8-46f2-b2ae-556fbdfaea88              23.2            640
        1  6b2838e0-133f-4243-8368-2cec0fbeb716              23.2            640

    Files of other kinds found in a folder or glob are passed over; a document of another
    kind given directly is an error.
    """
    return _load(source, "clusters", errors, observed_at, stacklevel=3)


def read_instances(source: Source, *, errors: str = "raise", observed_at: Any = None) -> Tables:
    """Load ``GET /instances`` and ``/instances/{id}/info`` responses (``cluster_id`` NA)."""
    return _load(source, "instances", errors, observed_at, stacklevel=3)


def read_instance_types(source: Source, *, errors: str = "raise",
                        observed_at: Any = None) -> Tables:
    """Load ``GET /instances/types`` as ``Tables`` (its other tables empty), like every loader:
    ``.instance_types`` has one row per cloud, type, region and rental type."""
    return _load(source, "instance_types", errors, observed_at, stacklevel=3)
