"""`OutageLog`: an outage of the database or Redis in a few log lines instead of one traceback per failure.

While PostgreSQL or Redis is down every request that needs it fails; logging each one buried the
first, useful line under tens of thousands of tracebacks. An outage is logged when it is first seen
(with that failure's traceback), then as one count per interval while it lasts, then when it ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

REPORT_INTERVAL_S = 10.0


class OutageLog:
    """One dependency (`what`, e.g. "the database"): `failed` on each failure, `succeeded` after a success."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        interval_s: float = REPORT_INTERVAL_S,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.what, self.interval_s, self._now = logger, what, interval_s, now
        self.down_since: float | None = None
        self.failures = 0  # in this outage
        self._unreported = 0  # since the last line logged
        self._reported_at = 0.0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, exc: BaseException, doing: str = "") -> None:
        now = self._now()
        self.failures += 1
        if self.down_since is None:
            self.down_since = self._reported_at = now
            self.failures, self._unreported = 1, 0
            where = f" ({doing})" if doing else ""
            self.logger.error("%s is unreachable%s: %s", self.what, where, exc, exc_info=exc)
            return
        self._unreported += 1
        if now - self._reported_at >= self.interval_s:
            self.logger.warning(
                "%s still unreachable: %d more failures in the last %.0f s (down %.0f s)",
                self.what,
                self._unreported,
                now - self._reported_at,
                now - self.down_since,
            )
            self._reported_at, self._unreported = now, 0

    def succeeded(self) -> None:
        if self.down_since is None:
            return
        self.logger.warning(
            "%s is reachable again after %.1f s (%d failures)", self.what, self._now() - self.down_since, self.failures
        )
        self.down_since = None
        self.failures = self._unreported = 0
