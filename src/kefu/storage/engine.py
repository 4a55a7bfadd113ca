"""The database engine: SQLite (WAL) or PostgreSQL (asyncpg); every difference between the two lives here."""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kefu import errors
from kefu.outages import OutageLog

log = logging.getLogger(__name__)

Tx = AsyncConnection
# PostgreSQL refuses text holding NUL characters (SQLite keeps it): bad input from a client, not a server fault.
UNSTORABLE_TEXT = frozenset({"22021", "22P05"})  # character_not_in_repertoire, untranslatable_character
# The server is going away, starting up or full: a client retries later (class 08 is "connection exception").
SERVER_GONE = frozenset({"57P01", "57P02", "57P03", "53300"})  # admin/crash shutdown, cannot connect now, too many


def async_url(url: str) -> str:
    """Plain `sqlite:///x.db` / `postgresql://…` URLs as the async driver wants them."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"Database URL scheme '{parsed.drivername}' is not sqlite or postgresql")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling would start a transaction only at the first write, so a
    # read-then-write is not atomic across processes; kefu issues BEGIN itself (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an acked message survives a power cut, not only kill -9
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    # Writers take the write lock up front: a deferred transaction that later writes can fail at once
    # with SQLITE_BUSY when another process wrote meanwhile, where IMMEDIATE waits for busy_timeout.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("kefu_write") else "BEGIN")


def sqlite_sync_engine(url: str) -> sa.Engine:
    """A plain (pysqlite) engine on the same file, for work run on a thread of its own (the message writer)."""
    plain = make_url(url).set(drivername="sqlite").render_as_string(hide_password=False)
    engine = sa.create_engine(plain, pool_size=1, max_overflow=0, connect_args={"check_same_thread": False})
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


@contextlib.contextmanager
def refusing_unstorable_text() -> Iterator[None]:
    """Text the database cannot store raises `BadRequest` (400), not a driver error (500)."""
    try:
        yield
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) in UNSTORABLE_TEXT:
            raise errors.BadRequest("Text may not contain NUL characters (\\u0000).") from exc
        raise


UNREACHABLE = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})


def is_outage(exc: BaseException) -> bool:
    """The database is out of reach (down, restarting, connection cut), as opposed to refusing a statement.

    Seen raw from the driver when connecting (`ConnectionRefusedError`, asyncpg's `CannotConnectNowError`)
    and wrapped by SQLAlchemy once a connection in use is cut (`connection_invalidated`).
    """
    if isinstance(exc, ConnectionError | TimeoutError | PoolTimeout | socket.gaierror):
        return True
    if isinstance(exc, OSError):  # other OS errors (a full disk...) are not the database's absence
        return exc.errno in UNREACHABLE
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.exceptions.ConnectionDoesNotExistError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return exc.sqlstate in SERVER_GONE
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        state = str(getattr(exc.orig, "sqlstate", None) or "")
        return state.startswith("08") or state in SERVER_GONE
    return False


class Database:
    """One engine and the transaction boundary every service uses."""

    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.url = async_url(url)
        self.outage = OutageLog(log, "the database")
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            # One connection: SQLite has one writer anyway, and this keeps "database is locked" out of the process.
            self.engine: AsyncEngine = create_async_engine(self.url, pool_size=1, max_overflow=0, pool_timeout=60)
            sa.event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            sa.event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        else:
            # Each node holds at most 3 x pool_size connections: size it so that nodes x that < max_connections.
            self.engine = create_async_engine(
                self.url, pool_size=pool_size, max_overflow=2 * pool_size, pool_pre_ping=True
            )

    @contextlib.contextmanager
    def reporting_outages(self) -> Iterator[None]:
        """Losing the database raises `Unavailable` (503, retry) instead of a driver error, logged as an outage."""
        try:
            yield
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.outage.failed(exc)
            raise errors.Unavailable() from exc
        self.outage.succeeded()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A connection in a transaction: committed on exit, rolled back on error."""
        with self.reporting_outages(), refusing_unstorable_text():
            async with self.engine.connect() as conn:
                await conn.execution_options(kefu_write=True)
                async with conn.begin():
                    yield conn

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """A connection for reads (no commit needed)."""
        with self.reporting_outages(), refusing_unstorable_text():
            async with self.engine.connect() as conn:
                yield conn

    def for_update(self, query: sa.Select[Any]) -> sa.Select[Any]:
        """Lock the selected rows until commit (PostgreSQL); SQLite serialises writers by itself."""
        return query if self.is_sqlite else query.with_for_update()

    async def dispose(self) -> None:
        await self.engine.dispose()
