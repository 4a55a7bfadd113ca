"""Uploads over HTTP: `POST /uploads` (multipart field `file`) and the bytes at the `url` it answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from kefu import errors
from kefu.errors import TooLarge
from kefu.services.uploads import FILE_TYPES, attachment_record
from kefu.transport.http.body_limit import allow_body
from kefu.transport.http.deps import AnyCaller, ServicesDep, VisitorOrAgent
from kefu.transport.http.errors import error_responses

router = APIRouter(tags=["uploads"], responses=error_responses(400, 401))


class AttachmentOut(BaseModel):
    """An upload as `POST /uploads` answers it, and as the `attachment` of a `message` frame (protocol §3)."""

    attachment_id: str
    url: str = Field(description="a path from the host's root; `GET` it with a bearer token")
    name: str = Field(description="the client's file name, made safe to show")
    size: int = Field(description="bytes")
    content_type: str = Field(description="judged by the content's magic bytes")
    thumbnail_url: str | None = Field(default=None, description="images only: a WebP at most 320 px a side")


MULTIPART_SLACK = 64 * 1024  # room for the multipart envelope around the file's bytes

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@router.post(
    "/uploads",
    openapi_extra=_UPLOAD_BODY,
    status_code=201,
    response_model=AttachmentOut,
    response_model_exclude_unset=True,
    responses=error_responses(403, 413, 415, 429),
)
async def upload(request: Request, actor: VisitorOrAgent, svc: ServicesDep) -> dict[str, Any]:
    """Store one file; `{attachment_id, url, name, size, content_type, thumbnail_url?}`.

    413 `too_large` over the app's limit (default 10 MiB); 415 `unsupported_type` for a type the app does
    not take, or a file name or declared type that disagrees with the content's magic bytes; 429
    `rate_limited` past the uploads an uploader may make in an hour (every attempt counts).
    """
    await svc.limits.upload(actor.app_id, actor.actor_id)
    max_bytes, _ = await svc.uploads.limits(actor.app_id)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes + MULTIPART_SLACK:
        raise TooLarge(f"A file may hold at most {max_bytes} bytes.")
    allow_body(request, max_bytes + MULTIPART_SLACK)  # a body without Content-Length is cut off there, not spooled
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise errors.BadRequest("Send the file as multipart/form-data, in the field 'file'.")
    try:
        form = await request.form(max_files=1, max_fields=10)
    except MultiPartException as exc:
        raise errors.BadRequest(f"The multipart body is not valid: {exc.message}") from exc
    try:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise errors.BadRequest("Send the file in the multipart field 'file'.")
        declared = part.headers.get("content-type")
        attachment = await svc.uploads.upload(actor, part.filename, declared, part.read)
    finally:
        await form.close()
    return attachment_record(attachment)


def _disposition(kind: str, filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


async def _serve(actor: AnyCaller, svc: ServicesDep, attachment_id: str, thumbnail: bool) -> StreamingResponse:
    found = await svc.uploads.download(actor, attachment_id, thumbnail)
    inline = found.content_type.startswith("image/")
    headers = {
        "Content-Disposition": _disposition("inline" if inline else "attachment", found.filename),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=3600",
    }
    if found.size is not None:
        headers["Content-Length"] = str(found.size)
    media = found.content_type + ("; charset=utf-8" if found.content_type == "text/plain" else "")
    return StreamingResponse(found.chunks, media_type=media, headers=headers)


def _bytes_response(description: str, *media_types: str) -> dict[int | str, dict[str, Any]]:
    content = {media: {"schema": {"type": "string", "format": "binary"}} for media in media_types}
    return {200: {"description": description, "content": content}, **error_responses(404)}


@router.get(
    "/uploads/{attachment_id}",
    response_class=StreamingResponse,
    responses=_bytes_response(
        "the bytes, of the type the content was judged to be",
        *sorted({file_type.content_type for file_type in FILE_TYPES.values()}),
    ),
)
async def download(attachment_id: str, actor: AnyCaller, svc: ServicesDep) -> StreamingResponse:
    """The file's bytes, to its uploader, the participants of a conversation whose message references it, and
    the app's admins (and API key); anyone else gets 404."""
    return await _serve(actor, svc, attachment_id, thumbnail=False)


@router.get(
    "/uploads/{attachment_id}/thumbnail",
    response_class=StreamingResponse,
    responses=_bytes_response("a WebP image", "image/webp"),
)
async def thumbnail(attachment_id: str, actor: AnyCaller, svc: ServicesDep) -> StreamingResponse:
    """An image's thumbnail (WebP, at most 320 px a side), to the same readers as the file."""
    return await _serve(actor, svc, attachment_id, thumbnail=True)
