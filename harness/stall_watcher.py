"""The stall watcher process of harness/stalls.py, one per CPU. Standard library only and
run by its path (``python -I -S stall_watcher.py CPU TICK THRESHOLD PARENT``) so that it
starts in milliseconds. Prints ``ready 1`` (real-time) or ``ready 0``, then one line ``cpu
at seconds`` per wake-up at least THRESHOLD late, until SIGTERM, or until its parent (the
pid PARENT) dies, however it dies: the kernel kills it then (``PR_SET_PDEATHSIG``), so a
real-time process pinned to a CPU never outlives a harness killed with SIGKILL."""

import contextlib
import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1


def die_with(parent: int) -> None:
    """SIGKILL this process when the thread that started it ends; exit at once if the
    parent is gone already (it died before the request was made)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:
        sys.exit(0)


def watch(cpu: int, tick: float, threshold: float, parent: int) -> None:
    die_with(parent)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {cpu})
    realtime = True
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (OSError, AttributeError):
        realtime = False
    print(f"ready {int(realtime)}", flush=True)
    while True:
        before = time.monotonic()
        time.sleep(tick)
        late = time.monotonic() - before - tick
        if late >= threshold:
            print(f"{cpu} {before + tick:.6f} {late:.6f}", flush=True)


if __name__ == "__main__":
    watch(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
