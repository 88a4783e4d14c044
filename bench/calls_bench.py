"""Call-load benchmark: ramp `hotline call --count N` against a node until calls fail.

Run by hand::

    .venv/bin/python bench/calls_bench.py --workers 10 --steps 10 20 --hold 20
    .venv/bin/python bench/calls_bench.py --uri sip:12348@127.0.0.1:5060 \
        --db var/hotline.db --serve-pid 1234 --steps 10 20 40 80

Without ``--uri`` it starts its own `hotline serve` (K workers, free ports, a temporary
folder, like tests/telephony/test_e2e.py) and stops it at the end. For each N it places N calls
at ``--rate`` calls/s, each holding ``--hold`` seconds (keys ``--digits``, default "0": the
caller asks for an operator and waits in the queue with hold music, so every call stays up and
recorded for the whole hold), then prints: confirmed/failed, INVITE→200 setup p50/p95, how
many recordings in the ledger are closed and at least 95 % of the hold long, and CPU (% of one
core, averaged over the step) and peak RSS of the media workers, Kamailio, the coordinator and
the callers, read from /proc. It stops after the first step with a failed call or a short
recording. Asserts nothing; the caller processes run on the same cores as the node.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
GROUPS = ("workers", "kamailio", "coordinator", "callers")


# --- /proc -------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, utime+stime ticks) of a process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def _rss(pid: int) -> int:
    """Resident set size in bytes (VmRSS from /proc/<pid>/status)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _pgrep(*args: str) -> list[int]:
    out = subprocess.run(["pgrep", *args], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st:
                children.setdefault(st[0], []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def node_processes(serve_pid: int | None) -> dict[str, list[int]]:
    """The node's processes by role: pgrep's candidates, kept to serve_pid's tree if known."""
    tree = set(_descendants(serve_pid)) if serve_pid else None
    workers = _pgrep("-f", "hotline.telephony.worker")
    kamailio = _pgrep("-x", "kamailio")
    if tree is not None:
        workers = [p for p in workers if p in tree]
        kamailio = [p for p in kamailio if p in tree]
    return {"workers": workers, "kamailio": kamailio,
            "coordinator": [serve_pid] if serve_pid else []}


class Sampler:
    """CPU ticks and peak RSS per group of processes, sampled twice a second during a step.

    Processes already running at the start count from their ticks then; processes that appear
    later (the callers) count from zero. A process that exits between samples loses its last
    half second, so the callers' figure is a slight underestimate.
    """

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.callers_root: int | None = None
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.owner: dict[int, str] = {}
        self.peak = dict.fromkeys(GROUPS, 0)
        self.t0 = time.monotonic()
        self._sample(initial=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _pids(self) -> dict[str, list[int]]:
        pids = {g: list(self.groups.get(g, [])) for g in GROUPS}
        if self.callers_root is not None:
            pids["callers"] = _descendants(self.callers_root)
        return pids

    def _sample(self, initial: bool = False) -> None:
        for group, pids in self._pids().items():
            rss = 0
            for pid in pids:
                st = _stat(pid)
                if st is None:
                    continue
                self.first.setdefault(pid, st[1] if initial else 0)
                self.last[pid] = st[1]
                self.owner[pid] = group
                rss += _rss(pid)
            self.peak[group] = max(self.peak[group], rss)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def stop(self) -> dict[str, tuple[float, int]]:
        """{group: (CPU % of one core over the step, peak RSS bytes)}."""
        self._stop.set()
        self._thread.join()
        self._sample()
        wall = time.monotonic() - self.t0
        used = dict.fromkeys(GROUPS, 0)
        for pid, group in self.owner.items():
            used[group] += self.last[pid] - self.first[pid]
        return {g: (100 * used[g] / TICKS / wall, self.peak[g]) for g in GROUPS}


# --- a node of our own -------------------------------------------------------------------------


def free_block(size: int) -> int:
    """A base port with ``size`` consecutive free UDP and TCP ports on loopback."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + size > 65000:
            continue
        held = []
        try:
            for port in range(base, base + size):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    held.append(s)
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
        return base
    raise RuntimeError("no free port block on loopback")


def start_node(folder: Path, workers: int, queue_wait: int,
               legs_per_call: int = 4) -> tuple[subprocess.Popen, str, Path]:
    flows = folder / "ivr_flows"
    shutil.copytree(ROOT / "ivr_flows", flows)
    sip, api = free_block(1), free_block(1)
    db = folder / "var" / "hotline.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update({
        "HOTLINE_PATHS_FLOWS": str(flows), "HOTLINE_PATHS_VAR": str(folder / "var"),
        "HOTLINE_PATHS_RECORDINGS": str(folder / "rec"),
        "HOTLINE_DATABASE_URL": f"sqlite:///{db}", "HOTLINE_API_PORT": str(api),
        "HOTLINE_SIP_PORT": str(sip), "HOTLINE_TELEPHONY_WORKERS": str(workers),
        "HOTLINE_TELEPHONY_WORKER_SIP_PORT_BASE": str(free_block(workers)),
        "HOTLINE_TELEPHONY_RTP_PORT_BASE": str(free_block(40 * workers)),
        "HOTLINE_TELEPHONY_QUEUE_WAIT": str(queue_wait),
        "HOTLINE_TELEPHONY_LEGS_PER_CALL": str(legs_per_call),
        # The callers share loopback: hundreds of calls from one address are a flood.
        "HOTLINE_SIP_TRUSTED": '["127.0.0.1"]',
    })
    subprocess.run([sys.executable, "-m", "hotline", "db", "upgrade"], cwd=folder, env=env,
                   check=True, capture_output=True)
    log = (folder / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "hotline", "serve"], cwd=folder, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"hotline serve did not start:\n{(folder / 'serve.log').read_text()}")
        try:
            httpx.get(f"http://127.0.0.1:{api}/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    return proc, f"sip:12348@127.0.0.1:{sip}", db


# --- the ledger --------------------------------------------------------------------------------


def last_call_id(engine) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT coalesce(max(id), 0) FROM calls")).scalar() or 0


def recordings(engine, after_id: int, calls: int, hold: float, timeout: float = 30.0):
    """(calls ended, recordings closed, recordings ≥ 95 % of hold) for calls after after_id."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as c:
            ended = c.execute(text("SELECT count(*) FROM calls WHERE id > :a AND ended_at "
                                   "IS NOT NULL"), {"a": after_id}).scalar()
            rows = c.execute(text("SELECT r.closed_at, r.duration_s FROM recordings r "
                                  "JOIN calls c ON r.call_id = c.id WHERE c.id > :a"),
                             {"a": after_id}).all()
        closed = sum(1 for r in rows if r.closed_at is not None)
        full = sum(1 for r in rows if r.closed_at is not None and (r.duration_s or 0)
                   >= 0.95 * hold)
        if (ended >= calls and closed >= len(rows)) or time.monotonic() > deadline:
            return ended, closed, full
        time.sleep(0.5)


# --- the ramp ----------------------------------------------------------------------------------


def run_step(args, uri: str, n: int, groups: dict[str, list[int]], folder: Path):
    report = folder / f"step-{n}.json"
    cmd = [sys.executable, "-m", "hotline", "call", uri, "--count", str(n), "--rate",
           str(args.rate), "--hold", str(args.hold), "--digits", args.digits, "--quiet",
           "--json", str(report)]
    sampler = Sampler(groups)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    sampler.callers_root = proc.pid
    out, err = proc.communicate()
    usage = sampler.stop()
    if not report.exists():
        sys.exit(f"hotline call failed (exit {proc.returncode}):\n{out}\n{err}")
    return json.loads(report.read_text()), usage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uri", help="call a running node (default: start one)")
    parser.add_argument("--db", help="that node's SQLite file or database URL, for recordings")
    parser.add_argument("--serve-pid", type=int, help="that node's `hotline serve` pid")
    parser.add_argument("--workers", type=int, default=10, help="workers of our own node")
    parser.add_argument("--legs-per-call", type=int, default=4,
                        help="legs kept per admitted call (4: one caller per worker with the "
                             "PyPI wheel; 1: four IVR-only callers per worker)")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--hold", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--digits", default="0")
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between steps")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (node log, ledger, recordings)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="calls-bench-"))
    node = None
    try:
        if args.uri:
            uri, db_url, serve_pid = args.uri, args.db, args.serve_pid
            if serve_pid is None:
                found = [p for p in _pgrep("-f", "hotline serve")
                         if "hotline serve" in _cmdline(p) or " serve" in _cmdline(p)]
                serve_pid = found[0] if len(found) == 1 else None
        else:
            queue_wait = int(args.hold + 60)  # callers wait in the queue for the whole hold
            node, uri, db = start_node(folder, args.workers, queue_wait,
                                        args.legs_per_call)
            db_url, serve_pid = str(db), node.pid
            print(f"node: {args.workers} workers ({args.workers * max(1, 4 // args.legs_per_call)} "
                  f"inbound calls), {uri}, "
                  f"{folder}")
        engine = None
        if db_url:
            engine = create_engine(db_url if "://" in db_url else f"sqlite:///{db_url}")
        groups = node_processes(serve_pid)
        print(f"processes: {len(groups['workers'])} workers, {len(groups['kamailio'])} "
              f"kamailio, coordinator {serve_pid or '?'}; hold {args.hold:g} s, "
              f"rate {args.rate:g}/s, digits {args.digits!r}")
        for n in args.steps:
            before = last_call_id(engine) if engine is not None else 0
            data, usage = run_step(args, uri, n, groups, folder)
            setup = data["setup_ms"]
            line = (f"N={n:<4} confirmed {data['confirmed']}/{n} failed {data['failed']} "
                    f"statuses {data['statuses']} setup p50 {setup['p50'] or 0:.1f} ms "
                    f"p95 {setup['p95'] or 0:.1f} ms max {setup['max'] or 0:.1f} ms")
            short = 0
            if engine is not None:
                ended, closed, full = recordings(engine, before, data["confirmed"], args.hold)
                short = data["confirmed"] - full
                line += f" | ledger: {ended} ended, recordings {closed} closed, {full} full"
            print(line)
            print("       " + " | ".join(
                f"{g} CPU {usage[g][0]:.1f}% RSS {usage[g][1] / 2**20:.0f} MB" for g in GROUPS))
            sys.stdout.flush()
            if data["failed"] or short:
                print(f"stopping: {data['failed']} failed calls, {short} short recordings")
                break
            time.sleep(args.pause)
    finally:
        if node is not None:
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(60)
            except subprocess.TimeoutExpired:
                node.kill()
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
