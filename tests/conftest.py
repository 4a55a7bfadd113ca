"""Fixtures: every database test runs on SQLite, and on PostgreSQL too when KEFU_TEST_PG is set.

KEFU_TEST_PG is a URL of a PostgreSQL server whose user may create databases, e.g.
postgresql://postgres@127.0.0.1:5432/postgres; each test gets a fresh database, dropped after.

A test skips only when a service it needs is missing: PostgreSQL (KEFU_TEST_PG), Redis (KEFU_TEST_REDIS) or
Debian's Chromium (the browser tests). CI has all three and sets KEFU_TEST_NO_SKIPS=1: there a skip is a failure
that names its reason, so a test can never quietly stop running.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.helpers import Node, running_node
from tests.security.reporting import LINES as REPORTED

PG_URL = os.environ.get("KEFU_TEST_PG")
REDIS_URL = os.environ.get("KEFU_TEST_REDIS")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
NO_SKIPS = os.environ.get("KEFU_TEST_NO_SKIPS") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="no PostgreSQL: set KEFU_TEST_PG=postgresql://user@host:port/db to run this")
    skip_redis = pytest.mark.skip(
        reason="no PostgreSQL and Redis: set KEFU_TEST_PG and KEFU_TEST_REDIS=redis://host:6379/15 to run this"
    )
    for item in items:
        if "postgresql" in item.keywords and not PG_URL:
            item.add_marker(skip)
        if "redis" in item.keywords and not (REDIS_URL and PG_URL):
            item.add_marker(skip_redis)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    """With KEFU_TEST_NO_SKIPS=1 (CI, where every service is there) a skipped test is reported as failed."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if NO_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, and KEFU_TEST_NO_SKIPS=1 forbids skips: {skip_reason(report.longrepr)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, None, None]:
    """The same for a whole module skipped while it is collected."""
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()  # type: ignore[attr-defined]
    if NO_SKIPS and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped, and KEFU_TEST_NO_SKIPS=1 forbids skips: {skip_reason(report.longrepr)}"


def skip_reason(longrepr: object) -> str:
    """The reason out of a skip's report (a (path, line, "Skipped: reason") tuple)."""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures security checks reported (tests/security/reporting.py), so CI output shows them."""
    if REPORTED:
        terminalreporter.section("security checks")
        for line in REPORTED:
            terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgresql: runs against the PostgreSQL server in KEFU_TEST_PG")
    config.addinivalue_line("markers", "redis: several nodes sharing KEFU_TEST_PG and the Redis in KEFU_TEST_REDIS")


@pytest.fixture(params=BACKENDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'kefu.db'}"
        return
    assert PG_URL is not None
    async with fresh_pg_database() as url:
        yield url


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kefu.db'}"


class fresh_pg_database:
    """`async with fresh_pg_database() as url`: a new database on the KEFU_TEST_PG server, dropped after."""

    def __init__(self) -> None:
        assert PG_URL is not None
        self.admin = make_url(PG_URL)
        self.name = f"kefu_test_{uuid.uuid4().hex[:12]}"

    def _dsn(self, database: str) -> str:
        return self.admin.set(drivername="postgresql", database=database).render_as_string(hide_password=False)

    async def __aenter__(self) -> str:
        conn = await asyncpg.connect(self._dsn(self.admin.database or "postgres"))
        try:
            await conn.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await conn.close()
        return self._dsn(self.name)

    async def __aexit__(self, *_exc: object) -> None:
        conn = await asyncpg.connect(self._dsn(self.admin.database or "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture
async def node(db_url: str) -> AsyncIterator[Node]:
    async with running_node(db_url) as running:
        yield running
