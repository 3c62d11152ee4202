"""The filesystem: a passthrough to BACKING whose unsynced file data lives in memory.

Every operation goes to BACKING at once except ``write``, which lands in the
:class:`~harness.lazyfs.overlay.Overlays`; ``read`` and ``getattr`` show those bytes
(and the size and mtime they give) over what BACKING holds, ``fsync``/``fdatasync``
move a file's bytes to BACKING and sync it there. A handle opened with ``O_SYNC`` or
``O_DSYNC`` syncs after each write. Files are created as the calling user (the
process runs as root; the mount has ``allow_other`` and ``default_permissions``).

Built on mfusepy (ctypes, libfuse 3's high-level API), one request at a time: the GIL
serialises Python anyway, and libfuse's worker threads only add hand-offs.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

import mfusepy

from harness.lazyfs.overlay import Key, Overlays

_LIBC = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_STRIPPED = os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_SYNC | os.O_DSYNC
_STRIPPED |= getattr(os, "O_DIRECT", 0)
_STAT_FIELDS = ("st_mode", "st_ino", "st_nlink", "st_uid", "st_gid", "st_rdev", "st_blksize")


@dataclass(frozen=True)
class Handle:
    """An open file; its backing descriptor is the FUSE file handle."""

    key: Key
    sync_writes: bool = False


def _key(st: os.stat_result) -> Key:
    return st.st_dev, st.st_ino


def _entry(ino: int, mode: int) -> dict[str, int]:
    return {"st_ino": ino, "st_mode": stat.S_IFMT(mode)}


def _libc_call(result: int) -> int:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return 0


class LazyFS(mfusepy.Operations):
    """The FUSE operations over ``backing``; ``on_init``/``on_destroy`` run at mount
    and at unmount (where every unsynced byte is flushed, as umount does)."""

    use_ns = True
    flag_nopath = True
    flag_nullpath_ok = True

    def __init__(
        self,
        backing: str,
        overlays: Overlays,
        on_init: Callable[[], None] = lambda: None,
        on_destroy: Callable[[], None] = lambda: None,
    ) -> None:
        self.root = os.path.realpath(backing)
        self.overlays = overlays
        self.handles: dict[int, Handle] = {}
        self.on_init, self.on_destroy = on_init, on_destroy
        self.as_root = os.geteuid() == 0

    def _full(self, path: str | None) -> str:
        if path is None:
            raise OSError(errno.ENOENT, "no path")
        return self.root + path

    def _owned(self, path: str, fd: int | None = None) -> None:
        """Give a new file to the calling user, as a kernel filesystem would."""
        if not self.as_root:
            return
        uid, gid, _pid = mfusepy.fuse_get_context()
        parent = os.stat(os.path.dirname(path) or "/")
        if parent.st_mode & stat.S_ISGID:
            gid = parent.st_gid
        if fd is None:
            os.lchown(path, uid, gid)
        else:
            os.fchown(fd, uid, gid)

    # --- lifecycle ----------------------------------------------------------------------
    def init_with_config(self, conn_info, config) -> None:
        if config is not None:
            config.use_ino = 1
            config.hard_remove = 1  # an open file that is unlinked leaves no .fuse_hidden name
            config.nullpath_ok = 1
            config.attr_timeout = 0.0  # sizes and mtimes change when bytes are lost
            config.negative_timeout = 0.0
        self.on_init()

    def destroy(self, path: str) -> None:
        self.overlays.sync_all()
        self.on_destroy()

    # --- attributes ---------------------------------------------------------------------
    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, int]:
        st = os.fstat(fh) if fh is not None else os.lstat(self._full(path))
        attrs = {name: getattr(st, name) for name in _STAT_FIELDS}
        size, mtime, blocks = st.st_size, st.st_mtime_ns, st.st_blocks
        if stat.S_ISREG(st.st_mode):
            seen = self.overlays.view(_key(st))
            if seen is not None:
                size = max(size, seen[0])
                mtime = seen[1] or mtime
                blocks = max(blocks, (size + 511) // 512)
        attrs.update(
            st_size=size,
            st_blocks=blocks,
            st_atime=st.st_atime_ns,
            st_mtime=mtime,
            st_ctime=st.st_ctime_ns,
        )
        return attrs

    def chmod(self, path: str | None, mode: int, fh: int | None = None) -> int:
        os.chmod(fh if fh is not None else self._full(path), mode)
        return 0

    def chown(self, path: str | None, uid: int, gid: int, fh: int | None = None) -> int:
        if fh is not None:
            os.fchown(fh, uid, gid)
        else:
            os.lchown(self._full(path), uid, gid)
        return 0

    def utimens(self, path: str | None, times: int | None = None, fh: int | None = None) -> int:
        """``utimensat``/``futimens`` with the kernel's two timespecs as they came
        (``UTIME_NOW`` and ``UTIME_OMIT`` included)."""
        if fh is not None:
            _libc_call(_LIBC.futimens(fh, ctypes.c_void_p(times)))
            key = _key(os.fstat(fh))
        else:
            full = self._full(path).encode()
            _libc_call(
                _LIBC.utimensat(_AT_FDCWD, full, ctypes.c_void_p(times), _AT_SYMLINK_NOFOLLOW)
            )
            key = _key(os.lstat(full))
        self.overlays.touched(key)
        return 0

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        if fh is not None:
            os.ftruncate(fh, length)
            key = self.handles[fh].key
        else:
            full = self._full(path)
            os.truncate(full, length)
            key = _key(os.stat(full))
        self.overlays.truncate(key, length)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        sv = os.statvfs(self.root)
        names = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files")
        return {name: getattr(sv, name) for name in (*names, "f_ffree", "f_favail", "f_namemax")}

    # --- names (applied to BACKING at once) ---------------------------------------------
    def mknod(self, path: str, mode: int, dev: int) -> int:
        full = self._full(path)
        os.mknod(full, mode, dev)
        self._owned(full)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        full = self._full(path)
        os.mkdir(full, mode)
        self._owned(full)
        return 0

    def symlink(self, target: str, source: str) -> int:
        full = self._full(target)
        os.symlink(source, full)
        self._owned(full)
        return 0

    def readlink(self, path: str) -> str:
        return os.readlink(self._full(path))

    def link(self, target: str, source: str) -> int:
        os.link(self._full(source), self._full(target))
        return 0

    def unlink(self, path: str) -> int:
        full = self._full(path)
        st = os.lstat(full)
        os.unlink(full)
        if stat.S_ISREG(st.st_mode):
            self.overlays.unlinked(_key(st))
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._full(path))
        return 0

    def rename(self, old: str, new: str, flags: int = 0) -> int:
        target = self._full(new)
        try:
            replaced = os.lstat(target)
        except FileNotFoundError:
            replaced = None
        src = self._full(old).encode()
        if flags:
            _libc_call(_LIBC.renameat2(_AT_FDCWD, src, _AT_FDCWD, target.encode(), flags))
        else:
            os.rename(src, target)
        if replaced is not None and stat.S_ISREG(replaced.st_mode):
            self.overlays.unlinked(_key(replaced))
        return 0

    # --- files --------------------------------------------------------------------------
    def _opened(self, fd: int, flags: int) -> int:
        key = _key(os.fstat(fd))
        self.handles[fd] = Handle(key, bool(flags & (os.O_SYNC | os.O_DSYNC)))
        self.overlays.opened(key)
        if flags & os.O_TRUNC:
            os.ftruncate(fd, 0)
            self.overlays.truncate(key, 0)
        return fd

    def open(self, path: str, flags: int) -> int:
        return self._opened(os.open(self._full(path), flags & ~_STRIPPED), flags)

    def create(self, path: str, mode: int, flags: int) -> int:
        full = self._full(path)
        fd = os.open(full, (flags & ~_STRIPPED) | os.O_CREAT | (flags & os.O_EXCL), mode)
        try:
            self._owned(full, fd)
        except OSError:
            os.close(fd)
            raise
        return self._opened(fd, flags)

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        return self.overlays.read(self.handles[fh].key, offset, size, os.pread(fh, size, offset))

    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        handle = self.handles[fh]
        self.overlays.write(handle.key, fh, offset, data)
        if handle.sync_writes:
            self.overlays.flush(handle.key, datasync=True)
        return len(data)

    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        if self.overlays.flush(self.handles[fh].key, bool(datasync)) is None:
            (os.fdatasync if datasync else os.fsync)(fh)
        return 0

    def flush(self, path: str | None, fh: int) -> int:
        return 0  # close(2) syncs nothing

    def release(self, path: str | None, fh: int) -> int:
        handle = self.handles.pop(fh)
        os.close(fh)
        self.overlays.released(handle.key)
        return 0

    def fallocate(self, path: str | None, mode: int, offset: int, size: int, fh: int) -> int:
        if mode != 0:
            raise OSError(errno.EOPNOTSUPP, "only plain fallocate (mode 0)")
        os.posix_fallocate(fh, offset, size)
        return 0

    # --- directories --------------------------------------------------------------------
    def opendir(self, path: str) -> int:
        return os.open(self._full(path), os.O_RDONLY | os.O_DIRECTORY)

    def readdir(self, path: str | None, fh: int) -> list[tuple[str, dict[str, int], int]]:
        """Names with their inode numbers (with ``use_ino`` a 0 would hide the entry)."""
        here, up = os.fstat(fh), os.stat("..", dir_fd=fh)
        names = [(".", _entry(here.st_ino, here.st_mode)), ("..", _entry(up.st_ino, up.st_mode))]
        with os.scandir(fh) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    mode = stat.S_IFDIR
                elif entry.is_file(follow_symlinks=False):
                    mode = stat.S_IFREG
                elif entry.is_symlink():
                    mode = stat.S_IFLNK
                else:
                    mode = entry.stat(follow_symlinks=False).st_mode
                names.append((entry.name, _entry(entry.inode(), mode)))
        return [(name, attrs, 0) for name, attrs in names]

    def releasedir(self, path: str | None, fh: int) -> int:
        os.close(fh)
        return 0

    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
        os.fsync(fh)
        return 0


class _Adapter(mfusepy.FUSE):
    """mfusepy's callbacks, with the file handle passed where mfusepy drops it
    (truncate, chmod, chown, utimens on an open file) and rename's flags kept."""

    def _path(self, path: bytes | None) -> str | None:
        return None if path is None else path.decode(self.encoding, self.errors)

    @staticmethod
    def _fh(fip) -> int | None:
        return fip.contents.fh if fip else None

    def truncate_fuse_3(self, path, length, fip):
        return self.operations.truncate(self._path(path), length, self._fh(fip))

    def chmod_fuse_3(self, path, mode, fip):
        return self.operations.chmod(self._path(path), mode, self._fh(fip))

    def chown_fuse_3(self, path, uid, gid, fip):
        uid = -1 if ctypes.c_uint32(uid + 1).value == 0 else uid
        gid = -1 if ctypes.c_uint32(gid + 1).value == 0 else gid
        return self.operations.chown(self._path(path), uid, gid, self._fh(fip))

    def utimens_fuse_3(self, path, buf, fip):
        times = ctypes.cast(buf, ctypes.c_void_p).value if buf else None
        return self.operations.utimens(self._path(path), times, self._fh(fip))

    def rename_fuse_3(self, old, new, flags):
        return self.operations.rename(self._path(old), self._path(new), flags)


def serve(fs: LazyFS, mountpoint: str, debug: bool = False) -> None:
    """Mount ``fs`` at ``mountpoint`` and serve it until unmounted or signalled
    (SIGTERM, SIGINT, SIGHUP: libfuse unmounts and ``destroy`` flushes)."""
    try:
        _Adapter(
            fs,
            mountpoint,
            foreground=True,
            nothreads=True,
            debug=debug,
            allow_other=True,
            default_permissions=True,
            fsname="lazyfs",
            subtype="lazyfs",
        )
    except RuntimeError as exc:
        if exc.args != (8,):  # libfuse's code for "the loop ended on a signal"
            raise
