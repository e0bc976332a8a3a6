"""Pure parts of the AMI client (the rest runs against the sandbox in tests/pbx/)."""

from __future__ import annotations

import itertools
import random

from dialerd.ami.client import backoff_delays


def test_backoff_doubles_up_to_the_cap_with_equal_jitter() -> None:
    delays = list(itertools.islice(backoff_delays(0.5, 8.0, random.Random(1)), 12))
    ceilings = [min(8.0, 0.5 * 2**n) for n in range(12)]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays[6:]) <= 8.0
    assert min(delays[6:]) >= 4.0


def test_backoff_jitter_spreads_two_clients_apart() -> None:
    a = list(itertools.islice(backoff_delays(rng=random.Random(1)), 8))
    b = list(itertools.islice(backoff_delays(rng=random.Random(2)), 8))
    assert a != b
