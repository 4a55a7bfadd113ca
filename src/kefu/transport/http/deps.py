"""Request dependencies: the node's services and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kefu import errors
from kefu.domain.models import Actor
from kefu.services.container import Services
from kefu.services.kb import check_curator


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]

# The three kinds of credentials, each a bearer token in `Authorization`. They are declared as dependencies so
# that the OpenAPI document names the ones each endpoint takes (any one of those listed); `bearer()` reads the
# token itself, so the declarations decide nothing.
AGENT_TOKEN = HTTPBearer(
    scheme_name="agentToken", description="An agent's (or admin's) token from `POST /auth/login`.", auto_error=False
)
API_KEY = HTTPBearer(
    scheme_name="apiKey", description="The app's API key, from `kefu app create` or `POST /api-keys`.", auto_error=False
)
VISITOR_TOKEN = HTTPBearer(
    scheme_name="visitorToken", description="A visitor's token from `POST /visitor/session`.", auto_error=False
)
Declared = HTTPAuthorizationCredentials | None
AgentToken = Annotated[Declared, Security(AGENT_TOKEN)]
ApiKeyToken = Annotated[Declared, Security(API_KEY)]
VisitorToken = Annotated[Declared, Security(VISITOR_TOKEN)]


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthorized("Send an agent token or API key as 'Authorization: Bearer …'.")
    return token.strip()


async def caller(request: Request, svc: ServicesDep, _agent: AgentToken, _key: ApiKeyToken) -> Actor:
    """An agent (token) or an app's API key; a visitor token is refused (it would read the app's archive)."""
    actor = await svc.auth.actor_from_bearer(bearer(request))
    if actor.kind == "visitor":
        raise errors.Unauthorized("This endpoint takes an agent token or an API key, not a visitor token.")
    return actor


async def agent_caller(request: Request, svc: ServicesDep, _agent: AgentToken) -> Actor:
    """Like `caller`, documented as taking an agent token only: the service refuses an API key (403)."""
    return await caller(request, svc, None, None)


async def any_caller(
    request: Request, svc: ServicesDep, _agent: AgentToken, _key: ApiKeyToken, _visitor: VisitorToken
) -> Actor:
    """An agent, an API key, or a visitor (uploads): `actor_from_bearer` takes visitor tokens as they are."""
    token = bearer(request)
    return await svc.auth.actor_from_bearer(token)


async def visitor_or_agent(request: Request, svc: ServicesDep, _visitor: VisitorToken, _agent: AgentToken) -> Actor:
    """A visitor token or an agent token (no API key)."""
    actor = await svc.auth.actor_from_bearer(bearer(request))
    if actor.kind not in ("visitor", "agent"):
        raise errors.Unauthorized("This endpoint takes a visitor or agent token.")
    return actor


async def admin(actor: Annotated[Actor, Depends(caller)]) -> Actor:
    if not actor.is_admin:
        raise errors.Forbidden("Only an admin of the app (or its API key) may do this.")
    return actor


async def curator(actor: Annotated[Actor, Depends(caller)]) -> Actor:
    """Who curates the knowledge base from its gaps (protocol §11); the rule is `services.kb.check_curator`."""
    check_curator(actor)
    return actor


async def api_key(request: Request, svc: ServicesDep, _key: ApiKeyToken) -> Actor:
    actor = await svc.auth.actor_from_bearer(bearer(request))
    if actor.kind != "api_key":
        raise errors.Unauthorized("This endpoint takes an API key.")
    return actor


Caller = Annotated[Actor, Depends(caller)]
AgentCaller = Annotated[Actor, Depends(agent_caller)]
Admin = Annotated[Actor, Depends(admin)]
Curator = Annotated[Actor, Depends(curator)]
ApiKey = Annotated[Actor, Depends(api_key)]
AnyCaller = Annotated[Actor, Depends(any_caller)]
VisitorOrAgent = Annotated[Actor, Depends(visitor_or_agent)]
