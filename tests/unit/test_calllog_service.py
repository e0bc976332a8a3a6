"""The call-log service around the fold: one failing call never stops the call log."""

from __future__ import annotations

from dialerd.ami.codec import Event
from dialerd.calllog.fold import CallLogFold
from dialerd.calllog.service import CallLogService
from dialerd.store.models import CallEntry


class FlakySink:
    """Refuses the first call (as a broken database would), stores the rest."""

    def __init__(self) -> None:
        self.saved: list[CallEntry] = []
        self.refused = 0

    async def save_call(self, call: CallEntry) -> int:
        if not self.refused:
            self.refused += 1
            raise RuntimeError("disk full")
        self.saved.append(call)
        return len(self.saved)


def trunk_call(linkedid: str) -> list[Event]:
    channel = f"PJSIP/carrier-{linkedid}"
    base = (("Channel", channel), ("Uniqueid", linkedid), ("Linkedid", linkedid))
    return [
        Event((("Event", "Newchannel"), ("Timestamp", "1.0"), *base,
               ("Context", "dialerd-inbound"), ("CallerIDNum", "0201234567"))),
        Event((("Event", "Hangup"), ("Timestamp", "2.0"), *base, ("Cause", "16"))),
    ]  # fmt: skip


async def test_a_failing_call_is_logged_and_the_next_one_still_stored() -> None:
    sink = FlakySink()
    service = CallLogService(sink, CallLogFold())
    for event in trunk_call("t1") + trunk_call("t2"):
        await service.feed(event)
    await service.drain()
    assert sink.refused == 1
    assert [c.linkedid for c in sink.saved] == ["t2"]
