"""Administration: apps and their settings, agents, groups, routing rules, trusted visitor tags.

Every method that takes an `Actor` works inside the actor's own app only: another app's agent,
group or rule is reported as not found, never shown or changed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kefu import errors
from kefu.domain.clock import Clock, iso
from kefu.domain.ids import new_id
from kefu.domain.models import Actor, Agent, App
from kefu.domain.records import agent_record
from kefu.domain.routing import DEFAULT_GROUP, insert_at, match_document, parse_match, shown_status
from kefu.services.auth import MIN_PASSWORD_CHARS, check_tags_size, hash_api_key, hash_password, new_api_key
from kefu.services.limits import APP_LIMITS, effective_limits
from kefu.storage import Database, Tx
from kefu.storage import agents as agent_store
from kefu.storage import apps as app_store
from kefu.storage import rules as rule_store
from kefu.storage import visitors as visitor_store

ROLES = ("admin", "agent")
AGENT_FIELDS = ("name", "role", "level", "max_concurrent")
MAX_RULES = 500
DEMO_APP_MARKER = "demo_app_id"  # the marker naming the app `kefu demo` made (services/demo.py)


@dataclass(frozen=True, slots=True)
class CreatedApp:
    app_id: str
    secret: str
    api_key: str
    admin_id: str


def require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise errors.Forbidden("Only an admin of the app may do this.")


class AdminService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    async def rate_limits_of(self, app_id: str) -> dict[str, int] | None:
        """An app's own limit counts; None when there is no such app."""
        async with self.db.read() as tx:
            app = await app_store.get_app(tx, app_id)
        return app.settings.rate_limits if app else None

    async def demo_app(self) -> App | None:
        """The app `kefu demo` made in this database, if it made one (the demo page serves its widget)."""
        async with self.db.read() as tx:
            app_id = await app_store.get_marker(tx, DEMO_APP_MARKER)
            return await app_store.get_app(tx, app_id) if app_id else None

    async def get_app(self, app_id: str) -> App:
        async with self.db.read() as tx:
            app = await app_store.get_app(tx, app_id)
        if app is None:
            raise errors.AppNotFound(f"No app '{app_id}'.")
        return app

    async def create_app(self, name: str, admin_email: str, admin_password: str) -> CreatedApp:
        """A new tenant with its secret, a first API key, the group `default` and an admin agent."""
        name = name.strip()
        if not name:
            raise errors.BadRequest("The app needs a name.")
        check_password(admin_password)
        check_email(admin_email)
        now = self.clock.now()
        app_id = new_id("app")
        secret = "sk_" + secrets.token_urlsafe(32)
        api_key = new_api_key()
        async with self.db.transaction() as tx:
            await app_store.insert_app(tx, app_id, name, secret, {"bot_threshold": 0.7, "require_identity": True}, now)
            await app_store.insert_api_key(
                tx, new_id("key"), app_id, hash_api_key(api_key), api_key[:12], "default", now
            )
            await agent_store.ensure_group(tx, app_id, DEFAULT_GROUP, now)
            admin = await self._insert_agent(tx, app_id, admin_email, admin_password, "Admin", "admin", 1, 5, ())
        return CreatedApp(app_id, secret, api_key, admin.agent_id)

    async def add_agent(
        self,
        app_id: str,
        email: str,
        password: str,
        name: str | None = None,
        groups: tuple[str, ...] = (),
        level: int = 1,
        max_concurrent: int = 5,
        role: str = "agent",
    ) -> Agent:
        check_email(email)
        check_password(password)
        if role not in ROLES:
            raise errors.BadRequest(f"role must be one of {', '.join(ROLES)}, not '{role}'.")
        if level < 0 or max_concurrent < 1 or max_concurrent > 1000:
            raise errors.BadRequest("level must be >= 0 and max_concurrent between 1 and 1000.")
        async with self.db.transaction() as tx:
            if await app_store.get_app(tx, app_id) is None:
                raise errors.AppNotFound(f"No app '{app_id}'.")
            if await agent_store.agent_by_email(tx, app_id, email) is not None:
                raise errors.AlreadyExists(f"The app already has an agent with email '{email}'.")
            return await self._insert_agent(
                tx, app_id, email, password, name or email.split("@")[0], role, level, max_concurrent, groups
            )

    async def _insert_agent(
        self,
        tx: Tx,
        app_id: str,
        email: str,
        password: str,
        name: str,
        role: str,
        level: int,
        max_concurrent: int,
        groups: tuple[str, ...],
    ) -> Agent:
        now = self.clock.now()
        names = tuple(dict.fromkeys(g.strip() for g in groups if g.strip())) or (DEFAULT_GROUP,)
        for group in names:
            check_group_name(group)
            await agent_store.ensure_group(tx, app_id, group, now)
        values: dict[str, Any] = {
            "agent_id": new_id("ag"),
            "app_id": app_id,
            "email": email.strip(),
            "name": name,
            "password_hash": hash_password(password),
            "role": role,
            "level": level,
            "max_concurrent": max_concurrent,
            "status": "offline",
            "idle_since": now,
            "created_at": now,
        }
        await agent_store.insert_agent(tx, values, names)
        agent = await agent_store.get_agent(tx, values["agent_id"])
        assert agent is not None
        return agent

    # --- the caller's app ------------------------------------------------------------------------------

    async def app_settings(self, actor: Actor, app_id: str) -> dict[str, Any]:
        """`GET /apps/{id}`: the caller's app and its settings; never the secret."""
        require_admin(actor)
        if app_id != actor.app_id:
            raise errors.AppNotFound(f"No app '{app_id}'.")
        return app_view(await self.get_app(app_id))

    async def update_app_settings(self, actor: Actor, app_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change the given settings (`bot_threshold`, `require_identity`, `allowed_origins`); the rest stay."""
        require_admin(actor)
        if app_id != actor.app_id:
            raise errors.AppNotFound(f"No app '{app_id}'.")
        if "bot_threshold" in changes and not 0.0 <= float(changes["bot_threshold"]) <= 1.0:
            raise errors.BadRequest("bot_threshold is between 0 and 1.")
        if "allowed_origins" in changes:
            changes["allowed_origins"] = [check_origin(o) for o in changes["allowed_origins"]]
        if "rate_limits" in changes:
            check_rate_limits(changes["rate_limits"])
        async with self.db.transaction() as tx:
            stored = await agent_store.app_settings_document(tx, app_id)
            if stored is None:
                raise errors.AppNotFound(f"No app '{app_id}'.")
            if "rate_limits" in changes:  # the counts given change; the others stay
                changes["rate_limits"] = (stored.get("rate_limits") or {}) | changes["rate_limits"]
            settings = stored | changes  # keys this version does not know are kept as they are
            await app_store.update_app_settings(tx, app_id, settings)
            app = await app_store.get_app(tx, app_id)
            assert app is not None
        return app_view(app)

    # --- agents ------------------------------------------------------------------------------------------

    async def list_agents(self, actor: Actor) -> list[dict[str, Any]]:
        """The app's agents with their load and the status others see (`busy` when at capacity)."""
        require_admin(actor)
        async with self.db.read() as tx:
            agents = await agent_store.list_agents(tx, actor.app_id)
            loads = await agent_store.loads_of_app(tx, actor.app_id)
        return [agent_view(a, loads.get(a.agent_id, 0)) for a in agents]

    async def agent(self, actor: Actor, agent_id: str) -> dict[str, Any]:
        require_admin(actor)
        async with self.db.read() as tx:
            agent = await self._access_agent(tx, actor, agent_id)
            load = await agent_store.load_of(tx, agent_id)
        return agent_view(agent, load)

    async def create_agent(
        self,
        actor: Actor,
        email: str,
        password: str,
        name: str | None,
        groups: tuple[str, ...],
        level: int,
        max_concurrent: int,
        role: str,
    ) -> dict[str, Any]:
        """A new agent of the caller's app; groups that do not exist yet are created."""
        require_admin(actor)
        agent = await self.add_agent(actor.app_id, email, password, name, groups, level, max_concurrent, role)
        return agent_view(agent, 0)

    async def update_agent(self, actor: Actor, agent_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change an agent's name, password, role, level, max_concurrent or groups (the given ones only).

        Groups named here that do not exist yet are created; an app always keeps at least one admin.
        """
        require_admin(actor)
        if "role" in changes and changes["role"] not in ROLES:
            raise errors.BadRequest(f"role must be one of {', '.join(ROLES)}, not '{changes['role']}'.")
        if "password" in changes:
            check_password(changes["password"])
        async with self.db.transaction() as tx:
            agent = await self._access_agent(tx, actor, agent_id)
            values: dict[str, Any] = {
                k: v for k, v in changes.items() if k in ("name", "role", "level", "max_concurrent")
            }
            if "password" in changes:  # a new password logs the agent out everywhere
                values["password_hash"] = hash_password(changes["password"])
                values["token_epoch"] = agent.token_epoch + 1
            demoted = agent.role == "admin" and values.get("role", "admin") != "admin"
            if demoted and await agent_store.count_admins(tx, actor.app_id) <= 1:
                raise errors.Conflict("The app's last admin cannot stop being an admin.")
            await agent_store.update_agent(tx, agent_id, values)
            if "groups" in changes:
                names = tuple(dict.fromkeys(g.strip() for g in changes["groups"] if g.strip())) or (DEFAULT_GROUP,)
                for group in names:
                    check_group_name(group)
                    await agent_store.ensure_group(tx, actor.app_id, group, self.clock.now())
                await agent_store.set_agent_groups(tx, agent_id, actor.app_id, names)
            updated = await agent_store.get_agent(tx, agent_id)
            load = await agent_store.load_of(tx, agent_id)
        assert updated is not None
        return agent_view(updated, load)

    async def _access_agent(self, tx: Tx, actor: Actor, agent_id: str) -> Agent:
        agent = await agent_store.get_agent(tx, agent_id)
        if agent is None or agent.app_id != actor.app_id:
            raise errors.AgentNotFound(f"No agent '{agent_id}'.")
        return agent

    # --- groups ------------------------------------------------------------------------------------------

    async def list_groups(self, actor: Actor) -> list[dict[str, Any]]:
        require_admin(actor)
        async with self.db.read() as tx:
            rows = await agent_store.group_rows(tx, actor.app_id)
        return [group_view(r) for r in rows]

    async def create_group(self, actor: Actor, name: str, description: str) -> dict[str, Any]:
        """A new skill group of the caller's app; 409 when the name is taken."""
        require_admin(actor)
        name = name.strip()
        check_group_name(name)
        async with self.db.transaction() as tx:
            if name in await agent_store.list_groups(tx, actor.app_id):
                raise errors.AlreadyExists(f"The app already has a group '{name}'.")
            await agent_store.insert_group(tx, actor.app_id, name, description, self.clock.now())
            rows = await agent_store.group_rows(tx, actor.app_id)
        return next(group_view(r) for r in rows if r.name == name)

    # --- routing rules -------------------------------------------------------------------------------------

    async def list_rules(self, actor: Actor) -> list[dict[str, Any]]:
        """The app's rules in the order they are tried, each with its 1-based `position`."""
        require_admin(actor)
        async with self.db.read() as tx:
            return [rule_store.rule_record(r) for r in await rule_store.list_rule_rows(tx, actor.app_id)]

    async def create_rule(
        self,
        actor: Actor,
        name: str,
        match: Any,
        group: str,
        min_level: int,
        queue_priority: int,
        position: int | None,
    ) -> dict[str, Any]:
        """Add a rule at `position` (1-based; default last); the rules from there move down one."""
        require_admin(actor)
        combine, conditions = parse_match(match)
        rule_id = new_id("rule")
        async with self.db.transaction() as tx:
            await agent_store.lock_routing(tx, actor.app_id)
            await self._check_group(tx, actor.app_id, group)
            ordered = [r.rule_id for r in await rule_store.list_rule_rows(tx, actor.app_id)]
            if len(ordered) >= MAX_RULES:
                raise errors.Conflict(f"An app has at most {MAX_RULES} routing rules.")
            values: dict[str, Any] = {
                "rule_id": rule_id,
                "app_id": actor.app_id,
                "position": len(ordered) + 1,
                "name": name.strip(),
                "match": match_document(combine, conditions),
                "group_name": group,
                "min_level": min_level,
                "queue_priority": queue_priority,
            }
            await rule_store.insert_rule(tx, values)
            await rule_store.renumber(tx, actor.app_id, insert_at(ordered, rule_id, position))
            return rule_store.rule_record(await rule_store.get_rule_row(tx, actor.app_id, rule_id))

    async def update_rule(self, actor: Actor, rule_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change the given fields of a rule; a `position` moves it there and the others close up around it."""
        require_admin(actor)
        values: dict[str, Any] = {}
        if "match" in changes:
            values["match"] = match_document(*parse_match(changes["match"]))
        if "name" in changes:
            values["name"] = changes["name"].strip()
        for key, column in (("group", "group_name"), ("min_level", "min_level"), ("queue_priority", "queue_priority")):
            if key in changes:
                values[column] = changes[key]
        async with self.db.transaction() as tx:
            await agent_store.lock_routing(tx, actor.app_id)
            if await rule_store.get_rule_row(tx, actor.app_id, rule_id) is None:
                raise errors.NotFound(f"No routing rule '{rule_id}'.")
            if "group_name" in values:
                await self._check_group(tx, actor.app_id, values["group_name"])
            if values:
                await rule_store.update_rule(tx, actor.app_id, rule_id, values)
            if changes.get("position") is not None:
                ordered = [r.rule_id for r in await rule_store.list_rule_rows(tx, actor.app_id)]
                await rule_store.renumber(tx, actor.app_id, insert_at(ordered, rule_id, changes["position"]))
            return rule_store.rule_record(await rule_store.get_rule_row(tx, actor.app_id, rule_id))

    async def delete_rule(self, actor: Actor, rule_id: str) -> None:
        """Remove a rule; the ones below it move up one."""
        require_admin(actor)
        async with self.db.transaction() as tx:
            await agent_store.lock_routing(tx, actor.app_id)
            if await rule_store.get_rule_row(tx, actor.app_id, rule_id) is None:
                raise errors.NotFound(f"No routing rule '{rule_id}'.")
            await rule_store.delete_rule(tx, actor.app_id, rule_id)
            ordered = [r.rule_id for r in await rule_store.list_rule_rows(tx, actor.app_id)]
            await rule_store.renumber(tx, actor.app_id, ordered)

    async def _check_group(self, tx: Tx, app_id: str, group: str) -> None:
        if group not in await agent_store.list_groups(tx, app_id):
            raise errors.GroupNotFound(f"The app has no group '{group}'; create it with POST /groups.")

    # --- visitors ------------------------------------------------------------------------------------------

    async def set_visitor_tags(self, actor: Actor, user_id: str, tags: dict[str, Any]) -> dict[str, Any]:
        """Replace the trusted tags of the app's visitor `user_id` (the site's server, with an API key)."""
        if actor.kind != "api_key":
            raise errors.Unauthorized("This endpoint takes an API key.")
        check_tags_size(tags)
        async with self.db.transaction() as tx:
            visitor = await visitor_store.visitor_by_user(tx, actor.app_id, user_id)
            if visitor is None:
                raise errors.NotFound(f"No visitor with user_id '{user_id}'.")
            await visitor_store.set_trusted_tags(tx, visitor.visitor_id, tags)
        return {"visitor_id": visitor.visitor_id, "user_id": user_id, "tags": tags}


def app_view(app: App) -> dict[str, Any]:
    """An app as `GET /apps/{id}` shows it: its settings, never its secret."""
    return {
        "app_id": app.app_id,
        "name": app.name,
        "created_at": iso(app.created_at),
        "bot_threshold": app.settings.bot_threshold,
        "require_identity": app.settings.require_identity,
        "allowed_origins": list(app.settings.allowed_origins),
        "rate_limits": effective_limits(app.settings.rate_limits),
    }


def agent_view(agent: Agent, load: int) -> dict[str, Any]:
    """An agent for administrators: the login record, the status others see, and the current load."""
    return agent_record(agent, shown_status(agent.status, load, agent.max_concurrent)) | {"load": load}


def group_view(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "description": row.description,
        "agent_count": int(row.n or 0),
        "created_at": iso(row.created_at),
    }


def check_origin(origin: str) -> str:
    """`*` (any site), `scheme://host[:port]` as browsers send it in the Origin header, or `scheme://*.host[:port]`
    (any subdomain of host); a `*` anywhere else is refused rather than compared literally."""
    origin = origin.strip().rstrip("/")
    if origin == "*":
        return origin
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query or parts.fragment:
        raise errors.BadRequest(f"'{origin}' is not an origin such as https://shop.example.com.")
    wildcard = parts.netloc.startswith("*.")
    if "*" in (parts.netloc[2:] if wildcard else parts.netloc) or (wildcard and "." not in parts.netloc[2:]):
        raise errors.BadRequest(f"'{origin}': use '*' alone (any site) or 'https://*.shop.com' (any subdomain).")
    return origin


def check_email(email: str) -> None:
    if "@" not in email or len(email) > 320 or email.strip() != email or not email.split("@")[0]:
        raise errors.BadRequest(f"'{email}' is not an email address.")


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise errors.BadRequest(f"A password needs at least {MIN_PASSWORD_CHARS} characters.")


def check_rate_limits(limits: Any) -> None:
    if not isinstance(limits, dict):
        raise errors.BadRequest("rate_limits is an object of counts.")
    for key, value in limits.items():
        if key not in APP_LIMITS:
            raise errors.BadRequest(f"Unknown rate limit '{key}'; known: {', '.join(APP_LIMITS)}.")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
            raise errors.BadRequest(f"rate_limits.{key} is a whole number from 1 to 1000000.")


def check_group_name(name: str) -> None:
    if not name or len(name) > 100:
        raise errors.BadRequest("A group name needs 1 to 100 characters.")
