"""Exclusive file locks: one writer per store (collect, check's alert state), one export per
folder.

The one rule for a store: every writer takes :func:`store_lock`: for an SQLite store,
:func:`file_lock` on the store file itself, so any path to it (a symlink, a hard link) is the
same lock; for a PostgreSQL store, its session-level advisory lock
(:func:`~shadeanalytics.live.storepg.collector_lock`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import LockedError, StoreError

__all__ = ["directory_lock", "exclusive_lock", "file_lock", "store_lock"]


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
    with _held_until_closed(fd, busy):
        yield


@contextmanager
def directory_lock(path: Path, busy: str) -> Iterator[None]:
    """Hold the folder ``path`` itself exclusively for the block, or raise ``LockedError`` with
    the message ``busy`` at once: an ``flock`` on the folder, so the folder holds no lock file.

    Like ``exclusive_lock`` the kernel releases it when the process dies; the folder must
    exist and is never replaced while locked (a run swaps what is inside it).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the folder to lock it ({exc.strerror})") from None
    with _held_until_closed(fd, busy):
        yield


@contextmanager
def _held_until_closed(fd: int, busy: str) -> Iterator[None]:
    """``flock`` the open ``fd`` for the block (``LockedError(busy)`` at once when another
    holds it), then close it: closing the last descriptor releases the lock."""
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(busy) from None
        yield
    finally:
        os.close(fd)


def store_lock(store: str | os.PathLike[str], busy: str, wait_s: float = 0.0
               ) -> contextlib.AbstractContextManager[None]:
    """Hold the store ``store`` (a path, ``sqlite:///path`` or a PostgreSQL URL) for one
    writer, or raise ``LockedError(busy)`` once ``wait_s`` seconds have passed without it."""
    from .. import _storeurl as storeurl

    named = storeurl.target(store)  # an empty name or an unknown scheme: StoreURLError
    if isinstance(named, str):
        from .storepg import collector_lock

        return collector_lock(named, busy, wait_s)
    return file_lock(named, busy, wait_s)


# One descriptor per locked file (device, inode) for the life of the process, never closed:
# closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
# included, so a lock on an SQLite file itself must never close its descriptor while a
# connection to it may be open. SQLite keeps its own descriptors the same way.
_FDS: dict[tuple[int, int], int] = {}
_HELD: set[tuple[int, int]] = set()
_GUARD = threading.Lock()


#: how often a lock that waits tries again (seconds)
_RETRY_S = 0.05


@contextmanager
def file_lock(path: Path, busy: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the file ``path`` itself (created ``0600`` if missing) exclusively for the block,
    or raise ``LockedError`` with the message ``busy`` once ``wait_s`` seconds (default: at
    once) have passed without it.

    The lock belongs to the file (its device and inode), not to the name: a hard link or a
    symlink to the same file is the same lock, in this process and in any other. It is an
    ``flock`` (released by the kernel when the process dies), independent of SQLite's own
    POSIX locks on the same file, and its descriptor is kept open (see ``_FDS``).
    """
    with _GUARD:
        try:
            try:
                info = os.stat(path)
            except FileNotFoundError:
                # a new file: no connection of this process can have it open yet
                # (another process may create it meanwhile: then it is taken as it is)
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                info = os.stat(path)
            key = (info.st_dev, info.st_ino)
            fd = _FDS.get(key)
            if fd is None:
                fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
                _FDS[key] = fd
        except OSError as exc:
            raise StoreError(f"{path}: cannot open the lock file ({exc.strerror})") from None
    deadline = time.monotonic() + wait_s
    while not _try_lock(key, fd):
        if time.monotonic() >= deadline:
            raise LockedError(busy)
        time.sleep(_RETRY_S)
    try:
        yield
    finally:
        with _GUARD:
            _HELD.discard(key)
            fcntl.flock(fd, fcntl.LOCK_UN)


def _try_lock(key: tuple[int, int], fd: int) -> bool:
    """Take the lock of ``key`` (held through ``fd``) if no one holds it, here or elsewhere."""
    with _GUARD:
        if key in _HELD:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        _HELD.add(key)
        return True
