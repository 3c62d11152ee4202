"""Termination signals as Ctrl-C: SIGTERM and SIGHUP raise KeyboardInterrupt, so the
teardown that runs on Ctrl-C also runs when CI, a supervisor or ``kill`` ends a run."""

from __future__ import annotations

import signal
import threading

TERMINATING = (signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def terminate_as_interrupt() -> None:
    """Install the handler for SIGTERM and SIGHUP where nobody else handles them.

    Only from the main thread (Python's rule); a signal someone chose to ignore (``nohup``)
    or to handle stays as it was.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in TERMINATING:
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _interrupt)
