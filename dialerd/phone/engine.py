"""The pjsua2 side of the softphone: one dedicated thread owns the whole SIP stack.

pjlib insists that every thread calling it is registered, and pjsua2's Python objects must
be created, used and destroyed where pjlib expects. So this module runs pjsua2 with no
worker threads of its own (`threadCnt = 0`, `mainThreadOnly`) on ONE thread that loops
`libHandleEvents()` and, between polls, runs the commands the asyncio side queued. Every
pjsua2 callback therefore fires on that thread and reaches asyncio only through `post`,
which the caller builds on `loop.call_soon_threadsafe`. The thread also destroys the
library (`libDestroy`) so nothing pjsua2 owns outlives it and pytest can exit.

The one exception is the media clock: pjmedia calls `HeadsetPort.onFrame*` from its own
(pjlib-registered) clock thread. Those callbacks only touch `HeadsetControls` (plain
attributes and locked FIFOs), never pjlib or asyncio.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pjsua2 as pj

from dialerd.phone.audio import DeviceBridge, LevelMeter, scale_pcm16
from dialerd.phone.events import (
    Answered,
    AudioStats,
    Disconnected,
    Incoming,
    MediaActive,
    PhoneEvent,
)

T = TypeVar("T")
POLL_MS = 10
MEDIA_CHECK_SECONDS = 0.5
MEDIA_DEAD_SECONDS = 5.0
"""A held call that received no RTP for this long is dead (Asterisk killed, the network
gone: no BYE ever comes). A new INVITE from the PBX then replaces it instead of a 486."""
_ENDPOINT_SLOT = threading.Lock()  # held by the one engine thread that owns pjsua2


class EngineError(Exception):
    """The SIP stack could not start (bad bind address, port taken); one line."""


@dataclass(frozen=True)
class EngineConfig:
    """What the pjsua2 thread needs; built by `Softphone` from `PhoneConfig`."""

    server_host: str
    server_port: int
    user: str
    password: str
    bind: str | None
    local_port: int
    clock_rate: int
    auto_answer: bool
    reg_expiry: int
    log_level: int


@dataclass(frozen=True)
class RegState:
    """A raw registration outcome; `generation` tells stale accounts' reports apart."""

    generation: int
    code: int
    reason: str
    active: bool
    expires: int


_POINTER = ctypes.sizeof(ctypes.c_void_p)


def vector_bytes_direct(vector: Any) -> bytes:
    """The contents of a pjsua2 ByteVector, read straight from the std::vector.

    std::vector<unsigned char> starts with its begin and end pointers in libstdc++, libc++
    and MSVC alike; `int(vector.this)` is the vector's address.
    """
    address = int(vector.this)
    begin = ctypes.c_void_p.from_address(address).value
    end = ctypes.c_void_p.from_address(address + _POINTER).value
    if not begin or not end:
        return b""
    return ctypes.string_at(begin, end - begin)


def _vector_reader() -> Callable[[Any], bytes]:
    """The fastest correct way to turn a ByteVector into bytes on this build.

    `bytes(vector)` walks the vector element by element through SWIG: 0.7 ms for one 20 ms
    frame at 16 kHz, about 3.5 % of a core per call for the received audio alone. The
    direct read takes ~5 us; it is used only once it reproduced a known vector exactly.
    """
    probe = bytes(range(256)) * 3
    if vector_bytes_direct(pj.ByteVector(probe)) == probe:
        return vector_bytes_direct
    return bytes


frame_bytes = _vector_reader()


@dataclass
class HeadsetControls:
    """State shared with the media clock thread: plain attributes, swapped atomically."""

    muted: bool = False
    volume: float = 1.0
    bridge: DeviceBridge | None = None
    meter: LevelMeter = field(default_factory=lambda: LevelMeter(AudioStats.VOICE_RMS))
    callback_errors: int = 0


class HeadsetPort(pj.AudioMediaPort):  # type: ignore[misc]
    """The agent's ears and mouth in the pjsua2 conference.

    Receives what the call sends (measured, then played on the headset if one is open)
    and supplies what the call transmits (the headset microphone, or silence when muted or
    on the null device).
    """

    def __init__(self, controls: HeadsetControls) -> None:
        super().__init__()
        self._controls = controls

    # Nothing may escape a SWIG director: it would unwind through pjmedia's C code on the
    # clock thread (observed: the process then spins forever at exit). And the handlers
    # may run on a half-destroyed object: when the last reference goes, Python clears the
    # instance's attributes *before* the C++ destructor takes the port out of the
    # conference, and the clock thread can call in between. So they require nothing.

    def onFrameReceived(self, frame: Any) -> None:
        try:
            self._received(frame)
        except Exception:
            self._count_error()

    def onFrameRequested(self, frame: Any) -> None:
        try:
            self._requested(frame)
        except Exception:
            self._count_error()

    def _count_error(self) -> None:
        with contextlib.suppress(Exception):
            controls = getattr(self, "_controls", None)
            if controls is not None:
                controls.callback_errors += 1

    def _received(self, frame: Any) -> None:
        if frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO or frame.size == 0:
            return
        pcm = frame_bytes(frame.buf)
        controls = self._controls
        controls.meter.feed(pcm)
        bridge = controls.bridge
        if bridge is not None:
            bridge.to_speaker.write(scale_pcm16(pcm, controls.volume))

    def _requested(self, frame: Any) -> None:
        controls = self._controls
        bridge = controls.bridge
        size = int(frame.size)
        if bridge is not None:
            pcm = bridge.from_mic.read(size)  # drained even when muted: no stale audio
            if controls.muted:
                pcm = bytes(size)
        else:
            pcm = bytes(size)
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(pcm)
        frame.size = len(pcm)


def destroy_native(proxy: Any) -> None:
    """Delete the C++ object behind a pjsua2 proxy now, while the Python object lives.

    Letting the last reference go instead is unsafe for director objects: Python starts
    deallocating (clearing attributes, refcount 0) *before* the C++ destructor runs, and
    that destructor releases the GIL while it takes the port out of the conference or
    hangs the call up, so pjmedia's clock thread or a call callback can enter the dying
    object, resurrect and free it a second time. Observed: AttributeErrors from
    onFrameRequested, segfaults, and a corrupted GC list that spun forever at exit.
    SWIG's destroy disowns the pointer, so the later Python deallocation deletes nothing.
    """
    if proxy is not None and proxy.this.own():
        type(proxy).__swig_destroy__(proxy)


def _guarded(callback: Callable[..., None]) -> Callable[..., None]:
    """Contain exceptions in a pjsua2 callback: one escaping a SWIG director unwinds
    through pjsua's C code. They are counted in `HeadsetControls.callback_errors`."""

    def wrapper(self: Any, prm: Any) -> None:
        try:
            callback(self, prm)
        except Exception:
            # `self` may be half-destroyed (a Call's destructor can still report): see
            # HeadsetPort; counting must not raise either.
            with contextlib.suppress(Exception):
                self._engine.controls.callback_errors += 1

    return wrapper


def _host_of(address: str) -> str:
    """'127.0.0.1:5060' / '[::1]:5060' -> the host part."""
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 or "]" in address else address
    return host.strip("[]")


class PhoneCall(pj.Call):  # type: ignore[misc]
    """One SIP call; reports its life to the engine."""

    def __init__(self, engine: Engine, account: pj.Account, call_id: int) -> None:
        super().__init__(account, call_id)
        self._engine = engine
        self.number = call_id

    @_guarded
    def onCallState(self, prm: Any) -> None:
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self._engine.post(Answered(self.number))
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._engine.call_ended(self, info.lastStatusCode, info.lastReason)

    @_guarded
    def onCallMediaState(self, prm: Any) -> None:
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = self.getAudioMedia(index)
            port = self._engine.headset
            audio.startTransmit(port)
            port.startTransmit(audio)
            codec = self.getStreamInfo(index).codecName
            self._engine.post(MediaActive(self.number, str(codec)))


class PhoneAccount(pj.Account):  # type: ignore[misc]
    """The SIP account; turns pjsua2 callbacks into engine events."""

    def __init__(self, engine: Engine, generation: int) -> None:
        super().__init__()
        self._engine = engine
        self.generation = generation

    @_guarded
    def onRegState(self, prm: Any) -> None:
        info = self.getInfo()
        self._engine.post_reg(
            RegState(
                self.generation,
                int(prm.code),
                str(prm.reason),
                bool(info.regIsActive),
                int(prm.expiration),
            )
        )

    @_guarded
    def onIncomingCall(self, prm: Any) -> None:
        self._engine.incoming(self, int(prm.callId), str(prm.rdata.srcAddress))


@dataclass
class MediaWatch:
    """When the held call last received RTP. The PBX never sends a second INVITE to a phone
    it is still talking to, except after it lost the first call without telling (killed):
    RTP that stopped tells a dead leg from a busy one."""

    changed_at: float
    """When the packet count last moved (the call's start until its first packet)."""
    packets: int = 0

    def observe(self, rx_packets: int, now: float) -> None:
        if rx_packets != self.packets:
            self.packets, self.changed_at = rx_packets, now

    def dead(self, now: float) -> bool:
        return now - self.changed_at >= MEDIA_DEAD_SECONDS


class Engine:
    """Owns pjsua2 on its thread; the asyncio side talks to it through `submit`."""

    def __init__(
        self,
        config: EngineConfig,
        controls: HeadsetControls,
        post: Callable[[PhoneEvent], None],
        post_reg: Callable[[RegState], None],
    ) -> None:
        self.config = config
        self.controls = controls
        self.post = post
        self.post_reg = post_reg
        self._commands: queue.Queue[tuple[Callable[[Engine], Any], Future[Any]]] = queue.Queue()
        self._ready: Future[None] = Future()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="dialerd-pjsua", daemon=True)
        self._ep: Any = None
        self._account: PhoneAccount | None = None
        self._generation = 0
        self._server_ips: set[str] = set()
        self.headset: Any = None
        self.call: PhoneCall | None = None
        self._media = MediaWatch(changed_at=0.0)
        self._media_checked = 0.0
        self._ended: list[PhoneCall] = []

    # ---------------------------------------------------------------- any thread
    def start(self) -> Future[None]:
        """Start the thread; the future resolves once the stack is up (or failed).

        pjsua2's Endpoint is a process-wide singleton whose constructor, when one exists
        already, throws a C++ exception that terminates the process: refuse instead.
        """
        if not _ENDPOINT_SLOT.acquire(blocking=False):
            self._ready.set_exception(
                EngineError("another softphone is already running in this process")
            )
            return self._ready
        self._thread.start()
        return self._ready

    def submit(self, command: Callable[[Engine], T]) -> Future[T]:
        """Run `command(engine)` on the pjsua2 thread; its result or exception comes back."""
        future: Future[T] = Future()
        if not self._thread.is_alive():
            future.set_exception(EngineError("the SIP stack is not running"))
            return future
        self._commands.put((command, future))
        return future

    def join(self, timeout: float) -> bool:
        """Wait for the thread to finish; False if it is still running."""
        if self._thread.ident is None:  # never started (start() refused)
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ---------------------------------------------------------------- pjsua2 thread
    def _run(self) -> None:
        try:
            self._run_library()
        finally:
            _ENDPOINT_SLOT.release()

    def _run_library(self) -> None:
        failure: EngineError | None = None
        try:
            self._create_endpoint()
        except (pj.Error, OSError) as exc:
            reason = exc.reason if isinstance(exc, pj.Error) else str(exc)
            failure = EngineError(f"cannot start the SIP stack: {reason}")
        if failure is not None:
            # Only now, with the traceback (whose frames hold the Endpoint) released: the
            # Endpoint is a singleton that must die on this thread before anyone, woken by
            # the failure, creates the next one (observed: abort in Endpoint()).
            self._destroy()
            self._ready.set_exception(failure)
            return
        self._ready.set_result(None)
        try:
            while not self._stopping:
                self._ep.libHandleEvents(POLL_MS)
                self._destroy_ended()  # here, outside the callback that ended them
                self._drain()
                self._watch_media()
        finally:
            self._destroy()
            self._fail_pending()

    def _create_endpoint(self) -> None:
        """Create, configure and start the library (on self at once, so a failure part
        way is still torn down by `_destroy`)."""
        cfg = self.config
        ep = self._ep = pj.Endpoint()
        with _quiet_stdout(cfg.log_level == 0):
            ep.libCreate()
        ep_cfg = pj.EpConfig()
        ep_cfg.uaConfig.threadCnt = 0
        ep_cfg.uaConfig.mainThreadOnly = True
        ep_cfg.uaConfig.userAgent = "dialerd-phone"
        ep_cfg.logConfig.level = cfg.log_level
        ep_cfg.logConfig.consoleLevel = cfg.log_level
        ep_cfg.medConfig.clockRate = cfg.clock_rate
        ep_cfg.medConfig.sndClockRate = cfg.clock_rate
        ep_cfg.medConfig.channelCount = 1
        # Without VAD the phone sends RTP even in silence (muted agent): Asterisk's
        # rtp_timeout must never mistake a quiet agent for a dead one.
        ep_cfg.medConfig.noVad = True
        ep_cfg.medConfig.ecTailLen = 0
        ep.libInit(ep_cfg)
        transport = pj.TransportConfig()
        transport.port = cfg.local_port
        if cfg.bind:
            transport.boundAddress = cfg.bind
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        ep.libStart()
        ep.audDevManager().setNullDev()
        fmt = pj.MediaFormatAudio()
        fmt.type = pj.PJMEDIA_TYPE_AUDIO
        fmt.clockRate = cfg.clock_rate
        fmt.channelCount = 1
        fmt.bitsPerSample = 16
        fmt.frameTimeUsec = 20000
        self.headset = HeadsetPort(self.controls)
        self.headset.createPort("dialerd-headset", fmt)
        try:
            infos = socket.getaddrinfo(cfg.server_host, cfg.server_port, type=socket.SOCK_DGRAM)
            self._server_ips = {str(info[4][0]) for info in infos}
        except OSError:
            self._server_ips = {cfg.server_host}

    def _drain(self) -> None:
        while True:
            try:
                command, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(command(self))
            except pj.Error as exc:  # one line for the agent; pj.Error's repr is a dump
                future.set_exception(EngineError(f"{exc.title}: {exc.reason}".splitlines()[0]))
            except Exception as exc:
                future.set_exception(exc)

    def _fail_pending(self) -> None:
        while True:
            try:
                _, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(EngineError("the SIP stack has stopped"))

    def _destroy(self) -> None:
        """Tear down in pjsua2's order: calls, account, ports, then the library."""
        ep = self._ep
        if ep is not None:
            try:
                ep.hangupAllCalls()
                for _ in range(200):  # up to ~2 s for the BYE's answer: the call (and its
                    # link to the headset port) is gone before the port is destroyed
                    if self.call is None:
                        break
                    ep.libHandleEvents(POLL_MS)
            except pj.Error:
                pass
        if self.call is not None:
            self._ended.append(self.call)
            self.call = None
        self._destroy_ended()
        if self._account is not None:
            self._account.shutdown()
            destroy_native(self._account)
            self._account = None
        destroy_native(self.headset)
        self.headset = None
        gc.collect()  # SWIG proxies in cycles must die before libDestroy, on this thread
        if ep is not None:
            ep.libDestroy()
        self._ep = None

    # ---------------------------------------------------------------- commands
    def stop(self) -> None:
        """Leave the poll loop; `_destroy` then runs on this thread."""
        self._stopping = True

    def register(self) -> int:
        """Send a REGISTER now; returns the generation its outcome will carry.

        With no call up a fresh account is made, which abandons a REGISTER still waiting
        for pjsip's 32 s transaction timeout. During a call the account (and the call on
        it) is kept and only asked to register again.
        """
        if self._account is not None and self.call is not None:
            with contextlib.suppress(pj.Error):  # a REGISTER still in flight reports later
                self._account.setRegistration(True)
            return self._generation
        if self._account is not None:
            self._account.shutdown()
            destroy_native(self._account)
            self._account = None
        cfg = self.config
        self._generation += 1
        acc_cfg = pj.AccountConfig()
        acc_cfg.idUri = f"sip:{cfg.user}@{cfg.server_host}:{cfg.server_port}"
        acc_cfg.regConfig.registrarUri = f"sip:{cfg.server_host}:{cfg.server_port}"
        acc_cfg.regConfig.timeoutSec = cfg.reg_expiry
        acc_cfg.regConfig.retryIntervalSec = 0  # retries are the Softphone's, with backoff
        acc_cfg.regConfig.unregWaitMsec = 1000
        acc_cfg.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", "*", cfg.user, 0, cfg.password)
        )
        if cfg.bind:  # RTP on the same interface as SIP (a VPN, or loopback in tests)
            acc_cfg.mediaConfig.transportConfig.boundAddress = cfg.bind
        account = PhoneAccount(self, self._generation)
        account.create(acc_cfg)
        self._account = account
        return self._generation

    def _watch_media(self) -> None:
        now = time.monotonic()
        if now - self._media_checked < MEDIA_CHECK_SECONDS:
            return
        self._media_checked = now
        counts = self.rtp_counts()
        if counts is not None:
            self._media.observe(counts[1], now)

    def incoming(self, account: PhoneAccount, call_id: int, source: str) -> None:
        call = PhoneCall(self, account, call_id)
        op = pj.CallOpParam()
        auto = self.config.auto_answer and _host_of(source) in self._server_ips
        if self.call is not None:
            if not (auto and self._media.dead(time.monotonic())):
                op.statusCode = 486  # one call at a time: the nailed-up leg
                call.hangup(op)
                self._ended.append(call)
                return
            # The PBX lost our call without a BYE and is nailing us up again: drop the
            # dead one (reported as Disconnected when pjsua2 ends it) and take this.
            with contextlib.suppress(pj.Error):
                self.call.hangup(pj.CallOpParam())
        self.call = call
        self._media = MediaWatch(changed_at=time.monotonic())
        info = call.getInfo()
        self.post(Incoming(call_id, str(info.remoteUri), source, auto))
        self.controls.meter = LevelMeter(AudioStats.VOICE_RMS)
        op.statusCode = 200 if auto else 180
        call.answer(op)

    def _destroy_ended(self) -> None:
        """Destroy finished calls natively (see `destroy_native`); a destructor may end
        another call, which then waits for the next round."""
        ended, self._ended = self._ended, []
        for call in ended:
            destroy_native(call)

    def call_ended(self, call: PhoneCall, code: int, reason: str) -> None:
        if self.call is call:
            self.call = None
        self._ended.append(call)
        self.post(Disconnected(call.number, code, reason))

    def _current_call(self) -> PhoneCall:
        if self.call is None:
            raise EngineError("no call")
        return self.call

    def answer(self) -> None:
        op = pj.CallOpParam()
        op.statusCode = 200
        self._current_call().answer(op)

    def hangup(self) -> None:
        self._current_call().hangup(pj.CallOpParam())

    def dtmf(self, digits: str) -> None:
        """RFC 4733 digits (Asterisk's default dtmf_mode), so ConfBridge passes them on."""
        self._current_call().dialDtmf(digits)

    def rtp_counts(self) -> tuple[int, int, int, int] | None:
        """(call id, RTP packets received, sent, lost) of the active call's audio."""
        call = self.call
        if call is None or not call.hasMedia():
            return None
        stat = call.getStreamStat(0).rtcp
        return call.number, int(stat.rxStat.pkt), int(stat.txStat.pkt), int(stat.rxStat.loss)


@contextlib.contextmanager
def _quiet_stdout(quiet: bool) -> Iterator[None]:
    """Silence pjlib's start-up banner, which `libCreate` prints to fd 1 before any log
    configuration can apply (and which would break the CLI's status line)."""
    if not quiet:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def pjsua_device_count() -> int:
    """How many sound devices this pjsua2 build itself can see (0 for the manylinux wheel).

    Runs a throw-away library instance on the calling thread (pjsua2 registers the thread
    that calls libCreate), so call it only when no Softphone runs in this process.
    """
    if not _ENDPOINT_SLOT.acquire(blocking=False):
        raise EngineError("a softphone is running in this process")
    try:
        ep = pj.Endpoint()
        with _quiet_stdout(True):
            ep.libCreate()
        ep_cfg = pj.EpConfig()
        ep_cfg.logConfig.level = 0
        ep_cfg.logConfig.consoleLevel = 0
        ep.libInit(ep_cfg)
        try:
            return int(ep.audDevManager().getDevCount())
        finally:
            ep.libDestroy()
            del ep
    finally:
        _ENDPOINT_SLOT.release()
