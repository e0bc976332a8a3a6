"""Store benchmark: import a million leads from CSV, then time "the next 500 to dial".

    python bench/store.py [--leads 1000000] [--runs 200] [--json]

1. Writes a deterministic CSV (numbers from NL, DE, GB and four US zones; a fifth of the Dutch ones
   written in national format, the rest E.164) and imports it through the same code path as
   ``dialerd leads import`` (parse, validate, zone, duplicate and DNC checks, one
   transaction). Baseline: the same rows normalised by the plain ``phonenumbers.parse`` path
   (on a sample), to show what the fast path buys.
2. Makes the queue realistic: 1% of numbers on the DNC list, 20,000 leads with an attempt
   (half still in their retry delay), 2,000 callbacks (one in ten due now).
3. Times the selection at a fixed instant (Wednesday 17:00 in Amsterdam: Europe open, the US
   west coast not yet): calling hours per zone, wake-up of due retries, due callbacks first,
   then ready leads in queue order, excluding DNC and exhausted leads. Baseline: the same
   question answered by one query without the zone ranges (ORDER BY over the whole campaign).

Prints a table, or with --json a list of {"name", "value", "unit"}. The machine is shared:
"per CPU-second" divides by this process's CPU time, which other processes do not inflate.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
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

from dialerd.config import load_config
from dialerd.config.models import CampaignConfig
from dialerd.leads.importer import import_csv
from dialerd.leads.numbers import open_zones
from dialerd.store.models import (
    AttemptRecord,
    DncEntry,
    LeadStatus,
    LeadUpdate,
    NewCallback,
)
from dialerd.store.sqlite import SqliteStore

REPO = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 25, 16, 0, tzinfo=dt.UTC)  # Wed 17:00 Amsterdam, 08:00 LA

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
            await _measure(store, csv_path, write_csv(csv_path, n_leads), n_leads, runs, add)
        finally:
            await store.close()
    return results


async def _measure(
    store: SqliteStore,
    csv_path: Path,
    numbers: list[str],
    n_leads: int,
    runs: int,
    add: Callable[[str, float, str], None],
) -> None:
    config = bench_campaign()
    now = NOW.timestamp()
    campaign = await store.sync_campaign(config, now)

    started, cpu_started = time.perf_counter(), time.process_time()
    report = await import_csv(store, campaign, config, csv_path, now=now)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if report.imported != n_leads or report.errors:
        raise SystemExit(f"import lost rows: {report.imported} of {n_leads}, {report.errors[:3]}")
    add("import leads (CSV -> store, all checks)", n_leads / elapsed, "leads/s")
    add("import leads per CPU-second (both threads)", n_leads / cpu, "leads/cpu-s")
    add("baseline: phonenumbers.parse path", baseline_normalize(_sample(csv_path)), "leads/s")

    rng = random.Random(11)
    await store.add_dnc(
        DncEntry(num, "bench", "bench", now) for num in rng.sample(numbers, n_leads // 100)
    )
    for lead_id in rng.sample(range(1, n_leads + 1), min(20000, n_leads // 5)):
        due = now + (3600 if lead_id % 2 else -60)
        await store.record_attempt(
            AttemptRecord(lead_id, now - 600, "busy", 1, "busy"),
            LeadUpdate(LeadStatus.WAITING, "prospect", 1, 3, 3.0, due, "busy", "busy",
                       now - 600),
        )  # fmt: skip
    for i, lead_id in enumerate(rng.sample(range(1, n_leads + 1), min(2000, n_leads // 50))):
        due = now + (-300 if i % 10 == 0 else 3600)
        await store.schedule_callback(NewCallback(lead_id, due, "bench"), now - 3600)

    del numbers  # only the store's data should be live while the selection is timed
    zones = await store.campaign_zones(campaign.id)
    timings: list[float] = []
    cpu_timings: list[float] = []
    selected = 0
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        allowed = open_zones(config.calling_hours, zones, NOW)
        selection = await store.select_dialable(campaign.id, now, allowed, 500, config.max_attempts)
        timings.append((time.perf_counter() - t0) * 1000)
        cpu_timings.append((time.process_time() - c0) * 1000)
        selected = len(selection.callbacks) + len(selection.leads)
    if selected != 500:
        raise SystemExit(f"selection returned {selected}, expected 500")
    add("select next 500 (p50)", statistics.median(timings), "ms")
    add("select next 500 (p99)", _p99(timings), "ms")
    add("select next 500, CPU time (p50)", statistics.median(cpu_timings), "ms")
    add("select next 500, CPU time (p99)", _p99(cpu_timings), "ms")
    add("  of which due callbacks", len(selection.callbacks), "leads")
    add("open zones of campaign", len(allowed), f"of {len(zones)}")

    base = await _baseline_select(store, campaign.id, now, allowed, max(runs // 20, 3))
    add("baseline: one query, no zone ranges (p50)", base, "ms")


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def _baseline_select(
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
        timings.append((time.perf_counter() - t0) * 1000)
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


if __name__ == "__main__":
    main()
