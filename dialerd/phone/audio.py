"""Audio devices for the softphone: choosing them, remembering them, and bridging them.

Why PortAudio and not pjsua2's own sound device: the `pjsua2-python` manylinux wheel is
built without any sound backend (its `audDevManager().enumDev2()` lists no device even on a
desktop), so pjsua2 always runs on its *null* device, which is only the conference clock.
The real headset is opened with sounddevice (PortAudio) and joined to the pjsua2
conference through an `AudioMediaPort` (see `engine.HeadsetPort`): what the port receives
from the call is played on the headset, what the headset captures is what the port sends.
Device indices and names are therefore PortAudio's, as `dialerd phone --list-devices`
prints them.

Threads: the pjsua2 media clock thread writes/reads the FIFOs below, PortAudio's callback
thread reads/writes the other end. Neither calls into pjlib or asyncio; a lock per FIFO is
all they share.
"""

from __future__ import annotations

import array
import contextlib
import math
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SAMPLE_BYTES = 2  # 16-bit signed linear, mono, native byte order (what pjmedia uses)


def frame_rms(pcm: bytes) -> float:
    """RMS of 16-bit mono samples (0.0 for an empty frame)."""
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % SAMPLE_BYTES])
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def scale_pcm16(pcm: bytes, gain: float) -> bytes:
    """Samples multiplied by `gain`, clipped to the 16-bit range (the speaker volume)."""
    if gain == 1.0:
        return pcm
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % SAMPLE_BYTES])
    out = array.array("h", (max(-32768, min(32767, int(s * gain))) for s in samples))
    return out.tobytes()


class PcmFifo:
    """A bounded byte FIFO between two real-time threads.

    Writers never block: when full, the oldest audio is dropped (the headset clock and the
    conference clock drift apart slowly, and late audio is worse than lost audio). Readers
    never block either: a short read is padded with silence.
    """

    def __init__(self, max_bytes: int) -> None:
        self._buf = bytearray()
        self._max = max_bytes
        self._lock = threading.Lock()
        self.dropped_bytes = 0
        self.padded_bytes = 0

    def write(self, data: bytes) -> None:
        with self._lock:
            self._buf += data
            excess = len(self._buf) - self._max
            if excess > 0:
                excess += excess % SAMPLE_BYTES
                del self._buf[:excess]
                self.dropped_bytes += excess

    def read(self, size: int) -> bytes:
        with self._lock:
            data = bytes(self._buf[:size])
            del self._buf[:size]
            short = size - len(data)
            if short:
                self.padded_bytes += short
        return data + bytes(short) if short else data

    def __len__(self) -> int:
        with self._lock:
            return len(self._buf)


class LevelMeter:
    """Counts and levels of what the agent hears, fed from the media clock thread."""

    def __init__(self, voice_rms: float) -> None:
        self._voice_rms = voice_rms
        self._lock = threading.Lock()
        self.frames = 0
        self.voice_frames = 0
        self._sq_sum = 0.0
        self._samples = 0
        self._peak = 0.0

    def feed(self, pcm: bytes) -> None:
        rms = frame_rms(pcm)
        n = len(pcm) // SAMPLE_BYTES
        with self._lock:
            self.frames += 1
            if rms >= self._voice_rms:
                self.voice_frames += 1
            self._sq_sum += rms * rms * n
            self._samples += n
            self._peak = max(self._peak, rms)

    def interval(self) -> tuple[float, float, int, int]:
        """(RMS, loudest frame RMS) since the last call, and the running frame counts."""
        with self._lock:
            rms = math.sqrt(self._sq_sum / self._samples) if self._samples else 0.0
            peak = self._peak
            self._sq_sum, self._samples, self._peak = 0.0, 0, 0.0
            return rms, peak, self.frames, self.voice_frames


# --------------------------------------------------------------------------- devices


class AudioDeviceError(Exception):
    """No usable device; the message is one line for the agent."""


@dataclass(frozen=True)
class DeviceInfo:
    """One PortAudio device as the agent sees it in `--list-devices`."""

    index: int
    name: str
    hostapi: str
    inputs: int
    outputs: int
    default_rate: float


def _sounddevice() -> Any:
    """sounddevice, imported late: it loads PortAudio, which a server install may lack."""
    try:
        import sounddevice
    except OSError as exc:  # "PortAudio library not found"
        raise AudioDeviceError(
            f"PortAudio is not available ({exc}): install libportaudio2, or use --null-audio"
        ) from None
    return sounddevice


def rescan() -> None:
    """Make PortAudio enumerate again, so a headset plugged in after start is found.

    Only valid while no stream is open (sounddevice's documented re-initialisation).
    """
    sd = _sounddevice()
    try:
        sd._terminate()
        sd._initialize()
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"PortAudio failed to rescan devices: {exc}") from None


def list_devices() -> list[DeviceInfo]:
    """Every PortAudio device, in PortAudio's order (the index `--device 3` means)."""
    sd = _sounddevice()
    try:
        hostapis = [str(h["name"]) for h in sd.query_hostapis()]
        devices = sd.query_devices()
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"PortAudio cannot list devices: {exc}") from None
    return [
        DeviceInfo(
            index=int(d["index"]),
            name=str(d["name"]),
            hostapi=hostapis[int(d["hostapi"])],
            inputs=int(d["max_input_channels"]),
            outputs=int(d["max_output_channels"]),
            default_rate=float(d["default_samplerate"]),
        )
        for d in devices
    ]


def default_device(direction: str) -> int | None:
    """PortAudio's default input/output device index, or None when there is none."""
    sd = _sounddevice()
    pair = sd.default.device
    index = pair[0] if direction == "input" else pair[1]
    if index is None or int(index) < 0:
        return None
    return int(index)


def pick_device(devices: list[DeviceInfo], spec: str | None, direction: str) -> DeviceInfo:
    """The device `spec` names for `direction` ("input" or "output").

    `spec` is an index or a case-insensitive name substring; an exact name wins over a
    substring so "USB" does not grab "USB Audio Jabra" when a device is called "USB".
    None means PortAudio's default device.
    """
    usable = [d for d in devices if (d.inputs if direction == "input" else d.outputs) > 0]
    what = "capture" if direction == "input" else "playback"
    if not usable:
        raise AudioDeviceError(
            f"no audio {what} device found (plug in a headset, or use --null-audio)"
        )
    if spec is None:
        index = default_device(direction)
        chosen = next((d for d in usable if d.index == index), None)
        return chosen or usable[0]
    if spec.strip().isdigit():
        chosen = next((d for d in usable if d.index == int(spec)), None)
    else:
        needle = spec.strip().lower()
        exact = [d for d in usable if d.name.lower() == needle]
        matches = exact or [d for d in usable if needle in d.name.lower()]
        chosen = matches[0] if matches else None
    if chosen is None:
        names = ", ".join(f"{d.index}: {d.name}" for d in usable)
        raise AudioDeviceError(f"no {what} device matches {spec!r} (have {names})")
    return chosen


# --------------------------------------------------------------------------- preferences


def prefs_path() -> Path:
    """~/.config/dialerd/phone.yaml (honours XDG_CONFIG_HOME)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dialerd" / "phone.yaml"


@dataclass(frozen=True)
class DevicePrefs:
    """The remembered capture/playback choice, by name (indices change between boots)."""

    capture: str | None = None
    playback: str | None = None

    @classmethod
    def load(cls, path: Path) -> DevicePrefs:
        """The saved choice; a missing file is no choice, a broken one a one-line warning."""
        try:
            data = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            return cls()
        except (OSError, yaml.YAMLError) as exc:
            print(f"dialerd phone: ignoring {path}: {exc}".splitlines()[0], file=sys.stderr)
            return cls()
        if not isinstance(data, dict):
            return cls()
        cap, play = data.get("capture"), data.get("playback")
        return cls(
            capture=str(cap) if cap is not None else None,
            playback=str(play) if play is not None else None,
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            "# written by `dialerd phone --device ...`; names are PortAudio's\n"
            + yaml.safe_dump({"capture": self.capture, "playback": self.playback})
        )
        tmp.replace(path)


# --------------------------------------------------------------------------- bridge


class DeviceBridge:
    """PortAudio streams on both ends of two FIFOs that the headset port reads and fills."""

    def __init__(self, capture: DeviceInfo, playback: DeviceInfo, rate: int, frame_ms: int):
        self.capture = capture
        self.playback = playback
        frame_bytes = rate * frame_ms // 1000 * SAMPLE_BYTES
        self._frame_samples = frame_bytes // SAMPLE_BYTES
        # 10 frames (200 ms) of slack each way absorbs scheduling jitter and clock drift.
        self.to_speaker = PcmFifo(10 * frame_bytes)
        self.from_mic = PcmFifo(10 * frame_bytes)
        self._rate = rate
        self._streams: list[Any] = []

    def open(self) -> None:
        """Open and start both streams; AudioDeviceError (one line) when the device refuses."""
        sd = _sounddevice()

        def on_capture(indata: Any, frames: int, time: Any, status: Any) -> None:
            self.from_mic.write(bytes(indata))

        def on_playback(outdata: Any, frames: int, time: Any, status: Any) -> None:
            outdata[:] = self.to_speaker.read(len(outdata))

        common = {
            "samplerate": self._rate,
            "channels": 1,
            "dtype": "int16",
            "blocksize": self._frame_samples,
        }
        try:
            self._streams = [
                sd.RawInputStream(device=self.capture.index, callback=on_capture, **common),
                sd.RawOutputStream(device=self.playback.index, callback=on_playback, **common),
            ]
            for stream in self._streams:
                stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            self.close()
            raise AudioDeviceError(
                f"cannot open {self.capture.name!r}/{self.playback.name!r} at {self._rate} Hz: "
                f"{exc}".splitlines()[0]
            ) from None

    @property
    def active(self) -> bool:
        """False once PortAudio stopped a stream by itself (device unplugged)."""
        return bool(self._streams) and all(s.active for s in self._streams)

    def close(self) -> None:
        for stream in self._streams:
            # a vanished device may fail to close; there is nothing left to do then
            with contextlib.suppress(Exception):
                stream.close(ignore_errors=True)
        self._streams = []
