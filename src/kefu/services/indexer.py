"""The search indexer: segments new messages and conversation contexts after they commit, in batches.

The send path never segments text. It (or anything else that commits searchable text) calls `notify()`,
which wakes this task; a pass also runs every `interval_s` as a safety net, so a missed notify costs at most
that much lag. A pass reads what was committed past the high-water marks (storage/search.py), segments it
in a worker thread with no database connection held, then stores the terms and the new marks in one short
transaction. Passes are idempotent and serialised (PostgreSQL: an advisory lock), so every node may run one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kefu import errors
from kefu.storage import Database
from kefu.storage import search as search_store

log = logging.getLogger(__name__)


def _segment(texts: list[str]) -> list[list[str]]:
    return [search_store.terms_of(text) if text.strip() else [] for text in texts]


class SearchIndexer:
    def __init__(self, db: Database, interval_s: float = 0.5, batch: int = 500) -> None:
        self.db, self.interval_s, self.batch = db, interval_s, batch
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one pass at a time in this process
        self._task: asyncio.Task[None] | None = None
        self._seen: dict[str, search_store.Mark] = {}  # PostgreSQL: the forward cursor (storage/search.py)

    def notify(self) -> None:
        """Something searchable was committed: index it soon. Cheap; call it after every commit."""
        self._wake.set()

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
            await search_store.store_documents(tx, batch, terms)
        self._seen = batch.seen
        return batch.full

    async def _run(self) -> None:
        await asyncio.to_thread(search_store.initialize)  # jieba's dictionary: about a second, off the loop
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()
            try:
                while await self.run_once():
                    pass  # a full batch: more may be waiting
            except asyncio.CancelledError:
                raise
            except errors.Unavailable:  # logged once as an outage by the database: try again on the next wake
                pass
            except Exception:  # the database went away for a moment, …: try again on the next wake
                log.exception("search indexing pass failed")
