"""Verdicts on the run itself rather than on the system: whether the load generator kept
to its schedule. (The machine's own stalls are `harness.stalls`.) When one does not
hold, the run is inconclusive (`harness.experiment.Judgement`)."""

from __future__ import annotations

from harness.invariants import Verdict
from harness.load import LoadResult

__all__ = ["GENERATOR", "MAX_LATENESS_P99", "MAX_NEVER_SENT", "generator_verdict"]

GENERATOR = "load_generator"
MAX_NEVER_SENT = 0.10  # the system must have faced at least 90% of the load asked of it
MAX_LATENESS_P99 = 0.1  # seconds: sends later than this distort latency and rate alike


def generator_verdict(load: LoadResult) -> Verdict:
    """Whether the load generator kept to its schedule: past `MAX_NEVER_SENT` of arrivals
    never sent, or a p99 lateness past `MAX_LATENESS_P99`, a pass would claim more than was
    tested; the verdict is then unknown and says what to do."""
    share = load.never_sent / load.arrivals if load.arrivals else 0.0
    figures = {
        "arrivals": load.arrivals,
        "never_sent": load.never_sent,
        "never_sent_share": round(share, 4),
        "lateness_p99_ms": round(load.lateness_p99 * 1000, 2),
    }
    rate = load.arrivals / load.duration if load.duration > 0 else 0.0
    if share > MAX_NEVER_SENT:
        return Verdict(
            GENERATOR,
            None,
            figures,
            f"{load.never_sent:,} of {load.arrivals:,} arrivals never sent: the machine could"
            f" not offer {rate:,.0f} req/s; close other work or lower the load",
        )
    if load.lateness_p99 > MAX_LATENESS_P99:
        return Verdict(
            GENERATOR,
            None,
            figures,
            f"the generator sent late (p99 {load.lateness_p99 * 1000:.0f} ms behind schedule):"
            " the machine was too busy to offer the load on time; close other work",
        )
    return Verdict(GENERATOR, True, figures, "the generator kept to its schedule")
