"""Evidence: the proof, with timestamps, that a fault's inject or heal took effect.

A fault never just "ran": it returns an :class:`Evidence` made of :class:`Check` s, each
one thing observed on the real system (a round trip through a link, a process state, a
refused connection). ``took_effect`` is true only when there is at least one check and
every check held, so a fault that silently did nothing shows up as ``False`` and the run
turns it into a failure. Times are ``time.monotonic()`` seconds (the workload's clock);
:meth:`Evidence.to_json` gives them relative to the run's ``t0`` for the journal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["inject", "heal"]
Figure = float | int | str | bool | None


@dataclass(frozen=True)
class Check:
    """One observation: on ``target`` (a link or component), ``claim`` held or not, at ``at``."""

    target: str
    claim: str
    ok: bool
    at: float
    figures: Mapping[str, Figure] = field(default_factory=dict)

    def to_json(self, t0: float = 0.0) -> dict[str, Any]:
        return {
            "target": self.target,
            "claim": self.claim,
            "ok": self.ok,
            "at": round(self.at - t0, 6),
            "figures": {k: _clean(v) for k, v in self.figures.items()},
        }


@dataclass(frozen=True)
class Evidence:
    """What one inject or heal of one fault did, and the checks that prove it."""

    fault: str  # the fault's description, e.g. "latency 500±100 ms downstream on app-1->postgres"
    phase: Action
    started: float  # actuation began (monotonic s)
    actuated: float  # the API call / signal / command returned
    checks: tuple[Check, ...] = ()
    error: str = ""  # an exception raised while acting or checking
    figures: Mapping[str, Figure] = field(default_factory=dict)

    @property
    def took_effect(self) -> bool:
        return not self.error and bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def observed(self) -> float | None:
        """When the last check confirmed the effect (None unless it took effect)."""
        return max(c.at for c in self.checks) if self.took_effect else None

    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def summary(self) -> str:
        state = "took effect" if self.took_effect else "DID NOT take effect"
        lines = [f"{self.phase} {self.fault}: {state}"]
        if self.error:
            lines.append(f"  error: {self.error}")
        lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.target}: {c.claim}" for c in self.checks]
        if not self.checks and not self.error:
            lines.append("  no check was made")
        return "\n".join(lines)

    def to_json(self, t0: float = 0.0) -> dict[str, Any]:
        observed = self.observed
        return {
            "fault": self.fault,
            "phase": self.phase,
            "took_effect": self.took_effect,
            "started": round(self.started - t0, 6),
            "actuated": round(self.actuated - t0, 6),
            "observed": None if observed is None else round(observed - t0, 6),
            "error": self.error,
            "figures": {k: _clean(v) for k, v in self.figures.items()},
            "checks": [c.to_json(t0) for c in self.checks],
        }


def _clean(value: Figure) -> Figure:
    """JSON has no NaN or infinity; round floats to microseconds."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    return value
