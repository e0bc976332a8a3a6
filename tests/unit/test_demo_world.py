"""The simulated world's number plan (asterisk/world/extensions_world.conf)."""

from __future__ import annotations

import re

import phonenumbers
import pytest

from dialerd.demo.world import generate, world_number


def test_number_encodes_behaviour_ring_and_serial() -> None:
    number = world_number("machine", 7, 42)
    assert number == "+31612070042"
    assert number[-7:] == "2070042"  # B RR SSSS, as the dialplan reads it


def test_numbers_are_valid_e164() -> None:
    for callee in generate(200, seed=1):
        assert phonenumbers.is_valid_number(phonenumbers.parse(callee.number))


def test_same_seed_same_world_and_numbers_are_distinct() -> None:
    a, b = generate(500, seed=7), generate(500, seed=7)
    assert a == b
    assert generate(500, seed=8) != a
    assert len({c.number for c in a}) == 500


def test_bad_requests_say_what_is_allowed() -> None:
    with pytest.raises(ValueError, match="unknown behaviour 'fax'; one of human, machine"):
        world_number("fax", 3, 1)
    with pytest.raises(ValueError, match=re.escape("ring_seconds must be 1..60")):
        world_number("human", 0, 1)
