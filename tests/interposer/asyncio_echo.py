"""Run under the interposer: an asyncio (epoll) echo server and concurrent clients.

Usage: asyncio_echo.py SERVER_HOST CLIENT_HOST [CLIENT_HOST...]
       asyncio_echo.py --connect PORT CLIENT_HOST [CLIENT_HOST...]
The server listens on SERVER_HOST (port 0), or, with --connect, is another program's on
PORT (against a real VPP, which never connects an app to its own listener); 5 clients per
CLIENT_HOST each send 20 lines and read the echoes, with timeouts through asyncio.wait_for. Prints JSON with the path of
the listener and, per client host, the paths its client sockets took (see path_probe.py for the numbers).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import sys

path_of = ctypes.CDLL(None).vcl_dualstack_path


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()
    writer.close()


async def client(host: str, port: int, ident: int) -> int:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
    path = path_of(writer.get_extra_info("socket").fileno())
    for i in range(20):
        line = f"client {ident} line {i}\n".encode()
        writer.write(line)
        await writer.drain()
        echoed = await asyncio.wait_for(reader.readline(), 30)
        assert echoed == line, (echoed, line)
    writer.close()
    await writer.wait_closed()
    return int(path)


async def main() -> None:
    server = None
    if sys.argv[1] == "--connect":
        port, client_hosts = int(sys.argv[2]), sys.argv[3:]
    else:
        server = await asyncio.start_server(handle, sys.argv[1], 0)
        port, client_hosts = server.sockets[0].getsockname()[1], sys.argv[2:]
    hosts = client_hosts * 5
    paths = await asyncio.gather(*(client(h, port, n) for n, h in enumerate(hosts)))
    seen = {h: sorted({p for hh, p in zip(hosts, paths, strict=True) if hh == h}) for h in hosts}
    result = {"server": server and path_of(server.sockets[0].fileno()), "clients": seen}
    if server:
        server.close()
        await server.wait_closed()
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
