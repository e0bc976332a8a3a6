"""Pacing benchmark: every policy on the same simulated floors, side by side, one run.

    /work/venv/bin/python bench/pacing.py            # full grid (a few minutes, 2 cores)
    /work/venv/bin/python bench/pacing.py --quick    # a smoke-sized grid
    /work/venv/bin/python bench/pacing.py --json     # one JSON object per scenario+policy
    /work/venv/bin/python bench/pacing.py --oracle   # + the two references that peek

Policies: dialerd's progressive, ratio (2.0 per ready agent) and predictive modes; the
VICIdial adaptive dial level (HARD_LIMIT and TAPERED, see baselines/vicidial.py); and the
physical ceiling talk / (talk + wrap).  Every policy sees the same customers (same seeds).
Numbers are means over seeds; `ab max` is the worst single seed.
"""

from __future__ import annotations

import argparse
import heapq
import json
import statistics
import sys
import timeit
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines.oracle import (
    AGENTS_KNOWN,
    FATES_KNOWN,
    busy_agents_free_at,
    reaches_agent,
    simulate_oracle,
)
from baselines.vicidial import VicidialAdaptive
from rich.console import Console
from rich.table import Table

from dialerd.pacing import AgentCycle, DialOutcome, Floor, Pacer, create_pacer
from dialerd.pacing.predictive import PredictivePacer
from dialerd.pacing.settings import parse_settings
from dialerd.pacing.sim import Result, Scenario, _Customer, _Run, simulate
from dialerd.pacing.simple import room

POLICIES: dict[str, Callable[[], Pacer]] = {
    "progressive": lambda: create_pacer("progressive"),
    "ratio 2.0": lambda: create_pacer("ratio", {"ratio": 2.0}),
    "vicidial hard": lambda: VicidialAdaptive("ADAPT_HARD_LIMIT"),
    "vicidial tapered": lambda: VicidialAdaptive("ADAPT_TAPERED"),
    "predictive": lambda: create_pacer("predictive"),
}
# Fewer agents: longer shifts and more seeds, so each floor sees a comparable number of
# live answers (the abandon rate of a 5-agent floor is noisy otherwise).
HOURS = {5: 8.0, 20: 3.0, 100: 1.0}
SEEDS = {5: 8, 20: 4, 100: 3}


def grid(quick: bool) -> list[Scenario]:
    """agents x live rate x talk shape x (stationary, drifting); --quick keeps a corner."""
    talks = ("medium",) if quick else ("short", "long", "heavy")
    drifts = (False, True)
    out = []
    for agents in (5, 20, 100):
        for live in (0.15, 0.30, 0.50):
            for talk in talks:
                for drift in drifts:
                    hours = HOURS[agents] / (2 if quick else 1)
                    out.append(Scenario(agents, live, talk, drift, duration=hours * 3600))
    return out


ORACLES = (AGENTS_KNOWN, FATES_KNOWN)  # references that peek at the simulator, see --oracle
CLAIRVOYANT = "clairvoyant"  # knows every customer before dialing, see --oracle


class Clairvoyant:
    """Knows the future: every customer's fate, ring, screening and talk time before it
    is dialed, and when every busy agent will be ready.  Not a dialer (no dialer knows
    who will pick up); a witness for what the floor physically allows.

    Rule: launch the next customers of the list in order; one that will not reach an
    agent costs nothing but a line, so it goes at once; one that will is launched as soon
    as an agent is sure to be free by its connect deadline (the earliest such moment
    wastes the least agent time), otherwise dialing pauses until it is.  Where even this
    stays under a target, no policy that sees less can reach it (up to the greedy
    matching's own slack); where it reaches it, the gap is the price of not knowing.
    """

    mode = "clairvoyant"

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.max_ratio = parse_settings("predictive", None).max_ratio  # the same lines

    def record(self, event: DialOutcome | AgentCycle) -> None:
        """Learns nothing: it already knows."""

    def plan(self, floor: Floor) -> int:
        run, now = self.run, floor.now
        sc = run.sc
        free = [now] * floor.agents_ready + busy_agents_free_at(run)  # as a heap
        heapq.heapify(free)
        pending = [  # calls in flight that will reach an agent: (surface, deadline, talk)
            (launched + c.ring + c.amd, _deadline(launched, c, sc), c.talk)
            for call, (launched, c) in run.calls.items()
            if reaches_agent(c, sc)
        ]
        for surface, deadline, talk in sorted(pending):
            _take(free, surface, deadline, talk, sc.wrap_mean)
        state = run.customers.getstate()
        limit, n = room(floor, self.max_ratio), 0
        try:
            while n < limit:
                c = run.customer(now)
                if reaches_agent(c, sc):
                    if not free or free[0] > _deadline(now, c, sc) - 0.05:
                        break
                    _take(free, now + c.ring + c.amd, _deadline(now, c, sc), c.talk, sc.wrap_mean)
                n += 1
        finally:
            run.customers.setstate(state)
        return n


def _deadline(launched: float, c: _Customer, sc: Scenario) -> float:
    return launched + c.ring + c.greeting + sc.connect_deadline


def _take(free: list[float], surface: float, deadline: float, talk: float, wrap: float) -> None:
    """Give the call the agent free soonest, if that is before its deadline."""
    if free and free[0] <= deadline:
        start = max(surface, heapq.heappop(free))
        heapq.heappush(free, start + talk + wrap)


def simulate_clairvoyant(scenario: Scenario, seed: int) -> Result:
    run = _Run(scenario, create_pacer("preview"), seed, CLAIRVOYANT)
    run.pacer = Clairvoyant(run)
    return run.run()


def run_one(job: tuple[Scenario, str, int]) -> Result:
    scenario, policy, seed = job
    if policy in ORACLES:
        return simulate_oracle(scenario, seed, knows_fates=policy == FATES_KNOWN)
    if policy == CLAIRVOYANT:
        return simulate_clairvoyant(scenario, seed)
    return simulate(scenario, POLICIES[policy](), seed, policy)


def summarise(scenario: Scenario, policy: str, results: list[Result]) -> dict[str, Any]:
    occupancy = statistics.fmean(r.occupancy for r in results)
    return {
        "scenario": scenario.name,
        "policy": policy,
        "agents": scenario.agents,
        "live_rate": scenario.live_rate,
        "talk": scenario.talk,
        "drift": scenario.drift,
        "seeds": len(results),
        "occupancy": occupancy,
        "abandon_rate": statistics.fmean(r.abandon_rate for r in results),
        "abandon_max": max(r.abandon_rate for r in results),
        "fraction_of_ceiling": occupancy / scenario.ceiling,
        "mean_wait": statistics.fmean(r.mean_wait for r in results),
        "p95_wait": statistics.fmean(r.p95_wait for r in results),
        "connects_per_agent_hour": statistics.fmean(r.connects_per_agent_hour for r in results),
        "live_answers": sum(r.live for r in results),
    }


def ceiling_row(scenario: Scenario) -> dict[str, Any]:
    return {
        "scenario": scenario.name,
        "policy": "ceiling",
        "agents": scenario.agents,
        "live_rate": scenario.live_rate,
        "talk": scenario.talk,
        "drift": scenario.drift,
        "seeds": 0,
        "occupancy": scenario.ceiling,
        "abandon_rate": 0.0,
        "abandon_max": 0.0,
        "fraction_of_ceiling": 1.0,
        "mean_wait": 0.0,
        "p95_wait": 0.0,
        "connects_per_agent_hour": None,
        "live_answers": 0,
    }


def verdict(rows: dict[str, dict[str, Any]], scenario: Scenario) -> dict[str, Any]:
    """The issue's targets for one scenario, judged on the predictive row.

    A relative target can be out of reach of any policy: progressive already at 0.90 of
    the ceiling cannot be beaten by 1.25x.  Such targets are listed in `infeasible` (still
    reported as missed when missed), judged from the ceiling itself.
    """
    p, prog = rows["predictive"], rows["progressive"]
    ceiling = scenario.ceiling
    out: dict[str, Any] = {
        "abandon_ok": p["abandon_rate"] <= 0.030 and p["abandon_max"] <= 0.040,
        "vs_progressive": p["occupancy"] / prog["occupancy"],
        "infeasible": [],
    }
    if scenario.agents >= 20:
        # Compared with the HARD_LIMIT method: TAPERED ignores the cap until late in the
        # day (by design), so at 10-60x the abandon rate its occupancy is no yardstick.
        vici = rows["vicidial hard"]
        out["ceiling_ok"] = p["fraction_of_ceiling"] >= 0.88
        out["vs_vicidial"] = p["occupancy"] / vici["occupancy"]
        out["vicidial_ok"] = (
            out["vs_vicidial"] >= 1.15 and p["abandon_rate"] <= vici["abandon_rate"]
        )
        out["progressive_ok"] = out["vs_progressive"] >= 1.25
        if ceiling < 1.15 * vici["occupancy"]:
            out["infeasible"].append("vicidial_ok")
        if ceiling < 1.25 * prog["occupancy"]:
            out["infeasible"].append("progressive_ok")
    else:
        out["gain_pp"] = 100 * (p["occupancy"] - prog["occupancy"])
        out["small_ok"] = out["gain_pp"] >= 8.0 and out["vs_progressive"] >= 1.08
        if ceiling < max(prog["occupancy"] + 0.08, 1.08 * prog["occupancy"]):
            out["infeasible"].append("small_ok")
    return out


def _why_missed(target: str, judged: dict[str, Any], informed: dict[str, Any]) -> str:
    """Tag a missed target: above the ceiling itself, or missed even knowing the agents."""
    if target in judged["infeasible"]:
        return " (infeasible)"
    if informed and not informed[target]:
        return " (even knowing agents)"
    return ""


def plan_cost_us() -> float:
    """Cost of one predictive `plan` at 100 agents and 300 calls in flight, warmed up."""
    pacer = create_pacer("predictive", {"max_ratio": 4.0})
    assert isinstance(pacer, PredictivePacer)
    simulate(Scenario(100, 0.15, duration=900), pacer, 99)
    floor = Floor(
        now=1000.0,
        agents_ready=5,
        agents_talking=tuple(3.7 * i % 400 for i in range(85)),
        agents_wrapping=tuple(0.9 * i % 15 for i in range(10)),
        calls_dialing=tuple(0.07 * i % 21 for i in range(300)),
        calls_waiting=0,
    )
    pacer.plan(floor)
    # Many short repeats and the best one: on a shared machine a long repeat is almost
    # always preempted, which measures the neighbours rather than plan().
    runs = 200
    best = min(timeit.repeat(lambda: pacer.plan(floor), number=runs, repeat=100))
    return best / runs * 1e6


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small grid, short shifts")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of tables")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per scenario (all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--oracle",
        action="store_true",
        help=f"add the {', '.join(ORACLES)} and {CLAIRVOYANT} references (not baselines)",
    )
    args = parser.parse_args()
    scenarios = grid(args.quick)

    def seeds(sc: Scenario) -> int:
        return args.seeds or (2 if args.quick else SEEDS[sc.agents])

    policies = [*POLICIES, *([*ORACLES, CLAIRVOYANT] if args.oracle else [])]
    jobs = [(sc, pol, seed) for sc in scenarios for pol in policies for seed in range(seeds(sc))]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(run_one, jobs, chunksize=4))
    by_key: dict[tuple[str, str], list[Result]] = {}
    for (sc, pol, _), res in zip(jobs, results, strict=True):
        by_key.setdefault((sc.name, pol), []).append(res)
    cost = plan_cost_us()
    console = Console(width=180)
    # target -> [met, judged, out of reach, met knowing the agents, met by the clairvoyant]
    tally: dict[str, list[int]] = {}
    summary = Table(title="Predictive vs targets (per scenario)")
    for col in (
        "scenario",
        "ab mean",
        "ab max",
        "of ceiling",
        "x vici hard",
        "x progressive",
        "+pp progr.",
        *(["agents kn.", "fates kn.", "clairv."] if args.oracle else []),
        "met",
    ):
        summary.add_column(col, justify="right" if col != "scenario" else "left")
    for sc in scenarios:
        rows = {pol: summarise(sc, pol, by_key[(sc.name, pol)]) for pol in policies}
        rows["ceiling"] = ceiling_row(sc)
        judged = verdict(rows, sc)
        # The same targets judged on the clairvoyant: where it meets one, that target is
        # physically reachable on this floor and only information stands in the way.
        witness = verdict({**rows, "predictive": rows[CLAIRVOYANT]}, sc) if args.oracle else {}
        # ... and on the oracle told when every agent will be free: where even it misses,
        # no agent model can close the gap; only knowing who will pick up could.
        informed = verdict({**rows, "predictive": rows[AGENTS_KNOWN]}, sc) if args.oracle else {}
        if args.json:
            targets = {"predictive": judged, AGENTS_KNOWN: informed, CLAIRVOYANT: witness}
            for row in rows.values():
                extra = {"targets": targets[row["policy"]]} if row["policy"] in targets else {}
                print(json.dumps({**row, **extra}))
            continue
        table = Table(title=f"{sc.name}  ({seeds(sc)} seeds x {sc.duration / 3600:g} h)")
        for col in (
            "policy",
            "occupancy",
            "abandon",
            "ab max",
            "of ceiling",
            "wait mean",
            "wait p95",
            "connects/agent-h",
        ):
            table.add_column(col, justify="left" if col == "policy" else "right")
        for row in rows.values():
            table.add_row(
                row["policy"],
                f"{row['occupancy']:.3f}",
                f"{row['abandon_rate']:.2%}",
                f"{row['abandon_max']:.2%}",
                f"{row['fraction_of_ceiling']:.3f}",
                f"{row['mean_wait']:.1f}",
                f"{row['p95_wait']:.1f}",
                fmt(row["connects_per_agent_hour"], ".1f"),
            )
        console.print(table)
        p = rows["predictive"]
        for key, ok in judged.items():
            if key.endswith("_ok"):
                counts = tally.setdefault(key, [0, 0, 0, 0, 0])
                counts[0] += bool(ok)
                counts[1] += 1
                counts[2] += key in judged["infeasible"]
                counts[3] += bool(informed.get(key))
                counts[4] += bool(witness.get(key))
        missed = [
            k + _why_missed(k, judged, informed)
            for k, v in judged.items()
            if k.endswith("_ok") and not v
        ]
        summary.add_row(
            sc.name,
            f"{p['abandon_rate']:.2%}",
            f"{p['abandon_max']:.2%}",
            f"{p['fraction_of_ceiling']:.3f}",
            fmt(judged.get("vs_vicidial"), ".2f"),
            f"{judged['vs_progressive']:.2f}",
            fmt(judged.get("gain_pp"), ".1f"),
            *(
                [f"{rows[ref]['fraction_of_ceiling']:.3f}" for ref in (*ORACLES, CLAIRVOYANT)]
                if args.oracle
                else []
            ),
            "all" if not missed else "missed: " + ", ".join(missed),
        )
    if args.json:
        print(json.dumps({"plan_cost_us": cost, "agents": 100, "calls_in_flight": 300}))
        return
    console.print(summary)
    for key, (met, judged_n, unreachable, informed_n, witnessed) in tally.items():
        seen = (
            f"; knowing the agents meets it in {informed_n}, the clairvoyant in {witnessed}"
            if args.oracle
            else ""
        )
        console.print(
            f"{key}: met in {met}/{judged_n} scenarios ({unreachable} out of reach{seen})"
        )
    console.print(f"predictive plan(): {cost:.1f} µs per call at 100 agents / 300 in flight")


if __name__ == "__main__":
    main()
