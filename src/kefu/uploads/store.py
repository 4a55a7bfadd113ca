"""The file-store interface: put, open, delete by an opaque key kefu makes (never a client's file name).

Local disk is the default (`LocalFileStore`); an S3-compatible store implements the same three methods.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol


class StoredFileMissing(Exception):
    """The store has nothing under a key the database names (deleted by hand, or a lost disk)."""


class FileStore(Protocol):
    async def put(self, key: str, source: Path) -> None:
        """Store the file at `source` (a finished temporary file) under `key`, replacing nothing."""
        ...

    def open(self, key: str, chunk_size: int = 64 * 1024) -> AsyncIterator[bytes]:
        """The bytes under `key`, a chunk at a time; raises StoredFileMissing (on the first iteration)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key`; removing a missing key is not an error."""
        ...

    def scratch_dir(self) -> Path:
        """A local directory for an upload's temporary file while it is checked."""
        ...
