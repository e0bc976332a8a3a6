"""Numbers for the simulated world (asterisk/world/extensions_world.conf).

A world number's last seven digits are ``B RR SSSS``: behaviour, ring seconds, serial. The
generator draws a mix of behaviours and ring times from a seed, so a demo or a test run
with the same seed meets the same customers. Numbers are valid Dutch mobile numbers
(+31 6 1BRRSSSS) so they pass the same E.164 validation as real leads.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

BEHAVIOUR_DIGITS: Mapping[str, int] = {
    "human": 1,
    "machine": 2,
    "busy": 3,
    "no_answer": 4,
    "congestion": 5,
    "invalid": 6,
}
DEFAULT_MIX: Mapping[str, float] = {
    "human": 0.45,
    "machine": 0.20,
    "busy": 0.10,
    "no_answer": 0.15,
    "congestion": 0.05,
    "invalid": 0.05,
}


@dataclass(frozen=True)
class WorldCallee:
    number: str
    behaviour: str
    ring_seconds: int


def world_number(behaviour: str, ring_seconds: int, serial: int) -> str:
    """The E.164 number whose callee behaves as asked (serial < 10000)."""
    if behaviour not in BEHAVIOUR_DIGITS:
        raise ValueError(f"unknown behaviour {behaviour!r}; one of {', '.join(BEHAVIOUR_DIGITS)}")
    if not 1 <= ring_seconds <= 60:
        raise ValueError("ring_seconds must be 1..60")
    return f"+3161{BEHAVIOUR_DIGITS[behaviour]}{ring_seconds:02d}{serial % 10000:04d}"


def generate(
    count: int,
    seed: int,
    mix: Mapping[str, float] = DEFAULT_MIX,
    ring: tuple[int, int] = (2, 20),
) -> list[WorldCallee]:
    """`count` distinct callees drawn from `mix`; deterministic for a seed."""
    if count > 10000:
        raise ValueError("the world has 10,000 serials per behaviour and ring time; ask for fewer")
    rng = random.Random(seed)
    names = list(mix)
    weights = [mix[name] for name in names]
    callees = []
    for serial in range(count):
        behaviour = rng.choices(names, weights)[0]
        ring_seconds = rng.randint(*ring)
        number = world_number(behaviour, ring_seconds, serial)
        callees.append(WorldCallee(number, behaviour, ring_seconds))
    return callees
