"""The one tree of errors kefu reports to clients.

Each error has a stable snake_case `code`, an HTTP status, and whether a WebSocket stays open
after it (`recoverable`). Transport converts them in exactly one place each (HTTP and WS).
"""

from __future__ import annotations

from typing import ClassVar


class KefuError(Exception):
    """A failure the client caused or must know about; never a programming mistake."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    recoverable: ClassVar[bool] = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InternalError(KefuError):
    """kefu failed, not the client (a bug or an outage, logged where it happened): retrying may work."""

    code = "internal_error"
    status = 500

    def __init__(self, message: str = "Something went wrong on our side; try again.") -> None:
        super().__init__(message)


class Unavailable(KefuError):
    """Something kefu needs (its database) is down for now: the client waits `retry_after_s` and tries again.

    Distinct from `internal_error` so that clients back off instead of retrying at once, and operators see
    an outage (logged once where it was found, then counted) rather than a bug.
    """

    code = "unavailable"
    status = 503

    def __init__(
        self, message: str = "kefu cannot reach its database just now; try again shortly.", retry_after_s: int = 2
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BadRequest(KefuError):
    code = "bad_request"


class InvalidFrame(KefuError):
    code = "invalid_frame"


class UnknownFrameType(KefuError):
    code = "unknown_type"


class FrameTooLarge(KefuError):
    code = "frame_too_large"
    status = 413


class MessageTooLong(KefuError):
    code = "message_too_long"
    status = 413


class Unauthorized(KefuError):
    code = "unauthorized"
    status = 401
    recoverable = False


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


class IdentityUnverified(Unauthorized):
    code = "identity_unverified"


class TagsUnverified(Unauthorized):
    code = "tags_unverified"


class RightsChanged(KefuError):
    """An agent's role or groups changed: the socket closes (4409) and reconnects with the new rights."""

    code = "rights_changed"
    status = 409
    recoverable = False


class Forbidden(KefuError):
    code = "forbidden"
    status = 403


class NotFound(KefuError):
    code = "not_found"
    status = 404


class AttachmentNotFound(NotFound):
    code = "attachment_not_found"


class AppNotFound(NotFound):
    code = "app_not_found"


class ConversationNotFound(NotFound):
    code = "conversation_not_found"


class AgentNotFound(NotFound):
    code = "agent_not_found"


class GroupNotFound(NotFound):
    code = "group_not_found"


class Conflict(KefuError):
    code = "conflict"
    status = 409


class ConversationClosed(Conflict):
    code = "conversation_closed"


class AlreadyExists(Conflict):
    code = "already_exists"


class TooLarge(KefuError):
    code = "too_large"
    status = 413


class UnsupportedType(KefuError):
    code = "unsupported_type"
    status = 415


class RateLimited(KefuError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
