"""What parsing an invariant may check its parameters against: the workload's phases and
the system's operations, SLO, state readers, presets and domain kinds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.operations import Operations
from harness.validate import Node

__all__ = ["Context", "PresetLike"]


class PresetLike(Protocol):
    """A named invariant declared by the system (`harness.sut.Preset`)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def params(self) -> Mapping[str, Any]: ...
    @property
    def node(self) -> Node: ...


@dataclass(frozen=True)
class Context:
    """What parsing an invariant may check its parameters against."""

    phases: tuple[str, ...] | None = None
    operations: Operations | None = None
    slo_op: str | None = None
    state: tuple[str, ...] = ()
    presets: Mapping[str, PresetLike] = field(default_factory=dict)
    kinds: Mapping[str, Any] = field(default_factory=dict)  # name -> registry.Kind

    @property
    def ops(self) -> tuple[str, ...] | None:
        return None if self.operations is None else tuple(self.operations.names)
