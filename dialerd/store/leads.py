"""SQL for leads (addresses), their attempts, callbacks, and "what to dial next".

The dial selection is built for a million leads per campaign, and is one statement:

* ``status`` and ``next_dial_at`` are precomputed when an attempt is recorded. A lead waiting
  for its retry delay is ``waiting``; `wake_due` flips the due ones to ``ready`` through a
  partial index on ``next_dial_at`` before each selection (a read of that index when none
  are due), so the selection never scans leads that are not due.
* The pool's redial guards (72 h after an abandon, 24 h after a machine) and linked
  addresses are filtered in SQL too, so the queue rules accept nearly every row returned
  and the caller can ask for as many rows as it needs leads.
* Calling hours depend on the lead's own time zone. A campaign's distinct zones are few (kept
  in ``campaign_timezones``); the caller decides which are open now, and the selection is a
  k-way merge of one range of the partial index ``leads_ready`` per open zone, each already
  in queue order (call score high first, never-dialled then least recently dialled, import
  rank, id): SQLite reads about `limit` index entries, however many leads are waiting.
* Due callbacks come first, by due time, from their own partial index.
* DNC numbers are never 'ready' (see `DncSql.add_dnc` and the import's screening), so only
  callbacks, few per selection, probe the DNC list.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

import aiosqlite

from dialerd.store.base import SqlBase, chunks, placeholders
from dialerd.store.models import (
    AttemptRecord,
    Callback,
    CallbackStatus,
    DueCallback,
    ImportBatch,
    JsonFields,
    Lead,
    LeadStatus,
    LeadUpdate,
    NewCallback,
    NewLead,
    Selection,
)

LEAD_COLS = (
    "id, campaign_id, number, tz, fields, status, phase, rank, attempts, score_total,"
    " call_score, next_dial_at, contact_id, linked_agent, linked_at, last_result, last_outcome,"
    " last_attempt_at, last_abandoned_at, last_machine_at, source_line, created_at"
)
_CALLBACK_COLS = (
    "id, lead_id, campaign_id, owner_agent, due_at, reserved_until, comment, status,"
    " created_by, created_at"
)
_ATTEMPT_COLS = (
    "id, lead_id, call_id, agent, started_at, ended_at, outcome, result_code, score, note,"
    " email_to, email_status"
)
_QUEUE_ORDER = "call_score DESC, last_attempt_at, rank, id"


_STATUS = {status.value: status for status in LeadStatus}


def lead_from_row(row: Sequence[Any]) -> Lead:
    """A `Lead` from a row selected with `LEAD_COLS` (positional: this is the hot path)."""
    return Lead(row[0], row[1], row[2], row[3], JsonFields(row[4]), _STATUS[row[5]], *row[6:])


def _callback(row: Sequence[Any]) -> Callback:
    (id_, lead_id, campaign_id, owner, due_at, reserved, comment, status, by, at) = row
    return Callback(
        id=id_,
        lead_id=lead_id,
        campaign_id=campaign_id,
        owner_agent=owner,
        due_at=due_at,
        reserved_until=reserved,
        comment=comment,
        status=CallbackStatus(status),
        created_by=by,
        created_at=at,
    )


class LeadsSql(SqlBase):
    """Leads, attempts, callbacks and the dial selection."""

    # import / export -----------------------------------------------------------------------
    async def import_leads(
        self, campaign_id: int, leads: Sequence[NewLead], source: str, rejected: int, now: float
    ) -> ImportBatch:
        """Insert already-checked `leads` all-or-nothing (see `Store.import_leads`)."""
        async with self.lead_import(campaign_id, source, now) as session:
            await session.add(leads)
            return await session.finish(rejected)

    @asynccontextmanager
    async def lead_import(
        self, campaign_id: int, source: str, now: float
    ) -> AsyncIterator[SqliteLeadImport]:
        """An import transaction (see `SqliteLeadImport`); rolled back unless finished."""
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            session: SqliteLeadImport | None = None
            try:
                async with self._db.execute(
                    "INSERT INTO import_batches(campaign_id, source, rows_in, imported, rejected,"
                    " imported_at) VALUES (?, ?, 0, 0, 0, ?) RETURNING id",
                    (campaign_id, source, now),
                ) as cur:
                    row = await cur.fetchone()
                assert row is not None
                session = SqliteLeadImport(self._db, campaign_id, int(row[0]), source, now)
                yield session
            finally:
                if session is not None:
                    await session.drain()
                committed = session is not None and session.batch is not None
                await self._db.execute("COMMIT" if committed else "ROLLBACK")

    async def next_rank(self, campaign_id: int) -> int:
        """The rank after the campaign's last lead, so import order continues across files."""
        row = await self._one(
            "SELECT COALESCE(MAX(rank), -1) + 1 FROM leads WHERE campaign_id = ?", (campaign_id,)
        )
        return int(row[0]) if row else 0

    async def lead_field_names(self, campaign_id: int) -> list[str]:
        """The custom-field names of the campaign's leads, in first-seen order."""
        rows = await self._all(
            "SELECT f.key FROM leads l, json_each(l.fields) f WHERE l.campaign_id = ?"
            " GROUP BY f.key ORDER BY MIN(l.id), MIN(f.id)",
            (campaign_id,),
        )
        return [r[0] for r in rows]

    async def get_lead(self, lead_id: int) -> Lead | None:
        """One lead by id."""
        row = await self._one(f"SELECT {LEAD_COLS} FROM leads WHERE id = ?", (lead_id,))
        return lead_from_row(tuple(row)) if row else None

    async def iter_leads(self, campaign_id: int) -> AsyncIterator[Lead]:
        """Every lead of a campaign in import order, fetched in pages."""
        last_id = 0
        while True:
            rows = await self._all(
                f"SELECT {LEAD_COLS} FROM leads WHERE campaign_id = ? AND id > ?"
                " ORDER BY id LIMIT 5000",
                (campaign_id, last_id),
            )
            if not rows:
                return
            for row in rows:
                yield lead_from_row(tuple(row))
            last_id = rows[-1][0]

    async def campaign_zones(self, campaign_id: int) -> list[str]:
        """The distinct time-zone keys of the campaign's leads."""
        rows = await self._all(
            "SELECT tz FROM campaign_timezones WHERE campaign_id = ? ORDER BY tz", (campaign_id,)
        )
        return [r[0] for r in rows]

    # the dial selection ---------------------------------------------------------------------
    async def wake_due(self, now: float) -> int:
        """Waiting leads whose delay has passed become ready (a read when none are due).

        The update is one statement, so SQLite's autocommit makes it atomic by itself: one
        trip to the connection's thread instead of three (BEGIN, UPDATE, COMMIT), on the
        path of every selection. The write lock still keeps it out of another coroutine's
        open transaction on this connection.
        """
        if not await self._one(
            "SELECT 1 FROM leads WHERE status = 'waiting' AND next_dial_at <= ? LIMIT 1", (now,)
        ):
            return 0
        async with self._write_lock:
            cur = await self._db.execute(
                "UPDATE leads SET status = 'ready' WHERE status = 'waiting' AND next_dial_at <= ?",
                (now,),
            )
            return cur.rowcount

    async def select_dialable(
        self,
        campaign_id: int,
        now: float,
        open_zones: Collection[str],
        limit: int = 500,
        max_attempts: int | None = None,
        agent: str | None = None,
        link_release_before: float | None = None,
        *,
        abandoned_before: float | None = None,
        machine_before: float | None = None,
        callbacks: bool = True,
    ) -> Selection:
        """Due callbacks first, then ready leads in open zones (see the module docstring).

        All due callbacks are returned, also those reserved for someone else: the queue
        rules decide with the agents' presence (R-CB-4/5/6). `agent` is the free agent the
        leads are for (None: the pool); a ready lead linked to another agent is left out
        unless it was linked before `link_release_before` (R-RC-6). A ready lead abandoned
        at or after `abandoned_before`, or judged a machine at or after `machine_before`,
        is left out (the pool's 72 h / 24 h redial guards; None: no such guard). With
        ``callbacks=False`` only ready leads are returned, `limit` of them.

        Waiting leads whose delay is over are woken first (`wake_due`: a read through a
        partial index when none are), then one statement answers the rest.
        """
        zones = sorted(open_zones)
        params: dict[str, object] = {
            "campaign": campaign_id,
            "now": now,
            "limit": limit,
            "max_attempts": max_attempts if max_attempts is not None else 1 << 62,
            "agent": agent,
            "released": link_release_before if link_release_before is not None else -1.0,
            "abandoned": abandoned_before if abandoned_before is not None else _NEVER,
            "machine": machine_before if machine_before is not None else _NEVER,
        }
        params.update((f"z{i}", zone) for i, zone in enumerate(zones[:_MAX_ARMS]))
        sql = _selection_sql(min(len(zones), _MAX_ARMS), callbacks)
        await self.wake_due(now)
        due: list[DueCallback] = []
        leads: list[Lead] = []
        for row in await self._all(sql, params) if sql else []:
            lead = lead_from_row(row[_N_CALLBACK_COLS:])
            if row[0] is None:
                leads.append(lead)
            else:
                due.append(DueCallback(_callback(row[:_N_CALLBACK_COLS]), lead))
        room = limit - len(due)
        if len(zones) > _MAX_ARMS and room > 0:  # more open zones than one SELECT may hold
            for start in range(_MAX_ARMS, len(zones), _MAX_ARMS):
                part = zones[start : start + _MAX_ARMS]
                extra = {**params, "limit": room}
                extra.update((f"z{i}", zone) for i, zone in enumerate(part))
                leads += [lead_from_row(r) for r in await self._all(_ready_sql(len(part)), extra)]
            leads.sort(key=_queue_key)
            del leads[room:]
        return Selection(tuple(due), tuple(leads))

    async def claim(self, lead_ids: Sequence[int]) -> list[int]:
        """Mark ready (or callback) leads as dialing; the ids this caller won, in the order
        asked (a lead another dialer took first is left out)."""
        async with self._tx() as db:
            return await claim_leads(db, lead_ids)

    # attempts -------------------------------------------------------------------------------
    async def record_attempt(self, attempt: AttemptRecord, update: LeadUpdate) -> int:
        """Store an attempt and the lead's new summary in one transaction."""
        async with self._tx() as db:
            attempt_id = await write_attempt(db, attempt, update)
        if attempt_id is None:
            raise KeyError(f"no lead {attempt.lead_id}")
        return attempt_id

    async def attempts_of(self, lead_id: int) -> list[AttemptRecord]:
        """A lead's contact history, oldest first (R-AD-4)."""
        rows = await self._all(
            f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE lead_id = ? ORDER BY started_at, id",
            (lead_id,),
        )
        return [
            AttemptRecord(
                id=r["id"],
                lead_id=r["lead_id"],
                call_id=r["call_id"],
                agent=r["agent"],
                started_at=r["started_at"],
                ended_at=r["ended_at"],
                outcome=r["outcome"],
                result_code=r["result_code"],
                score=r["score"],
                note=r["note"],
                email_to=r["email_to"],
                email_status=r["email_status"],
            )
            for r in rows
        ]

    # callbacks ------------------------------------------------------------------------------
    async def schedule_callback(self, callback: NewCallback, now: float) -> Callback:
        """Schedule a callback; the lead waits for it (status 'callback')."""
        async with self._tx() as db:
            async with db.execute(
                "INSERT INTO callbacks(lead_id, campaign_id, owner_agent, due_at, reserved_until,"
                " comment, created_by, created_at)"
                " SELECT id, campaign_id, ?, ?, ?, ?, ?, ? FROM leads WHERE id = ?"
                f" RETURNING {_CALLBACK_COLS}",
                (
                    callback.owner_agent,
                    callback.due_at,
                    callback.reserved_until,
                    callback.comment,
                    callback.created_by,
                    now,
                    callback.lead_id,
                ),
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                raise KeyError(f"no lead {callback.lead_id}")
            await db.execute(
                "UPDATE leads SET status = 'callback', next_dial_at = ?"
                " WHERE id = ? AND status <> 'dnc'",
                (callback.due_at, callback.lead_id),
            )
        return _callback(tuple(row))

    async def agent_callbacks(self, agent: str) -> list[Callback]:
        """An agent's pending callbacks by due time (R-CB-1)."""
        rows = await self._all(
            f"SELECT {_CALLBACK_COLS} FROM callbacks WHERE owner_agent = ? AND status = 'pending'"
            " ORDER BY due_at, id",
            (agent,),
        )
        return [_callback(tuple(r)) for r in rows]

    async def set_callback_status(self, callback_id: int, status: CallbackStatus) -> None:
        """Move a callback on (offered, done, cancelled)."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE callbacks SET status = ? WHERE id = ?", (status.value, callback_id)
            )
            if not cur.rowcount:
                raise KeyError(f"no callback {callback_id}")


async def claim_leads(db: aiosqlite.Connection, lead_ids: Sequence[int]) -> list[int]:
    """Inside the caller's write transaction: `lead_ids` that are ready (or waiting for their
    callback) become dialing; the ids won, in the order asked, each once. One statement per
    500 ids, not one per lead: a claim of 500 is one trip to the connection's thread (each
    trip waits for a thread switch, which on a loaded machine costs more than the SQL)."""
    won: set[int] = set()
    for part in chunks(lead_ids):
        rows = await db.execute_fetchall(
            "UPDATE leads SET status = 'dialing' WHERE status IN ('ready', 'callback')"
            f" AND id IN ({placeholders(len(part))}) RETURNING id",
            tuple(part),
        )
        won.update(int(r[0]) for r in rows)
    return [i for i in dict.fromkeys(lead_ids) if i in won]


async def write_attempt(
    db: aiosqlite.Connection,
    attempt: AttemptRecord,
    update: LeadUpdate,
    only_statuses: tuple[str, ...] | None = None,
) -> int | None:
    """Inside the caller's write transaction: the lead's new summary, then the attempt row;
    the attempt id, or None with nothing written when no lead matched (no such lead, or its
    status is not in `only_statuses`).

    A number put on the DNC list during the call stays 'dnc' whatever the rules computed
    from the lead as it was before the call.
    """
    only = f" AND status IN ({placeholders(len(only_statuses))})" if only_statuses else ""
    cur = await db.execute(
        "UPDATE leads SET status = CASE status WHEN 'dnc' THEN 'dnc' ELSE ? END,"
        " phase = ?, attempts = ?, score_total = ?, call_score = ?, next_dial_at = ?,"
        " last_result = ?, last_outcome = ?, last_attempt_at = ?, last_abandoned_at = ?,"
        f" last_machine_at = ?, linked_agent = ?, linked_at = ? WHERE id = ?{only}",
        (
            update.status.value,
            update.phase,
            update.attempts,
            update.score_total,
            update.call_score,
            update.next_dial_at,
            update.last_result,
            update.last_outcome,
            update.last_attempt_at,
            update.last_abandoned_at,
            update.last_machine_at,
            update.linked_agent,
            update.linked_at,
            attempt.lead_id,
            *(only_statuses or ()),
        ),
    )
    if not cur.rowcount:
        return None
    async with db.execute(
        "INSERT INTO attempts(lead_id, campaign_id, call_id, agent, started_at, ended_at,"
        " outcome, result_code, score, note, email_to, email_status)"
        " SELECT id, campaign_id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM leads WHERE id = ?"
        " RETURNING id",
        (
            attempt.call_id,
            attempt.agent,
            attempt.started_at,
            attempt.ended_at,
            attempt.outcome,
            attempt.result_code,
            attempt.score,
            attempt.note,
            attempt.email_to,
            attempt.email_status,
            attempt.lead_id,
        ),
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None  # the lead exists: it was just updated
    return int(row[0])


_MAX_ARMS = 400  # zones per compound SELECT (SQLite allows 500 terms)
_N_CALLBACK_COLS = _CALLBACK_COLS.count(",") + 1
_NEVER = float("inf")
"""A guard bound no lead reaches: the guard is off."""


def _ready_arms(zones: int) -> str:
    """One plain SELECT per open zone. Plain arms (no per-arm LIMIT subquery) let SQLite
    merge them, each read from leads_ready already in queue order, and stop at the limit.
    No DNC probe per row: a DNC number is never 'ready' (add_dnc moves its leads to 'dnc'
    and imports screen against the list, each inside its write transaction). The guard and
    link columns are read from the row: measured at 1M leads with 13,000 guarded leads ahead
    in queue order, skipping them all costs about 1 ms, not worth widening the index that
    every import has to build."""
    where = (
        "campaign_id = :campaign AND status = 'ready' AND tz = :z{} AND attempts < :max_attempts"
        " AND (linked_agent IS NULL OR linked_agent IS :agent OR linked_at < :released)"
        " AND (last_abandoned_at IS NULL OR last_abandoned_at < :abandoned)"
        " AND (last_machine_at IS NULL OR last_machine_at < :machine)"
    )
    return " UNION ALL ".join(
        f"SELECT {LEAD_COLS} FROM leads WHERE {where.format(i)}" for i in range(zones)
    )


@lru_cache(maxsize=64)
def _ready_sql(zones: int) -> str:
    """Ready leads of `zones` open zones, in queue order, at most :limit."""
    return f"{_ready_arms(zones)} ORDER BY {_QUEUE_ORDER} LIMIT :limit"


def _prefixed(cols: str, alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in cols.split(","))


DUE_CALLBACKS_SQL = (
    f"SELECT {_prefixed(_CALLBACK_COLS, 'c')}, {_prefixed(LEAD_COLS, 'l')} FROM callbacks c"
    " JOIN leads l ON l.id = c.lead_id"
    " WHERE c.campaign_id = :campaign AND c.status = 'pending' AND c.due_at <= :now"
    " AND l.status = 'callback'"  # not already dialing, finished or DNC
    " AND NOT EXISTS (SELECT 1 FROM dnc WHERE dnc.number = l.number)"
    " ORDER BY c.due_at, c.lead_id LIMIT :limit"
)
"""Due pending callbacks of leads waiting for them, any owner, by due time: (callback
columns, lead columns) rows."""


@lru_cache(maxsize=128)
def _selection_sql(zones: int, callbacks: bool = True) -> str | None:
    """Rows of (callback columns or NULLs, lead columns): due callbacks by due time (unless
    not `callbacks`), then ready leads of `zones` open zones in queue order, :limit rows in
    all; None when there is nothing to ask."""
    nulls = ", ".join(["NULL"] * _N_CALLBACK_COLS)
    ready = f"{_ready_arms(zones)} ORDER BY {_QUEUE_ORDER}"
    if not callbacks:
        return f"SELECT {nulls}, * FROM ({ready} LIMIT :limit)" if zones else None
    sql = f"WITH due AS ({DUE_CALLBACKS_SQL}) SELECT * FROM due"
    if zones:
        sql += (
            f" UNION ALL SELECT {nulls}, * FROM ({ready} LIMIT :limit - (SELECT count(*) FROM due))"
        )
    return sql


class SqliteLeadImport:
    """One import, inside one write transaction: nothing is visible until `finish`.

    `add` hands a chunk to the connection's thread and returns, so the caller normalises
    the next chunk while SQLite inserts this one.
    """

    def __init__(
        self, db: aiosqlite.Connection, campaign_id: int, batch_id: int, source: str, now: float
    ) -> None:
        self._db = db
        self._campaign_id = campaign_id
        self._batch_id = batch_id
        self._source = source
        self._now = now
        self._pending: asyncio.Future[aiosqlite.Cursor] | None = None
        self._zones: set[str] = set()
        self._count = 0
        self.batch: ImportBatch | None = None

    async def screen(self, numbers: Sequence[str]) -> dict[str, str]:
        """The numbers the store refuses: ``"dnc"`` (on the list) or ``"exists"`` (already in
        the campaign before this import)."""
        refused: dict[str, str] = {}
        for part in chunks(sorted(set(numbers))):
            marks = placeholders(len(part))
            async with self._db.execute(
                f"SELECT number FROM dnc WHERE number IN ({marks})", tuple(part)
            ) as cur:
                refused.update((r[0], "dnc") for r in await cur.fetchall())
            async with self._db.execute(
                f"SELECT number FROM leads WHERE campaign_id = ? AND number IN ({marks})"
                " AND import_batch_id IS NOT ?",
                (self._campaign_id, *part, self._batch_id),
            ) as cur:
                for r in await cur.fetchall():
                    refused.setdefault(r[0], "exists")
        return refused

    async def add(self, leads: Sequence[NewLead]) -> None:
        """Queue a chunk for insertion (waits only for the previous chunk)."""
        await self.drain()
        payload = json.dumps(
            [(lead.number, lead.tz, lead.rank, lead.source_line, lead.fields) for lead in leads],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        self._zones.update(lead.tz for lead in leads)
        self._count += len(leads)
        self._pending = asyncio.ensure_future(
            self._db.execute(_INSERT_CHUNK, (self._campaign_id, self._batch_id, self._now, payload))
        )
        await asyncio.sleep(0)  # let the task hand the statement to the SQLite thread

    async def drain(self) -> None:
        """Wait for the chunk in flight (its error, if any, surfaces here)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    async def finish(self, rejected: int) -> ImportBatch:
        """Record the batch (rows in = imported + rejected); the transaction commits."""
        await self.drain()
        await self._db.executemany(
            "INSERT OR IGNORE INTO campaign_timezones(campaign_id, tz) VALUES (?, ?)",
            [(self._campaign_id, tz) for tz in sorted(self._zones)],
        )
        await self._db.execute(
            "UPDATE import_batches SET rows_in = ?, imported = ?, rejected = ? WHERE id = ?",
            (self._count + rejected, self._count, rejected, self._batch_id),
        )
        self.batch = ImportBatch(
            self._batch_id,
            self._campaign_id,
            self._source,
            self._count + rejected,
            self._count,
            rejected,
            self._now,
        )
        return self.batch


# One statement per chunk: SQLite unpacks the JSON array itself, so the whole insert runs in
# C without Python's GIL (per-row parameter binding would need it for every row and stall
# behind the importer's normalisation of the next chunk).
_INSERT_CHUNK = (
    "INSERT INTO leads(campaign_id, import_batch_id, created_at, number, tz, rank, source_line,"
    " fields, status, next_dial_at)"
    " SELECT ?, ?, ?, r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3,"
    " r.value -> 4, 'ready', 0 FROM json_each(?) AS r ORDER BY r.key"
)


def _queue_key(lead: Lead) -> tuple[float, float, int, int]:
    """The queue order of `leads_ready` in Python (NULL last_attempt_at sorts first)."""
    last = lead.last_attempt_at if lead.last_attempt_at is not None else float("-inf")
    return (-lead.call_score, last, lead.rank, lead.id)
