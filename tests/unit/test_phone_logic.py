"""The softphone's pure parts: failure wording, backoff, PCM arithmetic, device choice.

No pjsua2, no PortAudio, no Asterisk here (issue 10, part 1).
"""

from __future__ import annotations

import array
import math
import threading
from pathlib import Path

import pytest

from dialerd.phone.audio import (
    AudioDeviceError,
    DeviceInfo,
    DevicePrefs,
    LevelMeter,
    PcmFifo,
    frame_rms,
    pick_device,
    scale_pcm16,
)
from dialerd.phone.events import Backoff, explain_registration_failure
from dialerd.phone.softphone import PhoneError, parse_server


def pcm(*samples: int) -> bytes:
    return array.array("h", samples).tobytes()


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (401, "rejected the credentials for user 1001"),
        (403, "rejected the credentials for user 1001"),
        (407, "rejected the credentials"),
        (404, "does not know user 1001"),
        (408, "is unreachable"),
        (503, "is unreachable"),
        (171060, "is unreachable"),  # a pj status (socket error), not a SIP code
        (423, "longer registration interval"),
        (500, "refused registration of 1001 (500"),
    ],
)
def test_registration_failures_read_as_one_actionable_line(code: int, words: str) -> None:
    line = explain_registration_failure(code, "Reason", "pbx:5060", "1001")
    assert words in line
    assert "\n" not in line
    assert "pbx:5060" in line


def test_backoff_grows_to_the_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(first=1.0, factor=2.0, cap=8.0, jitter=0.2)
    delays = [backoff.next() for _ in range(6)]
    for delay, base in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert base * 0.8 <= delay <= base * 1.2
    backoff.reset()
    assert 0.8 <= backoff.next() <= 1.2


def test_frame_rms_of_known_signals() -> None:
    assert frame_rms(b"") == 0.0
    assert frame_rms(pcm(0, 0, 0, 0)) == 0.0
    assert frame_rms(pcm(1000, -1000, 1000, -1000)) == pytest.approx(1000.0)
    sine = [round(10000 * math.sin(2 * math.pi * i / 40)) for i in range(160)]
    assert frame_rms(pcm(*sine)) == pytest.approx(10000 / math.sqrt(2), rel=0.01)
    assert frame_rms(pcm(500) + b"\x01") == pytest.approx(500.0)  # odd trailing byte ignored


def test_volume_scales_and_clips() -> None:
    assert scale_pcm16(pcm(100, -100), 1.0) == pcm(100, -100)
    assert scale_pcm16(pcm(100, -100), 0.5) == pcm(50, -50)
    assert scale_pcm16(pcm(30000, -30000), 2.0) == pcm(32767, -32768)
    assert scale_pcm16(pcm(1234), 0.0) == pcm(0)


def test_fifo_pads_short_reads_and_drops_oldest_when_full() -> None:
    fifo = PcmFifo(max_bytes=8)
    fifo.write(pcm(1, 2))
    assert fifo.read(8) == pcm(1, 2, 0, 0)
    assert fifo.padded_bytes == 4
    fifo.write(pcm(1, 2, 3, 4, 5, 6))
    assert len(fifo) == 8
    assert fifo.dropped_bytes == 4
    assert fifo.read(8) == pcm(3, 4, 5, 6)


def test_fifo_between_two_threads_loses_nothing_when_not_full() -> None:
    fifo = PcmFifo(max_bytes=1 << 20)
    chunks = [pcm(*range(i, i + 80)) for i in range(0, 8000, 80)]

    def writer() -> None:
        for chunk in chunks:
            fifo.write(chunk)

    thread = threading.Thread(target=writer)
    thread.start()
    thread.join()
    assert fifo.read(len(b"".join(chunks))) == b"".join(chunks)


def test_level_meter_counts_voice_frames_and_resets_interval_levels() -> None:
    meter = LevelMeter(voice_rms=200)
    meter.feed(pcm(0) * 160)
    meter.feed(pcm(1000, -1000) * 80)
    rms, peak, frames, voice = meter.interval()
    assert (frames, voice) == (2, 1)
    assert peak == pytest.approx(1000)
    assert rms == pytest.approx(1000 / math.sqrt(2))
    rms, peak, frames, voice = meter.interval()
    assert (rms, peak, frames, voice) == (0.0, 0.0, 2, 1)  # counts run on, levels reset


DEVICES = [
    DeviceInfo(0, "HDA Intel PCH: ALC3246 Analog (hw:0,0)", "ALSA", 2, 2, 48000),
    DeviceInfo(1, "Jabra Evolve2 65: USB Audio (hw:1,0)", "ALSA", 1, 2, 16000),
    DeviceInfo(2, "HDMI 0", "ALSA", 0, 8, 48000),
    DeviceInfo(3, "USB", "ALSA", 1, 1, 48000),
    DeviceInfo(4, "USB Audio Jabra Link", "ALSA", 1, 1, 48000),
]


def test_pick_device_by_index_substring_and_exact_name() -> None:
    assert pick_device(DEVICES, "jabra", "input").index == 1
    assert pick_device(DEVICES, "1", "output").index == 1
    assert pick_device(DEVICES, "usb", "input").index == 3  # exact name beats substring
    assert pick_device(DEVICES, "HDMI", "output").index == 2


def test_pick_device_refuses_wrong_direction_and_unknown_names_in_one_line() -> None:
    with pytest.raises(AudioDeviceError, match="no capture device matches 'HDMI'") as err:
        pick_device(DEVICES, "HDMI", "input")  # HDMI has no inputs
    assert "\n" not in str(err.value)
    assert "1: Jabra Evolve2 65" in str(err.value)
    with pytest.raises(AudioDeviceError, match="no audio playback device found"):
        pick_device([], None, "output")


def test_prefs_round_trip_and_a_broken_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "dialerd" / "phone.yaml"
    assert DevicePrefs.load(path) == DevicePrefs()
    DevicePrefs("Jabra Evolve2 65", "Jabra Evolve2 65").save(path)
    assert DevicePrefs.load(path) == DevicePrefs("Jabra Evolve2 65", "Jabra Evolve2 65")
    path.write_text("capture: [unclosed\n")
    assert DevicePrefs.load(path) == DevicePrefs()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5060", ("127.0.0.1", 5060)),
        ("pbx.example", ("pbx.example", 5060)),
        ("[::1]:5070", ("::1", 5070)),
        ("::1", ("::1", 5060)),
    ],
)
def test_parse_server(text: str, expected: tuple[str, int]) -> None:
    assert parse_server(text) == expected


@pytest.mark.parametrize("text", ["", ":5060", "host:port", "host:70000"])
def test_parse_server_rejects_nonsense(text: str) -> None:
    with pytest.raises(PhoneError, match="bad server"):
        parse_server(text)
