"""LazyFS on real FUSE mounts: unsynced data is lost on ``lose_unsynced`` (from BACKING
and from the mount), synced data survives, names and metadata survive (the model);
then PostgreSQL on the mount: with ``fsync=on`` every committed row survives a power
loss, with ``fsync=off`` committed rows are lost."""

from __future__ import annotations

import contextlib
import ctypes.util
import importlib.util
import mmap
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from harness import shm
from harness.lazyfs import LazyFSProcess, is_mounted, is_stale, unmount, unmount_under
from harness.sessions import tree
from harness.tools import find_binary

FUSE = (
    os.path.exists("/dev/fuse")
    and shutil.which("fusermount3") is not None
    and ctypes.util.find_library("fuse3") is not None
    and importlib.util.find_spec("mfusepy") is not None
)
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not FUSE, reason="needs /dev/fuse, fuse3 and libfuse3-3 (apt), mfusepy"),
]


@dataclass(frozen=True)
class Mount:
    fs: LazyFSProcess
    back: Path
    mnt: Path


@pytest.fixture
def lazy(tmp_path: Path) -> Iterator[Mount]:
    back, mnt = tmp_path / "back", tmp_path / "mnt"
    back.mkdir()
    mnt.mkdir()
    back.chmod(0o777)
    fs = LazyFSProcess(back, mnt, tmp_path / "lazyfs.sock")
    fs.start()
    try:
        yield Mount(fs, back, mnt)
    finally:
        fs.stop()
        unmount_under(tmp_path)


def write(path: Path, data: bytes, *, sync: bool, flags: int = 0, offset: int | None = None):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644)
    try:
        if offset is None:
            os.write(fd, data)
        else:
            os.pwrite(fd, data, offset)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)  # close syncs nothing


# --- the model ------------------------------------------------------------------------
def test_a_write_without_fsync_is_gone_from_backing_and_mount_after_loss(lazy: Mount) -> None:
    write(lazy.mnt / "spool", b"x" * 5000, sync=False)
    assert (lazy.mnt / "spool").read_bytes() == b"x" * 5000
    assert (lazy.back / "spool").read_bytes() == b""  # the name is there, the data is not
    stats = lazy.fs.client.stats()
    assert (stats.dirty_bytes, stats.dirty_files) == (5000, 1)

    lost = lazy.fs.client.lose_unsynced()

    assert (lost.bytes, lost.files) == (5000, 1)
    assert (lazy.mnt / "spool").read_bytes() == b""
    assert (lazy.mnt / "spool").stat().st_size == 0
    assert (lazy.back / "spool").read_bytes() == b""
    assert lazy.fs.client.stats().dirty_bytes == 0


def test_a_write_with_fsync_survives_the_loss(lazy: Mount) -> None:
    write(lazy.mnt / "wal", b"committed", sync=True)
    assert (lazy.back / "wal").read_bytes() == b"committed"

    lost = lazy.fs.client.lose_unsynced()

    assert (lost.bytes, lost.files) == (0, 0)
    assert (lazy.mnt / "wal").read_bytes() == b"committed"


def test_fdatasync_and_o_dsync_writes_are_synced_too(lazy: Mount) -> None:
    fd = os.open(lazy.mnt / "a", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"fdatasync")
    os.fdatasync(fd)
    os.close(fd)
    write(lazy.mnt / "b", b"o_dsync", sync=False, flags=os.O_DSYNC)

    assert lazy.fs.client.lose_unsynced().bytes == 0
    assert (lazy.mnt / "a").read_bytes() == b"fdatasync"
    assert (lazy.mnt / "b").read_bytes() == b"o_dsync"


def test_a_partial_overwrite_of_a_synced_file_comes_back_old(lazy: Mount) -> None:
    old = bytes(range(256)) * 32  # 8 KiB
    write(lazy.mnt / "page", old, sync=True)
    write(lazy.mnt / "page", b"N" * 100, sync=False, offset=4000)
    new = old[:4000] + b"N" * 100 + old[4100:]
    assert (lazy.mnt / "page").read_bytes() == new
    assert (lazy.back / "page").read_bytes() == old

    lost = lazy.fs.client.lose_unsynced()

    assert (lost.bytes, lost.files) == (100, 1)
    assert (lazy.mnt / "page").read_bytes() == old


def test_an_append_after_fsync_is_lost_back_to_the_synced_size(lazy: Mount) -> None:
    write(lazy.mnt / "log", b"one\n", sync=True, flags=os.O_APPEND)
    write(lazy.mnt / "log", b"two\n", sync=False, flags=os.O_APPEND)
    assert (lazy.mnt / "log").read_bytes() == b"one\ntwo\n"
    assert (lazy.mnt / "log").stat().st_size == 8

    assert lazy.fs.client.lose_unsynced().bytes == 4

    assert (lazy.mnt / "log").read_bytes() == b"one\n"
    assert (lazy.mnt / "log").stat().st_size == 4


def test_truncate_is_metadata_and_survives_and_cuts_the_unsynced_bytes(lazy: Mount) -> None:
    write(lazy.mnt / "t", b"a" * 1000, sync=True)
    os.truncate(lazy.mnt / "t", 100)
    write(lazy.mnt / "t", b"b" * 400, sync=False, offset=100)
    os.truncate(lazy.mnt / "t", 300)  # keeps 200 of the 400 unsynced bytes
    assert (lazy.mnt / "t").read_bytes() == b"a" * 100 + b"b" * 200
    assert (lazy.back / "t").stat().st_size == 300

    assert lazy.fs.client.lose_unsynced().bytes == 200

    # BACKING was extended by the truncate; the bytes that would have filled it were lost
    assert (lazy.mnt / "t").read_bytes() == b"a" * 100 + b"\0" * 200


def test_rename_without_fsync_leaves_an_empty_file_under_the_new_name(lazy: Mount) -> None:
    write(lazy.mnt / "config", b"old, synced", sync=True)
    write(lazy.mnt / "config.tmp", b"new, never synced", sync=False)
    os.rename(lazy.mnt / "config.tmp", lazy.mnt / "config")
    assert (lazy.mnt / "config").read_bytes() == b"new, never synced"

    lost = lazy.fs.client.lose_unsynced()

    assert (lost.bytes, lost.files) == (17, 1)
    assert sorted(os.listdir(lazy.mnt)) == ["config"]  # the rename itself survived
    assert (lazy.mnt / "config").read_bytes() == b""  # ext4's zero-length file


def test_a_renamed_file_keeps_its_unsynced_bytes_and_syncs_under_its_new_name(
    lazy: Mount,
) -> None:
    (lazy.mnt / "d").mkdir()
    write(lazy.mnt / "d" / "a", b"moved", sync=False)
    os.rename(lazy.mnt / "d", lazy.mnt / "e")
    fd = os.open(lazy.mnt / "e" / "a", os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)

    assert lazy.fs.client.lose_unsynced().bytes == 0
    assert (lazy.back / "e" / "a").read_bytes() == b"moved"


def test_an_unlinked_file_is_neither_kept_nor_counted_as_lost(lazy: Mount) -> None:
    write(lazy.mnt / "scratch", b"temporary", sync=False)
    os.unlink(lazy.mnt / "scratch")
    assert lazy.fs.client.stats().dirty_files == 0
    fd = os.open(lazy.mnt / "open", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"still open")
    os.unlink(lazy.mnt / "open")
    assert os.pread(fd, 100, 0) == b"still open"  # served with no name left
    os.close(fd)
    deadline = time.monotonic() + 5  # the kernel sends FUSE's release after close returns
    while lazy.fs.client.stats().dirty_files and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lazy.fs.client.stats().dirty_files == 0
    assert os.listdir(lazy.back) == []


def test_a_shared_mapping_is_synced_by_msync(lazy: Mount) -> None:
    write(lazy.mnt / "m", b"\0" * 4096, sync=True)
    with open(lazy.mnt / "m", "r+b") as fh, mmap.mmap(fh.fileno(), 4096) as mapped:
        mapped[:5] = b"mmap!"
        mapped.flush()
    assert lazy.fs.client.lose_unsynced().bytes == 0
    assert (lazy.mnt / "m").read_bytes()[:5] == b"mmap!"


def test_other_users_create_files_as_themselves(lazy: Mount) -> None:
    nobody = pwd.getpwnam("nobody")
    (lazy.mnt / "home").mkdir()
    os.chown(lazy.mnt / "home", nobody.pw_uid, nobody.pw_gid)
    subprocess.run(
        ["sh", "-c", f"echo hi > {lazy.mnt}/home/f && cat {lazy.mnt}/home/f"],
        user=nobody.pw_uid,
        group=nobody.pw_gid,
        check=True,
        capture_output=True,
    )
    st = (lazy.back / "home" / "f").stat()
    assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)
    (lazy.mnt / "root-only").mkdir(mode=0o755)
    denied = subprocess.run(
        ["sh", "-c", f"echo no > {lazy.mnt}/root-only/f"], user=nobody.pw_uid, capture_output=True
    )
    assert denied.returncode != 0  # default_permissions: BACKING's modes are enforced


# --- the process --------------------------------------------------------------------------
def test_sigterm_flushes_and_unmounts(lazy: Mount) -> None:
    write(lazy.mnt / "f", b"flushed at unmount", sync=False)
    assert lazy.fs.stop() == 0
    assert not is_mounted(lazy.mnt)
    assert (lazy.back / "f").read_bytes() == b"flushed at unmount"
    assert not lazy.fs.control.exists()


def test_fusermount_u_is_a_clean_unmount_too(lazy: Mount) -> None:
    write(lazy.mnt / "f", b"flushed", sync=False)
    subprocess.run(["fusermount3", "-u", str(lazy.mnt)], check=True)
    assert lazy.fs.popen is not None and lazy.fs.popen.wait(10) == 0
    assert (lazy.back / "f").read_bytes() == b"flushed"


def test_sigkill_loses_unsynced_data_and_leaves_a_mount_that_unmount_reaps(
    lazy: Mount,
) -> None:
    write(lazy.mnt / "f", b"dies with the process", sync=False)
    assert lazy.fs.popen is not None
    lazy.fs.popen.kill()
    lazy.fs.popen.wait(10)
    assert is_stale(lazy.mnt)
    assert unmount(lazy.mnt)
    assert not is_mounted(lazy.mnt)
    assert (lazy.back / "f").read_bytes() == b""
    restarted = LazyFSProcess(lazy.back, lazy.mnt, lazy.fs.control).start()
    try:
        assert (lazy.mnt / "f").read_bytes() == b""
    finally:
        restarted.stop()


def test_a_stale_mount_is_reaped_by_the_next_start(lazy: Mount) -> None:
    assert lazy.fs.popen is not None
    lazy.fs.popen.kill()
    lazy.fs.popen.wait(10)
    assert is_stale(lazy.mnt)
    again = LazyFSProcess(lazy.back, lazy.mnt, lazy.fs.control).start()
    try:
        assert not is_stale(lazy.mnt)
        write(lazy.mnt / "g", b"ok", sync=True)
    finally:
        again.stop()


# --- PostgreSQL on the mount ----------------------------------------------------------
PG_PORT = 5432
ROWS = 300


class Postgres:
    """A cluster whose data directory is on the mount, run as user postgres."""

    def __init__(self, lazy: Mount, sockets: Path) -> None:
        self.lazy, self.sockets = lazy, sockets
        self.data = lazy.mnt / "pg" / "data"
        self.owner = pwd.getpwnam("postgres")
        self.popen: subprocess.Popen[bytes] | None = None

    def initdb(self) -> None:
        (self.lazy.mnt / "pg").mkdir(mode=0o700)
        os.chown(self.lazy.mnt / "pg", self.owner.pw_uid, self.owner.pw_gid)
        self.sockets.mkdir(mode=0o755)
        os.chown(self.sockets, self.owner.pw_uid, self.owner.pw_gid)
        subprocess.run(
            [find_binary("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-N"],
            user=self.owner.pw_uid,
            group=self.owner.pw_gid,
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.lazy.fs.client.sync_all()  # initdb -N skipped its own syncs

    def start(self, fsync: bool) -> None:
        log = open(self.sockets / "postgres.log", "ab")  # noqa: SIM115 (lives with the server)
        self.popen = subprocess.Popen(
            [
                find_binary("postgres"),
                "-D",
                str(self.data),
                "-p",
                str(PG_PORT),
                "-k",
                str(self.sockets),
                "-c",
                "listen_addresses=",
                "-c",
                f"fsync={'on' if fsync else 'off'}",
                "-c",
                "shared_buffers=16MB",
                "-c",
                "max_wal_size=1GB",
            ],
            user=self.owner.pw_uid,
            group=self.owner.pw_gid,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def connect(self, timeout: float = 20.0) -> psycopg.Connection:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return psycopg.connect(
                    host=str(self.sockets),
                    port=PG_PORT,
                    user="postgres",
                    dbname="postgres",
                    autocommit=True,
                    connect_timeout=2,
                )
            except psycopg.OperationalError:
                if self.popen is not None and self.popen.poll() is not None:
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def power_off(self) -> None:
        """SIGKILL to every process of the cluster, and wait until none runs; its shared
        memory segments, which a power loss takes too, are removed."""
        assert self.popen is not None
        segments = shm.mapped_segments(tree(self.popen.pid))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)
        deadline = time.monotonic() + 10
        while _group_alive(self.popen.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        shm.unlink(segments)

    def log(self) -> str:
        return (self.sockets / "postgres.log").read_text(errors="replace")[-3000:]


def _group_alive(pgid: int) -> bool:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    return True
    return False


@pytest.fixture
def postgres(lazy: Mount, tmp_path: Path) -> Iterator[Postgres]:
    pg = Postgres(lazy, tmp_path / "sockets")
    pg.initdb()
    try:
        yield pg
    finally:
        if pg.popen is not None:
            pg.power_off()


def commit_rows(pg: Postgres) -> list[int]:
    """Create a table and commit ROWS inserts one by one; the acknowledged ids."""
    acknowledged = []
    with pg.connect() as conn:
        conn.execute("CREATE TABLE acked (id int PRIMARY KEY, pad text)")
        for i in range(1, ROWS + 1):
            conn.execute("INSERT INTO acked VALUES (%s, repeat('x', 200))", (i,))
            acknowledged.append(i)
    return acknowledged


def rows_after_power_loss(pg: Postgres) -> tuple[list[str], set[int]]:
    """Power off, lose the unsynced bytes, restart (as an operator would: an empty
    ``postmaster.pid`` is deleted by hand): what happened, and the rows that came back."""
    pg.power_off()
    lost = pg.lazy.fs.client.lose_unsynced()
    events = [f"lost {lost.bytes} bytes in {lost.files} files"]
    for _attempt in range(2):
        pg.start(fsync=True)
        try:
            with pg.connect() as conn:
                rows = {r[0] for r in conn.execute("SELECT id FROM acked")}
            return [*events, "table there"], rows
        except psycopg.errors.UndefinedTable:
            return [*events, "table gone"], set()
        except psycopg.OperationalError as exc:
            pg.power_off()
            if 'lock file "postmaster.pid" is empty' not in pg.log():
                return [*events, f"cluster does not start: {exc}"], set()
            events.append("postmaster.pid empty: the cluster refuses to start; removed by hand")
            (pg.data / "postmaster.pid").unlink()
    return [*events, "cluster does not start"], set()


def test_postgres_with_fsync_on_keeps_every_committed_row(postgres: Postgres) -> None:
    postgres.start(fsync=True)
    acknowledged = commit_rows(postgres)
    dirty = postgres.lazy.fs.client.stats()
    assert dirty.dirty_bytes > 0  # data pages: written, not yet checkpointed

    events, rows = rows_after_power_loss(postgres)

    print(f"fsync=on: {'; '.join(events)}; {len(rows)} of {len(acknowledged)} committed rows")
    assert events[-1] == "table there", (events, postgres.log())
    assert rows == set(acknowledged)
    assert "redo done" in postgres.log()  # it did recover from its WAL


def test_postgres_with_fsync_off_loses_committed_rows(postgres: Postgres) -> None:
    postgres.start(fsync=False)
    acknowledged = commit_rows(postgres)

    events, rows = rows_after_power_loss(postgres)

    print(f"fsync=off: {'; '.join(events)}; {len(rows)} of {len(acknowledged)} committed rows")
    assert rows < set(acknowledged), (events, postgres.log())
