"""The recorder's refusals and failures end up on the call (R-LOG-6): never silently lost.
Real pieces: the SQLite store, the billing service, and an AMI client whose PBX is down."""

from __future__ import annotations

import socket
import wave
from datetime import UTC, datetime
from pathlib import Path

from dialerd.ami import AMIClient
from dialerd.billing.rules import AccountKind, Plan, UserType
from dialerd.billing.service import BillingGate, BillingService
from dialerd.calllog.fold import CallConnected
from dialerd.recorder.recorder import Recorder, file_facts, recording_name
from dialerd.store.billing import BillingStore
from dialerd.store.calllog import CallFilter, CallLogStore
from dialerd.store.db import open_db
from dialerd.store.models import CallEntry, CallStatus, Direction


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def recording_error(store: CallLogStore, call_id: int) -> str | None:
    (row,) = [r for r in await store.query_calls(CallFilter()) if r.id == call_id]
    return row.recording_error


async def test_refusals_and_failures_are_written_on_the_call(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    store = await CallLogStore.open(db)
    conn = await open_db(db)
    billing = BillingService(BillingStore(conn))
    now = datetime.now(UTC)
    await billing.add_account("cc", AccountKind.CALL_CENTRE, now)
    await billing.add_credit("cc", 100_000, "t", now)
    await billing.put_user("rec", "cc", UserType.INSIDE_SALES, None)
    await billing.subscribe("rec", Plan.MONTH, now, recording=True)
    await billing.put_user("norec", "cc", UserType.INSIDE_SALES, None)
    await billing.subscribe("norec", Plan.MONTH, now, recording=False)
    ami = AMIClient("127.0.0.1", closed_port(), "u", "s")  # never started: not connected
    recorder = Recorder(ami, store, BillingGate(billing), tmp_path / "recs")
    try:
        for n, (agent, expected) in enumerate([
            (None, "not recorded: no employee known for the call"),
            ("norec", "not recorded: recording is not part of this subscription"),
            ("ghost", "not recorded: no current subscription"),
            ("rec", "recording failed to start: AMI 127.0.0.1:"),
        ]):  # fmt: skip
            linkedid = f"call{n}-a"
            await recorder.on_connected(
                CallConnected(linkedid, 1000.0, Direction.IN, "PJSIP/x-1", "2001", agent)
            )
            call_id = await store.save_call(
                CallEntry(linkedid, Direction.IN, CallStatus.ANSWERED, "+31201234567", 1000.0)
            )
            assert await recorder.on_finished(linkedid, call_id) is None
            error = await recording_error(store, call_id)
            assert error is not None and error.startswith(expected), error
    finally:
        await store.close()
        await conn.close()


def test_recording_names_are_predictable_and_inert() -> None:
    name = recording_name(1_795_466_383.5, "in/../../etc;rm -rf-a", "al ice")
    assert str(name) == "2026/11/23/20261123T203943Z_in_.._.._etc_rm_-rf-a_al_ice.wav"
    assert ".." not in name.parts


def test_file_facts_reads_length_from_the_wav_header(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x01\x00" * 8000 * 3)
    facts = file_facts(path)
    assert facts.duration_seconds == 3.0 and facts.size_bytes == path.stat().st_size
    assert len(facts.sha256) == 64
