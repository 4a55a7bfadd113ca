"""Input types the routers share."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import AfterValidator


def _sendable(value: Any) -> Any:
    """Refuse JSON that kefu could store but not send on (frames and webhooks are written with orjson):
    integers past 64 bits, nesting deeper than 254 levels."""
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"not a JSON value kefu can keep ({exc})") from None
    return value


JsonValue = Annotated[Any, AfterValidator(_sendable)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_sendable)]
