"""Publishing a run: its `summary.md` and `report.html`, written from the journal and the
history after the run. A report that fails never fails the run: it says so and the
journal stays (`harness report RUN_DIR` renders it again)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["publish"]


def publish(run_dir: Path, say: Callable[[str], None] | None = None) -> Path | None:
    """Write the run's summary and report; the report's path, or None when it failed."""
    from harness.report import write_report
    from harness.summary import write_summary

    try:
        write_summary(run_dir)
        return write_report(run_dir)
    except Exception as exc:  # the journal is the record; the page is a view of it
        (say or print)(f"report not written: {type(exc).__name__}: {exc}")
        return None
