"""Every request body is capped while it streams in (issue 20): a body without Content-Length is refused with
`413 too_large` as soon as it passes the limit, not after it was read (or spooled to disk) whole."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import orjson

from tests.helpers import Node, running_node

CHUNK = 64 * 1024


async def post_chunked(
    node: Node, path: str, head: bytes, filler: bytes, total: int, headers: dict[str, str]
) -> tuple[int, dict[str, object], int]:
    """POST `head` then `filler` repeated up to `total` bytes, chunked (no Content-Length), stopping as soon as an
    answer arrives; the status, the JSON body and how many bytes had been sent by then."""
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    lines = [f"POST {path} HTTP/1.1", "Host: kefu.test", "Transfer-Encoding: chunked", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    got = bytearray()

    async def read_answer() -> None:
        with contextlib.suppress(ConnectionError):  # the server may reset the connection after its answer
            while chunk := await reader.read(65536):
                got.extend(chunk)

    answer = asyncio.get_running_loop().create_task(read_answer())
    sent = 0
    with contextlib.suppress(ConnectionError):
        for piece in [head] + [filler] * ((total - len(head)) // len(filler)):
            if got or answer.done():
                break
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            sent += len(piece)
            await asyncio.sleep(0)  # let the answer, if any, be read
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    await asyncio.wait_for(answer, 30)
    writer.close()
    raw = bytes(got)
    head_part, _, body = raw.partition(b"\r\n\r\n")
    status = int(head_part.split(b" ")[1])
    if b"transfer-encoding: chunked" in head_part.lower():
        size, _, rest = body.partition(b"\r\n")
        body = rest[: int(size, 16)]
    return status, orjson.loads(body), sent


async def test_visitor_tags_are_capped_like_the_server_side_tags_call(node: Node) -> None:
    app = await node.create_app()
    big = {"notes": "x" * (16 * 1024)}
    r = await node.http.post("/api/v1/visitor/session", json={"app_id": app.app_id, "tags": big})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", r.text
    assert "16384 bytes" in r.json()["error"]["message"]
    fits = {"notes": "x" * 1000, "vip_level": 3}
    r = await node.http.post("/api/v1/visitor/session", json={"app_id": app.app_id, "tags": fits})
    assert r.status_code == 200, r.text
    r = await node.http.put(
        "/api/v1/visitors/U1/tags", json={"tags": big}, headers={"Authorization": f"Bearer {app.api_key}"}
    )
    assert r.status_code == 400, r.text


async def test_a_body_over_the_limit_is_refused_whether_or_not_it_declares_its_length(node: Node) -> None:
    app = await node.create_app()
    huge = {"app_id": app.app_id, "tags": {"a": "x" * (3 * 1024 * 1024)}}
    r = await node.http.post("/api/v1/visitor/session", json=huge)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large", r.text

    head = b'{"app_id": "' + app.app_id.encode() + b'", "tags": {"a": "'
    status, body, sent = await post_chunked(
        node, "/api/v1/visitor/session", head, b"x" * CHUNK, 64 * 1024 * 1024, {"Content-Type": "application/json"}
    )
    assert status == 413 and body["error"]["code"] == "too_large", body  # type: ignore[index]
    assert sent < 5 * 1024 * 1024, f"the answer came only after {sent} bytes"


async def test_an_upload_without_content_length_is_cut_off_at_the_limit_not_spooled(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with running_node(sqlite_url, upload_dir=str(tmp_path / "uploads")) as node:
        app = await node.create_app()
        token = await node.visitor_token(app)
        boundary = "kefu-test-boundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"}
        status, body, sent = await post_chunked(node, "/api/v1/uploads", head, b"y" * CHUNK, 400 * 1024 * 1024, headers)
        assert status == 413 and body["error"]["code"] == "too_large", body  # type: ignore[index]
        assert sent < 16 * 1024 * 1024, f"the answer came only after {sent} bytes"  # the limit is 10 MiB
        assert not [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()]
        small = {"file": ("note.txt", b"hello", "text/plain")}
        r = await node.http.post("/api/v1/uploads", files=small, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201, r.text
