"""Admission control: bounded in-flight work, bounded waiting, fast rejection."""

from __future__ import annotations

import asyncio
import time

import pytest

from reference_system.admission import Admission, Rejected


def run(coro):
    return asyncio.run(coro)


def test_admits_up_to_the_limit_then_queues_then_rejects() -> None:
    async def main() -> None:
        adm = Admission(max_inflight=2, max_queue=1, queue_timeout_s=5)
        await adm.acquire()
        await adm.acquire()
        waiter = asyncio.create_task(adm.acquire())
        await asyncio.sleep(0)
        assert adm.queued == 1
        start = time.monotonic()
        with pytest.raises(Rejected, match="queue full"):
            await adm.acquire()
        assert time.monotonic() - start < 0.05
        adm.release()
        await asyncio.wait_for(waiter, 1)
        assert adm.inflight == 2 and adm.queued == 0
        adm.release()
        adm.release()
        assert adm.inflight == 0

    run(main())


def test_waiting_is_bounded_by_timeout_and_budget() -> None:
    async def main() -> None:
        adm = Admission(max_inflight=1, max_queue=10, queue_timeout_s=0.05)
        await adm.acquire()
        start = time.monotonic()
        with pytest.raises(Rejected, match="waited too long"):
            await adm.acquire()
        assert 0.04 < time.monotonic() - start < 0.2
        start = time.monotonic()
        with pytest.raises(Rejected):
            await adm.acquire(budget_s=0.01)
        assert time.monotonic() - start < 0.04
        with pytest.raises(Rejected, match="no time left"):
            await adm.acquire(budget_s=0)
        assert adm.queued == 0 and adm.inflight == 1 and adm.rejected == 3

    run(main())


def test_fifo_handoff() -> None:
    async def main() -> None:
        adm = Admission(max_inflight=1, max_queue=10, queue_timeout_s=5)
        await adm.acquire()
        order: list[int] = []

        async def worker(i: int) -> None:
            await adm.acquire()
            order.append(i)
            adm.release()

        tasks = [asyncio.create_task(worker(i)) for i in range(5)]
        await asyncio.sleep(0.01)
        adm.release()
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2, 3, 4]
        assert adm.inflight == 0

    run(main())


def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    async def main() -> None:
        adm = Admission(max_inflight=1, max_queue=10, queue_timeout_s=5)
        await adm.acquire()
        waiter = asyncio.create_task(adm.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        adm.release()
        assert adm.inflight == 0 and adm.queued == 0
        await adm.acquire()
        assert adm.inflight == 1

    run(main())
