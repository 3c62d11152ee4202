"""Stop signals inside the load generator's loop: they cancel the run through the loop,
whatever code is running when they arrive, and each one acts (real signals to this
process, on the generator's own event loop)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from harness.load import run_generator


def _term() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def test_a_sigterm_in_a_protocol_callback_stops_the_run_and_runs_every_finally() -> None:
    done: list[str] = []

    class Reader(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            _term()  # the signal arrives while the loop is inside a transport's callback

    async def serve_and_read() -> None:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"x" * 100)
            await writer.drain()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            loop = asyncio.get_running_loop()
            await loop.create_connection(Reader, "127.0.0.1", port)
            await asyncio.sleep(10)
        finally:
            done.append("finally")
            server.close()

    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        run_generator(serve_and_read())
    assert done == ["finally"]


def test_a_run_that_caught_the_cancellation_still_stops() -> None:
    async def stubborn() -> int:
        _term()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return 1  # swallowed: the run must not go on as if nothing happened
        return 0

    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        run_generator(stubborn())


def test_a_second_signal_cancels_again() -> None:
    cancels: list[int] = []

    async def stubborn() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(_term)
        loop.call_later(0.2, _term)
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancels.append(1)  # the first one caught by mistake
        await asyncio.sleep(5)  # the second signal cancels this

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_generator(stubborn())
    assert cancels == [1] and time.monotonic() - started < 2.0


def test_the_previous_handlers_are_back_afterwards() -> None:
    before = signal.getsignal(signal.SIGTERM)

    async def nothing() -> int:
        return 3

    assert run_generator(nothing()) == 3
    assert signal.getsignal(signal.SIGTERM) == before
