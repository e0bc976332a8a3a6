"""`dialerd phone`: the agent's softphone on the command line.

Deliberately small: one status line, a few keys, problems printed as one line each. The
agent console (later, over MQTT) drives the same `Softphone` with a richer screen.

    dialerd phone --server pbx.example:5060 --user 1001 --password-file ~/.sip-pass
    dialerd phone --list-devices
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import click

from dialerd.phone.audio import (
    AudioDeviceError,
    DevicePrefs,
    default_device,
    list_devices,
    prefs_path,
)
from dialerd.phone.events import (
    AudioStats,
    DeviceProblem,
    DeviceReady,
    Disconnected,
    MediaActive,
    PhoneEvent,
    Registered,
    RegistrationFailed,
)
from dialerd.phone.softphone import PhoneConfig, PhoneError, Softphone, parse_server

KEYS_HELP = "m mute  +/- volume  0-9*# dtmf  h hang up  q quit"


def print_devices(out: TextIO) -> None:
    """PortAudio's devices (what plays), the saved choice, and what pjsua2 itself sees."""
    try:
        devices = list_devices()
        defaults = (default_device("input"), default_device("output"))
    except AudioDeviceError as exc:
        out.write(f"{exc}\n")
        devices, defaults = [], (None, None)
    if devices:
        out.write("  #  in out  rate   host API     name\n")
    else:
        out.write("PortAudio found no audio device\n")
    for d in devices:
        mark = "<" if d.index == defaults[0] else " "
        mark += ">" if d.index == defaults[1] else " "
        out.write(
            f"{d.index:3d} {d.inputs:3d} {d.outputs:3d} {d.default_rate:6.0f}  "
            f"{d.hostapi[:12]:12s} {d.name} {mark.strip()}\n"
        )
    if devices:
        out.write("(< default capture, > default playback)\n")
    prefs = DevicePrefs.load(prefs_path())
    out.write(
        f"saved choice ({prefs_path()}): capture={prefs.capture or 'default'}, "
        f"playback={prefs.playback or 'default'}\n"
    )
    try:
        from dialerd.phone.engine import pjsua_device_count

        count = pjsua_device_count()
        out.write(
            f"pjsua2's own sound devices: {count} (audio is played through PortAudio; "
            "pjsua2 runs on its null device as the clock)\n"
        )
    except ImportError:
        out.write("pjsua2 is not installed: pip install 'dialerd[phone]'\n")


def read_password(password_file: Path | None) -> str:
    """The SIP password from --password-file, else $DIALERD_PHONE_PASSWORD (never argv)."""
    if password_file is not None:
        try:
            text = password_file.read_text().strip()
        except OSError as exc:
            raise click.UsageError(f"--password-file {password_file}: {exc.strerror}") from None
        if not text:
            raise click.UsageError(f"--password-file {password_file} is empty")
        return text
    env = os.environ.get("DIALERD_PHONE_PASSWORD")
    if env:
        return env
    raise click.UsageError("no password: use --password-file F or DIALERD_PHONE_PASSWORD")


class StatusLine:
    """The one line the agent watches; problems go above it as ordinary lines."""

    def __init__(self, phone: Softphone, out: TextIO) -> None:
        self.phone = phone
        self.out = out
        self.tty = out.isatty()
        self.state = "registering"
        self.call_since: float | None = None
        self.codec = ""
        self.level = ""
        self._last = ""

    def note(self, message: str) -> None:
        """A line that stays (errors, device changes)."""
        self.out.write(("\r\x1b[K" if self.tty else "") + message + "\n")
        self._last = ""
        self.render()

    def render(self) -> None:
        parts = [f"{self.phone.config.user}@{self.phone.server_host}:{self.phone.server_port}"]
        parts.append(self.state)
        if self.call_since is not None:
            secs = int(time.monotonic() - self.call_since)
            parts.append(f"call {secs // 60:02d}:{secs % 60:02d} {self.codec}".rstrip())
            if self.level:
                parts.append(self.level)
        if self.phone.muted:
            parts.append("MUTED")
        parts.append(f"vol {self.phone.volume:.0%}")
        line = " | ".join(parts)
        if self.tty:
            self.out.write(f"\r\x1b[K{line} | {KEYS_HELP}")
            self.out.flush()
        elif line != self._last:
            self.out.write(line + "\n")
            self.out.flush()
        self._last = line

    def on_event(self, event: PhoneEvent) -> None:
        if isinstance(event, Registered):
            self.state = "registered"
        elif isinstance(event, RegistrationFailed):
            self.state = "not registered"
            self.note(f"dialerd phone: {event.message} (retrying in {event.retry_in:.1f} s)")
        elif isinstance(event, DeviceProblem):
            self.note(f"dialerd phone: {event.message} (retrying in {event.retry_in:.0f} s)")
        elif isinstance(event, DeviceReady):
            self.note(f"dialerd phone: audio on {event.capture!r} / {event.playback!r}")
        elif isinstance(event, MediaActive):
            self.call_since, self.codec = time.monotonic(), event.codec
        elif isinstance(event, Disconnected):
            self.call_since, self.level = None, ""
        elif isinstance(event, AudioStats):
            self.level = "hearing voice" if event.rx_peak_rms >= event.VOICE_RMS else "silence"
        self.render()


@contextlib.contextmanager
def cbreak(stream: TextIO) -> Iterator[bool]:
    """Single-key input on a terminal; yields False (no keys) when not a terminal."""
    if not stream.isatty():
        yield False
        return
    import termios
    import tty

    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def run_phone(config: PhoneConfig, remember: bool) -> int:
    """Run until q, Ctrl-C or SIGTERM; 0 on a normal quit, 1 if the phone cannot start."""
    phone = Softphone(config)
    events = phone.subscribe()
    status = StatusLine(phone, sys.stdout)
    quit_now = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, quit_now.set)
    try:
        await phone.start()
    except PhoneError as exc:
        click.echo(f"dialerd phone: {exc}", err=True)
        return 1

    async def on_key(key: str) -> None:
        with contextlib.suppress(PhoneError):
            if key == "q":
                quit_now.set()
            elif key == "m":
                await phone.mute(not phone.muted)
            elif key in "+=":
                await phone.set_volume(min(4.0, round(phone.volume + 0.1, 1)))
            elif key == "-":
                await phone.set_volume(max(0.0, round(phone.volume - 0.1, 1)))
            elif key == "h" and phone.in_call:
                await phone.hangup()
            elif key in "0123456789*#" and phone.in_call:
                await phone.dtmf(key)
        status.render()

    async def show_events() -> None:
        async for event in events:
            status.on_event(event)
            if remember and isinstance(event, DeviceReady):
                DevicePrefs(event.capture, event.playback).save(prefs_path())

    async def tick() -> None:
        while True:
            await asyncio.sleep(1)
            status.render()

    shown = loop.create_task(show_events())
    ticking = loop.create_task(tick())
    with cbreak(sys.stdin) as keys:
        if keys:
            loop.add_reader(sys.stdin.fileno(), lambda: loop.create_task(on_key(sys.stdin.read(1))))
        status.render()
        try:
            await quit_now.wait()
        finally:
            if keys:
                loop.remove_reader(sys.stdin.fileno())
            shown.cancel()
            ticking.cancel()
            await phone.stop()
    if status.tty:
        sys.stdout.write("\n")
    return 0


@click.command("phone")
@click.option("--server", help="Asterisk SIP address, host[:port] (port 5060 if omitted).")
@click.option("--user", help="SIP user = the agent's extension, e.g. 1001.")
@click.option(
    "--password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File holding the SIP password (else $DIALERD_PHONE_PASSWORD).",
)
@click.option("--device", help="Headset for both capture and playback: index or name part.")
@click.option("--capture", help="Capture device (overrides --device).")
@click.option("--playback", help="Playback device (overrides --device).")
@click.option("--null-audio", is_flag=True, help="No sound device (servers, tests).")
@click.option("--list-devices", "list_only", is_flag=True, help="List audio devices and exit.")
@click.option("--bind", help="Local address for SIP (default: all).")
@click.option("--rate", default=16000, show_default=True, help="Audio clock rate in Hz.")
@click.option("--verbose", is_flag=True, help="pjsua2's own log on stderr.")
def phone(
    server: str | None,
    user: str | None,
    password_file: Path | None,
    device: str | None,
    capture: str | None,
    playback: str | None,
    null_audio: bool,
    list_only: bool,
    bind: str | None,
    rate: int,
    verbose: bool,
) -> None:
    """The agent's softphone: registers to Asterisk and auto-answers the dialer's leg.

    The chosen headset is remembered in ~/.config/dialerd/phone.yaml.
    """
    if list_only:
        print_devices(sys.stdout)
        return
    if not server or not user:
        raise click.UsageError("--server and --user are required (or --list-devices)")
    try:
        parse_server(server)
    except PhoneError as exc:
        raise click.BadParameter(str(exc), param_hint="--server") from None
    prefs = DevicePrefs.load(prefs_path())
    chosen = any(v is not None for v in (device, capture, playback))
    config = PhoneConfig(
        server=server,
        user=user,
        password=read_password(password_file),
        null_audio=null_audio,
        capture=capture or device or (None if chosen else prefs.capture),
        playback=playback or device or (None if chosen else prefs.playback),
        bind=bind,
        clock_rate=rate,
        log_level=4 if verbose else 0,
    )
    try:
        code = asyncio.run(run_phone(config, remember=chosen and not null_audio))
    except PhoneError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)
