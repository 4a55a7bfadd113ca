"""Identities: agent logins, visitor sessions (with HMAC-verified user ids and tags), tokens and API keys."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kefu import errors
from kefu.config import Settings
from kefu.domain.clock import Clock
from kefu.domain.models import Actor, Agent, App, Visitor
from kefu.domain.records import agent_record, visitor_record
from kefu.storage import Database
from kefu.storage import agents as agent_store
from kefu.storage import apps as app_store
from kefu.storage import tokens as token_store
from kefu.storage import visitors as visitor_store

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("kefu-timing-equaliser")
API_KEY_PREFIX = "kefu_"
MIN_PASSWORD_CHARS = 8
MAX_TAGS_BYTES = 16 * 1024  # a visitor's tags, as JSON: they reach every agent on each assignment and reconnect


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def hmac_hex(secret: str, text: str) -> str:
    """Hex HMAC-SHA256 of `text` under the app secret's own text (protocol §1)."""
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def digest_matches(expected_hex: str, given: str | None) -> bool:
    """Constant-time comparison of hex digests (bytes, so any text a client sends is safe to compare)."""
    return given is not None and hmac.compare_digest(expected_hex.encode(), given.strip().lower().encode())


def canonical_json(value: Any) -> str:
    """Keys sorted, `,` and `:` without spaces, UTF-8 unescaped: the form `tags_hash` signs."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_tags_size(tags: Any) -> None:
    """The same cap for tags from a browser and from the site's server."""
    if tags is not None and len(canonical_json(tags).encode()) > MAX_TAGS_BYTES:
        raise errors.BadRequest(f"tags hold at most {MAX_TAGS_BYTES} bytes of JSON.")


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class VisitorSession:
    visitor: Visitor
    token: str


class AuthService:
    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db, self.settings, self.clock = db, settings, clock
        self._key: str | None = settings.secret_key

    async def signing_key(self) -> str:
        if self._key is None:
            async with self.db.transaction() as tx:
                self._key = await app_store.signing_key(tx)
        return self._key

    async def issue_token(
        self, kind: str, actor_id: str, app_id: str, ttl_s: int, role: str = "", epoch: int = 0
    ) -> str:
        now = self.clock.now()
        claims = {
            "sub": actor_id,
            "app": app_id,
            "kind": kind,
            "role": role,
            "jti": secrets.token_urlsafe(16),
            "ep": epoch,
            "iat": int(now.timestamp()),
            "exp": int((now + dt.timedelta(seconds=ttl_s)).timestamp()),
        }
        return jwt.encode(claims, await self.signing_key(), algorithm="HS256")

    async def _claims(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                await self.signing_key(),
                algorithms=["HS256"],
                options={"require": ["exp", "sub", "app", "kind"], "verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            raise errors.Unauthorized("The token is not valid.") from exc
        if int(claims["exp"]) < self.clock.now().timestamp():
            raise errors.Unauthorized("The token has expired; sign in again.")
        return claims

    async def actor_from_token(self, token: str, kind: str | None = None) -> Actor:
        """The visitor or agent a signed, unexpired, unrevoked token names; raises Unauthorized.

        An agent's token is checked against the database: the agent still exists, the token was not logged out,
        and no password change since (the agent's `token_epoch` moved past the token's `ep`).
        """
        claims = await self._claims(token)
        if kind is not None and claims["kind"] != kind:
            raise errors.Unauthorized(f"This endpoint takes a {kind} token.")
        token_id, epoch = str(claims.get("jti", "")), int(claims.get("ep", 0))
        if claims["kind"] != "agent":
            return Actor(str(claims["kind"]), str(claims["app"]), str(claims["sub"]), str(claims.get("role", "")))
        async with self.db.read() as tx:
            agent = await agent_store.get_agent(tx, str(claims["sub"]))
            revoked = bool(token_id) and await token_store.is_revoked(tx, token_id)
        if agent is None or agent.app_id != claims["app"]:
            raise errors.Unauthorized("This agent no longer exists.")
        if revoked or epoch != agent.token_epoch:
            raise errors.Unauthorized("This token was revoked (logged out or password changed); sign in again.")
        return Actor("agent", agent.app_id, agent.agent_id, agent.role, token_id, epoch)

    async def actor_from_bearer(self, token: str) -> Actor:
        """An agent token or an API key (both sent as `Authorization: Bearer …`)."""
        if token.startswith(API_KEY_PREFIX):
            async with self.db.read() as tx:
                app_id = await app_store.app_of_api_key(tx, hash_api_key(token))
            if app_id is None:
                raise errors.Unauthorized("The API key is not valid or was revoked.")
            return Actor("api_key", app_id, "api_key", "admin")
        return await self.actor_from_token(token)

    async def logout(self, token: str) -> Actor:
        """Revoke one agent token (this device); its open sockets are closed."""
        actor = await self.actor_from_token(token, "agent")
        claims = await self._claims(token)
        expires = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
        async with self.db.transaction() as tx:
            await token_store.revoke(tx, actor.token_id, expires, self.clock.now())
        return actor

    async def change_password(self, actor: Actor, current: str, new: str) -> tuple[int, str]:
        """Set a new password; every token of the agent issued before stops working. The new epoch and a token."""
        if actor.kind != "agent":
            raise errors.Forbidden("Only an agent has a password.")
        if len(new) < MIN_PASSWORD_CHARS:
            raise errors.BadRequest(f"A password needs at least {MIN_PASSWORD_CHARS} characters.")
        async with self.db.transaction() as tx:
            agent = await agent_store.get_agent(tx, actor.actor_id)
            if agent is None or not password_matches(agent.password_hash, current):
                raise errors.InvalidCredentials("The current password is wrong.")
            epoch = agent.token_epoch + 1
            values = {"password_hash": hash_password(new), "token_epoch": epoch}
            await agent_store.update_agent(tx, agent.agent_id, values)
        return epoch, await self.agent_token(dataclasses.replace(agent, token_epoch=epoch))

    async def token_epoch(self, agent_id: str) -> int:
        """The agent's current token epoch: tokens carrying an older one are revoked."""
        async with self.db.read() as tx:
            agent = await agent_store.get_agent(tx, agent_id)
        return agent.token_epoch if agent else 0

    async def agent_token(self, agent: Agent) -> str:
        return await self.issue_token(
            "agent", agent.agent_id, agent.app_id, self.settings.agent_token_ttl_s, agent.role, agent.token_epoch
        )

    async def login(self, app_id: str, email: str, password: str) -> tuple[str, Agent]:
        async with self.db.read() as tx:
            agent = await agent_store.agent_by_email(tx, app_id, email)
        if agent is None:
            password_matches(_DUMMY_HASH, password)  # the same work whether or not the account exists
            raise errors.InvalidCredentials("Wrong app, email or password.")
        if not password_matches(agent.password_hash, password):
            raise errors.InvalidCredentials("Wrong app, email or password.")
        return await self.agent_token(agent), agent

    async def visitor_session(
        self,
        app: App,
        user_id: str | None,
        user_hash: str | None,
        name: str | None,
        tags: dict[str, Any] | None,
        tags_hash: str | None,
    ) -> VisitorSession:
        """A token for a visitor: the same visitor for a known `user_id`, a new anonymous one otherwise."""
        needs_proof = user_id is not None and (app.settings.require_identity or user_hash is not None)
        if needs_proof and not digest_matches(hmac_hex(app.secret, user_id or ""), user_hash):
            raise errors.IdentityUnverified("user_hash is not the HMAC-SHA256 of user_id under the app secret.")
        trusted: dict[str, Any] | None = None
        client_tags: dict[str, Any] | None = None
        check_tags_size(tags)
        if tags is not None:
            if tags_hash is not None:
                signed = hmac_hex(app.secret, (user_id or "") + "\n" + canonical_json(tags))
                if not digest_matches(signed, tags_hash):
                    raise errors.TagsUnverified("tags_hash does not match the tags under the app secret.")
                trusted = tags
            else:
                client_tags = tags  # shown to agents, never matched by routing rules
        async with self.db.transaction() as tx:
            visitor = await visitor_store.upsert_visitor(
                tx, app.app_id, user_id, name, trusted, client_tags, self.clock.now()
            )
        token = await self.issue_token("visitor", visitor.visitor_id, app.app_id, self.settings.visitor_token_ttl_s)
        return VisitorSession(visitor, token)

    async def visitor_profile(self, actor: Actor) -> dict[str, Any]:
        async with self.db.read() as tx:
            visitor = await visitor_store.get_visitor(tx, actor.actor_id)
        if visitor is None or visitor.app_id != actor.app_id:
            raise errors.Unauthorized("This visitor no longer exists.")
        return visitor_record(visitor)

    async def agent_profile(self, actor: Actor) -> dict[str, Any]:
        async with self.db.read() as tx:
            agent = await agent_store.get_agent(tx, actor.actor_id)
        if agent is None or agent.app_id != actor.app_id:
            raise errors.Unauthorized("This agent no longer exists.")
        return agent_record(agent)
