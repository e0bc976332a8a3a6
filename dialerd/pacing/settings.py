"""Validation of `create_pacer` settings: one table of keys, defaults and bounds per mode.

A campaign's YAML feeds these straight through, so a typo must fail loudly and name what
would have been accepted rather than silently falling back to a default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MODES = ("preview", "progressive", "ratio", "predictive")
DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class _Spec:
    default: float
    low: float
    high: float
    integer: bool = False
    low_open: bool = False

    def check(self, key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"setting {key!r} must be a number, got {value!r}")
        number = float(value)
        if math.isnan(number):
            raise ValueError(f"setting {key!r} must be a number, got NaN")
        if self.integer and number != int(number):
            raise ValueError(f"setting {key!r} must be a whole number, got {value!r}")
        too_low = number <= self.low if self.low_open else number < self.low
        if too_low or number > self.high:
            bracket = "(" if self.low_open else "["
            raise ValueError(
                f"setting {key!r}={value!r} is outside {bracket}{self.low:g}, {self.high:g}]"
            )
        return number


_COMMON: dict[str, _Spec] = {
    "max_abandon_rate": _Spec(0.03, 0.0, 0.5, low_open=True),
    "connect_deadline": _Spec(2.0, 0.0, 60.0, low_open=True),
    "max_ratio": _Spec(3.0, 1.0, 50.0),
}
_BY_MODE: dict[str, dict[str, _Spec]] = {
    "preview": {},
    "progressive": {},
    "ratio": {"ratio": _Spec(1.5, 0.0, 50.0, low_open=True)},
    "predictive": {
        # The model sizes the dialing; the ceiling only guards against a confused model.
        # 3 starves low-answer lists: at 9 % live (15 % drifting down by 40 %) one agent
        # needs ~11 launches per 40 s cycle, each ~16 s in flight, i.e. ~4.4 per agent.
        "max_ratio": _Spec(5.0, 1.0, 50.0),
        # 0 means "a little under the cap": 0.9 x max_abandon_rate.
        "target_abandon_rate": _Spec(0.0, 0.0, 0.5),
        "amd_false_positive_rate": _Spec(0.005, 0.0, 0.2),
        "adapt_seconds": _Spec(90.0, 1.0, DAY, low_open=True),
        "min_live_answers": _Spec(30, 0, 10_000, integer=True),
        "min_agent_cycles": _Spec(10, 0, 10_000, integer=True),
        "fcc_window_seconds": _Spec(30 * DAY, 60.0, 365 * DAY),
        "ofcom_window_seconds": _Spec(DAY, 60.0, 365 * DAY),
    },
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings; fields a mode does not accept keep their defaults."""

    max_abandon_rate: float = 0.03
    connect_deadline: float = 2.0
    max_ratio: float = 3.0
    ratio: float = 1.5
    target_abandon_rate: float = 0.027
    amd_false_positive_rate: float = 0.005
    adapt_seconds: float = 90.0
    min_live_answers: int = 30
    min_agent_cycles: int = 10
    fcc_window_seconds: float = 30 * DAY
    ofcom_window_seconds: float = DAY


def valid_settings(mode: str) -> tuple[str, ...]:
    """The setting names `mode` accepts, in a stable order for error messages."""
    return tuple(dict.fromkeys((*_COMMON, *_BY_MODE[mode])))


def parse_settings(mode: str, settings: Mapping[str, Any] | None) -> Settings:
    """Check `settings` for `mode` and return them resolved, or raise ValueError."""
    if mode not in _BY_MODE:
        raise ValueError(f"unknown pacing mode {mode!r}; valid modes: {', '.join(MODES)}")
    if settings is None:
        settings = {}
    if not isinstance(settings, Mapping):
        raise ValueError(f"pacing settings must be a mapping, got {type(settings).__name__}")
    specs = {**_COMMON, **_BY_MODE[mode]}
    values: dict[str, float] = {key: spec.default for key, spec in specs.items()}
    for key, raw in settings.items():
        spec = specs.get(key)
        if spec is None:
            raise ValueError(
                f"unknown setting {key!r} for pacing mode {mode!r}; "
                f"valid settings: {', '.join(valid_settings(mode))}"
            )
        values[key] = spec.check(key, raw)
    if mode == "ratio" and values["ratio"] > values["max_ratio"]:
        raise ValueError(
            f"setting 'ratio'={values['ratio']:g} exceeds 'max_ratio'={values['max_ratio']:g}"
        )
    if mode == "predictive":
        target = values["target_abandon_rate"] or 0.9 * values["max_abandon_rate"]
        if target > values["max_abandon_rate"]:
            raise ValueError(
                f"setting 'target_abandon_rate'={target:g} exceeds "
                f"'max_abandon_rate'={values['max_abandon_rate']:g}"
            )
        values["target_abandon_rate"] = target
    for key in ("min_live_answers", "min_agent_cycles"):
        if key in values:
            values[key] = int(values[key])
    return Settings(**values)  # type: ignore[arg-type]
