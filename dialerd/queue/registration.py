"""Disposition registration on the agent side: validation and statistics (R-REG-1..3).

A registration is a mapping ``category name → chosen topics``. It is independent of leads
and campaigns' dial state so the same rules serve inbound calls (R-REG-1).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from dialerd.queue.hours import require_aware
from dialerd.queue.model import RegistrationCategory

Registration = Mapping[str, tuple[str, ...]]


class RegistrationError(ValueError):
    """The registration is invalid, or missing where it is forced; lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def registration_problems(
    categories: Iterable[RegistrationCategory],
    registration: Registration | None,
    forced: bool,
) -> list[str]:
    """Everything wrong with ``registration``; empty when the call may be closed."""
    by_name = {c.name: c for c in categories}
    chosen = {k: v for k, v in (registration or {}).items() if v}
    problems: list[str] = []
    if forced and not chosen:
        problems.append("registration is required before the call can be closed (R-REG-2)")
    for name, topics in chosen.items():
        category = by_name.get(name)
        if category is None:
            problems.append(f"unknown registration category {name!r}")
            continue
        unknown = [t for t in topics if t not in category.topics]
        if unknown:
            problems.append(f"category {name!r}: unknown topic(s) {', '.join(map(repr, unknown))}")
        if len(set(topics)) != len(topics):
            problems.append(f"category {name!r}: a topic is chosen twice")
        if not category.multi and len(topics) > 1:
            problems.append(
                f"category {name!r} is single-choice: pick one topic, not {len(topics)}"
            )
    return problems


def validate_registration(
    categories: Iterable[RegistrationCategory],
    registration: Registration | None,
    forced: bool,
) -> None:
    """Raise :class:`RegistrationError` unless the call may be closed with this registration."""
    problems = registration_problems(categories, registration, forced)
    if problems:
        raise RegistrationError(problems)


@dataclass(frozen=True)
class RegistrationRecord:
    """One registered call, as the statistics read it."""

    at: datetime
    agent: str
    registration: Registration
    inbound: bool = False


@dataclass(frozen=True)
class RegistrationStats:
    """Counts over a period across all agents (R-REG-3)."""

    calls: int
    per_category: Mapping[str, int]
    """Calls with at least one topic chosen in the category."""
    per_topic: Mapping[tuple[str, str], int]
    """Times each (category, topic) was chosen."""


def registration_stats(
    records: Iterable[RegistrationRecord], start: datetime, end: datetime
) -> RegistrationStats:
    """Aggregate the records with ``start ≤ at < end``."""
    require_aware(start)
    require_aware(end)
    calls = 0
    per_category: Counter[str] = Counter()
    per_topic: Counter[tuple[str, str]] = Counter()
    for record in records:
        if not start <= record.at < end:
            continue
        calls += 1
        for category, topics in record.registration.items():
            if topics:
                per_category[category] += 1
            for topic in topics:
                per_topic[(category, topic)] += 1
    return RegistrationStats(calls, dict(per_category), dict(per_topic))
