"""Ending a connection after an error without resetting a client that is still writing."""

from __future__ import annotations

import asyncio
import time

from kokorod.frontends import wyoming_linger
from kokorod.frontends.wyoming_linger import Linger


async def _serve(on_connect):  # type: ignore[no-untyped-def]
    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_a_client_still_writing_reads_the_error_then_a_clean_end() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()  # the request's first line, then we refuse it
        writer.write(b'{"type": "error"}\n')
        await Linger(reader, writer).finish()

    server, port = await _serve(handler)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"synthesize-start\n")
    await asyncio.sleep(0.3)  # the server has answered and half-closed by now
    for _ in range(50):
        writer.write(b"synthesize-chunk " + b"x" * 1000 + b"\n")  # the rest of the request
        await writer.drain()
    await asyncio.sleep(0.2)
    assert await reader.readline() == b'{"type": "error"}\n'
    assert await reader.read() == b""  # end of stream, no ConnectionResetError
    writer.close()
    server.close()
    await server.wait_closed()


async def test_a_silent_client_is_closed_after_the_time_bound(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(wyoming_linger, "DISCARD_MAX_S", 0.3)
    took: list[float] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        started = time.monotonic()
        await Linger(reader, writer).finish()
        took.append(time.monotonic() - started)

    server, port = await _serve(handler)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await asyncio.wait_for(reader.read(), 10) == b""  # it half-closed at once
    for _ in range(100):
        if took:
            break
        await asyncio.sleep(0.05)
    assert took and took[0] < 5  # it did not wait for a client that never closes
    writer.close()
    server.close()
    await server.wait_closed()
