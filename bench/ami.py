"""AMI throughput: our codec vs panoramisk's parser, and the client end to end.

    python bench/ami.py [--json] [--no-pbx] [--calls 100] [--seconds 20]

1. parser: every frame of the recorded transcripts (tests/fixtures/ami/*.ami) concatenated
   and repeated to a few MB, fed in 64 KB chunks (what a socket read returns) to
   `AMIConnection` and to panoramisk 1.4's `AMIProtocol.data_received` side by side, in
   one run. Events/s = frames decoded per second with two headers read from each, as a
   consumer would (best of 5 runs each); `dialerd-all-headers` parses every header of
   every frame, the worst case for our lazily-parsed frames.
2. end-to-end (needs the sandbox, DIALERD_TEST_* ports): `--calls` concurrent world calls
   kept up for `--seconds` (a new one replaces each that ends), through `AMIClient`; the
   events it received are compared with an independent raw-socket tap on the same
   Asterisk (same user, same filters), which counts event frames on the wire. Both
   numbers must match: no event lost.

Prints a table; with --json one JSON object per line with keys name, events_per_s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dialerd.agi import AGIRequest, AGIServer  # noqa: E402
from dialerd.ami import AMIClient, CallTracker, follow_calls, hangup, originate  # noqa: E402
from dialerd.ami.calls import CallFailed, CallHungUp  # noqa: E402
from dialerd.ami.codec import NEED_DATA, AMIConnection, Event, Response  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "ami"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
CHUNK = 65536


def transcript(target_bytes: int) -> tuple[bytes, int]:
    """One AMI stream: a banner, then every recorded frame, repeated to `target_bytes`.
    Returns the stream and its number of frames."""
    frames: list[bytes] = []
    for path in sorted(FIXTURES.glob("*.ami")):
        data = path.read_bytes()
        body = data[data.index(b"\n") + 1 :]
        frames += [f + b"\r\n\r\n" for f in re.split(rb"\r\n\r\n", body) if f.strip()]
    unit = b"".join(frames)
    repeat = max(1, target_bytes // len(unit))
    return BANNER + unit * repeat, len(frames) * repeat


def chunks(data: bytes) -> list[bytes]:
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]


# Both parsers are measured as a consumer uses them: every frame decoded AND two of its
# headers read (what the call tracker reads first), so a lazy parser gains nothing by
# deferring work nobody would skip.


def run_ours(parts: list[bytes]) -> int:
    conn = AMIConnection()
    n = 0
    next_event = conn.next_event
    for part in parts:
        conn.receive_data(part)
        while (item := next_event()) is not NEED_DATA:
            if isinstance(item, Event | Response):
                item.get("Event") or item.get("Response")
                item.get("Uniqueid")
                n += 1
    return n


def run_ours_all_headers(parts: list[bytes]) -> int:
    """Ours, made to parse every header of every frame (the lazy path's worst case)."""
    conn = AMIConnection()
    n = 0
    for part in parts:
        conn.receive_data(part)
        while (item := conn.next_event()) is not NEED_DATA:
            if isinstance(item, Event | Response):
                n += len(item.headers) > 0
    return n


def run_panoramisk(parts: list[bytes]) -> int:
    from panoramisk.ami_protocol import AMIProtocol

    class Counter:
        """panoramisk's Manager, reduced to what its protocol calls back into."""

        n = 0
        save_stream = None
        forgetable_actions = ()
        awaiting_actions: ClassVar[list[Any]] = []

        def dispatch(self, message: Any) -> None:
            message.get("event") or message.get("response")
            message.get("uniqueid")
            self.n += 1

        def connection_lost(self, exc: Any) -> None:  # a Shutdown event in a transcript
            pass

    class Transport:
        def close(self) -> None:
            pass

    proto = AMIProtocol()
    proto.connection_made(Transport())
    counter = Counter()
    proto.factory = counter
    responses = 0
    original = proto.handle_message

    def handle(message: Any) -> None:
        nonlocal responses
        if "event" not in message:
            message.get("response")
            message.get("uniqueid")
            responses += 1
        original(message)

    proto.handle_message = handle  # type: ignore[method-assign]
    for part in parts:
        proto.data_received(part)
    return counter.n + responses


def best_rate(func: Any, parts: list[bytes], rounds: int = 5) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        count = func(parts)
        best = min(best, time.perf_counter() - t0)
    return count / best, count


# ------------------------------------------------------------------------ end to end


class RawTap:
    """Counts broadcast event frames on a raw AMI connection (no dialerd code involved).

    Events that answer one session's own action (they carry its ActionID: ChannelHungup
    for a Hangup, a list's items) go to that session only, so both sides count just the
    events without an ActionID."""

    def __init__(self) -> None:
        self.events = 0
        self._buf = b""

    async def start(self, host: str, port: int, user: str, secret: str) -> None:
        self.reader, self.writer = await asyncio.open_connection(host, port)
        self.writer.write(f"Action: Login\r\nUsername: {user}\r\nSecret: {secret}\r\n\r\n".encode())
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while chunk := await self.reader.read(65536):
            *frames, self._buf = (self._buf + chunk).split(b"\r\n\r\n")
            self.events += sum(
                f.startswith(b"Event: ") and b"\r\nActionID: " not in f for f in frames
            )

    def close(self) -> None:
        self.task.cancel()
        self.writer.close()


class Harness:
    """Our client (with the call tracker) and the raw tap on the same Asterisk."""

    def __init__(self, host: str, port: int, user: str, secret: str) -> None:
        self.host, self.port, self.user, self.secret = host, port, user, secret
        self.tap = RawTap()
        self.ami = AMIClient(self.host, self.port, self.user, self.secret)
        self.tracker = CallTracker()
        self.stream = follow_calls(self.ami, self.tracker)
        self.counter = self.ami.subscribe()
        self.broadcast = 0
        self.live: set[str] = set()
        self.changed = asyncio.Event()
        self.serial = 0

    async def _count(self) -> None:
        async for item in self.counter:
            if isinstance(item, Event) and item.action_id is None:
                self.broadcast += 1

    async def _consume(self) -> None:
        async for event in self.stream:
            if isinstance(event, CallHungUp | CallFailed):
                self.live.discard(event.call_id)
                self.changed.set()

    async def dial(self, prefix: str) -> None:
        self.serial += 1
        call_id = f"bench{os.getpid()}x{self.serial}"
        self.live.add(call_id)
        number = f"{prefix}{self.serial % 10000:04d}"
        await self.ami.send_action(originate(call_id, f"Local/{number}@world/n", attempt=call_id))

    async def wait_idle(self) -> None:
        async with asyncio.timeout(60):
            while self.live:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.sleep(2.0)  # the last events reach both connections

    async def phase(self, name: str, run: Any) -> dict[str, Any]:
        """Run one load phase; compare our broadcast-event count with the tap's."""
        ours0, wire0, calls0 = self.broadcast, self.tap.events, self.serial
        t0 = time.perf_counter()
        max_backlog = await run()
        elapsed = time.perf_counter() - t0
        during = self.broadcast - ours0
        await self.wait_idle()
        ours, wire = self.broadcast - ours0, self.tap.events - wire0
        return {
            "name": name, "events_per_s": round(during / elapsed, 1),
            "seconds": round(elapsed, 2), "calls": self.serial - calls0,
            "events_client": ours, "events_wire": wire, "lost": wire - ours,
            "max_backlog": max_backlog,
        }  # fmt: skip


async def end_to_end(
    calls: int,
    seconds: float,
    burst: int,
    *,
    host: str = "127.0.0.1",
    ami_port: int | None = None,
    agi_port: int | None = None,
    user: str = "dialerd",
    secret: str = "sandbox-secret",
) -> list[dict[str, Any]]:
    """Sustained: `calls` humans kept up for `seconds` (each plays the abandon message
    and ends by itself; a new call replaces it). Burst: `burst` invalid numbers at once,
    the densest event rate the world can make. Ports default to DIALERD_TEST_*."""
    h = Harness(
        host, ami_port or int(os.environ.get("DIALERD_TEST_AMI_PORT", "25038")), user, secret
    )
    agi = AGIServer(
        port=agi_port or int(os.environ.get("DIALERD_TEST_AGI_PORT", "24573")), timeout=2.0
    )

    @agi.route("/connect")
    async def connect(req: AGIRequest) -> None:
        return None  # nobody free: the abandon message plays, then the call ends

    async def sustained() -> int:
        max_backlog = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            while len(h.live) < calls:
                await h.dial("101")
            h.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(h.changed.wait(), 1.0)
            max_backlog = max(max_backlog, h.counter.backlog)
        await h.ami.send_action(hangup("/^Local\\/101/"))
        return max_backlog

    async def bursting() -> int:
        max_backlog = 0
        for _ in range(burst):
            await h.dial("601")
            max_backlog = max(max_backlog, h.counter.backlog)
        async with asyncio.timeout(60):
            while h.live:
                h.changed.clear()
                await h.changed.wait()
                max_backlog = max(max_backlog, h.counter.backlog)
        return max_backlog

    await h.tap.start(h.host, h.port, h.user, h.secret)
    tasks = [asyncio.create_task(h._count()), asyncio.create_task(h._consume())]
    rows = []
    async with agi, h.ami:
        await asyncio.sleep(0.5)  # both sessions are up before the first call
        rows.append(await h.phase(f"e2e/sustained@{calls}-calls", sustained))
        if burst:
            rows.append(await h.phase(f"e2e/burst@{burst}-calls", bursting))
    for task in tasks:
        task.cancel()
    h.tap.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-pbx", action="store_true", help="parser comparison only")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=1000, help="0 to skip the burst")
    parser.add_argument("--megabytes", type=float, default=4.0)
    args = parser.parse_args()

    data, frames = transcript(int(args.megabytes * 1024 * 1024))
    parts = chunks(data)
    ours, n_ours = best_rate(run_ours, parts)
    theirs, n_theirs = best_rate(run_panoramisk, parts)
    full, n_full = best_rate(run_ours_all_headers, parts)
    rows: list[dict[str, Any]] = [
        {"name": "parser/dialerd", "events_per_s": round(ours), "frames": n_ours},
        {"name": "parser/dialerd-all-headers", "events_per_s": round(full), "frames": n_full},
        {"name": "parser/panoramisk-1.4", "events_per_s": round(theirs), "frames": n_theirs},
    ]
    rows[0]["speedup_vs_panoramisk"] = round(ours / theirs, 2)
    rows[1]["speedup_vs_panoramisk"] = round(full / theirs, 2)
    if not args.no_pbx:
        rows += asyncio.run(end_to_end(args.calls, args.seconds, args.burst))
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print(f"transcript: {len(data) / 1e6:.1f} MB, {frames} frames, {CHUNK // 1024} KB chunks")
    print(f"{'name':28} {'events/s':>12}  details")
    for row in rows:
        details = ", ".join(f"{k}={v}" for k, v in row.items() if k not in ("name", "events_per_s"))
        print(f"{row['name']:28} {row['events_per_s']:>12,}  {details}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
