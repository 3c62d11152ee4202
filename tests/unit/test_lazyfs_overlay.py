"""LazyFS's bookkeeping without FUSE: dirty byte ranges, and the per-inode overlay's
answers to write, read, truncate, fsync, close, unlink, sync_all and lose_unsynced
(over a fake BACKING)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.lazyfs.control import answer
from harness.lazyfs.extents import Extents
from harness.lazyfs.overlay import Overlays


def ranges(extents: Extents) -> list[tuple[int, bytes]]:
    return list(extents)


# --- Extents --------------------------------------------------------------------------
def test_an_append_grows_one_range() -> None:
    dirty = Extents()
    for i in range(5):
        dirty.write(i * 3, b"abc")
    assert ranges(dirty) == [(0, b"abc" * 5)]
    assert dirty.nbytes == 15 and dirty.end == 15


def test_an_overwrite_inside_a_range_counts_its_bytes_once() -> None:
    dirty = Extents()
    dirty.write(0, b"hello world")
    dirty.write(6, b"WORLD")
    assert ranges(dirty) == [(0, b"hello WORLD")]
    assert dirty.nbytes == 11


def test_disjoint_writes_stay_apart_and_a_bridge_merges_them() -> None:
    dirty = Extents()
    dirty.write(10, b"bb")
    dirty.write(0, b"aa")
    dirty.write(20, b"cc")
    assert ranges(dirty) == [(0, b"aa"), (10, b"bb"), (20, b"cc")]
    dirty.write(1, b"X" * 20)  # from inside the first to inside the last
    assert ranges(dirty) == [(0, b"a" + b"X" * 20 + b"c")]
    assert dirty.nbytes == 22


def test_a_write_that_touches_a_range_end_to_end_joins_it() -> None:
    dirty = Extents()
    dirty.write(4, b"efgh")
    dirty.write(0, b"abcd")
    assert ranges(dirty) == [(0, b"abcdefgh")]


def test_patch_lays_dirty_bytes_over_backing_and_zero_fills_past_its_end() -> None:
    dirty = Extents()
    dirty.write(2, b"XY")
    dirty.write(8, b"Z")
    assert dirty.patch(0, 10, b"0123") == b"01XY\0\0\0\0Z\0"
    assert dirty.patch(3, 2, b"34") == b"Y4"
    assert dirty.patch(3, 3, b"3") == b"Y\0\0"
    assert dirty.patch(0, 0, b"") == b""


def test_truncate_cuts_a_range_and_drops_the_ranges_past_it() -> None:
    dirty = Extents()
    dirty.write(0, b"abcdef")
    dirty.write(10, b"ghij")
    dirty.truncate(3)
    assert ranges(dirty) == [(0, b"abc")] and dirty.nbytes == 3
    dirty.truncate(0)
    assert not dirty and dirty.nbytes == 0 and dirty.end == 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("w"), st.integers(0, 64), st.binary(min_size=1, max_size=24)),
            st.tuples(st.just("t"), st.integers(0, 80), st.just(b"")),
        ),
        max_size=30,
    )
)
def test_extents_agree_with_a_byte_map(ops: list[tuple[str, int, bytes]]) -> None:
    dirty, model = Extents(), {}
    for kind, offset, data in ops:
        if kind == "w":
            dirty.write(offset, data)
            model.update((offset + i, b) for i, b in enumerate(data))
        else:
            dirty.truncate(offset)
            model = {k: v for k, v in model.items() if k < offset}
    got = {start + i: b for start, data in dirty for i, b in enumerate(data)}
    assert got == model
    assert dirty.nbytes == len(model)
    starts = [(start, start + len(data)) for start, data in dirty]
    assert all(a_end < b_start for (_, a_end), (b_start, _) in itertools.pairwise(starts))
    assert dirty.patch(0, 100, b"") == bytes(model.get(i, 0) for i in range(100))


# --- Overlays over a fake BACKING -----------------------------------------------------
@dataclass
class FakeIO:
    """Descriptors onto in-memory files: ``files[name]`` is what BACKING holds."""

    files: dict[str, bytearray] = field(default_factory=dict)
    links_of: dict[str, int] = field(default_factory=dict)
    fds: dict[int, str] = field(default_factory=dict)
    syncs: list[tuple[str, bool]] = field(default_factory=list)
    next_fd: int = 100

    def open(self, name: str) -> int:
        self.files.setdefault(name, bytearray())
        self.links_of.setdefault(name, 1)
        return self.dup_name(name)

    def dup_name(self, name: str) -> int:
        self.next_fd += 1
        self.fds[self.next_fd] = name
        return self.next_fd

    def dup(self, fd: int) -> int:
        return self.dup_name(self.fds[fd])

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        buf = self.files[self.fds[fd]]
        if len(buf) < offset:
            buf.extend(bytes(offset - len(buf)))
        buf[offset : offset + len(data)] = data
        return len(data)

    def sync(self, fd: int, datasync: bool) -> None:
        self.syncs.append((self.fds[fd], datasync))

    def links(self, fd: int) -> int:
        return self.links_of[self.fds[fd]]

    def close(self, fd: int) -> None:
        del self.fds[fd]


A, B = (1, 10), (1, 11)


def table() -> tuple[Overlays, FakeIO]:
    io = FakeIO()
    return Overlays(io, clock=lambda: 7), io


def test_a_write_reaches_reads_but_not_backing() -> None:
    overlays, io = table()
    fd = io.open("a")
    overlays.write(A, fd, 0, b"hello")
    assert io.files["a"] == b""
    assert overlays.read(A, 0, 4096, b"") == b"hello"
    assert overlays.view(A) == (5, 7)
    assert overlays.stats().bytes == 5 and overlays.stats().files == 1


def test_fsync_writes_the_ranges_and_syncs_backing() -> None:
    overlays, io = table()
    fd = io.open("a")
    overlays.write(A, fd, 0, b"hello")
    overlays.write(A, fd, 10, b"world")
    assert overlays.flush(A, datasync=True) == 10
    assert io.files["a"] == b"hello\0\0\0\0\0world"
    assert io.syncs == [("a", True)]
    assert overlays.view(A) is None and overlays.stats().bytes == 0
    assert overlays.flush(A, datasync=False) is None  # clean: the caller syncs its own fd
    assert overlays.fsyncs == 2


def test_close_keeps_the_bytes_dirty_and_they_can_still_be_synced() -> None:
    overlays, io = table()
    fd = io.open("a")
    overlays.opened(A)
    overlays.write(A, fd, 0, b"spool")
    overlays.released(A)
    io.close(fd)
    assert io.files["a"] == b"" and overlays.stats().files == 1
    assert overlays.sync_all().bytes == 5
    assert io.files["a"] == b"spool"
    assert not io.fds  # the overlay's own descriptor closed with its data


def test_lose_unsynced_discards_everything_unsynced_and_says_how_much() -> None:
    overlays, io = table()
    fa, fb = io.open("a"), io.open("b")
    overlays.write(A, fa, 0, b"kept")
    overlays.flush(A, datasync=False)
    overlays.write(A, fa, 4, b" not kept")
    overlays.write(B, fb, 0, b"gone")
    lost = overlays.lose_unsynced()
    assert (lost.bytes, lost.files) == (13, 2)
    assert io.files == {"a": b"kept", "b": b""}
    assert overlays.read(A, 0, 100, b"kept") == b"kept"
    assert overlays.lose_unsynced().bytes == 0


def test_a_partial_overwrite_reads_new_until_lost_then_old() -> None:
    overlays, io = table()
    fd = io.open("a")
    io.files["a"][:] = b"0123456789"
    overlays.write(A, fd, 3, b"abc")
    assert overlays.read(A, 0, 10, b"0123456789") == b"012abc6789"
    overlays.lose_unsynced()
    assert overlays.read(A, 0, 10, b"0123456789") == b"0123456789"


def test_a_read_past_backing_stops_at_the_dirty_end() -> None:
    overlays, io = table()
    fd = io.open("a")
    overlays.write(A, fd, 4, b"tail")
    assert overlays.read(A, 0, 4096, b"head") == b"headtail"
    assert overlays.read(A, 8, 4096, b"") == b""


def test_truncate_drops_dirty_bytes_past_the_new_size() -> None:
    overlays, io = table()
    fd = io.open("a")
    overlays.write(A, fd, 0, b"abcdef")
    overlays.truncate(A, 2)
    assert overlays.stats().bytes == 2
    overlays.truncate(A, 0)
    assert overlays.view(A) is None and overlays.stats().files == 0


def test_an_unlinked_file_closed_by_everyone_is_dropped_not_lost() -> None:
    overlays, io = table()
    fd = io.open("a")
    overlays.opened(A)
    overlays.write(A, fd, 0, b"scratch")
    io.links_of["a"] = 0
    overlays.unlinked(A)
    assert overlays.stats().files == 1  # still open: its data still reads back
    overlays.released(A)
    assert overlays.stats().files == 0
    assert overlays.lose_unsynced().bytes == 0


def test_a_hard_linked_file_keeps_its_bytes_when_one_name_goes() -> None:
    overlays, io = table()
    fd = io.open("a")
    overlays.write(A, fd, 0, b"x")
    io.links_of["a"] = 1
    overlays.unlinked(A)
    assert overlays.stats().files == 1


def test_explicit_times_hide_the_overlay_mtime() -> None:
    overlays, io = table()
    overlays.write(A, io.open("a"), 0, b"x")
    overlays.touched(A)
    assert overlays.view(A) == (1, 0)


def test_the_control_answers() -> None:
    overlays, io = table()
    overlays.write(A, io.open("a"), 0, b"abc")
    assert answer(overlays, {"op": "stats"}) == {
        "ok": True,
        "dirty_bytes": 3,
        "dirty_files": 1,
        "fsyncs": 0,
    }
    assert answer(overlays, {"op": "sync_all"}) == {
        "ok": True,
        "synced_bytes": 3,
        "synced_files": 1,
    }
    assert answer(overlays, {"op": "lose_unsynced"}) == {
        "ok": True,
        "discarded_bytes": 0,
        "discarded_files": 0,
    }
    assert answer(overlays, {"op": "format"})["ok"] is False
    assert answer(overlays, ["stats"])["ok"] is False
