"""Administration: apps, agents, groups and API keys."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from kefu import errors
from kefu.domain.clock import Clock
from kefu.domain.ids import new_id
from kefu.domain.models import Actor, Agent, App
from kefu.domain.routing import DEFAULT_GROUP
from kefu.services.auth import hash_api_key, hash_password, new_api_key
from kefu.storage import Database, Tx
from kefu.storage import agents as agent_store
from kefu.storage import apps as app_store

ROLES = ("admin", "agent")


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
            await app_store.insert_api_key(tx, new_id("key"), app_id, hash_api_key(api_key), api_key[:12], "default", now)
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


def check_email(email: str) -> None:
    if "@" not in email or len(email) > 320 or email.strip() != email or not email.split("@")[0]:
        raise errors.BadRequest(f"'{email}' is not an email address.")


def check_password(password: str) -> None:
    if len(password) < 8:
        raise errors.BadRequest("A password needs at least 8 characters.")


def check_group_name(name: str) -> None:
    if not name or len(name) > 100:
        raise errors.BadRequest("A group name needs 1 to 100 characters.")
