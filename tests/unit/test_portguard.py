"""The firewall guard's rules, its refusals and the dropping of crashed sessions' tables,
with `nft` replaced by a recorder."""

from __future__ import annotations

import subprocess

import pytest

from harness import portguard
from harness.portguard import PortGuard, drop_stale, guard, release, table_name


class FakeNft:
    def __init__(self, listing: str = "", returncode: int = 0) -> None:
        self.calls: list[tuple[list[str], str | None]] = []
        self.listing, self.returncode = listing, returncode

    def __call__(
        self, nft: str, args: list[str], script: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        self.calls.append((args, script))
        out = self.listing if args[:2] == ["list", "tables"] else ""
        return subprocess.CompletedProcess([nft, *args], self.returncode, out, "bad rule")


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> FakeNft:
    fake = FakeNft()
    monkeypatch.setattr(portguard.os, "geteuid", lambda: 0)
    monkeypatch.setattr(portguard, "_nft", lambda: "/usr/sbin/nft")
    monkeypatch.setattr(portguard, "_run", fake)
    return fake


def test_table_names_are_nft_identifiers() -> None:
    assert table_name("20261207-205443-4242-a1b2c3") == "harness_20261207_205443_4242_a1b2c3"


def test_a_guard_rejects_other_users_on_each_port_of_both_loopbacks(as_root: FakeNft) -> None:
    got = guard("20261207-205443-4242-a1b2c3", [9001, 9000, 9001], uid=0)
    assert got == PortGuard("harness_20261207_205443_4242_a1b2c3", (9000, 9001), 0)
    (args, script), = as_root.calls  # fmt: skip
    assert args == ["-f", "-"] and script is not None
    assert "table inet harness_20261207_205443_4242_a1b2c3 {" in script
    assert "type filter hook output priority 0; policy accept;" in script
    for port in (9000, 9001):
        assert f"ip daddr 127.0.0.0/8 tcp dport {port} meta skuid != 0 reject" in script
        assert f"ip6 daddr ::1 tcp dport {port} meta skuid != 0 reject" in script
    release(got)
    assert as_root.calls[-1][0] == ["delete", "table", "inet", got.table]


def test_no_guard_says_why(as_root: FakeNft, monkeypatch: pytest.MonkeyPatch) -> None:
    as_root.returncode = 1
    assert guard("s-1-2-ab", [1]) == "nft refused the rule: bad rule"
    before = len(as_root.calls)
    release("nft refused the rule: bad rule")  # never installed: nothing to remove
    release(None)
    assert len(as_root.calls) == before
    monkeypatch.setattr(portguard, "_nft", lambda: None)
    assert "nft is not installed" in str(guard("s-1-2-ab", [1]))
    monkeypatch.setattr(portguard.os, "geteuid", lambda: 1000)
    assert "root" in str(guard("s-1-2-ab", [1]))


LISTING = (
    "table inet harness_20261207_205443_100_a1b2c3\n"
    "table inet harness_20261207_205443_200_d4e5f6\n"
    "table inet someone_elses\n"
)


def test_stale_tables_are_those_whose_session_has_ended(as_root: FakeNft) -> None:
    as_root.listing = LISTING
    asked: list[str] = []

    def alive(session_id: str) -> bool:
        asked.append(session_id)
        return session_id.split("-")[2] == "100"

    assert drop_stale(alive) == ["harness_20261207_205443_200_d4e5f6"]
    assert asked == ["20261207-205443-100-a1b2c3", "20261207-205443-200-d4e5f6"]
    assert as_root.calls[-1][0] == ["delete", "table", "inet", "harness_20261207_205443_200_d4e5f6"]


def test_ended_sessions_tables_are_dropped_where_they_exist(as_root: FakeNft) -> None:
    as_root.listing = LISTING
    ended = {"20261207-205443-100-a1b2c3", "20261207-205443-300-000000"}  # by their locks
    drop_stale(lambda sid: sid not in ended)
    deleted = [args for args, _ in as_root.calls if args[0] == "delete"]
    assert deleted == [["delete", "table", "inet", "harness_20261207_205443_100_a1b2c3"]]
