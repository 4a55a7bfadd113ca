"""The search indexer: segments new messages and conversation contexts after they commit, in batches.

The send path never segments text. The message writer (or anything else that commits searchable text)
calls `notify()`, which only marks that there is more to index. A pass runs when notified, but never
sooner than `min_interval_s` after the previous one began, so under load one pass indexes everything a
whole interval committed (one read, one segmenting job, one write) instead of a pass per group commit
competing with the sends for the node's core; a pass also runs every `interval_s` as a safety net,
so a missed notify costs at most that much lag. A pass reads what was committed past the high-water marks
(storage/search.py), segments it in a worker thread with no database connection held, then stores the
terms and the new marks in one short transaction. Passes are idempotent and serialised (PostgreSQL: an
advisory lock), so every node may run one.

How far behind it is shows as `kefu_search_index_lag_seconds` in `/metrics` (`lag_s`): the age of the
oldest commit this node notified about that no finished pass has covered yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from kefu import errors
from kefu.domain.clock import Clock, SystemClock
from kefu.storage import Database
from kefu.storage import search as search_store

log = logging.getLogger(__name__)


def _segment(texts: list[str]) -> list[list[str]]:
    return [search_store.terms_of(text) if text.strip() else [] for text in texts]


class SearchIndexer:
    def __init__(
        self,
        db: Database,
        interval_s: float = 0.5,
        batch: int = 500,
        min_interval_s: float = 0.0,
        clock: Clock | None = None,
    ) -> None:
        self.db, self.interval_s, self.batch, self.min_interval_s = db, interval_s, batch, min_interval_s
        self.clock = clock or SystemClock()
        self._wake = asyncio.Event()
        self._gate = asyncio.Event()  # set while a pass may start (min_interval_s after the previous one began)
        self._gate.set()
        self.held = asyncio.Event()
        """Set while notified work waits out the minimum interval (what tests wait on to see the interval hold)."""
        self._lock = asyncio.Lock()  # one pass at a time in this process
        self._task: asyncio.Task[None] | None = None
        self._seen: dict[str, search_store.Mark] = {}  # PostgreSQL: the forward cursor (storage/search.py)
        self._unindexed_since: dt.datetime | None = None  # the first notify no pass has started on yet
        self._covering_since: dt.datetime | None = None  # what the pass under way covers, until it finishes
        self.passes = 0
        self.documents = 0

    def notify(self) -> None:
        """Something searchable was committed: index it soon. Cheap; call it after every commit."""
        if self._unindexed_since is None:
            self._unindexed_since = self.clock.now()
        self._wake.set()

    def lag_s(self) -> float:
        """How long the oldest commit this node notified about has been waiting for the index (0: none)."""
        pending = [t for t in (self._covering_since, self._unindexed_since) if t is not None]
        return max(0.0, (self.clock.now() - min(pending)).total_seconds()) if pending else 0.0

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="kefu-search-indexer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> bool:
        """Index one batch; whether more may be waiting (the batch was full)."""
        async with self._lock:
            return await self._pass()

    async def wait_idle(self) -> None:
        """Return once everything committed before this call is searchable (tests, `kefu export --q`)."""
        while await self.run_once():
            pass

    async def _pass(self) -> bool:
        async with self.db.read() as tx:
            batch = await search_store.pending_documents(tx, self.batch, self._seen)
        if batch.empty:
            self._seen = batch.seen or self._seen
            return False
        terms = await asyncio.to_thread(_segment, [doc.text for doc in batch.documents])
        async with self.db.transaction() as tx:
            await search_store.lock_index(tx)
            self.documents += await search_store.store_documents(tx, batch, terms)
        self._seen = batch.seen
        return batch.full

    async def _wait_for_work(self) -> None:
        """Until notified (or the safety-net interval passed), and the minimum interval since the last pass."""
        timer = self.clock.call_later(self.interval_s, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()
        if not self._gate.is_set():
            self.held.set()
            await self._gate.wait()
            self.held.clear()
        self._wake.clear()
        if self.min_interval_s > 0:
            self._gate.clear()
            self.clock.call_later(self.min_interval_s, self._gate.set)

    async def _run(self) -> None:
        await asyncio.to_thread(search_store.initialize)  # jieba's dictionary: about a second, off the loop
        while True:
            await self._wait_for_work()
            # Every commit notified before the pass's first read is covered by it.
            self._covering_since, self._unindexed_since = self._unindexed_since, None
            try:
                while await self.run_once():
                    pass  # a full batch: more may be waiting
                self.passes += 1
            except asyncio.CancelledError:
                raise
            except errors.Unavailable:  # logged once as an outage by the database: try again on the next wake
                pass
            except Exception:  # the database went away for a moment, …: try again on the next wake
                log.exception("search indexing pass failed")
                if self._covering_since is not None:
                    waiting = [t for t in (self._covering_since, self._unindexed_since) if t is not None]
                    self._unindexed_since = min(waiting)
            finally:
                self._covering_since = None
