"""Sessions: a lock tells live from crashed runs, and the reaper removes crashed runs' leftovers."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.sessions import LABEL, Session, is_alive, labelled_processes, opener_runs, reap


@pytest.fixture(autouse=True)
def default_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A default base of this test's own: other workers' reapers never see its sessions."""
    home = tmp_path / "default-base"
    monkeypatch.setenv("HARNESS_BASE_DIR", str(home))
    return home


def test_a_session_is_alive_while_its_owner_holds_the_lock(tmp_path: Path) -> None:
    session = Session.open(tmp_path)
    assert is_alive(session.dir)
    session.close()
    assert not is_alive(session.dir)


def test_reap_kills_the_processes_of_a_crashed_session(tmp_path: Path) -> None:
    # a session owned by a child process that dies without cleaning up (like SIGKILL)
    code = (
        "import sys; from pathlib import Path; from harness.sessions import Session;"
        "s = Session.open(Path(sys.argv[1])); print(s.id)"
    )
    sid = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    orphan = subprocess.Popen(
        ["sleep", "60"], env={**os.environ, LABEL: sid}, start_new_session=True
    )
    try:
        # Popen returns once exec has begun, before the kernel has set up the new
        # environment that /proc/<pid>/environ shows: wait for it
        deadline = time.monotonic() + 5
        while not labelled_processes({sid}) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert labelled_processes({sid}) == {orphan.pid: sid}
        assert reap(tmp_path) == [sid]
        assert orphan.wait(timeout=5) == -9
        assert not (tmp_path / "sessions" / sid).exists()
    finally:
        orphan.kill()
        orphan.wait()


def test_reap_leaves_live_sessions_alone(tmp_path: Path) -> None:
    session = Session.open(tmp_path)
    try:
        assert reap(tmp_path) == []
        assert session.dir.exists()
    finally:
        session.close()
    time.sleep(0)


def test_descendants_walks_the_whole_tree_and_matches_a_full_scan() -> None:
    from harness.sessions import _descendants_by_scan, descendants

    # sh -> (sh -> sleep, sleep): grandchildren in their own session, as PostgreSQL's are
    tree = subprocess.Popen(
        ["sh", "-c", "setsid sh -c 'sleep 30 & sleep 30 & wait' & sleep 30 & wait"]
    )
    try:
        deadline = time.monotonic() + 5
        while len(descendants(tree.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        found = descendants(tree.pid)
        assert len(found) == 4  # the setsid sh, its two sleeps, the other sleep
        assert sorted(found) == sorted(_descendants_by_scan(tree.pid))
    finally:
        for pid in [*descendants(tree.pid), tree.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        tree.wait()


def test_a_crashed_session_whose_base_was_deleted_is_reaped_from_the_default_base(
    tmp_path: Path, default_base: Path
) -> None:
    """A run under a temporary base that was SIGKILLed and whose base was then removed
    (a test's tmp_path) leaves its groups noted in the default base: the next run, under
    any base, kills them, even a process that rewrote its environment (no label)."""
    import shutil

    elsewhere = tmp_path / "elsewhere-base"
    code = (
        "import subprocess, sys; from pathlib import Path; from harness.sessions import Session;"
        "s = Session.open(Path(sys.argv[1]));"
        "p = subprocess.Popen(['sleep', '60'], start_new_session=True,"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL);"
        "s.record_group(p.pid); print(s.id, p.pid)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(elsewhere)], capture_output=True, text=True, check=True
    ).stdout.split()
    sid, pid = out[0], int(out[1])
    try:
        assert (default_base / "elsewhere" / sid).read_text().startswith(str(elsewhere))
        shutil.rmtree(elsewhere)
        assert reap(tmp_path / "another-base") == [sid]
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(pid)
        assert not (default_base / "elsewhere" / sid).exists()
    finally:
        with contextlib.suppress(OSError):
            os.kill(pid, 9)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_live_session_elsewhere_is_left_alone(tmp_path: Path, default_base: Path) -> None:
    session = Session.open(tmp_path / "elsewhere-base")
    try:
        assert session.pointer is not None and session.pointer.exists()
        assert reap(tmp_path / "another-base") == []
        assert session.dir.exists()
    finally:
        session.close()
    assert not session.pointer.exists()


def test_a_sessions_opener_is_judged_by_its_pid_and_start(tmp_path: Path) -> None:
    session = Session.open(tmp_path)
    try:
        assert opener_runs(session.id)  # this process, started before the session
    finally:
        session.close()
    assert not opener_runs("20200101-000000-1-abcdef")  # pid 1 started after: reused
    assert not opener_runs(f"20991231-000000-{2**22 + 5}-abcdef")  # no such process
    assert opener_runs("not-a-session-id")  # not ours to judge
