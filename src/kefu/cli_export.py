"""`kefu export`: the archive as NDJSON (one protocol §4 record a line), with a progress bar on stderr.

The same filters as `GET /api/v1/export`; memory stays flat whatever the archive's size (records are read
a batch of conversations at a time and written as they come).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Annotated, BinaryIO

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from kefu import errors
from kefu.config import Settings
from kefu.domain.models import Actor
from kefu.services.archive import ArchiveService, make_filter
from kefu.services.indexer import SearchIndexer
from kefu.storage.migrate import open_app_database


async def export_archive(
    settings: Settings, app_id: str, start: str | None, end: str | None, q: str | None, out: BinaryIO, quiet: bool
) -> int:
    """Write every matching record of `app_id` to `out`; the number written."""
    db = await open_app_database(settings.db, app_id)
    try:
        flt = make_filter(Actor("api_key", app_id, "cli", "admin"), start, end, q)
        if flt.q:  # what the server's indexer has not reached yet (or no server runs): index it first
            await SearchIndexer(db).wait_idle()
        archive = ArchiveService(db)
        total = await archive.count(flt)
        written = 0
        columns = (
            TextColumn("exporting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=Console(stderr=True), disable=quiet, transient=False) as progress:
            task = progress.add_task("export", total=total)
            async for record in archive.export(flt):
                out.write(orjson.dumps(record) + b"\n")
                written += 1
                progress.advance(task)
        out.flush()
        return written
    finally:
        await db.dispose()


def export(
    app: Annotated[str, typer.Option("--app", help="app_id")],
    start: Annotated[str | None, typer.Option("--from", help="ISO-8601 time, inclusive")] = None,
    end: Annotated[str | None, typer.Option("--to", help="ISO-8601 time, exclusive")] = None,
    q: Annotated[str | None, typer.Option("--q", help="keyword, Chinese or English")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="file to write (default: stdout)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
    db: Annotated[str | None, typer.Option("--db", help="sqlite:///kefu.db or postgresql://… (env KEFU_DB)")] = None,
) -> None:
    """Export an app's archive as NDJSON, one conversation record a line (protocol §4)."""
    try:
        settings = Settings(db=db) if db else Settings()
    except ValidationError as exc:
        message = str(exc.errors()[0].get("msg", "invalid setting")).removeprefix("Value error, ")
        raise errors.BadRequest(message) from None
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(output.open("wb")) if output else sys.stdout.buffer
        count = asyncio.run(export_archive(settings, app, start, end, q, out, quiet))
    if output:
        sys.stderr.write(f"kefu: exported {count} conversations to {output}\n")
