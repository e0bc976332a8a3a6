"""SQL for the call log's own needs (R-LOG-1..6): race-free caller registration, the
finished-call upsert, filtered/sorted call-log queries, per-extension summaries and the
recordings' metadata and retention.

`CallLogSql` is a mixin over the same connection as the rest of the SQLite store;
`CallLogStore` is the SQLite store with it mixed in (what the inbound handlers, the
recorder and the ``dialerd calls``/``dialerd recordings`` commands open).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import aiosqlite

from dialerd.store.base import SqlBase, chunks, placeholders
from dialerd.store.db import open_db
from dialerd.store.models import CallEntry, CallStatus, ClientType, Contact, Direction
from dialerd.store.sqlite import SqliteStore

__all__ = [
    "CallFilter",
    "CallLogSql",
    "CallLogStore",
    "CallRow",
    "ExtensionSummary",
    "RecordingRow",
    "SortKey",
]


class SortKey(StrEnum):
    """Columns the call log may be sorted by (a whitelist: never SQL from the user)."""

    STARTED = "started"
    DURATION = "duration"
    EXTENSION = "extension"
    NUMBER = "number"
    CLIENT = "client"
    STATUS = "status"
    DIRECTION = "direction"


_SORT_SQL = {
    SortKey.STARTED: "l.started_at",
    SortKey.DURATION: "COALESCE(l.duration_seconds, 0)",
    SortKey.EXTENSION: "COALESCE(l.extension, '')",
    SortKey.NUMBER: "l.number",
    SortKey.CLIENT: "COALESCE(c.name, '')",
    SortKey.STATUS: "l.status",
    SortKey.DIRECTION: "l.direction",
}


@dataclass(frozen=True)
class CallRow:
    """One call-log line with the client's name and the recording link (R-LOG-1)."""

    id: int
    uniqueid: str | None
    direction: Direction
    status: CallStatus
    number: str
    caller_id: str | None
    dialed: str | None
    extension: str | None
    agent: str | None
    contact_id: int | None
    client_name: str | None
    client_type: str | None
    started_at: float
    answered_at: float | None
    ended_at: float | None
    duration_seconds: float | None
    too_long: bool
    fallback: str | None
    recording_id: int | None
    recording_path: str | None
    recording_error: str | None


@dataclass(frozen=True)
class CallFilter:
    """What `CallLogSql.query_calls` selects; None means "any"."""

    since: float | None = None
    until: float | None = None
    direction: Direction | None = None
    status: CallStatus | None = None
    extension: str | None = None
    contact_id: int | None = None
    client: str | None = None  # substring of the client's name, or an exact number
    too_long: bool | None = None
    sort: SortKey = SortKey.STARTED
    descending: bool = True
    limit: int = 10_000


@dataclass(frozen=True)
class ExtensionSummary:
    """One extension's day (``dialerd calls summary --day``)."""

    extension: str
    calls: int
    inbound: int
    outbound: int
    answered: int
    missed: int
    unknown: int
    talk_seconds: float
    too_long: int


@dataclass(frozen=True)
class RecordingRow:
    """A recording's metadata (R-LOG-6)."""

    id: int
    call_id: int
    path: str
    started_at: float
    duration_seconds: float | None
    size_bytes: int | None
    sha256: str | None
    agent: str | None
    downloaded: bool
    downloaded_at: float | None


_BUSY_RETRIES = 8
# A client's own employee (client_agents), else the agent its most recent linked lead has.
_LINKED_AGENT = (
    "COALESCE((SELECT agent FROM client_agents WHERE contact_id = c.id),"
    " (SELECT linked_agent FROM leads WHERE contact_id = c.id AND linked_agent IS NOT NULL"
    " ORDER BY linked_at DESC LIMIT 1))"
)
_CALL_SELECT = (
    "SELECT l.id, l.uniqueid, l.direction, l.status, l.number, l.caller_id, l.dialed,"
    " l.extension, l.agent, l.contact_id, c.name, COALESCE(l.client_type, c.client_type),"
    " l.started_at, l.answered_at, l.ended_at, l.duration_seconds, l.too_long, l.fallback,"
    " r.id, r.path, l.recording_error"
    " FROM call_log l LEFT JOIN contacts c ON c.id = l.contact_id"
    " LEFT JOIN recordings r ON r.id = (SELECT MAX(id) FROM recordings WHERE call_id = l.id)"
)
_REC_COLS = (
    "id, call_id, path, started_at, duration_seconds, size_bytes, sha256, agent, downloaded,"
    " downloaded_at"
)


def _rec(r: aiosqlite.Row) -> RecordingRow:
    return RecordingRow(
        id=r[0],
        call_id=r[1],
        path=r[2],
        started_at=r[3],
        duration_seconds=r[4],
        size_bytes=r[5],
        sha256=r[6],
        agent=r[7],
        downloaded=bool(r[8]),
        downloaded_at=r[9],
    )


async def _existing(
    db: aiosqlite.Connection, table: str, column: str, value: str | int | None
) -> str | int | None:
    """`value` if a row of `table` has it in `column` (table/column are constants)."""
    if value is None:
        return None
    async with db.execute(f"SELECT 1 FROM {table} WHERE {column} = ?", (value,)) as cur:
        return value if await cur.fetchone() is not None else None


class CallLogSql(SqlBase):
    """The call log's queries and writes; parameterised SQL only."""

    # ------------------------------------------------------------------ callers
    async def register_caller(
        self, number: str, name: str, client_type: ClientType, note: str = ""
    ) -> tuple[Contact, bool]:
        """The client known by `number`, registering a new one if there is none (R-LOG-4).

        Race-free under concurrent calls, across connections and processes: the check
        and the insert share one ``BEGIN IMMEDIATE`` transaction (SQLite's write lock),
        and ``contact_numbers.number`` is the primary key, so a second registration of
        the same number inserts nothing (``ON CONFLICT DO NOTHING``) and rolls back.
        Returns (contact, created).

        SQLite answers BEGIN IMMEDIATE with SQLITE_BUSY at once, without waiting, when a
        read on this shared connection still holds a snapshot another process has since
        written past; that is retried (a few times, jittered), as waiting cannot help.
        """
        for attempt in range(_BUSY_RETRIES):
            try:
                return await self._register(number, name, client_type, note)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == _BUSY_RETRIES - 1:
                    raise
                await asyncio.sleep(random.uniform(0.005, 0.02) * (attempt + 1))
        raise AssertionError("unreachable")

    async def _register(
        self, number: str, name: str, client_type: ClientType, note: str
    ) -> tuple[Contact, bool]:
        async with self._tx() as db:
            async with db.execute(
                "SELECT contact_id FROM contact_numbers WHERE number = ?", (number,)
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                async with db.execute(
                    "INSERT INTO contacts(name, client_type, note, created_at)"
                    " VALUES (?, ?, ?, strftime('%s', 'now')) RETURNING id",
                    (name, client_type.value, note),
                ) as cur:
                    new = await cur.fetchone()
                assert new is not None
                inserted = await db.execute(
                    "INSERT INTO contact_numbers(number, contact_id) VALUES (?, ?)"
                    " ON CONFLICT(number) DO NOTHING",
                    (number, new[0]),
                )
                if inserted.rowcount == 1:
                    return Contact(int(new[0]), name, client_type, note, (number,)), True
                await db.execute("DELETE FROM contacts WHERE id = ?", (new[0],))
        found = await self.lookup_number(number)
        assert found is not None
        return found, False

    async def import_contacts(
        self, rows: Iterable[tuple[str, str, ClientType]], batch: int = 50_000
    ) -> int:
        """Bulk-register clients (number, name, type), e.g. a CRM export; numbers already
        known are skipped. One transaction per batch; returns how many were added."""
        added = 0
        pending: list[tuple[str, str, ClientType]] = []
        for row in rows:
            pending.append(row)
            if len(pending) >= batch:
                added += await self._import_batch(pending)
                pending = []
        if pending:
            added += await self._import_batch(pending)
        return added

    async def _import_batch(self, rows: list[tuple[str, str, ClientType]]) -> int:
        async with self._tx() as db:
            known: set[str] = set()
            numbers = list(dict.fromkeys(r[0] for r in rows))
            for part in chunks(numbers):
                marks = placeholders(len(part))
                async with db.execute(
                    f"SELECT number FROM contact_numbers WHERE number IN ({marks})", part
                ) as cur:
                    known.update(r[0] for r in await cur.fetchall())
            async with db.execute("SELECT COALESCE(MAX(id), 0) FROM contacts") as cur:
                top = await cur.fetchone()
            next_id = int(top[0]) + 1 if top else 1
            fresh: dict[str, tuple[int, str, ClientType]] = {}
            for number, name, client_type in rows:
                if number not in known and number not in fresh:
                    fresh[number] = (next_id + len(fresh), name, client_type)
            await db.executemany(
                "INSERT INTO contacts(id, name, client_type, note, created_at)"
                " VALUES (?, ?, ?, 'imported', strftime('%s', 'now'))",
                [(i, name, kind.value) for i, name, kind in fresh.values()],
            )
            await db.executemany(
                "INSERT INTO contact_numbers(number, contact_id) VALUES (?, ?)",
                [(number, i) for number, (i, _, _) in fresh.items()],
            )
        return len(fresh)

    async def lookup_number(self, number: str) -> Contact | None:
        """Caller-ID lookup in one query."""
        found = await self.lookup_caller(number)
        return found[0] if found else None

    async def lookup_caller(self, number: str) -> tuple[Contact, str | None] | None:
        """The client known by `number` and its linked agent, in one query: the inbound
        hot path (bench/lookup.py)."""
        row = await self._one(
            "SELECT c.id, c.name, c.client_type, c.note,"
            " (SELECT group_concat(number) FROM contact_numbers WHERE contact_id = c.id),"
            f" {_LINKED_AGENT}"
            " FROM contact_numbers n JOIN contacts c ON c.id = n.contact_id WHERE n.number = ?",
            (number,),
        )
        if row is None:
            return None
        numbers = tuple(sorted(str(row[4] or number).split(",")))
        return Contact(int(row[0]), row[1], ClientType(row[2]), row[3], numbers), row[5]

    async def linked_agent(self, contact_id: int) -> str | None:
        """The employee a client belongs to: its explicit owner, else the agent a
        campaign most recently linked one of its leads to (R-RC-6)."""
        row = await self._one(
            f"SELECT {_LINKED_AGENT} FROM contacts c WHERE c.id = ?", (contact_id,)
        )
        return str(row[0]) if row and row[0] else None

    async def set_client_agent(self, contact_id: int, agent: str | None) -> None:
        """Make `agent` the client's own employee (None: remove the link)."""
        async with self._tx() as db:
            if agent is None:
                await db.execute("DELETE FROM client_agents WHERE contact_id = ?", (contact_id,))
            else:
                await db.execute(
                    "INSERT INTO client_agents(contact_id, agent) VALUES (?, ?)"
                    " ON CONFLICT(contact_id) DO UPDATE SET agent = excluded.agent",
                    (contact_id, agent),
                )

    # ------------------------------------------------------------------ calls
    async def save_call(self, call: CallEntry) -> int:
        """Store a finished call, or complete the row already logged under its uniqueid
        (an outbound attempt logged at dial time); returns the call id."""
        async with self._tx() as db:
            # References the log cannot vouch for are dropped rather than losing the call:
            # an employee only in YAML (the extension says who), a lead or client deleted
            # meanwhile or never known to this database.
            agent = await _existing(db, "agents", "user_id", call.agent)
            lead_id = await _existing(db, "leads", "id", call.lead_id)
            contact_id = await _existing(db, "contacts", "id", call.contact_id)
            async with db.execute(
                "INSERT INTO call_log(uniqueid, direction, status, number, caller_id, dialed,"
                " extension, agent, contact_id, client_type, lead_id, started_at, answered_at,"
                " ended_at, duration_seconds, too_long, fallback)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(uniqueid) DO UPDATE SET status = excluded.status,"
                " caller_id = COALESCE(excluded.caller_id, caller_id),"
                " dialed = COALESCE(excluded.dialed, dialed),"
                " extension = COALESCE(excluded.extension, extension),"
                " agent = COALESCE(excluded.agent, agent),"
                " contact_id = COALESCE(excluded.contact_id, contact_id),"
                " client_type = COALESCE(excluded.client_type, client_type),"
                " answered_at = excluded.answered_at, ended_at = excluded.ended_at,"
                " duration_seconds = excluded.duration_seconds, too_long = excluded.too_long,"
                " fallback = excluded.fallback RETURNING id",
                (
                    call.linkedid,
                    call.direction.value,
                    call.status.value,
                    call.number,
                    call.caller_id,
                    call.dialed,
                    call.extension,
                    agent,
                    contact_id,
                    call.client_type.value if call.client_type else None,
                    lead_id,
                    call.started_at,
                    call.answered_at,
                    call.ended_at,
                    call.duration_seconds,
                    int(call.too_long),
                    call.fallback,
                ),
            ) as cur:
                row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def note_recording_error(self, call_id: int, error: str) -> None:
        """Say on the call why its recording is missing (never lost silently)."""
        async with self._tx() as db:
            await db.execute(
                "UPDATE call_log SET recording_error = ? WHERE id = ?", (error[:500], call_id)
            )

    async def query_calls(self, f: CallFilter) -> list[CallRow]:
        """The call log filtered and sorted (R-LOG-2); ties broken by id."""
        where = ["1 = 1"]
        params: list[object] = []
        if f.since is not None:
            where.append("l.started_at >= ?")
            params.append(f.since)
        if f.until is not None:
            where.append("l.started_at < ?")
            params.append(f.until)
        for column, value in (
            ("l.direction", f.direction.value if f.direction else None),
            ("l.status", f.status.value if f.status else None),
            ("l.extension", f.extension),
            ("l.contact_id", f.contact_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if f.client:
            where.append("(c.name LIKE ? ESCAPE '\\' OR l.number = ?)")
            escaped = f.client.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params += [f"%{escaped}%", f.client]
        if f.too_long is not None:
            where.append("l.too_long = ?")
            params.append(int(f.too_long))
        order = "DESC" if f.descending else "ASC"
        sql = (
            f"{_CALL_SELECT} WHERE {' AND '.join(where)}"
            f" ORDER BY {_SORT_SQL[f.sort]} {order}, l.id {order} LIMIT ?"
        )
        rows = await self._all(sql, (*params, f.limit))
        return [
            CallRow(
                id=r[0],
                uniqueid=r[1],
                direction=Direction(r[2]),
                status=CallStatus(r[3]),
                number=r[4],
                caller_id=r[5],
                dialed=r[6],
                extension=r[7],
                agent=r[8],
                contact_id=r[9],
                client_name=r[10],
                client_type=r[11],
                started_at=r[12],
                answered_at=r[13],
                ended_at=r[14],
                duration_seconds=r[15],
                too_long=bool(r[16]),
                fallback=r[17],
                recording_id=r[18],
                recording_path=r[19],
                recording_error=r[20],
            )
            for r in rows
        ]

    async def extension_summary(self, since: float, until: float) -> list[ExtensionSummary]:
        """Per extension, the calls started in [since, until) ("-" for no extension)."""
        rows = await self._all(
            "SELECT COALESCE(extension, '-'), COUNT(*), SUM(direction = 'in'),"
            " SUM(direction = 'out'), SUM(status = 'answered'), SUM(status = 'missed'),"
            " SUM(status = 'unknown'),"
            " COALESCE(SUM(CASE WHEN status = 'answered' THEN duration_seconds END), 0),"
            " SUM(too_long) FROM call_log WHERE started_at >= ? AND started_at < ?"
            " GROUP BY 1 ORDER BY 1",
            (since, until),
        )
        return [
            ExtensionSummary(
                extension=r[0],
                calls=int(r[1]),
                inbound=int(r[2]),
                outbound=int(r[3]),
                answered=int(r[4]),
                missed=int(r[5]),
                unknown=int(r[6]),
                talk_seconds=float(r[7]),
                too_long=int(r[8]),
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ recordings
    async def add_recording_file(
        self,
        call_id: int,
        path: str,
        started_at: float,
        duration_seconds: float | None,
        size_bytes: int,
        sha256: str,
        agent: str | None,
    ) -> int:
        """Register a finished recording with its metadata; its id."""
        async with (
            self._tx() as db,
            db.execute(
                "INSERT INTO recordings(call_id, path, started_at, duration_seconds, size_bytes,"
                " sha256, agent) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (call_id, path, started_at, duration_seconds, size_bytes, sha256, agent),
            ) as cur,
        ):
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def get_recording(self, recording_id: int) -> RecordingRow | None:
        row = await self._one(f"SELECT {_REC_COLS} FROM recordings WHERE id = ?", (recording_id,))
        return _rec(row) if row else None

    async def list_recordings(
        self, since: float | None = None, until: float | None = None, limit: int = 10_000
    ) -> list[RecordingRow]:
        """Recordings started in [since, until), newest first."""
        rows = await self._all(
            f"SELECT {_REC_COLS} FROM recordings WHERE (? IS NULL OR started_at >= ?)"
            " AND (? IS NULL OR started_at < ?) ORDER BY started_at DESC, id DESC LIMIT ?",
            (since, since, until, until, limit),
        )
        return [_rec(r) for r in rows]

    async def set_downloaded(self, recording_id: int, at: float) -> None:
        """Set the downloaded flag (R-LOG-6) and when."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE recordings SET downloaded = 1, downloaded_at = COALESCE(downloaded_at, ?)"
                " WHERE id = ?",
                (at, recording_id),
            )
            if not cur.rowcount:
                raise KeyError(f"no recording {recording_id}")

    async def delete_recordings(self, ids: Sequence[int]) -> None:
        """Forget recordings whose files the retention policy removed."""
        async with self._tx() as db:
            await db.executemany("DELETE FROM recordings WHERE id = ?", [(i,) for i in ids])


class CallLogStore(CallLogSql, SqliteStore):
    """The SQLite store plus the call log's queries, on one connection."""

    @classmethod
    async def open(cls, path: str | Path) -> CallLogStore:
        return cls(await open_db(path))
