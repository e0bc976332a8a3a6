"""Inbound calls on the real sandbox Asterisk (R-LOG-1..6), end to end.

A carrier call is simulated the way the notes describe: AMI Originate of
``Local/<dialed>@dialerd-inbound`` with the caller's CallerID; the ``;1`` half plays audio
(the caller talking). Employees are sipp peers on static contacts (installed into the
running sandbox as extra pjsip config): ``answer`` peers answer at once and echo RTP,
``ignore`` peers ring until cancelled. dialerd's real pieces run in the test: the FastAGI
server with the inbound handlers, the AMI client feeding the call-log service, the
recorder with the real billing gate, a real SMTP server (aiosmtpd) and the real MQTT bus.
"""

from __future__ import annotations

import asyncio
import csv
import email
import io
import json
import math
import re
import shutil
import struct
import subprocess
import sys
import time
import uuid
import wave
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller

from dialerd.agi.server import AGIServer
from dialerd.ami import AMIClient
from dialerd.ami.actions import caller_id, originate
from dialerd.ami.codec import Action, Event
from dialerd.billing.rules import AccountKind, Plan, UserType
from dialerd.billing.service import BillingGate, BillingService
from dialerd.bus.mqtt import Bus, MqttSettings
from dialerd.calllog.service import CallLogService
from dialerd.config.inbound import InboundConfig, load_inbound
from dialerd.inbound.lookup import normalise_caller
from dialerd.inbound.wiring import build_inbound
from dialerd.mail import MailConfig, Mailer
from dialerd.store.billing import BillingStore
from dialerd.store.calllog import CallFilter, CallLogStore, CallRow
from dialerd.store.db import open_db
from dialerd.store.models import CallStatus, ClientType, Direction
from tests.conftest import Broker, Sandbox

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.sip]
REPO = Path(__file__).resolve().parents[2]

# Employees: extension -> (user id, behaviour of its sipp peer).
PEERS = {
    "2001": ("alice", "answer"),
    "2002": ("bob", "ignore"),
    "2003": ("carol", "ignore"),
    "2004": ("dave", "answer"),
}
TOO_LONG_SECONDS = 4.0
INBOUND_YAML = """\
default_region: NL
employees:
  alice: {name: Alice, extension: "2001", endpoint: PJSIP/2001}
  bob:   {name: Bob, extension: "2002", endpoint: PJSIP/2002}
  carol: {name: Carol, extension: "2003", endpoint: PJSIP/2003}
  dave:  {name: Dave, extension: "2004", endpoint: PJSIP/2004}
groups:
  backup: ["2004"]
routes:
  "+31850000001": {strategy: ring_one, members: ["2001"], step_timeout: 5}
  "+31850000002": {strategy: hunt, members: ["2002", "2003", "2001"], step_timeout: 2}
  "+31850000003": {strategy: ring_all, members: ["2002", "2004"], step_timeout: 5}
  "+31850000004":
    strategy: hunt
    members: ["2002", "2003"]
    step_timeout: 2
    fallback: {kind: group, target: backup}
  "+31850000005":
    strategy: ring_one
    members: ["2002"]
    step_timeout: 2
    fallback: {kind: voicemail, target: "2002@dialerd"}
  "+31850000006":
    strategy: hunt
    members: ["2002", "2001"]
    step_timeout: 2
    linked_agent_first: true
too_long: {threshold_seconds: 4, reviewer_email: reviewer@example.org}
recordings: {directory: RECDIR, pbx_directory: PBXDIR}
"""

# An "ignore" employee: rings (180) until Asterisk cancels, then 200/487/ACK.
RING_NO_ANSWER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="ring-no-answer">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="([0-9]+)" search_in="hdr" header="CSeq:" assign_to="all,cseq"/>
    </action>
  </recv>
  <send>
    <![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

    ]]>
  </send>
  <recv request="CANCEL"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

    ]]>
  </send>
  <send>
    <![CDATA[
SIP/2.0 487 Request Terminated
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
CSeq: [$cseq] INVITE
Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
  <Reference variables="all"/>
</scenario>
"""


def peer_port(sandbox: Sandbox, extension: str) -> int:
    return sandbox.sip_port + 40 + int(extension) - 2000


def peers_conf(sandbox: Sandbox) -> str:
    out = [
        "; calllog tests: employees as sipp peers on static contacts\n"
        "[calllog-peer](!)\ntype = endpoint\ncontext = dialerd-from-agent\ndisallow = all\n"
        "allow = ulaw\ndirect_media = no\nrtp_symmetric = yes\n"
        "[calllog-aor](!)\ntype = aor\nmax_contacts = 1\n"
    ]
    for ext in PEERS:
        out.append(
            f"[{ext}](calllog-peer)\naors = {ext}\n"
            f"[{ext}](calllog-aor)\ncontact = sip:{ext}@127.0.0.1:{peer_port(sandbox, ext)}\n"
        )
    return "".join(out)


def grant_mixmonitor(sandbox: Sandbox) -> None:
    """The AMI action MixMonitor needs the ``system`` write privilege (``manager show
    command MixMonitor``: "system,all"); asterisk/conf/manager_dialerd.conf grants only
    originate,call,reporting so far. Until it does, add it to this running instance."""
    conf = sandbox.spool_dir.parent / "etc" / "manager_dialerd.conf"
    text = conf.read_text()
    line = next(x for x in text.splitlines() if x.startswith("write ="))
    if "system" not in line:
        conf.write_text(text.replace(line, line + ",system"))
        sandbox.cli("manager reload")


@pytest.fixture(scope="module")
def peers(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The sipp employees, and their endpoints installed into the running sandbox."""
    if shutil.which("sipp") is None:
        pytest.fail("sipp is not installed (apt-get install sip-tester)")
    work = tmp_path_factory.mktemp("peers")
    scenario = work / "ring-no-answer.xml"
    scenario.write_text(RING_NO_ANSWER)
    extra = sandbox.spool_dir.parent / "etc" / "extra" / "pjsip_calllog_peers.conf"
    extra.write_text(peers_conf(sandbox))
    sandbox.cli("module reload res_pjsip.so")
    grant_mixmonitor(sandbox)
    procs = []
    for ext, (_, behaviour) in PEERS.items():
        port = peer_port(sandbox, ext)
        media = sandbox.sip_port + 100 + 10 * (int(ext) - 2000)  # sipp takes media and +2
        mode = ["-sn", "uas", "-rtp_echo"] if behaviour == "answer" else ["-sf", str(scenario)]
        procs.append(
            subprocess.Popen(
                [
                    "sipp",
                    *mode,
                    "-i",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-mp",
                    str(media),
                    "-nostdin",
                    "-trace_err",
                    "-error_file",
                    str(work / f"{ext}.err"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=work,
            )
        )
    time.sleep(0.3)
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        extra.unlink(missing_ok=True)
        sandbox.cli("module reload res_pjsip.so")


@dataclass
class Inbox:
    messages: list[tuple[list[str], Message]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else content.encode()
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(raw)))
        return "250 OK"


@dataclass
class World:
    sandbox: Sandbox
    store: CallLogStore
    billing: BillingService
    config: InboundConfig
    service: CallLogService
    ami: AMIClient
    inbox: Inbox
    mqtt_messages: list[dict[str, Any]]
    recordings: Path
    done: defaultdict[str, asyncio.Event]
    db: Path
    agi: AGIServer
    outbound: set[str] = field(default_factory=set)
    made: dict[str, str] = field(default_factory=dict)  # linkedid -> caller number
    events: defaultdict[str, list[Event]] = field(default_factory=lambda: defaultdict(list))

    async def call(
        self,
        dialed: str,
        number: str,
        name: str | None = None,
        *,
        talk: str = "hello",
        wait_for_log: bool = True,
    ) -> str:
        """One carrier call; returns its linkedid once the call log has it."""
        call_id = "in" + uuid.uuid4().hex[:12]
        action = Action(
            "Originate",
            (
                ("Channel", f"Local/{dialed}@dialerd-inbound"),
                ("Application", "Playback"),
                ("Data", talk),
                ("Async", "true"),
                ("Timeout", "30000"),
                ("CallerID", caller_id(name, number)),
                ("ChannelId", call_id + "-a"),
                ("OtherChannelId", call_id + "-b"),
            ),
        )
        await self.ami.send_action(action)
        linkedid = call_id + "-a"
        self.made[linkedid] = number
        if wait_for_log:
            await self.logged(linkedid)
        return linkedid

    async def logged(self, linkedid: str) -> CallRow:
        """The call's log row, once the service finished with it (recording filed,
        notices sent)."""
        async with asyncio.timeout(45):
            await self.done[linkedid].wait()
        (row,) = [r for r in await self.store.query_calls(CallFilter()) if r.uniqueid == linkedid]
        return row


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(
    sandbox: Sandbox, peers: None, mqtt_broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    work = tmp_path_factory.mktemp("inbound")
    root = sandbox.spool_dir.parents[3]
    recordings = sandbox.spool_dir / "monitor" / f"calllog-test-{uuid.uuid4().hex[:6]}"
    conf_dir = work / "conf"
    conf_dir.mkdir()
    pbx_dir = Path("/") / recordings.relative_to(root)
    (conf_dir / "inbound.yaml").write_text(
        INBOUND_YAML.replace("RECDIR", json.dumps(str(recordings))).replace(
            "PBXDIR", json.dumps(str(pbx_dir))
        )
    )

    db = work / "dialerd.db"
    store = await CallLogStore.open(db)
    billing_conn = await open_db(db)
    billing = BillingService(BillingStore(billing_conn))
    now = datetime.now(UTC)
    await billing.add_account("cc", AccountKind.CALL_CENTRE, now)
    await billing.add_credit("cc", 100_000, "test credit", now)
    for user, recording in (("alice", True), ("dave", True), ("bob", False)):
        await billing.put_user(user, "cc", UserType.INSIDE_SALES, None)
        await billing.subscribe(user, Plan.MONTH, now, recording=recording)

    inbox = Inbox()
    smtp_port = sandbox.sip_port + 30
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    prefix = f"calllogtest{uuid.uuid4().hex[:6]}"
    bus = Bus(MqttSettings(host=mqtt_broker.host, port=mqtt_broker.port, prefix=prefix,
                           client_id=f"{prefix}-dialerd"))  # fmt: skip
    bus_task = asyncio.create_task(bus.run())
    mqtt_messages: list[dict[str, Any]] = []
    subscribed = asyncio.Event()

    async def listen() -> None:
        async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port,
                                  identifier=f"{prefix}-reviewer") as client:  # fmt: skip
            await client.subscribe(f"{prefix}/notifications/#", qos=1)
            subscribed.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                mqtt_messages.append({"topic": str(message.topic),
                                      **json.loads(message.payload)})  # fmt: skip

    listener = asyncio.create_task(listen())
    async with asyncio.timeout(10):
        await subscribed.wait()
        await bus.connected.wait()

    ami = AMIClient(sandbox.ami_host, sandbox.ami_port, sandbox.ami_user, sandbox.ami_secret)
    agi = AGIServer(port=sandbox.agi_port, timeout=10)
    service = await build_inbound(
        conf_dir, store, ami, agi, bus=bus, mailer=Mailer(MailConfig("127.0.0.1", smtp_port)),
        gate=BillingGate(billing),
    )  # fmt: skip
    done: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
    service.on_logged = lambda entry, _: done[entry.linkedid].set()
    follower = asyncio.create_task(service.follow(ami))
    raw = ami.subscribe()
    events: defaultdict[str, list[Event]] = defaultdict(list)

    async def keep_events() -> None:
        async for item in raw:
            if isinstance(item, Event) and item.get("Linkedid"):
                events[item.get("Linkedid") or ""].append(item)

    keeper = asyncio.create_task(keep_events())
    async with agi:
        ami.start()
        async with asyncio.timeout(10):
            await ami.wait_connected()
        try:
            yield World(sandbox, store, billing, load_inbound(conf_dir), service, ami, inbox,
                        mqtt_messages, recordings, done, db, agi, events=events)  # fmt: skip
        finally:
            await ami.close()
            for task in (follower, keeper, listener, bus_task):
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            smtp.stop()
            await store.close()
            await billing_conn.close()
            shutil.rmtree(recordings, ignore_errors=True)


# ------------------------------------------------------------------------------ lookup


async def test_known_caller_gets_name_and_type(world: World) -> None:
    """R-LOG-4: a known number is looked up; its name and client type go on the channel
    and into the call log; the call is answered by the ring_one employee."""
    contact = await world.store.add_contact("Jansen BV", ClientType.VIP, ["+31201110001"])
    linkedid = await world.call("+31850000001", "0201110001", "whatever they send")
    row = await world.logged(linkedid)
    assert row.contact_id == contact.id
    assert row.client_name == "Jansen BV" and row.client_type == "vip"
    assert row.number == "+31201110001"
    assert row.direction is Direction.IN and row.status is CallStatus.ANSWERED
    assert (row.extension, row.agent) == ("2001", "alice")
    assert row.dialed == "+31850000001"
    # What the dialplan saw: the channel renamed to the client, the type set (UserEvent
    # DialerInbound reads ${DIALERD_CLIENT_TYPE}), and the employee's phone shown the name.
    (marker,) = [e for e in world.events[linkedid] if e.get("UserEvent") == "DialerInbound"]
    assert (marker.get("CallerIDName"), marker.get("ClientType")) == ("Jansen BV", "vip")
    assert marker.get("CallerIDNum") == "0201110001"
    dial = next(e for e in world.events[linkedid] if e.name == "DialBegin" and e.get("Channel"))
    assert dial.get("DestConnectedLineName") == "Jansen BV"


async def test_unknown_callers_registered_once_under_concurrency(world: World) -> None:
    """R-LOG-4: an unknown number becomes a new client exactly once, even when five
    calls from it arrive at the same moment (no route: they end at once)."""
    number = "+31612345678"
    assert await world.store.lookup_number(number) is None
    calls = await asyncio.gather(
        *(world.call("+31850000009", "0612345678", "New Caller", wait_for_log=False)
          for _ in range(5))
    )  # fmt: skip
    rows = [await world.logged(linkedid) for linkedid in calls]
    contact = await world.store.lookup_number(number)
    assert contact is not None and contact.name == "New Caller"
    assert contact.client_type is ClientType.PROSPECT
    assert {r.contact_id for r in rows} == {contact.id}
    assert all(r.status is CallStatus.MISSED for r in rows)
    async with world.store._db.execute(
        "SELECT COUNT(*) FROM contact_numbers WHERE number = ?", (number,)
    ) as cur:
        assert (await cur.fetchone())[0] == 1  # type: ignore[index]


async def test_hostile_caller_id_is_inert(world: World) -> None:
    """Quotes, a newline, 2 KB of junk and UTF-8 in the caller ID: the call still rings
    and is logged, and nothing of it is interpreted by SQL or the dialplan."""
    junk = 'Robert\'); DROP TABLE contacts;-- "${SHELL}" ,|&; \u00e9\u00e8\u4e2d' + "x" * 2048
    linkedid = await world.call("+31850000001", "+31 20 111 0002", junk)
    row = await world.logged(linkedid)
    assert row.status is CallStatus.ANSWERED
    contact = await world.store.lookup_number("+31201110002")
    assert contact is not None
    assert contact.name.startswith("Robert'); DROP TABLE contacts;--")
    assert len(contact.name.encode()) <= 80 and "\n" not in contact.name
    assert await world.store.lookup_number("+31201110001") is not None  # table intact


async def test_call_still_handled_when_dialerd_does_not_answer(world: World) -> None:
    """Fail open: with the FastAGI handlers gone the dialplan's defaults apply (no route,
    hangup fallback), the caller is not left hanging, and the call is still logged."""
    saved = dict(world.agi.routes)
    world.agi.routes.clear()
    try:
        row = await world.logged(await world.call("+31850000001", "0201110040", "Nobody"))
    finally:
        world.agi.routes.update(saved)
    assert (row.status, row.fallback, row.contact_id) == (CallStatus.MISSED, "hangup", None)
    assert row.number == "0201110040"  # as presented: nobody normalised it
    assert await world.store.lookup_number("+31201110040") is None


# ------------------------------------------------------------------------------ routing


@pytest.mark.parametrize(
    ("dialed", "extension", "status", "fallback"),
    [
        ("+31850000002", "2001", CallStatus.ANSWERED, None),  # hunt: bob, carol ignore
        ("+31850000003", "2004", CallStatus.ANSWERED, None),  # ring all: dave answers
        ("+31850000004", "2004", CallStatus.ANSWERED, None),  # hunt, then group fallback
        ("+31850000005", "2002", CallStatus.MISSED, "voicemail"),  # ring one, voicemail
    ],
    ids=["hunt", "ring-all", "group-fallback", "voicemail-fallback"],
)
async def test_routing_scenarios(
    world: World, dialed: str, extension: str, status: CallStatus, fallback: str | None
) -> None:
    """R-LOG-5: each scenario with answering and ignoring employees."""
    linkedid = await world.call(dialed, f"0201119{dialed[-3:]}", "Router Test")
    row = await world.logged(linkedid)
    assert (row.extension, row.status, row.fallback) == (extension, status, fallback)


async def test_known_client_rings_linked_agent_first(world: World) -> None:
    """R-LOG-5: a client linked to dave rings dave first, although the scenario lists
    bob and alice."""
    contact = await world.store.add_contact("Dave's client", ClientType.CUSTOMER, ["+31201110006"])
    await world.store.set_client_agent(contact.id, "dave")
    row = await world.logged(await world.call("+31850000006", "0201110006"))
    assert (row.extension, row.agent, row.status) == ("2004", "dave", CallStatus.ANSWERED)


# ------------------------------------------------------------------------------ recordings


def wav_stats(path: Path) -> tuple[float, float]:
    """(seconds, RMS of 16-bit samples) of a WAV file."""
    with wave.open(str(path), "rb") as w:
        frames = w.readframes(w.getnframes())
        seconds = w.getnframes() / w.getframerate()
        width = w.getsampwidth()
    assert width == 2
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    rms = math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))
    return seconds, rms


async def test_recorded_call_has_real_audio_of_its_length(world: World) -> None:
    """R-LOG-6: a call to an employee whose subscription includes recording is recorded:
    the file is where the name says, its length matches the talk time, it is not silent,
    and its metadata (size, sha256, agent) is in the store."""
    talk = "hello&silence/1&hello&silence/1&hello&silence/1&hello"
    linkedid = await world.call("+31850000001", "0201110010", "Recorded", talk=talk)
    row = await world.logged(linkedid)
    assert row.recording_id is not None, row.recording_error
    recording = await world.store.get_recording(row.recording_id)
    assert recording is not None and recording.agent == "alice"
    path = world.recordings / recording.path
    day = datetime.fromtimestamp(recording.started_at, UTC).strftime("%Y/%m/%d")
    assert recording.path.startswith(day + "/") and linkedid in recording.path
    seconds, rms = wav_stats(path)
    assert row.duration_seconds is not None
    assert abs(seconds - row.duration_seconds) < 1.0, (seconds, row.duration_seconds)
    assert seconds > 4.0 and rms > 100, (seconds, rms)
    assert recording.duration_seconds == pytest.approx(seconds, abs=0.01)
    assert recording.size_bytes == path.stat().st_size
    sox = await asyncio.create_subprocess_exec(
        "sox", str(path), "-n", "stat", stderr=asyncio.subprocess.PIPE
    )
    _, stat = await sox.communicate()
    rms_amplitude = float(stat.decode().split("RMS     amplitude:")[1].split()[0])
    assert rms_amplitude > 0.003, stat.decode()


async def test_recording_refused_without_option_and_after_cancellation(world: World) -> None:
    """R-SUB-4 via the billing gate: bob has no recording option; once dave's recording
    option is cancelled mid-term his next call is not recorded either. Both calls say why."""
    row = await world.logged(await world.call("+31850000003", "0201110020"))
    assert row.extension == "2004" and row.recording_id is not None
    (sub,) = await world.billing.subscriptions(user_id="dave")
    await world.billing.cancel_recording(sub.id, datetime.now(UTC))
    row = await world.logged(await world.call("+31850000003", "0201110021"))
    assert row.recording_id is None
    assert row.recording_error == "not recorded: recording is not part of this subscription"


# ------------------------------------------------------------------------------ too long


async def test_too_long_call_notifies_reviewer_by_mail_and_mqtt(world: World) -> None:
    """R-LOG-3: a call talking longer than the threshold is flagged; the reviewer gets an
    e-mail (real SMTP server) and an MQTT event on <prefix>/notifications/too-long."""
    talk = "hello&silence/2&hello&silence/2&hello"
    row = await world.logged(await world.call("+31850000001", "0201110030", talk=talk))
    assert row.duration_seconds is not None and row.duration_seconds > TOO_LONG_SECONDS
    assert row.too_long
    for _ in range(100):  # both are sent before the call counts as done; allow delivery
        if any(m.get("call_id") == row.id for m in world.mqtt_messages):
            break
        await asyncio.sleep(0.1)
    (event,) = [m for m in world.mqtt_messages if m.get("call_id") == row.id]
    assert event["topic"].endswith("/notifications/too-long")
    assert event["extension"] == "2001" and event["threshold_seconds"] == TOO_LONG_SECONDS
    mine = re.compile(rf"^call_id: {row.id}\r?$", re.MULTILINE)
    mails = [
        (to, m)
        for to, m in world.inbox.messages
        if mine.search(m.get_payload(decode=True).decode())
    ]
    assert len(mails) == 1, [m.as_string() for _, m in world.inbox.messages]
    ((rcpts, message),) = mails
    assert rcpts == ["reviewer@example.org"]
    assert message["Subject"].startswith("Call too long:")
    assert "extension 2001 (alice)" in message["Subject"]
    short = await world.logged(await world.call("+31850000001", "0201110031"))
    assert not short.too_long


# ------------------------------------------------------------------------------ outbound


@pytest.mark.parametrize(
    ("number", "status"),
    [("+31201010001", CallStatus.ANSWERED), ("+31203010002", CallStatus.MISSED)],
    ids=["human-answers", "busy"],
)
async def test_outbound_calls_are_logged(world: World, number: str, status: CallStatus) -> None:
    """R-LOG-1 outbound: a dialer call (DIALERD_ATTEMPT set by the Originate) to the
    simulated world. A human answers (no agent is free here, so the customer hears the
    abandon message); a busy number is never answered."""
    call_id = "out" + uuid.uuid4().hex[:12]
    await world.ami.send_action(
        originate(call_id, f"Local/{number}@world", attempt="1", lead="41", ring_timeout=20)
    )
    row = await world.logged(call_id + "-a")
    assert (row.direction, row.status, row.number) == (Direction.OUT, status, number)
    assert row.contact_id is None and row.recording_id is None
    if status is CallStatus.ANSWERED:
        assert row.duration_seconds is not None and row.duration_seconds > 1.0
    world.outbound.add(call_id + "-a")


# ------------------------------------------------------------------------------ the log


async def dialerd_cli(*args: str) -> str:
    """Run the real ``dialerd`` command line; its stdout."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialerd", *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_call_log_csv_matches_the_calls_made(world: World) -> None:
    """R-LOG-1/2: ``dialerd calls list --csv`` lists exactly the calls this module made,
    each with the caller's number in E.164, and its filters select the right ones."""
    db = str(world.db)
    exported = await dialerd_cli("calls", "list", "--db", db, "--csv", "-", "--tz", "UTC")
    rows = list(csv.DictReader(io.StringIO(exported)))
    by_id = {r["uniqueid"]: r for r in rows}
    assert set(by_id) == set(world.made) | world.outbound
    stored = {r.uniqueid: r for r in await world.store.query_calls(CallFilter())}
    for linkedid, number in world.made.items():
        row, log = by_id[linkedid], stored[linkedid]
        # E.164 for every caller dialerd identified; as presented when it could not
        assert row["number"] == (normalise_caller(number, "NL") if log.contact_id else number)
        assert row["direction"] == "in"
        assert (row["status"], row["extension"]) == (log.status.value, log.extension or "")
        started = datetime.fromtimestamp(log.started_at, UTC)
        assert (row["date"], row["time"]) == (started.date().isoformat(),
                                              started.time().isoformat("seconds"))  # fmt: skip
        assert row["too_long"] == ("yes" if log.too_long else "no")
    missed = await dialerd_cli("calls", "list", "--db", db, "--csv", "-", "--status", "missed")
    missed_ids = {r["uniqueid"] for r in csv.DictReader(io.StringIO(missed))}
    assert missed_ids == {u for u, r in stored.items() if r.status is CallStatus.MISSED}
    assert len(missed_ids) >= 6  # five concurrent unknown callers and the voicemail fallback
    longs = await dialerd_cli("calls", "list", "--db", db, "--csv", "-", "--too-long")
    assert {r["uniqueid"] for r in csv.DictReader(io.StringIO(longs))} == {
        u for u, r in stored.items() if r.too_long
    }
    today = datetime.now(UTC).date().isoformat()
    summary = await dialerd_cli("calls", "summary", "--db", db, "--day", today, "--tz", "UTC")
    assert "2001" in summary and "2004" in summary
