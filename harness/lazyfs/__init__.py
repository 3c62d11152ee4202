"""LazyFS: a FUSE filesystem that keeps written data in memory until fsync, so that a
power loss can discard every byte not yet synced (after Jepsen's LazyFS).

    python -m harness.lazyfs BACKING MOUNTPOINT --control SOCKET

runs in the foreground as its own process, as root, mounted with ``allow_other`` and
``default_permissions`` (PostgreSQL runs as ``postgres``, the reference app as
``nobody``; files are created as the calling user). SIGTERM, SIGINT and ``fusermount3
-u`` unmount it cleanly, writing every unsynced byte to BACKING first, as umount
does. SIGKILL leaves a stale mount that :func:`unmount` (or :func:`unmount_under`,
before deleting a directory) removes; the process also reaps a stale mount at its own
mountpoint when it starts.

The model (what a crash loses), the simplest honest one:

- File data written through the mount stays in memory (an overlay per inode: dirty
  byte ranges) and is served to reads from there; ``fsync``/``fdatasync`` on the file
  (or a write through an ``O_SYNC``/``O_DSYNC`` handle) writes its ranges to BACKING
  and syncs BACKING's file. ``close`` syncs nothing.
- Everything else is applied to BACKING at once and survives: create, mkdir, mknod,
  symlink, link, rename, unlink, rmdir, truncate, fallocate, chmod, chown, utimens.
  This is ext4 with ``data=ordered`` once its journal has committed: only unsynced
  data is lost, never a name. A file created and written but never synced survives as
  BACKING knows it (empty, or at its truncated size); a file grown by unsynced writes
  goes back to its synced size; bytes overwritten since the last sync come back old.
  So "write a temp file, rename it over the real one, no fsync" loses the file's
  contents, as on ext4 without ``auto_da_alloc``; a missing directory fsync cannot be
  caught, since names never get lost.
- ``lose_unsynced`` (the power loss) drops every overlay; ``sync_all`` flushes them.
  Lose them with the mount's users already dead (kill them first, as the power does):
  a process that keeps a file open across the loss may still be served stale pages
  from the kernel's page cache until its next read refreshes the file's attributes.

Not modelled: torn or reordered writes within the unsynced data (all of a file's
unsynced bytes go together), ``sync(2)``/``syncfs(2)`` (they do not reach a FUSE
filesystem of libfuse's high-level API; use fsync or ``sync_all``), xattrs (not
supported), ``fallocate`` modes other than 0. Memory for unsynced data is not bounded.

The control interface, a JSON line each way on the unix socket, and the harness's
client, are in :mod:`harness.lazyfs.control`; :mod:`harness.lazyfs.process` runs the
filesystem as a child process::

    with LazyFSProcess(backing, mountpoint, socket_path) as lazyfs:
        ...                                  # PostgreSQL on the mount, then killed
        lost = lazyfs.client.lose_unsynced() # Discarded(bytes=..., files=...)
"""

from harness.lazyfs.control import (
    ControlError,
    ControlServer,
    Discarded,
    LazyFSClient,
    Stats,
    Synced,
)
from harness.lazyfs.extents import Extents
from harness.lazyfs.mount import is_mounted, is_stale, lazyfs_mounts, unmount, unmount_under
from harness.lazyfs.overlay import BackingIO, Overlays, Tally
from harness.lazyfs.process import LazyFSProcess, command

__all__ = [
    "BackingIO",
    "ControlError",
    "ControlServer",
    "Discarded",
    "Extents",
    "LazyFSClient",
    "LazyFSProcess",
    "Overlays",
    "Stats",
    "Synced",
    "Tally",
    "command",
    "is_mounted",
    "is_stale",
    "lazyfs_mounts",
    "unmount",
    "unmount_under",
]
