"""`Softphone`: the agent's SIP phone as an asyncio object.

The agent console (and the tests) drive it with async methods and read what happens from
an event stream. Under it, `engine.Engine` runs pjsua2 on its own thread; this module
holds the policy: registration retries with backoff, the watchdog that turns an unanswered
REGISTER into "unreachable" within seconds (pjsip itself waits 32 s), opening the headset
and reopening it when it disappears, and the periodic audio statistics.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from dialerd.phone.audio import (
    AudioDeviceError,
    DeviceBridge,
    list_devices,
    pick_device,
    rescan,
)
from dialerd.phone.events import (
    AudioStats,
    Backoff,
    DeviceProblem,
    DeviceReady,
    Disconnected,
    MediaActive,
    PhoneEvent,
    Registered,
    RegistrationFailed,
    explain_registration_failure,
)

if TYPE_CHECKING:
    from dialerd.phone.engine import Engine, HeadsetControls, RegState

E = TypeVar("E", bound=PhoneEvent)
T = TypeVar("T")


class PhoneError(Exception):
    """A failure the agent can act on; its message is one line."""


def parse_server(server: str) -> tuple[str, int]:
    """'host[:port]' (IPv6 as '[addr]:port') -> (host, port); port defaults to 5060."""
    text = server.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.lstrip(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise PhoneError(f"bad server {server!r}: expected host[:port]")
    try:
        port = int(port_text) if port_text else 5060
    except ValueError:
        raise PhoneError(f"bad server {server!r}: port {port_text!r} is not a number") from None
    if not 0 < port < 65536:
        raise PhoneError(f"bad server {server!r}: port {port} out of range")
    return host, port


@dataclass(frozen=True)
class PhoneConfig:
    """Everything a softphone needs; the CLI fills it from options and the saved choice."""

    server: str
    user: str
    password: str
    null_audio: bool = False
    capture: str | None = None
    playback: str | None = None
    bind: str | None = None
    local_port: int = 0
    auto_answer: bool = True
    register_timeout: float = 8.0
    reg_expiry: int = 60
    clock_rate: int = 16000
    stats_interval: float = 1.0
    device_retry: float = 5.0
    backoff_first: float = 1.0
    backoff_cap: float = 30.0
    log_level: int = 0


class EventStream:
    """One subscriber's view of the phone's events, in order, from its subscription on."""

    def __init__(self, phone: Softphone) -> None:
        self._phone = phone
        self._queue: asyncio.Queue[PhoneEvent] = asyncio.Queue()

    def put(self, event: PhoneEvent) -> None:
        self._queue.put_nowait(event)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> PhoneEvent:
        return await self._queue.get()

    async def wait_for(
        self, kind: type[E], within: float, where: Callable[[E], bool] | None = None
    ) -> E:
        """The next event of type `kind` (matching `where`) within `within` seconds.

        Other events are skipped; TimeoutError when none comes in time.
        """
        async with asyncio.timeout(within):
            while True:
                event = await self._queue.get()
                if isinstance(event, kind) and (where is None or where(event)):
                    return event

    def close(self) -> None:
        self._phone._streams.discard(self)


class Softphone:
    """A registered SIP phone that answers the dialer's nailed-up leg by itself."""

    def __init__(self, config: PhoneConfig) -> None:
        self.config = config
        self.server_host, self.server_port = parse_server(config.server)
        self.registered = False
        self.in_call = False
        self._streams: set[EventStream] = set()
        self._reg_states: asyncio.Queue[RegState] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._stats_task: asyncio.Task[None] | None = None
        self._call_id: int | None = None
        self._engine: Engine | None = None
        self._controls: HeadsetControls | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---------------------------------------------------------------- events
    def subscribe(self) -> EventStream:
        """A new event stream; subscribe before acting so no event is missed."""
        stream = EventStream(self)
        self._streams.add(stream)
        return stream

    def _emit(self, event: PhoneEvent) -> None:
        if isinstance(event, MediaActive):
            self.in_call = True
            self._call_id = event.call_id
            if self._stats_task is None or self._stats_task.done():
                self._stats_task = asyncio.get_running_loop().create_task(self._stats_loop())
        elif isinstance(event, Disconnected) and event.call_id == self._call_id:
            self.in_call = False
            self._call_id = None
        for stream in list(self._streams):
            stream.put(event)

    def _post_from_engine(self, event: PhoneEvent) -> None:
        """Called on the pjsua2 thread: hop to the loop, never touch asyncio here."""
        self._threadsafe(self._emit, event)

    def _post_reg_from_engine(self, state: RegState) -> None:
        self._threadsafe(self._reg_states.put_nowait, state)

    def _threadsafe(self, fn: Callable[[Any], None], arg: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed during shutdown
            loop.call_soon_threadsafe(fn, arg)

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Start the SIP stack and begin registering; returns before registration ends.

        Raises PhoneError when pjsua2 is missing or the local SIP port cannot be bound.
        """
        try:
            from dialerd.phone.engine import Engine, EngineConfig, EngineError, HeadsetControls
        except ImportError as exc:
            raise PhoneError(
                f"pjsua2 is not installed ({exc}): pip install 'dialerd[phone]'"
            ) from None
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        self._controls = HeadsetControls()
        self._engine = Engine(
            EngineConfig(
                server_host=self.server_host,
                server_port=self.server_port,
                user=cfg.user,
                password=cfg.password,
                bind=cfg.bind,
                local_port=cfg.local_port,
                clock_rate=cfg.clock_rate,
                auto_answer=cfg.auto_answer,
                reg_expiry=cfg.reg_expiry,
                log_level=cfg.log_level,
            ),
            self._controls,
            self._post_from_engine,
            self._post_reg_from_engine,
        )
        engine = self._engine
        try:
            await asyncio.wrap_future(engine.start())
        except EngineError as exc:
            self._engine = None
            await asyncio.to_thread(engine.join, 15.0)  # gone before another phone starts
            raise PhoneError(str(exc)) from None
        loop = self._loop
        self._tasks.append(loop.create_task(self._registration_loop()))
        if not cfg.null_audio:
            self._tasks.append(loop.create_task(self._device_loop()))

    async def stop(self) -> None:
        """Hang up, unregister and destroy pjsua2 on its own thread; idempotent."""
        tasks = [*self._tasks, *([self._stats_task] if self._stats_task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks, self._stats_task = [], None
        engine, self._engine = self._engine, None
        if engine is not None:
            from dialerd.phone.engine import Engine

            engine.submit(Engine.stop)
            if not await asyncio.to_thread(engine.join, 15.0):
                raise PhoneError("the SIP stack did not stop within 15 s")
        if self._controls is not None and self._controls.bridge is not None:
            self._controls.bridge.close()
            self._controls.bridge = None
        self.registered = self.in_call = False

    async def __aenter__(self) -> Softphone:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- commands
    async def _run(self, command: Callable[[Engine], T]) -> T:
        if self._engine is None:
            raise PhoneError("the phone is not started")
        from dialerd.phone.engine import EngineError

        try:
            return await asyncio.wrap_future(self._engine.submit(command))
        except EngineError as exc:
            raise PhoneError(str(exc)) from None

    async def answer(self) -> None:
        """Answer a ringing call (one that was not auto-answered)."""
        await self._run(lambda e: e.answer())

    async def hangup(self) -> None:
        """End the current call (the nailed-up leg: the agent logs out of the bridge)."""
        await self._run(lambda e: e.hangup())

    async def dtmf(self, digits: str) -> None:
        """Send DTMF digits (0-9, *, #, A-D) on the current call."""
        bad = set(digits) - set("0123456789*#ABCDabcd")
        if not digits or bad:
            raise PhoneError(f"not DTMF digits: {digits!r}")
        await self._run(lambda e: e.dtmf(digits))

    async def mute(self, muted: bool = True) -> None:
        """Send silence instead of the microphone (RTP keeps flowing)."""
        self._require_controls().muted = muted

    async def unmute(self) -> None:
        await self.mute(False)

    @property
    def muted(self) -> bool:
        return self._controls is not None and self._controls.muted

    async def set_volume(self, volume: float) -> None:
        """Speaker gain, 0.0 (silent) .. 4.0; 1.0 plays the call as received."""
        if not 0.0 <= volume <= 4.0:
            raise PhoneError(f"volume {volume} out of range 0.0..4.0")
        self._require_controls().volume = volume

    @property
    def volume(self) -> float:
        return self._controls.volume if self._controls is not None else 1.0

    def _require_controls(self) -> HeadsetControls:
        if self._controls is None:
            raise PhoneError("the phone is not started")
        return self._controls

    async def stats(self) -> AudioStats | None:
        """Audio statistics of the current call since the previous `stats()`, or None."""
        counts = await self._run(lambda e: e.rtp_counts())
        controls = self._require_controls()
        if counts is None:
            return None
        call_id, rx_pkt, tx_pkt, lost = counts
        rms, peak, frames, voice = controls.meter.interval()
        return AudioStats(
            call_id=call_id,
            rx_rms=round(rms, 1),
            rx_peak_rms=round(peak, 1),
            rx_frames=frames,
            voice_frames=voice,
            rtp_rx_packets=rx_pkt,
            rtp_tx_packets=tx_pkt,
            rtp_rx_lost=lost,
            muted=controls.muted,
            volume=controls.volume,
            audio_errors=controls.callback_errors,
        )

    # ---------------------------------------------------------------- background
    async def _next_reg(self, generation: int) -> RegState:
        while True:
            state = await self._reg_states.get()
            if state.generation == generation:
                return state

    async def _registration_loop(self) -> None:
        """Register, stay registered, and after any failure retry with backoff."""
        from dialerd.phone.engine import RegState

        cfg = self.config
        backoff = Backoff(first=cfg.backoff_first, cap=cfg.backoff_cap)
        server = f"{self.server_host}:{self.server_port}"
        while True:
            try:
                generation = await self._run(lambda e: e.register())
            except PhoneError as exc:  # pjsua refused the account itself (e.g. a bad URI)
                delay = backoff.next()
                message = f"cannot register {cfg.user} at {server}: {exc}"
                self._emit(RegistrationFailed(0, str(exc), message, delay))
                await asyncio.sleep(delay)
                continue
            try:
                async with asyncio.timeout(cfg.register_timeout):
                    state = await self._next_reg(generation)
            except TimeoutError:
                state = RegState(
                    generation, 408, f"no answer within {cfg.register_timeout:g} s", False, 0
                )
            while 200 <= state.code < 300 and state.active:
                if not self.registered:
                    self.registered = True
                    self._emit(Registered(server, cfg.user, state.expires))
                backoff.reset()
                # pjsua refreshes 5 s before expiry and reports each outcome; no report by
                # expiry + register_timeout means the refresh went unanswered (the network
                # or the PBX is gone), which pjsip alone would only say 32 s later.
                try:
                    async with asyncio.timeout(state.expires + cfg.register_timeout):
                        state = await self._next_reg(generation)
                except TimeoutError:
                    state = RegState(generation, 408, "registration refresh unanswered", False, 0)
            self.registered = False
            delay = backoff.next()
            message = explain_registration_failure(state.code, state.reason, server, cfg.user)
            self._emit(RegistrationFailed(state.code, state.reason, message, delay))
            await asyncio.sleep(delay)

    async def _device_loop(self) -> None:
        """Open the headset; when it is missing or vanishes, say so and try again."""
        cfg = self.config
        controls = self._require_controls()
        first = True
        while True:
            try:
                bridge = await asyncio.to_thread(self._open_bridge, rescan_first=not first)
            except AudioDeviceError as exc:
                first = False
                self._emit(DeviceProblem(str(exc), cfg.device_retry))
                await asyncio.sleep(cfg.device_retry)
                continue
            controls.bridge = bridge
            self._emit(DeviceReady(bridge.capture.name, bridge.playback.name))
            while True:
                await asyncio.sleep(cfg.device_retry)
                if not bridge.active:
                    break
            controls.bridge = None
            bridge.close()
            first = False
            self._emit(
                DeviceProblem(
                    f"audio device {bridge.playback.name!r} stopped (unplugged?)",
                    cfg.device_retry,
                )
            )
            await asyncio.sleep(cfg.device_retry)

    def _open_bridge(self, rescan_first: bool) -> DeviceBridge:
        """Pick and open the devices (a worker thread: PortAudio may block for a while)."""
        cfg = self.config
        if rescan_first:
            rescan()
        devices = list_devices()
        capture = pick_device(devices, cfg.capture, "input")
        playback = pick_device(devices, cfg.playback, "output")
        bridge = DeviceBridge(capture, playback, cfg.clock_rate, frame_ms=20)
        bridge.open()
        return bridge

    async def _stats_loop(self) -> None:
        """An AudioStats event every `stats_interval` while a call has media."""
        while self.in_call:
            await asyncio.sleep(self.config.stats_interval)
            try:
                stats = await self.stats()
            except PhoneError:
                return
            if stats is not None and self.in_call:
                self._emit(stats)
