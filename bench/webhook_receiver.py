#!/usr/bin/env python3
"""A minimal HTTP/1.1 keep-alive receiver for bench/webhooks.sh: answers every POST 204 and
writes `count first_at last_at` (Unix seconds) to STATS twice a second. asyncio only, no
verification: the bench measures Bulwark's side of a delivery, not the receiver's.

    webhook_receiver.py PORT STATS
"""
import asyncio
import sys
import time

PORT, STATS = int(sys.argv[1]), sys.argv[2]
count, first, last = 0, 0.0, 0.0


async def handle(reader, writer):
    global count, first, last
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            now = time.time()
            count += 1
            first = first or now
            last = now
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def report():
    while True:
        with open(STATS, "w") as f:
            f.write(f"{count} {first} {last}\n")
        await asyncio.sleep(0.5)


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", PORT, backlog=1024)
    asyncio.create_task(report())
    async with server:
        await server.serve_forever()


asyncio.run(main())
