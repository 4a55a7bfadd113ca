"""Uploads: check a file by its bytes, store it, make image thumbnails, and serve it only to who may see it.

A file's type is judged by its magic bytes. It is refused (415 `unsupported_type`) when that type is not in
the app's allowlist, or when the file name's extension or the declared Content-Type names another type;
over the app's size limit it is refused with 413 `too_large`. The client's file name is kept for display
only: the bytes are stored under a key made from the random attachment id.

App settings read here (the app's `settings` JSON): `upload_max_bytes` (default 10 MiB) and
`upload_types` (default all of `png`, `jpeg`, `gif`, `webp`, `pdf`, `text`).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import re
import tempfile
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from PIL import Image, UnidentifiedImageError

from kefu import errors
from kefu.domain.clock import Clock
from kefu.domain.ids import new_id
from kefu.domain.models import Actor
from kefu.errors import AttachmentNotFound, TooLarge, UnsupportedType
from kefu.storage import Database
from kefu.storage import attachments as attachment_store
from kefu.storage.attachments import Attachment
from kefu.uploads import FileStore, StoredFileMissing

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
THUMBNAIL_PX = 320
# Decompression bombs: a 1.6 KB WebP may declare 6300x6300 pixels, and decoding it takes seconds of CPU and
# hundreds of MB. An image over either cap (judged from its header, before decoding) gets no thumbnail; it stays
# uploadable. 16 MP is a large phone photo; 48 MiB of decoded pixels holds it as RGB (not as RGBA or 16-bit).
MAX_THUMBNAIL_SOURCE_PIXELS = 16_000_000
MAX_DECODED_BYTES = 48 * 1024 * 1024
_BYTES_PER_BAND = {"I": 4, "F": 4, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
URL_PREFIX = "/api/v1/uploads"


@dataclass(frozen=True, slots=True)
class FileType:
    name: str
    content_type: str
    extensions: frozenset[str]
    declared: frozenset[str]  # Content-Types a client may declare for it
    image: bool = False


TEXT_NAME = "text"
FILE_TYPES: dict[str, FileType] = {
    t.name: t
    for t in (
        FileType("png", "image/png", frozenset({".png"}), frozenset({"image/png", "image/x-png"}), image=True),
        FileType(
            "jpeg",
            "image/jpeg",
            frozenset({".jpg", ".jpeg", ".jpe", ".jfif"}),
            frozenset({"image/jpeg", "image/jpg", "image/pjpeg"}),
            image=True,
        ),
        FileType("gif", "image/gif", frozenset({".gif"}), frozenset({"image/gif"}), image=True),
        FileType("webp", "image/webp", frozenset({".webp"}), frozenset({"image/webp"}), image=True),
        FileType("pdf", "application/pdf", frozenset({".pdf"}), frozenset({"application/pdf", "application/x-pdf"})),
        FileType(
            TEXT_NAME,
            "text/plain",
            frozenset({".txt", ".text", ".log", ".csv", ".tsv", ".md", ".json", ".yaml", ".yml", ".ini", ".conf"}),
            frozenset({"text/plain", "text/csv", "text/tab-separated-values", "text/markdown", "application/json"}),
        ),
    )
}
GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def sniff(head: bytes) -> str | None:
    """The binary type the first bytes announce (png, jpeg, gif, webp, pdf), or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"%PDF-"):
        return "pdf"
    return None


class TextCheck:
    """Fed chunk by chunk: whether the whole content is valid UTF-8 without NUL characters."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.ok = True

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if not self.ok:
            return
        if b"\x00" in chunk:
            self.ok = False
            return
        try:
            self._decoder.decode(chunk, final)
        except UnicodeDecodeError:
            self.ok = False


def display_name(raw: str | None) -> str:
    """The client's file name made safe to show: last path part, no control characters, at most 255."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".") or "file"
    return name[:255]


def check_type(kind: str, name: str, declared: str | None, allowed: frozenset[str]) -> FileType:
    """The file's type if the app allows it and the name and declared type agree with the bytes."""
    file_type = FILE_TYPES[kind]
    if kind not in allowed:
        raise UnsupportedType(f"This app does not take {file_type.content_type} uploads.")
    extension = os.path.splitext(name)[1].lower()
    if extension and extension not in file_type.extensions:
        raise UnsupportedType(f"The file name ends in '{extension}' but the content is {file_type.content_type}.")
    declared_type = (declared or "").split(";")[0].strip().lower()
    if declared_type not in GENERIC_TYPES and declared_type not in file_type.declared:
        raise UnsupportedType(f"The file was sent as {declared_type} but the content is {file_type.content_type}.")
    return file_type


def attachment_url(attachment_id: str) -> str:
    return f"{URL_PREFIX}/{attachment_id}"


def attachment_record(att: Attachment) -> dict[str, Any]:
    """The `attachment` object of a `message` frame (protocol §3), as `POST /uploads` answered."""
    record: dict[str, Any] = {
        "attachment_id": att.attachment_id,
        "url": attachment_url(att.attachment_id),
        "name": att.name,
        "size": att.size,
        "content_type": att.content_type,
    }
    if att.thumbnail_key:
        record["thumbnail_url"] = attachment_url(att.attachment_id) + "/thumbnail"
    return record


def decoded_bytes(width: int, height: int, mode: str) -> int:
    """The memory the decoded pixels of an image take in Pillow."""
    return width * height * Image.getmodebands(mode) * _BYTES_PER_BAND.get(mode, 1)


def make_thumbnail(source: Path, target: Path) -> bool:
    """A WebP at most THUMBNAIL_PX on each side; False when the image cannot be read or is too large to decode
    (it stays uploadable)."""
    try:
        with Image.open(source) as image:  # reads the header only
            width, height = image.size
            if width * height > MAX_THUMBNAIL_SOURCE_PIXELS:
                return False
            if decoded_bytes(width, height, image.mode) > MAX_DECODED_BYTES:
                return False
            image.draft("RGB", (THUMBNAIL_PX, THUMBNAIL_PX))  # JPEG decodes straight at a fraction of its size
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            converted = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P", "PA") else "RGB")
            converted.save(target, "WEBP", quality=80)
            return True
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return False


def _scratch_file(directory: Path) -> tuple[BinaryIO, Path]:
    fd, name = tempfile.mkstemp(dir=directory, prefix="up-")
    return os.fdopen(fd, "wb"), Path(name)


def _write(handle: BinaryIO, chunk: bytes) -> None:
    handle.write(chunk)


@dataclass(frozen=True, slots=True)
class Download:
    attachment: Attachment
    content_type: str
    size: int | None
    chunks: AsyncIterator[bytes]
    filename: str


ChunkReader = Callable[[int], Awaitable[bytes]]


class UploadService:
    CHUNK: ClassVar[int] = 64 * 1024

    def __init__(self, db: Database, store: FileStore, clock: Clock, thumbnail_jobs: int | None = None) -> None:
        self.db, self.store, self.clock = db, store, clock
        # At most one thumbnail is decoded per core at a time: a burst of images queues here instead of taking every
        # core (and the memory of each decode) from the node's chats and health checks.
        self._thumbnail_slots = asyncio.Semaphore(thumbnail_jobs or os.cpu_count() or 1)
        self.thumbnail_jobs_running = 0
        self.thumbnail_jobs_peak = 0  # the most ever decoded at once (tests read it)

    async def _thumbnail(self, source: Path, target: Path) -> bool:
        async with self._thumbnail_slots:
            self.thumbnail_jobs_running += 1
            self.thumbnail_jobs_peak = max(self.thumbnail_jobs_peak, self.thumbnail_jobs_running)
            try:
                return await asyncio.to_thread(make_thumbnail, source, target)
            finally:
                self.thumbnail_jobs_running -= 1

    async def limits(self, app_id: str) -> tuple[int, frozenset[str]]:
        """The app's size limit in bytes and its allowed type names."""
        async with self.db.read() as tx:
            raw = await attachment_store.upload_settings(tx, app_id)
        max_bytes = raw.get("upload_max_bytes")
        types = raw.get("upload_types")
        size = int(max_bytes) if isinstance(max_bytes, int) and max_bytes > 0 else DEFAULT_MAX_BYTES
        allowed = frozenset(str(t) for t in types) if isinstance(types, list) else frozenset(FILE_TYPES)
        return size, allowed

    async def upload(self, actor: Actor, name: str | None, declared_type: str | None, read: ChunkReader) -> Attachment:
        """Check and store one file read through `read(n)`; its metadata. Nothing is kept on refusal."""
        if actor.kind not in ("visitor", "agent"):
            raise errors.Forbidden("Uploads take a visitor or agent token.")
        max_bytes, allowed = await self.limits(actor.app_id)
        shown = display_name(name)
        attachment_id = new_id("att")
        scratch = self.store.scratch_dir()
        handle, temp = await asyncio.to_thread(_scratch_file, scratch)
        thumb = temp.with_suffix(".thumb")
        try:
            size, head, text = 0, b"", TextCheck()
            try:
                while chunk := await read(self.CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(f"A file may hold at most {max_bytes} bytes.")
                    if len(head) < 16:
                        head += chunk[:16]
                    text.feed(chunk)
                    await asyncio.to_thread(_write, handle, chunk)
            finally:
                await asyncio.to_thread(handle.close)
            text.feed(b"", final=True)
            kind = sniff(head) or (TEXT_NAME if text.ok and size > 0 else None)
            if kind is None:
                raise UnsupportedType("Uploads are images (PNG, JPEG, GIF, WebP), PDF or UTF-8 text.")
            file_type = check_type(kind, shown, declared_type, allowed)
            has_thumb = file_type.image and await self._thumbnail(temp, thumb)
            key = f"{attachment_id[-2:]}/{attachment_id}"
            await self.store.put(key, temp)
            thumbnail_key = None
            if has_thumb:
                thumbnail_key = key + ".thumb.webp"
                await self.store.put(thumbnail_key, thumb)
            attachment = Attachment(
                attachment_id=attachment_id,
                app_id=actor.app_id,
                uploader_kind=actor.kind,
                uploader_id=actor.actor_id,
                name=shown,
                size=size,
                content_type=file_type.content_type,
                storage_key=key,
                thumbnail_key=thumbnail_key,
                created_at=self.clock.now(),
            )
            try:
                async with self.db.transaction() as tx:
                    await attachment_store.insert_attachment(tx, attachment)
            except BaseException:
                await self.store.delete(key)
                if thumbnail_key:
                    await self.store.delete(thumbnail_key)
                raise
            return attachment
        finally:
            for leftover in (temp, thumb):
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(leftover.unlink, missing_ok=True)

    async def access_attachment(self, actor: Actor, attachment_id: str) -> Attachment:
        """The attachment if `actor` may read it: its uploader, a participant of a conversation whose message
        references it, or an admin of its app (or its API key). Anyone else: not found, as if it did not exist."""
        async with self.db.read() as tx:
            att = await attachment_store.get_attachment(tx, actor.app_id, attachment_id)
            if att is None:
                raise AttachmentNotFound(f"No attachment '{attachment_id}'.")
            if actor.is_admin or (att.uploader_kind == actor.kind and att.uploader_id == actor.actor_id):
                return att
            if await attachment_store.is_participant(tx, attachment_id, actor.kind, actor.actor_id):
                return att
        raise AttachmentNotFound(f"No attachment '{attachment_id}'.")

    async def download(self, actor: Actor, attachment_id: str, thumbnail: bool = False) -> Download:
        att = await self.access_attachment(actor, attachment_id)
        if thumbnail and not att.thumbnail_key:
            raise AttachmentNotFound(f"Attachment '{attachment_id}' has no thumbnail.")
        key = att.thumbnail_key if thumbnail and att.thumbnail_key else att.storage_key
        chunks = self.store.open(key, self.CHUNK)
        try:
            first = await anext(chunks, b"")
        except StoredFileMissing as exc:
            raise AttachmentNotFound(f"The bytes of attachment '{attachment_id}' are gone.") from exc

        async def all_chunks() -> AsyncIterator[bytes]:
            if first:
                yield first
            async for chunk in chunks:
                yield chunk

        content_type = "image/webp" if thumbnail else att.content_type
        filename = att.name if not thumbnail else os.path.splitext(att.name)[0] + ".webp"
        return Download(att, content_type, None if thumbnail else att.size, all_chunks(), filename)
