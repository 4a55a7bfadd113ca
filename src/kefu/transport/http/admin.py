"""Administration over HTTP: agents, groups, the app's settings, routing rules, and trusted visitor tags.

Admin endpoints take an admin agent's token or the app's API key and work inside the caller's
own app only; `PUT /visitors/{user_id}/tags` takes an API key (the site's server).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kefu.transport.http.deps import Admin, ApiKey, ServicesDep
from kefu.transport.http.errors import error_responses
from kefu.transport.http.fields import JsonObject, JsonValue
from kefu.transport.http.identity import AgentOut as AgentRecord

router = APIRouter(tags=["admin"], responses=error_responses(400, 401, 403, 422))

Level = Annotated[int, Field(strict=True, ge=0, le=1000)]
Capacity = Annotated[int, Field(strict=True, ge=1, le=1000)]
Priority = Annotated[int, Field(strict=True, ge=-1000, le=1000)]
Position = Annotated[int, Field(strict=True, ge=1)]
GroupName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Role = Literal["admin", "agent"]
AgentId = Annotated[str, Path(min_length=1, max_length=64)]
RuleId = Annotated[str, Path(min_length=1, max_length=64)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- agents --------------------------------------------------------------------------------------------


class AgentOut(AgentRecord):
    status: str = Field(description="online | busy | offline; `busy` also when online but at max_concurrent")
    load: int = Field(description="conversations the agent has open now")


class AgentListOut(BaseModel):
    items: list[AgentOut]


class AgentCreateIn(Body):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=8, max_length=1000)
    name: Name | None = None
    groups: list[GroupName] = Field(default_factory=list, max_length=50, description="default: the group `default`")
    level: Level = 1
    max_concurrent: Capacity = 5
    role: Role = "agent"


class AgentUpdateIn(Body):
    name: Name | None = None
    password: str | None = Field(default=None, min_length=8, max_length=1000)
    groups: list[GroupName] | None = Field(default=None, max_length=50)
    level: Level | None = None
    max_concurrent: Capacity | None = None
    role: Role | None = None


@router.get("/agents", response_model=AgentListOut)
async def list_agents(actor: Admin, svc: ServicesDep) -> AgentListOut:
    """The app's agents with their level, groups, capacity, current load and shown status."""
    return AgentListOut(items=[AgentOut(**a) for a in await svc.admin.list_agents(actor)])


@router.post("/agents", response_model=AgentOut, status_code=201, responses=error_responses(409))
async def create_agent(body: AgentCreateIn, actor: Admin, svc: ServicesDep) -> AgentOut:
    """A new agent (offline until they log in and set their status); unknown groups are created."""
    agent = await svc.admin.create_agent(
        actor, body.email, body.password, body.name, tuple(body.groups), body.level, body.max_concurrent, body.role
    )
    return AgentOut(**agent)


@router.get("/agents/{agent_id}", response_model=AgentOut, responses=error_responses(404))
async def get_agent(agent_id: AgentId, actor: Admin, svc: ServicesDep) -> AgentOut:
    return AgentOut(**await svc.admin.agent(actor, agent_id))


@router.put("/agents/{agent_id}", response_model=AgentOut, responses=error_responses(404, 409))
async def update_agent(agent_id: AgentId, body: AgentUpdateIn, actor: Admin, svc: ServicesDep) -> AgentOut:
    """Change the given fields only. A new capacity, level or group offers waiting chats at once."""
    before = await svc.admin.agent(actor, agent_id)
    agent = await svc.admin.update_agent(actor, agent_id, body.model_dump(exclude_none=True))
    if body.password is not None:  # a reset signs the agent out everywhere: open sockets close too (4401)
        await svc.chat.publisher.revoke(agent_id, epoch_below=await svc.auth.token_epoch(agent_id))
    elif before["role"] != agent["role"] or set(before["groups"]) != set(agent["groups"]):
        # Open sockets act with the rights of when they opened: they reopen with the new ones (4409).
        await svc.chat.publisher.rights_changed(agent_id)
    # More capacity, a higher level or another group can make waiting chats assignable now.
    await svc.routing.assign_waiting(actor.app_id)
    return AgentOut(**agent)


# --- groups --------------------------------------------------------------------------------------------


class GroupOut(BaseModel):
    name: str
    description: str
    agent_count: int
    created_at: str


class GroupListOut(BaseModel):
    items: list[GroupOut]


class GroupCreateIn(Body):
    name: GroupName
    description: str = Field(default="", max_length=500)


@router.get("/groups", response_model=GroupListOut)
async def list_groups(actor: Admin, svc: ServicesDep) -> GroupListOut:
    """The app's skill groups, by name, with how many agents are in each."""
    return GroupListOut(items=[GroupOut(**g) for g in await svc.admin.list_groups(actor)])


@router.post("/groups", response_model=GroupOut, status_code=201, responses=error_responses(409))
async def create_group(body: GroupCreateIn, actor: Admin, svc: ServicesDep) -> GroupOut:
    """A new skill group; 409 `already_exists` when the app has one of that name."""
    return GroupOut(**await svc.admin.create_group(actor, body.name, body.description))


# --- the app -------------------------------------------------------------------------------------------


class AppOut(BaseModel):
    app_id: str
    name: str
    created_at: str
    bot_threshold: float
    require_identity: bool
    allowed_origins: list[str]
    rate_limits: dict[str, int] = Field(description="the abuse limits that hold for this app (defaults or its own)")


class AppUpdateIn(Body):
    bot_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    require_identity: bool | None = None
    allowed_origins: list[Annotated[str, StringConstraints(min_length=1, max_length=300)]] | None = Field(
        default=None, max_length=100
    )
    rate_limits: dict[str, Annotated[int, Field(ge=1, le=1_000_000)]] | None = Field(
        default=None,
        max_length=20,
        description="counts to change: logins_per_ip_per_minute, failed_logins_before_lockout, "
        "failed_logins_per_account_per_hour, visitor_sessions_per_ip_per_minute, messages_per_sender_per_minute, "
        "chats_per_visitor_per_hour, uploads_per_uploader_per_hour",
    )


@router.get("/apps/{app_id}", response_model=AppOut, responses=error_responses(404))
async def get_app(app_id: Annotated[str, Path(max_length=64)], actor: Admin, svc: ServicesDep) -> AppOut:
    """The caller's app and its settings. The secret is shown only once, by `kefu app create`."""
    return AppOut(**await svc.admin.app_settings(actor, app_id))


@router.put("/apps/{app_id}", response_model=AppOut, responses=error_responses(404))
async def update_app(
    app_id: Annotated[str, Path(max_length=64)], body: AppUpdateIn, actor: Admin, svc: ServicesDep
) -> AppOut:
    """Change the given settings only."""
    return AppOut(**await svc.admin.update_app_settings(actor, app_id, body.model_dump(exclude_none=True)))


# --- routing rules ---------------------------------------------------------------------------------------


class ConditionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: str = Field(max_length=110, description="`tags.<key>` (trusted tags only), `channel` or `group`")
    op: str = Field(max_length=8, description="==, !=, >, >=, <, <=, in, contains")
    value: JsonValue


class MatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    all: list[ConditionIn] | None = Field(default=None, description="every condition holds")
    any: list[ConditionIn] | None = Field(default=None, description="at least one condition holds")


class RuleOut(BaseModel):
    id: str
    name: str
    match: dict[str, list[dict[str, Any]]]
    group: str
    min_level: int
    queue_priority: int
    position: int


class RuleListOut(BaseModel):
    items: list[RuleOut]


class RuleCreateIn(Body):
    name: Name
    match: MatchIn
    group: GroupName
    min_level: Level = 0
    queue_priority: Priority = 0
    position: Position | None = Field(default=None, description="1-based place in the list; default: last")


class RuleUpdateIn(Body):
    name: Name | None = None
    match: MatchIn | None = None
    group: GroupName | None = None
    min_level: Level | None = None
    queue_priority: Priority | None = None
    position: Position | None = None


def _match(match: MatchIn) -> dict[str, Any]:
    """The match as given (a condition's value may be null, so this is no `exclude_none` dump)."""
    given = {"all": match.all, "any": match.any}
    return {key: [c.model_dump() for c in conditions] for key, conditions in given.items() if conditions is not None}


@router.get("/routing/rules", response_model=RuleListOut)
async def list_rules(actor: Admin, svc: ServicesDep) -> RuleListOut:
    """The rules in the order they are tried (the first match routes the chat), each with its `position`."""
    return RuleListOut(items=[RuleOut(**r) for r in await svc.admin.list_rules(actor)])


@router.post("/routing/rules", response_model=RuleOut, status_code=201, responses=error_responses(404, 409))
async def create_rule(body: RuleCreateIn, actor: Admin, svc: ServicesDep) -> RuleOut:
    """Add a rule at `position` (default last); the rules from there move down one."""
    rule = await svc.admin.create_rule(
        actor, body.name, _match(body.match), body.group, body.min_level, body.queue_priority, body.position
    )
    return RuleOut(**rule)


@router.put("/routing/rules/{rule_id}", response_model=RuleOut, responses=error_responses(404))
async def update_rule(rule_id: RuleId, body: RuleUpdateIn, actor: Admin, svc: ServicesDep) -> RuleOut:
    """Change the given fields only; a `position` moves the rule there."""
    changes = body.model_dump(exclude_none=True, exclude={"match"})
    if body.match is not None:
        changes["match"] = _match(body.match)
    return RuleOut(**await svc.admin.update_rule(actor, rule_id, changes))


@router.delete("/routing/rules/{rule_id}", status_code=204, response_class=Response, responses=error_responses(404))
async def delete_rule(rule_id: RuleId, actor: Admin, svc: ServicesDep) -> Response:
    """Remove a rule; the ones below it move up one."""
    await svc.admin.delete_rule(actor, rule_id)
    return Response(status_code=204)


# --- visitors ----------------------------------------------------------------------------------------------


class VisitorTagsIn(Body):
    tags: JsonObject


class VisitorTagsOut(BaseModel):
    visitor_id: str
    user_id: str
    tags: dict[str, Any]


@router.put("/visitors/{user_id}/tags", response_model=VisitorTagsOut, responses=error_responses(404))
async def set_visitor_tags(
    user_id: Annotated[str, Path(min_length=1, max_length=200)], body: VisitorTagsIn, actor: ApiKey, svc: ServicesDep
) -> VisitorTagsOut:
    """Replace the visitor's trusted tags (the ones routing rules match); for the site's server, with an API key."""
    return VisitorTagsOut(**await svc.admin.set_visitor_tags(actor, user_id, body.tags))
