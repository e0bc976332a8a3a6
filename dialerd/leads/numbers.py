"""Phone numbers to E.164 and their time zones, and which zones may be called right now.

A lead's time zone is stored as a *zone key*: one IANA name, or, when the number cannot be
pinned to one zone (a Russian mobile, say), every candidate joined by ','. A key is open for
calling only when the calling hours allow it in *every* zone it names: the safe answer when
we cannot tell the callee's local time.

Normalisation is on the import hot path (a million rows), so it does the expensive part of
``phonenumbers`` once per number: numbers already written as ``+<digits>`` skip the generic
parser, and validity and type come from one ``number_type`` call.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberType
from phonenumbers import timezone as pn_timezone

from dialerd.config.models import CallingHours, check_timezone

_UNKNOWN_ZONE = "Etc/Unknown"
_STRIP = str.maketrans("", "", " -().\u00a0/\t")
_COUNTRY_CODES = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


class NumberError(ValueError):
    """A number that cannot be dialed; the message says why, for the import report."""


class NumberNormalizer:
    """Normalises raw numbers for one campaign's default region and fallback zone."""

    def __init__(self, default_region: str, default_timezone: str | None = None) -> None:
        self.default_region = default_region
        self.default_timezone = default_timezone
        self._country_zones: dict[int, tuple[str, ...]] = {}

    def normalize(self, raw: str, region: str | None = None) -> tuple[str, str]:
        """(E.164 number, zone key) for `raw`, read as a number of `region` when national.

        Raises `NumberError` for anything that is not a valid, dialable number.
        """
        text = raw.strip()
        if not text:
            raise NumberError("the number is empty")
        number = self._parse(text, region or self.default_region)
        kind = phonenumbers.number_type(number)
        country = number.country_code or 0
        if kind == PhoneNumberType.UNKNOWN:
            where = phonenumbers.region_code_for_country_code(country)
            raise NumberError(f"{raw!r} is not a valid phone number (country {where})")
        if number.italian_leading_zero:
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        else:
            e164 = f"+{country}{number.national_number}"
        return e164, self._zone_key(number, country, kind, raw)

    def _parse(self, text: str, region: str) -> PhoneNumber:
        compact = text.translate(_STRIP)
        if compact.startswith("+") and compact[1:].isdigit():
            digits = compact[1:]
            for size in (1, 2, 3):  # country codes are prefix-free
                if int(digits[:size] or "0") in _COUNTRY_CODES:
                    national = digits[size:]
                    if national and national[0] != "0" and len(national) <= 17:
                        return PhoneNumber(
                            country_code=int(digits[:size]), national_number=int(national)
                        )
                    break
        try:
            return phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException as exc:
            reason = re.sub(r"^\(\d+\)\s*", "", str(exc)).rstrip(".").lower()
            raise NumberError(f"{text!r} is not a phone number: {reason}") from None

    def _zone_key(self, number: PhoneNumber, country: int, kind: int, raw: str) -> str:
        zones: tuple[str, ...]
        if phonenumbers.is_number_type_geographical(kind, country):
            zones = pn_timezone.time_zones_for_geographical_number(number)
        elif country in self._country_zones:
            zones = self._country_zones[country]
        else:  # mobiles etc.: the zones of the whole country, the same for every number
            zones = pn_timezone.time_zones_for_number(number)
            self._country_zones[country] = zones
        known = [z for z in zones if z != _UNKNOWN_ZONE]
        if known:
            return ",".join(sorted(known))
        if self.default_timezone:
            return self.default_timezone
        raise NumberError(
            f"cannot tell the time zone of {raw!r}; add a time-zone column "
            "or set default_timezone in the campaign"
        )


def zone_key(name: str) -> str:
    """Validate an explicit zone (from a CSV column) and return it as a key."""
    try:
        return check_timezone(name.strip())
    except ValueError as exc:
        raise NumberError(str(exc)) from None


@lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def open_zones(hours: CallingHours, keys: Iterable[str], now: dt.datetime) -> list[str]:
    """The zone keys in which calling hours allow a call at instant `now` (tz-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be time-zone aware")
    return [
        key for key in keys if all(hours.allows(now.astimezone(_zone(z))) for z in key.split(","))
    ]
