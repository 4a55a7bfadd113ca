"""Uploaded files' metadata (the bytes live in a `kefu.uploads` file store) and who may read them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from kefu.storage.engine import Tx
from kefu.storage.rows import utc_required
from kefu.storage.tables import apps, attachments, conversations, messages


@dataclass(frozen=True, slots=True)
class Attachment:
    attachment_id: str
    app_id: str
    uploader_kind: str  # "visitor" | "agent"
    uploader_id: str
    name: str  # the client's file name, for display only: never part of a path
    size: int
    content_type: str  # judged from the bytes, not from the client
    storage_key: str
    thumbnail_key: str | None
    created_at: dt.datetime


def attachment_from(row: Any) -> Attachment:
    return Attachment(
        attachment_id=row.attachment_id,
        app_id=row.app_id,
        uploader_kind=row.uploader_kind,
        uploader_id=row.uploader_id,
        name=row.name,
        size=int(row.size),
        content_type=row.content_type,
        storage_key=row.storage_key,
        thumbnail_key=row.thumbnail_key,
        created_at=utc_required(row.created_at),
    )


async def insert_attachment(tx: Tx, attachment: Attachment) -> None:
    await tx.execute(
        attachments.insert().values(
            attachment_id=attachment.attachment_id,
            app_id=attachment.app_id,
            uploader_kind=attachment.uploader_kind,
            uploader_id=attachment.uploader_id,
            name=attachment.name,
            size=attachment.size,
            content_type=attachment.content_type,
            storage_key=attachment.storage_key,
            thumbnail_key=attachment.thumbnail_key,
            created_at=attachment.created_at,
        )
    )


async def get_attachment(tx: Tx, app_id: str, attachment_id: str) -> Attachment | None:
    """An attachment of `app_id`; None for an unknown id or another app's."""
    query = sa.select(attachments).where(attachments.c.attachment_id == attachment_id, attachments.c.app_id == app_id)
    row = (await tx.execute(query)).first()
    return attachment_from(row) if row else None


async def attachment_for_sender(
    tx: Tx, app_id: str, uploader_kind: str, uploader_id: str, attachment_id: str
) -> Attachment | None:
    """The attachment a `send` may reference: uploaded by this very sender, in this app; else None."""
    query = sa.select(attachments).where(
        attachments.c.attachment_id == attachment_id,
        attachments.c.app_id == app_id,
        attachments.c.uploader_kind == uploader_kind,
        attachments.c.uploader_id == uploader_id,
    )
    row = (await tx.execute(query)).first()
    return attachment_from(row) if row else None


async def attachments_by_id(tx: Tx, attachment_ids: Sequence[str]) -> dict[str, Attachment]:
    if not attachment_ids:
        return {}
    query = sa.select(attachments).where(attachments.c.attachment_id.in_(list(set(attachment_ids))))
    return {r.attachment_id: attachment_from(r) for r in await tx.execute(query)}


async def is_participant(tx: Tx, attachment_id: str, actor_kind: str, actor_id: str) -> bool:
    """Whether the actor is in a conversation with a message that references the attachment.

    A visitor is in the conversations it opened; an agent in those it is assigned to or has written in
    (so an agent who transferred a chat away keeps the files of that chat).
    """
    m, c = messages.c, conversations.c
    referencing = sa.select(m.session_id).where(m.attachment_id == attachment_id)
    if actor_kind == "visitor":
        query = sa.select(c.session_id).where(c.session_id.in_(referencing), c.visitor_id == actor_id)
    elif actor_kind == "agent":
        wrote = sa.select(messages.c.session_id).where(
            messages.c.session_id.in_(referencing), messages.c.sender_id == actor_id
        )
        query = sa.select(c.session_id).where(
            c.session_id.in_(referencing), sa.or_(c.agent_id == actor_id, c.session_id.in_(wrote))
        )
    else:
        return False
    return (await tx.execute(query.limit(1))).first() is not None


async def upload_settings(tx: Tx, app_id: str) -> dict[str, Any]:
    """The app's settings as stored (uploads read `upload_max_bytes` and `upload_types` from them)."""
    raw = (await tx.execute(sa.select(apps.c.settings).where(apps.c.app_id == app_id))).scalar_one_or_none()
    return dict(raw or {})
