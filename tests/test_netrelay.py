"""The slow-link relay itself: bytes arrive whole and in order, late, and a cut resets."""

from __future__ import annotations

import asyncio

from tests.netrelay import Relay


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_chunks_arrive_in_order_no_sooner_than_the_delays() -> None:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with Relay(("127.0.0.1", port), up_s=0.05, down_s=0.1, loss=0.3) as relay:
        host, relay_port = await relay.start()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        reader, writer = await asyncio.open_connection(host, relay_port)
        sent = b"".join(f"{i:04d}".encode() for i in range(200))
        for k in range(0, len(sent), 40):
            writer.write(sent[k:k + 40])
            await writer.drain()
        got = await asyncio.wait_for(reader.readexactly(len(sent)), 30)
        # handshake (one round trip) + up + down, at least; loss only adds
        assert got == sent and loop.time() - t0 >= 2 * (0.05 + 0.1)
        relay.cut()
        try:
            rest = await asyncio.wait_for(reader.read(), 10)
        except ConnectionResetError:  # the reset may arrive as an error or as the end
            rest = b""
        assert rest == b""
        writer.close()
        reader2, writer2 = await asyncio.open_connection(host, relay_port)
        writer2.write(b"again")
        assert await asyncio.wait_for(reader2.readexactly(5), 30) == b"again"
        writer2.close()
        assert relay.accepted == 2
    server.close()
    await server.wait_closed()
