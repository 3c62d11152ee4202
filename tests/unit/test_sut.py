"""The test sections of a topology file: the client factory users plug in, and errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.client import HttpClient
from harness.errors import ConfigError
from harness.sut import load_sut

MINI = Path(__file__).parents[1] / "fixtures" / "mini.yaml"

CLIENT_MODULE = textwrap.dedent(
    """
    class Quiet:
        def __init__(self, operations, targets):
            self.operations, self.targets = operations, list(targets)

        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            return None

        async def invoke(self, target, op, args, client_id, timeout):
            raise NotImplementedError
    """
)


def topology(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(MINI.read_text() + extra)
    return path


def test_the_default_client_is_the_http_client() -> None:
    assert load_sut(MINI).client is HttpClient


def test_a_client_factory_is_imported_from_the_topologys_folder(tmp_path: Path) -> None:
    (tmp_path / "myclient.py").write_text(CLIENT_MODULE)
    sut = load_sut(topology(tmp_path, "client: myclient:Quiet\n"))
    made = sut.client(sut.operations, ["http://127.0.0.1:1"])
    assert type(made).__name__ == "Quiet" and made.targets == ["http://127.0.0.1:1"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("myclient", "module:attribute naming a client factory"),
        ("nosuchmodule:Thing", "module:attribute that can be imported"),
        ("myclient:Nothing", "module:attribute that can be imported"),
    ],
)
def test_a_bad_client_names_the_file_key_and_expectation(
    tmp_path: Path, value: str, expected: str
) -> None:
    (tmp_path / "myclient.py").write_text(CLIENT_MODULE)
    path = topology(tmp_path, f"client: {value}\n")
    with pytest.raises(ConfigError) as info:
        load_sut(path)
    message = str(info.value)
    assert str(path) in message and "client" in message and expected in message, message
