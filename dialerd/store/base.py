"""What every SQL mixin of the SQLite store shares: the connection and the write lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosqlite


class SqlBase:
    """One aiosqlite connection plus a lock that serialises write transactions.

    aiosqlite runs one thread per connection; two coroutines interleaving BEGIN/COMMIT on it
    would mix their statements into one transaction, so writers take the lock.
    """

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction: committed on success, rolled back on any exception."""
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _one(self, sql: str, params: tuple[object, ...] = ()) -> aiosqlite.Row | None:
        async with self._db.execute(sql, params) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, params: tuple[object, ...] = ()) -> list[aiosqlite.Row]:
        async with self._db.execute(sql, params) as cur:
            return list(await cur.fetchall())


def placeholders(n: int) -> str:
    """``?, ?, ?`` for an IN list of `n` values."""
    return ", ".join("?" * n)


def chunks(items: list[str], size: int = 500) -> list[list[str]]:
    """Split a list for IN lists below SQLite's variable limit."""
    return [items[i : i + size] for i in range(0, len(items), size)]
