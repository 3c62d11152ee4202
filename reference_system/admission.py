"""Admission: bounded concurrency per worker with a bounded, deadline-aware wait queue.

At most ``max_inflight`` requests run at once; up to ``max_queue`` more wait, each for at
most ``queue_timeout_s`` (or less if its deadline is nearer). Anything else is rejected at
once with :class:`Rejected`, which the app turns into a fast 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class Rejected(Exception):
    """The request was not admitted; ``str()`` says why."""


class Admission:
    """A FIFO semaphore that sheds load instead of queueing without bound."""

    def __init__(self, max_inflight: int, max_queue: int, queue_timeout_s: float) -> None:
        if max_inflight < 1 or max_queue < 0 or queue_timeout_s < 0:
            raise ValueError(
                f"max_inflight={max_inflight}, max_queue={max_queue}, "
                f"queue_timeout_s={queue_timeout_s}: expected >= 1, >= 0, >= 0"
            )
        self.max_inflight = max_inflight
        self.max_queue = max_queue
        self.queue_timeout_s = queue_timeout_s
        self.inflight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.rejected = 0

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def acquire(self, budget_s: float | None = None) -> None:
        """Take a slot, waiting at most the queue timeout or ``budget_s``; else Rejected."""
        if self.inflight < self.max_inflight and not self._waiters:
            self.inflight += 1
            return
        if len(self._waiters) >= self.max_queue:
            self.rejected += 1
            raise Rejected("server busy: admission queue full")
        wait = self.queue_timeout_s if budget_s is None else min(self.queue_timeout_s, budget_s)
        if wait <= 0:
            self.rejected += 1
            raise Rejected("server busy: no time left to wait for a slot")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            async with asyncio.timeout(wait):
                await fut
        except (TimeoutError, asyncio.CancelledError) as exc:
            if fut.done() and not fut.cancelled():
                # The slot was handed to us just as we gave up: pass it on.
                self.release()
            else:
                fut.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)
            if isinstance(exc, asyncio.CancelledError):
                raise
            self.rejected += 1
            raise Rejected("server busy: waited too long for a slot") from None

    def release(self) -> None:
        """Free a slot, handing it to the oldest live waiter if there is one."""
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot moves to the waiter; inflight unchanged
                return
        self.inflight -= 1
