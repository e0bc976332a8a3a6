"""The SQLite implementation of `dialerd.store.api.Store`."""

from __future__ import annotations

from pathlib import Path

from dialerd.store.campaigns import CampaignsSql
from dialerd.store.db import open_db
from dialerd.store.dnc import DncSql
from dialerd.store.flow import FlowSql
from dialerd.store.leads import LeadsSql
from dialerd.store.people import PeopleSql


class SqliteStore(CampaignsSql, LeadsSql, DncSql, PeopleSql, FlowSql):
    """One migrated SQLite database (WAL, foreign keys on) behind the `Store` interface."""

    @classmethod
    async def open(cls, path: str | Path) -> SqliteStore:
        """Open (creating and migrating as needed) the database at `path`."""
        return cls(await open_db(path))

    async def close(self) -> None:
        """Close the connection (WAL is checkpointed by SQLite on the last close)."""
        await self._db.close()
