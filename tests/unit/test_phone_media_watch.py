"""The softphone's dead-leg rule: a held call whose RTP stopped is dead (the PBX was
killed, no BYE came), so the PBX's next nailing INVITE replaces it instead of a 486."""

from __future__ import annotations

from dialerd.phone.engine import MEDIA_DEAD_SECONDS, MediaWatch


def test_a_call_with_flowing_rtp_is_alive() -> None:
    watch = MediaWatch(changed_at=100.0)
    for i in range(30):
        watch.observe(rx_packets=25 * i, now=100.0 + 0.5 * i)
        assert not watch.dead(100.0 + 0.5 * i)


def test_rtp_that_stopped_for_the_limit_marks_the_call_dead() -> None:
    watch = MediaWatch(changed_at=100.0)
    watch.observe(rx_packets=50, now=101.0)
    watch.observe(rx_packets=50, now=104.0)  # no new packets since 101
    assert not watch.dead(101.0 + MEDIA_DEAD_SECONDS - 0.1)
    assert watch.dead(101.0 + MEDIA_DEAD_SECONDS)


def test_a_new_call_gets_the_full_grace_before_its_first_packet() -> None:
    watch = MediaWatch(changed_at=200.0)
    assert not watch.dead(200.0 + MEDIA_DEAD_SECONDS - 0.1)
    assert watch.dead(200.0 + MEDIA_DEAD_SECONDS)
