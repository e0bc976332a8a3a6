"""SQL for leads (addresses), their attempts, callbacks, and "what to dial next".

The dial selection is built for a million leads per campaign:

* ``status`` and ``next_dial_at`` are precomputed when an attempt is recorded. A lead waiting
  for its retry delay is ``waiting``; `wake_due` flips the due ones to ``ready`` through a
  partial index on ``next_dial_at``, so the selection never scans leads that are not due.
* Calling hours depend on the lead's own time zone. A campaign's distinct zones are few (kept
  in ``campaign_timezones``); the caller decides which are open now, and the selection reads
  one range of the partial index ``leads_ready`` per open zone, already in queue order (call
  score high first, never-dialled then least recently dialled, import rank, id).
* Due callbacks come first, by due time, from their own partial index.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from typing import Any

from dialerd.store.base import SqlBase, chunks, placeholders
from dialerd.store.models import (
    AttemptRecord,
    Callback,
    CallbackStatus,
    DueCallback,
    ImportBatch,
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
_MAX_COMPOUND = 100  # zones per compound SELECT (SQLite allows 500 terms)


def lead_from_row(row: Sequence[Any]) -> Lead:
    """A `Lead` from a row selected with `LEAD_COLS` (positional: fast for bulk reads)."""
    (
        id_, campaign_id, number, tz, fields, status, phase, rank, attempts, score_total,
        call_score, next_dial_at, contact_id, linked_agent, linked_at, last_result,
        last_outcome, last_attempt_at, last_abandoned_at, last_machine_at, source_line,
        created_at,
    ) = row  # fmt: skip
    return Lead(
        id=id_,
        campaign_id=campaign_id,
        number=number,
        tz=tz,
        fields=json.loads(fields),
        status=LeadStatus(status),
        phase=phase,
        rank=rank,
        attempts=attempts,
        score_total=score_total,
        call_score=call_score,
        next_dial_at=next_dial_at,
        contact_id=contact_id,
        linked_agent=linked_agent,
        linked_at=linked_at,
        last_result=last_result,
        last_outcome=last_outcome,
        last_attempt_at=last_attempt_at,
        last_abandoned_at=last_abandoned_at,
        last_machine_at=last_machine_at,
        source_line=source_line,
        created_at=created_at,
    )


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
    async def existing_numbers(self, campaign_id: int, numbers: Iterable[str]) -> set[str]:
        """The subset of `numbers` already in the campaign."""
        found: set[str] = set()
        for part in chunks(sorted(set(numbers))):
            rows = await self._all(
                f"SELECT number FROM leads WHERE campaign_id = ? AND number IN"
                f" ({placeholders(len(part))})",
                (campaign_id, *part),
            )
            found.update(r[0] for r in rows)
        return found

    async def import_leads(
        self, campaign_id: int, leads: Sequence[NewLead], source: str, rejected: int, now: float
    ) -> ImportBatch:
        """Insert `leads` all-or-nothing and record the batch."""
        rows_in = len(leads) + rejected
        async with self._tx() as db:
            async with db.execute(
                "INSERT INTO import_batches(campaign_id, source, rows_in, imported, rejected,"
                " imported_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (campaign_id, source, rows_in, len(leads), rejected, now),
            ) as cur:
                row = await cur.fetchone()
            assert row is not None
            batch_id = int(row[0])
            await db.executemany(
                "INSERT INTO leads(campaign_id, number, tz, fields, rank, source_line,"
                " import_batch_id, created_at, status, next_dial_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'ready', 0)",
                (
                    (
                        campaign_id,
                        lead.number,
                        lead.tz,
                        json.dumps(lead.fields, ensure_ascii=False, separators=(",", ":")),
                        lead.rank,
                        lead.source_line,
                        batch_id,
                        now,
                    )
                    for lead in leads
                ),
            )
            await db.executemany(
                "INSERT OR IGNORE INTO campaign_timezones(campaign_id, tz) VALUES (?, ?)",
                [(campaign_id, tz) for tz in sorted({lead.tz for lead in leads})],
            )
        return ImportBatch(batch_id, campaign_id, source, rows_in, len(leads), rejected, now)

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
        """Waiting leads whose delay has passed become ready."""
        async with self._tx() as db:
            cur = await db.execute(
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
    ) -> Selection:
        """Due callbacks first, then ready leads in open zones (see the module docstring).

        `agent` is the free agent the leads are for (None: the pool). A lead linked to an
        agent goes only to that agent, unless it was linked before `link_release_before`.
        """
        await self.wake_due(now)
        due = await self._due_callbacks(campaign_id, now, limit, agent)
        room = limit - len(due)
        leads: list[Lead] = []
        zones = sorted(open_zones)
        if room > 0 and zones:
            for group in [
                zones[i : i + _MAX_COMPOUND] for i in range(0, len(zones), _MAX_COMPOUND)
            ]:
                leads.extend(
                    await self._ready(campaign_id, group, room, max_attempts, agent,
                                      link_release_before)
                )  # fmt: skip
            if len(zones) > _MAX_COMPOUND:
                leads.sort(key=_queue_key)
                del leads[room:]
        return Selection(tuple(due), tuple(leads))

    async def _due_callbacks(
        self, campaign_id: int, now: float, limit: int, agent: str | None
    ) -> list[DueCallback]:
        cb_cols = ", ".join(f"c.{c.strip()}" for c in _CALLBACK_COLS.split(","))
        lead_cols = ", ".join(f"l.{c.strip()}" for c in LEAD_COLS.split(","))
        rows = await self._all(
            f"SELECT {cb_cols}, {lead_cols} FROM callbacks c JOIN leads l ON l.id = c.lead_id"
            " WHERE c.campaign_id = ? AND c.status = 'pending' AND c.due_at <= ?"
            " AND (c.owner_agent IS NULL OR c.owner_agent = ? OR c.reserved_until <= ?)"
            " AND NOT EXISTS (SELECT 1 FROM dnc WHERE dnc.number = l.number)"
            " ORDER BY c.due_at, c.lead_id LIMIT ?",
            (campaign_id, now, agent, now, limit),
        )
        n = _CALLBACK_COLS.count(",") + 1
        return [DueCallback(_callback(tuple(r)[:n]), lead_from_row(tuple(r)[n:])) for r in rows]

    async def _ready(
        self,
        campaign_id: int,
        zones: list[str],
        limit: int,
        max_attempts: int | None,
        agent: str | None,
        link_release_before: float | None,
    ) -> list[Lead]:
        where = "campaign_id = ? AND status = 'ready' AND tz = ?"
        extra: list[object] = []
        if max_attempts is not None:
            where += " AND attempts < ?"
            extra.append(max_attempts)
        where += " AND (linked_agent IS NULL OR linked_agent IS ? OR linked_at < ?)"
        extra += [agent, link_release_before if link_release_before is not None else -1.0]
        where += " AND NOT EXISTS (SELECT 1 FROM dnc WHERE dnc.number = leads.number)"
        term = (
            f"SELECT * FROM (SELECT {LEAD_COLS} FROM leads WHERE {where}"
            f" ORDER BY {_QUEUE_ORDER} LIMIT ?)"
        )
        sql = " UNION ALL ".join([term] * len(zones))
        params: list[object] = []
        for zone in zones:
            params += [campaign_id, zone, *extra, limit]
        if len(zones) > 1:
            sql += f" ORDER BY {_QUEUE_ORDER} LIMIT ?"
            params.append(limit)
        rows = await self._all(sql, tuple(params))
        return [lead_from_row(tuple(r)) for r in rows]

    async def claim(self, lead_ids: Sequence[int]) -> list[int]:
        """Mark ready leads as dialing; the ids this caller won (others were taken)."""
        won: list[int] = []
        async with self._tx() as db:
            for lead_id in lead_ids:
                cur = await db.execute(
                    "UPDATE leads SET status = 'dialing' WHERE id = ? AND status IN"
                    " ('ready', 'callback')",
                    (lead_id,),
                )
                if cur.rowcount:
                    won.append(lead_id)
        return won

    # attempts -------------------------------------------------------------------------------
    async def record_attempt(self, attempt: AttemptRecord, update: LeadUpdate) -> int:
        """Store an attempt and the lead's new summary in one transaction."""
        async with self._tx() as db:
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
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                raise KeyError(f"no lead {attempt.lead_id}")
            await db.execute(
                "UPDATE leads SET status = ?, phase = ?, attempts = ?, score_total = ?,"
                " call_score = ?, next_dial_at = ?, last_result = ?, last_outcome = ?,"
                " last_attempt_at = ?, last_abandoned_at = ?, last_machine_at = ?,"
                " linked_agent = ?, linked_at = ? WHERE id = ?",
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
                ),
            )
            return int(row[0])

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
                "UPDATE leads SET status = 'callback', next_dial_at = ? WHERE id = ?",
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


def _queue_key(lead: Lead) -> tuple[float, float, int, int]:
    """The queue order of `leads_ready` in Python (NULL last_attempt_at sorts first)."""
    last = lead.last_attempt_at if lead.last_attempt_at is not None else float("-inf")
    return (-lead.call_score, last, lead.rank, lead.id)
