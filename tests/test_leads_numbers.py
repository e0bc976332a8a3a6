"""Number normalisation and calling-hours zones (issue 4, R-DL-4)."""

from __future__ import annotations

import datetime as dt

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import timezone as pn_timezone

from dialerd.config import CallingHours
from dialerd.leads.numbers import NumberError, NumberNormalizer, number_type, open_zones

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


@st.composite
def near_valid_numbers(draw: st.DrawFn) -> phonenumbers.PhoneNumber:
    """Example numbers of every region and type, with a few digits changed."""
    region = draw(st.sampled_from(REGIONS))
    kind = draw(st.integers(0, 11))
    example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(
        region
    )
    assert example is not None
    digits = list(str(example.national_number))
    for _ in range(draw(st.integers(0, 3))):
        digits[draw(st.integers(0, len(digits) - 1))] = str(draw(st.integers(0, 9)))
    digits = digits[: len(digits) - draw(st.integers(0, 1))] + draw(
        st.lists(st.sampled_from("0123456789"), max_size=1)
    )
    return phonenumbers.PhoneNumber(
        country_code=example.country_code, national_number=int("".join(digits) or "0")
    )


@settings(max_examples=3000, deadline=None)
@given(near_valid_numbers())
def test_number_type_equals_phonenumbers(number: phonenumbers.PhoneNumber) -> None:
    """The fast classifier is phonenumbers.number_type, rule for rule."""
    assert number_type(number) == phonenumbers.number_type(number)


@settings(max_examples=1500, deadline=None)
@given(near_valid_numbers())
def test_normalize_equals_phonenumbers(number: phonenumbers.PhoneNumber) -> None:
    """E.164 text, validity and zones are phonenumbers' own answers, through the fast path."""
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    zones = sorted(z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown")
    normalizer = NumberNormalizer("NL")
    if not phonenumbers.is_valid_number(number):
        # Invalid, or too short to parse at all (+470): both are refused, each saying so.
        with pytest.raises(NumberError, match=r"is not a (valid )?phone number"):
            normalizer.normalize(e164)
    elif not zones:
        with pytest.raises(NumberError, match="cannot tell the time zone"):
            normalizer.normalize(e164)
    else:
        assert normalizer.normalize(e164) == (e164, ",".join(zones))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("020 123 4567", ("+31201234567", "Europe/Amsterdam")),
        ("+31 (0)20-1234567", ("+31201234567", "Europe/Amsterdam")),
        ("+31612345678", ("+31612345678", "Europe/Amsterdam")),
        ("+1 212 736 5000", ("+12127365000", "America/New_York")),
        ("+39 02 1234 5678", ("+390212345678", "Europe/Rome")),  # Italian leading zero
        ("0049 30 12345678", ("+493012345678", "Europe/Berlin")),
    ],
)
def test_normalize(raw: str, expected: tuple[str, str]) -> None:
    assert NumberNormalizer("NL").normalize(raw) == expected


def test_ambiguous_zone_keeps_every_candidate() -> None:
    number, key = NumberNormalizer("NL").normalize("+7 916 123 4567")  # a Russian mobile
    assert number == "+79161234567"
    assert "Europe/Moscow" in key.split(",")
    assert "Asia/Vladivostok" in key.split(",")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "the number is empty"),
        ("12345", "'12345' is not a valid phone number (country NL)"),
        (
            "call me",
            "'call me' is not a phone number: "
            "the string supplied did not seem to be a phone number",
        ),
        (
            "+999 1234",
            "'+999 1234' is not a phone number: could not interpret numbers after plus-sign",
        ),
    ],
)
def test_bad_numbers(raw: str, message: str) -> None:
    with pytest.raises(NumberError) as caught:
        NumberNormalizer("NL").normalize(raw)
    assert str(caught.value) == message


def test_unknown_zone_falls_back_or_fails() -> None:
    """Non-geographic numbers (here a Dutch 0800) have no zone of their own."""
    raw = "+800 1234 5678"  # international freephone: no country, no zone
    with pytest.raises(NumberError, match="cannot tell the time zone of"):
        NumberNormalizer("NL").normalize(raw)
    assert NumberNormalizer("NL", "Europe/Amsterdam").normalize(raw)[1] == "Europe/Amsterdam"


def test_open_zones_need_every_candidate_open() -> None:
    hours = CallingHours.model_validate({"wed": ["09:00-21:00"], "holidays": ["2026-12-25"]})
    now = dt.datetime(2026, 11, 25, 16, 0, tzinfo=dt.UTC)  # Wed: 17:00 NL, 11:00 NY, 08:00 LA
    keys = ["Europe/Amsterdam", "America/New_York", "America/Los_Angeles",
            "America/Los_Angeles,America/New_York"]  # fmt: skip
    assert open_zones(hours, keys, now) == ["Europe/Amsterdam", "America/New_York"]
    christmas = dt.datetime(2026, 12, 25, 12, 0, tzinfo=dt.UTC)
    assert open_zones(hours, keys, christmas) == []
    with pytest.raises(ValueError, match="aware"):
        open_zones(hours, keys, dt.datetime(2026, 11, 25, 16, 0))
