"""Where a webhook may be delivered: only globally routable addresses, and only to the address that was checked.

SSRF defence (docs/security.md). An address is accepted only when it, and every IPv4 address
embedded in it (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, 6to4 `2002::/16`,
Teredo `2001::/32`, NAT64 `64:ff9b::/96`), is globally routable: loopback, private, link-local,
shared (100.64.0.0/10, which holds cloud metadata addresses such as 100.100.100.200), reserved,
documentation and multicast addresses are refused. The name is resolved once per delivery, the
answers are checked, and the connection goes to a checked address with the URL's host kept in the
`Host` header and in TLS (SNI and certificate check): a DNS answer that changes between the check
and the connect (rebinding) cannot redirect a delivery. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import httpx

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT and cloud metadata (100.100.100.200)
MAX_PINNED_HOSTS = 256  # connection pools kept, one per host name (a TLS connection serves one name only)


class RefusedAddress(httpx.TransportError):
    """The webhook's host is, or resolves to, an address that is not globally routable."""


def embedded_ipv4(ip: IpAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (and a packet to it may reach)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return []
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo is not None:
        found += list(ip.teredo)
    if ip in _NAT64 or int(ip) >> 32 == 0:  # NAT64, or IPv4-compatible ::a.b.c.d
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def refusal(address: str) -> str | None:
    """Why a webhook may not be delivered to `address`, or None when it may."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return f"'{address}' is not an IP address"
    for candidate in [ip, *embedded_ipv4(ip)]:
        if candidate in _SHARED:
            return f"{candidate} is in the shared address space 100.64.0.0/10"
        if not candidate.is_global or candidate.is_multicast:
            return f"{candidate} is not a globally routable address"
    return None


async def resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host (an IP literal resolves to itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def default_port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


class PinnedTransport(httpx.AsyncBaseTransport):
    """Resolves each request's host once, refuses it unless every answer is allowed, and connects to the first
    answer; the `Host` header and TLS keep the name. Each host name has its own pool, so a TLS connection made
    (and certificate checked) for one name never carries a request for another on the same address."""

    def __init__(self, allow_private: bool, resolver: Resolver = resolve, **transport_options: object) -> None:
        self.allow_private, self.resolver, self.options = allow_private, resolver, transport_options
        self._pools: OrderedDict[str, httpx.AsyncHTTPTransport] = OrderedDict()

    async def checked_address(self, host: str, port: int) -> str:
        try:
            addresses = await self.resolver(host, port)
        except OSError as exc:
            raise RefusedAddress(f"The webhook host '{host}' does not resolve.") from exc
        if not addresses:
            raise RefusedAddress(f"The webhook host '{host}' does not resolve.")
        if not self.allow_private:
            for address in addresses:
                reason = refusal(address)
                if reason is not None:
                    raise RefusedAddress(f"The webhook host '{host}' resolves to {address}: {reason}.")
        return addresses[0]

    async def _pool(self, host: str) -> httpx.AsyncHTTPTransport:
        pool = self._pools.pop(host, None) or httpx.AsyncHTTPTransport(**self.options)  # type: ignore[arg-type]
        self._pools[host] = pool
        if len(self._pools) > MAX_PINNED_HOSTS:
            _, oldest = self._pools.popitem(last=False)
            await oldest.aclose()
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        address = await self.checked_address(host, default_port(request.url))
        pinned = request.url.copy_with(host=address)  # `Host` was set from the original URL and stays
        request.url = pinned
        request.extensions = {**request.extensions, "sni_hostname": host}
        return await (await self._pool(host)).handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()
        self._pools.clear()
