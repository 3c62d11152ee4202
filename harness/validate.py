"""Reading untrusted YAML/dict data with errors that name file, key path, value and expectation.

A :class:`Node` wraps one value and the path that led to it; accessors check the
type and raise :class:`~harness.errors.ConfigError` on mismatch, so loaders read
like a schema::

    root = Node.load(path)
    name = root.key("name").str()
    for comp in root.key("components").items():   # ("app", Node) pairs
        comp.node.key("command").str_list()
    root.no_unknown_keys({"name", "components"})
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError

_MISSING = object()


@dataclass(frozen=True)
class Node:
    """One value read from a configuration source, with where it came from."""

    value: Any
    source: str
    path: str = ""

    @classmethod
    def load(cls, path: Path | str) -> Node:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(str(path), "", None, "a readable YAML file", str(exc)) from None
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(
                str(path), where, None, "valid YAML", str(exc).split("\n")[0]
            ) from None
        return cls(value if value is not None else {}, str(path))

    # navigation -----------------------------------------------------------------
    def _child_path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def fail(self, expected: str, hint: str = "") -> ConfigError:
        return ConfigError(self.source, self.path, self.value, expected, hint)

    def mapping(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            raise self.fail("a mapping")
        return self.value

    def has(self, key: str) -> bool:
        return key in self.mapping()

    def key(self, key: str, default: Any = _MISSING) -> Node:
        data = self.mapping()
        if key not in data:
            if default is _MISSING:
                raise ConfigError(
                    self.source, self._child_path(key), None, "a value (required key)"
                )
            return Node(default, self.source, self._child_path(key))
        return Node(data[key], self.source, self._child_path(key))

    def items(self) -> Iterator[tuple[str, Node]]:
        for k, v in self.mapping().items():
            if not isinstance(k, str):
                raise ConfigError(self.source, self.path, k, "string keys")
            yield k, Node(v, self.source, self._child_path(k))

    def elements(self) -> Iterator[Node]:
        if not isinstance(self.value, list):
            raise self.fail("a list")
        for i, v in enumerate(self.value):
            yield Node(v, self.source, self._child_path(i))

    def no_unknown_keys(self, allowed: set[str] | frozenset[str]) -> None:
        for k in self.mapping():
            if k not in allowed:
                raise ConfigError(
                    self.source,
                    self._child_path(str(k)),
                    k,
                    f"one of {sorted(allowed)}",
                    "unknown key",
                )

    # scalars --------------------------------------------------------------------
    def str(self) -> str:
        if not isinstance(self.value, str) or not self.value:
            raise self.fail("a non-empty string")
        return self.value

    def bool(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.fail("true or false")
        return self.value

    def int(self, minimum: int | None = None, maximum: int | None = None) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise self.fail("an integer")
        self._check_range(minimum, maximum)
        return self.value

    def number(self, minimum: float | None = None, maximum: float | None = None) -> float:
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            raise self.fail("a number")
        self._check_range(minimum, maximum)
        return float(self.value)

    def _check_range(self, minimum: float | None, maximum: float | None) -> None:
        if minimum is not None and self.value < minimum:
            raise self.fail(f"a number >= {minimum}")
        if maximum is not None and self.value > maximum:
            raise self.fail(f"a number <= {maximum}")

    def choice(self, options: tuple[str, ...] | list[str]) -> str:
        if self.value not in options:
            raise self.fail(f"one of {list(options)}")
        return self.value

    def str_list(self) -> tuple[str, ...]:
        """A list of scalars, each turned into a string (YAML `5432` becomes `"5432"`)."""
        out = []
        for el in self.elements():
            if isinstance(el.value, bool) or not isinstance(el.value, str | int | float):
                raise el.fail("a string")
            out.append(str(el.value))
        if not out:
            raise self.fail("a non-empty list")
        return tuple(out)

    def str_map(self) -> dict[str, str]:
        out = {}
        for k, v in self.items():
            if isinstance(v.value, bool) or not isinstance(v.value, str | int | float):
                raise v.fail("a string")
            out[k] = str(v.value)
        return out
