"""Stop signals: SIGTERM and SIGHUP end a run as Ctrl-C does, so the teardown that runs on
Ctrl-C also runs when CI, a supervisor or ``kill`` ends it, and each signal acts once.

Outside the event loop (starting, seeding, checking) a signal raises KeyboardInterrupt in
the main thread. Inside the load generator's loop it must not (an exception raised in a
protocol callback is swallowed by the loop): there the loop's own signal handlers cancel
the running task (`harness.load.run_generator`), which then ends in KeyboardInterrupt.

    with interrupting():         # installed for the block, the previous handlers restored
        run(experiment, options)
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["STOP_SIGNALS", "TERMINATING", "interrupting"]

TERMINATING = (signal.SIGTERM, signal.SIGHUP)
STOP_SIGNALS = (signal.SIGINT, *TERMINATING)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def interrupting() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt inside the block (main thread only; a
    signal someone chose to ignore, as ``nohup`` does, stays ignored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    sig: int
    for sig in TERMINATING:
        current = signal.getsignal(sig)
        if current is signal.SIG_IGN:
            continue
        previous[sig] = current
        signal.signal(sig, _interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
