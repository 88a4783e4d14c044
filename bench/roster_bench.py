"""Roster benchmark: how long CP-SAT takes to roster a month, and to re-plan after a drop-out.

Run by hand::

    .venv/bin/python bench/roster_bench.py [--lawyers 30,60,120] [--time-limit 60]
        [--workers 2] [--seed 12348]

For each pool size: December 2026 (31 days) on one line with three 8-hour shifts — N 00–08
(night), D 08–16, E 16–24 — needing 3 / 5 / 4 lawyers with labour, marriage-family and
contract minimums and a Cantonese speaker by day (372 seats); lawyers with random but seeded
skills, dialects, firms, wishes and a few leave days. Prints the status, objective, bound,
seconds and fairness figures of ``solve()``, then the re-plan after the busiest lawyer of the
second week (7–13 December) drops out for that week: seconds, status and changes. Asserts
nothing.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

from hotline.domain import Language
from hotline.roster.model import (
    DAY_KINDS,
    Lawyer,
    Line,
    Need,
    Period,
    Problem,
    Rules,
    ShiftTemplate,
    Templates,
    expand,
    month_days,
)
from hotline.roster.rules import violations
from hotline.roster.solver import RosterModel, solve

TZ = ZoneInfo("Asia/Shanghai")
EVERY = DAY_KINDS
SKILLS = ["labor", "marriage_family", "contract", "inheritance", "traffic", "debt"]
FIRMS = ["楚天", "江城", "汉水", "东湖", "珞珈"]
WEEK2 = [date(2026, 12, d) for d in range(7, 14)]


def templates() -> Templates:
    lines = {"main": Line("main", "主线")}
    return Templates(lines, (
        ShiftTemplate("N", "夜班", "main", clock(0), clock(8),
                      dict.fromkeys(EVERY, Need(3, {"labor": 1})), night=True),
        ShiftTemplate("D", "白班", "main", clock(8), clock(16), dict.fromkeys(EVERY, Need(
            5, {"labor": 2, "marriage_family": 1, "contract": 1},
            {Language.CANTONESE: 1}, min_proficiency=2))),
        ShiftTemplate("E", "晚班", "main", clock(16), clock(0),
                      dict.fromkeys(EVERY, Need(4, {"labor": 1, "marriage_family": 1}))),
    ))


def lawyers(rng: random.Random, n: int) -> list[Lawyer]:
    out = []
    for i in range(n):
        skills = {s: rng.randint(1, 5) for s in rng.sample(SKILLS, rng.randint(1, 3))}
        if i % 3 == 0:  # every third lawyer is a labour specialist
            skills["labor"] = rng.randint(3, 5)
        dialects = {Language.CANTONESE} if rng.random() < 0.2 else set()
        leave: tuple[Period, ...] = ()
        if rng.random() < 0.2:
            start = datetime(2026, 12, rng.randint(1, 28), tzinfo=TZ)
            leave = (Period(start, start + timedelta(days=rng.randint(1, 3)), "年假"),)
        out.append(Lawyer(
            f"L{i + 1:03d}", f"律师{i + 1}", rng.choice(FIRMS), skills,
            frozenset({Language.MANDARIN}) | dialects,
            max_shifts=rng.choice([None, None, 16, 18]),
            max_consecutive_nights=rng.choice([None, 2]),
            unavailable=leave,
            prefer=frozenset(rng.sample(["D", "E", "N", "sat"], rng.randint(0, 1))),
            avoid=frozenset(rng.sample(["N", "sun", "mon"], rng.randint(0, 1)))))
    return out


def show(figures: Mapping[str, float]) -> str:
    keys = ["shifts_min", "shifts_max", "shifts_spread", "nights_spread", "weekends_spread",
            "firm_share_deviation", "preferred_hits", "avoided_hits", "continuity_changes"]
    return ", ".join(f"{k} {figures[k]:g}" for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lawyers", default="30,60,120", help="pool sizes, comma-separated")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per solve")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=12348)
    args = parser.parse_args()
    slots = tuple(expand(templates(), month_days(2026, 12), TZ))
    seats = sum(s.need.lawyers for s in slots)
    print(f"December 2026: {len(slots)} shifts, {seats} seats; time limit {args.time_limit:g} s, "
          f"{args.workers} workers")
    for n in (int(x) for x in args.lawyers.split(",")):
        pool = lawyers(random.Random(args.seed + n), n)
        problem = Problem(slots, tuple(pool), templates().lines, Rules())
        started = time.perf_counter()
        built = RosterModel(problem)
        built.add_objective()
        size = len(built.model.proto.variables), len(built.model.proto.constraints)
        model_seconds = time.perf_counter() - started
        print(f"\n{n} lawyers: model {size[0]} variables, {size[1]} constraints "
              f"(built in {model_seconds:.2f} s)")
        first = solve(problem, time_limit=args.time_limit, workers=args.workers,
                      seed=args.seed)
        broken = len(violations(problem, first.assignments))
        print(f"  solve:   {first.status}, objective {first.objective:g}, bound "
              f"{first.bound:g}, {first.seconds:.1f} s, {broken} violations")
        print(f"           {show(first.figures)}")
        slot_of = {s.id: s for s in slots}
        busiest = max(pool, key=lambda x: sum(
            1 for a in first.assignments
            if a.work_id == x.work_id and slot_of[a.slot_id].date in WEEK2))
        lost = sum(1 for a in first.assignments
                   if a.work_id == busiest.work_id and slot_of[a.slot_id].date in WEEK2)
        away = Period(datetime(2026, 12, 7, tzinfo=TZ), datetime(2026, 12, 14, tzinfo=TZ), "病假")
        dropped = replace(busiest, unavailable=busiest.unavailable + (away,))
        replan = replace(problem, previous=first.assignments,
                         lawyers=tuple(dropped if x is busiest else x for x in pool))
        second = solve(replan, time_limit=args.time_limit, workers=args.workers,
                       seed=args.seed)
        broken = len(violations(replan, second.assignments))
        print(f"  re-plan: {busiest.work_id} out 7–13 Dec ({lost} shifts): {second.status}, "
              f"{second.changes} changes, objective {second.objective:g}, bound "
              f"{second.bound:g}, {second.seconds:.1f} s, {broken} violations")
        print(f"           {show(second.figures)}")


if __name__ == "__main__":
    main()
