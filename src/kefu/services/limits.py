"""Abuse limits: fixed-window counters per key, in memory on one node or in Redis across nodes.

What each limit defends (see docs/security.md):
- logins per IP: password guessing from one place; failures per account and IP: lockout of a
  guessed account from that IP only, so the owner can still sign in from elsewhere; failures per
  account from everywhere: a slow, spread-out guess;
- visitor sessions per IP: scripted creation of visitors;
- messages per sender per minute: flooding a conversation or the archive;
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
    login_failures_per_account: Limit = Limit(50, 3600)
    visitor_sessions_per_ip: Limit = Limit(60, 60)
    messages_per_sender: Limit = Limit(60, 60)
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
    "uploads_per_uploader_per_hour": "uploads_per_uploader",
}
APP_LIMIT_CACHE_S = 5.0  # an app's changed limits apply on every node within this many seconds


def effective_limits(overrides: Mapping[str, int], base: LimitSettings | None = None) -> dict[str, int]:
    """The counts that hold for an app, by their setting names (what `GET /apps/{id}` shows)."""
    limits = (base or LimitSettings()).with_overrides(overrides)
    return {key: getattr(limits, field).count for key, field in APP_LIMITS.items()}


class Counter(Protocol):
    async def add(self, key: str, window_s: int) -> tuple[int, float]:
        """Count one more event for key in the current window; (count so far, seconds until the window ends)."""
        ...

    async def peek(self, key: str, window_s: int) -> tuple[int, float]: ...


class MemoryCounter:
    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._counts: dict[str, tuple[int, int]] = {}  # key -> (window number, count)

    def _window(self, window_s: int) -> tuple[int, float]:
        now = self._now()
        number = int(now // window_s)
        return number, (number + 1) * window_s - now

    async def add(self, key: str, window_s: int) -> tuple[int, float]:
        number, left = self._window(window_s)
        seen, count = self._counts.get(key, (number, 0))
        count = count + 1 if seen == number else 1
        self._counts[key] = (number, count)
        if len(self._counts) > 100_000:  # forget finished windows now and then
            self._counts = {k: v for k, v in self._counts.items() if v[0] >= number - 1}
        return count, left

    async def peek(self, key: str, window_s: int) -> tuple[int, float]:
        number, left = self._window(window_s)
        seen, count = self._counts.get(key, (number, 0))
        return (count if seen == number else 0), left


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

    async def close(self) -> None:
        await self._client.aclose()


class Limiter:
    """Every check names the app, whose own `rate_limits` (read through `app_limits`, cached briefly) apply."""

    def __init__(
        self,
        counter: Counter,
        enabled: bool,
        settings: LimitSettings | None = None,
        app_limits: Callable[[str], Awaitable[Mapping[str, int]]] | None = None,
    ) -> None:
        self.counter, self.enabled, self.settings = counter, enabled, settings or LimitSettings()
        self._app_limits = app_limits
        self._cached: dict[str, tuple[float, LimitSettings]] = {}

    async def limits_of(self, app_id: str) -> LimitSettings:
        if self._app_limits is None:
            return self.settings
        now = time.monotonic()
        found = self._cached.get(app_id)
        if found is None or now - found[0] > APP_LIMIT_CACHE_S:
            if len(self._cached) > 10_000:
                self._cached.clear()
            found = self._cached[app_id] = (now, self.settings.with_overrides(await self._app_limits(app_id)))
        return found[1]

    async def _take(self, key: str, limit: Limit, what: str) -> None:
        count, left = await self.counter.add(key, limit.window_s)
        if count > limit.count:
            raise errors.RateLimited(f"Too many {what}; try again later.", max(1, math.ceil(left)))

    async def _refuse_if_over(self, key: str, limit: Limit, what: str) -> None:
        count, left = await self.counter.peek(key, limit.window_s)
        if count >= limit.count:
            raise errors.RateLimited(f"Too many {what}; try again later.", max(1, math.ceil(left)))

    async def before_login(self, ip: str, app_id: str, email: str) -> None:
        if not self.enabled:
            return
        s = await self.limits_of(app_id)
        await self._take(f"login-ip:{app_id}:{ip}", s.login_per_ip, "sign-in attempts from this address")
        account = f"{app_id}:{email.lower()}"
        await self._refuse_if_over(f"login-fail:{account}:{ip}", s.login_failures_per_account_ip, "failed sign-ins")
        await self._refuse_if_over(f"login-fail:{account}", s.login_failures_per_account, "failed sign-ins")

    async def login_failed(self, ip: str, app_id: str, email: str) -> None:
        if not self.enabled:
            return
        s, account = await self.limits_of(app_id), f"{app_id}:{email.lower()}"
        await self.counter.add(f"login-fail:{account}:{ip}", s.login_failures_per_account_ip.window_s)
        await self.counter.add(f"login-fail:{account}", s.login_failures_per_account.window_s)

    async def visitor_session(self, app_id: str, ip: str) -> None:
        if self.enabled:
            limit = (await self.limits_of(app_id)).visitor_sessions_per_ip
            await self._take(f"visitor-ip:{app_id}:{ip}", limit, "new visitor sessions")

    async def message(self, app_id: str, sender_id: str) -> None:
        if self.enabled:
            limit = (await self.limits_of(app_id)).messages_per_sender
            await self._take(f"send:{sender_id}", limit, "messages")

    async def upload(self, app_id: str, uploader_id: str) -> None:
        if self.enabled:
            limit = (await self.limits_of(app_id)).uploads_per_uploader
            await self._take(f"upload:{uploader_id}", limit, "uploads")

    async def close(self) -> None:
        if isinstance(self.counter, RedisCounter):
            await self.counter.close()
