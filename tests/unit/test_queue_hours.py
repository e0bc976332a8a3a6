"""Calling hours in the lead's own time zone (R-DL-4)."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from dialerd.queue import CallingHours, UnknownTimeZone, Window, is_open, next_opening
from tests.unit.queue_builders import OFFICE_HOURS, at

pytestmark = pytest.mark.unit

AMS = "Europe/Amsterdam"  # UTC+1 in winter, +2 in summer
NYC = "America/New_York"  # UTC-5 in winter
HOLIDAY = CallingHours.weekdays(time(9), time(21), frozenset({date(2026, 12, 25)}))


@pytest.mark.parametrize(
    ("hours", "tz", "now", "open_", "next_"),
    [
        # hours,       zone, now (UTC),             open?, next opening (UTC)
        (OFFICE_HOURS, AMS, "mon 07:59", False, "mon 08:00"),  # 08:59 local
        (OFFICE_HOURS, AMS, "mon 08:00", True, "mon 08:00"),  # 09:00 local
        (OFFICE_HOURS, AMS, "mon 19:59", True, "mon 19:59"),
        (OFFICE_HOURS, AMS, "mon 20:00", False, "tue 08:00"),  # 21:00 local: closed
        (OFFICE_HOURS, NYC, "mon 13:59", False, "mon 14:00"),  # 08:59 in New York
        (OFFICE_HOURS, NYC, "tue 01:30", True, "tue 01:30"),  # Mon 20:30 in New York
        (OFFICE_HOURS, AMS, "fri 20:00", False, "mon+7 08:00"),  # weekend skipped
        (OFFICE_HOURS, AMS, "sat 12:00", False, "mon+7 08:00"),
        (OFFICE_HOURS, "Asia/Tokyo", "mon 00:00", True, "mon 00:00"),  # Mon 09:00 JST
        (HOLIDAY, AMS, "fri+28 10:00", False, "mon+35 08:00"),  # Christmas is a Friday
        (HOLIDAY, AMS, "thu+28 10:00", True, "thu+28 10:00"),
        (CallingHours(()), AMS, "mon 10:00", False, None),  # no window at all
    ],
)
def test_calling_hours_in_the_leads_time_zone_r_dl_4(
    hours: CallingHours, tz: str, now: str, open_: bool, next_: str | None
) -> None:
    """R-DL-4: windows are local wall-clock times in each lead's IANA zone."""
    assert is_open(hours, tz, at(now)) is open_
    assert next_opening(hours, tz, at(now)) == (at(next_) if next_ else None)


@pytest.mark.parametrize(
    ("now", "open_", "next_"),
    [
        # Amsterdam springs forward Sun 2026-03-29 02:00 → 03:00; window Sun 02:30–04:00
        ("2026-03-29 00:59", False, "2026-03-29 01:00"),  # 01:59 CET → opens at 03:00 CEST
        ("2026-03-29 01:00", True, "2026-03-29 01:00"),  # 03:00 CEST
        ("2026-03-29 02:00", False, "2026-04-05 00:30"),  # 04:00 CEST: closed till next Sun
    ],
)
def test_window_inside_a_dst_gap_opens_at_the_first_real_instant_r_dl_4(
    now: str, open_: bool, next_: str
) -> None:
    """R-DL-4: a window starting in the spring-forward gap opens when local time resumes."""
    hours = CallingHours((Window(6, time(2, 30), time(4)),))
    assert is_open(hours, AMS, at(now)) is open_
    assert next_opening(hours, AMS, at(now)) == at(next_)


@pytest.mark.parametrize(
    ("now", "open_", "next_"),
    [
        # Amsterdam 09-21 (UTC 08-20) and New York 09-21 (UTC 14-02) overlap UTC 14-20
        ("mon 10:00", False, "mon 14:00"),
        ("mon 14:00", True, "mon 14:00"),
        ("mon 19:59", True, "mon 19:59"),
        ("mon 20:00", False, "tue 14:00"),
    ],
)
def test_ambiguous_number_must_be_inside_hours_in_every_zone_r_dl_4(
    now: str, open_: bool, next_: str
) -> None:
    """R-DL-4: a number whose zone is ambiguous is called only when all its zones allow."""
    tz = "Europe/Amsterdam,America/New_York"
    assert is_open(OFFICE_HOURS, tz, at(now)) is open_
    assert next_opening(OFFICE_HOURS, tz, at(now)) == at(next_)


def test_zones_that_never_overlap_have_no_opening_r_dl_4() -> None:
    """R-DL-4: Amsterdam 09-12 and Tokyo 09-12 never coincide: never dialled."""
    hours = CallingHours.weekdays(time(9), time(12))
    assert next_opening(hours, "Europe/Amsterdam,Asia/Tokyo", at("mon 10:00"), 30) is None


def test_naive_datetimes_and_unknown_zones_are_refused_r_dl_4() -> None:
    """R-DL-4: the rules never guess: no naive instants, no unknown zones."""
    with pytest.raises(ValueError, match="naive"):
        is_open(OFFICE_HOURS, AMS, datetime(2026, 11, 23, 10))
    with pytest.raises(UnknownTimeZone, match="Mars/Olympus"):
        is_open(OFFICE_HOURS, "Mars/Olympus", at("mon 10:00"))


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ((7, time(9), time(17)), "weekday"),
        ((0, time(17), time(9)), "before end"),
        ((0, time(9), time(9)), "before end"),
    ],
)
def test_bad_windows_are_refused_r_dl_4(args: tuple[int, time, time], problem: str) -> None:
    """R-DL-4: a window that cannot be evaluated is a configuration error, named."""
    with pytest.raises(ValueError, match=problem):
        Window(*args)
