"""The one place HTTP errors become the contract's `{"error": {"code", "message"}}`, and how the OpenAPI
document describes them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from kefu import errors

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="stable snake_case code, e.g. `not_found`")
    message: str = Field(description="human text; may change between releases")


class ErrorOut(BaseModel):
    """Every error answer (protocol §2)."""

    error: ErrorDetail


_ERROR_DESCRIPTIONS = {
    400: "`bad_request` (and more precise codes such as `invalid_article`): the request makes no sense",
    401: "`unauthorized`, `invalid_credentials`, `identity_unverified`, `tags_unverified`: no valid credentials",
    403: "`forbidden`: the credentials are valid but may not do this",
    404: "`not_found` or a precise `…_not_found`: no such resource in the caller's app",
    409: "`conflict`, `already_exists`: the resource's state does not allow it",
    413: "`too_large`: the body is over the limit",
    415: "`unsupported_type`: the content's type is not taken",
    422: "`invalid_request`: a body or parameter does not fit the schema; the message says where",
    429: "`rate_limited`: too many requests; retry after `Retry-After` seconds",
    503: "`unavailable`: kefu's database is unreachable for now; retry after `Retry-After` seconds",
}
_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds to wait", "required": True, "schema": {"type": "integer"}}},
    503: {"Retry-After": {"description": "seconds to wait", "required": True, "schema": {"type": "integer"}}},
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route or router: these statuses answer the error shape."""
    return {
        status: {"model": ErrorOut, "description": _ERROR_DESCRIPTIONS[status]}
        | ({"headers": _ERROR_HEADERS[status]} if status in _ERROR_HEADERS else {})
        for status in statuses
    }


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_type",
    429: "rate_limited",
}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _describe(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
    return f"{where}: {first.get('msg', 'invalid')}"


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.KefuError)
    async def kefu_error(_request: Request, exc: errors.KefuError) -> JSONResponse:
        headers = None
        if isinstance(exc, errors.RateLimited | errors.Unavailable):
            headers = {"Retry-After": str(exc.retry_after_s)}
        if exc.status == 401:
            headers = (headers or {}) | {"WWW-Authenticate": "Bearer"}
        return error_response(exc.status, exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _describe(exc))

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        failed = errors.InternalError()
        return error_response(failed.status, failed.code, failed.message)
