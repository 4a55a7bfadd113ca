"""Schemathesis against kefu's own `/openapi.json`: every operation, with data that fits the schema and data that
does not, sent with valid credentials, at random ids and at ids that exist.

What must hold for every answer: no 5xx; the status code, content type, headers and body are the ones the
document declares; a request the schema calls invalid is refused with a 4xx; an operation that declares
credentials refuses a request without them; and every 4xx JSON body is the contract's
`{"error": {"code": "snake_case", "message": "…"}}` (protocol §2).

The data is seeded first through the public API and a WebSocket (a running node, as integrators see it); the
fuzzing then runs in-process on a second app built on the same database, with the abuse limits off.
Every operation runs twice: derandomized (the same cases on every run, so a CI failure reproduces locally), then
from the session's random seed (tests/security/reporting.py: printed in the summary; KEFU_FUZZ_SEED replays it), so
CI keeps finding cases the fixed run never makes. A run that generates no case at all fails; an operation whose
schema leaves nothing to make invalid (its only parameters are path strings) has no negative run.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import pkgutil
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.python import asgi

from kefu.app import create_app
from kefu.config import Settings
from tests.helpers import Node, running_node
from tests.security.reporting import FUZZ_SEED, report, report_fuzz_seed


def import_every_module(package: ModuleType) -> None:
    """Import all of a package now, while one thread runs at a shallow depth, rather than as it imports lazily.

    pytest rewrites schemathesis' modules as they are first imported (schemathesis is a pytest plugin), and the
    parser of Python 3.11.7 can fail doing that deep in a stack or on two threads at once ("SystemError: AST
    constructor recursion depth mismatch") — as in the middle of this test, with the app running on a thread.
    """
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        with contextlib.suppress(ImportError):  # optional extras, such as Allure reports
            importlib.import_module(module.name)


import_every_module(schemathesis)
MAX_EXAMPLES = 30  # per operation and generation mode, derandomized
RANDOM_EXAMPLES = 10  # per operation and generation mode, from FUZZ_SEED
AWKWARD_TEXT = ("\x00", "a\x00b", " ", "..", "%", "🙂", "\u202e", "é" * 300)
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# Operations that end the session of the token they are sent with: they get a token of their own, and run last.
SESSION_ENDING = ("/api/v1/auth/logout", "/api/v1/auth/password")


@dataclass(frozen=True, slots=True)
class Seeded:
    """A deployment with one app's worth of real data, and the credentials to reach it."""

    settings: Settings
    credentials: dict[str, str]  # security scheme name in the document -> bearer token
    spare_agent_token: str  # for the operations that end a session
    ids: dict[str, list[str]]  # path parameter name -> ids that exist (the fuzzer sends random ones too)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


async def seed(node: Node) -> tuple[dict[str, str], str, dict[str, list[str]]]:
    """An app with an agent, a group, a rule, an article, a canned response, a webhook with deliveries, a spare
    API key, and two conversations (one closed) with text and an image."""
    app = await node.create_app()
    admin = await node.login(app, app.admin_email)
    agent = await node.add_agent(app, groups=("default",))
    spare_agent_token = await node.login(app, agent["email"])
    http, as_admin = node.http, auth(admin)

    async def post(path: str, body: dict[str, Any], headers: dict[str, str] = as_admin) -> dict[str, Any]:
        r = await http.post(f"/api/v1{path}", json=body, headers=headers)
        assert r.status_code == 201, (path, r.text)
        return r.json()  # type: ignore[no-any-return]

    await post("/groups", {"name": "vip", "description": "big spenders"})
    rule = await post(
        "/routing/rules",
        {"name": "vip", "match": {"all": [{"field": "tags.vip_level", "op": ">=", "value": 3}]}, "group": "vip"},
    )
    article = await post(
        "/kb/articles",
        {"id": "refund-policy", "question": "退货政策是什么?", "similar": ["怎么退货"], "answer": "7天内可退。"},
    )
    canned = await post("/canned-responses", {"shortcut": "hi", "text": "您好,有什么可以帮您?", "scope": "app"})
    spare_key = await post("/api-keys", {"name": "spare"})
    # Deliveries to a closed local port fail and are retried: the log has entries of every kind of field.
    webhook = await post("/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["conversation.closed"]})

    visitor_token = await node.visitor_token(app, "U1001", name="张三")
    visitor = await node.connect("visitor", visitor_token)
    upload = await http.post(
        "/api/v1/uploads", files={"file": ("red.png", png_bytes(), "image/png")}, headers=auth(visitor_token)
    )
    assert upload.status_code == 201, upload.text
    attachment_id = upload.json()["attachment_id"]
    closed = (await visitor.open_chat(context="order 42 failed"))["session_id"]
    await visitor.text(closed, "我想退货 refund please")
    await visitor.send(
        "send",
        ref="img",
        session_id=closed,
        client_msg_id=uuid.uuid4().hex,
        msg_type="image",
        content="",
        attachment_id=attachment_id,
    )
    await visitor.expect("ack", ref="img")
    await visitor.send("close", ref="close", session_id=closed)
    await visitor.expect("conversation", session_id=closed, status="closed")
    await visitor.send("open_chat")  # a late frame of the closed chat may come first: wait for the new one
    open_ = (await visitor.expect("conversation", where=lambda f: f["session_id"] != closed))["session_id"]
    await visitor.text(open_, "还在吗")

    credentials = {"agentToken": admin, "apiKey": app.api_key, "visitorToken": visitor_token}
    ids = {
        "session_id": [closed, open_],
        # Not the admin: a role change there would take away the rights the rest of the run needs.
        "agent_id": [agent["agent_id"]],
        "app_id": [app.app_id],
        "rule_id": [rule["id"]],
        "user_id": ["U1001"],
        # Not the key the run uses: revoking it would turn the rest of the run into 401s.
        "key_id": [spare_key["id"]],
        "attachment_id": [attachment_id],
        "article_id": [article["id"]],
        "webhook_id": [webhook["id"]],
        "response_id": [canned["id"]],
    }
    return credentials, spare_agent_token, ids


@pytest.fixture
async def seeded(db_url: str, tmp_path: Path) -> AsyncIterator[Seeded]:
    overrides: dict[str, Any] = {"upload_dir": str(tmp_path / "uploads"), "webhook_allow_private": True}
    async with running_node(db_url, **overrides) as node:
        credentials, spare_agent_token, ids = await seed(node)
    # article edits do not wait for the bot's new index: thousands of fuzzed edits would each wait for it
    settings = Settings(db=db_url, rate_limits="off", bot_edit_wait_s=0, **overrides)
    yield Seeded(settings, credentials, spare_agent_token, ids)


def error_shape(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """Every 4xx with a JSON body is exactly `{"error": {"code": snake_case, "message": text}}`."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), f"a {response.status_code} answered {content_type}"
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, f"not the error shape: {body!r}"
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message"}, f"not the error shape: {body!r}"
    assert isinstance(error["code"], str) and SNAKE_CASE.match(error["code"]), f"code not snake_case: {body!r}"
    assert isinstance(error["message"], str) and error["message"], f"no message: {body!r}"
    return None


CHECKS: list[Callable[..., bool | None]] = [
    not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
    schemathesis.checks.ignored_auth,
    error_shape,
]


def credentials_for(operation: schemathesis.APIOperation, seeded: Seeded) -> list[str]:
    """The tokens the operation's documented security accepts (any one of them); empty for a public one."""
    names = [name for requirement in operation.definition.raw.get("security", []) for name in requirement]
    unknown = set(names) - set(seeded.credentials)
    assert not unknown, f"{operation.label}: no credentials for {unknown}"
    if operation.path in SESSION_ENDING:
        return [seeded.spare_agent_token] if names else []
    return [seeded.credentials[name] for name in names]


def has_parameters(operation: schemathesis.APIOperation) -> bool:
    raw = operation.definition.raw
    return bool(raw.get("parameters") or raw.get("requestBody"))


def in_run_order(schema: schemathesis.BaseSchema) -> Iterator[schemathesis.APIOperation]:
    """Every operation; deletions and session endings last, so what they remove is there for the others."""
    operations = [result.ok() for result in schema.get_all_operations()]
    yield from sorted(
        operations, key=lambda op: (op.path in SESSION_ENDING, op.method.upper() == "DELETE", op.path, op.method)
    )


@dataclass
class Tally:
    operations: int = 0
    examples: int = 0
    failures: list[str] = field(default_factory=list)


def text_parameters(operation: schemathesis.APIOperation) -> list[tuple[str, str]]:
    """(location, name) of the path and query parameters that take a string."""
    return [
        (p["in"], p["name"])
        for p in operation.definition.raw.get("parameters", [])
        if p["in"] in ("path", "query") and '"string"' in json.dumps(p.get("schema", {}))
    ]


def cases(operation: schemathesis.APIOperation, mode: GenerationMode, seeded: Seeded) -> st.SearchStrategy[Any]:
    """Schemathesis' own cases; for data that fits the schema also cases at the seeded ids, and cases with one
    text parameter set to an awkward value (generated ones rarely hold a NUL, which PostgreSQL cannot store)."""
    generated = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.NEGATIVE:
        return generated
    branches = [generated]
    names = re.findall(r"{(\w+)}", operation.path)
    assert set(names) <= set(seeded.ids), f"{operation.label}: seed() makes no {set(names) - set(seeded.ids)}"
    real = {name: seeded.ids[name] for name in names}
    if real:
        ids = st.fixed_dictionaries({name: st.sampled_from(values) for name, values in real.items()})
        branches.append(ids.flatmap(lambda fixed: operation.as_strategy(path_parameters=fixed)))
    if parameters := text_parameters(operation):

        def awkward(where: tuple[str, str], value: str) -> st.SearchStrategy[Any]:
            location, name = where
            if location == "path":
                return operation.as_strategy(path_parameters={name: value})
            return operation.as_strategy(query={name: value})

        picks = st.tuples(st.sampled_from(parameters), st.sampled_from(AWKWARD_TEXT))
        branches.append(picks.flatmap(lambda pick: awkward(*pick)))
    return st.one_of(branches)


def nothing_to_make_invalid(operation: schemathesis.APIOperation) -> bool:
    """True when the schema accepts every request of the operation: no body, no query, and only path parameters that
    take any string (a URL path segment is always one). Such an operation gets no negative run: there is no case."""
    raw = operation.definition.raw
    return not raw.get("requestBody") and all(
        p["in"] == "path" and {k: v for k, v in p.get("schema", {}).items() if k != "title"} == {"type": "string"}
        for p in raw.get("parameters", [])
    )


def fuzz(
    operation: schemathesis.APIOperation, mode: GenerationMode, seeded: Seeded, tally: Tally, seed: int | None = None
) -> None:
    """Up to MAX_EXAMPLES cases of one operation (RANDOM_EXAMPLES from `seed` when given, else derandomized); the
    first failure (shrunk) is recorded, not raised. Generating no case at all is a failure too."""
    strategy = cases(operation, mode, seeded)
    tokens = credentials_for(operation, seeded)
    headers = st.sampled_from([auth(t) for t in tokens]) if tokens else st.just({})
    label = f"{operation.label} ({mode.value}{'' if seed is None else f', seed {seed}'})"
    examples = 0

    @settings(
        max_examples=MAX_EXAMPLES if seed is None else RANDOM_EXAMPLES,
        derandomize=seed is None,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, headers=headers)
    def run(case: schemathesis.Case, headers: dict[str, str]) -> None:
        nonlocal examples
        examples += 1
        case.call_and_validate(headers=headers or None, checks=CHECKS)

    if seed is not None:
        run = hypothesis_seed(seed)(run)
    try:
        run()
    except Unsatisfiable as exc:
        tally.failures.append(f"{label}: no case could be generated ({exc})")
    except (Exception, FailureGroup) as exc:  # every failure is reported at the end, with the others
        tally.failures.append(f"{label}:\n{describe(exc)}")
    else:
        if examples == 0:
            tally.failures.append(f"{label}: no case was generated")
    tally.examples += examples


def describe(exc: BaseException) -> str:
    """The failure and, for a group (several distinct failures), each of its members, with Hypothesis' notes."""
    lines = [f"{type(exc).__name__}: {exc}", *getattr(exc, "__notes__", [])]
    if isinstance(exc, BaseExceptionGroup):
        lines += ["  " + line for member in exc.exceptions for line in describe(member).splitlines()]
    return "\n".join(lines)


@pytest.mark.timeout(300)
def test_every_operation_holds_to_its_documented_schema(seeded: Seeded) -> None:
    report_fuzz_seed()
    app, fixed, randomised = create_app(seeded.settings), Tally(), Tally()
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        schema.config.generation.update(with_security_parameters=False)
        for operation in in_run_order(schema):
            fixed.operations += 1
            randomised.operations += 1
            negative = has_parameters(operation) and not nothing_to_make_invalid(operation)
            modes = [GenerationMode.POSITIVE, *([GenerationMode.NEGATIVE] if negative else [])]
            for mode in modes:
                fuzz(operation, mode, seeded, fixed)
                fuzz(operation, mode, seeded, randomised, seed=FUZZ_SEED)
    finally:
        asgi.shutdown_lifespans()
    backend = "postgresql" if seeded.settings.db.startswith("postgresql") else "sqlite"
    for tally, run in ((fixed, "derandomized"), (randomised, f"seed {FUZZ_SEED}")):
        figures = f"{tally.operations} operations, {tally.examples:,} examples, {len(tally.failures)} failures"
        report(f"schemathesis ({backend}, {run}): {figures}")
    failures = fixed.failures + randomised.failures
    assert not failures, "\n\n".join(failures)
