"""The echo peer for the C scenarios against a real VPP: a separate process, run under LDP.

VPP 26.06 will not connect a VCL app to its own listener (application_local.c sends the
connect to the global table, which routes it as TCP to VPP's own address, and ip4-local
drops a packet whose source is a local address), so the scenarios' moved servers live
here, in another app: `dualstack_test` connects to this process's port when
DUALSTACK_TEST_PEER_PORT is set.

    peer.py HOST [HOST ...]

Serves a TCP echo (each connection until EOF) on every HOST and a UDP echo on the IPv4
ones, all on one port, which it prints on a line of its own once everything listens.
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast


class _UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def main(hosts: list[str]) -> None:
    first = await asyncio.start_server(_echo, hosts[0], 0)
    port = first.sockets[0].getsockname()[1]
    servers = [first] + [await asyncio.start_server(_echo, h, port) for h in hosts[1:]]
    loop = asyncio.get_running_loop()
    for host in hosts:
        if ":" not in host:
            await loop.create_datagram_endpoint(_UdpEcho, local_addr=(host, port))
    print(port, flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
