"""Typed configuration: the daemon (``dialerd.yaml``) and its campaigns (``campaigns/*.yaml``).

These pydantic models are the single definition of what an admin may write. The work-queue
rules (``dialerd.queue``), the pacer and the CLI consume them; nobody else re-parses YAML.
Every model forbids unknown keys, because a typo such as ``max_attempt: 3`` that is silently
ignored is the worst kind of admin mistake: the campaign runs, just not as intended.
"""

from __future__ import annotations

import datetime as dt
import string
import zoneinfo
from enum import StrEnum
from typing import Annotated, Any

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

# The campaign vocabulary the queue rules define; the YAML spells them by value.
from dialerd.queue.codes import Category, FunnelPhase
from dialerd.queue.model import DialMode, TieBreak

__all__ = [
    "WEEKDAYS",
    "AgiConfig",
    "AmiConfig",
    "CallingHours",
    "CampaignConfig",
    "Category",
    "ContactPriority",
    "DaemonConfig",
    "DialMode",
    "FunnelPhase",
    "InvalidKey",
    "LoggingConfig",
    "MetricsConfig",
    "MqttConfig",
    "Outcome",
    "RegistrationCategory",
    "RegistrationChoice",
    "RegistrationConfig",
    "ResultCode",
    "ResultCodeFlags",
    "RetryRule",
    "StoreConfig",
    "TieBreak",
    "TimeWindow",
    "TlsConfig",
    "WrapupConfig",
    "check_timezone",
]


class InvalidKey(ValueError):
    """A validation error about a specific key below the model being validated.

    Cross-field checks run on the whole model, so pydantic would blame the model itself;
    raising this instead lets the loader point at the exact file line of ``key``.
    """

    def __init__(self, key: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.key = key


class _Strict(BaseModel):
    """Base for every config model: immutable, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------
# Daemon


class AmiConfig(_Strict):
    """How dialerd reaches the Asterisk Manager Interface."""

    host: str = "127.0.0.1"
    port: int = Field(default=5038, ge=1, le=65535)
    user: str = Field(min_length=1, description="the AMI user name from manager.conf")
    secret: SecretStr = Field(description="the AMI secret (see secret_file / ${ENV:NAME})")
    connect_timeout_seconds: float = Field(default=5.0, gt=0)


class AgiConfig(_Strict):
    """Where dialerd's FastAGI server listens for the dialplan's AGI() calls."""

    bind: str = "127.0.0.1"
    port: int = Field(default=4573, ge=1, le=65535)


class TlsConfig(_Strict):
    """TLS towards the MQTT broker; off unless ``enabled``."""

    enabled: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False


class MqttConfig(_Strict):
    """The MQTT broker agents' softphones and dashboards talk through."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    prefix: str = Field(default="dialerd", pattern=r"^[A-Za-z0-9_\-/]+$")
    user: str | None = None
    password: SecretStr | None = None
    tls: TlsConfig = Field(default_factory=TlsConfig)


class StoreConfig(_Strict):
    """Where the SQLite database lives (relative paths are relative to the config dir)."""

    path: str = "dialerd.db"


class MetricsConfig(_Strict):
    """Prometheus exposition; port 0 disables it."""

    bind: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535)


class LogLevel(StrEnum):
    """Python logging level names, the only ones accepted."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class LoggingConfig(_Strict):
    """Log level and shape; ``json`` is one object per line for log shippers."""

    level: LogLevel = LogLevel.INFO
    format: str = Field(default="text", pattern=r"^(text|json)$")
    file: str | None = None


class DaemonConfig(_Strict):
    """``dialerd.yaml``: everything the daemon needs that is not a campaign."""

    ami: AmiConfig = Field(description="a mapping with host, port, user and secret")
    agi: AgiConfig = Field(default_factory=AgiConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    campaigns_dir: str = "campaigns"
    drain_seconds: float = Field(
        90.0,
        gt=0,
        le=3600,
        description="how long SIGTERM waits for calls and dispositions (keep it below "
        "systemd's TimeoutStopSec)",
    )


# --------------------------------------------------------------------------------------------
# Campaign: result codes (R-RC), funnel (R-AD-1), registration (R-REG)


class ContactPriority(StrEnum):
    """Contact priority of a result code (R-RC-2); ``score`` is the documents' number."""

    VERY_LOW = "very_low"
    OPEN = "open"
    MEDIUM = "medium"
    HIGH = "high"
    VERY_HIGH = "very_high"

    @property
    def score(self) -> int:
        """The documented score: 1, 2, 3, 4, 6 (there is no 5)."""
        return _PRIORITY_SCORE[self]

    @property
    def contact_person_reached(self) -> bool:
        """High and very high mean the contact person was reached (R-RC-6 linking)."""
        return self in (ContactPriority.HIGH, ContactPriority.VERY_HIGH)


_PRIORITY_SCORE = {
    ContactPriority.VERY_LOW: 1,
    ContactPriority.OPEN: 2,
    ContactPriority.MEDIUM: 3,
    ContactPriority.HIGH: 4,
    ContactPriority.VERY_HIGH: 6,
}


class Outcome(StrEnum):
    """What the dialer itself learns about a call before any agent speaks (R-DL-3, R-DL-4)."""

    BUSY = "busy"
    NO_ANSWER = "no_answer"
    MACHINE = "machine"
    ABANDONED = "abandoned"
    FAILED = "failed"


_CODE_PATTERN = r"^[a-z][a-z0-9_\-]*$"


class ResultCodeFlags(_Strict):
    """Per-result-code behaviour the agent screen honours (R-RC-5)."""

    detail_screen: bool = False
    allow_reassign: bool = False
    require_email: bool = False


class ResultCode(_Strict):
    """One disposition an attempt can end with (R-RC-1..5, R-AD-1).

    ``code`` is the key under ``result_codes:`` in YAML and is filled in by the campaign.
    ``funnel_phase`` is the phase the address moves to (None: the queue's default rule);
    phases only move forward unless ``force_phase`` allows this code to move one back.
    ``contact_priority`` may not be ``open``: that level describes an address never worked.
    ``retry_as`` makes a no-contact code behave like a dialer outcome for retries, e.g. an
    agent's "voicemail" mark retries like ``machine`` (R-REG-4a).
    """

    code: str = Field(pattern=_CODE_PATTERN)
    label: str = Field(min_length=1, description="the text agents see")
    category: Category = Field(
        description="one of no-contact, callback, positive, negative, discarded"
    )
    contact_priority: ContactPriority = Field(
        description="one of very_low, open, medium, high, very_high"
    )
    callback_minutes: int | None = Field(default=None, gt=0, le=60 * 24 * 366)
    flags: ResultCodeFlags = Field(default_factory=ResultCodeFlags)
    funnel_phase: FunnelPhase | None = None
    force_phase: bool = False
    retry_as: Outcome | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ResultCode:
        if self.contact_priority is ContactPriority.OPEN:
            raise InvalidKey(
                ("contact_priority",),
                "'open' only describes an address never worked; "
                "expected very_low, medium, high or very_high",
            )
        if self.force_phase and self.funnel_phase is None:
            raise InvalidKey(("force_phase",), "needs funnel_phase: the phase to force")
        if self.category is Category.CALLBACK and self.callback_minutes is None:
            raise InvalidKey(
                ("callback_minutes",),
                "required for category 'callback'; expected the minutes until the address "
                "is offered again, e.g. 180",
            )
        if self.category is not Category.CALLBACK and self.callback_minutes is not None:
            raise InvalidKey(
                ("callback_minutes",),
                f"only allowed on category 'callback', not {self.category.value!r}",
            )
        if self.retry_as is not None and self.category is not Category.NO_CONTACT:
            raise InvalidKey(
                ("retry_as",),
                f"only allowed on category 'no-contact', not {self.category.value!r}",
            )
        return self


class RegistrationChoice(StrEnum):
    """Radio buttons or check boxes (R-REG-1)."""

    SINGLE = "single"
    MULTI = "multi"


class RegistrationCategory(_Strict):
    """An admin-defined registration category with its topics (R-REG-1)."""

    name: str = Field(min_length=1, description="the category name agents see")
    choice: RegistrationChoice = RegistrationChoice.SINGLE
    topics: tuple[str, ...] = Field(min_length=1, description="a list of topic names")

    @field_validator("topics")
    @classmethod
    def _unique_topics(cls, topics: tuple[str, ...]) -> tuple[str, ...]:
        for i, topic in enumerate(topics):
            if topic in topics[:i]:
                raise InvalidKey((i,), f"topic {topic!r} is listed twice; expected unique topics")
        return topics


class RegistrationConfig(_Strict):
    """Registration on the agent side (R-REG-1, R-REG-2)."""

    forced: bool = False
    categories: tuple[RegistrationCategory, ...] = ()


class WrapupConfig(_Strict):
    """How long an agent may stay in wrap-up before dialerd closes the call itself.

    An agent who walks away in wrap-up would otherwise hold their seat and the lead
    (still ``dialing``) forever. After ``timeout_seconds`` the daemon records
    ``result_code`` through the agent's own disposition path and the agent is ready again.
    0 or null turns the timeout off. The code must be a ``no-contact`` code that asks
    nothing of an agent, and a campaign with forced registration cannot time out at all:
    nobody registered the call, and R-REG-2 says no call closes without a registration.
    """

    timeout_seconds: int | None = Field(default=120, ge=0, le=24 * 3600)
    result_code: str | None = Field(default=None, pattern=_CODE_PATTERN)

    @property
    def seconds(self) -> int:
        """The timeout in seconds; 0 when there is none."""
        return self.timeout_seconds or 0


# --------------------------------------------------------------------------------------------
# Campaign: dialing, hours, retries


DIAL_STRING_FIELDS = frozenset({"number", "digits", "national"})
"""Placeholders a dial string may use: E.164 with '+', E.164 digits only, national digits."""


def _check_dial_string(template: str) -> str:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"not a valid template ({exc})") from None
    unknown = names - DIAL_STRING_FIELDS
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{sorted(unknown)[0]}}}; expected one of "
            + ", ".join(f"{{{n}}}" for n in sorted(DIAL_STRING_FIELDS))
        )
    if not names:
        raise ValueError("expected a placeholder for the number, e.g. 'PJSIP/{number}@carrier'")
    if "/" not in template.split("{", 1)[0]:
        raise ValueError("expected TECH/resource, e.g. 'PJSIP/{number}@carrier'")
    return template


def _check_region(region: str) -> str:
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            f"unknown region {region!r}; expected an ISO 3166 alpha-2 code such as NL, DE, US"
        )
    return region


def check_timezone(name: str) -> str:
    """Accept only IANA zone names that this machine's tz database knows."""
    if name not in _known_zones():
        raise ValueError(
            f"unknown time zone {name!r}; expected an IANA name such as Europe/Amsterdam"
        )
    return name


def _known_zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(zoneinfo.available_timezones())
    return _ZONES


_ZONES: frozenset[str] | None = None

Region = Annotated[str, AfterValidator(_check_region)]
TimeZoneName = Annotated[str, AfterValidator(check_timezone)]


class TimeWindow(_Strict):
    """A half-open local time window [start, end) within one day."""

    start: dt.time
    end: dt.time

    def contains(self, t: dt.time) -> bool:
        """True when local time `t` is inside the window."""
        return self.start <= t < self.end

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        parts = value.split("-")
        if len(parts) != 2:
            raise ValueError(f"expected 'HH:MM-HH:MM', got {value!r}")
        try:
            start, end = (_parse_hhmm(p.strip()) for p in parts)
        except ValueError:
            raise ValueError(f"expected 'HH:MM-HH:MM' (24-hour clock), got {value!r}") from None
        return {"start": start, "end": end}

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.end <= self.start:
            raise ValueError(
                f"window ends before it starts ({self.start:%H:%M}-{self.end:%H:%M}); "
                "expected start < end, use 24:00 for midnight"
            )
        return self


def _parse_hhmm(text: str) -> dt.time:
    if text == "24:00":
        return dt.time.max
    hours, sep, minutes = text.partition(":")
    if not sep or len(minutes) != 2 or not hours.isdigit() or not minutes.isdigit():
        raise ValueError(text)
    return dt.time(int(hours), int(minutes))


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CallingHours(_Strict):
    """Per-weekday windows in the lead's own time zone, plus holidays (R-DL-4).

    A weekday left out (or given ``[]``) has no calling; a holiday has none either.
    """

    mon: tuple[TimeWindow, ...] = ()
    tue: tuple[TimeWindow, ...] = ()
    wed: tuple[TimeWindow, ...] = ()
    thu: tuple[TimeWindow, ...] = ()
    fri: tuple[TimeWindow, ...] = ()
    sat: tuple[TimeWindow, ...] = ()
    sun: tuple[TimeWindow, ...] = ()
    holidays: tuple[dt.date, ...] = ()

    def windows(self, day: dt.date) -> tuple[TimeWindow, ...]:
        """The windows that apply on local date `day` (none on a holiday)."""
        if day in self.holidays:
            return ()
        windows: tuple[TimeWindow, ...] = getattr(self, WEEKDAYS[day.weekday()])
        return windows

    def allows(self, local: dt.datetime) -> bool:
        """True when a call may be placed at local wall-clock time `local`."""
        return any(w.contains(local.time()) for w in self.windows(local.date()))


class RetryRule(_Strict):
    """What happens after a dialer outcome: which result code it records, when to retry."""

    result_code: str = Field(pattern=_CODE_PATTERN, description="a code under result_codes")
    delay_minutes: int = Field(
        ge=0, le=60 * 24 * 366, description="minutes before the number is dialed again"
    )


class CampaignConfig(_Strict):
    """One campaign file (``campaigns/NAME.yaml``); later files with the same name override.

    ``pacing`` is handed unchanged to ``dialerd.pacing.create_pacer(mode, pacing)``, which
    owns the meaning of its keys. ``retry_after_contact_minutes`` is the delay after a live
    call whose no-contact code asked for neither callback nor closing (e.g. "contact person
    not in"). The two guards keep an abandoned (72 h) or machine-answered (24 h) number from
    being redialled unless a live agent is guaranteed (preview, reserved callback).
    ``retry`` must cover every dialer outcome, so no call ever
    ends without a result code (R-RC-1).
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    description: str = ""
    enabled: bool = True
    mode: DialMode = Field(description="one of preview, progressive, ratio, predictive")
    pacing: dict[str, float | int | bool | str] = Field(default_factory=dict)
    dial_string: Annotated[str, AfterValidator(_check_dial_string)] = Field(
        description="a template such as PJSIP/{number}@carrier or Local/{digits}@world"
    )
    caller_id: str | None = None
    default_region: Region = Field(description="an ISO region code such as NL")
    default_timezone: TimeZoneName | None = None
    ring_timeout_seconds: int = Field(default=30, ge=5, le=300)
    amd: bool = False
    calling_hours: CallingHours = Field(description="a mapping of weekday (mon..sun) to windows")
    retry: dict[Outcome, RetryRule] = Field(
        description="a rule for each of busy, no_answer, machine, abandoned, failed"
    )
    max_attempts: int = Field(ge=1, le=100, description="an integer from 1 to 100")
    retry_after_contact_minutes: int = Field(default=240, ge=0, le=60 * 24 * 366)
    abandoned_redial_guard_minutes: int = Field(default=72 * 60, ge=0)
    machine_redial_guard_minutes: int = Field(default=24 * 60, ge=0)
    tie_break: TieBreak = TieBreak.LEAST_RECENT
    reservation_window_minutes: int = Field(default=20, ge=0, le=24 * 60)
    link_release_minutes: int | None = Field(default=None, gt=0)
    result_codes: dict[str, ResultCode] = Field(
        min_length=1, description="a mapping of code to label, category, contact_priority"
    )
    registration: RegistrationConfig = Field(default_factory=RegistrationConfig)
    wrapup: WrapupConfig | None = None
    """Absent: wrap-up ends only with the agent's disposition."""

    @model_validator(mode="before")
    @classmethod
    def _codes_know_their_key(cls, data: Any) -> Any:
        """``result_codes: {busy: {...}}`` — the mapping key is the code; copy it in."""
        if isinstance(data, dict) and isinstance(data.get("result_codes"), dict):
            codes = {
                key: ({"code": key, **value} if isinstance(value, dict) else value)
                for key, value in data["result_codes"].items()
            }
            data = {**data, "result_codes": codes}
        return data

    @model_validator(mode="after")
    def _cross_checks(self) -> CampaignConfig:
        missing = [o.value for o in Outcome if o not in self.retry]
        if missing:
            raise InvalidKey(
                ("retry",),
                "needs a rule for every dialer outcome; missing: " + ", ".join(missing),
            )
        for outcome, rule in self.retry.items():
            code = self.result_codes.get(rule.result_code)
            where = ("retry", outcome.value, "result_code")
            if code is None:
                raise InvalidKey(
                    where,
                    f"{rule.result_code!r} is not defined under result_codes; expected one of: "
                    + ", ".join(sorted(self.result_codes)),
                )
            if code.category is not Category.NO_CONTACT:
                raise InvalidKey(
                    where,
                    f"{rule.result_code!r} has category {code.category.value!r}; "
                    "expected a 'no-contact' code",
                )
        names = [c.name for c in self.registration.categories]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise InvalidKey(
                    ("registration", "categories", i, "name"),
                    f"category {name!r} is listed twice; expected unique names",
                )
        if self.registration.forced and not self.registration.categories:
            raise InvalidKey(
                ("registration", "forced"),
                "forced registration needs at least one category under registration.categories",
            )
        if self.wrapup is not None:
            self._check_wrapup(self.wrapup)
        return self

    def _check_wrapup(self, wrapup: WrapupConfig) -> None:
        """The timeout code is recorded with no agent to add anything: it must exist, be a
        no-contact code (an unknown outcome never closes the address or promises a callback)
        and need no e-mail; and forced registration (R-REG-2) rules a timeout out."""
        if wrapup.result_code is None:
            if wrapup.seconds:
                raise InvalidKey(
                    ("wrapup",),
                    "result_code is required with timeout_seconds; expected the no-contact "
                    "code to record when wrap-up times out (or timeout_seconds: 0)",
                )
            return
        where = ("wrapup", "result_code")
        code = self.result_codes.get(wrapup.result_code)
        if code is None:
            raise InvalidKey(
                where,
                f"{wrapup.result_code!r} is not defined under result_codes; expected one of: "
                + ", ".join(sorted(self.result_codes)),
            )
        if code.category is not Category.NO_CONTACT:
            raise InvalidKey(
                where,
                f"{wrapup.result_code!r} has category {code.category.value!r}; expected a "
                "'no-contact' code (nobody chose it, so it may not close the address or "
                "promise a callback)",
            )
        if code.flags.require_email:
            raise InvalidKey(
                where,
                f"{wrapup.result_code!r} requires an e-mail (flags.require_email) that no "
                "agent picks when wrap-up times out; expected a code without it",
            )
        if wrapup.seconds and self.registration.forced:
            raise InvalidKey(
                ("wrapup", "timeout_seconds"),
                "a timeout would close calls without the registration that registration.forced "
                "demands (R-REG-2); expected 0 (wrap-up waits for the agent's disposition) "
                "or registration.forced: false",
            )

    def retry_rule(self, outcome: Outcome) -> RetryRule:
        """The rule for a dialer outcome (always present after validation)."""
        return self.retry[outcome]

    def format_dial_string(self, e164: str, national: str) -> str:
        """The Asterisk dial string for an E.164 number (``+31201234567``)."""
        return self.dial_string.format(number=e164, digits=e164.lstrip("+"), national=national)
