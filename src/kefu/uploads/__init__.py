"""Where uploaded bytes live: a small file-store interface and its local-disk implementation."""

from kefu.uploads.local import LocalFileStore
from kefu.uploads.store import FileStore, StoredFileMissing

__all__ = ["FileStore", "LocalFileStore", "StoredFileMissing"]
