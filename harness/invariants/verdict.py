"""Verdicts: what one invariant concluded, with the figures that decided it.

`valid` is `True` (holds), `False` (violated) or `None` (unknown: the checker crashed
or had nothing to judge). `compose` merges verdicts ranking false > unknown > true, so
an unknown never hides behind a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Figure", "Verdict", "compose", "guarded"]

Figure = float | int | str


@dataclass(frozen=True)
class Verdict:
    """One invariant's conclusion: valid (True/False/None), figures, a message, evidence,
    and for a failure the blame (`harness.blame`: what set it off)."""

    name: str
    valid: bool | None
    figures: Mapping[str, Figure] = field(default_factory=dict)
    message: str = ""
    evidence: tuple[str, ...] = ()
    blame: str = ""

    @property
    def outcome(self) -> Literal["pass", "fail", "unknown"]:
        return "pass" if self.valid is True else "fail" if self.valid is False else "unknown"

    def __str__(self) -> str:
        figures = ", ".join(f"{k}={_fmt(v)}" for k, v in self.figures.items())
        text = f"{self.name}: {self.outcome}"
        if self.message:
            text += f" - {self.message}"
        if figures:
            text += f" [{figures}]"
        return text


def _fmt(v: Figure) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _rank(v: bool | None) -> int:
    return 2 if v is False else 1 if v is None else 0


def compose(verdicts: Iterable[Verdict], name: str = "all") -> Verdict:
    """Merge verdicts: false > unknown > true. No verdicts at all is unknown, not a pass."""
    vs = list(verdicts)
    if not vs:
        return Verdict(name, None, {"checked": 0}, "no invariant was checked")
    worst = max(vs, key=lambda v: _rank(v.valid)).valid
    figures: dict[str, Figure] = {
        "pass": sum(v.valid is True for v in vs),
        "fail": sum(v.valid is False for v in vs),
        "unknown": sum(v.valid is None for v in vs),
    }
    bad = [v.name for v in vs if v.valid is not True]
    message = "all hold" if not bad else "not holding: " + ", ".join(bad)
    return Verdict(name, worst, figures, message)


def guarded(name: str, check: Callable[..., Verdict], *args: Any) -> Verdict:
    """Call a checker; a crash becomes an unknown verdict (never a pass) that says why."""
    try:
        verdict = check(*args)
    except Exception as exc:  # a broken checker must not pass, nor stop the others
        return Verdict(name, None, {}, f"checker crashed: {type(exc).__name__}: {exc}")
    if not isinstance(verdict, Verdict):
        return Verdict(name, None, {}, f"checker returned {type(verdict).__name__}, not a Verdict")
    return verdict
