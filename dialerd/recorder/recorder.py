"""Call recordings (R-LOG-6): MixMonitor over AMI once a customer talks to an employee,
files in predictable per-day folders, metadata in the store, failures on the call.

The flow, driven by the call-log fold:

- `CallConnected` -> ask the billing gate whether the employee's subscription allows
  recording *now* (so a recording option cancelled mid-term is honoured at the next call),
  then send ``MixMonitor`` for the customer's channel (both directions, mixed) to
  ``<directory>/YYYY/MM/DD/<start>_<call>_<agent>.wav``.
- `CallEntry` (the call ended, stored as `call_id`) -> wait for Asterisk to close the file,
  then register it with its length (from the WAV header), size and sha256; or, when
  there is no usable file, say why on the call (``recording_error``). A recording never
  disappears without a trace.

``directory`` is where dialerd reads files; ``pbx_directory`` is the same place as
Asterisk sees it (they differ when the PBX runs in a chroot or container).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from dialerd.ami.client import AMIError
from dialerd.ami.codec import Action, Response
from dialerd.calllog.fold import CallConnected

log = logging.getLogger(__name__)

__all__ = [
    "AmiSender",
    "FileFacts",
    "Recorder",
    "RecorderStore",
    "RecordingGate",
    "file_facts",
    "recording_name",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Verdict(Protocol):
    @property
    def allowed(self) -> bool: ...

    @property
    def message(self) -> str: ...


class RecordingGate(Protocol):
    """The billing gate's recording question (`dialerd.billing.service.BillingGate`)."""

    async def may_record(self, user_id: str, now: datetime) -> Verdict: ...


class AmiSender(Protocol):
    async def send_action(
        self, action: Action, *, response_timeout: float | None = None, check: bool = True
    ) -> Response: ...


class RecorderStore(Protocol):
    async def add_recording_file(
        self,
        call_id: int,
        path: str,
        started_at: float,
        duration_seconds: float | None,
        size_bytes: int,
        sha256: str,
        agent: str | None,
    ) -> int: ...

    async def note_recording_error(self, call_id: int, error: str) -> None: ...


@dataclass(frozen=True, slots=True)
class FileFacts:
    size_bytes: int
    sha256: str
    duration_seconds: float | None


def recording_name(started_at: float, linkedid: str, agent: str | None) -> Path:
    """``YYYY/MM/DD/YYYYMMDDTHHMMSSZ_<call>_<agent>.wav`` (UTC): sortable, unique per call,
    and free of anything a shell or Asterisk's argument parser would interpret."""
    when = datetime.fromtimestamp(started_at, UTC)
    call = _UNSAFE.sub("_", linkedid)[:64]
    who = _UNSAFE.sub("_", agent or "nobody")[:32]
    return Path(when.strftime("%Y/%m/%d")) / f"{when.strftime('%Y%m%dT%H%M%SZ')}_{call}_{who}.wav"


def file_facts(path: Path) -> FileFacts:
    """Size, sha256 and (for WAV) the length in seconds from the header."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    duration: float | None = None
    with contextlib.suppress(wave.Error, EOFError), wave.open(str(path), "rb") as w:
        duration = round(w.getnframes() / float(w.getframerate()), 3)
    return FileFacts(path.stat().st_size, digest.hexdigest(), duration)


@dataclass
class _Active:
    relative: Path
    started_at: float
    agent: str | None


class Recorder:
    """Starts recordings for connected calls and files them when the calls end."""

    def __init__(
        self,
        ami: AmiSender,
        store: RecorderStore,
        gate: RecordingGate | None,
        directory: Path,
        pbx_directory: Path | None = None,
        *,
        enabled: bool = True,
        settle_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ami = ami
        self.store = store
        self.gate = gate
        self.directory = directory
        self.pbx_directory = pbx_directory or directory
        self.enabled = enabled
        self.settle_timeout = settle_timeout
        self.clock = clock
        self._active: dict[str, _Active] = {}
        self._why_not: dict[str, str] = {}

    async def on_connected(self, event: CallConnected) -> None:
        """Start MixMonitor if the employee may be recorded now; remember why not."""
        if not self.enabled:
            return
        reason = await self._refusal(event.agent)
        if reason is not None:
            self._why_not[event.linkedid] = f"not recorded: {reason}"
            log.info("call %s not recorded: %s", event.linkedid, reason)
            return
        started = event.at if event.at is not None else self.clock()
        relative = recording_name(started, event.linkedid, event.agent)
        await asyncio.to_thread(_mkdir, (self.directory / relative).parent)
        action = Action(
            "MixMonitor",
            (("Channel", event.channel), ("File", str(self.pbx_directory / relative))),
        )
        try:
            await self.ami.send_action(action)
        except AMIError as exc:
            self._why_not[event.linkedid] = f"recording failed to start: {exc}"
            log.error("call %s: MixMonitor failed: %s", event.linkedid, exc)
            return
        self._active[event.linkedid] = _Active(relative, started, event.agent)

    async def _refusal(self, agent: str | None) -> str | None:
        if agent is None:
            return "no employee known for the call"
        if self.gate is None:
            return None
        try:
            verdict = await self.gate.may_record(agent, datetime.fromtimestamp(self.clock(), UTC))
        except Exception as exc:  # the gate failing must not fail the call
            log.exception("recording gate failed for %s", agent)
            return f"billing gate unavailable ({exc})"
        return None if verdict.allowed else verdict.message

    async def on_finished(self, linkedid: str, call_id: int) -> int | None:
        """File the call's recording (its id), or note on the call why there is none."""
        active = self._active.pop(linkedid, None)
        why_not = self._why_not.pop(linkedid, None)
        if active is None:
            if why_not is not None:
                await self.store.note_recording_error(call_id, why_not)
            return None
        path = self.directory / active.relative
        facts = await self._settled(path)
        if facts is None or facts.size_bytes <= 44:  # a bare WAV header holds no audio
            error = f"recording file {active.relative} missing or empty"
            log.error("call %s: %s", linkedid, error)
            await self.store.note_recording_error(call_id, error)
            return None
        return await self.store.add_recording_file(
            call_id, str(active.relative), active.started_at, facts.duration_seconds,
            facts.size_bytes, facts.sha256, active.agent,
        )  # fmt: skip

    async def _settled(self, path: Path) -> FileFacts | None:
        """Facts of the file once Asterisk stopped writing it (size stable for 200 ms)."""
        deadline = self.clock() + self.settle_timeout
        last = -1
        while True:
            size = await asyncio.to_thread(_size, path)
            if size == last and size >= 0:
                return await asyncio.to_thread(file_facts, path)
            if self.clock() > deadline:
                return await asyncio.to_thread(file_facts, path) if size >= 0 else None
            last = size
            await asyncio.sleep(0.2)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def _mkdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
