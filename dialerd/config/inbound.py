"""Inbound configuration (R-LOG-3..6): employees and their extensions, routing scenarios per
dialed number, caller-ID lookup sources, the too-long threshold and recordings.

It lives in ``inbound.yaml`` beside ``dialerd.yaml`` (optional; every key has a default) and
is loaded with the same located errors (file, line, key) as the rest of the configuration::

    default_region: NL
    employees:
      alice: {name: Alice, extension: "2001", endpoint: PJSIP/2001}
      bob:   {name: Bob, extension: "2002", endpoint: PJSIP/2002}
    groups:
      support: ["2002", "2003"]
    routes:
      "+31850001111":
        strategy: hunt            # ring_one | hunt | ring_all
        members: ["2001", "2002"]
        step_timeout: 15
        linked_agent_first: true
        fallback: {kind: group, target: support}
    default_route: {strategy: ring_all, members: ["2001", "2002"]}
    too_long: {threshold_seconds: 600, reviewer_email: qa@example.com}
    recordings: {directory: /var/spool/dialerd/recordings, retention_days: 90}
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import phonenumbers
from pydantic import Field, model_validator

from dialerd.config.loader import ConfigError, ConfigIssue, _load_merged, _validate
from dialerd.config.models import InvalidKey, _check_region, _Strict
from dialerd.store.models import ClientType

__all__ = [
    "Employee",
    "Fallback",
    "FallbackKind",
    "InboundConfig",
    "LookupConfig",
    "RecordingsConfig",
    "RouteScenario",
    "Strategy",
    "TooLongConfig",
    "load_inbound",
    "normalise_dialed",
]

INBOUND_FILE = "inbound.yaml"
_EXTENSION = r"^[0-9A-Za-z_\-]{1,32}$"
_ENDPOINT = r"^[A-Za-z0-9]+/[A-Za-z0-9_.@\-+]{1,64}$"


class Strategy(StrEnum):
    """How a scenario rings its members (R-LOG-5)."""

    RING_ONE = "ring_one"  # the first member only
    HUNT = "hunt"  # each member in turn, step_timeout each
    RING_ALL = "ring_all"  # every member at once


class FallbackKind(StrEnum):
    """Where a call goes when no member answered."""

    HANGUP = "hangup"
    VOICEMAIL = "voicemail"  # target: mailbox@context
    QUEUE = "queue"  # target: an Asterisk queue name
    GROUP = "group"  # target: a group name; its members ring all at once


class Employee(_Strict):
    """An employee with an extension and the endpoint Asterisk dials for it."""

    name: str = ""
    extension: str = Field(pattern=_EXTENSION, description="the extension, e.g. '2001'")
    endpoint: str = Field(pattern=_ENDPOINT, description="the Dial target, e.g. PJSIP/2001")
    email: str | None = None


class Fallback(_Strict):
    kind: FallbackKind = FallbackKind.HANGUP
    target: str = Field(default="", pattern=r"^[A-Za-z0-9_.@\-]{0,64}$")

    @model_validator(mode="after")
    def _needs_target(self) -> Fallback:
        if self.kind is not FallbackKind.HANGUP and not self.target:
            raise InvalidKey(("target",), f"fallback {self.kind.value} needs a target")
        return self


class RouteScenario(_Strict):
    """Who rings for one inbound number, in what order, and what happens after."""

    strategy: Strategy = Strategy.HUNT
    members: tuple[str, ...] = Field(min_length=1, description="a list of extensions")
    step_timeout: int = Field(default=20, ge=1, le=600)
    linked_agent_first: bool = True
    fallback: Fallback = Field(default_factory=Fallback)


class LookupConfig(_Strict):
    """Caller-ID lookup: the store first, then the optional sources, first match wins."""

    timeout_ms: int = Field(default=300, ge=1, le=10_000)
    csv_file: str | None = None
    new_client_type: ClientType = ClientType.PROSPECT


class TooLongConfig(_Strict):
    """R-LOG-3: calls talking longer than this are flagged and the reviewer notified."""

    threshold_seconds: float | None = Field(default=None, gt=0)
    reviewer_email: str | None = None


class RecordingsConfig(_Strict):
    """R-LOG-6: where recordings go and how long they stay.

    ``directory`` is where dialerd finds the files; ``pbx_directory`` is the same place as
    the PBX sees it (they differ only when Asterisk runs in a chroot or container).
    """

    enabled: bool = True
    directory: str = "recordings"
    pbx_directory: str | None = None
    retention_days: int | None = Field(default=None, ge=1)


class InboundConfig(_Strict):
    """``inbound.yaml``."""

    default_region: str = "NL"
    lookup: LookupConfig = Field(default_factory=LookupConfig)
    employees: dict[str, Employee] = Field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    routes: dict[str, RouteScenario] = Field(default_factory=dict)
    default_route: RouteScenario | None = None
    too_long: TooLongConfig = Field(default_factory=TooLongConfig)
    recordings: RecordingsConfig = Field(default_factory=RecordingsConfig)

    @model_validator(mode="after")
    def _cross_checks(self) -> InboundConfig:
        try:
            _check_region(self.default_region)
        except ValueError as exc:
            raise InvalidKey(("default_region",), str(exc)) from None
        owners: dict[str, str] = {}
        for user, employee in self.employees.items():
            if employee.extension in owners:
                raise InvalidKey(
                    ("employees", user, "extension"),
                    f"extension {employee.extension} also belongs to {owners[employee.extension]}",
                )
            owners[employee.extension] = user
        for name, members in self.groups.items():
            for i, ext in enumerate(members):
                if ext not in owners:
                    raise InvalidKey(("groups", name, i), _unknown_extension(ext, owners))
        scenarios: list[tuple[tuple[str | int, ...], RouteScenario]] = [
            (("routes", number), s) for number, s in self.routes.items()
        ]
        if self.default_route is not None:
            scenarios.append((("default_route",), self.default_route))
        for where, scenario in scenarios:
            for i, ext in enumerate(scenario.members):
                if ext not in owners:
                    raise InvalidKey((*where, "members", i), _unknown_extension(ext, owners))
            fallback = scenario.fallback
            if fallback.kind is FallbackKind.GROUP and fallback.target not in self.groups:
                known = ", ".join(sorted(self.groups)) or "none defined under groups"
                raise InvalidKey(
                    (*where, "fallback", "target"),
                    f"no group {fallback.target!r}; expected one of: {known}",
                )
        return self

    def employee_for(self, extension: str) -> tuple[str, Employee] | None:
        """(user id, employee) owning `extension`."""
        for user, employee in self.employees.items():
            if employee.extension == extension:
                return user, employee
        return None

    def extension_agents(self) -> dict[str, str]:
        """extension -> user id, for the call log."""
        return {e.extension: user for user, e in self.employees.items()}

    def scenario_for(self, dialed: str) -> RouteScenario | None:
        """The scenario for a dialed number (compared in E.164), else the default."""
        wanted = normalise_dialed(dialed, self.default_region)
        for number, scenario in self.routes.items():
            if normalise_dialed(number, self.default_region) == wanted:
                return scenario
        return self.default_route


def _unknown_extension(ext: str, owners: dict[str, str]) -> str:
    known = ", ".join(sorted(owners)) or "none defined under employees"
    return f"extension {ext!r} belongs to no employee; expected one of: {known}"


def normalise_dialed(number: str, region: str) -> str:
    """A dialed number in E.164 when it parses, else its digits (short internal numbers)."""
    text = "".join(c for c in number[:40] if c.isdigit() or c == "+")
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return text
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def load_inbound(directory: str | Path) -> InboundConfig:
    """``inbound.yaml`` of a configuration directory (defaults when absent), or
    `ConfigError` naming file, line and key of every problem."""
    directory = Path(directory)
    path = directory / INBOUND_FILE
    if not path.is_file():
        return InboundConfig()
    issues: list[ConfigIssue] = []
    loaded = _load_merged([path], directory, issues)
    config = None
    if loaded is not None:
        doc, root = loaded
        config = _validate(InboundConfig, doc, root, issues)
    if issues or config is None:
        raise ConfigError(issues)
    return config
