"""The agent console's pure parts: what the screen shows and what the buttons send.

Everything here is plain data in, plain data out, so it is tested without a terminal or a
broker. The Textual app (`dialerd.console.app`) only reads widgets into these functions and
writes their results back; the daemon stays the judge of every disposition, but the console
catches what it can before sending, so the agent fixes a missing comment with the call
still on screen instead of reading a refusal.

Payload shapes follow docs/mqtt.md (schema 1). Unknown fields are ignored and missing ones
get neutral defaults: a newer dialerd (a higher schema) must not break an older console.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

SCHEMA_VERSION = 1
"""The payload schema this console understands; a higher one is shown as a warning."""

_RELATIVE = re.compile(r"^\+\s*(\d+)\s*([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ConsoleInputError(ValueError):
    """What the agent must fix before the command can be sent; one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


# --------------------------------------------------------------------------------------------
# what dialerd sends


@dataclass(frozen=True)
class ResultCode:
    code: str
    label: str
    category: str
    priority: str = ""
    detail_screen: bool = False
    require_email: bool = False
    allow_reassign: bool = False
    callback_minutes: int | None = None


@dataclass(frozen=True)
class RegistrationCategory:
    name: str
    multi: bool
    topics: tuple[str, ...]


@dataclass(frozen=True)
class HistoryRow:
    """One line of the contact history table (R-AD-4), already formatted for display."""

    when: str
    agent: str
    result: str
    outcome: str
    note: str
    email: str


@dataclass(frozen=True)
class ScreenPop:
    """The call on the agent's screen: `dialerd/agents/<agent>/screen` (R-AD, R-CB-7)."""

    attempt: str
    lead_id: int | None
    number: str
    campaign: str
    fields: Mapping[str, str]
    phase: str
    call_score: float | None
    engagement_score: float | None
    attempts: int
    callback_comment: str
    history: tuple[HistoryRow, ...]
    result_codes: tuple[ResultCode, ...]
    registration_forced: bool
    categories: tuple[RegistrationCategory, ...]
    preview: bool = False
    """Preview mode (R-DL-1): the lead is held for the agent, nothing dialled yet."""

    def code(self, code: str) -> ResultCode | None:
        return next((c for c in self.result_codes if c.code == code), None)

    @property
    def agent_codes(self) -> tuple[ResultCode, ...]:
        """The codes offered as buttons: all but "nobody reached" (no-contact, very low).

        Those (busy, no answer, failed, abandoned, machine) are the dialer's own verdicts on
        calls no agent took (R-RC-2); a call on this screen was answered, and the one
        "nobody there after all" case has its own button, voicemail (R-REG-4a).
        """
        return tuple(
            c
            for c in self.result_codes
            if not (c.category == "no-contact" and c.priority == "very_low")
        )

    @property
    def title(self) -> str:
        name = self.fields.get("name") or self.fields.get("Name") or ""
        return f"{self.number}  {name}".strip()

    def summary(self) -> str:
        """The one line under the number: scores, phase and attempt count."""
        parts = [
            f"phase {self.phase.replace('_', ' ') or '?'}",
            f"call score {_num(self.call_score)}",
            f"engagement {_num(self.engagement_score)}",
            f"attempt {self.attempts + 1}",
        ]
        return "  |  ".join(parts)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _stamp(value: Any, tz: tzinfo | None) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz).strftime("%Y-%m-%d %H:%M")
    return _str(value)


def parse_screen(body: Mapping[str, Any], tz: tzinfo | None = None) -> ScreenPop:
    """A screen-pop payload as the console shows it; tolerant of missing fields."""
    history = tuple(
        HistoryRow(
            when=_stamp(h.get("at"), tz),
            agent=_str(h.get("agent")) or "dialer",
            result=_str(h.get("label") or h.get("result_code")),
            outcome=_str(h.get("outcome")),
            note=_str(h.get("note")),
            email=" ".join(x for x in (_str(h.get("email_to")), _str(h.get("email_status"))) if x),
        )
        for h in body.get("history") or ()
        if isinstance(h, Mapping)
    )
    codes = tuple(
        ResultCode(
            code=_str(c.get("code")),
            label=_str(c.get("label") or c.get("code")),
            category=_str(c.get("category")),
            priority=_str(c.get("contact_priority")),
            detail_screen=bool(c.get("detail_screen")),
            require_email=bool(c.get("require_email")),
            allow_reassign=bool(c.get("allow_reassign")),
            callback_minutes=c.get("callback_minutes")
            if isinstance(c.get("callback_minutes"), int)
            else None,
        )
        for c in body.get("result_codes") or ()
        if isinstance(c, Mapping) and c.get("code")
    )
    registration = body.get("registration") or {}
    categories = tuple(
        RegistrationCategory(
            name=_str(c.get("name")),
            multi=bool(c.get("multi")),
            topics=tuple(_str(t) for t in c.get("topics") or ()),
        )
        for c in registration.get("categories") or ()
        if isinstance(c, Mapping) and c.get("name")
    )
    fields = body.get("fields") or {}
    lead_id = body.get("lead_id")
    return ScreenPop(
        attempt=_str(body.get("attempt")),
        lead_id=lead_id if isinstance(lead_id, int) else None,
        number=_str(body.get("number")),
        campaign=_str(body.get("campaign")),
        fields={str(k): _str(v) for k, v in fields.items()} if isinstance(fields, Mapping) else {},
        phase=_str(body.get("phase")),
        call_score=_float(body.get("call_score")),
        engagement_score=_float(body.get("engagement_score")),
        attempts=int(body.get("attempts") or 0),
        callback_comment=_str(body.get("callback_comment")),
        history=history,
        result_codes=codes,
        registration_forced=bool(registration.get("forced")),
        categories=categories,
        preview=bool(body.get("preview")),
    )


def state_line(body: Mapping[str, Any], now: float, tz: tzinfo | None = None) -> str:
    """The agent's state from the retained state topic, e.g. ``paused (coffee) for 2:05``."""
    state = _str(body.get("state")) or "unknown"
    text = state.replace("_", " ")
    reason = _str(body.get("pause_reason"))
    if state == "paused" and reason:
        text += f" ({reason})"
    since = body.get("since")
    if isinstance(since, int | float) and not isinstance(since, bool):
        seconds = max(0, int(now - since))
        text += f" for {seconds // 60}:{seconds % 60:02d}"
    return text


def stats_line(campaign: str, body: Mapping[str, Any]) -> str:
    """The wallboard line (`dialerd/campaigns/<c>/stats`)."""
    agents = body.get("agents") or {}
    crew = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(agents.items()))
    rate = body.get("abandon_rate")
    rate_text = f"{rate:.1%}" if isinstance(rate, int | float) else "-"
    return (
        f"{campaign}: dialed {body.get('dialed', 0)}, live {body.get('human_answered', 0)}, "
        f"connected {body.get('connected', 0)}, abandoned {body.get('abandoned', 0)} "
        f"({rate_text}), in flight {body.get('in_flight', 0)}"
        + (f"  |  agents: {crew}" if crew else "")
    )


@dataclass(frozen=True)
class ScheduledCall:
    """One row of the agent's scheduled-calls list as dialerd keeps it (R-CB-1).

    The list is dialerd's (`LeadFlow.scheduled_calls`, the `scheduled` command): the
    console never keeps its own, so every console of the agent, fresh or old, shows the
    same rows.
    """

    due: datetime
    lead_id: int | None
    number: str
    name: str
    campaign: str
    comment: str
    state: str
    """``upcoming``, ``reserved`` (due, held for this agent) or ``open`` (R-CB-5)."""
    reserved_until: datetime | None


def _moment(value: Any) -> datetime | None:
    """A unix time as an aware moment; shown later in the agent's zone."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return None


def parse_scheduled(body: Mapping[str, Any]) -> tuple[ScheduledCall, ...]:
    """The rows of a `scheduled` reply, earliest first; rows without a due time are skipped
    (nothing to order or show them by). ``name`` is read when dialerd sends one."""
    rows = []
    for row in body.get("scheduled") or ():
        if not isinstance(row, Mapping):
            continue
        due = _moment(row.get("due_at"))
        if due is None:
            continue
        lead = row.get("lead")
        rows.append(
            ScheduledCall(
                due=due,
                lead_id=lead if isinstance(lead, int) and not isinstance(lead, bool) else None,
                number=_str(row.get("number")),
                name=_str(row.get("name")),
                campaign=_str(row.get("campaign")),
                comment=_str(row.get("comment")),
                state=_str(row.get("state")),
                reserved_until=_moment(row.get("reserved_until")),
            )
        )
    return tuple(sorted(rows, key=lambda r: r.due))


@dataclass(frozen=True)
class ScheduledList:
    """What the "My callbacks" panel knows: the last list dialerd sent, and whether the
    last request for it failed (then the old rows stay, under a one-line reason)."""

    calls: tuple[ScheduledCall, ...] = ()
    loaded: bool = False
    problem: str = ""

    def answered(self, body: Mapping[str, Any]) -> ScheduledList:
        """The list after dialerd's reply to a `scheduled` request (ok or refused)."""
        if body.get("ok"):
            return ScheduledList(parse_scheduled(body), loaded=True)
        return self.failed(f"dialerd refused: {_str(body.get('error')) or 'no reason given'}")

    def failed(self, problem: str) -> ScheduledList:
        return ScheduledList(self.calls, self.loaded, problem)

    def holds(self, lead_id: int | None) -> bool:
        return lead_id is not None and any(c.lead_id == lead_id for c in self.calls)

    def text(self, tz: tzinfo | None = None) -> str:
        """The panel, times in ``tz`` (default: this machine's zone, the agent's)."""
        if self.problem:
            head = f"My callbacks: {self.problem.splitlines()[0]} (F5 retries)"
            if self.calls:
                head += "; as last shown:"
        elif not self.loaded:
            return "My callbacks: waiting for dialerd..."
        elif not self.calls:
            return "My callbacks: none scheduled (F5 refreshes)"
        else:
            head = "My callbacks (F5 refreshes):"
        several = len({c.campaign for c in self.calls}) > 1
        return "\n".join([head, *(_scheduled_row(c, tz, several) for c in self.calls)])


def _scheduled_row(call: ScheduledCall, tz: tzinfo | None, campaign: bool) -> str:
    lead = f"#{call.lead_id}" if call.lead_id is not None else ""
    who = "  ".join(x for x in (lead, call.name, call.number) if x)
    where = f" [{call.campaign}]" if campaign and call.campaign else ""
    if call.state == "reserved" and call.reserved_until is not None:
        tag = f"  (due: held for you until {call.reserved_until.astimezone(tz):%H:%M})"
    elif call.state == "open":
        tag = "  (due: open to any agent now)"
    else:
        tag = ""
    return f"  {call.due.astimezone(tz):%a %d %b %H:%M}  {who}{where}  {call.comment}{tag}"


def refreshes_scheduled(verb: str, ok: bool) -> bool:
    """Whether an accepted command can have changed the agent's list: a login (a new
    session's first look) and every disposition (a reschedule to myself or any agent, a
    callback code's own delay, a delivered callback completed)."""
    return ok and verb in ("login", "disposition")


def schema_warning(body: Mapping[str, Any]) -> str | None:
    schema = body.get("schema")
    if isinstance(schema, int) and schema > SCHEMA_VERSION:
        return f"dialerd speaks schema {schema}, this console {SCHEMA_VERSION}: please upgrade"
    return None


def reply_line(verb: str, body: Mapping[str, Any]) -> tuple[bool, str]:
    """(ok, one line) for a reply: what the status line says."""
    if body.get("ok"):
        extra = ", ".join(
            f"{k} {v}"
            for k, v in body.items()
            if k not in ("id", "ok", "schema") and v not in (None, "")
        )
        return True, f"{verb}: ok" + (f" ({extra})" if extra else "")
    return False, f"{verb}: {body.get('error') or 'refused'}"


# --------------------------------------------------------------------------------------------
# what the console sends


def parse_when(day: str, clock: str, now: datetime) -> datetime:
    """The reschedule moment from the date and time fields, aware, in ``now``'s zone.

    ``clock`` is ``HH:MM`` or ``HH:MM:SS`` on ``day`` (``YYYY-MM-DD``; empty = today), or a
    relative ``+40s`` / ``+15m`` / ``+2h`` / ``+1d`` from ``now`` (then ``day`` is ignored).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    text = clock.strip()
    relative = _RELATIVE.match(text)
    if relative:
        return now + timedelta(seconds=int(relative[1]) * _UNIT_SECONDS[relative[2]])
    try:
        moment = time.fromisoformat(text)
    except ValueError:
        raise ConsoleInputError(
            [f"time {clock!r}: use HH:MM, HH:MM:SS or +40s/+15m/+2h/+1d"]
        ) from None
    try:
        on = date.fromisoformat(day.strip()) if day.strip() else now.date()
    except ValueError:
        raise ConsoleInputError([f"date {day!r}: use YYYY-MM-DD"]) from None
    return datetime.combine(on, moment, tzinfo=now.tzinfo)


@dataclass(frozen=True)
class RescheduleForm:
    """The reschedule fields (R-REG-4b): off unless ``enabled``."""

    enabled: bool = False
    day: str = ""
    clock: str = ""
    to: str = "myself"
    comment: str = ""


@dataclass(frozen=True)
class DispositionForm:
    """Everything the wrap-up part of the screen holds when the agent presses send."""

    result_code: str | None = None
    note: str = ""
    detail_note: str = ""
    email_to: str = ""
    registration: Mapping[str, Sequence[str]] = field(default_factory=dict)
    reschedule: RescheduleForm = field(default_factory=RescheduleForm)


def reschedule_payload(form: RescheduleForm, now: datetime) -> dict[str, str]:
    """``{"when", "to", "comment"}`` or `ConsoleInputError` listing what is wrong."""
    problems: list[str] = []
    if not form.comment.strip():
        problems.append("rescheduling needs a comment")
    if form.to not in ("myself", "any"):
        problems.append("reschedule to 'myself' or 'any' agent")
    when: datetime | None = None
    try:
        when = parse_when(form.day, form.clock, now)
    except ConsoleInputError as exc:
        problems += exc.problems
    if when is not None and when <= now:
        problems.append(f"the rescheduled time {when:%Y-%m-%d %H:%M:%S} is not in the future")
    if problems:
        raise ConsoleInputError(problems)
    assert when is not None
    return {"when": when.isoformat(timespec="seconds"), "to": form.to, "comment": form.comment}


def registration_problems(
    categories: Sequence[RegistrationCategory],
    chosen: Mapping[str, Sequence[str]],
    forced: bool,
) -> list[str]:
    """The daemon's own rule (R-REG-1/2), checked before sending."""
    picked = {k: list(v) for k, v in chosen.items() if v}
    by_name = {c.name: c for c in categories}
    problems: list[str] = []
    if forced and not picked:
        problems.append("registration is required: pick a topic")
    for name, topics in picked.items():
        category = by_name.get(name)
        if category is None:
            problems.append(f"unknown registration category {name!r}")
        elif not category.multi and len(topics) > 1:
            problems.append(f"{name!r} takes one topic")
        elif any(t not in category.topics for t in topics):
            problems.append(f"{name!r}: unknown topic")
    return problems


def disposition_payload(screen: ScreenPop, form: DispositionForm, now: datetime) -> dict[str, Any]:
    """The `disposition` command for ``form``, or `ConsoleInputError` (nothing sent)."""
    problems: list[str] = []
    code = screen.code(form.result_code) if form.result_code else None
    if form.result_code is None:
        problems.append("pick a result code")
    elif code is None:
        problems.append(f"unknown result code {form.result_code!r}")
    body: dict[str, Any] = {"command": "disposition", "result_code": form.result_code}
    if form.note.strip():
        body["note"] = form.note
    if code is not None and code.detail_screen and form.detail_note.strip():
        body["detail_note"] = form.detail_note
    if code is not None and code.require_email:
        if not _EMAIL.match(form.email_to.strip()):
            problems.append(f"{code.label!r} needs the customer's e-mail address")
        else:
            body["email_to"] = form.email_to.strip()
    chosen = {k: list(v) for k, v in form.registration.items() if v}
    problems += registration_problems(screen.categories, chosen, screen.registration_forced)
    if chosen:
        body["registration"] = chosen
    if form.reschedule.enabled:
        try:
            body["reschedule"] = reschedule_payload(form.reschedule, now)
        except ConsoleInputError as exc:
            problems += exc.problems
    if problems:
        raise ConsoleInputError(problems)
    return body


def voicemail_payload(note: str = "") -> dict[str, Any]:
    """R-REG-4a "mark as voicemail": a disposition without a code, the machine flag set."""
    body: dict[str, Any] = {"command": "disposition", "voicemail": True}
    if note.strip():
        body["note"] = note
    return body


def pause_payload(reason: str) -> dict[str, Any]:
    return {"command": "pause", "reason": reason.strip() or "pause"}


def login_payload(campaigns: Sequence[str]) -> dict[str, Any]:
    return {"command": "login", "campaigns": list(campaigns)}
