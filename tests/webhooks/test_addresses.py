"""Webhook SSRF (issue 20): only globally routable addresses, embedded IPv4 unwrapped, the checked address is the one
connected to (Host and SNI kept), redirects never followed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from kefu.config import Settings
from kefu.webhooks.addresses import RefusedAddress, refusal
from kefu.webhooks.worker import delivery_client
from tests.helpers import Node

REFUSED = [
    "127.0.0.1",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # link-local cloud metadata
    "100.100.100.200",  # a cloud metadata address in the shared space
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "0.0.0.0",  # noqa: S104 (an address refused, not bound)
    "192.0.2.1",  # documentation
    "224.0.0.1",
    "::1",
    "fd00::1",
    "fe80::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
]
ALLOWED = ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "2002:808:808::1", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_addresses_that_are_not_globally_routable_are_refused(address: str) -> None:
    assert refusal(address) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_global_addresses_are_allowed(address: str) -> None:
    assert refusal(address) is None


@pytest.mark.parametrize("host", ["100.100.100.200", "100.64.0.1", "[2002:7f00:1::1]", "[::ffff:127.0.0.1]"])
async def test_registering_a_webhook_on_a_refused_address_is_a_400(node: Node, host: str) -> None:
    app = await node.create_app()
    r = await node.http.post(
        "/api/v1/webhooks",
        json={"url": f"http://{host}/hook", "events": ["message.created"]},
        headers={"Authorization": f"Bearer {app.api_key}"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", r.text


class Receiver:
    """A tiny HTTP server on 127.0.0.1 that keeps each request's head and answers with `answer`."""

    def __init__(self, answer: bytes = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n") -> None:
        self.answer, self.heads = answer, list[str]()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        self.heads.append(head)
        length = next(
            (int(line.split(":")[1]) for line in head.split("\r\n") if line.lower().startswith("content-length")), 0
        )
        await reader.readexactly(length)
        writer.write(self.answer)
        await writer.drain()
        writer.close()


@pytest.fixture
async def receivers() -> AsyncIterator[list[tuple[Receiver, int]]]:
    made: list[tuple[Receiver, int]] = []
    servers = []
    for _ in range(2):
        receiver = Receiver()
        server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0)
        servers.append(server)
        made.append((receiver, int(server.sockets[0].getsockname()[1])))
    yield made
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_a_delivery_connects_to_the_checked_address_and_keeps_the_host_name(
    receivers: list[tuple[Receiver, int]],
) -> None:
    (receiver, port), _ = receivers
    asked: list[str] = []

    async def resolver(host: str, _port: int) -> list[str]:  # what DNS says at the moment of the check
        asked.append(host)
        return ["127.0.0.1"]

    settings = Settings(webhook_allow_private=True)
    async with delivery_client(settings, resolver) as client:
        # The system resolver knows no such name: the delivery can only have gone to the checked address.
        r = await client.post(f"http://hooks.example.test:{port}/in", content=b"{}")
    assert r.status_code == 204
    assert asked == ["hooks.example.test"]  # resolved once: no second lookup between check and connect
    assert f"host: hooks.example.test:{port}" in receiver.heads[0].lower()

    async with delivery_client(Settings(webhook_allow_private=False), resolver) as client:
        with pytest.raises(RefusedAddress, match=r"127\.0\.0\.1"):
            await client.post(f"http://hooks.example.test:{port}/in", content=b"{}")
    assert len(receiver.heads) == 1  # the refused delivery never connected


async def test_a_redirect_is_never_followed(receivers: list[tuple[Receiver, int]]) -> None:
    (first, first_port), (second, second_port) = receivers
    first.answer = (
        f"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{second_port}/metadata\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()

    async def resolver(_host: str, _port: int) -> list[str]:
        return ["127.0.0.1"]

    async with delivery_client(Settings(webhook_allow_private=True), resolver) as client:
        r = await client.post(f"http://hooks.example.test:{first_port}/in", content=b"{}")
    assert r.status_code == 307 and len(first.heads) == 1
    assert second.heads == []  # a 3xx is a failed attempt, retried at the same URL later


def test_httpx_is_a_runtime_dependency() -> None:
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("httpx") for d in project["dependencies"])
    assert httpx  # imported by kefu.webhooks at run time
