"""What the project's own tests share: a test under tests/integration is marked
`integration` unless it says otherwise, and `tests.support` is importable (fakes, the
reference operations, an op builder). The harness's pytest plugin itself is installed
through its entry point, not from here."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    integration = ROOT / "tests" / "integration"
    for item in items:
        if integration in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)
