"""What every SQL mixin of the SQLite store shares: the connection and the write lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

import aiosqlite

T = TypeVar("T")


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
        rows = await self._db.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def _all(
        self, sql: str, params: tuple[object, ...] | dict[str, object] = ()
    ) -> list[aiosqlite.Row]:
        """All rows, fetched in one trip to the connection's thread."""
        return list(await self._db.execute_fetchall(sql, params))


def placeholders(n: int) -> str:
    """``?, ?, ?`` for an IN list of `n` values."""
    return ", ".join("?" * n)


def chunks(items: Sequence[T], size: int = 500) -> list[Sequence[T]]:
    """Split a list for IN lists below SQLite's variable limit."""
    return [items[i : i + size] for i in range(0, len(items), size)]
