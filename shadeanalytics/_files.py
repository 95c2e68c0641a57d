"""The one way the toolkit writes a file: atomically, durably, with one permission rule.

Every CSV, chart, page, manifest, Parquet part and FOCUS file goes through ``atomic_file``:
a crash, a full disk or an I/O error leaves the previous file or the new one, never half
of it. This module is also the one seam for fault injection: tests replace its ``os`` or
``tempfile`` to make a write fail at a chosen step.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import ReportError

__all__ = ["atomic_file", "atomic_write", "cannot_write", "file_mode", "fsync_dir"]


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` sets it for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def file_mode(private: bool = False) -> int:
    """The mode of every file the toolkit writes: the user's umask applied to ``0o666``, or to
    ``0o600`` for a file holding the fleet's addresses (``private``: the store, its log and
    lock, and report or export files written with ``--include-network``). SECURITY.md."""
    return (0o600 if private else 0o666) & ~_umask()


@contextlib.contextmanager
def atomic_file(path: Path, *, private: bool = False) -> Iterator[BinaryIO]:
    """A binary handle whose bytes replace ``path`` when the block ends without an error.

    The bytes go to a temporary file next to ``path``, are flushed and fsynced, get
    :func:`file_mode` (``private`` for network data) and are renamed over ``path``. On any
    failure the temporary file is removed and ``path`` is untouched; an ``OSError`` becomes a
    ``ReportError`` naming the file (``"PATH: cannot write (No space left on device); ..."``).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ReportError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, file_mode(private))
        os.replace(tmp, path)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    finally:
        Path(tmp).unlink(missing_ok=True)  # gone already when os.replace succeeded


def cannot_write(path: Path, exc: OSError) -> ReportError:
    """The error of a failed write of ``path`` in :func:`atomic_file`, for a caller writing
    several files at once to name the one whose write failed."""
    return ReportError(f"{path}: cannot write ({exc.strerror}); the previous file, if any, "
                       "is unchanged")


def atomic_write(path: Path, data: str | bytes, *, private: bool = False) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` with :func:`atomic_file`."""
    with atomic_file(path, private=private) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


def fsync_dir(path: Path) -> None:
    """Make the entries of folder ``path`` (new names, renames) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
