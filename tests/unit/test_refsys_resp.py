"""RESP client: FIFO reply matching, abandoned slots, errors, reconnects, blackholes."""

from __future__ import annotations

import asyncio

import pytest

from reference_system.resp import Redis, RedisError, ReplyError


class FakeRedis:
    """A tiny RESP server: GET k -> $v or nil, SET, PING, SLOW (replies after 0.2 s),
    ERR -> error reply, MUTE -> swallows everything afterwards."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.server: asyncio.Server | None = None
        self.connections = 0
        self.muted = False

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _read_command(self, reader: asyncio.StreamReader) -> list[bytes]:
        header = await reader.readline()
        if not header:
            raise EOFError
        n = int(header[1:])
        args = []
        for _ in range(n):
            size = int((await reader.readline())[1:])
            args.append((await reader.readexactly(size + 2))[:-2])
        return args

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        pending: list[asyncio.Task[None]] = []
        lock = asyncio.Lock()
        order = asyncio.Queue()  # type: asyncio.Queue[asyncio.Future[bytes]]

        async def flush() -> None:
            while True:
                fut = await order.get()
                payload = await fut
                async with lock:
                    writer.write(payload)

        pending.append(asyncio.create_task(flush()))
        try:
            while True:
                cmd = await self._read_command(reader)
                if self.muted:
                    continue
                fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
                order.put_nowait(fut)
                name = cmd[0].upper()
                if name == b"MUTE":
                    self.muted = True
                elif name == b"PING":
                    fut.set_result(b"+PONG\r\n")
                elif name == b"SET":
                    self.data[cmd[1]] = cmd[2]
                    fut.set_result(b"+OK\r\n")
                elif name == b"GET":
                    v = self.data.get(cmd[1])
                    fut.set_result(b"$-1\r\n" if v is None else b"$%d\r\n%s\r\n" % (len(v), v))
                elif name == b"SLOW":
                    asyncio.get_running_loop().call_later(0.2, fut.set_result, b":7\r\n")
                elif name == b"QUIT":
                    writer.close()
                    return
                else:
                    fut.set_result(b"-ERR unknown command\r\n")
        except (EOFError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            for t in pending:
                t.cancel()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


def run(coro):
    return asyncio.run(coro)


def test_concurrent_commands_get_their_own_replies() -> None:
    async def main() -> None:
        fake = FakeRedis()
        port = await fake.start()
        r = Redis("127.0.0.1", port)
        await asyncio.gather(*(r.execute("SET", f"k{i}", f"v{i}") for i in range(50)))
        got = await asyncio.gather(*(r.execute("GET", f"k{i}") for i in range(50)))
        assert got == [f"v{i}".encode() for i in range(50)]
        assert await r.execute("GET", "missing") is None
        assert fake.connections == 1  # one pipelined connection
        await r.close()
        await fake.stop()

    run(main())


def test_error_reply_raises_and_pipeline_returns_it_in_place() -> None:
    async def main() -> None:
        fake = FakeRedis()
        port = await fake.start()
        r = Redis("127.0.0.1", port)
        with pytest.raises(ReplyError, match="unknown command"):
            await r.execute("NOPE")
        replies = await r.pipeline([("PING",), ("NOPE",), ("PING",)])
        assert replies[0] == b"PONG" and isinstance(replies[1], ReplyError)
        assert replies[2] == b"PONG"
        await r.close()
        await fake.stop()

    run(main())


def test_timed_out_command_does_not_shift_later_replies() -> None:
    async def main() -> None:
        fake = FakeRedis()
        port = await fake.start()
        r = Redis("127.0.0.1", port, stall_s=5)
        await r.execute("SET", "a", "1")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await r.execute("SLOW")
        assert await r.execute("GET", "a") == b"1"  # not the late ":7"
        await r.close()
        await fake.stop()

    run(main())


def test_unreachable_redis_fails_fast_and_recovers() -> None:
    async def main() -> None:
        fake = FakeRedis()
        port = await fake.start()
        await fake.stop()
        await asyncio.sleep(0.01)
        r = Redis("127.0.0.1", port, connect_timeout_s=0.5)
        with pytest.raises(RedisError, match="cannot connect"):
            await r.execute("PING")
        fake.server = await asyncio.start_server(fake._serve, "127.0.0.1", port)
        assert await r.execute("PING") == b"PONG"
        await r.close()
        await fake.stop()

    run(main())


def test_lost_connection_fails_pending_and_reconnects() -> None:
    async def main() -> None:
        fake = FakeRedis()
        port = await fake.start()
        r = Redis("127.0.0.1", port)
        slow = asyncio.create_task(r.execute("SLOW"))
        await asyncio.sleep(0.02)
        with pytest.raises(RedisError):
            await r.execute("QUIT")
        with pytest.raises(RedisError, match="lost"):
            await slow
        assert await r.execute("PING") == b"PONG"
        assert fake.connections == 2
        await r.close()
        await fake.stop()

    run(main())


def test_blackholed_connection_is_abandoned_after_stall() -> None:
    async def main() -> None:
        fake = FakeRedis()
        port = await fake.start()
        r = Redis("127.0.0.1", port, stall_s=0.1)
        await r.execute("PING")
        fake.muted = True
        for _ in range(3):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.06):
                    await r.execute("PING")
        assert fake.connections >= 2  # the stalled connection was abandoned
        fake.muted = False
        # Replies to the swallowed commands are owed forever: a caller that notices (the
        # cache checks every reply's identity) resets the connection and all is well.
        r.reset("test: out of step")
        assert await r.execute("PING") == b"PONG"
        await r.close()
        await fake.stop()

    run(main())
