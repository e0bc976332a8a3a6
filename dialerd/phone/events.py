"""What a softphone tells its user, and the rules for when it tries again.

Pure data and pure functions: no pjsua2 import here, so the agent console (which only sees
these events over MQTT) and the unit tests can use them without the SIP stack.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class PhoneEvent:
    """Base of every event; `kind` is the stable name the console and MQTT topics use."""

    kind: ClassVar[str] = "event"


@dataclass(frozen=True)
class Registered(PhoneEvent):
    """The registrar accepted us: the dialer can now originate to this phone."""

    kind: ClassVar[str] = "registered"
    server: str
    user: str
    expires: int


@dataclass(frozen=True)
class RegistrationFailed(PhoneEvent):
    """Registration failed or was lost; `message` is the one line shown to the agent."""

    kind: ClassVar[str] = "registration_failed"
    code: int
    reason: str
    message: str
    retry_in: float


@dataclass(frozen=True)
class Incoming(PhoneEvent):
    """An INVITE arrived; `auto_answer` says whether the phone answers it by itself."""

    kind: ClassVar[str] = "incoming"
    call_id: int
    remote: str
    source: str
    auto_answer: bool


@dataclass(frozen=True)
class Answered(PhoneEvent):
    """The call is confirmed (200 OK / ACK): the nailed-up leg is up."""

    kind: ClassVar[str] = "answered"
    call_id: int


@dataclass(frozen=True)
class MediaActive(PhoneEvent):
    """Audio is connected between the call and the headset (or the null device)."""

    kind: ClassVar[str] = "media_active"
    call_id: int
    codec: str


@dataclass(frozen=True)
class Disconnected(PhoneEvent):
    """The call ended (either side); `code` is the last SIP status seen."""

    kind: ClassVar[str] = "disconnected"
    call_id: int
    code: int
    reason: str


@dataclass(frozen=True)
class AudioStats(PhoneEvent):
    """Periodic audio health of the active call, so "I hear nothing" is measurable.

    RMS values are of 16-bit linear samples (0..32767) of what the agent hears, before the
    agent's volume setting. `voice_frames` counts 20 ms frames whose RMS reached
    `VOICE_RMS`, i.e. frames that carried more than line noise. `audio_errors` counts
    exceptions contained in the media callbacks (0 unless something is wrong).
    """

    kind: ClassVar[str] = "stats"
    VOICE_RMS: ClassVar[float] = 200.0
    call_id: int
    rx_rms: float
    rx_peak_rms: float
    rx_frames: int
    voice_frames: int
    rtp_rx_packets: int
    rtp_tx_packets: int
    rtp_rx_lost: int
    muted: bool
    volume: float
    audio_errors: int


@dataclass(frozen=True)
class DeviceProblem(PhoneEvent):
    """The chosen capture/playback device is missing or failed; calls still connect."""

    kind: ClassVar[str] = "device_problem"
    message: str
    retry_in: float


@dataclass(frozen=True)
class DeviceReady(PhoneEvent):
    """Audio devices are open and bridged to the calls."""

    kind: ClassVar[str] = "device_ready"
    capture: str
    playback: str


def explain_registration_failure(code: int, reason: str, server: str, user: str) -> str:
    """One line an agent can act on, for a failed REGISTER (`code` as pjsua reports it).

    pjsua reports a transaction timeout as 408 and an unreachable transport as 503 (or a
    pj status like 171060 for a socket error); Asterisk answers a wrong password with a
    second 401 (it never says which of user or password was wrong) and an unknown account
    with 401 or 403 too, so those are one message.
    """
    if code in (401, 403, 407):
        return (
            f"sip server {server} rejected the credentials for user {user} "
            f"({code} {reason}): check the user name and password"
        )
    if code == 404:
        return f"sip server {server} does not know user {user} (404 {reason})"
    if code in (408, 503, 504) or code < 100 or code >= 700:
        return (
            f"sip server {server} is unreachable ({code} {reason}): "
            "is Asterisk running, and is the address and port right?"
        )
    if code == 423:
        return f"sip server {server} wants a longer registration interval (423 {reason})"
    return f"sip server {server} refused registration of {user} ({code} {reason})"


@dataclass
class Backoff:
    """Exponential retry delay with jitter, reset by a success.

    Jitter (±20 %) keeps a floor of agents whose phones lost the same PBX from
    re-registering in lockstep when it comes back.
    """

    first: float = 1.0
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.2
    _next: float = field(default=0.0, init=False)
    _rng: random.Random = field(default_factory=random.Random, init=False, repr=False)

    def next(self) -> float:
        """The delay before the next attempt (grows until `cap`)."""
        base = self.first if self._next == 0.0 else min(self._next * self.factor, self.cap)
        self._next = base
        return round(base * (1 + self._rng.uniform(-self.jitter, self.jitter)), 3)

    def reset(self) -> None:
        """A success: the next failure starts again from `first`."""
        self._next = 0.0
