"""IVR benchmark: validation time of the shipped flows and engine throughput.

Run by hand: ``.venv/bin/python bench/ivr_bench.py [--calls 2000]``. Prints figures; asserts
nothing. The engine runs on the coordinator's event loop, so its cost per event bounds how
many concurrent IVR calls one coordinator can drive.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path

from hotline import commands as cmd
from hotline import events as ev
from hotline.callers import CallerFacts
from hotline.config import load_settings
from hotline.ivr.engine import IvrSession
from hotline.ivr.validate import check_folder

ROOT = Path(__file__).resolve().parents[1]


def drive(fs, flow: str, rng: random.Random, at: datetime) -> int:
    """One caller with random keys until the session ends; returns events handled."""
    session = IvrSession(fs, flow, CallerFacts(number="13800000000"), at.tzinfo)
    now = at
    step = session.start(now)
    events = 0
    token = 0
    while not session.done and events < 500:
        for c in step.commands:
            if isinstance(c, cmd.Play):
                token = c.token
        now += timedelta(seconds=1)
        wait = session.waiting_for
        if wait == "play":
            event: ev.IvrEvent = ev.PlaybackFinished(token)
        elif wait == "digits":
            event = ev.DigitReceived(rng.choice("0123456789*#")) if rng.random() < 0.7 \
                else ev.TimerFired()
            if isinstance(event, ev.TimerFired):
                now = session.deadline or now
        elif wait == "queue":
            event = ev.QueueAnswered("1001") if rng.random() < 0.8 else ev.QueueOverflow("x")
        elif wait == "agent":
            event = ev.AgentLeft()
        elif wait == "record":
            event = ev.RecordingFinished(token, 10.0)
        else:
            event = ev.CallerHungUp()
        step = session.handle(event, now)
        events += 1
    return events


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    settings = load_settings(environ={})
    root = ROOT / "ivr_flows"

    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        fs, problems = check_folder(root, settings)
        times.append(time.perf_counter() - t0)
    assert not problems
    nodes = sum(len(f.nodes) for f in fs.flows.values())
    print(f"flows check: {len(fs.flows)} flows, {nodes} nodes: "
          f"median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")

    rng = random.Random(12348)
    at = datetime(2026, 12, 1, 10, 0, tzinfo=settings.tz)
    total_events = 0
    t0 = time.perf_counter()
    for i in range(args.calls):
        total_events += drive(fs, ("main", "sme", "after_hours")[i % 3], rng, at)
    elapsed = time.perf_counter() - t0
    print(f"engine: {args.calls} calls, {total_events} events in {elapsed:.2f} s: "
          f"{total_events / elapsed:,.0f} events/s, {elapsed / total_events * 1e6:.1f} µs/event, "
          f"{args.calls / elapsed:,.0f} whole calls/s (one core)")

    tracemalloc.start()
    sessions = [IvrSession(fs, "main", CallerFacts(number="13800000000"), settings.tz)
                for _ in range(1000)]
    for s in sessions:
        s.start(at)
    current, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"memory: {current / len(sessions) / 1024:.1f} KiB per live session")


if __name__ == "__main__":
    main()
