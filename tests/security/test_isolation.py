"""Tenant isolation: a matrix of app A's actors against app B's resources, over every HTTP endpoint and WS frame.

Two apps on one node, each with conversations, messages, uploads, KB articles, a webhook with deliveries, a
routing rule, agents, groups, canned responses, API keys and an internal note. A's actors — an agent token, an
admin token, an API key and a visitor token — aim every `/api/v1` operation of the OpenAPI document at B's
resources (an operation the plan below does not classify fails the test, so a new endpoint cannot go
unchecked), and A's sockets send every frame that names a session at B's. A cell passes when:

- a request for one of B's resources is refused (401/403/404, or an `error` frame not_found/forbidden) exactly
  as a request for an id that never existed is: same status, same code, same message but for the id — nothing
  tells A that B's resource exists;
- a search or report filtered by B's values answers exactly as one filtered by values that match nothing;
- no answer (body or headers) holds any of B's identifiers or content that the request did not itself carry;
- B's rows are the same afterwards, and B's sockets heard nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import itertools
import secrets
import string
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from PIL import Image

from kefu import errors
from kefu.storage import tables
from tests.helpers import Client, Node, running_node
from tests.security.reporting import report

ACTORS = ("agent", "admin", "api_key", "visitor")
REFUSED = {401, 403, 404}
# Columns that move on their own (presence, the webhook worker's retries): not B's data changing.
VOLATILE = {"idle_since", "attempts", "last_status_code", "last_error", "next_attempt_at", "locked_until"}
VOLATILE_IN = {"webhook_deliveries": {"status", "delivered_at"}}


def _codes(cls: type[errors.KefuError]) -> set[str]:
    return {cls.code}.union(*(_codes(sub) for sub in cls.__subclasses__()))


NOT_FOUND_CODES = _codes(errors.NotFound)
COUNTER = itertools.count()


# --- two tenants ----------------------------------------------------------------------------------------------


@dataclass
class Tenant:
    """One app and everything in it, with the values that must never reach another app."""

    label: str
    app_id: str
    secret: str
    api_key: str
    password: str
    admin_id: str
    admin_email: str
    admin_token: str = ""
    agent_id: str = ""
    agent_email: str = ""
    agent_token: str = ""
    visitor_token: str = ""
    visitor_id: str = ""
    user_id: str = ""
    sid: str = ""
    image_id: str = ""
    file_id: str = ""
    rule_id: str = ""
    webhook_id: str = ""
    app_canned_id: str = ""
    agent_canned_id: str = ""
    key_id: str = ""
    cursors: dict[str, str] = field(default_factory=dict)  # a page's next_cursor of the KB and of the deliveries
    groups: list[str] = field(default_factory=list)
    articles: list[dict[str, Any]] = field(default_factory=list)
    sockets: dict[str, Client] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def bearer(self, actor: str) -> dict[str, str]:
        token = {
            "agent": self.agent_token,
            "admin": self.admin_token,
            "api_key": self.api_key,
            "visitor": self.visitor_token,
        }[actor]
        return {"Authorization": f"Bearer {token}"}


async def call(node: Node, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
    r = await node.http.request(method, path, headers=headers, **kw)
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
    return r.json() if r.content else None


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


async def build_tenant(node: Node, label: str) -> Tenant:
    """An app with a bot chat handed to a person, messages, an image and a file, a note, and its administration."""
    password = f"{label}-Passw0rd!"
    email = f"{label}-admin@{label}.example.com"
    created = await node.services.admin.create_app(f"{label} shop", email, password)
    t = Tenant(label, created.app_id, created.secret, created.api_key, password, created.admin_id, email)
    t.groups = [f"{label}-grp-rules", f"{label}-grp-new", f"{label}-grp-extra"]
    t.agent_email = f"{label}-agent@{label}.example.com"
    agent = await node.services.admin.add_agent(
        t.app_id, t.agent_email, password, name=f"{label}-agent-name", groups=("default", t.groups[0], t.groups[2])
    )
    t.agent_id = agent.agent_id
    await node.services.admin.add_agent(t.app_id, f"{label}-second@{label}.example.com", password, role="admin")

    async def login(mail: str) -> str:
        body = {"app_id": t.app_id, "email": mail, "password": password}
        return str((await call(node, "POST", "/api/v1/auth/login", {}, json=body))["token"])

    t.admin_token, t.agent_token = await login(email), await login(t.agent_email)
    admin = t.bearer("admin")
    await call(node, "POST", "/api/v1/groups", admin, json={"name": t.groups[1], "description": f"{label}-grp-desc"})
    t.articles = [
        {
            "id": f"{label}-art-{i}",
            "question": f"{label} question {i} 怎么办",
            "similar": [f"{label} similar {i}"],
            "answer": f"{label} answer {i} 的内容",
            "category": f"{label}-cat",
        }
        for i in range(5)
    ]
    await call(node, "POST", "/api/v1/kb/import", admin, json=t.articles)
    rule = {
        "name": f"{label}-rule",
        "match": {"all": [{"field": "tags.vip", "op": "==", "value": True}]},
        "group": t.groups[0],
    }
    t.rule_id = (await call(node, "POST", "/api/v1/routing/rules", admin, json=rule))["id"]
    hook = {
        "url": f"http://127.0.0.1:9/{label}-hook",
        "events": ["conversation.created", "message.created"],
        "secret": f"{label}-webhook-secret-0123456789",
    }
    t.webhook_id = (await call(node, "POST", "/api/v1/webhooks", admin, json=hook))["id"]
    canned = {"shortcut": f"{label}-short", "text": f"{label} canned text", "scope": "app"}
    t.app_canned_id = (await call(node, "POST", "/api/v1/canned-responses", admin, json=canned))["id"]
    mine = {"shortcut": f"{label}-mine", "text": f"{label} my canned text", "scope": "agent"}
    t.agent_canned_id = (await call(node, "POST", "/api/v1/canned-responses", t.bearer("agent"), json=mine))["id"]
    key = await call(node, "POST", "/api/v1/api-keys", admin, json={"name": f"{label}-key-name"})
    t.key_id, extra_key = key["id"], key["key"]

    agent_socket = await node.connect("agent", t.agent_token, f"{label} agent")
    await agent_socket.send("set_status", status="online")
    await agent_socket.ping()
    t.user_id = f"{label}-user-1"
    mac = hmac.new(t.secret.encode(), t.user_id.encode(), hashlib.sha256).hexdigest()
    r = await node.http.post(
        "/api/v1/visitor/session",
        json={"app_id": t.app_id, "user_id": t.user_id, "user_hash": mac, "name": f"{label}-visitor-name"},
    )
    t.visitor_token, t.visitor_id = r.json()["token"], r.json()["visitor_id"]
    visitor = await node.connect("visitor", t.visitor_token, f"{label} visitor")
    t.sid = (await visitor.open_chat(context=f"{label}-context-secret"))["session_id"]
    await visitor.text(t.sid, t.articles[0]["question"])
    answer = await visitor.expect("message", sender="bot", session_id=t.sid)  # the bot answers from the KB
    await visitor.send("request_human", session_id=t.sid)
    await agent_socket.expect("assigned", session_id=t.sid)
    # A 👎 on that answer: the question becomes a knowledge-base gap of the app (`GET /kb/gaps` lists it).
    await visitor.send("feedback", session_id=t.sid, seq=answer["seq"], helpful=False)
    await agent_socket.text(t.sid, f"{label} agent reply 私密")
    files = {"file": (f"{label}-photo.png", png(), "image/png")}
    t.image_id = (await call(node, "POST", "/api/v1/uploads", t.bearer("visitor"), files=files))["attachment_id"]
    await visitor.send(
        "send",
        ref="img",
        session_id=t.sid,
        client_msg_id="img",
        msg_type="image",
        content=f"{label} caption",
        attachment_id=t.image_id,
    )
    await visitor.expect("ack", ref="img")
    files = {"file": (f"{label}-notes.txt", f"{label} file content secret\n".encode(), "text/plain")}
    t.file_id = (await call(node, "POST", "/api/v1/uploads", t.bearer("agent"), files=files))["attachment_id"]
    note = {"content": f"{label} internal note secret"}
    await call(node, "POST", f"/api/v1/conversations/{t.sid}/notes", t.bearer("agent"), json=note)
    for client in (visitor, agent_socket):
        await client.ping()
        client.backlog.clear()  # what the tenant's own sockets heard so far is their own business
    t.sockets = {"visitor": visitor, "agent": agent_socket}
    deliveries = await call(node, "GET", f"/api/v1/webhooks/{t.webhook_id}/deliveries", admin)
    first = await call(node, "GET", f"/api/v1/webhooks/{t.webhook_id}/deliveries?limit=1", admin)
    t.cursors = {
        "deliveries": first["next_cursor"],
        "kb": (await call(node, "GET", "/api/v1/kb/articles?limit=1", admin))["next_cursor"],
    }
    assert all(t.cursors.values()), t.cursors
    t.secrets = (
        {
            "app id": t.app_id,
            "secret": t.secret,
            "api key": t.api_key,
            "second api key": extra_key,
            "api key id": t.key_id,
            "api key prefix": extra_key[:12],
            "api key name": f"{label}-key-name",
            "admin id": t.admin_id,
            "admin email": email,
            "agent id": t.agent_id,
            "agent email": t.agent_email,
            "agent name": f"{label}-agent-name",
            "visitor id": t.visitor_id,
            "user id": t.user_id,
            "visitor name": f"{label}-visitor-name",
            "session id": t.sid,
            "context": f"{label}-context-secret",
            "agent message": f"{label} agent reply 私密",
            "caption": f"{label} caption",
            "image id": t.image_id,
            "file id": t.file_id,
            "image name": f"{label}-photo",
            "file name": f"{label}-notes",
            "file content": f"{label} file content secret",
            "note": f"{label} internal note secret",
            "rule id": t.rule_id,
            "rule name": f"{label}-rule",
            "webhook id": t.webhook_id,
            "webhook url": f"{label}-hook",
            "webhook secret": f"{label}-webhook-secret",
            "canned id": t.app_canned_id,
            "agent canned id": t.agent_canned_id,
            "canned text": f"{label} canned text",
            "agent canned text": f"{label} my canned text",
            "canned shortcut": f"{label}-short",
            "group description": f"{label}-grp-desc",
            "category": f"{label}-cat",
            "app name": f"{label} shop",
        }
        | {f"group {g}": g for g in t.groups}
        | {f"delivery {d['delivery_id']}": d["delivery_id"] for d in deliveries["items"]}
        | {f"article {a['id']} {k}": str(a[k]) for a in t.articles for k in ("id", "question", "answer")}
        | {f"similar {a['id']}": a["similar"][0] for a in t.articles}
    )
    assert deliveries["items"], "B's webhook has deliveries to hide"
    assert (await call(node, "GET", "/api/v1/kb/gaps", admin))["items"], "B has a knowledge-base gap to hide"
    return t


async def rows_of(node: Node, app_id: str) -> dict[str, list[str]]:
    """Every row of the app, table by table (messages through its conversations), volatile columns left out."""
    found: dict[str, list[str]] = {}
    async with node.services.db.read() as tx:
        for table in tables.metadata.sorted_tables:
            if "app_id" not in table.c:
                continue
            columns = [c for c in table.c if c.name not in VOLATILE | VOLATILE_IN.get(table.name, set())]
            result = await tx.execute(sa.select(*columns).where(table.c.app_id == app_id))
            found[table.name] = sorted(repr(tuple(row)) for row in result)
        sessions = sa.select(tables.conversations.c.session_id).where(tables.conversations.c.app_id == app_id)
        result = await tx.execute(sa.select(tables.messages).where(tables.messages.c.session_id.in_(sessions)))
        found["messages"] = sorted(repr(tuple(row)) for row in result)
    return found


# --- the HTTP plan ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """One request aimed at B, made by each of `actors`, and what it must answer.

    kind: `refused` — 401/403/404 and the same answer as the control; `as_control` — the same answer as the
    control (a filter by B's values matches nothing in A); `scoped` — the caller's own app only (any answer
    but a 5xx, `expect` per actor); `public` — B's by design (`shows`: what it may show); `self` — about the
    caller only. The control is the request with each of `subs`' B values replaced by a value that never existed.
    """

    kind: str
    method: str
    path: str
    query: dict[str, str] | None = None
    body: Any = None
    files: dict[str, Any] | None = None
    subs: tuple[str, ...] = ()
    actors: tuple[str, ...] = ACTORS
    expect: dict[str, int] = field(default_factory=dict)
    shows: tuple[str, ...] = ()
    own: str | None = None  # the same request on A's own resource: an admin reads it (so the refusal is tenancy)
    throwaway: bool = False  # spends the caller's token (logout, password): agents use one made for it


def fake_like(value: str) -> str:
    """A value of the same shape that no app has: same prefix and length, other characters."""
    cut = max(value.find("_"), value.find("-")) + 1 if len(value) > 12 else 0
    alphabet = string.digits if value[cut:].isdigit() else string.ascii_lowercase + string.digits
    for _ in range(100):
        made = value[:cut] + "".join(secrets.choice(alphabet) for _ in value[cut:])
        if made != value:
            return made
    raise AssertionError(value)


def plans(a: Tenant, b: Tenant) -> dict[tuple[str, str], list[Plan]]:
    """How each operation is aimed at B. Keys are the OpenAPI document's (method, path)."""
    sid, att, art, rule, hook = b.sid, b.image_id, b.articles[1]["id"], b.rule_id, b.webhook_id
    no_admin = ("agent", "visitor")

    def refused(method: str, path: str, *subs: str, own: str | None = None, **kw: Any) -> Plan:
        return Plan("refused", method, path, subs=subs, own=own, **kw)

    def article(i: int, text: str) -> dict[str, Any]:
        return {"id": b.articles[i]["id"], "question": b.articles[i]["question"], "answer": text}

    conv = f"/api/v1/conversations/{sid}"
    return {
        ("POST", "/api/v1/visitor/session"): [
            # B's known user, vouched for with A's secret: refused like any unknown user.
            refused("POST", "", b.user_id, body={"app_id": b.app_id, "user_id": b.user_id, "user_hash": "{hmac-a}"}),
            Plan("public", "POST", "", body={"app_id": b.app_id}),  # anyone may start a chat with B's widget
        ],
        ("POST", "/api/v1/auth/login"): [
            refused(
                "POST", "", b.admin_email, body={"app_id": a.app_id, "email": b.admin_email, "password": b.password}
            ),
            refused(
                "POST", "", b.agent_email, body={"app_id": b.app_id, "email": b.agent_email, "password": a.password}
            ),
        ],
        ("POST", "/api/v1/auth/logout"): [Plan("self", "POST", "", throwaway=True)],
        ("POST", "/api/v1/auth/password"): [
            Plan(
                "self",
                "POST",
                "",
                body={"current_password": b.password, "new_password": "n3w-Passw0rd!"},
                throwaway=True,
            ),
        ],
        ("GET", "/api/v1/conversations"): [
            Plan("as_control", "GET", "", query={"user_id": b.user_id}, subs=(b.user_id,)),
            Plan("as_control", "GET", "", query={"agent_id": b.agent_id}, subs=(b.agent_id,)),
            Plan("as_control", "GET", "", query={"q": "bravo agent reply"}, subs=("bravo",)),
            Plan("scoped", "GET", ""),
        ],
        ("GET", "/api/v1/conversations/{session_id}"): [
            refused("GET", conv, sid, own=f"/api/v1/conversations/{a.sid}")
        ],
        ("GET", "/api/v1/conversations/{session_id}/messages"): [
            refused("GET", f"{conv}/messages", sid, own=f"/api/v1/conversations/{a.sid}/messages")
        ],
        ("GET", "/api/v1/conversations/{session_id}/notes"): [
            refused("GET", f"{conv}/notes", sid, own=f"/api/v1/conversations/{a.sid}/notes")
        ],
        ("POST", "/api/v1/conversations/{session_id}/notes"): [
            refused("POST", f"{conv}/notes", sid, body={"content": "a note from A"})
        ],
        ("GET", "/api/v1/export"): [
            Plan("as_control", "GET", "", query={"user_id": b.user_id}, subs=(b.user_id,)),
            Plan("as_control", "GET", "", query={"agent_id": b.agent_id}, subs=(b.agent_id,)),
            Plan("scoped", "GET", ""),
        ],
        ("GET", "/api/v1/status"): [Plan("public", "GET", "", query={"app_id": b.app_id}, shows=tuple(b.groups))],
        ("GET", "/api/v1/stats"): [
            Plan("as_control", "GET", "", query={"agent_id": b.agent_id}, subs=(b.agent_id,)),
            Plan("as_control", "GET", "", query={"group": b.groups[0]}, subs=(b.groups[0],)),
            Plan("scoped", "GET", ""),
        ],
        ("GET", "/api/v1/agents"): [Plan("scoped", "GET", "")],
        ("POST", "/api/v1/agents"): [
            # Emails are per app: B's agent's email is free in A (no "already exists" to tell it is taken).
            Plan(
                "scoped",
                "POST",
                "",
                body={"email": b.agent_email, "password": "x-Passw0rd!"},
                actors=("admin",),
                expect={"admin": 201},
            ),
            Plan(
                "scoped",
                "POST",
                "",
                body={"email": b.admin_email, "password": "x-Passw0rd!"},
                actors=("api_key",),
                expect={"api_key": 201},
            ),
            refused(
                "POST", "", b.agent_email, body={"email": b.agent_email, "password": "x-Passw0rd!"}, actors=no_admin
            ),
        ],
        ("GET", "/api/v1/agents/{agent_id}"): [
            refused("GET", f"/api/v1/agents/{b.agent_id}", b.agent_id, own=f"/api/v1/agents/{a.agent_id}")
        ],
        ("PUT", "/api/v1/agents/{agent_id}"): [
            refused("PUT", f"/api/v1/agents/{b.agent_id}", b.agent_id, body={"level": 9, "max_concurrent": 1}),
            refused("PUT", f"/api/v1/agents/{b.admin_id}", b.admin_id, body={"role": "agent"}),
        ],
        ("GET", "/api/v1/groups"): [Plan("scoped", "GET", "")],
        ("POST", "/api/v1/groups"): [
            Plan("scoped", "POST", "", body={"name": b.groups[1]}, actors=("admin",), expect={"admin": 201}),
            Plan("scoped", "POST", "", body={"name": b.groups[2]}, actors=("api_key",), expect={"api_key": 201}),
            refused("POST", "", b.groups[1], body={"name": b.groups[1]}, actors=no_admin),
        ],
        ("GET", "/api/v1/apps/{app_id}"): [
            refused("GET", f"/api/v1/apps/{b.app_id}", b.app_id, own=f"/api/v1/apps/{a.app_id}")
        ],
        ("PUT", "/api/v1/apps/{app_id}"): [
            refused(
                "PUT",
                f"/api/v1/apps/{b.app_id}",
                b.app_id,
                body={"bot_threshold": 0.1, "require_identity": False, "allowed_origins": ["https://evil.test"]},
            ),
        ],
        ("GET", "/api/v1/routing/rules"): [Plan("scoped", "GET", "")],
        ("POST", "/api/v1/routing/rules"): [
            # B's group does not exist in A: refused as a group that exists nowhere is.
            refused(
                "POST",
                "",
                b.groups[0],
                body={
                    "name": "r",
                    "group": b.groups[0],
                    "match": {"all": [{"field": "channel", "op": "==", "value": "web"}]},
                },
            ),
        ],
        ("PUT", "/api/v1/routing/rules/{rule_id}"): [
            refused("PUT", f"/api/v1/routing/rules/{rule}", rule, body={"name": "taken over", "position": 1})
        ],
        ("DELETE", "/api/v1/routing/rules/{rule_id}"): [refused("DELETE", f"/api/v1/routing/rules/{rule}", rule)],
        ("PUT", "/api/v1/visitors/{user_id}/tags"): [
            refused("PUT", f"/api/v1/visitors/{b.user_id}/tags", b.user_id, body={"tags": {"vip": True}})
        ],
        ("GET", "/api/v1/api-keys"): [Plan("scoped", "GET", "")],
        ("POST", "/api/v1/api-keys"): [Plan("scoped", "POST", "", body={"name": "bravo-key-name"})],
        ("DELETE", "/api/v1/api-keys/{key_id}"): [refused("DELETE", f"/api/v1/api-keys/{b.key_id}", b.key_id)],
        ("POST", "/api/v1/uploads"): [
            Plan("scoped", "POST", "", files={"file": ("bravo-photo.png", png(), "image/png")})
        ],
        ("GET", "/api/v1/uploads/{attachment_id}"): [
            refused("GET", f"/api/v1/uploads/{att}", att, own=f"/api/v1/uploads/{a.image_id}"),
            refused("GET", f"/api/v1/uploads/{b.file_id}", b.file_id),
        ],
        ("GET", "/api/v1/uploads/{attachment_id}/thumbnail"): [
            refused("GET", f"/api/v1/uploads/{att}/thumbnail", att, own=f"/api/v1/uploads/{a.image_id}/thumbnail")
        ],
        ("GET", "/api/v1/kb/articles"): [
            Plan("scoped", "GET", ""),
            Plan("scoped", "GET", "", query={"limit": "200"}),
            Plan("scoped", "GET", "", query={"cursor": b.cursors["kb"]}),  # B's page cursor pages A's articles
        ],
        ("POST", "/api/v1/kb/articles"): [
            # Article ids are per app: B's ids are free in A.
            Plan("scoped", "POST", "", body=article(2, "A's own answer"), actors=("admin",), expect={"admin": 201}),
            Plan("scoped", "POST", "", body=article(3, "A's own"), actors=("api_key",), expect={"api_key": 201}),
            refused("POST", "", b.articles[2]["id"], body=article(2, "A's"), actors=no_admin),
        ],
        ("GET", "/api/v1/kb/articles/{article_id}"): [
            refused("GET", f"/api/v1/kb/articles/{art}", art, own=f"/api/v1/kb/articles/{a.articles[1]['id']}")
        ],
        ("PUT", "/api/v1/kb/articles/{article_id}"): [
            refused("PUT", f"/api/v1/kb/articles/{art}", art, body=article(1, "rewritten by A"))
        ],
        ("DELETE", "/api/v1/kb/articles/{article_id}"): [refused("DELETE", f"/api/v1/kb/articles/{art}", art)],
        ("POST", "/api/v1/kb/import"): [
            # B's id imported into A is created in A, not reported as an update of B's.
            Plan("scoped", "POST", "", body=[article(4, "imported by A")], actors=("admin",), expect={"admin": 200}),
            refused("POST", "", b.articles[4]["id"], body=[article(4, "imported by A")], actors=no_admin),
        ],
        ("POST", "/api/v1/kb/articles/{article_id}/similar"): [
            refused(
                "POST",
                f"/api/v1/kb/articles/{art}/similar",
                art,
                body={"question": "A's own wording 措辞"},
                own=f"/api/v1/kb/articles/{a.articles[1]['id']}",
            )
        ],
        ("GET", "/api/v1/kb/gaps"): [Plan("scoped", "GET", ""), Plan("scoped", "GET", "", query={"limit": "200"})],
        ("POST", "/api/v1/bot/ask"): [Plan("scoped", "POST", "", body={"question": b.articles[0]["question"]})],
        ("GET", "/api/v1/webhooks"): [Plan("scoped", "GET", "")],
        ("POST", "/api/v1/webhooks"): [
            Plan("scoped", "POST", "", body={"url": "http://127.0.0.1:9/bravo-hook", "events": ["message.created"]})
        ],
        ("GET", "/api/v1/webhooks/{webhook_id}"): [refused("GET", f"/api/v1/webhooks/{hook}", hook)],
        ("DELETE", "/api/v1/webhooks/{webhook_id}"): [refused("DELETE", f"/api/v1/webhooks/{hook}", hook)],
        ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): [
            Plan(
                "scoped",
                "GET",
                f"/api/v1/webhooks/{a.webhook_id}/deliveries",
                query={"cursor": b.cursors["deliveries"]},
            ),
            refused(
                "GET", f"/api/v1/webhooks/{hook}/deliveries", hook, own=f"/api/v1/webhooks/{a.webhook_id}/deliveries"
            ),
        ],
        ("GET", "/api/v1/canned-responses"): [Plan("scoped", "GET", "")],
        ("POST", "/api/v1/canned-responses"): [
            Plan("scoped", "POST", "", body={"shortcut": "bravo-short", "text": "A's text", "scope": "app"})
        ],
        ("DELETE", "/api/v1/canned-responses/{response_id}"): [
            refused("DELETE", f"/api/v1/canned-responses/{b.app_canned_id}", b.app_canned_id),
            refused("DELETE", f"/api/v1/canned-responses/{b.agent_canned_id}", b.agent_canned_id),
        ],
    }


def substitute(value: Any, subs: dict[str, str]) -> Any:
    text = orjson.dumps(value).decode()
    for old, new in subs.items():
        text = text.replace(old, new)
    return orjson.loads(text)


def normalised(text: str, values: list[str]) -> str:
    """`text` with each of `values` (the ids a request named) replaced by one placeholder."""
    for value in values:
        text = text.replace(value, "<ID>")
    return text


@dataclass
class Matrix:
    node: Node
    a: Tenant
    b: Tenant
    cells: int = 0
    failures: list[str] = field(default_factory=list)
    told: set[str] = field(default_factory=set)  # B's values A put into its own app (a webhook URL, an email…)

    def fail(self, where: str, what: str) -> None:
        self.failures.append(f"{where}: {what}")

    def leaks(self, answer: str, request: str, shown: tuple[str, ...] = ()) -> list[str]:
        """B's values in an answer that A never gave the server (echoing the caller's own input is no leak)."""
        self.told.update(value for value in self.b.secrets.values() if value in request)
        return [
            label
            for label, value in self.b.secrets.items()
            if value in answer and value not in self.told and value not in shown
        ]

    async def send(self, plan: Plan, actor: str, path: str, query: Any, body: Any) -> tuple[int, str, str]:
        """Status, headers (as text) and body of the request made as A's `actor`."""
        headers = self.a.bearer(actor)
        if plan.throwaway and actor in ("agent", "admin"):
            headers = {"Authorization": f"Bearer {await self.throwaway(actor)}"}
        if isinstance(body, dict) and body.get("user_hash") == "{hmac-a}":
            mac = hmac.new(self.a.secret.encode(), body["user_id"].encode(), hashlib.sha256).hexdigest()
            body = body | {"user_hash": mac}
        kwargs: dict[str, Any] = {"params": query}
        if plan.files is not None:
            kwargs["files"] = plan.files
        elif body is not None:
            kwargs["json"] = body
        r = await self.node.http.request(plan.method, path, headers=headers, **kwargs)
        return r.status_code, "\n".join(f"{k}: {v}" for k, v in r.headers.items()), r.text

    async def throwaway(self, actor: str) -> str:
        """A token of a new agent of A (an admin for `admin`), for a request that spends it."""
        email = f"throwaway-{uuid.uuid4().hex[:8]}@alpha.example.com"
        role = "admin" if actor == "admin" else "agent"
        await self.node.services.admin.add_agent(self.a.app_id, email, self.a.password, role=role)
        body = {"app_id": self.a.app_id, "email": email, "password": self.a.password}
        return str((await self.node.http.post("/api/v1/auth/login", json=body)).json()["token"])

    async def run_http(self, method: str, template: str, plan: Plan) -> None:
        path = plan.path or template
        subs = {value: fake_like(value) for value in plan.subs}
        for actor in plan.actors:
            where = f"{method} {template} as A's {actor} ({plan.kind}, {path} {plan.query or ''})"
            self.cells += 1
            status, headers, answer = await self.send(plan, actor, path, plan.query, plan.body)
            uploaded = [name for name, *_ in (plan.files or {}).values()]
            request = f"{path} {plan.query or ''} {orjson.dumps(plan.body).decode() if plan.body else ''} {uploaded}"
            if status >= 500:
                self.fail(where, f"{status}: {answer[-300:]}")
            if leaked := self.leaks(headers + answer, request, plan.shows):
                self.fail(where, f"the answer holds B's {leaked}: {answer[-400:]}")
            if plan.kind in ("refused", "as_control"):
                control_path = substitute(path, subs)
                control = await self.send(
                    plan, actor, control_path, substitute(plan.query, subs), substitute(plan.body, subs)
                )
                mine = (status, normalised(answer, list(subs)))
                theirs = (control[0], normalised(control[2], list(subs.values())))
                if mine != theirs:
                    self.fail(where, f"answers unlike a request for nothing: {mine} vs {theirs}")
                if plan.kind == "refused" and status not in REFUSED:
                    self.fail(where, f"not refused: {status} {answer[-300:]}")
            if actor in plan.expect and status != plan.expect[actor]:
                self.fail(where, f"expected {plan.expect[actor]}, got {status}: {answer[-300:]}")
            if plan.own is not None and actor == "admin":
                r = await self.node.http.get(plan.own, headers=self.a.bearer("admin"))
                if r.status_code != 200:
                    self.fail(where, f"A's admin cannot read its own {plan.own}: {r.status_code} {r.text[:200]}")

    # --- WebSocket ---

    async def run_ws(self, actor: str, client: Client, frame: dict[str, Any], subs: tuple[str, ...]) -> None:
        where = f"WS {frame['type']} by A's {actor} {frame}"
        self.cells += 1
        control_subs = {value: fake_like(value) for value in subs}
        answers = []
        for sent in (frame, substitute(frame, control_subs)):
            ref = f"cell-{next(COUNTER)}"
            await client.send_raw(orjson.dumps(sent | {"ref": ref}).decode())
            answers.append(await client.find("error", ref=ref, timeout=10))
            await client.ping()
        mine, control = answers
        if mine is None or control is None:
            self.fail(where, f"no error frame: {mine} {control}; got {[f['type'] for f in client.backlog]}")
            return
        if mine["code"] not in NOT_FOUND_CODES | {"forbidden"}:
            self.fail(where, f"refused with {mine['code']}, not not_found/forbidden: {mine}")
        if leaked := self.leaks(mine["message"], orjson.dumps(frame).decode()):
            self.fail(where, f"the error holds B's {leaked}: {mine}")
        texts = (
            normalised(f"{mine['code']} {mine['message']}", list(subs)),
            normalised(f"{control['code']} {control['message']}", list(control_subs.values())),
        )
        if texts[0] != texts[1]:
            self.fail(where, f"answers unlike a frame naming nothing: {texts}")
        leftovers = [f for f in client.backlog if f["type"] in ("message", "conversation", "typing", "read")]
        if leftovers:
            self.fail(where, f"A's socket got {leftovers}")
        client.backlog.clear()


async def two_tenants(node: Node) -> tuple[Tenant, Tenant]:
    a = await build_tenant(node, "alpha")
    b = await build_tenant(node, "bravo")
    return a, b


async def b_is_untouched(matrix: Matrix, before: dict[str, list[str]], skip: tuple[str, ...] = ()) -> None:
    after = await rows_of(matrix.node, matrix.b.app_id)
    for table, rows in before.items():
        if table not in skip and after[table] != rows:
            matrix.fail(f"B's {table}", f"changed: {sorted(set(after[table]) ^ set(rows))[:3]}")
    for kind, client in matrix.b.sockets.items():
        await client.ping()
        heard = [f for f in client.backlog if f["type"] not in ("pong", "service_status", "queue_changed")]
        heard = [f for f in heard if not (f["type"] == "agent_status" and f.get("agent_id") == matrix.b.agent_id)]
        if heard:
            matrix.fail(f"B's {kind} socket", f"heard {heard}")
        client.backlog.clear()


def verdict(matrix: Matrix, what: str) -> None:
    what += ", sqlite" if matrix.node.services.db.is_sqlite else ", postgresql"
    assert not matrix.failures, f"{len(matrix.failures)} of {matrix.cells} cells failed:\n" + "\n".join(matrix.failures)
    report(f"isolation matrix: {matrix.cells} cells tried, 0 leaks ({what})")


# --- the tests ---------------------------------------------------------------------------------------------------


@pytest.fixture
async def node(db_url: str, tmp_path: Any) -> Any:
    async with running_node(db_url, upload_dir=str(tmp_path / "uploads"), webhook_allow_private=True) as running:
        yield running


async def test_every_http_operation_refuses_another_apps_resources(node: Node) -> None:
    a, b = await two_tenants(node)
    spec = (await node.http.get("/openapi.json")).json()
    operations = {
        (method.upper(), path) for path, ops in spec["paths"].items() if path.startswith("/api/v1/") for method in ops
    }
    plan = plans(a, b)
    assert not operations - plan.keys(), f"operations the isolation matrix does not cover: {operations - plan.keys()}"
    assert not plan.keys() - operations, f"the matrix plans operations that are gone: {plan.keys() - operations}"
    matrix = Matrix(node, a, b)
    before = await rows_of(node, b.app_id)
    public = []
    for (method, template), aimed in sorted(plan.items()):
        for one in aimed:
            if one.kind == "public":
                public.append((method, template, one))
            else:
                await matrix.run_http(method, template, replace(one, path=one.path or template))
    await b_is_untouched(matrix, before)
    for method, template, one in public:  # last: a visitor session for B's widget adds one of B's visitors
        await matrix.run_http(method, template, replace(one, path=one.path or template))
    await b_is_untouched(matrix, before, skip=("visitors",))
    for path in (
        f"/api/v1/conversations/{b.sid}",
        f"/api/v1/uploads/{b.image_id}",
        f"/api/v1/kb/articles/{b.articles[1]['id']}",
    ):
        r = await node.http.get(path, headers=b.bearer("admin"))  # B still has them, as they were
        if r.status_code != 200:
            matrix.fail(f"B's admin reading {path}", f"{r.status_code} {r.text[:200]}")
    verdict(matrix, "HTTP")


async def test_every_frame_naming_another_apps_session_is_refused(node: Node) -> None:
    a, b = await two_tenants(node)
    admin = await node.connect("agent", a.admin_token, "A's admin")
    sockets = {"visitor": a.sockets["visitor"], "agent": a.sockets["agent"], "admin": admin}
    for client in sockets.values():
        client.backlog.clear()
    sid, own = b.sid, a.sid
    frames: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        (
            {"type": "send", "session_id": sid, "client_msg_id": "x1", "msg_type": "text", "content": "A was here"},
            (sid,),
        ),
        ({"type": "sync", "session_id": sid, "after_seq": 0}, (sid,)),
        ({"type": "typing", "session_id": sid}, (sid,)),
        ({"type": "read", "session_id": sid, "seq": 1}, (sid,)),
        ({"type": "close", "session_id": sid}, (sid,)),
        ({"type": "request_human", "session_id": sid}, (sid,)),
        ({"type": "feedback", "session_id": sid, "seq": 2, "helpful": False}, (sid,)),
        ({"type": "transfer", "session_id": sid, "to_group": "default"}, (sid,)),
        ({"type": "transfer", "session_id": sid, "to_agent_id": a.agent_id}, (sid,)),
        # A's own chat handed to B's agent or B's group, B's upload sent in A's own chat.
        ({"type": "transfer", "session_id": own, "to_agent_id": b.agent_id, "note": "n"}, (b.agent_id,)),
        ({"type": "transfer", "session_id": own, "to_group": b.groups[0]}, (b.groups[0],)),
        (
            {
                "type": "send",
                "session_id": own,
                "client_msg_id": "x2",
                "msg_type": "image",
                "content": "",
                "attachment_id": b.image_id,
            },
            (b.image_id,),
        ),
        ({"type": "open_chat", "group": b.groups[0]}, (b.groups[0],)),
    ]
    matrix = Matrix(node, a, b)
    before = await rows_of(node, b.app_id)
    for actor, client in sockets.items():
        for frame, subs in frames:
            await matrix.run_ws(actor, client, frame, subs)
    await b_is_untouched(matrix, before)
    verdict(matrix, "WebSocket")
