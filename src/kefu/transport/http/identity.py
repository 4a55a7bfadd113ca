"""Visitor sessions and agent logins."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from kefu import errors
from kefu.domain.records import agent_record
from kefu.transport.http.cors import origin_allowed
from kefu.transport.http.deps import ServicesDep
from kefu.transport.http.errors import error_responses
from kefu.transport.http.fields import JsonObject

router = APIRouter(tags=["identity"], responses=error_responses(400, 401, 422, 429))


class VisitorSessionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    app_id: str = Field(min_length=1, max_length=64)
    user_id: str | None = Field(default=None, min_length=1, max_length=200)
    user_hash: str | None = Field(default=None, max_length=128)
    name: str | None = Field(default=None, max_length=200)
    tags: JsonObject | None = None
    tags_hash: str | None = Field(default=None, max_length=128)
    channel: str | None = Field(default=None, max_length=32)


class VisitorSessionOut(BaseModel):
    visitor_id: str
    token: str


class LoginIn(BaseModel):
    app_id: str = Field(min_length=1, max_length=64)
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1000)


class AgentOut(BaseModel):
    agent_id: str
    app_id: str
    email: str
    name: str
    role: str
    level: int
    max_concurrent: int
    groups: list[str]
    status: str


class LoginOut(BaseModel):
    token: str
    agent: AgentOut


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/visitor/session", response_model=VisitorSessionOut, responses=error_responses(403, 404))
async def visitor_session(body: VisitorSessionIn, request: Request, svc: ServicesDep) -> VisitorSessionOut:
    """A token for a visitor; `user_hash` (hex HMAC-SHA256 of user_id under the app secret) proves the id."""
    await svc.limits.visitor_session(body.app_id, client_ip(request))
    app = await svc.admin.get_app(body.app_id)
    if not origin_allowed(app.settings.allowed_origins, request.headers.get("origin")):
        raise errors.Forbidden("This site is not among the app's allowed origins.")
    session = await svc.auth.visitor_session(app, body.user_id, body.user_hash, body.name, body.tags, body.tags_hash)
    return VisitorSessionOut(visitor_id=session.visitor.visitor_id, token=session.token)


@router.post("/auth/login", response_model=LoginOut)
async def login(body: LoginIn, request: Request, svc: ServicesDep) -> LoginOut:
    """Too many attempts from one address, or failures for one account, answer 429 with Retry-After."""
    ip = client_ip(request)
    await svc.limits.before_login(ip, body.app_id, body.email)
    try:
        token, agent = await svc.auth.login(body.app_id, body.email, body.password)
    except errors.InvalidCredentials:
        await svc.limits.login_failed(ip, body.app_id, body.email)
        raise
    await svc.limits.login_succeeded(ip, body.app_id, body.email)
    return LoginOut(token=token, agent=AgentOut(**agent_record(agent)))
