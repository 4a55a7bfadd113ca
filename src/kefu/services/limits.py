"""Abuse limits: fixed-window counters per key, in memory on one node or in Redis across nodes.

What each limit defends (see docs/security.md):
- logins per IP: password guessing from one place; failures per account and IP: lockout of a
  guessed account from that IP only, so the owner can still sign in from elsewhere; failures per
  account from everywhere: a slow, spread-out guess, met with growing delays (1 s, 2 s, 4 s, … at
  most 5 minutes) for addresses the account never signed in from — never a lock that a flood of
  wrong passwords could hold over the owner for an hour;
- visitor sessions per IP: scripted creation of visitors;
- messages per sender per minute: flooding a conversation or the archive; chats opened per visitor
  per hour: a visitor opening hundreds of chats, each offered to the agents;
- uploads per uploader per hour: filling the disk.

Across nodes the counters live in Redis. When Redis is unreachable the limits fail open to a count
on each node (a sender spread over N nodes may then get up to N times a limit) rather than failing
closed: chat, which needs only the database, goes on through a Redis outage.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from kefu import errors
from kefu.outages import OutageLog

log = logging.getLogger(__name__)
REDIS_TIMEOUT_S = 1.0  # a Redis that hangs rather than refuses holds a send up at most this long
REDIS_RETRY_S = 1.0  # after a failure, count on this node this long before trying Redis again


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    window_s: int


@dataclass(frozen=True, slots=True)
class LimitSettings:
    login_per_ip: Limit = Limit(20, 60)
    login_failures_per_account_ip: Limit = Limit(5, 900)
    login_failures_per_account: Limit = Limit(50, 3600)  # beyond it: growing delays, not a lock
    visitor_sessions_per_ip: Limit = Limit(60, 60)
    messages_per_sender: Limit = Limit(60, 60)
    chats_per_visitor: Limit = Limit(20, 3600)
    uploads_per_uploader: Limit = Limit(100, 3600)

    def with_overrides(self, overrides: Mapping[str, int]) -> LimitSettings:
        """These limits with an app's own counts (`rate_limits` in its settings; windows stay as they are)."""
        changed = {
            field: Limit(int(overrides[key]), getattr(self, field).window_s)
            for key, field in APP_LIMITS.items()
            if key in overrides
        }
        return dataclasses.replace(self, **changed)


# An app's `rate_limits` setting: its names for the counts it may change, and the limit each one sets.
APP_LIMITS = {
    "logins_per_ip_per_minute": "login_per_ip",
    "failed_logins_before_lockout": "login_failures_per_account_ip",
    "failed_logins_per_account_per_hour": "login_failures_per_account",
    "visitor_sessions_per_ip_per_minute": "visitor_sessions_per_ip",
    "messages_per_sender_per_minute": "messages_per_sender",
    "chats_per_visitor_per_hour": "chats_per_visitor",
    "uploads_per_uploader_per_hour": "uploads_per_uploader",
}
APP_LIMIT_CACHE_S = 5.0  # an app's changed limits apply on every node within this many seconds
LOGIN_DELAY_MAX_S = 300  # the longest an account's growing sign-in delay gets
KNOWN_ADDRESS_S = 30 * 86400  # an address the account signed in from is known this long: delays do not hold it
UNKNOWN_APP = "?"  # the app part of the counter keys of requests naming no existing app: one key per address


def effective_limits(overrides: Mapping[str, int], base: LimitSettings | None = None) -> dict[str, int]:
    """The counts that hold for an app, by their setting names (what `GET /apps/{id}` shows)."""
    limits = (base or LimitSettings()).with_overrides(overrides)
    return {key: getattr(limits, field).count for key, field in APP_LIMITS.items()}


class Counter(Protocol):
    async def add(self, key: str, window_s: int) -> tuple[int, float]:
        """Count one more event for key in the current window; (count so far, seconds until the window ends)."""
        ...

    async def peek(self, key: str, window_s: int) -> tuple[int, float]: ...

    async def hold(self, key: str, seconds: float) -> None:
        """Mark key for `seconds` from now (a delay, or a remembered address)."""
        ...

    async def held(self, key: str) -> float:
        """Seconds left of key's mark; 0 when there is none."""
        ...


class MemoryCounter:
    MAX_KEYS = 100_000  # past this many, finished windows and holds are forgotten

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._counts: dict[str, tuple[int, int, int]] = {}  # key -> (window length, window number, count)
        self._holds: dict[str, float] = {}  # key -> when its mark ends

    def _window(self, window_s: int) -> tuple[int, float]:
        now = self._now()
        number = int(now // window_s)
        return number, (number + 1) * window_s - now

    async def add(self, key: str, window_s: int) -> tuple[int, float]:
        number, left = self._window(window_s)
        _, seen, count = self._counts.get(key, (window_s, number, 0))
        count = count + 1 if seen == number else 1
        self._counts[key] = (window_s, number, count)
        if len(self._counts) > self.MAX_KEYS:
            self._forget_finished()
        return count, left

    def _forget_finished(self) -> None:
        """Drop counts whose window has ended, each judged by its own window length (a 15-minute count outlives
        any number of finished 1-minute ones)."""
        now = self._now()
        self._counts = {k: v for k, v in self._counts.items() if v[1] == int(now // v[0])}

    async def peek(self, key: str, window_s: int) -> tuple[int, float]:
        number, left = self._window(window_s)
        _, seen, count = self._counts.get(key, (window_s, number, 0))
        return (count if seen == number else 0), left

    async def hold(self, key: str, seconds: float) -> None:
        now = self._now()
        self._holds[key] = now + seconds
        if len(self._holds) > self.MAX_KEYS:
            self._holds = {k: until for k, until in self._holds.items() if until > now}

    async def held(self, key: str) -> float:
        return max(0.0, self._holds.get(key, 0.0) - self._now())


class RedisCounter:
    """The same windows in Redis (INCR + EXPIRE), so that every node counts together.

    While Redis is unreachable it counts in a `MemoryCounter` of this node instead (fail open, logged as an
    outage), trying Redis again every REDIS_RETRY_S; counts made meanwhile stay local.
    """

    def __init__(self, url: str, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._client: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        self.local = MemoryCounter()
        self.outage = OutageLog(log, "Redis (abuse limits)", now=monotonic)
        self._monotonic = monotonic
        self._retry_at = 0.0

    async def add(self, key: str, window_s: int) -> tuple[int, float]:
        if self._monotonic() >= self._retry_at:
            try:
                found = await self._add_in_redis(key, window_s)
            except (RedisError, OSError) as exc:
                self._fell_back(exc)
            else:
                self.outage.succeeded()
                return found
        return await self.local.add(key, window_s)

    async def peek(self, key: str, window_s: int) -> tuple[int, float]:
        if self._monotonic() >= self._retry_at:
            try:
                found = await self._peek_in_redis(key, window_s)
            except (RedisError, OSError) as exc:
                self._fell_back(exc)
            else:
                self.outage.succeeded()
                return found
        return await self.local.peek(key, window_s)

    def _fell_back(self, exc: Exception) -> None:
        self.outage.failed(exc, "abuse limits are counted on each node until it is back")
        self._retry_at = self._monotonic() + REDIS_RETRY_S

    async def _add_in_redis(self, key: str, window_s: int) -> tuple[int, float]:
        now = time.time()
        number = int(now // window_s)
        name = f"kefu:limit:{key}:{number}"
        pipe = self._client.pipeline()
        pipe.incr(name)
        pipe.expire(name, window_s + 1)
        count, _ = await pipe.execute()
        return int(count), (number + 1) * window_s - now

    async def _peek_in_redis(self, key: str, window_s: int) -> tuple[int, float]:
        now = time.time()
        number = int(now // window_s)
        value = await self._client.get(f"kefu:limit:{key}:{number}")
        return int(value or 0), (number + 1) * window_s - now

    async def hold(self, key: str, seconds: float) -> None:
        if self._monotonic() >= self._retry_at:
            try:
                await self._client.set(f"kefu:hold:{key}", 1, px=max(1, int(seconds * 1000)))
            except (RedisError, OSError) as exc:
                self._fell_back(exc)
            else:
                self.outage.succeeded()
                return
        await self.local.hold(key, seconds)

    async def held(self, key: str) -> float:
        if self._monotonic() >= self._retry_at:
            try:
                left_ms = int(await self._client.pttl(f"kefu:hold:{key}"))
            except (RedisError, OSError) as exc:
                self._fell_back(exc)
            else:
                self.outage.succeeded()
                return max(0.0, left_ms / 1000)  # -2: no such key; -1 cannot happen (every hold expires)
        return await self.local.held(key)

    async def close(self) -> None:
        await self._client.aclose()


class Limiter:
    """Every check names the app, whose own `rate_limits` (read through `app_limits`, cached briefly) apply."""

    def __init__(
        self,
        counter: Counter,
        enabled: bool,
        settings: LimitSettings | None = None,
        app_limits: Callable[[str], Awaitable[Mapping[str, int] | None]] | None = None,
    ) -> None:
        """`app_limits(app_id)`: the app's own counts, or None when there is no such app."""
        self.counter, self.enabled, self.settings = counter, enabled, settings or LimitSettings()
        self._app_limits = app_limits
        self._cached: dict[str, tuple[float, LimitSettings | None]] = {}

    async def limits_of(self, app_id: str) -> LimitSettings | None:
        """The limits of an app; None when it does not exist (no counters are kept under a made-up app id)."""
        if self._app_limits is None:
            return self.settings
        now = time.monotonic()
        found = self._cached.get(app_id)
        if found is None or now - found[0] > APP_LIMIT_CACHE_S:
            if len(self._cached) > 10_000:
                self._cached.clear()
            overrides = await self._app_limits(app_id)
            found = (now, None if overrides is None else self.settings.with_overrides(overrides))
            if found[1] is not None:  # made-up ids are not cached: they would crowd out the real ones
                self._cached[app_id] = found
        return found[1]

    async def _limits_of_known(self, app_id: str) -> LimitSettings:
        """The limits of an app that must exist (its id came from a signed token)."""
        return await self.limits_of(app_id) or self.settings

    async def _take(self, key: str, limit: Limit, what: str) -> None:
        count, left = await self.counter.add(key, limit.window_s)
        if count > limit.count:
            raise errors.RateLimited(f"Too many {what}; try again later.", max(1, math.ceil(left)))

    async def _refuse_if_over(self, key: str, limit: Limit, what: str) -> None:
        count, left = await self.counter.peek(key, limit.window_s)
        if count >= limit.count:
            raise errors.RateLimited(f"Too many {what}; try again later.", max(1, math.ceil(left)))

    async def before_login(self, ip: str, app_id: str, email: str) -> None:
        """Refuse (429) a sign-in attempt that is over a limit, before the password is checked."""
        if not self.enabled:
            return
        s = await self.limits_of(app_id)
        if s is None:  # no such app: counted once per address, whatever ids are made up; the sign-in then fails
            await self._take(f"login-ip:{UNKNOWN_APP}:{ip}", self.settings.login_per_ip, "sign-in attempts")
            return
        await self._take(f"login-ip:{app_id}:{ip}", s.login_per_ip, "sign-in attempts from this address")
        account = f"{app_id}:{email.lower()}"
        await self._refuse_if_over(f"login-fail:{account}:{ip}", s.login_failures_per_account_ip, "failed sign-ins")
        if await self.counter.held(f"login-known:{account}:{ip}"):
            return  # the owner's usual address is not held up by guesses from elsewhere
        wait = await self.counter.held(f"login-delay:{account}")
        if wait > 0:
            raise errors.RateLimited(
                "This account had many failed sign-ins; wait before trying again.", max(1, math.ceil(wait))
            )

    async def login_failed(self, ip: str, app_id: str, email: str) -> None:
        """Count a wrong password; past the account's hourly allowance each failure doubles its delay."""
        if not self.enabled:
            return
        s = await self.limits_of(app_id)
        if s is None:
            return
        account = f"{app_id}:{email.lower()}"
        await self.counter.add(f"login-fail:{account}:{ip}", s.login_failures_per_account_ip.window_s)
        failures, _ = await self.counter.add(f"login-fail:{account}", s.login_failures_per_account.window_s)
        over = failures - s.login_failures_per_account.count
        if over > 0:
            await self.counter.hold(f"login-delay:{account}", min(2 ** min(over - 1, 20), LOGIN_DELAY_MAX_S))

    async def login_succeeded(self, ip: str, app_id: str, email: str) -> None:
        """Remember the address: the account's delays do not hold it for KNOWN_ADDRESS_S."""
        if self.enabled:
            await self.counter.hold(f"login-known:{app_id}:{email.lower()}:{ip}", KNOWN_ADDRESS_S)

    async def visitor_session(self, app_id: str, ip: str) -> None:
        if self.enabled:
            s = await self.limits_of(app_id)
            limit = (s or self.settings).visitor_sessions_per_ip
            await self._take(f"visitor-ip:{app_id if s else UNKNOWN_APP}:{ip}", limit, "new visitor sessions")

    async def message(self, app_id: str, sender_id: str) -> None:
        if self.enabled:
            limit = (await self._limits_of_known(app_id)).messages_per_sender
            await self._take(f"send:{sender_id}", limit, "messages")

    async def chat_opened(self, app_id: str, visitor_id: str) -> None:
        if self.enabled:
            limit = (await self._limits_of_known(app_id)).chats_per_visitor
            await self._take(f"open-chat:{visitor_id}", limit, "new chats")

    async def upload(self, app_id: str, uploader_id: str) -> None:
        if self.enabled:
            limit = (await self._limits_of_known(app_id)).uploads_per_uploader
            await self._take(f"upload:{uploader_id}", limit, "uploads")

    async def close(self) -> None:
        if isinstance(self.counter, RedisCounter):
            await self.counter.close()
