"""A Hypothesis fuzzer for the WebSocket protocol (protocol §3) against a live node over real sockets.

A visitor and an agent of app A send valid frames of every client type and mutations of them: wrong field
types, missing and extra fields, unknown types, huge strings, deeply nested JSON, numbers out of range, other
visitors' and other apps' ids, non-object JSON, binary frames, text frames that are not UTF-8, frames over the
node's limits, and floods. After every example:

- the node did not crash: each socket answers `ping` with `pong`, or was closed with a close code that
  docs/api.md documents and that the input called for (1007 for bad UTF-8, 1009 over 1 MiB, 1013 for a flood);
  it logged no error and sent no `internal_error`;
- every frame it sent is of a known type, and every `error` frame has a known `code` and a `message`;
- the database is consistent: every conversation's messages have seq 1..last_seq, no gaps, no repeats; every
  acked message exists once, under the seq its ack named; a retried client_msg_id acks the same message;
- nothing of another visitor or another app changed, and their sockets heard nothing of the fuzzing.

One node per backend serves every example; the test drives its own event loop (Hypothesis runs sync tests). The
examples run twice: derandomized (the same on every run, so a failure reproduces anywhere), then from the session's
random seed (tests/security/reporting.py: printed in the summary; KEFU_FUZZ_SEED replays it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from kefu import errors
from kefu.storage import tables
from tests.conftest import BACKENDS, fresh_pg_database
from tests.helpers import App, Client, Node, running_node
from tests.security.reporting import FUZZ_SEED, report, report_fuzz_seed
from tests.security.test_sockets import documented_close_codes

EXAMPLES = 250  # derandomized
RANDOM_EXAMPLES = 100  # from FUZZ_SEED
WS_MAX_BYTES = 1024 * 1024  # uvicorn's ws_max_size in running_node: above it the WebSocket layer closes 1009
ANSWER_TIMEOUT = 30.0
SERVER_TYPES = {
    "ready",
    "conversation",
    "message",
    "ack",
    "synced",
    "queue",
    "service_status",
    "typing",
    "read",
    "assigned",
    "error",
    "pong",
    "agent_status",
    "queue_changed",  # kefu's, to an app's agents: the queue lengths changed
    "note",  # kefu's, to agents: an internal note was written
}


def _error_codes(cls: type[errors.KefuError]) -> set[str]:
    return {cls.code}.union(*(_error_codes(sub) for sub in cls.__subclasses__()))


ERROR_CODES = _error_codes(errors.KefuError) - {"error"}
KB = [
    {
        "id": "shipping",
        "question": "多久发货?",
        "similar": ["什么时候发货", "How long does shipping take?"],
        "answer": "付款后48小时内发货。",
        "category": "物流",
    },
    {
        "id": "refund",
        "question": "怎么退货?",
        "similar": ["可以退货吗", "How do I return an item?"],
        "answer": "签收7天内可在订单页申请退货。",
        "category": "售后",
    },
]


# --- what an example is made of ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """An id the world fills in when the frame is sent: `kind` is sid, agent, attachment or group."""

    kind: str
    whose: str
    pick: int = 0


@dataclass(frozen=True)
class Big:
    """A string of `n` characters, built only when sent (Hypothesis need not generate megabytes)."""

    n: int
    char: str = "x"


@dataclass(frozen=True)
class Deep:
    """JSON nested `n` levels deep."""

    n: int


@dataclass(frozen=True)
class Text:
    frame: Any  # a dict (a frame, possibly mutated) or any other JSON value


@dataclass(frozen=True)
class Raw:
    """Text sent exactly as it is (not JSON, or deeply nested JSON)."""

    text: str


@dataclass(frozen=True)
class Binary:
    data: bytes


@dataclass(frozen=True)
class BadUtf8:
    """A text frame whose bytes are not UTF-8."""

    data: bytes


@dataclass(frozen=True)
class Flood:
    frames: tuple[Any, ...]
    times: int


Payload = Text | Raw | Binary | BadUtf8 | Flood


@dataclass(frozen=True)
class Action:
    who: str  # "visitor" or "agent"
    payload: Payload


# --- strategies ------------------------------------------------------------------------------------------------


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each `weight` times as likely (one_of treats repeated branches as one)."""
    return st.sampled_from([s for weight, s in choices for _ in range(weight)]).flatmap(lambda s: s)


picks = st.integers(0, 7)
real_sids = st.builds(
    Ref, st.just("sid"), st.sampled_from(["open", "open", "own", "other_visitor", "other_app"]), picks
)
missing_sids = st.builds(Ref, st.just("sid"), st.just("missing"), picks)
# Values that have broken servers before: the NUL character (PostgreSQL text cannot hold it), numbers past the
# database's 32- and 64-bit integers, strings past a column's width, text that is not what it looks like.
edge_strings = st.sampled_from(["\x00", "a\x00b", "\u202e", "\ufeff", "'; DROP TABLE messages; --", "%s%n", "\\"])
edge_ints = st.sampled_from([-1, -(2**31), 2**31 - 1, 2**31, 2**53, 2**63 - 1, 2**63, 2**64, 10**30])
short_text = st.text(max_size=30)
# Mostly fresh (Hypothesis favours simple values, which would make nearly every send a retry); sometimes a retry.
client_msg_ids = weighted(
    (4, st.uuids().map(str)), (1, st.sampled_from(["c1", "c2"])), (1, st.text(min_size=1, max_size=8))
)
refs = st.one_of(st.text(max_size=10), st.integers(), st.none())


def field_values(edge: bool) -> dict[str, st.SearchStrategy[Any]]:
    """Each field's values: well-formed ones, or (`edge`) those mixed with values at and past every limit."""

    def mix(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return weighted((1, good), (1, bad)) if edge else good

    return {
        "session_id": mix(weighted((6, real_sids), (1, missing_sids)), st.one_of(edge_strings, st.text())),
        "client_msg_id": mix(
            client_msg_ids,
            st.one_of(edge_strings, st.builds(Big, st.just(129))),
        ),
        "content": mix(
            st.one_of(
                st.text(min_size=1, max_size=40),
                st.sampled_from(
                    ["多久发货?", "怎么退货?", "转人工", "https://example.com/a?b=1", "javascript:alert(1)"]
                ),
            ),
            st.one_of(edge_strings, st.just(" "), st.builds(Big, st.sampled_from([5001, 70_000]), st.just("界"))),
        ),
        "msg_type": mix(st.sampled_from(["text", "text", "text", "image", "file", "link"]), st.just("event")),
        "attachment_id": mix(
            st.builds(Ref, st.just("attachment"), st.sampled_from(["mine", "other_visitor", "other_app", "missing"])),
            st.one_of(edge_strings, st.builds(Big, st.just(65))),
        ),
        "seq": mix(st.integers(0, 12), edge_ints),
        "text": mix(short_text, st.one_of(edge_strings, st.builds(Big, st.sampled_from([5001, 20_001])))),
        "group": mix(
            st.builds(Ref, st.just("group"), st.sampled_from(["default", "vip", "other_app", "missing"])), edge_strings
        ),
        "channel": mix(st.sampled_from(["web", "mobile", "miniprogram"]), st.one_of(st.just("fax"), edge_strings)),
        "status": mix(st.sampled_from(["online", "busy", "offline"]), st.just("away")),
        "agent": st.builds(Ref, st.just("agent"), st.sampled_from(["self", "guard", "other_app", "missing"])),
    }


def frames_of(edge: bool) -> dict[str, st.SearchStrategy[Any]]:
    """A strategy per client frame type (protocol §3), with well-formed or edge field values."""
    v = field_values(edge)

    def frame(type_: str, required: dict[str, Any], optional: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
        return st.fixed_dictionaries({"type": st.just(type_), **required}, optional={"ref": refs, **(optional or {})})

    sid = {"session_id": v["session_id"]}
    return {
        "open_chat": frame("open_chat", {}, {"context": v["text"], "group": v["group"], "channel": v["channel"]}),
        "send": frame(
            "send",
            sid | {"client_msg_id": v["client_msg_id"], "msg_type": v["msg_type"], "content": v["content"]},
            {"attachment_id": v["attachment_id"]},
        ),
        "sync": frame("sync", sid | {"after_seq": v["seq"]}),
        "typing": frame("typing", sid),
        "read": frame("read", sid | {"seq": v["seq"]}),
        "request_human": frame("request_human", sid),
        "feedback": frame("feedback", sid | {"seq": v["seq"], "helpful": st.booleans()}),
        "close": frame("close", sid),
        "set_status": frame("set_status", {"status": v["status"]}),
        "transfer": frame("transfer", sid, {"to_agent_id": v["agent"], "to_group": v["group"], "note": v["text"]}),
        "ping": frame("ping", {}),
    }


VALID, EDGY = frames_of(edge=False), frames_of(edge=True)
out_of_range = st.sampled_from(
    [-1, -(2**31), 2**31 - 1, 2**31, 2**53, 2**63 - 1, 2**63, 2**64, 10**30, -(10**30), 1e308, -1e308, 0.5, 1e-300]
)
weird = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    short_text,
    edge_strings,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    out_of_range,
    st.builds(Big, st.sampled_from([70_000, 200_000])),
    st.builds(Deep, st.sampled_from([50, 2000])),
    real_sids,
)
VISITOR_TYPES = ["open_chat", "send", "sync", "typing", "read", "request_human", "feedback", "close", "ping"]
AGENT_TYPES = ["send", "sync", "typing", "read", "close", "set_status", "transfer", "ping"]
own_send = st.fixed_dictionaries(
    {
        "type": st.just("send"),
        "session_id": st.builds(Ref, st.just("sid"), st.just("open"), picks),
        "client_msg_id": client_msg_ids,
        "msg_type": st.just("text"),
        "content": st.text(min_size=1, max_size=20).filter(lambda t: t.strip() and "\x00" not in t),
    },
    optional={"ref": st.text(max_size=8)},
)
any_valid = st.one_of(*VALID.values())


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A valid frame with one thing wrong (or two)."""
    shape: dict[str, Any] = dict(draw(any_valid))
    for _ in range(draw(st.integers(1, 2))):
        how = draw(st.sampled_from(["drop", "extra", "retype", "unknown_type", "out_of_range", "bad_ref"]))
        keys = sorted(shape)
        if how == "drop" and keys:
            del shape[draw(st.sampled_from(keys))]
        elif how == "extra":
            shape[draw(st.text(min_size=1, max_size=12))] = draw(weird)
        elif how == "retype" and keys:
            shape[draw(st.sampled_from(keys))] = draw(weird)
        elif how == "unknown_type":
            shape["type"] = draw(st.one_of(short_text, weird))
        elif how == "out_of_range":
            numeric: list[str] = [k for k in ("seq", "after_seq") if k in shape] or ["seq", "session_id", "helpful"]
            shape[draw(st.sampled_from(numeric))] = draw(out_of_range)
        elif how == "bad_ref":
            shape["ref"] = draw(st.one_of(weird, st.builds(Big, st.just(300))))
    return shape


non_objects = st.one_of(
    st.lists(st.integers(), max_size=3), st.integers(), st.floats(allow_nan=False), st.text(max_size=10), st.none()
)
raws = st.one_of(
    st.builds(Raw, st.text(max_size=40)),  # mostly not JSON
    st.builds(
        Raw, st.sampled_from(["", "{", "}", "null", "NaN", "[1,", '{"type":"ping"', "\ufeff{}", '{"type":"ping"}x'])
    ),
    st.builds(lambda n: Raw("[" * n + "]" * n), st.sampled_from([100, 1000, 100_000])),
    st.builds(lambda n: Raw('{"type":"ping","x":' + "[" * n + "]" * n + "}"), st.sampled_from([100, 5000])),
    st.builds(lambda n: Raw('{"type":"send",' * n), st.sampled_from([10, 3000])),
)
bad_utf8 = st.builds(
    lambda head, bad, tail: BadUtf8(head + bad + tail),
    st.sampled_from([b"", b'{"type":"ping","x":"', b'{"type":"send","content":"']),
    st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xe4\xb8"]),
    st.sampled_from([b"", b'"}']),
)
oversize = st.builds(
    lambda n: Text({"type": "send", "session_id": Ref("sid", "open"), "client_msg_id": "big", "content": Big(n)}),
    st.sampled_from([70_000, WS_MAX_BYTES + 1000]),
)
floods = st.builds(
    Flood,
    st.lists(st.one_of(VALID["ping"], VALID["typing"], own_send, EDGY["send"], mutated()), min_size=1, max_size=3).map(
        tuple
    ),
    st.integers(10, 150),
)


def payloads(types: list[str]) -> st.SearchStrategy[Payload]:
    return weighted(
        (3, st.builds(Text, own_send)),
        (4, st.builds(Text, st.one_of(*(VALID[t] for t in types)))),
        (2, st.builds(Text, st.one_of(*(EDGY[t] for t in types)))),
        (2, st.builds(Text, mutated())),
        (1, st.builds(Text, any_valid)),  # the other side's frames too
        (1, st.builds(Text, non_objects)),
        (1, raws),
        (1, st.builds(Binary, st.binary(max_size=64))),
        (1, bad_utf8),
        (1, oversize),
        (1, floods),
    )


actions = st.one_of(
    st.builds(Action, st.just("visitor"), payloads(VISITOR_TYPES)),
    st.builds(Action, st.just("agent"), payloads(AGENT_TYPES)),
)
examples = st.lists(actions, min_size=1, max_size=4)


# --- the world the examples run in -------------------------------------------------------------------------------


def encode(value: Any, resolve: Any) -> str:
    """JSON text of a frame, with Refs filled in and Big/Deep built; numbers of any size pass as they are."""
    if isinstance(value, Ref):
        return encode(resolve(value), resolve)
    if isinstance(value, Big):
        return json.dumps(value.char * value.n, ensure_ascii=False)
    if isinstance(value, Deep):
        return "[" * value.n + "]" * value.n
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{encode(v, resolve)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode(v, resolve) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


class ErrorLog(logging.Handler):
    """Every ERROR the node logs while fuzzing (a failed frame, a failed connection, an ASGI exception)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()} {record.exc_text or ''}")


@dataclass
class Socket:
    """A socket of the world: the fuzzed visitor's or agent's, or a bystander's."""

    kind: str
    token: str
    client: Client
    read: int = 0  # how many of client.seen were checked
    app_id: str = ""
    quiet_from: int = 0  # a bystander: from this frame on it should hear nothing of the fuzzing

    def overheard(self) -> list[dict[str, Any]]:
        """What a bystander heard that is not about its own app or itself: the fuzzing reached it."""
        you = self.client.ready["you"]

        def own(f: dict[str, Any]) -> bool:
            return (
                f["type"] == "service_status"
                or (f["type"] == "agent_status" and f.get("agent_id") == you.get("agent_id"))
                or (f["type"] == "queue_changed" and f.get("app_id") == self.app_id)
            )

        return [f for f in self.client.seen[self.quiet_from :] if not own(f)]


@dataclass
class World:
    node: Node
    app: App
    other: App
    visitor: Socket
    agent: Socket
    bystanders: list[Socket]
    visitor_id: str
    ids: dict[str, dict[str, list[str]]]
    documented: set[int]
    log: ErrorLog
    loop: asyncio.AbstractEventLoop  # the node's: examples run on it
    acks: dict[str, tuple[str, int]] = field(default_factory=dict)
    acked_keys: dict[tuple[str, str, str], str] = field(default_factory=dict)
    foreign: dict[str, Any] = field(default_factory=dict)
    frames_tried: int = 0
    replies: Counter[str] = field(default_factory=Counter)
    checks: int = 0
    barrier: Iterator[int] = field(default_factory=itertools.count)

    def resolve(self, ref: Ref) -> str:
        found = self.ids[ref.kind][ref.whose] or self.ids[ref.kind]["own"]  # no open chat left: a closed one
        return found[ref.pick % len(found)]

    # --- one example ---

    async def run(self, example: list[Action]) -> None:
        if not self.ids["sid"]["open"]:  # the fuzzing closed them all: most sends should still land somewhere
            await self.visitor.client.send("open_chat")
            await self.visitor.client.expect("conversation", where=lambda f: f["status"] != "closed")
            self.visitor.client.backlog.clear()
            self.check_frames(self.visitor)
        expected: dict[str, set[int]] = {"visitor": set(), "agent": set()}
        closed: dict[str, int] = {}
        for action in example:
            sock = self.visitor if action.who == "visitor" else self.agent
            if action.who in closed:
                continue
            try:
                await self.send(sock, action.payload, expected[action.who])
            except ConnectionClosed as exc:
                closed[action.who] = exc.rcvd.code if exc.rcvd else 1006
        for who, sock in (("visitor", self.visitor), ("agent", self.agent)):
            code = closed.get(who) or await self.answered(sock)
            self.check_frames(sock)
            if code is not None:
                assert code in self.documented, f"{who} closed with {code}, which docs/api.md does not list"
                assert code in expected[who], f"{who} closed with {code} after {example}: a crash"
                self.replies[f"close {code}"] += 1
                sock.client = await self.node.connect(sock.kind, sock.token, sock.kind)
                sock.read = 0
                self.check_frames(sock)
        for bystander in self.bystanders:
            assert await self.answered(bystander) is None, f"{bystander.kind} bystander lost its socket"
            self.check_frames(bystander)
            assert not bystander.overheard(), f"a {bystander.kind} of another chat heard {bystander.overheard()}"
        assert not self.log.records, self.log.records
        await self.check_database()

    async def send(self, sock: Socket, payload: Payload, expected: set[int]) -> None:
        conn = sock.client.conn
        if isinstance(payload, Text):
            text = encode(payload.frame, self.resolve)
            if len(text.encode()) > WS_MAX_BYTES:
                expected.add(1009)
            self.frames_tried += 1
            await conn.send(text)
        elif isinstance(payload, Raw):
            expected.update({1009} if len(payload.text.encode()) > WS_MAX_BYTES else ())
            self.frames_tried += 1
            await conn.send(payload.text)
        elif isinstance(payload, Binary):
            self.frames_tried += 1
            await conn.send(payload.data)
        elif isinstance(payload, BadUtf8):
            expected.add(1007)
            self.frames_tried += 1
            await conn.send(payload.data, text=True)
        else:
            expected.add(1013)  # a client too far behind may be closed; 150 frames are far from 5,000
            texts = [encode(f, self.resolve) for f in payload.frames]
            for i in range(payload.times):
                self.frames_tried += 1
                await conn.send(texts[i % len(texts)])

    async def answered(self, sock: Socket) -> int | None:
        """None when the socket answers a marker and then `ping`; else the code it was closed with."""
        marker = f"barrier-{next(self.barrier)}"
        conn = sock.client.conn
        try:
            await conn.send(json.dumps({"type": "barrier", "ref": marker}))  # unknown type: an error with the ref
            await conn.send('{"type":"ping"}')
            passed = False
            while True:
                try:
                    raw = await asyncio.wait_for(conn.recv(), ANSWER_TIMEOUT)
                except TimeoutError:
                    raise AssertionError(f"{sock.kind}: no pong within {ANSWER_TIMEOUT}s: the node hangs") from None
                assert isinstance(raw, str), f"{sock.kind}: the node sent a binary frame"
                got = json.loads(raw)
                sock.client.seen.append(got)
                if got.get("type") == "error" and got.get("ref") == marker:
                    assert got.get("code") == "unknown_type", got
                    sock.client.seen.pop()
                    passed = True
                elif passed and got.get("type") == "pong":
                    sock.client.seen.pop()
                    return None
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else 1006

    def check_frames(self, sock: Socket) -> None:
        for got in sock.client.seen[sock.read :]:
            assert isinstance(got, dict) and got.get("type") in SERVER_TYPES, got
            if got["type"] == "error":
                assert isinstance(got.get("message"), str) and got["message"], got
                assert got.get("code") in ERROR_CODES and got["code"] != "internal_error", got
            elif got["type"] == "ack":
                message_id, key = got["message_id"], (sock.kind, got["session_id"], got["client_msg_id"])
                assert self.acks.setdefault(message_id, (got["session_id"], got["seq"])) == (
                    got["session_id"],
                    got["seq"],
                ), got
                assert self.acked_keys.setdefault(key, message_id) == message_id, f"a retry made a new message: {got}"
            if sock is self.visitor:
                self.track(got)
            self.replies[f"{got['type']} {got.get('code', '')}".strip()] += 1
        sock.read = len(sock.client.seen)

    def track(self, got: dict[str, Any]) -> None:
        """The fuzzed visitor's conversations, and which of them are open."""
        own, open_ = self.ids["sid"]["own"], self.ids["sid"]["open"]
        if got["type"] not in ("ready", "conversation"):
            return
        for conv in got["conversations"] if got["type"] == "ready" else [got]:
            sid = conv["session_id"]
            if sid not in own:
                own.append(sid)
            if conv["status"] == "closed" and sid in open_:
                open_.remove(sid)
            elif conv["status"] != "closed" and sid not in open_:
                open_.append(sid)

    # --- the database ---

    async def snapshot(self) -> tuple[dict[str, Any], Sequence[Any], dict[str, Any]]:
        """Every conversation, message and agent, read in one snapshot."""
        db, c, m, ag = self.node.services.db, tables.conversations.c, tables.messages.c, tables.agents.c
        conv_columns = (c.session_id, c.visitor_id, c.status, c.agent_id, c.last_seq, c.closed_at, c.group_name)
        message_columns = (m.session_id, m.seq, m.message_id, m.sender_id, m.client_msg_id, m.content)
        agent_columns = (ag.agent_id, ag.status, ag.level, ag.max_concurrent, ag.role)
        async with db.engine.connect() as conn:
            if not db.is_sqlite:  # one snapshot for every query: a message may commit between two of them
                conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            convs = (await conn.execute(sa.select(*conv_columns))).all()
            messages = (await conn.execute(sa.select(*message_columns).order_by(m.session_id, m.seq))).all()
            agents = (await conn.execute(sa.select(*agent_columns))).all()
        return {r.session_id: r for r in convs}, messages, {r.agent_id: tuple(r) for r in agents}

    async def check_database(self) -> None:
        convs, messages, agents = await self.snapshot()
        by_conv: dict[str, list[Any]] = {}
        for m in messages:
            by_conv.setdefault(m.session_id, []).append(m)
        for sid, conv in convs.items():
            seqs = [m.seq for m in by_conv.get(sid, [])]
            assert seqs == list(range(1, conv.last_seq + 1)), f"{sid}: seqs {seqs}, last_seq {conv.last_seq}"
            keys = [(m.sender_id, m.client_msg_id) for m in by_conv.get(sid, []) if m.client_msg_id is not None]
            assert len(keys) == len(set(keys)), f"{sid}: a client_msg_id stored twice"
        stored = {m.message_id: (m.session_id, m.seq) for m in messages}
        for message_id, place in self.acks.items():
            assert stored.get(message_id) == place, f"acked {message_id} at {place}, stored {stored.get(message_id)}"
        foreign = {
            "conversations": {sid: tuple(c) for sid, c in convs.items() if c.visitor_id != self.visitor_id},
            "messages": [tuple(m) for m in messages if convs[m.session_id].visitor_id != self.visitor_id],
            "agents": {a: row for a, row in agents.items() if a not in self.ids["agent"]["self"]},
        }
        if not self.foreign:
            self.foreign = foreign
        assert foreign == self.foreign, "another visitor's or app's data changed"
        self.checks += 1


async def upload(http: httpx.AsyncClient, token: str) -> str:
    files = {"file": ("note.txt", b"hello from the fuzzer\n", "text/plain")}
    r = await http.post("/api/v1/uploads", files=files, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    return str(r.json()["attachment_id"])


async def build_world(node: Node) -> World:
    app, other = await node.create_app("fuzzed"), await node.create_app("bystander")
    r = await node.http.post("/api/v1/kb/import", json=KB, headers={"Authorization": f"Bearer {app.api_key}"})
    assert r.status_code == 200, r.text
    r = await node.http.post("/api/v1/groups", json={"name": "vip"}, headers={"Authorization": f"Bearer {app.api_key}"})
    assert r.status_code == 201, r.text
    # The guard has one slot, taken by the other visitor's chat: the fuzzed visitor's chats all go to the agent.
    guard = await node.add_agent(app, max_concurrent=1)
    fuzzed = await node.add_agent(app, max_concurrent=1000)
    stranger = await node.add_agent(other, groups=("default", "b-only"))
    guard_socket = await node.agent(app, guard["email"])
    neighbour = await node.visitor(app, "neighbour")
    await neighbour.send("open_chat")
    neighbour_sid = (await neighbour.expect("conversation"))["session_id"]
    await neighbour.send("request_human", session_id=neighbour_sid)
    await guard_socket.expect("assigned", session_id=neighbour_sid)
    stranger_socket = await node.agent(other, stranger["email"])
    outsider = await node.visitor(other, "neighbour")
    outsider_sid = (await outsider.open_chat())["session_id"]
    await stranger_socket.expect("assigned", session_id=outsider_sid)
    for client, sid in ((neighbour, neighbour_sid), (outsider, outsider_sid)):
        await client.text(sid, "私人消息 private")
    agent_token = await node.login(app, fuzzed["email"])
    agent = await node.connect("agent", agent_token, "agent")
    await agent.send("set_status", status="online")
    await agent.ping()
    visitor_token = await node.visitor_token(app, "fuzzed")
    visitor = await node.connect("visitor", visitor_token, "visitor")
    own_sid = (await visitor.open_chat())["session_id"]
    ids = {
        "sid": {
            "own": [own_sid],
            "open": [own_sid],
            "other_visitor": [neighbour_sid],
            "other_app": [outsider_sid],
            "missing": ["20000101-000001", "x", "../../etc", "20000101-0000001"],
        },
        "agent": {
            "self": [fuzzed["agent_id"]],
            "guard": [guard["agent_id"]],
            "other_app": [stranger["agent_id"]],
            "missing": ["ag_missing"],
        },
        "attachment": {
            "mine": [await upload(node.http, visitor_token), await upload(node.http, agent_token)],
            "other_visitor": [await upload(node.http, await node.visitor_token(app, "neighbour"))],
            "other_app": [await upload(node.http, await node.visitor_token(other, "neighbour"))],
            "missing": ["att_missing"],
        },
        "group": {"default": ["default"], "vip": ["vip"], "other_app": ["b-only"], "missing": ["nobody"]},
    }
    bystanders = [
        Socket(kind, "", client, app_id=owner.app_id)
        for kind, client, owner in (
            ("agent", guard_socket, app),
            ("visitor", neighbour, app),
            ("agent", stranger_socket, other),
            ("visitor", outsider, other),
        )
    ]
    for bystander in bystanders:
        await bystander.client.ping()
        # What they heard before the fuzzing starts is theirs.
        bystander.read = bystander.quiet_from = len(bystander.client.seen)
        bystander.client.backlog.clear()
    world = World(
        node=node,
        app=app,
        other=other,
        visitor=Socket("visitor", visitor_token, visitor),
        agent=Socket("agent", agent_token, agent),
        bystanders=bystanders,
        visitor_id=visitor.ready["you"]["visitor_id"],
        ids=ids,
        documented=documented_close_codes(),
        log=ErrorLog(),
        loop=asyncio.get_running_loop(),
    )
    world.check_frames(world.visitor)
    world.check_frames(world.agent)
    await world.check_database()
    return world


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One live node (and its own event loop) for every example of the module, per backend."""
    loop = asyncio.new_event_loop()
    stack = contextlib.AsyncExitStack()
    try:

        async def start() -> World:
            if request.param == "sqlite":
                url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'kefu.db'}"
            else:
                url = await stack.enter_async_context(fresh_pg_database())
            upload_dir = str(tmp_path_factory.mktemp("uploads"))
            node = await stack.enter_async_context(running_node(url, upload_dir=upload_dir, ws_idle_timeout_s=600))
            return await build_world(node)

        built = loop.run_until_complete(start())
        logging.getLogger().addHandler(built.log)
        try:
            yield built
        finally:
            logging.getLogger().removeHandler(built.log)
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()


@pytest.mark.timeout(300)
def test_the_node_survives_fuzzed_frames_and_stays_consistent(world: World) -> None:
    report_fuzz_seed()
    for seed in (None, FUZZ_SEED):

        @settings(
            max_examples=EXAMPLES if seed is None else RANDOM_EXAMPLES,
            deadline=None,
            derandomize=seed is None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(example=examples)
        def one(example: list[Action]) -> None:
            world.loop.run_until_complete(world.run(example))

        if seed is not None:
            one = hypothesis_seed(seed)(one)
        try:
            one()
        except BaseException as exc:
            exc.add_note(f"ws fuzzer: {'derandomized run' if seed is None else f'KEFU_FUZZ_SEED={seed}'}")
            raise
    backend = "sqlite" if world.node.services.db.is_sqlite else "postgresql"
    report(
        f"ws fuzzer: {world.frames_tried} frames tried, 0 crashes, {world.checks} consistency checks passed ({backend})"
    )
    report(f"ws fuzzer ({backend}) replies: " + ", ".join(f"{kind} {n}" for kind, n in world.replies.most_common()))
