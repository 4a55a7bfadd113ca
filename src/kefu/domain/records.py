"""The contract's JSON shapes (protocol §3, §4) from domain records, shared by services, webhooks, transport."""

from __future__ import annotations

from typing import Any

from kefu.domain.clock import iso
from kefu.domain.models import Agent, Conversation, Message, Visitor


def message_frame(message: Message, attachment: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `message` frame; `attachment` is the §3 object of an image/file message (see uploads.attachment_record)."""
    frame: dict[str, Any] = {
        "type": "message",
        "session_id": message.session_id,
        "seq": message.seq,
        "message_id": message.message_id,
        "client_msg_id": message.client_msg_id,
        "sender": message.sender,
        "sender_id": message.sender_id,
        "msg_type": message.msg_type,
        "content": message.content,
        "timestamp": iso(message.created_at),
    }
    if attachment is not None:
        frame["attachment"] = attachment
    if message.confidence is not None:
        frame["confidence"] = message.confidence
    if message.article_id is not None:
        frame["article_id"] = message.article_id
    return frame


def ack_frame(message: Message, ref: str | None) -> dict[str, Any]:
    return {
        "type": "ack",
        "ref": ref,
        "client_msg_id": message.client_msg_id,
        "session_id": message.session_id,
        "seq": message.seq,
        "message_id": message.message_id,
        "timestamp": iso(message.created_at),
    }


def agent_record(agent: Agent, status: str | None = None) -> dict[str, Any]:
    return {
        "agent_id": agent.agent_id,
        "app_id": agent.app_id,
        "email": agent.email,
        "name": agent.name,
        "role": agent.role,
        "level": agent.level,
        "max_concurrent": agent.max_concurrent,
        "groups": list(agent.groups),
        "status": status or agent.status,
    }


def visitor_record(visitor: Visitor) -> dict[str, Any]:
    return {
        "visitor_id": visitor.visitor_id,
        "app_id": visitor.app_id,
        "user_id": visitor.user_id,
        "name": visitor.name,
        "tags": visitor.tags,
        "client_tags": visitor.client_tags,
    }


def visitor_panel(conv: Conversation, visitor: Visitor | None) -> dict[str, Any]:
    """What an agent sees beside a chat (in `assigned` and the agent's `ready`): who, their tags, the context."""
    return {
        "visitor": visitor_record(visitor) if visitor else None,
        "tags": visitor.tags if visitor else {},
        "client_tags": visitor.client_tags if visitor else {},
        "context": conv.context,
        "channel": conv.channel,
    }


def conversation_record(
    conv: Conversation,
    agent_name: str | None = None,
    queue_position: int | None = None,
    eta_seconds: int | None = None,
) -> dict[str, Any]:
    """The `conversation` frame's fields: the record after a change."""
    record: dict[str, Any] = {
        "session_id": conv.session_id,
        "status": conv.status,
        "group": conv.group,
        "agent": {"agent_id": conv.agent_id, "name": agent_name} if conv.agent_id else None,
        "visitor_id": conv.visitor_id,
        "channel": conv.channel,
        "context": conv.context,
        "last_seq": conv.last_seq,
        "created_at": iso(conv.created_at),
        "closed_at": iso(conv.closed_at),
        "handoff_reason": conv.handoff_reason,
    }
    if queue_position is not None:
        record["queue_position"] = queue_position
        record["eta_seconds"] = eta_seconds
    return record


def conversation_frame(record: dict[str, Any]) -> dict[str, Any]:
    return {"type": "conversation", **record}


def archive_record(conv: Conversation, visitor: Visitor | None, messages: list[Message]) -> dict[str, Any]:
    """Protocol §4: exactly these keys; `user_id` is the site's id, or the anonymous visitor id."""
    items = []
    for m in messages:
        item: dict[str, Any] = {
            "sender": m.sender,
            "content": m.content,
            "timestamp": iso(m.created_at),
            "seq": m.seq,
            "msg_type": m.msg_type,
            "sender_id": m.sender_id,
        }
        if m.confidence is not None:
            item["confidence"] = m.confidence
        items.append(item)
    user_id = (visitor.user_id if visitor else None) or conv.visitor_id
    return {
        "session_id": conv.session_id,
        "user_id": user_id,
        "messages": items,
        "app_id": conv.app_id,
        "status": conv.status,
        "group": conv.group,
        "agent_id": conv.agent_id,
        "channel": conv.channel,
        "context": conv.context,
        "tags": visitor.tags if visitor else {},
        "created_at": iso(conv.created_at),
        "closed_at": iso(conv.closed_at),
        "resolution": conv.resolution,
        "handoff_reason": conv.handoff_reason,
    }
