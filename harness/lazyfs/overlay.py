"""The overlay: every file's unsynced bytes, by inode, and what sync and loss do to them.

One :class:`Overlays` table holds an :class:`Overlay` per inode with dirty data: its
:class:`~harness.lazyfs.extents.Extents`, the modification time those writes gave it,
and a descriptor of the backing file of its own, so the bytes can still be synced
after every handle closed (close does not sync). Keyed by inode (``(st_dev, st_ino)``
of the backing file), an overlay follows its file through renames and hard links.

The table talks to BACKING only through :class:`BackingIO` (``os`` by default; a fake
in the unit tests). Every method takes the table's lock: the filesystem's thread and
the control thread share it.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from harness.lazyfs.extents import Extents

Key = tuple[int, int]


class BackingIO(Protocol):
    """What the overlay needs of the backing files' descriptors."""

    def dup(self, fd: int) -> int: ...
    def pwrite(self, fd: int, data: bytes, offset: int) -> int: ...
    def sync(self, fd: int, datasync: bool) -> None: ...
    def links(self, fd: int) -> int: ...
    def close(self, fd: int) -> None: ...


class OsIO:
    """:class:`BackingIO` on the real descriptors."""

    dup = staticmethod(os.dup)
    close = staticmethod(os.close)

    @staticmethod
    def pwrite(fd: int, data: bytes, offset: int) -> int:
        view, done = memoryview(data), 0
        while done < len(data):
            done += os.pwrite(fd, view[done:], offset + done)
        return done

    @staticmethod
    def sync(fd: int, datasync: bool) -> None:
        (os.fdatasync if datasync else os.fsync)(fd)

    @staticmethod
    def links(fd: int) -> int:
        return os.fstat(fd).st_nlink


@dataclass
class Overlay:
    """One inode's unsynced writes."""

    fd: int
    extents: Extents = field(default_factory=Extents)
    mtime_ns: int = 0


@dataclass(frozen=True)
class Tally:
    """Bytes and files that an operation on the whole table concerned."""

    bytes: int
    files: int


class Overlays:
    """The unsynced writes of every file, and the counters the control interface reports."""

    def __init__(self, io: BackingIO | None = None, clock: Callable[[], int] = time.time_ns):
        self.io: BackingIO = io or OsIO()
        self.clock = clock
        self.lock = threading.Lock()
        self._dirty: dict[Key, Overlay] = {}
        self._handles: Counter[Key] = Counter()
        self.fsyncs = 0

    # --- the filesystem's side ---------------------------------------------------------
    def opened(self, key: Key) -> None:
        with self.lock:
            self._handles[key] += 1

    def released(self, key: Key) -> None:
        """A handle closed: nothing is synced; an unlinked file's bytes are dropped."""
        with self.lock:
            self._handles[key] -= 1
            if self._handles[key] <= 0:
                del self._handles[key]
                self._drop_if_unlinked(key)

    def unlinked(self, key: Key) -> None:
        """A name of the inode went away (unlink, rename over it)."""
        with self.lock:
            if key not in self._handles:
                self._drop_if_unlinked(key)

    def write(self, key: Key, fd: int, offset: int, data: bytes) -> None:
        """Hold ``data`` at ``offset`` of the file that ``fd`` (a writable backing
        descriptor) opens; BACKING is not touched."""
        with self.lock:
            overlay = self._dirty.get(key)
            if overlay is None:
                overlay = self._dirty[key] = Overlay(self.io.dup(fd))
            overlay.extents.write(offset, data)
            overlay.mtime_ns = self.clock()

    def view(self, key: Key) -> tuple[int, int] | None:
        """``(end of the dirty bytes, mtime they gave)`` of a dirty file, else None."""
        with self.lock:
            overlay = self._dirty.get(key)
            return (overlay.extents.end, overlay.mtime_ns) if overlay else None

    def read(self, key: Key, offset: int, size: int, base: bytes) -> bytes:
        """``size`` bytes at ``offset`` as the mount shows them, given ``base``, what
        BACKING returned for the same read (shorter only at its end of file)."""
        with self.lock:
            overlay = self._dirty.get(key)
            if overlay is None:
                return base
            if len(base) < size:
                size = min(size, max(offset + len(base), overlay.extents.end) - offset)
            return overlay.extents.patch(offset, size, base)

    def truncate(self, key: Key, length: int) -> None:
        """BACKING was truncated (metadata, applied at once): forget dirty bytes past it."""
        with self.lock:
            overlay = self._dirty.get(key)
            if overlay is not None:
                overlay.extents.truncate(length)
                overlay.mtime_ns = self.clock()
                if not overlay.extents:
                    self._forget(key)

    def touched(self, key: Key) -> None:
        """The file's times were set explicitly: BACKING's mtime is the one to show."""
        with self.lock:
            overlay = self._dirty.get(key)
            if overlay is not None:
                overlay.mtime_ns = 0

    def flush(self, key: Key, datasync: bool) -> int | None:
        """fsync/fdatasync: write the file's dirty bytes to BACKING and sync it there;
        the bytes flushed, or None when the file was clean (nothing was synced)."""
        with self.lock:
            self.fsyncs += 1
            return self._flush(key, datasync) if key in self._dirty else None

    # --- the control side --------------------------------------------------------------
    def stats(self) -> Tally:
        with self.lock:
            return Tally(sum(o.extents.nbytes for o in self._dirty.values()), len(self._dirty))

    def sync_all(self) -> Tally:
        """Flush and sync every dirty file (a clean shutdown)."""
        with self.lock:
            keys = list(self._dirty)
            return Tally(sum(self._flush(key, False) for key in keys), len(keys))

    def lose_unsynced(self) -> Tally:
        """The power went: every unsynced byte is gone, BACKING keeps what it has."""
        with self.lock:
            lost = Tally(sum(o.extents.nbytes for o in self._dirty.values()), len(self._dirty))
            for key in list(self._dirty):
                self._forget(key)
            return lost

    # --- inside the lock ---------------------------------------------------------------
    def _flush(self, key: Key, datasync: bool) -> int:
        overlay = self._dirty[key]
        for offset, data in overlay.extents:
            self.io.pwrite(overlay.fd, data, offset)
        self.io.sync(overlay.fd, datasync)
        flushed = overlay.extents.nbytes
        self._forget(key)
        return flushed

    def _forget(self, key: Key) -> None:
        overlay = self._dirty.pop(key)
        overlay.extents.clear()
        self.io.close(overlay.fd)

    def _drop_if_unlinked(self, key: Key) -> None:
        overlay = self._dirty.get(key)
        if overlay is not None and self.io.links(overlay.fd) == 0:
            self._forget(key)
