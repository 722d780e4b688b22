"""A slow-link emulator: a TCP proxy in the services namespace between each worker host and
Redis/PostgreSQL. This kernel has no ``sch_netem`` ("Specified qdisc kind is unknown"), so
delay and loss are made here, as ``netem`` on the host's interface would make them (on what
the host sends): every chunk from the host is forwarded ``delay`` seconds after it arrived
(order kept), and with probability ``loss`` it waits ``max(0.2, 3 * delay)`` more, as TCP's
retransmission of a lost segment would (RTO at least 200 ms). Replies are not delayed.
Partitions stay real: the host's veth goes down.

Run: ``python -m tests.hosts.proxy CONTROL_DIR ROLE:LISTEN_IP:PORT=TARGET_IP:PORT ...``;
``CONTROL_DIR/ROLE.json`` (``{"delay": 0.2, "loss": 0.05}``) is read every 100 ms.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import sys
from pathlib import Path

SHAPES: dict[str, dict] = collections.defaultdict(lambda: {"delay": 0.0, "loss": 0.0})


async def watch_controls(directory: Path) -> None:
    while True:
        for role in list(SHAPES):
            path = directory / f"{role}.json"
            try:
                SHAPES[role] = json.loads(path.read_text()) if path.exists() else {}
            except (OSError, ValueError):
                pass
        await asyncio.sleep(0.1)


async def pump(role: str | None, reader, writer) -> None:
    """Copy ``reader`` to ``writer``, shaped by ``role``'s controls (None: unshaped)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    async def deliver() -> None:
        while (item := await queue.get()) is not None:
            due, data = item
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(deliver())
    try:
        while data := await reader.read(65536):
            shape = SHAPES[role] if role else {}
            delay = float(shape.get("delay", 0.0))
            if random.random() < float(shape.get("loss", 0.0)):
                delay += max(0.2, 3 * delay)
            queue.put_nowait((loop.time() + delay, data))
    except (ConnectionError, OSError):
        pass
    finally:
        queue.put_nowait(None)
        try:
            await sender
        except (ConnectionError, OSError):
            pass


async def serve(role: str, listen: str, target: str) -> None:
    host, port = listen.rsplit(":", 1)
    target_host, target_port = target.rsplit(":", 1)

    async def handle(reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(target_host, int(target_port))
        except OSError:
            writer.close()
            return
        await asyncio.gather(pump(role, reader, up_writer), pump(None, up_reader, writer))

    server = await asyncio.start_server(handle, host, int(port))
    async with server:
        await server.serve_forever()


async def main(directory: Path, specs: list[str]) -> None:
    tasks = [asyncio.create_task(watch_controls(directory))]
    for spec in specs:
        role, rest = spec.split(":", 1)
        listen, target = rest.split("=")
        SHAPES[role] = {}
        tasks.append(asyncio.create_task(serve(role, listen, target)))
    print("proxy ready", flush=True)
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2:]))
