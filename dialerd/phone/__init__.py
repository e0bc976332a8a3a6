"""The agent's softphone: a pjsua2 SIP phone bridged to a real headset (`dialerd phone`).

`Softphone` is the programmatic API (the agent console and the tests drive it); the
events it emits live in `events` and need neither pjsua2 nor PortAudio to import.
"""

from dialerd.phone.events import (
    Answered,
    AudioStats,
    DeviceProblem,
    DeviceReady,
    Disconnected,
    Incoming,
    MediaActive,
    PhoneEvent,
    Registered,
    RegistrationFailed,
)
from dialerd.phone.softphone import EventStream, PhoneConfig, PhoneError, Softphone

__all__ = [
    "Answered",
    "AudioStats",
    "DeviceProblem",
    "DeviceReady",
    "Disconnected",
    "EventStream",
    "Incoming",
    "MediaActive",
    "PhoneConfig",
    "PhoneError",
    "PhoneEvent",
    "Registered",
    "RegistrationFailed",
    "Softphone",
]
