"""Calling hours, evaluated in the lead's own time zone (R-DL-4).

A campaign's windows are local wall-clock times ("Mon–Fri 09:00–21:00"), applied in each
lead's IANA zone, so one campaign across Amsterdam and New York calls both at 09:00 local.
Holidays are local dates with no window at all. An unknown zone is never "open": the safe
answer to "may we call now?" when we cannot tell the local time is no.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Window:
    """One daily window: ``weekday`` 0=Monday … 6=Sunday, local ``start`` ≤ t < ``end``."""

    weekday: int
    start: time
    end: time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday) … 6 (Sunday), got {self.weekday}")
        if not self.start < self.end:
            raise ValueError(
                f"window on {WEEKDAYS[self.weekday]}: start {self.start} must be before end "
                f"{self.end} (split windows that cross midnight)"
            )


@dataclass(frozen=True)
class CallingHours:
    """When leads may be called: weekly local windows minus local holidays."""

    windows: tuple[Window, ...]
    holidays: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def weekdays(
        cls, start: time, end: time, holidays: frozenset[date] = frozenset()
    ) -> CallingHours:
        """Monday to Friday, the same window each day: the common case."""
        return cls(tuple(Window(d, start, end) for d in range(5)), holidays)

    @classmethod
    def always(cls) -> CallingHours:
        """Every minute of every day (tests and internal campaigns only)."""
        return cls(tuple(Window(d, time(0), time.max) for d in range(7)))

    def __hash__(self) -> int:
        """Computed once: the hours are a key of :func:`calling_allowed`'s memo, looked up
        for every candidate of a selection, and hashing the windows anew each time cost
        more than the lookup saved."""
        return self._hash

    @cached_property
    def _hash(self) -> int:
        return hash((self.windows, self.holidays))


class UnknownTimeZone(ValueError):
    """The lead's time zone is not an IANA zone this machine knows."""


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for ``name``; raises :class:`UnknownTimeZone` with the name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimeZone(f"unknown time zone {name!r}") from exc


def require_aware(now: datetime) -> datetime:
    """Reject naive datetimes: every rule works on absolute instants."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"expected a time-zone-aware datetime, got naive {now.isoformat()}")
    return now


def zones(tz: str) -> tuple[str, ...]:
    """The zones of a lead: one IANA name, or several joined by "," for a number whose zone
    is ambiguous (a call must then be allowed in every one of them)."""
    names = tuple(n.strip() for n in tz.split(",") if n.strip())
    if not names:
        raise UnknownTimeZone(f"no time zone given ({tz!r})")
    for name in names:
        zone(name)
    return names


def is_open(hours: CallingHours, tz: str, now: datetime) -> bool:
    """Whether ``now`` falls inside a window in zone ``tz`` (in each of several zones)."""
    require_aware(now)
    return all(_open_in(hours, name, now) for name in zones(tz))


@lru_cache(maxsize=4096)
def calling_allowed(hours: CallingHours, tz: str, now: datetime) -> bool:
    """Whether a lead in zone ``tz`` may be called at ``now``: :func:`is_open`, and never for
    an unknown zone. Memoised: a campaign's leads share a handful of zones and a selection
    asks about all of them at one ``now``."""
    try:
        return is_open(hours, tz, now)
    except UnknownTimeZone:
        return False


def _open_in(hours: CallingHours, tz: str, now: datetime) -> bool:
    local = now.astimezone(zone(tz))
    if local.date() in hours.holidays:
        return False
    t = local.time().replace(tzinfo=None)
    return any(w.weekday == local.weekday() and w.start <= t < w.end for w in hours.windows)


def next_opening(
    hours: CallingHours, tz: str, now: datetime, horizon_days: int = 400
) -> datetime | None:
    """The first instant ≥ ``now`` at which calling is allowed, in UTC; ``None`` if none
    within ``horizon_days`` (e.g. no windows at all, or zones whose windows never overlap)."""
    require_aware(now)
    names = zones(tz)
    limit = now + timedelta(days=horizon_days)
    t = now.astimezone(UTC)
    # Each zone's next opening is ≥ t; the first instant open in all zones is the fixed
    # point of "jump to the latest of the zones' next openings".
    while t <= limit:
        openings = [_next_opening_in(hours, name, t, horizon_days) for name in names]
        if any(o is None for o in openings):
            return None
        latest = max(o for o in openings if o is not None)
        if latest == t:
            return t
        t = latest
    return None


def _next_opening_in(
    hours: CallingHours, tz: str, now: datetime, horizon_days: int
) -> datetime | None:
    if _open_in(hours, tz, now):
        return now
    z = zone(tz)
    today = now.astimezone(z).date()
    for offset in range(horizon_days + 1):
        day = today + timedelta(days=offset)
        if day in hours.holidays:
            continue
        starts = sorted(w.start for w in hours.windows if w.weekday == day.weekday())
        for start in starts:
            candidate = _local_start(day, start, z)
            if candidate > now and _open_in(hours, tz, candidate):
                return candidate
    return None


def _local_start(day: date, start: time, z: ZoneInfo) -> datetime:
    """The UTC instant local ``day start`` begins; for a start inside a DST gap (a wall
    time that never happens), the first real instant after the gap."""
    before = datetime.combine(day, start, tzinfo=z)
    utc = before.astimezone(UTC)
    if utc.astimezone(z).replace(tzinfo=None) == before.replace(tzinfo=None):
        return utc
    # In a gap: fold=1 reads the wall time with the post-transition offset (an instant
    # before the jump), fold=0 with the earlier offset (after it). Transitions fall on whole
    # seconds, so bisect over integer timestamps for the first instant past the jump.
    lo = int(before.replace(fold=1).timestamp())
    hi = int(utc.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        local = datetime.fromtimestamp(mid, z)
        if (local.date(), local.time()) >= (day, start):
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)
