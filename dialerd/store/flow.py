"""SQL the lead flow (``dialerd.leadflow``) needs on top of the lead/callback basics.

Each method is one transaction because each is one crash-safety step of a call's life:

* `claim_for_dial` — the leads become ``dialing`` and the callbacks they serve ``offered``
  together, committed *before* the daemon originates: after a crash every lead that may be
  on a call is visible as ``dialing`` (and its callback as ``offered``), never lost.
* `record_flow` — the attempt, the lead's new summary, the consumed callback, the next
  callback and the agent's registration, all or nothing: a crash never leaves an attempt
  without its callback, nor a lead rescheduled without the attempt that rescheduled it.
  It only moves a lead that is ``dialing`` (or was put on the DNC list during the call: the
  attempt is still recorded, the lead stays ``dnc`` and gets no callback), so a disposition
  sent twice records once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dialerd.store.base import SqlBase, chunks, placeholders
from dialerd.store.leads import (
    _CALLBACK_COLS,
    DUE_CALLBACKS_SQL,
    LEAD_COLS,
    _callback,
    claim_leads,
    lead_from_row,
    write_attempt,
)
from dialerd.store.models import (
    AttemptRecord,
    Callback,
    DueCallback,
    Lead,
    LeadUpdate,
    NewCallback,
)


class LeadNotDialing(LookupError):
    """The lead is not (any more) in status ``dialing``: its outcome was already recorded."""


class FlowStore(Protocol):
    """The store methods of the lead flow (part of ``dialerd.store.api.Store``)."""

    async def due_callbacks(self, campaign_id: int, now: float, limit: int) -> list[DueCallback]:
        """Every due pending callback of a campaign, whoever owns it, by due time (DNC out).

        Unlike ``select_dialable`` it keeps reservations of other agents: whether a
        reservation still holds depends on who is logged in (R-CB-6), which the rules decide.
        """

    async def open_callback(self, lead_id: int) -> Callback | None:
        """The lead's pending or offered callback (the one its next attempt consumes)."""

    async def claim_for_dial(self, claims: Sequence[tuple[int, int | None]]) -> list[int]:
        """Claim (lead id, callback id or None) pairs in one transaction; the ids won."""

    async def unclaim(self, lead_id: int, callback_id: int | None) -> bool:
        """Undo a claim that was never dialled (a skipped preview); False if not dialing."""

    async def record_flow(
        self,
        attempt: AttemptRecord,
        update: LeadUpdate,
        *,
        consumed_callback: int | None = None,
        callback: NewCallback | None = None,
        topic_ids: Sequence[int] = (),
        now: float,
    ) -> int:
        """Record a finished attempt of a ``dialing`` lead with all it implies; the attempt id.

        Raises `LeadNotDialing` (nothing written) when the lead is not ``dialing``.
        """

    async def dialing_leads(self, campaign_id: int) -> list[Lead]:
        """The campaign's leads in status ``dialing`` (for crash recovery)."""

    async def call_log_id(self, uniqueid: str) -> int | None:
        """The call-log id of the call Asterisk knows as `uniqueid`."""

    async def recordings_by_call(self, call_ids: Sequence[int]) -> dict[int, list[str]]:
        """Recording paths per call id, oldest first (R-AD-4 history links)."""


class FlowSql(SqlBase):
    """The SQLite implementation of `FlowStore`."""

    async def due_callbacks(self, campaign_id: int, now: float, limit: int) -> list[DueCallback]:
        """Due pending callbacks of leads waiting for them, any owner (see `FlowStore`)."""
        rows = await self._all(
            DUE_CALLBACKS_SQL, {"campaign": campaign_id, "now": now, "limit": limit}
        )
        n = _CALLBACK_COLS.count(",") + 1
        return [DueCallback(_callback(tuple(r)[:n]), lead_from_row(tuple(r)[n:])) for r in rows]

    async def open_callback(self, lead_id: int) -> Callback | None:
        """The newest pending/offered callback of a lead."""
        row = await self._one(
            f"SELECT {_CALLBACK_COLS} FROM callbacks WHERE lead_id = ?"
            " AND status IN ('pending', 'offered') ORDER BY id DESC LIMIT 1",
            (lead_id,),
        )
        return _callback(tuple(row)) if row else None

    async def claim_for_dial(self, claims: Sequence[tuple[int, int | None]]) -> list[int]:
        """Leads to ``dialing`` and their callbacks to ``offered``, atomically."""
        async with self._tx() as db:
            won = await claim_leads(db, [lead_id for lead_id, _ in claims])
            taken = set(won)
            offered = [(cb,) for lead_id, cb in claims if cb is not None and lead_id in taken]
            if offered:
                await db.executemany(
                    "UPDATE callbacks SET status = 'offered' WHERE id = ? AND status = 'pending'",
                    offered,
                )
        return won

    async def unclaim(self, lead_id: int, callback_id: int | None) -> bool:
        """The exact inverse of `claim_for_dial` for one lead: ``callback`` (its callback
        ``pending`` again) or ``ready``. No attempt is written and nothing else changes,
        so the lead is as dialable as before it was claimed. A lead that left ``dialing``
        meanwhile (put on the DNC list) is left alone."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE leads SET status = ? WHERE id = ? AND status = 'dialing'",
                ("callback" if callback_id is not None else "ready", lead_id),
            )
            if not cur.rowcount:
                return False
            if callback_id is not None:
                await db.execute(
                    "UPDATE callbacks SET status = 'pending' WHERE id = ? AND status = 'offered'",
                    (callback_id,),
                )
        return True

    async def record_flow(
        self,
        attempt: AttemptRecord,
        update: LeadUpdate,
        *,
        consumed_callback: int | None = None,
        callback: NewCallback | None = None,
        topic_ids: Sequence[int] = (),
        now: float,
    ) -> int:
        """One transaction: lead summary (only if dialing), attempt, callbacks, topics."""
        async with self._tx() as db:
            attempt_id = await write_attempt(db, attempt, update, ("dialing", "dnc"))
            if attempt_id is None:
                raise LeadNotDialing(f"lead {attempt.lead_id} is not dialing")
            if consumed_callback is not None:
                await db.execute(
                    "UPDATE callbacks SET status = 'done' WHERE id = ?", (consumed_callback,)
                )
            if callback is not None:
                await db.execute(
                    "INSERT INTO callbacks(lead_id, campaign_id, owner_agent, due_at,"
                    " reserved_until, comment, created_by, created_at)"
                    " SELECT id, campaign_id, ?, ?, ?, ?, ?, ? FROM leads"
                    " WHERE id = ? AND status = 'callback'",
                    (
                        callback.owner_agent,
                        callback.due_at,
                        callback.reserved_until,
                        callback.comment,
                        callback.created_by,
                        now,
                        callback.lead_id,
                    ),
                )
            await db.executemany(
                "INSERT INTO registrations(topic_id, call_id, attempt_id, agent, registered_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(t, attempt.call_id, attempt_id, attempt.agent, now) for t in topic_ids],
            )
        return attempt_id

    async def dialing_leads(self, campaign_id: int) -> list[Lead]:
        """Leads handed to the dialer whose outcome is not recorded."""
        rows = await self._all(
            f"SELECT {LEAD_COLS} FROM leads WHERE campaign_id = ? AND status = 'dialing'"
            " ORDER BY id",
            (campaign_id,),
        )
        return [lead_from_row(tuple(r)) for r in rows]

    async def call_log_id(self, uniqueid: str) -> int | None:
        """The call-log row of an Asterisk uniqueid/linkedid."""
        row = await self._one("SELECT id FROM call_log WHERE uniqueid = ?", (uniqueid,))
        return int(row[0]) if row else None

    async def recordings_by_call(self, call_ids: Sequence[int]) -> dict[int, list[str]]:
        """Recording paths per call id."""
        found: dict[int, list[str]] = {}
        for part in chunks([str(i) for i in sorted(set(call_ids))]):
            rows = await self._all(
                f"SELECT call_id, path FROM recordings WHERE call_id IN"
                f" ({placeholders(len(part))}) ORDER BY started_at, id",
                tuple(int(i) for i in part),
            )
            for r in rows:
                found.setdefault(int(r[0]), []).append(str(r[1]))
        return found
