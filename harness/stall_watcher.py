"""The stall watcher process of harness/stalls.py, one per CPU. Standard library only and
run by its path (``python -I -S stall_watcher.py CPU TICK THRESHOLD``) so that it starts
in milliseconds. Prints ``ready 1`` (real-time) or ``ready 0``, then one line ``cpu at
seconds`` per wake-up at least THRESHOLD late, until SIGTERM."""

import contextlib
import os
import signal
import sys
import time


def watch(cpu: int, tick: float, threshold: float) -> None:
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
    watch(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]))
