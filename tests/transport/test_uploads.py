"""Uploads over HTTP on real sockets: type by magic bytes, size limit, who may fetch, thumbnails."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.helpers import App, Node


@pytest.fixture(autouse=True)
def upload_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Each test's node keeps its uploads in the test's own directory (read by Settings from the env)."""
    path = tmp_path / "uploads"
    monkeypatch.setenv("KEFU_UPLOAD_DIR", str(path))
    return path


def stored_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def png(size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56 + b"\x90" * 200


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def upload(node: Node, token: str, name: str, data: bytes, content_type: str | None = None) -> httpx.Response:
    part: Any = (name, data, content_type) if content_type else (name, data)
    return await node.http.post("/api/v1/uploads", files={"file": part}, headers=bearer(token))


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


async def test_an_image_is_stored_with_a_thumbnail_and_served_to_who_may_see_it(node: Node, upload_dir: Path) -> None:
    app: App = await node.create_app()
    agent_info = await node.add_agent(app)
    agent = await node.agent(app, agent_info["email"])
    visitor = await node.visitor(app, "U1")
    sid = (await visitor.open_chat())["session_id"]
    await agent.expect("assigned", session_id=sid)
    visitor_token = await node.visitor_token(app, "U1")
    data = png()
    r = await upload(node, visitor_token, "../../etc/passwd 截图.png", data, "image/png")
    assert r.status_code == 201, r.text
    att = r.json()
    assert att["name"] == "passwd 截图.png" and att["size"] == len(data) and att["content_type"] == "image/png"
    assert att["url"] == f"/api/v1/uploads/{att['attachment_id']}"
    assert att["thumbnail_url"] == att["url"] + "/thumbnail"
    assert Path(node.settings.upload_dir) == upload_dir
    assert {p.name for p in stored_files(upload_dir)} == {att["attachment_id"], att["attachment_id"] + ".thumb.webp"}

    # the uploader reads it back, and its thumbnail is a small image
    r = await node.http.get(att["url"], headers=bearer(visitor_token))
    assert r.status_code == 200 and r.content == data and r.headers["content-type"] == "image/png"
    r = await node.http.get(att["thumbnail_url"], headers=bearer(visitor_token))
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(r.content)) as thumb:
        assert max(thumb.size) <= 320

    # the chat's agent may not, until a message of the chat references the file; an outsider never
    agent_token = await node.login(app, agent_info["email"])
    outsider_info = await node.add_agent(app)
    outsider_token = await node.login(app, outsider_info["email"])
    stranger_token = await node.visitor_token(app, "U2")
    assert_error(await node.http.get(att["url"], headers=bearer(agent_token)), 404, "attachment_not_found")
    # someone else's upload cannot be sent; one's own can, and both sides get the attachment object
    stranger_visitor = await node.connect("visitor", stranger_token, "stranger")
    stranger_sid = (await stranger_visitor.open_chat())["session_id"]
    await stranger_visitor.send(
        "send",
        ref="x",
        session_id=stranger_sid,
        client_msg_id="x",
        msg_type="image",
        content="",
        attachment_id=att["attachment_id"],
    )
    assert (await stranger_visitor.expect("error", ref="x"))["code"] == "attachment_not_found"
    await visitor.send(
        "send",
        ref="img",
        session_id=sid,
        client_msg_id="img-1",
        msg_type="image",
        content="看图",
        attachment_id=att["attachment_id"],
    )
    await visitor.expect("ack", ref="img")  # the sending socket gets the ack, no copy (protocol §3)
    frame = await agent.expect("message", session_id=sid, client_msg_id="img-1")
    assert frame["attachment"] == att, frame
    again = await node.connect("visitor", visitor_token, "visitor again")  # a sync replays one's own, attachment too
    await again.send("sync", ref="s", session_id=sid, after_seq=0)
    frame = await again.expect("message", session_id=sid, client_msg_id="img-1")
    assert frame["attachment"] == att, frame
    r = await node.http.get(att["url"], headers=bearer(agent_token))
    assert r.status_code == 200 and r.content == data
    for token in (outsider_token, stranger_token):
        assert_error(await node.http.get(att["url"], headers=bearer(token)), 404, "attachment_not_found")
        assert_error(await node.http.get(att["thumbnail_url"], headers=bearer(token)), 404, "attachment_not_found")

    # the app's admin and API key may; another app's admin may not
    admin_token = await node.login(app, app.admin_email)
    for token in (admin_token, app.api_key):
        assert (await node.http.get(att["url"], headers=bearer(token))).content == data
    other = await node.create_app("other")
    assert_error(await node.http.get(att["url"], headers=bearer(other.api_key)), 404, "attachment_not_found")
    assert_error(await node.http.get(att["url"]), 401, "unauthorized")

    # the export carries the attachment object on the message
    async with node.http.stream("GET", "/api/v1/export", headers=bearer(app.api_key)) as r:
        lines = [line async for line in r.aiter_lines() if line.strip()]
    assert sum(f'"attachment_id":"{att["attachment_id"]}"' in line for line in lines) == 1


async def test_files_whose_name_or_type_lie_about_the_bytes_are_refused(node: Node, upload_dir: Path) -> None:
    app = await node.create_app()
    token = await node.visitor_token(app, "U1")
    assert_error(await upload(node, token, "notes.txt", png()), 415, "unsupported_type")  # a PNG renamed .txt
    assert_error(await upload(node, token, "cat.png", ELF, "image/png"), 415, "unsupported_type")  # ELF as .png
    assert_error(await upload(node, token, "tool", ELF), 415, "unsupported_type")
    assert_error(await upload(node, token, "a.png", png(), "application/pdf"), 415, "unsupported_type")
    assert_error(await upload(node, token, "a.txt", "半个字".encode()[:-1]), 415, "unsupported_type")  # cut UTF-8
    assert stored_files(upload_dir) == set(), "a refused upload left a file behind"

    r = await upload(node, token, "error.log", "Error: Component 'Chart' loading failed\n组件加载失败".encode())
    assert r.status_code == 201, r.text
    assert r.json()["content_type"] == "text/plain" and "thumbnail_url" not in r.json()
    r = await upload(node, token, "report.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    assert r.status_code == 201 and r.json()["content_type"] == "application/pdf"


async def test_an_oversize_file_is_refused(node: Node, upload_dir: Path) -> None:
    app = await node.create_app()
    token = await node.login(app, app.admin_email)
    big = b"a" * (10 * 1024 * 1024 + 1)
    assert_error(await upload(node, token, "big.txt", big), 413, "too_large")
    assert stored_files(upload_dir) == set()
    r = await node.http.post(
        "/api/v1/uploads", content=b"x" * 100, headers=bearer(token) | {"Content-Type": "text/plain"}
    )
    assert_error(r, 400, "bad_request")
    r = await node.http.post("/api/v1/uploads", files={"other": ("a.txt", b"hi")}, headers=bearer(token))
    assert_error(r, 400, "bad_request")
    assert_error(await upload(node, app.api_key, "a.txt", b"hi"), 401, "unauthorized")  # keys do not upload


def png_declaring(width: int, height: int, channels: int = 3) -> bytes:
    """A valid PNG of `width` x `height` black pixels: a decompression bomb, ~1/1000 of its decoded size."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    color_type = {3: 2, 4: 6}[channels]
    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + width * channels)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


async def test_images_too_large_to_decode_get_no_thumbnail_and_stay_uploadable(sqlite_url: str) -> None:
    """Issue 20: a tiny image declaring 6300x6300 pixels (under the old 40 MP cap) was decoded for each upload."""
    from tests.helpers import running_node

    async with running_node(sqlite_url) as node:
        app = await node.create_app()
        token = await node.visitor_token(app)
        bomb = png_declaring(6300, 6300)
        assert len(bomb) < 200_000
        r = await upload(node, token, "bomb.png", bomb, "image/png")
        assert r.status_code == 201 and "thumbnail_url" not in r.json(), r.text
        # Under the pixel cap but over the decoded-bytes cap as RGBA (57 MB); as RGB (43 MB) it is decoded.
        r = await upload(node, token, "rgba.png", png_declaring(3800, 3800, channels=4), "image/png")
        assert r.status_code == 201 and "thumbnail_url" not in r.json(), r.text
        r = await upload(node, token, "rgb.png", png_declaring(3800, 3800, channels=3), "image/png")
        assert r.status_code == 201 and "thumbnail_url" in r.json(), r.text


async def test_at_most_one_thumbnail_is_decoded_per_core_at_a_time(sqlite_url: str) -> None:
    import asyncio
    import os

    from tests.helpers import running_node

    async with running_node(sqlite_url) as node:
        app = await node.create_app()
        tokens = [await node.visitor_token(app) for _ in range(8)]
        image = png_declaring(3000, 3000)
        results = await asyncio.gather(*(upload(node, t, "big.png", image, "image/png") for t in tokens))
        assert all(r.status_code == 201 and "thumbnail_url" in r.json() for r in results)
        assert 1 <= node.services.uploads.thumbnail_jobs_peak <= (os.cpu_count() or 1)
