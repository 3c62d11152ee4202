"""Dirty byte ranges of one file: what was written and not yet synced.

:class:`Extents` keeps sorted, disjoint, non-adjacent ranges, each one ``bytearray``.
A write merges with every range it overlaps or touches, so an append grows the last
range in place and a rewrite of a page replaces bytes inside one range; the count of
dirty bytes is exact (bytes written twice count once)::

    dirty = Extents()
    dirty.write(0, b"hello")
    dirty.write(3, b"p!")            # one range: b"help!"
    dirty.patch(0, 8, b"HELLO world")  # b"help!wor": dirty bytes over what BACKING holds
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator


class Extents:
    """Sorted, disjoint byte ranges written over a file and not yet synced."""

    __slots__ = ("_chunks", "_starts", "nbytes")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._chunks: list[bytearray] = []
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._starts)

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        """Each range as ``(offset, data)``, in file order."""
        for start, chunk in zip(self._starts, self._chunks, strict=True):
            yield start, bytes(chunk)

    @property
    def end(self) -> int:
        """One past the last dirty byte (0 when clean)."""
        return self._starts[-1] + len(self._chunks[-1]) if self._starts else 0

    def write(self, offset: int, data: bytes) -> None:
        """Record ``data`` at ``offset``, over and between whatever was there."""
        if not data:
            return
        if offset < 0:
            raise ValueError(f"negative offset {offset}")
        end = offset + len(data)
        starts, chunks = self._starts, self._chunks
        lo = bisect_right(starts, offset) - 1
        if lo < 0 or starts[lo] + len(chunks[lo]) < offset:
            lo += 1
        hi = bisect_right(starts, end)
        if lo == hi:
            starts.insert(lo, offset)
            chunks.insert(lo, bytearray(data))
            self.nbytes += len(data)
            return
        before = sum(len(chunks[k]) for k in range(lo, hi))
        if starts[lo] <= offset:
            start, chunk = starts[lo], chunks[lo]
            chunk[offset - start : end - start] = data
            first = lo + 1
        else:
            start, chunk = offset, bytearray(data)
            first = lo
        for k in range(first, hi):
            covered = start + len(chunk) - starts[k]
            if covered < len(chunks[k]):
                chunk += chunks[k][covered:]
        starts[lo:hi] = [start]
        chunks[lo:hi] = [chunk]
        self.nbytes += len(chunk) - before

    def patch(self, offset: int, length: int, base: bytes) -> bytes:
        """``length`` bytes from ``offset``: ``base`` (what BACKING holds there, maybe
        shorter; the rest reads as zeros) with the dirty ranges laid over it."""
        if length <= 0:
            return b""
        buf = bytearray(base[:length])
        if len(buf) < length:
            buf.extend(bytes(length - len(buf)))
        end = offset + length
        starts, chunks = self._starts, self._chunks
        k = max(bisect_right(starts, offset) - 1, 0)
        while k < len(starts) and starts[k] < end:
            start, chunk = starts[k], chunks[k]
            lo, hi = max(start, offset), min(start + len(chunk), end)
            if lo < hi:
                buf[lo - offset : hi - offset] = chunk[lo - start : hi - start]
            k += 1
        return bytes(buf)

    def truncate(self, length: int) -> None:
        """Forget every dirty byte at or past ``length``."""
        starts, chunks = self._starts, self._chunks
        k = bisect_right(starts, length - 1) if length > 0 else 0
        for chunk in chunks[k:]:
            self.nbytes -= len(chunk)
        del starts[k:], chunks[k:]
        if chunks and starts[-1] + len(chunks[-1]) > length:
            cut = starts[-1] + len(chunks[-1]) - length
            del chunks[-1][-cut:]
            self.nbytes -= cut

    def clear(self) -> int:
        """Forget everything; the number of dirty bytes forgotten."""
        dropped = self.nbytes
        self._starts.clear()
        self._chunks.clear()
        self.nbytes = 0
        return dropped
