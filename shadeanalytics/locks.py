"""Non-blocking exclusive file locks: one collector per store, one export per folder."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import LockedError, StoreError

__all__ = ["exclusive_lock"]


@contextmanager
def exclusive_lock(path: Path, busy: str) -> Iterator[None]:
    """Hold ``path`` (created ``0600``) exclusively for the block, or raise ``LockedError``
    with the message ``busy`` at once.

    The lock is the kernel's (``flock``): it goes away with the process, so a killed run
    leaves no stale lock, and the file itself is never deleted (deleting it would let two runs
    lock two different files).
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the lock file ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(busy) from None
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
