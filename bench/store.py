"""Store benchmark: import a million leads from CSV, then time "the next 500 to dial".

    python bench/store.py [--leads 1000000] [--runs 200] [--json]

1. Writes a deterministic CSV (numbers from NL, DE, GB and four US zones; a fifth of the Dutch ones
   written in national format, the rest E.164) and imports it through the same code path as
   ``dialerd leads import`` (parse, validate, zone, duplicate and DNC checks, one
   transaction). Baseline: the same rows normalised by the plain ``phonenumbers.parse`` path
   (on a sample), to show what the fast path buys.
2. Makes the campaign look a few days into dialling, through the daemon's own calls (claims,
   ``LeadFlow.dialer_outcome``, ``LeadFlow.disposition``): per million leads 1% DNC, 20,000
   busy/no-answer retries of the last two hours (due or waiting), 5,000 abandoned (72 h
   guard) and 10,000 machine verdicts (24 h guard) ahead of them in queue order, 2,000
   addresses linked to an agent, 2,000 callbacks (one in ten due, some reservations over),
   twenty agents of whom ten are ready, five busy, five logged out.
3. Times ``LeadFlow.next_leads`` — what the daemon calls, including the rules' Python
   checks and the claim transaction — at Wednesday 17:00 in Amsterdam (Europe and the US
   east open, the west coast not yet): 500 for the pool, a pacing tick of 10, and one for
   a ready agent. Each run is 2 s later than the previous (a few leads wake up) and its
   claims are put back untimed. Baselines: the previous ``next_leads`` selection (guards in
   Python, widening the window), and one query without the zone ranges.

Prints a table, or with --json a list of {"name", "value", "unit"}. The machine is shared:
"per CPU-second" divides by this process's CPU time, which other processes do not inflate.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import phonenumbers

from dialerd import queue as q
from dialerd.config import load_config
from dialerd.config.models import CampaignConfig
from dialerd.leadflow import Claimed, LeadFlow, Reschedule, to_queue_lead
from dialerd.leads.importer import import_csv
from dialerd.leads.numbers import open_zones
from dialerd.store.models import Agent, DncEntry
from dialerd.store.sqlite import SqliteStore

REPO = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 25, 16, 0, tzinfo=dt.UTC)  # Wed 17:00 Amsterdam, 08:00 LA
NOW_TS = NOW.timestamp()

# (E.164 prefix, digits after it, NL national form of the prefix or None); all ranges valid
_SERIES = [
    ("+3120", 7, "020"),  # Amsterdam fixed
    ("+3161", 7, "061"),  # NL mobile
    ("+4930", 8, None),  # Berlin
    ("+44207", 7, None),  # London
    ("+1212", 7, None),  # New York
    ("+1312", 7, None),  # Chicago
    ("+1303", 7, None),  # Denver
    ("+1415", 7, None),  # San Francisco
]


def write_csv(path: Path, n: int, seed: int = 7) -> list[str]:
    """n unique valid numbers; returns them E.164 for the DNC sample."""
    rng = random.Random(seed)
    numbers: list[str] = []
    seen: set[str] = set()
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone,name,customer_id\n")
        i = 0
        while len(numbers) < n:
            prefix, width, national = _SERIES[i % len(_SERIES)]
            i += 1
            lead = 2 + rng.randrange(8)  # no leading 0/1 in the subscriber part
            tail = f"{lead}{rng.randrange(10 ** (width - 1)):0{width - 1}d}"
            e164 = prefix + tail
            if e164 in seen:
                continue
            seen.add(e164)
            numbers.append(e164)
            text = e164
            if national and len(numbers) % 5 == 0:
                text = f"{national} {tail}"
            out.write(f"{text},Lead {len(numbers)},C{len(numbers):07d}\n")
    return numbers


def bench_campaign() -> CampaignConfig:
    """The demo campaign with office hours, so the time zones matter."""
    demo = load_config(REPO / "conf").campaigns["demo"]
    hours = {d: ["09:00-21:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    return CampaignConfig.model_validate(
        {**demo.model_dump(mode="json"), "name": "bench", "calling_hours": hours}
    )


def _sample(csv_path: Path, n: int = 50_000) -> list[str]:
    """The first `n` raw numbers of the file, as written."""
    with csv_path.open(encoding="utf-8") as lines:
        next(lines)
        return [line.split(",", 1)[0] for _, line in zip(range(n), lines, strict=False)]


def baseline_normalize(raw: list[str]) -> float:
    """Rows/s of the plain phonenumbers path (parse, is_valid, format, time_zones)."""
    from phonenumbers import timezone as pn_tz

    started = time.perf_counter()
    for text in raw:
        number = phonenumbers.parse(text, "NL")
        phonenumbers.is_valid_number(number)
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        pn_tz.time_zones_for_number(number)
    return len(raw) / (time.perf_counter() - started)


async def run(n_leads: int, runs: int) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []

    def add(name: str, value: float, unit: str) -> None:
        results.append({"name": name, "value": round(value, 3), "unit": unit})

    add("machine load average (1 min) at start", os.getloadavg()[0], "runnable tasks, 2 cores")
    with tempfile.TemporaryDirectory(prefix="dialerd-bench-") as tmp:
        csv_path = Path(tmp) / "leads.csv"
        store = await SqliteStore.open(Path(tmp) / "bench.db")
        try:
            numbers = write_csv(csv_path, n_leads)
            await _measure_import(store, csv_path, n_leads, add)
            flow = LeadFlow(store, {"bench": bench_campaign()})
            mix = await _make_mix(store, flow, numbers, n_leads)
            del numbers  # only the store's data should be live while the selection is timed
            for what, count in mix.items():
                add(f"  mix: {what}", count, "leads")
            await _measure_selection(store, flow, runs, add)
        finally:
            await store.close()
    add("machine load average (1 min) at end", os.getloadavg()[0], "runnable tasks, 2 cores")
    return results


async def _measure_import(
    store: SqliteStore, csv_path: Path, n_leads: int, add: Callable[[str, float, str], None]
) -> None:
    config = bench_campaign()
    campaign = await store.sync_campaign(config, NOW_TS)
    started, cpu_started = time.perf_counter(), time.process_time()
    report = await import_csv(store, campaign, config, csv_path, now=NOW_TS)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if report.imported != n_leads or report.errors:
        raise SystemExit(f"import lost rows: {report.imported} of {n_leads}, {report.errors[:3]}")
    add("import leads (CSV -> store, all checks)", n_leads / elapsed, "leads/s")
    add("import leads per CPU-second (both threads)", n_leads / cpu, "leads/cpu-s")
    add("baseline: phonenumbers.parse path", baseline_normalize(_sample(csv_path)), "leads/s")


AGENTS = [f"a{i:02d}" for i in range(1, 21)]
PRESENCE = q.Presence.of(available=AGENTS[:10], busy=AGENTS[10:15])  # a16-a20 logged out
"""The floor the pool selection sees: ten agents ready, five busy, five logged out."""
_HOUR = 3600.0


async def _make_mix(
    store: SqliteStore, flow: LeadFlow, numbers: list[str], n: int
) -> dict[str, int]:
    """A campaign a few days into dialling, built through the daemon's own calls.

    Leads are claimed (``claim``) and their outcomes recorded with `LeadFlow.dialer_outcome`
    and `LeadFlow.disposition`, so every summary column is what the rules would have
    written. Outcomes are placed so that the redial-guarded leads sit *ahead* of the
    dialable ones in queue order (call score 3.0 after one no-contact attempt, against 2.0
    for a fresh lead): the selection has to skip them all to fill 500.
    """
    rng = random.Random(11)
    for agent in AGENTS:
        await store.upsert_agent(Agent(agent, agent))
    await store.add_dnc(
        DncEntry(num, "bench", "bench", NOW_TS) for num in rng.sample(numbers, n // 100)
    )
    sizes = {"retry": n // 50, "abandoned": n // 200, "machine": n // 100}
    sizes |= {"linked": n // 500, "callback": n // 500}
    picked = rng.sample(range(1, n + 1), sum(sizes.values()))
    groups: dict[str, list[int]] = {}
    for name, size in sizes.items():
        groups[name], picked = picked[:size], picked[size:]
    counts = {"DNC numbers": n // 100}
    reg = {"Reason for call": ("Information",)}

    async def outcome(ids: list[int], what: q.Outcome, ended: Callable[[], float]) -> int:
        done = 0
        for lead_id in await store.claim(ids):  # DNC leads are not claimable: skipped
            at = ended()
            await flow.dialer_outcome(lead_id, "bench", what, at - 30, at)
            done += 1
        return done

    async def callback(ids: list[int], ended: Callable[[], float], due: Callable[[], float]) -> int:
        done = 0
        for lead_id in await store.claim(ids):
            at, agent = ended(), rng.choice(AGENTS)
            target = q.CallbackTarget.MYSELF if rng.random() < 0.7 else q.CallbackTarget.ANY
            await flow.disposition(
                lead_id, "bench", agent, "callback", registration=reg,
                reschedule=Reschedule(due(), target, "call back about the offer"),
                started=at - 120, ended=at,
            )  # fmt: skip
            done += 1
        return done

    retry = groups["retry"]
    half = len(retry) // 2  # busy and no answer, the last two hours: most due, some waiting
    counts["retry due or waiting (busy)"] = await outcome(
        retry[:half], q.Outcome.BUSY, lambda: NOW_TS - rng.uniform(0, 2 * _HOUR)
    )
    counts["retry due or waiting (no answer)"] = await outcome(
        retry[half:], q.Outcome.NO_ANSWER, lambda: NOW_TS - rng.uniform(0, 2 * _HOUR)
    )
    # Abandoned 1-72 h ago (delay 5 min) and judged a machine 1-24 h ago (delay 4 h): ready
    # (but the 4 h delay of the last 3 h) and all inside their guard. Older ones are no
    # longer guarded and sit first in the queue, so a running dialler has called them:
    # the guarded block is what the head of a busy campaign's queue looks like.
    counts["abandoned 1-72 h ago"] = await outcome(
        groups["abandoned"], q.Outcome.ABANDONED, lambda: NOW_TS - rng.uniform(1, 71.9) * _HOUR
    )
    counts["machine 1-24 h ago"] = await outcome(
        groups["machine"], q.Outcome.MACHINE, lambda: NOW_TS - rng.uniform(1, 23.9) * _HOUR
    )
    # linked to an agent (callback reached the contact person), then not answered: ready,
    # call score 3.5 (first in the queue), but only for that agent for a week (R-RC-6)
    linked = groups["linked"]
    await callback(linked, lambda: NOW_TS - 30 * _HOUR, lambda: NOW_TS - 27 * _HOUR)
    counts["linked to an agent, ready"] = await outcome(
        linked, q.Outcome.NO_ANSWER, lambda: NOW_TS - rng.uniform(20, 26) * _HOUR
    )
    # callbacks: one in ten due (within the last 40 min: some reservations over), rest later
    cbs = groups["callback"]
    tenth = len(cbs) // 10
    counts["callbacks due"] = await callback(
        cbs[:tenth], lambda: NOW_TS - 3 * _HOUR, lambda: NOW_TS - rng.uniform(0, 40 * 60)
    )
    counts["callbacks later"] = await callback(
        cbs[tenth:], lambda: NOW_TS - 3 * _HOUR, lambda: NOW_TS + rng.uniform(1, 48) * _HOUR
    )
    return counts


async def _measure_selection(
    store: SqliteStore, flow: LeadFlow, runs: int, add: Callable[[str, float, str], None]
) -> None:
    """Time `LeadFlow.next_leads` (the daemon's call) and what it is made of.

    Each run is 2 s after the previous one (a few waiting leads wake up, as in the daemon),
    and the claimed leads are put back untimed afterwards, so every run sees the same queue.
    """
    campaign = await store.get_campaign("bench")
    assert campaign is not None
    config = bench_campaign()
    zones = await store.campaign_zones(campaign.id)
    allowed = open_zones(config.calling_hours, zones, NOW)
    add("open zones of campaign", len(allowed), f"of {len(zones)}")

    t0 = time.perf_counter()
    await _put_back(store, await flow.next_leads("bench", 500, NOW_TS, presence=PRESENCE))
    add("first next_leads(500) (wakes every lead due since the mix)", _ms(t0), "ms")
    wall, cpu, callbacks = await _time_pool(store, flow, runs, NOW_TS)
    add("next_leads(500), pool (p50)", statistics.median(wall), "ms")
    add("next_leads(500), pool (p99)", _p99(wall), "ms")
    add("next_leads(500), pool, CPU time (p50)", statistics.median(cpu), "ms")
    add("next_leads(500), pool, CPU time (p99)", _p99(cpu), "ms")
    add("  of which due callbacks", callbacks, "leads")
    # Full collections of Python's cyclic GC land in about 1% of the runs: the p99. With
    # start-up's objects frozen (what a daemon can do once it has loaded) they scan less.
    gc.freeze()
    frozen, _, _ = await _time_pool(store, flow, runs, NOW_TS + 2 * runs)
    gc.unfreeze()
    add("next_leads(500), pool, after gc.freeze() (p50)", statistics.median(frozen), "ms")
    add("next_leads(500), pool, after gc.freeze() (p99)", _p99(frozen), "ms")

    late = NOW_TS + 4 * runs
    ticks = [await _timed_pick(store, flow, 10, None, late + i) for i in range(runs)]
    add("next_leads(10), pool: a pacing tick (p50)", statistics.median(ticks), "ms")
    add("next_leads(10), pool: a pacing tick (p99)", _p99(ticks), "ms")
    late += runs
    picks = [await _timed_pick(store, flow, 1, AGENTS[0], late + i) for i in range(runs // 4 + 5)]
    add("next_leads(1) for a ready agent (p50)", statistics.median(picks), "ms")
    add("next_leads(1) for a ready agent (p99)", _p99(picks), "ms")

    rules = flow.rules("bench")

    async def store_alone() -> float:
        t0 = time.perf_counter()
        await store.select_dialable(
            campaign.id, late, allowed, 500, config.max_attempts, None,
            late - config.link_release_minutes * 60, callbacks=False,
            abandoned_before=late - config.abandoned_redial_guard_minutes * 60,
            machine_before=late - config.machine_redial_guard_minutes * 60,
        )  # fmt: skip
        return _ms(t0)

    store_runs = [await store_alone() for _ in range(runs)]
    add("store.select_dialable(500), pool, alone (p50)", statistics.median(store_runs), "ms")
    add("store.select_dialable(500), pool, alone (p99)", _p99(store_runs), "ms")
    gc.freeze()
    store_runs = [await store_alone() for _ in range(runs)]
    gc.unfreeze()
    add("store.select_dialable(500), after gc.freeze() (p99)", _p99(store_runs), "ms")

    base_runs, base_found = [], 0
    for _ in range(max(runs // 40, 3)):
        t0 = time.perf_counter()
        base_found = await _python_guards_select(store, campaign.id, allowed, rules, late, 500)
        base_runs.append(_ms(t0))
    add("baseline: guards in Python, widen, no claim (p50)", statistics.median(base_runs), "ms")
    add("  baseline found", base_found, "of 500 leads")
    naive = await _naive_select(store, campaign.id, late, allowed, 3)
    add("baseline: one query, no zone ranges (p50)", naive, "ms")


async def _time_pool(
    store: SqliteStore, flow: LeadFlow, runs: int, start: float
) -> tuple[list[float], list[float], int]:
    """`runs` pool selections of 500, 2 s apart from `start`: wall and CPU ms per run, and
    how many due callbacks the last one served."""
    wall: list[float] = []
    cpu: list[float] = []
    callbacks = 0
    for i in range(1, runs + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        claimed = await flow.next_leads("bench", 500, start + 2 * i, presence=PRESENCE)
        wall.append(_ms(t0))
        cpu.append((time.process_time() - c0) * 1000)
        if len(claimed) != 500:
            raise SystemExit(f"next_leads returned {len(claimed)}, expected 500")
        callbacks = sum(c.callback_id is not None for c in claimed)
        await _put_back(store, claimed)
    return wall, cpu, callbacks


async def _timed_pick(
    store: SqliteStore, flow: LeadFlow, n: int, agent: str | None, now: float
) -> float:
    """One `next_leads` as the daemon makes it, in ms: a pacing tick for the pool, or a
    ready agent's own pick (reserved callbacks first, guards lifted: the agent waits)."""
    t0 = time.perf_counter()
    claimed = await flow.next_leads("bench", n, now, agent=agent, presence=PRESENCE)
    elapsed = _ms(t0)
    await _put_back(store, claimed)
    return elapsed


async def _put_back(store: SqliteStore, claimed: list[Claimed]) -> None:
    """Undo a claim (untimed): the leads are ready again, their callbacks pending."""
    db = store._db
    await db.execute("BEGIN IMMEDIATE")
    await db.executemany(
        "UPDATE leads SET status = ? WHERE id = ?",
        [("ready" if c.callback_id is None else "callback", c.lead_id) for c in claimed],
    )
    await db.executemany(
        "UPDATE callbacks SET status = 'pending' WHERE id = ?",
        [(c.callback_id,) for c in claimed if c.callback_id is not None],
    )
    await db.execute("COMMIT")


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def _python_guards_select(
    store: SqliteStore,
    campaign_id: int,
    zones: list[str],
    rules: q.CampaignRules,
    now: float,
    n: int,
) -> int:
    """The previous ``next_leads`` selection (no claim): the store returned guarded leads
    too, the rules threw them out in Python, and the window grew (x4, up to 20,000 rows)
    until `n` were accepted; the number of offers found."""
    at = dt.datetime.fromtimestamp(now, dt.UTC)
    release = rules.link_release.total_seconds() if rules.link_release else None
    limit = max(4 * n, 50)
    while True:
        due = await store.due_callbacks(campaign_id, now, limit)
        selection = await store.select_dialable(
            campaign_id, now, zones, limit, rules.retry.max_attempts, None,
            now - release if release is not None else None,
        )  # fmt: skip
        candidates = [to_queue_lead(d.lead, d.callback) for d in due]
        candidates += [to_queue_lead(lead) for lead in selection.leads]
        offers = q.select(candidates, rules, PRESENCE, at, None, limit=n)
        full = len(due) >= limit or len(selection.callbacks) + len(selection.leads) >= limit
        if len(offers) >= n or not full or limit >= 20_000:
            return len(offers)
        limit = min(4 * limit, 20_000)


async def _naive_select(
    store: SqliteStore, campaign_id: int, now: float, zones: list[str], runs: int
) -> float:
    """The straightforward query a first version would write (for comparison only)."""
    sql = (
        "SELECT id FROM leads NOT INDEXED WHERE campaign_id = ? AND status IN ('ready', 'waiting')"
        f" AND next_dial_at <= ? AND tz IN ({', '.join('?' * len(zones))})"
        " AND NOT EXISTS (SELECT 1 FROM dnc WHERE dnc.number = leads.number)"
        " ORDER BY call_score DESC, last_attempt_at, rank, id LIMIT 500"
    )
    timings = []
    for _ in range(runs):
        t0 = time.perf_counter()
        async with store._db.execute(sql, (campaign_id, now, *zones)) as cur:
            await cur.fetchall()
        timings.append(_ms(t0))
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    results = asyncio.run(run(args.leads, args.runs))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    width = max(len(str(r["name"])) for r in results)
    for r in results:
        print(f"{r['name']:<{width}}  {r['value']:>12,}  {r['unit']}")
    values = {str(r["name"]): r["value"] for r in results}
    print(f"\n{'side by side (this run)':<30} {'ours':>10} {'baseline':>10}  target; baseline")
    for what, ours, base, target in _SIDE_BY_SIDE:
        print(f"{what:<30} {values[ours]:>10,} {values[base]:>10,}  {target}")


_SIDE_BY_SIDE = [
    ("import, leads/s", "import leads (CSV -> store, all checks)",
     "baseline: phonenumbers.parse path", ">= 50,000; baseline: number parsing alone"),
    ("next 500, p50 ms", "next_leads(500), pool (p50)",
     "baseline: guards in Python, widen, no claim (p50)", "baseline: the previous next_leads"),
    ("next 500, p99 ms", "next_leads(500), pool (p99)",
     "baseline: one query, no zone ranges (p50)", "<= 20; baseline: a naive query's p50"),
    ("pacing tick (10), p99 ms", "next_leads(10), pool: a pacing tick (p99)",
     "baseline: guards in Python, widen, no claim (p50)", "<= 20; baseline as above"),
    ("next 500 after gc.freeze, p99", "next_leads(500), pool, after gc.freeze() (p99)",
     "baseline: guards in Python, widen, no claim (p50)", "<= 20; baseline as above"),
    ("store: 500 ready, p99 ms", "store.select_dialable(500), pool, alone (p99)",
     "baseline: one query, no zone ranges (p50)", "<= 20; baseline: a naive query's p50"),
]  # fmt: skip
"""(what, our row, its baseline row, the target): the rows printed side by side."""


if __name__ == "__main__":
    main()
