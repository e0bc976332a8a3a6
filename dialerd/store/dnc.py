"""SQL for the do-not-call list (R-DL-4): global across campaigns."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from dialerd.store.base import SqlBase, chunks, placeholders
from dialerd.store.models import DncEntry


class DncSql(SqlBase):
    """DNC numbers; adding one also takes matching leads out of every queue."""

    async def add_dnc(self, entries: Iterable[DncEntry]) -> tuple[int, int]:
        """Add numbers (existing ones keep their first reason); (new numbers, leads blocked)."""
        rows = [(e.number, e.reason, e.source, e.added_at) for e in entries]
        async with self._tx() as db:
            before = db.total_changes
            await db.executemany(
                "INSERT OR IGNORE INTO dnc(number, reason, source, added_at) VALUES (?, ?, ?, ?)",
                rows,
            )
            added = db.total_changes - before
            blocked = 0
            for part in chunks(sorted({r[0] for r in rows})):
                cur = await db.execute(
                    "UPDATE leads SET status = 'dnc' WHERE status NOT IN ('done', 'dnc')"
                    f" AND number IN ({placeholders(len(part))})",
                    tuple(part),
                )
                blocked += cur.rowcount
        return added, blocked

    async def remove_dnc(self, numbers: Iterable[str]) -> int:
        """Remove numbers from the list (leads stay 'dnc' until an admin re-queues them)."""
        removed = 0
        async with self._tx() as db:
            for part in chunks(sorted(set(numbers))):
                cur = await db.execute(
                    f"DELETE FROM dnc WHERE number IN ({placeholders(len(part))})", tuple(part)
                )
                removed += cur.rowcount
        return removed

    async def dnc_subset(self, numbers: Iterable[str]) -> set[str]:
        """The subset of `numbers` on the DNC list."""
        found: set[str] = set()
        for part in chunks(sorted(set(numbers))):
            rows = await self._all(
                f"SELECT number FROM dnc WHERE number IN ({placeholders(len(part))})",
                tuple(part),
            )
            found.update(r[0] for r in rows)
        return found

    async def iter_dnc(self) -> AsyncIterator[DncEntry]:
        """The whole DNC list, by number, fetched in pages."""
        last = ""
        while True:
            rows = await self._all(
                "SELECT number, reason, source, added_at FROM dnc WHERE number > ?"
                " ORDER BY number LIMIT 5000",
                (last,),
            )
            if not rows:
                return
            for r in rows:
                yield DncEntry(r[0], r[1], r[2], r[3])
            last = rows[-1][0]
