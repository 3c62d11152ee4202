"""Value generators: the seeded draws that fill an operation's templates, declared as data.

```yaml
values:
  person: {int: [1, 100000]}              # uniform integers, both ends included
  venue:  {zipf: [1, 2000], s: 1.0}       # Zipf popularity over the range (ids shuffled)
  price:  {float: [0.5, 20]}              # uniform
  id:     {uuid: true}                    # a random UUID (from the seeded draw)
  colour: {choice: [green, red], weights: [0.98, 0.02]}
  city:   {file: cities.csv, column: name}   # a choice among a CSV column or a JSON list
  scan_id: {sequence: s}                  # unique per run: <tag>-<class>-s1, -s2, ...
  gate_id: {sequence: g, cycle: 50}       # the same, wrapping after 50: ids come back
  results: {list: 20, item: {sample_id: {sequence: r}, person_id: {int: [1, 100000]}}}
  region: eu-1                            # a constant (or {const: ...})
```

A generator is parsed once (`parse_generator`) and compiled per workload seed
(`Generator.compile(seed)`), giving a plain function of a `random.Random` and the
`Stream` it draws for. Draws never do I/O; a file is read when the declaration is parsed.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import json
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.validate import MAX_FILE_BYTES, Node

__all__ = ["KINDS", "Draw", "Generator", "Stream", "fields_of", "parse_generator"]

KINDS = ("int", "float", "zipf", "uuid", "choice", "file", "sequence", "list", "const")
MAX_RANGE = 10**12
MAX_LIST = 10_000
MAX_ZIPF = 1_000_000


@dataclass
class Stream:
    """Who is drawing: the run's `tag`, the client class of the arrival, and the counters
    behind `sequence` values (one set per stream of arrivals)."""

    tag: str
    client_class: str = ""
    counters: dict[str, int] = field(default_factory=dict)

    def next(self, name: str) -> int:
        n = self.counters.get(name, 0) + 1
        self.counters[name] = n
        return n


Draw = Callable[[random.Random, Stream], Any]


@dataclass(frozen=True)
class Generator:
    """One declared value: its kind, its parameters, and (for `list`) its item generators."""

    name: str
    kind: str
    params: Mapping[str, Any]
    items: Mapping[str, Generator] | Generator | None = None

    def compile(self, seed: int) -> Draw:
        """A draw function for workloads of `seed` (Zipf ids are shuffled by it)."""
        p, kind = self.params, self.kind
        if kind == "const":
            value = p["value"]
            return lambda _rng, _s: value
        if kind == "int":
            lo, hi = p["low"], p["high"]
            return lambda rng, _s: rng.randint(lo, hi)
        if kind == "float":
            flo, fhi = p["low"], p["high"]
            return lambda rng, _s: rng.uniform(flo, fhi)
        if kind == "uuid":
            return lambda rng, _s: str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if kind in ("choice", "file"):
            options = tuple(p["options"])
            weights = p.get("weights")
            if weights:
                cum = list(itertools.accumulate(weights))
                total, last = cum[-1], len(options) - 1
                return lambda rng, _s: options[min(bisect.bisect(cum, rng.random() * total), last)]
            return lambda rng, _s: options[rng.randrange(len(options))]
        if kind == "zipf":
            return _zipf(p["low"], p["high"], p["s"], p["shuffle"], f"{seed}:{self.name}")
        if kind == "sequence":
            prefix, name, cycle = p["prefix"], self.name, p.get("cycle")
            if cycle:
                return lambda _rng, s: (
                    f"{s.tag}-{s.client_class}-{prefix}{(s.next(name) - 1) % cycle + 1}"
                )
            return lambda _rng, s: f"{s.tag}-{s.client_class}-{prefix}{s.next(name)}"
        if kind == "list":
            n = p["length"]
            if isinstance(self.items, Generator):
                one = self.items.compile(seed)
                return lambda rng, s: [one(rng, s) for _ in range(n)]
            assert isinstance(self.items, Mapping)
            fields = tuple((k, g.compile(seed)) for k, g in self.items.items())
            return lambda rng, s: [{k: d(rng, s) for k, d in fields} for _ in range(n)]
        raise AssertionError(f"unknown generator kind {kind!r}")


def _zipf(lo: int, hi: int, s: float, shuffle: bool, seed: str) -> Draw:
    n = hi - lo + 1
    cum = list(itertools.accumulate(1.0 / (k**s) for k in range(1, n + 1)))
    total, last = cum[-1], n - 1
    ids = list(range(lo, hi + 1))
    if shuffle:  # popularity rank -> id, so the popular ids are not just the low ones
        random.Random(seed).shuffle(ids)
    return lambda rng, _s: ids[min(bisect.bisect(cum, rng.random() * total), last)]


def parse_generator(node: Node, name: str, base: Path | None = None) -> Generator:
    """One entry of a `values:` mapping; `base` is the directory files are relative to."""
    v = node.value
    if not isinstance(v, dict):
        if isinstance(v, list):
            raise node.fail(f"a generator mapping with one of {list(KINDS)}, or a constant scalar")
        return Generator(name, "const", {"value": v})
    kinds = [k for k in v if k in KINDS]
    if len(kinds) != 1:
        raise node.fail(
            f"a mapping with exactly one generator kind among {list(KINDS)}",
            f"found {kinds or 'none'}",
        )
    kind = kinds[0]
    return _PARSERS[kind](node, name, base)


def _range(node: Node, key: str, integer: bool) -> tuple[Any, Any]:
    rn = node.key(key)
    items = list(rn.elements()) if isinstance(rn.value, list) else []
    if len(items) != 2:
        raise rn.fail("[low, high], e.g. [1, 1000]")
    lo: float
    hi: float
    if integer:
        lo = items[0].int(minimum=-MAX_RANGE, maximum=MAX_RANGE)
        hi = items[1].int(minimum=-MAX_RANGE, maximum=MAX_RANGE)
    else:
        lo = items[0].number(minimum=-MAX_RANGE, maximum=MAX_RANGE)
        hi = items[1].number(minimum=-MAX_RANGE, maximum=MAX_RANGE)
    if hi < lo:
        raise items[1].fail(f"a number >= {lo} (the low end)")
    return lo, hi


def _p_const(node: Node, name: str, base: Path | None) -> Generator:
    node.no_unknown_keys({"const"})
    return Generator(name, "const", {"value": node.key("const").value})


def _p_int(node: Node, name: str, base: Path | None) -> Generator:
    node.no_unknown_keys({"int"})
    lo, hi = _range(node, "int", True)
    return Generator(name, "int", {"low": lo, "high": hi})


def _p_float(node: Node, name: str, base: Path | None) -> Generator:
    node.no_unknown_keys({"float"})
    lo, hi = _range(node, "float", False)
    return Generator(name, "float", {"low": lo, "high": hi})


def _p_zipf(node: Node, name: str, base: Path | None) -> Generator:
    node.no_unknown_keys({"zipf", "s", "shuffle"})
    lo, hi = _range(node, "zipf", True)
    if hi - lo + 1 > MAX_ZIPF:
        raise node.key("zipf").fail(f"a range of at most {MAX_ZIPF:,} values")
    s = node.key("s", 1.0).number(minimum=0, maximum=10)
    shuffle = node.key("shuffle", True).bool()
    return Generator(name, "zipf", {"low": lo, "high": hi, "s": s, "shuffle": shuffle})


def _p_uuid(node: Node, name: str, base: Path | None) -> Generator:
    node.no_unknown_keys({"uuid"})
    if node.key("uuid").value is not True:
        raise node.key("uuid").fail("true")
    return Generator(name, "uuid", {})


def _weights(node: Node, n: int) -> tuple[float, ...] | None:
    if not node.has("weights"):
        return None
    wn = node.key("weights")
    weights = tuple(el.number(minimum=0) for el in wn.elements())
    if len(weights) != n:
        raise wn.fail(f"{n} weights, one per option")
    if sum(weights) <= 0:
        raise wn.fail("weights summing to more than 0")
    return weights


def _p_choice(node: Node, name: str, base: Path | None) -> Generator:
    node.no_unknown_keys({"choice", "weights"})
    options = [el.value for el in node.key("choice").elements()]
    if not options:
        raise node.key("choice").fail("a non-empty list of options")
    params: dict[str, Any] = {"options": tuple(options)}
    weights = _weights(node, len(options))
    if weights:
        params["weights"] = weights
    return Generator(name, "choice", params)


def _p_file(node: Node, name: str, base: Path | None) -> Generator:
    node.no_unknown_keys({"file", "column", "weights"})
    fn = node.key("file")
    path = Path(fn.str())
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES * 16 + 1)
    except OSError as exc:
        raise fn.fail("a readable CSV or JSON file", exc.strerror or str(exc)) from None
    if len(data) > MAX_FILE_BYTES * 16:
        raise fn.fail(f"a file of at most {MAX_FILE_BYTES * 16:,} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise fn.fail("a UTF-8 CSV or JSON file", f"{path} is not UTF-8 text") from None
    options: list[Any]
    if path.suffix == ".json":
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise fn.fail("a JSON file holding a list", f"{path}: {exc}") from None
        if not isinstance(loaded, list) or not loaded:
            raise fn.fail("a JSON file holding a non-empty list", f"{path} holds no list")
        if node.has("column"):
            col = node.key("column").str()
            try:
                loaded = [row[col] for row in loaded]
            except (KeyError, TypeError):
                raise node.key("column").fail(f"a key of every object in {path}") from None
        options = loaded
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows:
            raise fn.fail("a CSV file with a header line and at least one row")
        col = node.key("column").str() if node.has("column") else next(iter(rows[0]))
        if col not in rows[0]:
            raise node.key("column").fail(f"a column of {path}: {list(rows[0])}")
        options = [row[col] for row in rows]
    params: dict[str, Any] = {"options": tuple(options), "file": str(path)}
    weights = _weights(node, len(options))
    if weights:
        params["weights"] = weights
    return Generator(name, "file", params)


def _p_sequence(node: Node, name: str, base: Path | None) -> Generator:
    node.no_unknown_keys({"sequence", "cycle"})
    prefix = node.key("sequence").value
    if prefix is True:
        prefix = ""
    if not isinstance(prefix, str):
        raise node.key("sequence").fail("a prefix (a string) or true")
    params: dict[str, Any] = {"prefix": prefix}
    if node.has("cycle"):  # ids wrap after this many: a workload that repeats them
        params["cycle"] = node.key("cycle").int(minimum=1, maximum=MAX_RANGE)
    return Generator(name, "sequence", params)


def _p_list(node: Node, name: str, base: Path | None) -> Generator:
    node.no_unknown_keys({"list", "item"})
    length = node.key("list").int(minimum=0, maximum=MAX_LIST)
    item = node.key("item")
    items: Mapping[str, Generator] | Generator
    if isinstance(item.value, dict) and not any(k in KINDS for k in item.value):
        items = {k: parse_generator(n, f"{name}.{k}", base) for k, n in item.items()}
        if not items:
            raise item.fail("a generator, or a mapping of field -> generator")
    else:
        items = parse_generator(item, f"{name}.item", base)
    return Generator(name, "list", {"length": length}, items)


_PARSERS: dict[str, Callable[[Node, str, Path | None], Generator]] = {
    "const": _p_const,
    "int": _p_int,
    "float": _p_float,
    "zipf": _p_zipf,
    "uuid": _p_uuid,
    "choice": _p_choice,
    "file": _p_file,
    "sequence": _p_sequence,
    "list": _p_list,
}


def fields_of(generator: Generator) -> frozenset[str]:
    """The field names of a `list` of mappings' items (empty otherwise)."""
    if generator.kind == "list" and isinstance(generator.items, Mapping):
        return frozenset(generator.items)
    return frozenset()
