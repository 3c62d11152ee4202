"""The plan of the house, checked from the source: the core knows no reference system, its
modules import each other without a circle, and the public API is what it says."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import harness

ROOT = Path(__file__).parents[2]
CORE = ROOT / "harness"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path) -> set[str]:
    """Modules imported when the module loads (not inside functions, not TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in [node] if not isinstance(node, ast.Try) else node.body:
            if isinstance(sub, ast.Import):
                out.update(alias.name for alias in sub.names)
            elif isinstance(sub, ast.ImportFrom):
                if sub.level:
                    base = package.rsplit(".", sub.level - 1)[0] if sub.level > 1 else package
                    mod = f"{base}.{sub.module}" if sub.module else base
                else:
                    mod = sub.module or ""
                out.add(mod)
                out.update(f"{mod}.{alias.name}" for alias in sub.names)
    return out


MODULES = {module_name(p): p for p in CORE.rglob("*.py")}


def test_the_core_imports_no_reference_system() -> None:
    offenders = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            mods = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(m == "reference_system" or m.startswith("reference_system.") for m in mods):
                offenders[name] = node.lineno
    assert not offenders, offenders


def test_no_import_circle_among_core_modules() -> None:
    graph = {
        name: {m for m in top_level_imports(path) if m in MODULES and m != name}
        for name, path in MODULES.items()
    }
    # a package's __init__ importing its own submodules is how packages re-export
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    assert sum(len(v) for v in graph.values()) > 100  # the walk does see the imports
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles[:3]


def test_the_public_api_resolves_and_is_sorted() -> None:
    assert harness.__all__ == sorted(harness.__all__)
    for name in harness.__all__:
        assert getattr(harness, name) is not None, name
    assert callable(harness.run_experiment) and callable(harness.load_experiment)


def test_each_public_name_imports_lazily_in_a_fresh_interpreter_and_is_typed() -> None:
    """`from harness import X` for every X of `__all__`, each in a clean interpreter state
    (nothing of the harness loaded before); and the `TYPE_CHECKING` imports, which are what
    a type checker sees, name exactly `__all__`."""
    code = (
        "import importlib, sys\n"
        "names = sys.argv[1:]\n"
        "for name in names:\n"
        "    for m in [m for m in sys.modules if m == 'harness' or m.startswith('harness.')]:\n"
        "        del sys.modules[m]\n"
        "    value = getattr(importlib.import_module('harness'), name)\n"
        "    assert value is not None, name\n"
        "    exec(f'from harness import {name}')\n"
        "print(len(names))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *harness.__all__], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == str(len(harness.__all__))
    tree = ast.parse((CORE / "__init__.py").read_text())
    typed = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for sub in node.body
        if isinstance(sub, ast.ImportFrom) and sub.module != "typing"
        for alias in sub.names
    }
    assert typed == set(harness.__all__)
    assert {"ConfigError", "load_experiment", "run_experiment", "Topology"} <= typed


def test_importing_harness_loads_none_of_its_modules() -> None:
    code = "import sys, harness; print(sorted(m for m in sys.modules if m.startswith('harness.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


REFERENCE_NAMES = re.compile(
    r"\b(show_code|scan|scans|ingest|naive|hardened|no_lost_scans|no_false_green)\b"
)


def test_the_core_names_no_reference_operation_table_or_profile_in_its_code() -> None:
    """Docstrings may show examples; strings the code uses (messages, defaults) may not.
    (`lookup`, the fourth reference operation, is also an ordinary word and not checked.)"""
    offenders = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and REFERENCE_NAMES.search(node.value)
            ):
                offenders.append(f"{name}:{node.lineno}: {node.value[:60]!r}")
    assert not offenders, offenders


IGNORE = re.compile(r"#\s*type:\s*ignore(\[[^\]]*\])?(?P<rest>.*)$")


def test_every_type_ignore_says_why() -> None:
    """`# type: ignore[code]  # reason`: a bare ignore hides what it silences and why."""
    offenders = []
    for path in [*CORE.rglob("*.py"), *(ROOT / "reference_system").rglob("*.py")]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = IGNORE.search(line)
            if m and (not m.group(1) or not m.group("rest").strip().lstrip("#").strip()):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    assert not offenders, offenders
