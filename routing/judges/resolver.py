"""The connection pool's resolver that holds every judge call to the egress policy (egress.py) at connect time.

Its own module because it subclasses aiohttp's resolver: importing it loads aiohttp, which only a process
that calls a judge needs (client.py imports it when it opens a session).
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from routing.judges import egress


class PolicyResolver(AbstractResolver):
    """The connection pool's resolver: every address a name resolves to must pass, or none is used."""

    def __init__(self) -> None:
        self._resolver = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        results: list[ResolveResult] = await self._resolver.resolve(host, port, family)
        for result in results:
            address = egress.address_of(result["host"])
            refusal = (
                egress.address_refusal(host, address)
                if address
                else f"judge URL host {host} resolved to {result['host']!r}, not an address"
            )
            if refusal:
                raise egress.EgressRefused(refusal)
        return results

    async def close(self) -> None:
        await self._resolver.close()
