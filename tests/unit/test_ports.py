"""Port reservations: below the ephemeral range, unique across live sessions, reclaimable."""

from __future__ import annotations

from pathlib import Path

from harness.ports import PortAllocator, ephemeral_floor
from harness.sessions import Session


def test_ports_are_below_the_ephemeral_range_and_distinct(tmp_path: Path) -> None:
    session = Session.open(tmp_path)
    try:
        alloc = PortAllocator(tmp_path, session.id)
        ports = [alloc.allocate() for _ in range(40)]
        assert len(set(ports)) == 40
        assert all(p < ephemeral_floor() for p in ports)
        alloc.release()
        assert not list((tmp_path / "ports").iterdir())
    finally:
        session.close()


def test_a_live_sessions_reservation_is_respected_and_a_dead_ones_is_reclaimed(
    tmp_path: Path,
) -> None:
    live, dead = Session.open(tmp_path), Session.open(tmp_path)
    try:
        (tmp_path / "ports").mkdir(exist_ok=True)
        mine = PortAllocator(tmp_path, live.id)
        port = mine.allocate()
        other = PortAllocator(tmp_path, dead.id)
        assert not other._reserve(port)  # held by a live session
        stale = PortAllocator(tmp_path, dead.id)
        stale_port = stale.allocate()
        dead.close()  # its owner is gone: the reservation is stale
        assert PortAllocator(tmp_path, live.id)._reserve(stale_port)
    finally:
        live.close()


def test_an_allocator_never_hands_out_a_port_it_already_holds(tmp_path: Path) -> None:
    """Even when its own session has no live marker (a reservation looks abandoned)."""
    ports = PortAllocator(tmp_path, "no-such-session")
    ports._rng.seed(1)
    first = ports.allocate()
    ports._rng.seed(1)  # the same draw again
    second = ports.allocate()
    assert first != second
    ports.release()
