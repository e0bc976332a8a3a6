"""No event lost under load: 100 concurrent calls, then a 500-call burst.

Our client's count of broadcast events must equal the count an independent raw-socket
connection on the same Asterisk sees on the wire (bench/ami.py does the same with longer
runs and reports the rates). Every call must also reach exactly one terminal event.
"""

from __future__ import annotations

from bench.ami import end_to_end
from tests.conftest import Sandbox
from tests.fixtures.ami.live import hang_up_everything


async def test_client_keeps_up_with_100_concurrent_calls_and_a_burst(sandbox: Sandbox) -> None:
    hang_up_everything(sandbox)
    sustained, burst = await end_to_end(
        calls=100, seconds=8.0, burst=500, host=sandbox.ami_host, ami_port=sandbox.ami_port,
        agi_port=sandbox.agi_port, user=sandbox.ami_user, secret=sandbox.ami_secret,
    )  # fmt: skip
    assert sustained["calls"] >= 100
    assert sustained["events_wire"] > 100 * 10
    assert sustained["lost"] == 0, sustained
    assert burst["calls"] == 500
    assert burst["events_wire"] >= 500 * 8
    assert burst["lost"] == 0, burst
