"""Spool: an fsync'd local log of acknowledged scans, replayed idempotently into the DB.

The write path appends a scan as one JSON line and returns only after ``fsync``; concurrent
appends share one write and one fsync (group commit). The spool keeps an index of the most
recent ``index_size`` scan ids it holds and their contents (rebuilt from the segments on
start), so a repeat of a spooled ``scan_id`` is answered without the database: identical,
it is not appended again (it waits for the first copy to be durable); with other contents
it raises :class:`ScanConflict`. Checking the id and entering it happen in one step of
the event loop, so two concurrent requests for one id cannot both be appended.

Segments ``seg-<n>.log`` rotate by size; a process never appends to a segment it did not
create, so a line torn by a crash is always the tail of an older segment and is skipped
(it was never acknowledged).

:class:`Replayer` reads segments in order and hands batches to a sink (the DB insert,
``ON CONFLICT (scan_id) DO NOTHING``); a failed batch is retried, never skipped. Replayed
segments are kept for ``retain_s`` so that, if the database turns out to be a different
one (restored or replaced: ``identity`` changed), the replayer rewinds and replays them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

log = logging.getLogger("reference_system.spool")

SEGMENT_BYTES = 1 << 20
INDEX_SIZE = 100_000  # recent scan ids kept in memory per worker (~25 MB)


@dataclass(frozen=True)
class ScanRecord:
    """One scan as spooled and as inserted (``at`` is an ISO-8601 string)."""

    scan_id: str
    person_id: int
    venue_id: int
    at: str

    def line(self) -> bytes:
        return orjson.dumps([self.scan_id, self.person_id, self.venue_id, self.at]) + b"\n"

    @staticmethod
    def parse(line: bytes) -> ScanRecord:
        scan_id, person_id, venue_id, at = orjson.loads(line)
        return ScanRecord(scan_id, person_id, venue_id, at)

    def same_scan(self, other: ScanRecord) -> bool:
        """The same scan: same id, person, venue and instant (``at`` in any offset)."""
        if (self.scan_id, self.person_id, self.venue_id) != (
            other.scan_id,
            other.person_id,
            other.venue_id,
        ):
            return False
        if self.at == other.at:
            return True
        try:
            return datetime.fromisoformat(self.at) == datetime.fromisoformat(other.at)
        except (TypeError, ValueError):
            return False


class ScanConflict(Exception):
    """The scan id is already spooled with other contents (``existing``)."""

    def __init__(self, existing: ScanRecord) -> None:
        super().__init__(f"scan_id {existing.scan_id!r} is spooled with other contents")
        self.existing = existing


class _Known:
    """An indexed scan; ``durable`` is the pending write's future until it is on disk."""

    __slots__ = ("durable", "record")

    def __init__(self, record: ScanRecord, durable: asyncio.Future[None] | None) -> None:
        self.record = record
        self.durable = durable


@dataclass(frozen=True)
class Cursor:
    """A position in the spool: segment number and byte offset within it."""

    segment: int
    offset: int


def _segment_path(directory: Path, number: int) -> Path:
    return directory / f"seg-{number:010d}.log"


def _segments(directory: Path) -> list[int]:
    out = []
    for p in directory.glob("seg-*.log"):
        with contextlib.suppress(ValueError):
            out.append(int(p.stem[4:]))
    return sorted(out)


class Spool:
    """Append-only, group-committed, fsync'd scan log in ``directory``."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        fsync: bool = True,
        segment_bytes: int = SEGMENT_BYTES,
        index_size: int = INDEX_SIZE,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self.index_size = index_size
        self._index: OrderedDict[str, _Known] = OrderedDict()
        existing = _segments(self.directory)
        self._load_index(existing)
        self._segment = (existing[-1] + 1) if existing else 1
        self._fd = self._open(self._segment)
        self._size = 0
        self._pending: list[tuple[bytes, asyncio.Future[None], _Known]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.appended = asyncio.Event()

    # -- the index of recent scan ids

    def _load_index(self, segments: list[int]) -> None:
        """Index the newest ``index_size`` records already on disk (all durable)."""
        newest_first: list[ScanRecord] = []
        for number in reversed(segments):
            try:
                data = _segment_path(self.directory, number).read_bytes()
            except FileNotFoundError:
                continue
            end = data.rfind(b"\n") + 1  # a torn tail was never acknowledged
            records: list[ScanRecord] = []
            for line in data[:end].splitlines():
                with contextlib.suppress(ValueError, TypeError):
                    records.append(ScanRecord.parse(line))
            newest_first.extend(reversed(records))
            if len(newest_first) >= self.index_size:
                break
        for record in reversed(newest_first[: self.index_size]):
            self._remember(record, None)

    def _remember(self, record: ScanRecord, durable: asyncio.Future[None] | None) -> _Known:
        known = _Known(record, durable)
        self._index[record.scan_id] = known
        self._index.move_to_end(record.scan_id)
        while len(self._index) > self.index_size:
            self._index.popitem(last=False)
        return known

    def lookup(self, scan_id: str) -> ScanRecord | None:
        """The spooled scan with this id, if it is among the indexed recent ones."""
        known = self._index.get(scan_id)
        return None if known is None else known.record

    @property
    def indexed(self) -> int:
        return len(self._index)

    def _open(self, number: int) -> int:
        fd = os.open(
            _segment_path(self.directory, number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
        )
        if self.fsync:
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dfd)  # make the new file's directory entry durable
            finally:
                os.close(dfd)
        return fd

    @property
    def current_segment(self) -> int:
        return self._segment

    async def append(self, record: ScanRecord) -> bool:
        """Return once ``record`` is durably on disk (with ``fsync`` on): True if it was
        appended, False if an identical scan was already spooled (then it returns once
        that copy is durable). Raises :class:`ScanConflict` if its ``scan_id`` is spooled
        with other contents, and the write's ``OSError`` if it could not be stored."""
        known = self._index.get(record.scan_id)
        if known is not None:
            if not known.record.same_scan(record):
                raise ScanConflict(known.record)
            if known.durable is not None:
                await asyncio.shield(known.durable)
            return False
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        entry = self._remember(record, fut)
        self._pending.append((record.line(), fut, entry))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush_loop())
        await asyncio.shield(fut)  # a cancelled caller must not cancel a repeat's wait
        return True

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            data = b"".join(line for line, _, _ in batch)
            try:
                await loop.run_in_executor(None, self._write, data)
            except OSError as exc:
                for _, fut, entry in batch:
                    # not stored, so not known: a retry of the same scan must append again
                    if self._index.get(entry.record.scan_id) is entry:
                        del self._index[entry.record.scan_id]
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for _, fut, entry in batch:
                entry.durable = None
                if not fut.done():
                    fut.set_result(None)
            self.appended.set()

    def _write(self, data: bytes) -> None:
        if self._size and self._size + len(data) > self.segment_bytes:
            os.close(self._fd)
            self._segment += 1
            self._fd = self._open(self._segment)
            self._size = 0
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._size += len(data)
        if self.fsync:
            os.fdatasync(self._fd)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)

    # -- reading (used by the replayer)

    def first_cursor(self) -> Cursor:
        existing = _segments(self.directory)
        return Cursor(existing[0] if existing else self._segment, 0)

    def read(self, cursor: Cursor, limit: int = 1000) -> tuple[list[ScanRecord], Cursor]:
        """Up to ``limit`` complete records after ``cursor``, and the cursor after them."""
        chunk = 256 * 1024
        records: list[ScanRecord] = []
        while len(records) < limit:
            # Decide "sealed" before reading: a sealed segment never grows again.
            sealed = cursor.segment < self._segment
            path = _segment_path(self.directory, cursor.segment)
            try:
                with open(path, "rb") as f:
                    f.seek(cursor.offset)
                    data = f.read(chunk)
            except FileNotFoundError:
                data = b""
            end = data.rfind(b"\n") + 1
            offset = cursor.offset
            for line in data[:end].splitlines(keepends=True):
                if len(records) >= limit:
                    break
                offset += len(line)
                try:
                    records.append(ScanRecord.parse(line))
                except (ValueError, TypeError):
                    log.error("spool: skipping corrupt line in %s at %d", path, offset)
            cursor = Cursor(cursor.segment, offset)
            if len(records) >= limit or len(data) == chunk:
                continue
            if not sealed:
                break  # the live segment: wait for more
            later = [n for n in _segments(self.directory) if n > cursor.segment]
            if not later:
                break
            cursor = Cursor(later[0], 0)  # a torn tail of a sealed segment is skipped
        return records, cursor

    def backlog_bytes(self, cursor: Cursor) -> int:
        """Bytes in the spool after ``cursor`` (0 once everything is replayed)."""
        total = 0
        for n in _segments(self.directory):
            if n < cursor.segment:
                continue
            try:
                size = _segment_path(self.directory, n).stat().st_size
            except FileNotFoundError:
                continue
            total += size - (cursor.offset if n == cursor.segment else 0)
        return max(total, 0)

    def prune(self, cursor: Cursor, retain_s: float, now: float | None = None) -> int:
        """Delete replayed segments older than ``retain_s``; return how many."""
        now = time.time() if now is None else now
        removed = 0
        for n in _segments(self.directory):
            if n >= cursor.segment or n >= self._segment:
                break
            path = _segment_path(self.directory, n)
            try:
                if now - path.stat().st_mtime >= retain_s:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed


Sink = Callable[[list[ScanRecord]], Awaitable[None]]
Identity = Callable[[], Awaitable[str]]


class Replayer:
    """Drains a :class:`Spool` into a sink in order, retrying failures, rewinding on a new DB."""

    def __init__(
        self,
        spool: Spool,
        sink: Sink,
        identity: Identity | None = None,
        retain_s: float = 3600.0,
        batch: int = 1000,
        idle_s: float = 0.2,
        retry_s: float = 0.5,
        identity_every_s: float = 2.0,
    ) -> None:
        self.spool = spool
        self.sink = sink
        self.identity = identity
        self.retain_s = retain_s
        self.batch = batch
        self.idle_s = idle_s
        self.retry_s = retry_s
        self.cursor = spool.first_cursor()
        self.replayed = 0
        self.identity_every_s = identity_every_s
        self._known_identity: str | None = None
        self._check_identity = identity is not None
        self._identity_checked_at = 0.0
        self._failing_since: float | None = None
        self._last_warning = 0.0

    def backlog_bytes(self) -> int:
        return self.spool.backlog_bytes(self.cursor)

    def rewind(self) -> None:
        """Replay every retained segment again (idempotent sink)."""
        self.cursor = self.spool.first_cursor()

    async def step(self) -> int:
        """Replay one batch; return how many records went to the sink (raises on failure).

        The database's identity is checked after any failure and every ``identity_every_s``
        seconds, so a restored or replaced database gets the retained scans back even when
        no new scan arrives.
        """
        records, after = self.spool.read(self.cursor, self.batch)
        now = time.monotonic()
        if self.identity is not None and (
            self._check_identity or now - self._identity_checked_at >= self.identity_every_s
        ):
            ident = await self.identity()
            self._identity_checked_at = now
            if self._known_identity is not None and ident != self._known_identity:
                log.warning("spool: database identity changed; replaying retained segments")
                self.rewind()
                records, after = self.spool.read(self.cursor, self.batch)
            self._known_identity = ident
            self._check_identity = False
        if records:
            try:
                await self.sink(records)
            except BaseException:
                self._check_identity = self.identity is not None
                raise
            self.replayed += len(records)
        self.cursor = after
        return len(records)

    async def run(self) -> None:
        """Loop forever (cancel to stop)."""
        last_prune = 0.0
        while True:
            try:
                n = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                now = time.monotonic()
                if self._failing_since is None:
                    self._failing_since = now
                if now - self._last_warning >= 30:  # do not flood the log while the DB is down
                    self._last_warning = now
                    log.warning("spool: replay failing, will keep retrying: %s", exc)
                await asyncio.sleep(self.retry_s)
                continue
            if self._failing_since is not None:
                log.warning(
                    "spool: replay resumed after %.1fs", time.monotonic() - self._failing_since
                )
                self._failing_since = None
            if n:
                continue
            now = time.monotonic()
            if now - last_prune > 10:
                last_prune = now
                self.spool.prune(self.cursor, self.retain_s)
            self.spool.appended.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.idle_s):
                    await self.spool.appended.wait()
