"""Which shared-memory segments a process has mapped, and removing them after it is gone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.shm import Segments, mapped_segments, unlink

HOLD = """
import mmap, sys
with open(sys.argv[1], "r+b") as fh:
    m = mmap.mmap(fh.fileno(), 4096)
print("mapped", flush=True)
sys.stdin.read()
"""


def _holder(path: Path) -> subprocess.Popen[str]:
    path.write_bytes(b"\0" * 4096)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "mapped\n"
    return proc


def test_finds_the_files_a_process_maps_under_the_directory(tmp_path: Path) -> None:
    shm = tmp_path / "shm"
    shm.mkdir()
    other = tmp_path / "elsewhere"
    held, outside, unmapped = shm / "PostgreSQL.1", other, shm / "PostgreSQL.2"
    (shm / "harness").mkdir()
    data = shm / "harness" / "db.sqlite-shm"  # a component's data file, not a segment
    unmapped.write_bytes(b"x")
    procs = [_holder(held), _holder(outside), _holder(data)]
    try:
        pids = [p.pid for p in procs]
        # a gone pid is skipped
        assert mapped_segments([*pids, 2**22 + 7], shm=shm) == Segments(frozenset({held}))
        held.unlink()  # a segment already removed shows as "(deleted)" and is not named
        assert not mapped_segments(pids, shm=shm)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_unlink_removes_what_exists_and_counts_it(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"x")
    segments = Segments(frozenset({a, b}))
    assert segments.remaining() == Segments(frozenset({a}))
    assert unlink(segments) == 1
    assert not a.exists() and not segments.remaining()


SYSV = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
shmid = libc.shmget(0, 4096, 0o1000 | 0o600)  # IPC_PRIVATE, IPC_CREAT
assert shmid >= 0 and libc.shmat(shmid, None, 0) not in (None, ctypes.c_void_p(-1).value)
print(shmid, flush=True)
sys.stdin.read()
"""


def test_a_killed_processs_system_v_segment_is_found_and_removed() -> None:
    """As PostgreSQL's interlock segment: attached, never removed by a SIGKILLed server."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SYSV], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    shmid = int(proc.stdout.readline())
    try:
        segments = mapped_segments([proc.pid])
        assert segments.sysv == {shmid} and not segments.files
    finally:
        proc.kill()
        proc.wait()
    assert segments.remaining() == segments  # nobody removed it: SIGKILL leaves it
    assert unlink(segments) == 1
    assert not segments.remaining()
