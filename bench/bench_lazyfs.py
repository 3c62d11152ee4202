"""What LazyFS's FUSE layer costs, measured against the plain backing directory in the
same run.

Prints scans/s through the reference system's own scan spool (``reference_system.spool``:
group commit, ``fdatasync`` before each acknowledgement, as the hardened app workers run
it; ``--concurrency`` appends in flight) with fsync on and off, on the plain directory
and through the mount (BACKING in the same filesystem), and their ratio; then ops/s of
200-byte appends (one ``write`` per record) with an ``fsync`` after each and without;
then, unless ``--no-postgres``,
PostgreSQL's commit rate (pgbench, one single-row INSERT per transaction, fsync=on,
2 clients) with its data directory on the plain directory and on the mount. Each
measurement runs for ``--seconds`` (default 3). Needs root, /dev/fuse and libfuse 3.

    .venv/bin/python bench/bench_lazyfs.py [--seconds 3] [--dir /var/tmp] [--no-postgres]
        [--spool-only] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from harness.lazyfs import LazyFSProcess, unmount_under
from harness.tools import find_binary
from reference_system.spool import ScanRecord, Spool

RECORD = b"r" * 199 + b"\n"


def appends(directory: Path, seconds: float, fsync: bool) -> float:
    """Records per second appended to a fresh file in ``directory``."""
    path = directory / f"spool-{'fsync' if fsync else 'nosync'}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    try:
        while True:
            for _ in range(50):
                os.write(fd, RECORD)
                if fsync:
                    os.fsync(fd)
            count += 50
            now = time.perf_counter()
            if now >= deadline:
                return count / (now - started)
    finally:
        os.close(fd)
        path.unlink()


def spool_rate(directory: Path, seconds: float, fsync: bool, concurrency: int) -> float:
    """Scans per second acknowledged by the reference spool in ``directory`` (fresh)."""
    where = directory / f"refspool-{'fsync' if fsync else 'nosync'}"
    ids = itertools.count()

    async def main() -> float:
        spool = Spool(where, fsync=fsync)
        done = 0
        deadline = time.perf_counter() + seconds

        async def gate() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                n = next(ids)
                at = "2026-12-07T07:40:00+00:00"
                await spool.append(ScanRecord(f"s-{n}", n % 100_000 + 1, n % 2000 + 1, at))
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(gate() for _ in range(concurrency)))
        spool.close()
        return done / (time.perf_counter() - started)

    try:
        return asyncio.run(main())
    finally:
        shutil.rmtree(where, ignore_errors=True)


def pgbench_tps(directory: Path, seconds: float) -> float:
    """Committed single-row INSERTs per second, PostgreSQL's data directory in ``directory``."""
    owner = pwd.getpwnam("postgres")
    as_pg = {"user": owner.pw_uid, "group": owner.pw_gid, "capture_output": True, "check": True}
    home = directory / "pg"
    home.mkdir(mode=0o700)
    os.chown(home, owner.pw_uid, owner.pw_gid)
    data, sockets = home / "data", home / "run"
    subprocess.run(
        [find_binary("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-N"], **as_pg
    )
    sockets.mkdir()
    os.chown(sockets, owner.pw_uid, owner.pw_gid)
    pg_ctl = find_binary("pg_ctl")
    options = f"-c listen_addresses= -k {sockets} -p 5432 -c fsync=on -c shared_buffers=32MB"
    subprocess.run(
        [pg_ctl, "-D", str(data), "-w", "-o", options, "-l", str(home / "log"), "start"], **as_pg
    )
    try:
        script = home / "insert.sql"
        script.write_text("INSERT INTO spool (pad) VALUES (repeat('x', 200));\n")
        conn = ["-h", str(sockets), "-p", "5432", "-U", "postgres", "postgres"]
        psql = find_binary("psql")
        subprocess.run(
            [psql, *conn, "-c", "CREATE TABLE spool (id bigserial PRIMARY KEY, pad text)"], **as_pg
        )
        out = subprocess.run(
            [
                find_binary("pgbench"),
                "-n",
                "-f",
                str(script),
                "-c",
                "2",
                "-j",
                "1",
                "-T",
                str(max(1, round(seconds))),
                *conn,
            ],
            **as_pg,
        ).stdout.decode()
        return float(re.search(r"tps = ([0-9.]+)", out).group(1))
    finally:
        subprocess.run([pg_ctl, "-D", str(data), "-m", "immediate", "stop"], **as_pg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--dir", default="/var/tmp", help="where BACKING and the plain directory live"
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--spool-only", action="store_true", help="only the reference spool")
    parser.add_argument("--concurrency", type=int, default=64, help="spool appends in flight")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-lazyfs-", dir=args.dir))
    work.chmod(0o755)
    plain, back, mnt = work / "plain", work / "back", work / "mnt"
    for d in (plain, back, mnt):
        d.mkdir()
    fstype = subprocess.run(["stat", "-f", "-c", "%T", str(work)], capture_output=True, text=True)
    print(
        f"BACKING and plain directory in {work} ({fstype.stdout.strip()}), {args.seconds:g} s each"
    )
    try:
        with LazyFSProcess(back, mnt, work / "lazyfs.sock") as lazyfs:
            head = f"reference spool, {args.concurrency} in flight"
            print(f"{head:<28}{'plain scans/s':>14}{'lazyfs scans/s':>16}{'ratio':>8}")
            for fsync in (True, False):
                base = spool_rate(plain, args.seconds, fsync, args.concurrency)
                lazy = spool_rate(mnt, args.seconds, fsync, args.concurrency)
                label = "fsync on (hardened)" if fsync else "fsync off"
                print(f"{label:<28}{base:>14,.0f}{lazy:>16,.0f}{lazy / base:>8.3f}")
            if args.spool_only:
                return
            print(f"{'200-byte appends':<28}{'plain ops/s':>14}{'lazyfs ops/s':>14}{'ratio':>8}")
            for fsync in (True, False):
                base = appends(plain, args.seconds, fsync)
                lazy = appends(mnt, args.seconds, fsync)
                label = "fsync after each" if fsync else "no fsync"
                print(f"{label:<28}{base:>14,.0f}{lazy:>14,.0f}{lazy / base:>8.3f}")
            if not args.no_postgres:
                base = pgbench_tps(plain, args.seconds)
                lazy = pgbench_tps(mnt, args.seconds)
                label = "pgbench INSERT tps, fsync=on"
                print(f"{label:<28}{base:>14,.0f}{lazy:>14,.0f}{lazy / base:>8.3f}")
            stats = lazyfs.client.stats()
            print(
                f"mount at the end: {stats.dirty_bytes} dirty bytes in {stats.dirty_files} files,"
                f" {stats.fsyncs} fsyncs served"
            )
    finally:
        unmount_under(work)
        with contextlib.suppress(OSError):
            shutil.rmtree(work)


if __name__ == "__main__":
    main()
