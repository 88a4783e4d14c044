"""Routing benchmark: how long the pure router takes to decide, at a provincial scale.

Run by hand::

    .venv/bin/python bench/acd_bench.py [--lawyers 1000] [--calls 5000] [--queues 20]
        [--rounds 50]

Builds random queues (each with escalation steps), lawyers (skills with proficiency,
languages, about a third free) and waiting callers (priorities, languages, waits up to
10 minutes), then times ``route()`` — one decision over everybody — ``--rounds`` times,
each round with a fresh random set of free lawyers, and prints p50 / p99 / max and the
offers per round. Asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from hotline.acd.agents import Agent
from hotline.acd.router import EscalationStep, QueueSpec, WaitingCall, route
from hotline.domain import AgentState, AgentStatus, Language, Priority, QueueStrategy

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
LANGS = [Language.MANDARIN] * 6 + [Language.HUBEI, Language.SOUTHWESTERN, Language.CANTONESE]


def build(rng: random.Random, lawyers: int, calls: int, queues: int):
    skills = [f"s{i}" for i in range(queues)]
    # The single-pick strategies (ring-all at this scale rings every eligible lawyer).
    strategies = [q for q in QueueStrategy
                  if q not in (QueueStrategy.RING_ALL, QueueStrategy.RING_PROGRESSIVELY)]
    specs = {"general": QueueSpec("general", ("s0",), QueueStrategy.LONGEST_IDLE_AGENT)}
    for i, skill in enumerate(skills[1:], start=1):
        specs[skill] = QueueSpec(skill, (skill,), strategies[i % len(strategies)],
                                 min_proficiency=3,
                                 steps=(EscalationStep(30, min_proficiency=1),
                                        EscalationStep(60, queues=("general",)),
                                        EscalationStep(120, any_lawyer=True)))
    agents = [Agent(f"L{i}", skills={s: rng.randint(1, 5) for s in rng.sample(skills, 3)},
                    languages=frozenset({Language.MANDARIN, rng.choice(LANGS)}),
                    status=AgentStatus.AVAILABLE, order=i,
                    since=NOW - timedelta(seconds=rng.randint(0, 3600)),
                    calls=rng.randint(0, 40), talk_seconds=rng.uniform(0, 9000))
              for i in range(lawyers)]
    waiting = [WaitingCall(f"C{i}", rng.choice(list(specs)),
                           NOW - timedelta(seconds=rng.randint(0, 600)),
                           rng.choice([Priority.NORMAL] * 8 + [Priority.GREEN, Priority.URGENT]),
                           rng.choice(LANGS))
               for i in range(calls)]
    return specs, agents, waiting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lawyers", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--free", type=float, default=0.3, help="share of lawyers free")
    args = parser.parse_args()
    rng = random.Random(12348)
    specs, agents, waiting = build(rng, args.lawyers, args.calls, args.queues)
    times, offers = [], []
    for _ in range(args.rounds):
        pool = [a if rng.random() < args.free else
                Agent(a.id, a.skills, a.languages, a.status, AgentState.IN_CALL,
                      order=a.order, since=a.since) for a in agents]
        start = time.perf_counter()
        made, _ = route(specs, pool, waiting, NOW)
        times.append((time.perf_counter() - start) * 1000)
        offers.append(len(made))
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"{args.lawyers} lawyers ({args.free:.0%} free), {args.calls} waiting calls, "
          f"{args.queues} queues, {args.rounds} decisions")
    print(f"route(): p50 {statistics.median(times):.1f} ms, p99 {p99:.1f} ms, "
          f"max {times[-1]:.1f} ms; offers per decision {statistics.mean(offers):.0f}")


if __name__ == "__main__":
    main()
