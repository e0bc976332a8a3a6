"""The headset path end to end: PortAudio devices <-> Softphone <-> Asterisk (issue 10).

The machine has no sound card, so the "headset" is ALSA configuration in a private HOME:
`dialerd_speaker` pipes what PortAudio plays into a file through a pacer (a real device's
clock would pace it), `dialerd_mic` reads a FIFO that a feeder thread fills with a 440 Hz
tone in real time, and `dialerd_headset` joins the two (ALSA `asym`). PortAudio reads that
configuration when it initialises, so the phone runs in a subprocess with HOME pointed at
it. What the agent hears is measured in the speaker file; what the agent says is measured
by Asterisk itself (MixMonitor of the phone's channel, read direction).
"""

from __future__ import annotations

import array
import asyncio
import json
import math
import os
import struct
import sys
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.conftest import Sandbox

pytestmark = [pytest.mark.pbx, pytest.mark.sip]

REPO = Path(__file__).resolve().parents[2]
RATE = 16000
TONE_RMS = 8000 / math.sqrt(2)

PACER = """
import sys, time
rate = int(sys.argv[2]) * 2
out = open(sys.argv[1], "wb")
start, n = time.monotonic(), 0
while chunk := sys.stdin.buffer.read(640):
    out.write(chunk)
    out.flush()
    n += len(chunk)
    ahead = n / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)
"""

ASOUNDRC = """
pcm.dialerd_speaker {{
    type file
    slave.pcm "null"
    file "| {python} {home}/pacer.py {home}/speaker.raw {rate}"
    format "raw"
}}
pcm.dialerd_mic {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{home}/mic.fifo"
    format "raw"
}}
pcm.dialerd_headset {{
    type asym
    playback.pcm "dialerd_speaker"
    capture.pcm "dialerd_mic"
}}
"""

# The agent's side, driven through the programmatic API in its own process.
DRIVER = """
import asyncio, json, sys
from dialerd.phone import *

async def main():
    server, user, password = sys.argv[1:4]
    cfg = PhoneConfig(server=server, user=user, password=password, bind="127.0.0.1",
                      playback="headset", capture="headset", stats_interval=0.5)
    phone = Softphone(cfg)
    events = phone.subscribe()
    await phone.start()
    seen = {}
    async with asyncio.timeout(20):  # the two come in either order
        async for event in events:
            seen[type(event)] = event
            if DeviceReady in seen and Registered in seen:
                break
    ready = seen[DeviceReady]
    print("registered", ready.capture, ready.playback, flush=True)
    await events.wait_for(MediaActive, 15)
    print("media", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # the customer is on
    heard = await events.wait_for(AudioStats, 20, lambda s: s.voice_frames >= 10)
    await asyncio.sleep(1)
    await phone.mute()
    print("muted", flush=True)
    await asyncio.sleep(3)
    print(json.dumps(heard.__dict__), flush=True)
    await phone.stop()

asyncio.run(main())
"""


def rms_windows(pcm: bytes, window: int) -> list[float]:
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) // 2 * 2])
    return [
        math.sqrt(sum(s * s for s in samples[i : i + window]) / window)
        for i in range(0, len(samples) - window + 1, window)
    ]


class ToneFeeder(threading.Thread):
    """Writes a 440 Hz tone into the mic FIFO at real-time pace, reopening it whenever
    PortAudio closes it (device probing opens and closes the capture PCM)."""

    def __init__(self, fifo: Path) -> None:
        super().__init__(daemon=True)
        self.fifo = fifo
        self.done = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.done.is_set():
            try:  # non-blocking: fails with ENXIO until PortAudio opens the capture PCM
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.05)
                continue
            os.set_blocking(fd, True)
            start, sent = time.monotonic(), 0
            try:
                while not self.done.is_set():
                    frame = b"".join(
                        struct.pack("<h", round(8000 * math.sin(2 * math.pi * 440 * k / RATE)))
                        for k in range(n, n + 320)
                    )
                    n += 320
                    os.write(fd, frame)
                    sent += 320
                    ahead = sent / RATE - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)
            except BrokenPipeError:
                pass  # the reader closed (device probe, stream closed): wait for the next
            finally:
                os.close(fd)


@pytest.fixture
def headset_home(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "pacer.py").write_text(PACER)
    (tmp_path / ".asoundrc").write_text(
        ASOUNDRC.format(python=sys.executable, home=tmp_path, rate=RATE)
    )
    os.mkfifo(tmp_path / "mic.fifo")
    feeder = ToneFeeder(tmp_path / "mic.fifo")
    feeder.start()
    try:
        yield tmp_path
    finally:
        feeder.done.set()
        feeder.join(5)


async def line(proc: asyncio.subprocess.Process, within: float) -> str:
    assert proc.stdout is not None
    async with asyncio.timeout(within):
        text = (await proc.stdout.readline()).decode().strip()
    if not text:
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode()
        pytest.fail(f"driver exited early: {err[-3000:]}")
    return text


async def test_headset_hears_the_customer_and_asterisk_hears_the_mic_until_muted(
    sandbox: Sandbox, headset_home: Path
) -> None:
    """Through real PortAudio streams: the customer's "hello" reaches the speaker, the
    microphone's tone reaches Asterisk, and after mute Asterisk receives silence."""
    env = {**os.environ, "HOME": str(headset_home), "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DRIVER, f"127.0.0.1:{sandbox.sip_port}", "1010", "secret1010",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip
    assert proc.stdin is not None
    recording = sandbox.spool_dir / "monitor" / "phone-test-1010.wav"
    recording.unlink(missing_ok=True)
    try:
        assert await line(proc, 20) == "registered dialerd_headset dialerd_headset"
        sandbox.cli("channel originate PJSIP/1010 extension 1010@dialerd-agent")
        assert await line(proc, 15) == "media"
        channel = next(
            c.split("!")[0]
            for c in sandbox.cli("core show channels concise").splitlines()
            if c.startswith("PJSIP/1010-")
        )
        sandbox.cli(f"mixmonitor start {channel} phone-scratch-1010.wav,r({recording.name})")
        sandbox.cli(
            "channel originate Local/123451030001@world application "
            "ConfBridge dialerd-agent-1010,dialerd_bridge,dialerd_customer"
        )
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        assert await line(proc, 25) == "muted"
        heard = json.loads(await line(proc, 10))
        async with asyncio.timeout(20):
            _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()[-2000:]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        sandbox.cli("channel request hangup all")

    speaker = rms_windows((headset_home / "speaker.raw").read_bytes(), RATE // 50)
    loud_out = sum(1 for r in speaker if r > 1000)
    async with asyncio.timeout(10):
        while True:  # MixMonitor closes the file a moment after the hangup
            if recording.exists():
                break
            await asyncio.sleep(0.2)
    with wave.open(str(recording)) as wav:
        rate = wav.getframerate()
        sent = rms_windows(wav.readframes(wav.getnframes()), rate // 50)
    tone = [r for r in sent if abs(r - TONE_RMS) < 0.1 * TONE_RMS]
    tail = sent[-50:]  # the last second: well after mute
    print(
        f"\nspeaker: {len(speaker)} windows of 20 ms, {loud_out} with RMS > 1000, "
        f"max {max(speaker):.0f}; stats {heard}\n"
        f"asterisk heard: {len(sent)} windows, {len(tone)} within 10 % of the tone's "
        f"RMS {TONE_RMS:.0f}; last second max RMS {max(tail):.0f}"
    )
    assert heard["voice_frames"] >= 10
    assert heard["audio_errors"] == 0
    assert loud_out >= 10  # "hello" played on the headset
    assert len(tone) >= 100  # >= 2 s of the mic tone, intact, before mute
    assert max(tail) < 50  # muted: silence (RTP still flowing, see test_phone.py)


async def test_cli_picks_the_headset_by_name_and_remembers_it(
    sandbox: Sandbox, headset_home: Path
) -> None:
    """`--device headset` opens dialerd_headset both ways, saves the choice by name, and
    `--list-devices` then shows the devices and the saved choice."""
    env = {
        **os.environ,
        "HOME": str(headset_home),
        "PYTHONPATH": str(REPO),
        "DIALERD_PHONE_PASSWORD": "secret1015",
    }
    args = ("--server", f"127.0.0.1:{sandbox.sip_port}", "--user", "1015", "--bind", "127.0.0.1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialerd", "phone", *args, "--device", "headset",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip
    try:
        while "audio on" not in (text := await line(proc, 20)):
            pass
        assert text == "dialerd phone: audio on 'dialerd_headset' / 'dialerd_headset'"
        proc.terminate()
        async with asyncio.timeout(15):
            await proc.wait()
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    saved = (headset_home / ".config" / "dialerd" / "phone.yaml").read_text()
    assert "capture: dialerd_headset" in saved
    assert "playback: dialerd_headset" in saved

    listing = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialerd", "phone", "--list-devices",
        stdout=asyncio.subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip
    async with asyncio.timeout(30):
        out, _ = await listing.communicate()
    text = out.decode()
    assert "dialerd_headset" in text
    assert "capture=dialerd_headset, playback=dialerd_headset" in text
    assert "pjsua2's own sound devices: 0" in text
