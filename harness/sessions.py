"""Sessions: the label on everything one run starts, and the reaper for crashed runs.

Each run owns a session: a directory ``<base>/sessions/<id>/`` holding the run's
files, and a lock file that the owning process keeps ``flock``-ed for its lifetime.
Every process the run starts carries ``HARNESS_SESSION=<id>`` in its environment and
runs in a process group recorded in the session's ``groups`` file with its leader's
start time (environment labels alone are not enough: PostgreSQL, nginx and Redis
overwrite their environment to set their process titles). When the owner dies (even
by SIGKILL) the kernel drops its lock, so a later run can tell a crashed session from
a live one without trusting pids, and :func:`reap` kills the crashed session's
processes, its port reservations and its files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import portguard, shm
from harness.lazyfs.mount import unmount_under

LABEL = "HARNESS_SESSION"
ELSEWHERE = "elsewhere"  # <default base>/elsewhere/<id>: a session under another base


def base_dir() -> Path:
    """Where sessions live: tmpfs (``/dev/shm``) when there is one, for fast data copies."""
    configured = os.environ.get("HARNESS_BASE_DIR")
    if configured:
        base = Path(configured)
    elif os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        base = Path("/dev/shm/harness")
    else:
        base = Path(tempfile.gettempdir()) / "harness"
    base.mkdir(mode=0o755, parents=True, exist_ok=True)
    return base


@dataclass
class Session:
    """One run's label, directory and lock; ``close()`` releases all three."""

    id: str
    dir: Path
    _lock_fd: int

    # a session under another base (a test's temporary directory, $HARNESS_BASE_DIR) is
    # also noted in the default base, so that the next run anywhere reaps it even when
    # its own base was deleted with the crashed run's groups file in it
    pointer: Path | None = None

    @classmethod
    def open(cls, base: Path | None = None) -> Session:
        base = base or base_dir()
        sid = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{secrets.token_hex(3)}"
        path = base / "sessions" / sid
        path.mkdir(mode=0o711, parents=True)  # others may not list it
        fd = os.open(path / "lock", os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        (path / "session.json").write_text(
            json.dumps({"id": sid, "pid": os.getpid(), "started": time.time()})
        )
        pointer = None
        home = base_dir()
        if base.resolve() != home.resolve():
            try:  # best effort: another user's default base may be closed to this one
                pointer = home / ELSEWHERE / sid
                pointer.parent.mkdir(mode=0o700, exist_ok=True)
                pointer.write_text(f"{path}\n")
            except OSError:
                pointer = None
        return cls(sid, path, fd, pointer)

    def record_group(self, pgid: int) -> None:
        """Remember a process group this session started (for the reaper)."""
        line = f"{pgid} {_start_time(pgid)}\n"
        for where in (self.dir / "groups", self.pointer):
            if where is not None:
                with open(where, "a") as fh:
                    fh.write(line)

    def close(self) -> None:
        unmount_under(self.dir)  # a LazyFS mount left behind would stop the removal
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.pointer is not None:
            self.pointer.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)


def opener_runs(session_id: str) -> bool:
    """Whether the process that opened the session still runs, judged from its id alone
    (the pid, and the second the session began: a pid reused by a process started later
    is not it); an id of another form is assumed to run."""
    try:
        day, clock, pid, _ = session_id.split("-")
        began = time.mktime(time.strptime(day + clock, "%Y%m%d%H%M%S"))
        ticks = _start_time(int(pid))
    except ValueError:
        return True
    if not ticks:
        return False
    return _boot_time() + ticks / os.sysconf("SC_CLK_TCK") <= began + 2


def _boot_time() -> float:
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def is_alive(session_dir: Path) -> bool:
    """True while the session's owner holds its lock."""
    try:
        fd = os.open(session_dir / "lock", os.O_RDWR)
    except FileNotFoundError:
        # a session still being created has no lock yet; give it a moment
        return time.time() - _mtime(session_dir) < 10
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def labelled_processes(session_ids: set[str] | None = None) -> dict[int, str]:
    """Pids of processes carrying a session label (all sessions, or only those given)."""
    found: dict[int, str] = {}
    needle = LABEL.encode() + b"="
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                env = fh.read()
        except OSError:
            continue
        start = env.find(needle)
        if start < 0:
            continue
        value = env[start + len(needle) :].split(b"\0", 1)[0].decode(errors="replace")
        if session_ids is None or value in session_ids:
            found[int(entry)] = value
    return found


def _stat(pid: int | str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode(errors="replace")
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def _start_time(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[19]) if fields else 0


def tree(pid: int) -> list[int]:
    """``pid`` and every live descendant."""
    return [pid, *descendants(pid)]


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children, grandchildren, ...), whatever its group.

    PostgreSQL's children call setsid(), so a process group alone does not hold them.
    Walks the kernel's per-thread ``children`` lists, which costs the size of the tree,
    not of the machine (a fault's kill is on the clock); without them (a kernel built
    without CONFIG_PROC_CHILDREN) it scans every process's parent in /proc.
    """
    return _walk(pid, _children if _HAS_CHILDREN_LISTS else _scan_parents())


def _walk(pid: int, children_of: Callable[[int], list[int]]) -> list[int]:
    found, todo = [], list(children_of(pid))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children_of(child))
    return found


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                out.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return out


def _scan_parents() -> Callable[[int], list[int]]:
    """Children lookup from one scan of every process's parent in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(entry)
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    return lambda pid: children.get(pid, [])


def _descendants_by_scan(pid: int) -> list[int]:
    return _walk(pid, _scan_parents())


_HAS_CHILDREN_LISTS = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def group_members(groups: dict[int, int]) -> list[int]:
    """Live (not zombie) pids in the given process groups (pgid -> leader start time).

    A pgid cannot be reused while any process is in its group; a group whose leader
    pid now belongs to a process started at another time is someone else's and skipped.
    """
    valid = {
        pgid
        for pgid, started in groups.items()
        if _stat(pgid) is None or _start_time(pgid) == started
    }
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(entry)
            if fields and int(fields[2]) in valid and fields[0] != "Z":  # zombies are dead
                members.append(int(entry))
    return members


def recorded_groups(session_dir: Path) -> dict[int, int]:
    try:
        text = (session_dir / "groups").read_text()
    except OSError:
        return {}
    pairs = (line.split() for line in text.splitlines() if line.strip())
    return {int(pgid): int(started) for pgid, started in pairs}


def kill_groups(groups: dict[int, int]) -> int:
    pids = group_members(groups)
    segments = shm.mapped_segments(pid for p in pids for pid in tree(p))
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    shm.unlink(segments)
    return len(pids)


def kill_labelled(session_ids: set[str]) -> int:
    """SIGKILL every process group holding a process labelled with one of the sessions."""
    pids = labelled_processes(session_ids)
    segments = shm.mapped_segments(pid for p in pids for pid in tree(p))
    for pid in pids:
        with contextlib.suppress(OSError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    shm.unlink(segments)
    return len(pids)


def reap_elsewhere() -> list[str]:
    """Kill the process groups of crashed sessions that lived under another base (their
    pointer files in the default base); their own base's reaper removes the rest."""
    pointers = base_dir() / ELSEWHERE
    if not pointers.is_dir():
        return []
    ended = []
    for pointer in pointers.iterdir():
        try:
            where, *groups = pointer.read_text().splitlines()
        except (OSError, ValueError):
            continue
        session = Path(where)
        if session.is_dir() and is_alive(session):
            continue
        pairs = (line.split() for line in groups if line.strip())
        kill_groups({int(p[0]): int(p[1]) for p in pairs if len(p) == 2 and p[1].isdigit()})
        kill_labelled({pointer.name})
        pointer.unlink(missing_ok=True)
        ended.append(pointer.name)
    return ended


def reap(base: Path | None = None) -> list[str]:
    """Remove what crashed sessions left behind: processes, port reservations, files."""
    base = base or base_dir()
    elsewhere = reap_elsewhere()
    sessions = base / "sessions"
    found = sessions.iterdir() if sessions.is_dir() else iter(())
    dead = [p for p in found if p.is_dir() and not is_alive(p)]
    ids = {p.name for p in dead}
    # one listing for both: this base's dead sessions (by their lock) and orphans elsewhere
    portguard.drop_stale(lambda sid: sid not in ids and opener_runs(sid))
    if not dead:
        return elsewhere
    for path in dead:
        kill_groups(recorded_groups(path))
    kill_labelled(ids)
    ports = base / "ports"
    if ports.is_dir():
        for reservation in ports.iterdir():
            with contextlib.suppress(OSError):
                if reservation.read_text() in ids:
                    reservation.unlink()
    for path in dead:
        unmount_under(path)  # the killed LazyFS processes' stale mounts
        shutil.rmtree(path, ignore_errors=True)
    return sorted(ids | set(elsewhere))
