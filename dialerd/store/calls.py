"""SQL for the call log (R-LOG-1..3) and recordings (R-LOG-6)."""

from __future__ import annotations

from dialerd.store.base import SqlBase
from dialerd.store.models import CallRecord, CallStatus, Direction, Recording

_CALL_COLS = (
    "id, uniqueid, direction, status, number, caller_id, extension, agent, contact_id,"
    " campaign_id, lead_id, started_at, answered_at, ended_at, duration_seconds, too_long"
)


class CallsSql(SqlBase):
    """The call log and its recordings."""

    async def log_call(self, call: CallRecord) -> int:
        """Add a call to the call log; its id."""
        async with (
            self._tx() as db,
            db.execute(
                "INSERT INTO call_log(uniqueid, direction, status, number, caller_id, extension,"
                " agent, contact_id, campaign_id, lead_id, started_at, answered_at, ended_at,"
                " duration_seconds, too_long) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " RETURNING id",
                (
                    call.uniqueid,
                    call.direction.value,
                    call.status.value,
                    call.number,
                    call.caller_id,
                    call.extension,
                    call.agent,
                    call.contact_id,
                    call.campaign_id,
                    call.lead_id,
                    call.started_at,
                    call.answered_at,
                    call.ended_at,
                    call.duration_seconds,
                    int(call.too_long),
                ),
            ) as cur,
        ):
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def finish_call(
        self,
        call_id: int,
        status: CallStatus,
        ended_at: float,
        answered_at: float | None = None,
        too_long_after: float | None = None,
    ) -> None:
        """Close a call. Duration counts from answer (talk time), else from the start."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE call_log SET status = ?, ended_at = ?,"
                " answered_at = COALESCE(?, answered_at),"
                " duration_seconds = ? - COALESCE(?, answered_at, started_at),"
                " too_long = (? IS NOT NULL AND ? - COALESCE(?, answered_at, started_at) > ?)"
                " WHERE id = ?",
                (
                    status.value,
                    ended_at,
                    answered_at,
                    ended_at,
                    answered_at,
                    too_long_after,
                    ended_at,
                    answered_at,
                    too_long_after,
                    call_id,
                ),
            )
            if not cur.rowcount:
                raise KeyError(f"no call {call_id}")

    async def calls(
        self,
        since: float,
        until: float,
        extension: str | None = None,
        contact_id: int | None = None,
        limit: int = 1000,
    ) -> list[CallRecord]:
        """The call log for [since, until), newest first, optionally one extension/client."""
        rows = await self._all(
            f"SELECT {_CALL_COLS} FROM call_log WHERE started_at >= ? AND started_at < ?"
            " AND (? IS NULL OR extension = ?) AND (? IS NULL OR contact_id = ?)"
            " ORDER BY started_at DESC, id DESC LIMIT ?",
            (since, until, extension, extension, contact_id, contact_id, limit),
        )
        return [
            CallRecord(
                id=r[0],
                uniqueid=r[1],
                direction=Direction(r[2]),
                status=CallStatus(r[3]),
                number=r[4],
                caller_id=r[5],
                extension=r[6],
                agent=r[7],
                contact_id=r[8],
                campaign_id=r[9],
                lead_id=r[10],
                started_at=r[11],
                answered_at=r[12],
                ended_at=r[13],
                duration_seconds=r[14],
                too_long=bool(r[15]),
            )
            for r in rows
        ]

    async def add_recording(self, recording: Recording) -> int:
        """Register a recording file for a call (R-LOG-6)."""
        async with (
            self._tx() as db,
            db.execute(
                "INSERT INTO recordings(call_id, path, started_at, duration_seconds, downloaded)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (
                    recording.call_id,
                    recording.path,
                    recording.started_at,
                    recording.duration_seconds,
                    int(recording.downloaded),
                ),
            ) as cur,
        ):
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def mark_downloaded(self, recording_id: int) -> None:
        """Set a recording's downloaded flag."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE recordings SET downloaded = 1 WHERE id = ?", (recording_id,)
            )
            if not cur.rowcount:
                raise KeyError(f"no recording {recording_id}")
