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
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from dialerd.phone import (
    Answered,
    AudioStats,
    EventStream,
    Incoming,
    MediaActive,
    PhoneConfig,
    PhoneEvent,
    Registered,
    Softphone,
)

if TYPE_CHECKING:
    from tests.conftest import Sandbox

pytestmark = [pytest.mark.pbx, pytest.mark.sip]

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
    async with running(phone_config(sandbox, 1001)) as (phone, events):
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
            while not heard or heard[-1].voice_frames < 15:
                heard.append(await events.wait_for(AudioStats, 20))
        stats = heard[-1]
        peaks = max(s.rx_peak_rms for s in heard)
        assert stats.rtp_rx_packets > 150, stats
        assert stats.rtp_tx_packets > 150, stats  # no VAD: the phone keeps sending
        assert stats.rtp_rx_lost == 0
        print(
            f"\nheard: {stats.rtp_rx_packets} RTP in / {stats.rtp_tx_packets} out, "
            f"{stats.rx_frames} frames, {stats.voice_frames} voice frames, "
            f"peak frame RMS {peaks}"
        )
        assert peaks > 1000  # "hello" is loud; line silence is RMS 0
