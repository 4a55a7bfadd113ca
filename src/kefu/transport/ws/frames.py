"""Client frames (protocol §3): one pydantic model per type, and the parser that turns text into one."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from kefu import errors

SessionId = Annotated[str, StringConstraints(min_length=1, max_length=32)]
ClientMsgId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
MAX_SEQ = 2**31 - 1  # seqs are 32-bit integers in the database: a larger one would fail the query, not match


class Frame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    ref: str | None = None


class OpenChat(Frame):
    type: Literal["open_chat"]
    context: str | None = None
    group: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    channel: Literal["web", "mobile", "miniprogram"] | None = None


class Send(Frame):
    type: Literal["send"]
    session_id: SessionId
    client_msg_id: ClientMsgId
    msg_type: Literal["text", "image", "file", "link"] = "text"
    content: str = ""
    attachment_id: Annotated[str, StringConstraints(max_length=64)] | None = None


class Sync(Frame):
    type: Literal["sync"]
    session_id: SessionId
    after_seq: Annotated[int, Field(ge=0, le=MAX_SEQ)] = 0


class Typing(Frame):
    type: Literal["typing"]
    session_id: SessionId


class Read(Frame):
    type: Literal["read"]
    session_id: SessionId
    seq: Annotated[int, Field(ge=0, le=MAX_SEQ)]


class RequestHuman(Frame):
    type: Literal["request_human"]
    session_id: SessionId


class Feedback(Frame):
    type: Literal["feedback"]
    session_id: SessionId
    seq: Annotated[int, Field(ge=1, le=MAX_SEQ)]
    helpful: bool


class Close(Frame):
    type: Literal["close"]
    session_id: SessionId


class SetStatus(Frame):
    type: Literal["set_status"]
    status: Literal["online", "busy", "offline"]


class Transfer(Frame):
    type: Literal["transfer"]
    session_id: SessionId
    to_agent_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    to_group: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    note: str | None = None


class Ping(Frame):
    type: Literal["ping"]


ClientFrame = OpenChat | Send | Sync | Typing | Read | RequestHuman | Feedback | Close | SetStatus | Transfer | Ping

MODELS: dict[str, type[Frame]] = {
    "open_chat": OpenChat,
    "send": Send,
    "sync": Sync,
    "typing": Typing,
    "read": Read,
    "request_human": RequestHuman,
    "feedback": Feedback,
    "close": Close,
    "set_status": SetStatus,
    "transfer": Transfer,
    "ping": Ping,
}
VISITOR_ONLY = frozenset({"open_chat", "request_human", "feedback"})
AGENT_ONLY = frozenset({"set_status", "transfer"})


class FrameError(Exception):
    """A frame that could not be read, with the `ref` it carried (if any could be found)."""

    def __init__(self, error: errors.KefuError, ref: str | None) -> None:
        super().__init__(error.message)
        self.error, self.ref = error, ref


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "frame"
    return f"{where}: {first.get('msg', 'invalid')}"


def parse_frame(raw: str | bytes, max_bytes: int) -> Frame:
    """The frame `raw` holds; raises FrameError with the contract's code for anything else."""
    # Measured in UTF-8 bytes; encoding is only needed when the text could be over the limit.
    size = len(raw) if isinstance(raw, bytes) or len(raw) * 4 <= max_bytes else len(raw.encode())
    if size > max_bytes:
        raise FrameError(errors.FrameTooLarge(f"A frame holds at most {max_bytes} bytes."), None)
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise FrameError(errors.InvalidFrame("The frame is not valid JSON."), None) from None
    if not isinstance(data, dict):
        raise FrameError(errors.InvalidFrame("A frame is a JSON object with a 'type'."), None)
    ref = data.get("ref")
    ref = ref if isinstance(ref, str) and len(ref) <= 200 else None
    kind = data.get("type")
    model = MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise FrameError(errors.UnknownFrameType(f"Unknown frame type {str(kind)[:40]!r}."), ref)
    try:
        frame = model.model_validate(data)
    except ValidationError as exc:
        raise FrameError(errors.InvalidFrame(_describe(exc)), ref) from None
    # JSON may spell U+0000 as \u0000; PostgreSQL text cannot hold it, so no field may carry it, on any database.
    for name, value in frame:
        if isinstance(value, str) and "\x00" in value:
            raise FrameError(errors.InvalidFrame(f"{name}: the NUL character (U+0000) is not allowed."), ref)
    return frame
