"""The per-connection delivery order (kefu.domain.delivery): events in, decisions out, no I/O.

`Simulation` plays the world around one connection: messages commit in seq order; pubsub brings
their events at once, late and in any order, twice, or never; gap fills and syncs read the
database at any moment and end (or fail) in any order; a conversation is followed from `ready`,
from a late `assigned`, or not at all. After every decision it checks what the client got: each
message once; above where the live stream started, in seq order with no gap; below it, only what
a sync asked for; after `synced`, everything the sync covered. From every state it also checks
that the work in flight ends with every published message out, and that one more sync brings
the rest. Two tests drive it: every interleaving up to a bound (small scope, exhaustive), and
Hypothesis over longer runs with more messages and two conversations.
"""

from __future__ import annotations

import copy
import pickle
from collections import deque
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kefu.domain.delivery import Decision, Deliver, DeliveryOrder, FillGap

Start = tuple[bool, int, int]  # in `ready`?, the conversation's last seq then, how far behind the client is
Action = tuple[str, str, int]


def message(session_id: str, seq: int) -> bytes:
    return f"message {session_id} {seq}".encode()


def synced(session_id: str, last_seq: int) -> bytes:
    return f"synced {session_id} {last_seq}".encode()


def rows(session_id: str, first: int, last: int) -> list[tuple[int, bytes]]:
    return [(seq, message(session_id, seq)) for seq in range(first, last + 1)]


@dataclass(frozen=True)
class Sync:
    after_seq: int
    read: int | None = None  # the last seq the database had when the sync read it


@dataclass
class World:
    """One conversation as the database, pubsub and the client see it (fields immutable: a copy is shallow)."""

    session_id: str
    committed: int = 0
    known_before: int = 0  # what the client had from earlier connections
    frontier: int | None = None  # the highest seq the live stream has reached on this connection
    got: tuple[int, ...] = ()  # message seqs delivered on this connection, in order
    published: frozenset[int] = frozenset()
    late: tuple[int, ...] = ()  # events pubsub holds back, to bring later (in any order)
    fill: FillGap | None = None
    sync: Sync | None = None
    failed: bool = False  # a read failed: held messages may wait for the next event
    heard: bool = False  # the connection has had an event or a sync of this conversation
    known_at_synced: int = 0  # what the client knew when its last sync ended
    unacked: tuple[int, ...] = ()  # messages this connection sent, committed, their acks not out yet
    acked: frozenset[int] = frozenset()  # messages this connection sent and got the ack of (it has their seq)

    def known(self) -> int:
        """The client's contiguous prefix: every seq up to this one it has."""
        have = set(self.got) | self.acked | set(range(1, self.known_before + 1))
        top = 0
        while top + 1 in have:
            top += 1
        return top


class Simulation:
    """Plays the world's actions against one DeliveryOrder and checks, after each decision, what the client got."""

    def __init__(self, starts: dict[str, Start], max_seq: int, acked_later: bool = True) -> None:
        self.order = DeliveryOrder()
        self.max_seq = max_seq
        self.acked_later = acked_later  # the connection's own send: other events may come between commit and ack
        self.worlds: dict[str, World] = {}
        self.replaying: tuple[str, int] | None = None  # the sync whose decisions are being applied
        for sid, (in_ready, last_seq, behind) in starts.items():
            world = self.worlds[sid] = World(sid, committed=last_seq)
            if in_ready:
                world.known_before = world.known_at_synced = max(last_seq - behind, 0)
                world.frontier, world.heard = last_seq, True
                self.order.follow(sid, last_seq)

    def copy(self) -> Simulation:
        twin = copy.copy(self)
        twin.order = pickle.loads(pickle.dumps(self.order))  # noqa: S301 - a deep copy of our own object, fast
        twin.worlds = {sid: copy.copy(world) for sid, world in self.worlds.items()}
        return twin

    def state(self) -> tuple[object, ...]:
        """Everything that decides what can happen next (the order of `got` does not)."""
        worlds = tuple(
            (*(v for k, v in vars(world).items() if k != "got"), frozenset(world.got)) for world in self.worlds.values()
        )
        return (repr(self.order), worlds)

    def actions(self) -> list[Action]:
        """What can happen next, each as often as it is listed. Drawing only among these keeps every step
        meaningful, so syncs, gap fills and late events overlap often. Failures and odd events are rarer than the
        normal course, and the first conversation gets most steps (a second one is there to show independence)."""
        possible: list[Action] = []
        no_sync = all(world.sync is None for world in self.worlds.values())
        for index, (sid, world) in enumerate(self.worlds.items()):
            usual: list[Action] = []
            if world.committed < self.max_seq:
                usual += [("commit", sid, 0), ("commit_late", sid, 0), ("commit_lost", sid, 0)]
                # The connection reads its next frame once a send is acked: one of its own in flight at most.
                usual += [] if world.unacked else [("own", sid, 0)]
            usual += [("ack", sid, 0)] if world.unacked else []
            usual += [("late", sid, i) for i in range(len(world.late))]
            if no_sync:  # one at a time: the connection reads the next frame once a sync is done
                usual += [("sync", sid, 0), ("sync", sid, 1)]
            if world.sync is not None:
                usual += [("sync_ends", sid, 0)] + ([("sync_reads", sid, 0)] if world.sync.read is None else [])
            if world.fill is not None:
                usual += [("fill_ends", sid, 0)]
            possible += usual * (3 if index == 0 else 1)
            possible += [("sync_fails", sid, 0)] if world.sync is not None else []
            possible += [("fill_fails", sid, 0)] if world.fill is not None else []
            possible += [("again", sid, max(world.published))] if world.published else []
            possible += [("follow", sid, 0), ("follow", sid, 1)]
        return possible

    def act(self, action: Action) -> None:
        op, sid, n = action
        world = self.worlds[sid]
        match op:
            case "commit" | "commit_late" | "commit_lost":
                # A message commits; pubsub brings its event now, later, or never (Redis: at most once).
                world.committed += 1
                if op == "commit":
                    self.publish(world, world.committed)
                elif op == "commit_late":
                    world.late += (world.committed,)
            case "own":  # this connection's send commits; its ack goes out later
                world.committed += 1
                world.unacked += (world.committed,)
                if not self.acked_later:
                    self.act(("ack", sid, 0))
            case "ack":  # the ack goes out, and only then pubsub brings the message (to this connection too)
                seq, world.unacked = world.unacked[n], world.unacked[:n] + world.unacked[n + 1 :]
                if world.frontier is not None:  # else the stream has not started: the message comes as a frame
                    world.acked |= {seq}
                self.apply(self.order.own(sid, seq))
                self.publish(world, seq)
            case "late":  # a late event arrives, in any order
                seq, world.late = world.late[n], world.late[:n] + world.late[n + 1 :]
                self.publish(world, seq)
            case "again":  # an event comes twice
                self.publish(world, n)
            case "follow":
                # A `conversation` or `assigned` event, with the last seq the conversation had when it was sent.
                last_seq = max(world.committed - n, 0)
                self.order.follow(sid, last_seq)
                if not world.heard:
                    world.frontier, world.heard = last_seq, True
            case "sync":
                # From what the client knows now, or knew at its last `synced` (frames cross on the wire).
                world.sync, world.heard = Sync(max(world.known() - n, world.known_at_synced)), True
                self.order.sync_started(sid)
            case "sync_reads":
                assert world.sync is not None
                world.sync = Sync(world.sync.after_seq, read=world.committed)
            case "sync_ends":
                assert world.sync is not None
                last_seq = world.committed if world.sync.read is None else world.sync.read
                replay = rows(sid, world.sync.after_seq + 1, last_seq)
                self.replaying = (sid, world.sync.after_seq)
                self.apply(self.order.sync_finished(sid, replay, last_seq, synced(sid, last_seq)))
                self.replaying = None
            case "sync_fails":
                world.sync, world.failed = None, True
                self.apply(self.order.sync_failed(sid))
            case "fill_ends":
                assert world.fill is not None
                gap, world.fill = world.fill, None
                self.apply(self.order.filled(sid, rows(sid, gap.after_seq + 1, gap.before_seq - 1)))
            case "fill_fails":
                world.fill, world.failed = None, True
                self.order.fill_failed(sid)

    def publish(self, world: World, seq: int) -> None:
        world.published |= {seq}
        world.heard = True
        self.apply(self.order.live(world.session_id, seq, message(world.session_id, seq)))

    @staticmethod
    def reach(world: World) -> int | None:
        """Where the live stream is, counting the connection's own acked messages right after it as delivered."""
        top = world.frontier
        while top is not None and top + 1 in world.acked:
            top += 1
        return top

    # --- what the client gets ----------------------------------------------------------------------

    def apply(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            if isinstance(decision, FillGap):
                world = self.worlds[decision.session_id]
                assert world.fill is None, "two gap fills of one conversation at once"
                assert decision.after_seq + 1 < decision.before_seq <= world.committed, decision
                assert decision.after_seq == self.reach(world), "a gap fill must start where the live stream is"
                world.fill = decision
            else:
                self.receive(decision)

    def receive(self, delivered: Deliver) -> None:
        kind, sid, number = delivered.frame.decode().split()
        world, seq = self.worlds[sid], int(number)
        if kind == "synced":
            assert world.sync is not None and self.replaying == (sid, world.sync.after_seq)
            missing = set(range(world.sync.after_seq + 1, seq + 1)) - set(world.got) - world.acked
            assert not missing, f"synced({seq}) but {sorted(missing)} never came"
            world.sync, world.known_at_synced = None, world.known()
            if world.frontier is None:  # nothing delivered yet: the sync had nothing to replay; the stream starts here
                world.frontier = seq
            return
        assert seq <= world.committed, "delivered before it was committed"
        assert seq not in world.got, f"seq {seq} delivered twice: {world.got}"
        # Acked to this connection: no frame for it comes live (a sync may replay it, as it replays any message).
        assert seq not in world.acked or self.replaying is not None, f"seq {seq} was acked, then came live too"
        reach = self.reach(world)
        if reach is not None and seq <= reach:
            # Below where the live stream is: only a sync replays it, and only what the sync asked for.
            assert self.replaying is not None and self.replaying[0] == sid, f"seq {seq} below {world.frontier}"
            assert seq > self.replaying[1]
        else:
            assert reach is None or seq == reach + 1, f"gap: {seq} after {reach}"
            world.frontier = seq
        world.got += (seq,)

    def check_ending(self) -> None:
        """On a copy: the work in flight ends; every published message is out; one more sync brings the rest."""
        end = self.copy()
        for sid, world in end.worlds.items():
            while world.unacked:
                end.act(("ack", sid, 0))
            if world.sync is not None:
                end.act(("sync_ends", sid, 0))
            while world.fill is not None:
                end.act(("fill_ends", sid, 0))
            if not world.failed and world.published:
                top = max(world.published)
                reach = end.reach(world)
                assert reach is not None and reach >= top, f"{top} published, not delivered"
        for sid, world in end.worlds.items():
            world.known_at_synced = world.known()
            end.act(("sync", sid, 0))
            end.act(("sync_ends", sid, 0))
            while world.fill is not None:
                end.act(("fill_ends", sid, 0))
            assert world.known() == world.committed, f"{world.committed} committed, client has {world.got}"


def explore(max_seq: int, max_steps: int) -> int:
    """Every sequence of up to `max_steps` actions of one conversation with up to `max_seq` messages, from every
    start, breadth first (each state once, at the fewest steps that reach it), checked at every state."""
    starts = [(in_ready, last_seq, behind) for in_ready in (True, False) for last_seq in (0, 1) for behind in (0, 1)]
    # The connection's own sends are acked at once here (the space stays small); Hypothesis lets events in between.
    queue = deque((Simulation({"s": start}, max_seq, acked_later=False), 0) for start in starts)
    seen: set[tuple[object, ...]] = set()
    while queue:
        simulation, steps = queue.popleft()
        if (state := simulation.state()) in seen:
            continue
        seen.add(state)
        simulation.check_ending()
        if steps < max_steps:
            for action in dict.fromkeys(simulation.actions()):
                after = simulation.copy()
                after.act(action)
                queue.append((after, steps + 1))
    return len(seen)


def test_every_interleaving_up_to_a_bound() -> None:
    assert explore(max_seq=3, max_steps=8) > 5000  # the bound covers a real space, not a handful of states


@settings(max_examples=300, deadline=None)
@given(
    starts=st.lists(st.tuples(st.booleans(), st.integers(0, 4), st.integers(0, 4)), min_size=2, max_size=2),
    data=st.data(),
)
def test_long_runs_of_two_conversations(starts: list[Start], data: st.DataObject) -> None:
    simulation = Simulation(dict(zip(("s1", "s2"), starts, strict=True)), max_seq=9)
    for _ in range(data.draw(st.integers(0, 60), label="steps")):
        simulation.act(data.draw(st.sampled_from(simulation.actions())))
    simulation.check_ending()


# --- the cases, spelled out -------------------------------------------------------------------------------


def delivered(decisions: list[Decision]) -> list[bytes]:
    return [d.frame for d in decisions if isinstance(d, Deliver)]


def test_in_order_messages_go_out_at_once_and_repeats_are_dropped() -> None:
    order = DeliveryOrder()
    order.follow("s", 2)
    assert delivered(order.live("s", 3, message("s", 3))) == [message("s", 3)]
    assert order.live("s", 3, message("s", 3)) == []
    assert order.live("s", 2, message("s", 2)) == []


def test_an_early_message_waits_while_the_gap_is_read() -> None:
    order = DeliveryOrder()
    order.follow("s", 0)
    assert order.live("s", 3, message("s", 3)) == [FillGap("s", 0, 3)]
    assert order.live("s", 4, message("s", 4)) == []  # held: the fill is in flight
    out = order.filled("s", rows("s", 1, 2))
    assert delivered(out) == [message("s", n) for n in (1, 2, 3, 4)]


def test_a_seq_the_database_does_not_have_is_skipped_not_waited_on() -> None:
    order = DeliveryOrder()
    order.follow("s", 0)
    assert order.live("s", 3, message("s", 3)) == [FillGap("s", 0, 3)]
    assert delivered(order.filled("s", [(1, message("s", 1))])) == [message("s", 1), message("s", 3)]
    assert order.live("s", 2, message("s", 2)) == []


def test_a_failed_fill_is_tried_again_by_the_next_message() -> None:
    order = DeliveryOrder()
    order.follow("s", 0)
    assert order.live("s", 2, message("s", 2)) == [FillGap("s", 0, 2)]
    order.fill_failed("s")
    assert order.live("s", 3, message("s", 3)) == [FillGap("s", 0, 2)]
    assert delivered(order.filled("s", rows("s", 1, 1))) == [message("s", n) for n in (1, 2, 3)]


def test_a_sync_holds_live_messages_and_does_not_replay_what_went_out_live() -> None:
    order = DeliveryOrder()
    order.follow("s", 2)
    assert delivered(order.live("s", 3, message("s", 3))) == [message("s", 3)]
    order.sync_started("s")
    assert order.live("s", 5, message("s", 5)) == []
    out = order.sync_finished("s", rows("s", 1, 4), 4, synced("s", 4))
    assert delivered(out) == [message("s", n) for n in (1, 2, 4)] + [synced("s", 4), message("s", 5)]


def test_a_failed_sync_lets_the_messages_it_held_go() -> None:
    order = DeliveryOrder()
    order.follow("s", 1)
    order.sync_started("s")
    assert order.live("s", 2, message("s", 2)) == []
    assert delivered(order.sync_failed("s")) == [message("s", 2)]


def test_a_sync_of_an_unfollowed_conversation_leaves_no_gap_before_a_message_it_held() -> None:
    """The sync read up to 1; seq 4 came live meanwhile: 2 and 3 are read, not skipped (they once were)."""
    order = DeliveryOrder()
    order.sync_started("s")
    assert order.live("s", 4, message("s", 4)) == []
    out = order.sync_finished("s", rows("s", 1, 1), 1, synced("s", 1))
    assert out == [Deliver(message("s", 1)), Deliver(synced("s", 1)), FillGap("s", 1, 4)]
    assert delivered(order.filled("s", rows("s", 2, 3))) == [message("s", n) for n in (2, 3, 4)]


def test_a_late_follow_does_not_move_a_conversation_back() -> None:
    order = DeliveryOrder()
    assert delivered(order.live("s", 5, message("s", 5))) == [message("s", 5)]
    order.follow("s", 2)
    assert order.live("s", 4, message("s", 4)) == []
    assert delivered(order.live("s", 6, message("s", 6))) == [message("s", 6)]


def test_filled_without_a_fill_is_a_programming_mistake() -> None:
    order = DeliveryOrder()
    order.follow("s", 0)
    with pytest.raises(AssertionError):
        order.filled("s", [])


def test_the_connections_own_acked_message_takes_its_turn_without_a_frame() -> None:
    order = DeliveryOrder()
    order.follow("s", 1)
    assert order.own("s", 3) == [FillGap("s", 1, 3)]  # acked before seq 2 came: 2 is read, then 3 is passed over
    assert order.live("s", 3, message("s", 3)) == []  # the pubsub copy of the own message is a repeat
    assert delivered(order.filled("s", rows("s", 2, 2))) == [message("s", 2)]
    assert delivered(order.live("s", 4, message("s", 4))) == [message("s", 4)]
    assert order.own("s", 5) == [] and order.live("s", 5, message("s", 5)) == []
    order.sync_started("s")
    assert order.own("s", 7) == []
    out = order.sync_finished("s", rows("s", 1, 7), 7, synced("s", 7))
    assert delivered(out) == [message("s", 1), message("s", 6), synced("s", 7)]  # not 2–5 (sent), nor 7 (acked)


def test_an_own_message_acked_during_a_gap_fill_is_not_sent_by_the_fill() -> None:
    order = DeliveryOrder()
    order.follow("s", 0)
    assert order.live("s", 3, message("s", 3)) == [FillGap("s", 0, 3)]
    assert order.own("s", 2) == []
    assert delivered(order.filled("s", rows("s", 1, 2))) == [message("s", 1), message("s", 3)]


def test_an_own_message_in_a_conversation_not_followed_comes_as_a_frame() -> None:
    order = DeliveryOrder()
    assert order.own("s", 1) == []
    assert delivered(order.live("s", 1, message("s", 1))) == [message("s", 1)]
