"""SQLite database files on disk, without SQLAlchemy: what both the store's engine
(``tracker.store.engine``) and the light read path (``tracker.store.lite``) ask of a file."""

from __future__ import annotations

import os
from pathlib import Path


def folder_writable(path: Path) -> bool:
    """Whether SQLite can make its WAL index (``-wal``, ``-shm``) beside ``path``: the folder is
    writable and not on a read-only mount. A read-only folder means the file opens immutable."""
    folder = path.resolve().parent
    return os.access(folder, os.W_OK) and not os.statvfs(folder).f_flag & os.ST_RDONLY
