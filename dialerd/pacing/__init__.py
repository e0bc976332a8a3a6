"""Call pacing: how many calls to launch now (the contract in docs/pacing.md).

Pure policy code: no I/O, no clock, no asyncio.  The daemon, the simulator
(`dialerd.pacing.sim`) and benchmarks all drive a pacer through `plan` and `record`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dialerd.pacing.model import RESULTS, AgentCycle, DialOutcome, Floor, Pacer
from dialerd.pacing.predictive import PredictivePacer
from dialerd.pacing.settings import MODES, parse_settings, valid_settings
from dialerd.pacing.simple import PreviewPacer, ProgressivePacer, RatioPacer

__all__ = [
    "MODES",
    "RESULTS",
    "AgentCycle",
    "DialOutcome",
    "Floor",
    "Pacer",
    "create_pacer",
    "valid_settings",
]

_CLASSES: dict[str, type[PreviewPacer] | type[PredictivePacer]] = {
    "preview": PreviewPacer,
    "progressive": ProgressivePacer,
    "ratio": RatioPacer,
    "predictive": PredictivePacer,
}


def create_pacer(mode: str, settings: Mapping[str, Any] | None = None) -> Pacer:
    """A fresh pacer for one campaign; ValueError names valid modes/settings on bad input."""
    resolved = parse_settings(mode, settings)
    return _CLASSES[mode](resolved)
