"""The store: the one place that speaks SQL. Everything else speaks typed objects.

``Store`` (``api.py``) is the interface callers depend on; ``open_store`` gives the SQLite
implementation. Rows are the frozen dataclasses of ``models.py``.
"""

from __future__ import annotations

from pathlib import Path

from dialerd.store.api import Store
from dialerd.store.sqlite import SqliteStore


async def open_store(path: str | Path) -> Store:
    """Open the store at `path` (":memory:" for a throwaway one)."""
    return await SqliteStore.open(path)


__all__ = ["SqliteStore", "Store", "open_store"]
