"""An agent's own session: log out (revoke this token) and change the password (revoke every token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from kefu import errors
from kefu.transport.http.deps import AgentToken, ServicesDep, bearer
from kefu.transport.http.errors import error_responses
from kefu.transport.http.identity import client_ip

router = APIRouter(tags=["identity"], responses=error_responses(400, 401, 422))


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=1000)
    new_password: str = Field(min_length=8, max_length=1000)


class PasswordOut(BaseModel):
    token: str = Field(description="a fresh token for the caller: every earlier token of the agent is revoked")


@router.post("/auth/logout", status_code=204, response_class=Response)
async def logout(request: Request, svc: ServicesDep, _agent: AgentToken) -> Response:
    """Revoke the agent token sent with this request; the sockets opened with it are closed (code 4401)."""
    actor = await svc.auth.logout(bearer(request))
    await svc.chat.publisher.revoke(actor.actor_id, token_id=actor.token_id)
    return Response(status_code=204)


@router.post("/auth/password", response_model=PasswordOut, responses=error_responses(403, 429))
async def change_password(body: PasswordIn, request: Request, svc: ServicesDep, _agent: AgentToken) -> dict[str, Any]:
    """Change the caller's password: the agent is logged out on every device, and this one gets a new token."""
    actor = await svc.auth.actor_from_token(bearer(request), "agent")
    profile = await svc.auth.agent_profile(actor)
    ip = client_ip(request)
    await svc.limits.before_login(ip, actor.app_id, profile["email"])
    try:
        epoch, token = await svc.auth.change_password(actor, body.current_password, body.new_password)
    except errors.InvalidCredentials:
        await svc.limits.login_failed(ip, actor.app_id, profile["email"])
        raise
    await svc.chat.publisher.revoke(actor.actor_id, epoch_below=epoch)
    return {"token": token}
