"""Disposition registration: categories and topics, forced registration, statistics
(R-REG-1, R-REG-2, R-REG-3)."""

from __future__ import annotations

import pytest

from dialerd.queue import (
    RegistrationCategory,
    RegistrationError,
    RegistrationRecord,
    registration_problems,
    registration_stats,
    validate_registration,
)
from tests.unit.queue_builders import TOPICS, at

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("registration", "forced", "problems"),
    [
        # registration,                                 forced, expected problems
        ({"reason": ("price",)}, False, []),
        ({"interest": ("solar", "battery")}, False, []),  # multi-choice (checkbox)
        ({"reason": ("price",), "interest": ("solar",)}, True, []),
        ({"reason": ("price", "quality")}, False, ["single-choice: pick one topic, not 2"]),
        ({"reason": ("cheap",)}, False, ["unknown topic(s) 'cheap'"]),
        ({"mood": ("happy",)}, False, ["unknown registration category 'mood'"]),
        ({"interest": ("solar", "solar")}, False, ["chosen twice"]),
        (None, False, []),
        (None, True, ["registration is required"]),
        ({"reason": ()}, True, ["registration is required"]),
    ],
)
def test_categories_and_topics_single_and_multi_choice_r_reg_1_r_reg_2(
    registration: dict[str, tuple[str, ...]] | None, forced: bool, problems: list[str]
) -> None:
    """R-REG-1: radio categories take one topic, checkbox categories several;
    R-REG-2: forced registration needs at least one chosen topic."""
    found = registration_problems(TOPICS, registration, forced)
    assert len(found) == len(problems)
    for want, got in zip(problems, found, strict=True):
        assert want in got
    if problems:
        with pytest.raises(RegistrationError):
            validate_registration(TOPICS, registration, forced)
    else:
        validate_registration(TOPICS, registration, forced)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("empty", ()), "at least one topic"),
        (("twice", ("a", "a")), "repeats a topic"),
    ],
)
def test_bad_category_definitions_are_refused_r_reg_1(
    args: tuple[str, tuple[str, ...]], problem: str
) -> None:
    """R-REG-1: an admin-defined category needs distinct topics."""
    with pytest.raises(ValueError, match=problem):
        RegistrationCategory(*args)


RECORDS = [
    RegistrationRecord(at("mon 09:00"), "ann", {"reason": ("price",), "interest": ("solar",)}),
    RegistrationRecord(at("mon 10:00"), "bob", {"reason": ("price",)}, inbound=True),
    RegistrationRecord(at("tue 11:00"), "ann", {"interest": ("solar", "battery")}),
    RegistrationRecord(at("wed 12:00"), "cem", {"reason": ("service",)}),  # outside period
    RegistrationRecord(at("sun 12:00"), "cem", {"reason": ("quality",)}),  # outside period
]


def test_statistics_per_topic_and_category_over_a_period_r_reg_3() -> None:
    """R-REG-3: counts per topic and category over a period, across all agents, inbound
    and outbound alike (R-REG-1)."""
    stats = registration_stats(RECORDS, at("mon 00:00"), at("wed 12:00"))
    assert stats.calls == 3
    assert stats.per_category == {"reason": 2, "interest": 2}
    assert stats.per_topic == {
        ("reason", "price"): 2,
        ("interest", "solar"): 2,
        ("interest", "battery"): 1,
    }
    empty = registration_stats(RECORDS, at("thu 00:00"), at("fri 00:00"))
    assert (empty.calls, empty.per_category, empty.per_topic) == (0, {}, {})
