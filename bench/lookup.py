"""Caller-ID lookup benchmark (R-LOG-4): the inbound hot path at 1M clients, with baselines.

    /work/venv/bin/python bench/lookup.py                 # 1M clients (about a minute)
    /work/venv/bin/python bench/lookup.py --contacts 100000 --lookups 5000
    /work/venv/bin/python bench/lookup.py --json          # [{"name", "value", "unit"}, ...]

What is timed, per call, in one run on one database:
- ``identify known``: what ``/inbound`` does before answering Asterisk: normalise the
  caller's national number to E.164, ask the sources (the store), look up the linked
  agent. Sequential, and 20 callers at once (latency seen by each).
- ``identify unknown``: the same for numbers nobody knows, which registers a new client
  (a write transaction each).
- baselines side by side: the store's generic ``lookup_number`` (two queries) against
  the call log's one-query version, and an in-memory dict (the CSV source) as the floor.
Target: identify known p99 <= 5 ms at 1M clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from dialerd.config.inbound import InboundConfig
from dialerd.inbound.agi import InboundHandlers
from dialerd.inbound.lookup import CallerLookup, CallerMatch, CsvSource, StoreSource
from dialerd.store.calllog import CallLogStore
from dialerd.store.models import ClientType
from dialerd.store.sqlite import SqliteStore

TARGET_P99_MS = 5.0
TYPES = list(ClientType)


def national(e164: str) -> str:
    """+31612345678 -> 06 12 34 56 78 (what a Dutch carrier presents)."""
    rest = e164[3:]
    return "0" + rest[0] + " " + " ".join(rest[i : i + 2] for i in range(1, len(rest), 2))


async def timed(fn: Callable[[str], Awaitable[object]], numbers: list[str]) -> list[float]:
    out = []
    for number in numbers:
        start = time.perf_counter()
        await fn(number)
        out.append((time.perf_counter() - start) * 1000)
    return out


async def timed_concurrent(
    fn: Callable[[str], Awaitable[object]], numbers: list[str], width: int
) -> list[float]:
    async def one(number: str) -> float:
        start = time.perf_counter()
        await fn(number)
        return (time.perf_counter() - start) * 1000

    out: list[float] = []
    for i in range(0, len(numbers), width):
        out.extend(await asyncio.gather(*(one(n) for n in numbers[i : i + width])))
    return out


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(
    contacts: int, lookups: int, db_dir: Path
) -> tuple[list[tuple[str, list[float]]], dict[str, float]]:
    rng = random.Random(8)
    numbers = [f"+316{n:08d}" for n in rng.sample(range(10**8), contacts + lookups)]
    known, unknown = numbers[:contacts], numbers[contacts:]
    store = await CallLogStore.open(db_dir / "bench.db")
    facts: dict[str, float] = {}
    try:
        start = time.perf_counter()
        added = await store.import_contacts(
            (n, f"Client {i}", TYPES[i % len(TYPES)]) for i, n in enumerate(known)
        )
        facts["import_rows_per_s"] = added / (time.perf_counter() - start)
        facts["contacts"] = float(added)
        handlers = InboundHandlers(InboundConfig(), store, CallerLookup([StoreSource(store)]))
        sample = [national(n) for n in rng.sample(known, lookups)]

        async def identify(raw: str) -> object:
            caller = await handlers.identify(raw, "")
            assert caller.contact_id is not None
            return caller

        e164_sample = rng.sample(known, lookups)
        csv = CsvSource({n: CallerMatch("x", ClientType.VIP, "csv") for n in known})
        in_memory = CallerLookup([csv])
        await timed(identify, sample[:500])  # warm the page cache and the code paths
        results = [
            ("identify_known", "identify known (sequential)", await timed(identify, sample)),
            ("identify_known_concurrent20", "identify known (20 at once)",
             await timed_concurrent(identify, sample, 20)),
            ("identify_unknown_register", "identify unknown -> register",
             await timed(identify, [national(n) for n in unknown])),
            ("baseline_store_lookup_2q", "baseline: store.lookup_number, 2 queries",
             await timed(lambda n: SqliteStore.lookup_number(store, n), e164_sample)),
            ("calllog_lookup_1q", "call log lookup_number, 1 query",
             await timed(store.lookup_number, e164_sample)),
            ("baseline_in_memory_dict", "baseline: in-memory dict (CSV source)",
             await timed(in_memory.find, e164_sample)),
        ]  # fmt: skip
    finally:
        await store.close()
    return results, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--json", action="store_true", help="a JSON list of name/value/unit")
    args = parser.parse_args()
    db_dir = Path(tempfile.mkdtemp(prefix="dialerd-bench-lookup-"))
    try:
        results, facts = asyncio.run(run(args.contacts, args.lookups, db_dir))
    finally:
        shutil.rmtree(db_dir, ignore_errors=True)
    size = f"{int(facts['contacts']):,}"
    if args.json:
        out = [{"name": "import_rows_per_s", "value": round(facts["import_rows_per_s"]),
                "unit": "rows/s"}]  # fmt: skip
        for key, _, samples in results:
            for q, label in ((0.5, "p50"), (0.99, "p99")):
                out.append({"name": f"{key}_{label}_ms", "value": round(pct(samples, q), 4),
                            "unit": "ms"})  # fmt: skip
        print(json.dumps(out))
        return
    table = Table(title=f"caller-ID lookup at {size} clients (ms per call)")
    for col in ("case", "n", "p50", "p95", "p99", "max", "mean"):
        table.add_column(col, justify="left" if col == "case" else "right")
    for _, name, samples in results:
        table.add_row(
            name, str(len(samples)), f"{pct(samples, 0.5):.3f}", f"{pct(samples, 0.95):.3f}",
            f"{pct(samples, 0.99):.3f}", f"{max(samples):.3f}", f"{statistics.fmean(samples):.3f}",
        )  # fmt: skip
    console = Console(width=120)
    console.print(table)
    p99 = pct(results[0][2], 0.99)
    verdict = "meets" if p99 <= TARGET_P99_MS else "MISSES"
    console.print(f"import: {facts['import_rows_per_s']:,.0f} clients/s")
    console.print(f"identify known p99 {p99:.3f} ms {verdict} the {TARGET_P99_MS} ms target")


if __name__ == "__main__":
    main()
