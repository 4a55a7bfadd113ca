"""Storage tests run on a fresh, migrated database: SQLite, and PostgreSQL too when KEFU_TEST_PG is set."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kefu.storage import Database
from kefu.storage.migrate import migrate


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await migrate(database)
    try:
        yield database
    finally:
        await database.dispose()
