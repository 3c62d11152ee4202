"""Reading untrusted YAML with errors that name the file, the key path, the value and what
was expected.

`Node.load` is strict where PyYAML is lenient: the file must be UTF-8 text of at most
`MAX_FILE_BYTES`; a key given twice in one mapping is an error (PyYAML keeps the last);
numbers must be finite; and the document, with every alias expanded, may hold at most
`MAX_NODES` values (an alias tree that is cheap to load can be huge to walk). A
:class:`Node` wraps one value and the path that led to it; accessors check the type and
raise :class:`~harness.errors.ConfigError`, so loaders read like a schema::

    root = Node.load(path)
    name = root.key("name").str()
    for group, node in root.key("components").items():   # ("app", Node) pairs
        node.key("command").str_list()
    root.no_unknown_keys({"name", "components"})
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from harness.errors import ConfigError

Choice = TypeVar("Choice", bound=str)

__all__ = ["MAX_FILE_BYTES", "MAX_NODES", "Node", "load_yaml"]

MAX_FILE_BYTES = 1 << 20  # 1 MiB: an experiment or topology is a page, not a data set
MAX_NODES = 100_000  # values in the document with every alias expanded
_MISSING = object()


if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):
    """PyYAML's safe loader (libyaml's parser when PyYAML has it: a 1 MiB file in
    milliseconds, not seconds), refusing a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found an unhashable key",
                    key_node.start_mark,
                ) from None
            if key in seen:
                first = seen[key].start_mark
                raise _DuplicateKey(key, node, key_node.start_mark, first)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, node: yaml.Node, mark: yaml.Mark, first: yaml.Mark) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key, self.node, self.mark, self.first = key, node, mark, first


def _path_to(root: yaml.Node | None, target: yaml.Node) -> str | None:
    """The key path of `target` in the composed document (each node walked once)."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [] if root is None else [(root, "")]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack.append((v, _join(path, k.value if isinstance(k, yaml.ScalarNode) else "?")))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node.value))
    return None


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML text strictly (see the module docstring); `source` names it in errors."""
    loader = _StrictLoader(text)
    root: yaml.Node | None = None
    try:
        root = loader.get_single_node()
        value = None if root is None else loader.construct_document(root)
    except _DuplicateKey as exc:
        at = _path_to(root, exc.node)
        raise ConfigError(
            source,
            _join(at, exc.key) if at is not None else _where(exc.mark),
            exc.key,
            "each key once per mapping",
            f"given at {_where(exc.first)} and again at {_where(exc.mark)};"
            " YAML would silently keep only the last",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).split("\n")[0]
        context = getattr(exc, "context", None)
        line = None
        if mark is not None and 0 <= mark.line < text.count("\n") + 1:
            line = text.split("\n", mark.line + 1)[mark.line]
        hint = f"{problem} {context}" if context else problem
        raise ConfigError(source, _where(mark), line, "valid YAML", hint) from None
    finally:
        loader.dispose()
    _check_tree(value, source)
    return value


def _check_tree(value: Any, source: str) -> None:
    """Refuse non-finite numbers and documents too large once aliases are expanded."""
    sizes: dict[int, int] = {}

    def size(v: Any, path: str) -> int:
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(source, path, v, "a finite number")
        if not isinstance(v, dict | list):
            return 1
        known = sizes.get(id(v))
        if known is not None:  # an alias: counted again, walked once
            return known
        sizes[id(v)] = 1  # a recursive alias counts once while it is being walked
        if isinstance(v, dict):
            total = 1 + sum(size(k, path) + size(x, _join(path, k)) for k, x in v.items())
        else:
            total = 1 + sum(size(x, f"{path}[{i}]") for i, x in enumerate(v))
        if total > MAX_NODES:
            raise ConfigError(
                source,
                path,
                f"{total:,}+ values",
                f"at most {MAX_NODES:,} values with every alias expanded",
                "an alias tree this large is refused before anything walks it",
            )
        sizes[id(v)] = total
        return total

    size(value, "")


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _read_text(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            str(path), "", None, "a readable YAML file", exc.strerror or str(exc)
        ) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            str(path),
            "",
            f"a file over {MAX_FILE_BYTES:,} bytes",
            f"at most {MAX_FILE_BYTES:,} bytes",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(path),
            f"byte {exc.start}",
            data[exc.start : exc.start + 4],
            "UTF-8 text",
            "the file is binary or in another encoding",
        ) from None


@dataclass(frozen=True)
class Node:
    """One value read from a configuration source, with where it came from."""

    value: Any
    source: str
    path: str = ""

    @classmethod
    def load(cls, path: Path | str) -> Node:
        """The YAML file at `path` as the root node (an empty file is an empty mapping)."""
        path = Path(path)
        value = load_yaml(_read_text(path), str(path))
        return cls(value if value is not None else {}, str(path))

    # navigation -----------------------------------------------------------------
    def _child_path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def fail(self, expected: str, hint: str = "") -> ConfigError:
        return ConfigError(self.source, self.path, self.value, expected, hint)

    def child(self, value: Any, key: str | int) -> Node:
        """A node for `value` below this one (a default, a rewritten short form)."""
        return Node(value, self.source, self._child_path(key))

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
        if not math.isfinite(self.value):
            raise self.fail("a finite number")
        self._check_range(minimum, maximum)
        return float(self.value)

    def _check_range(self, minimum: float | None, maximum: float | None) -> None:
        if minimum is not None and maximum is not None and not minimum <= self.value <= maximum:
            raise self.fail(f"a number in [{minimum:g}, {maximum:g}]")
        if minimum is not None and self.value < minimum:
            raise self.fail(f"a number >= {minimum:g}")
        if maximum is not None and self.value > maximum:
            raise self.fail(f"a number <= {maximum:g}")

    def choice(self, options: Sequence[Choice]) -> Choice:
        """The value, which must be one of ``options`` (typed as they are: a tuple of
        literals gives a literal)."""
        if not isinstance(self.value, str) or self.value not in options:
            raise self.fail(f"one of {list(options)}")
        return options[options.index(self.value)]

    def str_list(self) -> tuple[builtins.str, ...]:
        """A list of scalars, each turned into a string (YAML `5432` becomes `"5432"`)."""
        out = []
        for el in self.elements():
            if isinstance(el.value, bool) or not isinstance(el.value, str | int | float):
                raise el.fail("a string")
            out.append(str(el.value))
        if not out:
            raise self.fail("a non-empty list")
        return tuple(out)

    def str_map(self) -> dict[builtins.str, builtins.str]:
        out = {}
        for k, v in self.items():
            if isinstance(v.value, bool) or not isinstance(v.value, str | int | float):
                raise v.fail("a string")
            out[k] = str(v.value)
        return out
