"""`dialerd phone` against the real sandbox Asterisk (issue 10, part 1: the agent's side).

Each test uses its own agent endpoint (1001..1050, password secret<N>) so a leftover
contact or conference of one test cannot satisfy another. Asterisk is driven through its
CLI (`channel originate ...`), exactly as the daemon's AMI Originate would: the nailed-up
leg is `PJSIP/<agent>` into context dialerd-agent, and the simulated customer is a world
number (B=1 human, RR=03 s ring) joined to the agent's conference.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dialerd.phone import (
    Answered,
    AudioStats,
    DeviceProblem,
    Disconnected,
    EventStream,
    Incoming,
    MediaActive,
    PhoneConfig,
    PhoneError,
    PhoneEvent,
    Registered,
    RegistrationFailed,
    Softphone,
)

if TYPE_CHECKING:
    from tests.conftest import Sandbox

pytestmark = [pytest.mark.pbx, pytest.mark.sip]

REPO = Path(__file__).resolve().parents[2]
HUMAN_CUSTOMER = "123451030001"  # ...B=1 human, RR=03 s ring, serial 0001


def phone_config(sandbox: Sandbox, agent: int, **overrides: object) -> PhoneConfig:
    values: dict[str, object] = {
        "server": f"127.0.0.1:{sandbox.sip_port}",
        "user": str(agent),
        "password": f"secret{agent}",
        "null_audio": True,
        "bind": "127.0.0.1",
        "register_timeout": 3.0,
        "backoff_first": 0.5,
        "backoff_cap": 2.0,
        "stats_interval": 0.5,
    }
    values.update(overrides)
    return PhoneConfig(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(config: PhoneConfig) -> AsyncIterator[tuple[Softphone, EventStream]]:
    phone = Softphone(config)
    events = phone.subscribe()
    await phone.start()
    try:
        yield phone, events
    finally:
        await phone.stop()


def nail_up(sandbox: Sandbox, agent: int) -> None:
    """What the daemon does at agent login: call the phone into its own conference."""
    sandbox.cli(f"channel originate PJSIP/{agent} extension {agent}@dialerd-agent")


def connect_customer(sandbox: Sandbox, agent: int, number: str = HUMAN_CUSTOMER) -> None:
    """A simulated customer answers and is put into the agent's conference."""
    sandbox.cli(
        f"channel originate Local/{number}@world application "
        f"ConfBridge dialerd-agent-{agent},dialerd_bridge,dialerd_customer"
    )


async def collect(
    events: EventStream, kinds: set[type[PhoneEvent]], within: float
) -> dict[type[PhoneEvent], Any]:
    """The first event of each kind, in whatever order they come (media may precede ACK)."""
    seen: dict[type[PhoneEvent], Any] = {}
    async with asyncio.timeout(within):
        async for event in events:
            if type(event) in kinds and type(event) not in seen:
                seen[type(event)] = event
                if len(seen) == len(kinds):
                    return seen
    raise AssertionError("event stream ended")


@pytest.fixture(autouse=True)
def _hang_up_everything(sandbox: Sandbox) -> object:
    yield
    sandbox.cli("channel request hangup all")


async def test_registers_is_nailed_up_and_hears_the_customer(sandbox: Sandbox) -> None:
    """Registered; the dialer's leg is auto-answered into ConfBridge dialerd-agent-1001;
    a human world customer's "hello" arrives as RTP and as non-silent frames."""
    async with running(phone_config(sandbox, 1001)) as (_, events):
        reg = await events.wait_for(Registered, 10)
        assert reg.user == "1001"
        assert "1001/sip:1001@127.0.0.1" in sandbox.cli("pjsip show contacts")

        nail_up(sandbox, 1001)
        seen = await collect(events, {Incoming, Answered, MediaActive}, within=10)
        assert seen[Incoming].auto_answer
        media = seen[MediaActive]
        assert media.codec in {"PCMU", "PCMA", "GSM"}
        bridges = sandbox.cli("confbridge list dialerd-agent-1001")
        assert "PJSIP/1001-" in bridges

        connect_customer(sandbox, 1001)
        # ring 3 s + silence 1 s + "hello" (~0.6 s): wait until the greeting was heard.
        heard: list[AudioStats] = []
        async with asyncio.timeout(20):
            while not heard or heard[-1].voice_frames < 10:
                heard.append(await events.wait_for(AudioStats, 20))
        stats = heard[-1]
        peaks = max(s.rx_peak_rms for s in heard)
        assert stats.rtp_rx_packets > 150, stats
        assert stats.rtp_tx_packets > 150, stats  # no VAD: the phone keeps sending
        assert stats.rtp_rx_lost == 0
        assert stats.audio_errors == 0
        print(
            f"\nheard: {stats.rtp_rx_packets} RTP in / {stats.rtp_tx_packets} out, "
            f"{stats.rx_frames} frames, {stats.voice_frames} voice frames, "
            f"peak frame RMS {peaks}"
        )
        assert peaks > 1000  # "hello" is loud; line silence is RMS 0


def one_line(message: str) -> None:
    assert message
    assert "\n" not in message
    assert "Traceback" not in message


async def test_wrong_password_is_one_line_and_retried(sandbox: Sandbox) -> None:
    """Asterisk answers a bad password with a second 401: one line naming the cause,
    then another attempt after the backoff (and the same answer again)."""
    config = phone_config(sandbox, 1002, password="not-the-secret")
    async with running(config) as (phone, events):
        first = await events.wait_for(RegistrationFailed, 10)
        one_line(first.message)
        assert first.code in (401, 403)
        assert "rejected the credentials for user 1002" in first.message
        assert first.retry_in > 0
        second = await events.wait_for(RegistrationFailed, first.retry_in + 10)
        assert second.code == first.code
        assert not phone.registered


async def test_unreachable_server_is_one_line_and_retried(sandbox: Sandbox) -> None:
    """Nothing answers on the port: the watchdog reports 'unreachable' after
    register_timeout (not pjsip's 32 s), and keeps retrying with growing delays."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
        hole.bind(("127.0.0.1", 0))  # a UDP port that swallows everything
        port = hole.getsockname()[1]
        config = phone_config(sandbox, 1003, server=f"127.0.0.1:{port}", register_timeout=1.5)
        async with running(config) as (phone, events):
            failures = [await events.wait_for(RegistrationFailed, 10) for _ in range(3)]
            assert not phone.registered
    for failure in failures:
        one_line(failure.message)
        assert failure.code == 408
        assert f"127.0.0.1:{port} is unreachable" in failure.message
    assert failures[2].retry_in > failures[0].retry_in  # backoff grows


class UdpRelay(asyncio.DatagramProtocol):
    """A SIP path that can be cut: phone <-> relay <-> Asterisk, like a flaky network."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.open = False
        self.front: asyncio.DatagramTransport | None = None
        self.back: asyncio.DatagramTransport | None = None
        self.phone: tuple[str, int] | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.open or self.back is None:
            return
        self.phone = addr
        self.back.sendto(data, self.upstream)

    def from_upstream(self, data: bytes) -> None:
        if self.open and self.front is not None and self.phone is not None:
            self.front.sendto(data, self.phone)


class _Back(asyncio.DatagramProtocol):
    def __init__(self, relay: UdpRelay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay.from_upstream(data)


@contextlib.asynccontextmanager
async def udp_relay(upstream_port: int) -> AsyncIterator[tuple[UdpRelay, int]]:
    loop = asyncio.get_running_loop()
    relay = UdpRelay(("127.0.0.1", upstream_port))
    front, _ = await loop.create_datagram_endpoint(lambda: relay, local_addr=("127.0.0.1", 0))
    back, _ = await loop.create_datagram_endpoint(lambda: _Back(relay), local_addr=("127.0.0.1", 0))
    relay.front, relay.back = front, back
    try:
        yield relay, front.get_extra_info("sockname")[1]
    finally:
        front.close()
        back.close()


async def test_registers_once_the_network_comes_back(sandbox: Sandbox) -> None:
    """Start with the path to Asterisk cut (failures, retries), then restore it: the phone
    registers by itself and is reachable for the nailed-up leg through the restored path."""
    async with udp_relay(sandbox.sip_port) as (relay, port):
        config = phone_config(sandbox, 1004, server=f"127.0.0.1:{port}", register_timeout=1.5)
        async with running(config) as (phone, events):
            failed = await events.wait_for(RegistrationFailed, 10)
            assert failed.code == 408
            relay.open = True
            await events.wait_for(Registered, failed.retry_in + 10)
            assert phone.registered
            nail_up(sandbox, 1004)
            await collect(events, {Answered, MediaActive}, within=10)


RFC4733_END = re.compile(r"Got  RTP RFC2833 from .* ts (\d+), .* event ([0-9a-f]{8}), end 1")


def asterisk_log(sandbox: Sandbox) -> Path:
    return sandbox.spool_dir.parent / "log" / "full"


def rtp_dtmf_ends(sandbox: Sandbox, since: int) -> list[str]:
    """Digits whose RFC 4733 end packet Asterisk's RTP debug logged after byte `since`.

    A digit's end packet is sent three times with the same RTP timestamp: count it once.
    """
    with asterisk_log(sandbox).open("rb") as log:
        log.seek(since)
        text = log.read().decode(errors="replace")
    by_ts: dict[str, str] = {}
    for line in text.splitlines():
        if match := RFC4733_END.search(line):
            by_ts.setdefault(match.group(1), "0123456789*#ABCD"[int(match.group(2), 16)])
    return list(by_ts.values())


class RawAmi:
    """Just enough AMI to watch Asterisk's side of the call (the real client is elsewhere)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def login(cls, sandbox: Sandbox) -> RawAmi:
        reader, writer = await asyncio.open_connection(sandbox.ami_host, sandbox.ami_port)
        await reader.readline()  # banner
        ami = cls(reader, writer)
        writer.write(
            f"Action: Login\r\nUsername: {sandbox.ami_user}\r\n"
            f"Secret: {sandbox.ami_secret}\r\nEvents: on\r\n\r\n".encode()
        )
        reply = await ami.message()
        assert reply.get("Response") == "Success", reply
        return ami

    async def message(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        while (line := (await self.reader.readline()).decode().rstrip("\r\n")) != "":
            key, _, value = line.partition(": ")
            fields.setdefault(key, value)
        return fields

    async def event(self, name: str, within: float, **match: str) -> dict[str, str]:
        async with asyncio.timeout(within):
            while True:
                msg = await self.message()
                if msg.get("Event") == name and all(
                    msg.get(k, "").startswith(v) for k, v in match.items()
                ):
                    return msg

    def close(self) -> None:
        self.writer.close()


async def test_dtmf_mute_busy_and_hangup_on_the_nailed_up_leg(sandbox: Sandbox) -> None:
    """DTMF reaches Asterisk as RFC 4733 digits; mute keeps RTP flowing (Asterisk's
    rtp_timeout must not drop a quiet agent); a second INVITE is refused with 486 while the
    nailed-up leg stays; the agent's hangup ends the leg and leaves the conference."""
    ami = await RawAmi.login(sandbox)
    try:
        async with running(phone_config(sandbox, 1005)) as (phone, events):
            await events.wait_for(Registered, 10)
            nail_up(sandbox, 1005)
            await collect(events, {Answered, MediaActive}, within=10)

            # AMI's DTMF events are not in dialerd's read classes: watch Asterisk's RTP debug.
            sandbox.cli("rtp set debug on")
            since = asterisk_log(sandbox).stat().st_size
            await phone.dtmf("42#")
            async with asyncio.timeout(10):
                while True:
                    digits = rtp_dtmf_ends(sandbox, since)
                    if len(digits) >= 3:
                        break
                    await asyncio.sleep(0.2)
            sandbox.cli("rtp set debug off")
            assert digits == ["4", "2", "#"]

            await phone.mute()
            before = await events.wait_for(AudioStats, 5, lambda s: s.muted)
            after = await events.wait_for(AudioStats, 5)
            assert after.muted
            assert after.rtp_tx_packets > before.rtp_tx_packets  # still sending (silence)
            await phone.unmute()
            await phone.set_volume(0.5)
            assert (await events.wait_for(AudioStats, 5)).volume == 0.5

            nail_up(sandbox, 1005)  # a second leg while one is up: refused, first kept
            await ami.event("Hangup", 10, Channel="PJSIP/1005-", Cause="17")
            assert phone.in_call
            assert "PJSIP/1005-" in sandbox.cli("confbridge list dialerd-agent-1005")

            await phone.hangup()
            gone = await events.wait_for(Disconnected, 10)
            assert gone.call_id is not None
            assert not phone.in_call
            await ami.event("ConfbridgeLeave", 10, Conference="dialerd-agent-1005")
    finally:
        ami.close()


async def test_asterisk_ending_the_leg_is_reported(sandbox: Sandbox) -> None:
    """The PBX hangs up the nailed-up leg (logout, restart): a `disconnected` event."""
    async with running(phone_config(sandbox, 1006)) as (phone, events):
        await events.wait_for(Registered, 10)
        nail_up(sandbox, 1006)
        await collect(events, {Answered, MediaActive}, within=10)
        sandbox.cli("channel request hangup all")
        gone = await events.wait_for(Disconnected, 10)
        assert gone.code in (200, 487, 503) or gone.code > 0
        assert not phone.in_call


@contextlib.asynccontextmanager
async def cli_phone(
    tmp_path: Path, *args: str, password: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`dialerd phone ...` as the agent would run it (HOME isolated, stdin not a tty)."""
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "DIALERD_PHONE_PASSWORD": password,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialerd", "phone", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def read_until(proc: asyncio.subprocess.Process, needle: str, within: float) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(within):
        while True:
            line = (await proc.stdout.readline()).decode()
            assert line, f"dialerd phone exited; output so far: {lines}"
            lines.append(line.rstrip("\n"))
            if needle in line:
                return lines


async def quit_cleanly(proc: asyncio.subprocess.Process) -> str:
    """SIGTERM, as systemd or the console would: exit 0, no traceback, within seconds."""
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(15):
        _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
    return err.decode()


async def test_cli_answers_the_leg_and_quits_cleanly(sandbox: Sandbox, tmp_path: Path) -> None:
    """The command line: registers with --null-audio, shows the call on its status line."""
    server = f"127.0.0.1:{sandbox.sip_port}"
    args = ("--server", server, "--user", "1007", "--null-audio", "--bind", "127.0.0.1")
    async with cli_phone(tmp_path, *args, password="secret1007") as proc:
        await read_until(proc, "| registered |", 15)
        nail_up(sandbox, 1007)
        lines = await read_until(proc, "call 00:0", 15)
        assert "PCMU" in lines[-1] or "PCMA" in lines[-1]
        await quit_cleanly(proc)


async def test_cli_wrong_password_is_one_line(sandbox: Sandbox, tmp_path: Path) -> None:
    server = f"127.0.0.1:{sandbox.sip_port}"
    args = ("--server", server, "--user", "1008", "--null-audio", "--bind", "127.0.0.1")
    async with cli_phone(tmp_path, *args, password="wrong") as proc:
        lines = await read_until(proc, "rejected", 15)
        assert lines[-1] == (
            f"dialerd phone: sip server {server} rejected the credentials for user 1008 "
            "(401 Unauthorized): check the user name and password"
            f" (retrying in {lines[-1].rsplit('retrying in ', 1)[1]}"
        )
        await read_until(proc, "rejected", 15)  # and again: it retries
        await quit_cleanly(proc)


async def test_missing_headset_is_one_line_retried_and_the_phone_still_works(
    sandbox: Sandbox,
) -> None:
    """No device matches (this machine has no sound card at all): a one-line
    device_problem, retried, while registration and the nailed-up leg carry on."""
    config = phone_config(sandbox, 1011, null_audio=False, capture="Jabra", device_retry=0.5)
    async with running(config) as (phone, events):
        problem = (await collect(events, {DeviceProblem, Registered}, within=10))[DeviceProblem]
        one_line(problem.message)
        assert "capture device" in problem.message
        assert "--null-audio" in problem.message or "Jabra" in problem.message
        again = await events.wait_for(DeviceProblem, 10)
        assert again.message == problem.message
        nail_up(sandbox, 1011)
        await collect(events, {Answered, MediaActive}, within=10)
        assert phone.in_call


async def test_losing_the_network_after_registering_is_noticed_and_recovered(
    sandbox: Sandbox,
) -> None:
    """Registered, then the path is cut: the unanswered refresh (Asterisk's minimum
    expiry is 60 s, so ~55 s in) is reported within register_timeout, and once the path
    is back the phone registers again by itself. Slow by nature: about a minute."""
    async with udp_relay(sandbox.sip_port) as (relay, port):
        relay.open = True
        config = phone_config(sandbox, 1012, server=f"127.0.0.1:{port}", register_timeout=1.5)
        async with running(config) as (phone, events):
            registered = await events.wait_for(Registered, 10)
            relay.open = False
            lost = await events.wait_for(RegistrationFailed, registered.expires + 15)
            assert lost.code == 408
            one_line(lost.message)
            assert not phone.registered
            relay.open = True
            await events.wait_for(Registered, lost.retry_in + 10)
            assert phone.registered


async def test_a_stack_that_cannot_start_is_one_line_and_leaves_nothing_running() -> None:
    """A local address that is not ours: start() raises PhoneError (one line), the pjsua2
    thread is gone, and a second phone in the same process still starts and stops."""
    config = PhoneConfig(
        server="127.0.0.1:5060", user="1013", password="x", null_audio=True, bind="203.0.113.7"
    )
    phone = Softphone(config)
    with pytest.raises(PhoneError, match="cannot start the SIP stack") as err:
        await phone.start()
    one_line(str(err.value))
    await phone.stop()
    ok = Softphone(PhoneConfig(**{**config.__dict__, "bind": "127.0.0.1"}))
    await ok.start()
    await ok.stop()


async def test_without_auto_answer_the_call_rings_until_answered(sandbox: Sandbox) -> None:
    """auto_answer off: `incoming` says so, the leg waits, and answer() connects it."""
    async with running(phone_config(sandbox, 1014, auto_answer=False)) as (phone, events):
        await events.wait_for(Registered, 10)
        nail_up(sandbox, 1014)
        incoming = await events.wait_for(Incoming, 10)
        assert not incoming.auto_answer
        assert "PJSIP/1014-" not in sandbox.cli("confbridge list")
        await phone.answer()
        await collect(events, {Answered, MediaActive}, within=10)
        assert "PJSIP/1014-" in sandbox.cli("confbridge list dialerd-agent-1014")


async def test_a_second_softphone_in_one_process_is_refused_not_fatal() -> None:
    """pjsua2 allows one Endpoint per process, and its constructor would abort the process
    on a second: the second Softphone gets a one-line PhoneError, the first runs on."""
    config = PhoneConfig(
        server="127.0.0.1:5060", user="1016", password="x", null_audio=True, bind="127.0.0.1"
    )
    first = Softphone(config)
    await first.start()
    try:
        with pytest.raises(PhoneError, match="another softphone is already running"):
            await Softphone(config).start()
        await first.mute()
    finally:
        await first.stop()
    again = Softphone(config)
    await again.start()
    await again.stop()


async def test_refusals_from_pjsua_are_one_line_phone_errors(sandbox: Sandbox) -> None:
    """An account pjsua itself refuses (a user with a space makes a bad URI) is a
    registration failure, retried like any other; commands without a call are PhoneErrors."""
    config = phone_config(sandbox, 1017, user="10 17")
    async with running(config) as (phone, events):
        failed = await events.wait_for(RegistrationFailed, 10)
        one_line(failed.message)
        assert failed.message.startswith(f"cannot register 10 17 at 127.0.0.1:{sandbox.sip_port}")
        await events.wait_for(RegistrationFailed, failed.retry_in + 5)  # retried
        for command in (phone.hangup, phone.answer, lambda: phone.dtmf("1")):
            with pytest.raises(PhoneError, match="no call"):
                await command()


async def test_network_loss_during_the_nailed_up_leg_keeps_the_call_and_reregisters(
    sandbox: Sandbox,
) -> None:
    """The realistic case: the agent sits in the nailed-up leg all shift when SIP is cut.
    The lost refresh is reported, the leg is kept (its RTP does not go through the cut
    path), and when the path is back the phone registers again on the same account.
    Slow by nature: ~55 s to the refresh plus pjsip's own 32 s REGISTER timeout."""
    async with udp_relay(sandbox.sip_port) as (relay, port):
        relay.open = True
        config = phone_config(sandbox, 1018, server=f"127.0.0.1:{port}", register_timeout=1.5)
        async with running(config) as (phone, events):
            registered = await events.wait_for(Registered, 10)
            nail_up(sandbox, 1018)
            await collect(events, {Answered, MediaActive}, within=10)
            relay.open = False
            lost = await events.wait_for(RegistrationFailed, registered.expires + 15)
            one_line(lost.message)
            assert phone.in_call
            relay.open = True
            await events.wait_for(Registered, 32 + 30)
            assert phone.in_call
            stats = await events.wait_for(AudioStats, 5)
            assert stats.rtp_rx_packets > 0
            assert "PJSIP/1018-" in sandbox.cli("confbridge list dialerd-agent-1018")


async def test_many_cli_phones_in_calls_all_exit_cleanly_on_sigterm(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Regression: tearing pjsua2 down while the media clock runs once corrupted the
    interpreter (1-3 of 8 phones per SIGTERM round spun forever at exit, or segfaulted)."""
    agents = range(1021, 1026)
    server = f"127.0.0.1:{sandbox.sip_port}"
    for _ in range(2):
        async with contextlib.AsyncExitStack() as stack:
            procs = [
                await stack.enter_async_context(
                    cli_phone(
                        tmp_path,
                        *("--server", server, "--user", str(agent), "--null-audio"),
                        *("--bind", "127.0.0.1"),
                        password=f"secret{agent}",
                    )
                )
                for agent in agents
            ]
            await asyncio.gather(*(read_until(p, "| registered |", 60) for p in procs))
            for agent in agents:
                nail_up(sandbox, agent)
            await asyncio.gather(*(read_until(p, "call 00:02", 60) for p in procs))
            await asyncio.gather(*(quit_cleanly(p) for p in procs))
