"""The built-in SIP caller behind ``hotline call``: scripted pjsua2 calls, one or many.

An administrator (or a test, or ``bench/calls_bench.py``) places calls to a running node the
way a phone would, with RFC 2833 keys on a fixed timeline, an optional voice and a recording
of what the caller hears. The timeline and the measurements are defined in
:mod:`hotline.telephony.callplan`; this module carries them out.

Processes: the PyPI pjsua2 wheel carries at most :data:`LEGS_PER_PROCESS` calls per process,
so a batch larger than that runs in child processes::

    python -m hotline.telephony.caller --plan PLAN_JSON --result RESULT.json

four calls each, each with its own SIP port (bound to port 0) and RTP range (a free block
from the kernel's ephemeral range). A child prints ``{"ready": true}`` on stdout once its
endpoint is up, waits for ``{"start_at": EPOCH}`` on stdin (``stop`` or the end of its input
hangs everything up), reports its call events as JSON lines on stdout and writes its
results to the ``--result`` file. Children run in their own session: Ctrl-C reaches the
parent only, which tells them to stop.

This module and the worker's (:mod:`~hotline.telephony.pjsua`, :mod:`~hotline.telephony.media`)
are the only ones that import pjsua2. Like there, pjsua2 lives on the main thread only
(``threadCnt = 0``, ``mainThreadOnly``), callbacks catch everything and only record facts,
and objects are released outside callbacks: recorder, player, then call, all before
``libDestroy``. stdout is the timeline's (or the parent's event pipe), so pjlib's start-up
chatter is silenced and fd 1 points at fd 2 while pjsua2 starts and stops.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import json
import logging
import math
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from queue import Empty, Queue
from types import FrameType
from typing import IO, Any

import pjsua2 as pj

from hotline.telephony.callplan import (
    Action,
    CallEvent,
    CallPlan,
    CallResult,
    EndedBy,
    EventKind,
    LegScript,
    Report,
)
from hotline.telephony.pjsua import (
    CODEC_PRIORITIES,
    LogWriter,
    describe_error,
    effective_max_calls,
    endpoint_config,
)

log = logging.getLogger("hotline.caller")
pjlog = logging.getLogger("hotline.pjsip")

# Calls one pjsua2-python process can carry (the wheel's compiled PJSUA_MAX_CALLS).
LEGS_PER_PROCESS = 4
# Longest wait in libHandleEvents; it returns as soon as an event is handled.
POLL_MS = 50
# Seconds to let DISCONNECTED callbacks and the last BYEs complete after hanging up.
HANGUP_GRACE = 3.0
# Seconds a child process may take to start its endpoint.
CHILD_START_TIMEOUT = 30.0

# --- pjsua2 adapter ------------------------------------------------------------------------

Emit = Callable[[CallEvent], None]


class _Leg(pj.Call):  # type: ignore[misc]  # pjsua2 has no stubs: its classes are Any
    """An outgoing call; its callbacks only write facts into the script and emit events."""

    def __init__(self, account: Any, script: LegScript, engine: CallerEngine) -> None:
        super().__init__(account)
        self.script = script
        self.engine = engine
        self.media: Any = None
        self.media_ready = False
        self.player: Any = None
        self.recorder: Any = None
        self.released = False
        self._early: set[int] = set()

    def onCallState(self, prm: Any) -> None:
        """CONFIRMED, ringing and DISCONNECTED facts."""
        try:
            now = time.monotonic()
            info = self.getInfo()
            script = self.script
            if info.state == pj.PJSIP_INV_STATE_EARLY:
                code = int(info.lastStatusCode)
                if code not in self._early:
                    self._early.add(code)
                    script.responded = True
                    self.engine.emit_now(script, EventKind.RINGING, status=code,
                                         reason=str(info.lastReason))
            elif info.state == pj.PJSIP_INV_STATE_CONFIRMED and script.confirmed_at is None:
                script.confirmed_at = now
                script.responded = True
                script.status, script.reason = 200, "OK"
                placed = script.placed_at if script.placed_at is not None else now
                self.engine.emit_now(script, EventKind.CONFIRMED, status=200, reason="OK",
                                     setup_ms=round((now - placed) * 1000, 3))
            elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED and script.ended_at is None:
                self.media = None
                script.ended(now, int(info.lastStatusCode), str(info.lastReason))
        except Exception:
            log.exception("onCallState failed")

    def onCallTsxState(self, prm: Any) -> None:
        """Any response to the INVITE proves something listens there."""
        try:
            event = prm.e
            if event.type != pj.PJSIP_EVENT_TSX_STATE or self.script.responded:
                return
            tsx = event.body.tsxState.tsx
            if str(tsx.method) == "INVITE" and int(tsx.statusCode) >= 100:
                self.script.responded = True
                if int(tsx.statusCode) == 100:
                    self.engine.emit_now(self.script, EventKind.TRYING, status=100,
                                         reason="Trying")
        except Exception:
            log.exception("onCallTsxState failed")

    def onCallMediaState(self, prm: Any) -> None:
        """Remember the audio port; the engine connects player and recorder outside."""
        try:
            info = self.getInfo()  # keep it: .media points into it
            for media in info.media:
                if (media.type == pj.PJMEDIA_TYPE_AUDIO
                        and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE):
                    self.media = self.getAudioMedia(media.index)
                    self.media_ready = True
                    return
        except Exception:
            log.exception("onCallMediaState failed")


def _short_error(exc: BaseException) -> str:
    """pjsua2's reason without the C call it came from (operators see this)."""
    if isinstance(exc, pj.Error):
        with suppress(Exception):
            return str(exc.reason)
    return describe_error(exc)


def _quiet_pjlib(level: int) -> None:
    """Set pjlib's log level before ``libCreate``, which otherwise logs at level 5.

    pjsua2 has no call for it; the wheel exports pjlib's C function, so use ctypes.
    """
    try:
        lib = ctypes.CDLL(importlib.import_module("pjsua2._pjsua2").__file__)
        lib.pj_log_set_level.argtypes = [ctypes.c_int]
        lib.pj_log_set_level(level)
    except (ImportError, OSError, AttributeError, TypeError):
        log.debug("pj_log_set_level unavailable")


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send fd 1 to fd 2 meanwhile: pjsua2 prints to stdout before its logging is set."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def free_port_block(host: str, size: int) -> int:
    """A base port with ``size`` consecutive free UDP ports (the RTP range of one process).

    The base comes from the kernel's ephemeral range, away from a node's configured RTP
    ranges; pjsua skips a port that gets taken before it binds.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
            base = int(probe.getsockname()[1]) & ~1
        if base + size > 65000:
            continue
        held: list[socket.socket] = []
        try:
            for port in range(base, base + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(sock)
                sock.bind((host, port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return base
    return 0


class CallerEngine:
    """One pjsua2 endpoint placing up to :data:`LEGS_PER_PROCESS` scripted calls.

    Args:
        plan: This process's share of the batch.
        emit: Receives every timeline event, on this thread.
    """

    def __init__(self, plan: CallPlan, emit: Emit) -> None:
        self.plan = plan
        self.emit = emit
        self.ep: Any = None
        self.account: Any = None
        self.sip_port = 0
        self.start = time.monotonic()
        self._writer: LogWriter | None = None
        self._legs: list[_Leg] = []

    def open(self) -> None:
        """Create and start the endpoint (raises pjsua2's Error, e.g. on a bad bind address)."""
        host = self.plan.bind or "0.0.0.0"
        _quiet_pjlib(self.plan.pj_log_level)
        with stdout_to_stderr():
            ep = pj.Endpoint()
            ep.libCreate()
            self.ep = ep
            self._writer = LogWriter()
            cfg = endpoint_config(max_calls=LEGS_PER_PROCESS,
                                  user_agent="hotline12348-caller", max_media_ports=32,
                                  writer=self._writer, log_level=self.plan.pj_log_level)
            ep.libInit(cfg)
            if effective_max_calls() < self.plan.count:
                raise RuntimeError(f"pjsua allows {effective_max_calls()} calls per process")
            ep.audDevManager().setNullDev()
            transport = pj.TransportConfig()
            transport.port = 0
            transport.boundAddress = self.plan.bind
            self.sip_port = int(ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport))
            ep.transportCreate(pj.PJSIP_TRANSPORT_TCP, transport)
            ep.libStart()
        for codec in ep.codecEnum2():
            ep.codecSetPriority(codec.codecId, CODEC_PRIORITIES.get(codec.codecId, 0))
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{self.plan.caller}@{self.plan.bind or '127.0.0.1'}"
        rtp = acfg.mediaConfig.transportConfig
        rtp.port = free_port_block(host, 4 * LEGS_PER_PROCESS)
        rtp.portRange = 4 * LEGS_PER_PROCESS if rtp.port else 0
        rtp.boundAddress = self.plan.bind
        account = pj.Account()
        account.create(acfg, True)
        self.account = account

    def emit_now(self, script: LegScript, kind: EventKind, **facts: Any) -> None:
        """Emit an event of ``script``'s call stamped with the current time."""
        self.emit(CallEvent(call=script.index, kind=kind,
                            at=round(time.monotonic() - self.start, 3), **facts))

    def run(self, start: float, stopping: Callable[[], bool]) -> list[CallResult]:
        """Place the plan's calls from monotonic ``start`` on; return when all are over.

        ``stopping`` is polled every turn; once it says yes, unplaced calls are dropped and
        every live call is hung up.
        """
        self.start = start
        plan = self.plan
        scripts = [LegScript(i, plan) for i in range(plan.first, plan.first + plan.count)]
        waiting = list(scripts)
        stop_at: float | None = None
        while True:
            now = time.monotonic()
            if stop_at is None and stopping():
                stop_at = now
                waiting.clear()
                for leg in self._legs:
                    if leg.script.stop():
                        self._hangup(leg)
            while waiting and start + plan.offset(waiting[0].index) <= now:
                self._place(waiting.pop(0))
            for leg in self._legs:
                self._tend(leg)
            live = [leg for leg in self._legs if leg.script.ended_at is None]
            if not waiting and not live:
                break
            if stop_at is not None and now - stop_at > HANGUP_GRACE:
                break
            deadlines = [d for d in (leg.script.deadline() for leg in live) if d is not None]
            if waiting:
                deadlines.append(start + plan.offset(waiting[0].index))
            wait = min(deadlines, default=now + 1) - time.monotonic()
            self.ep.libHandleEvents(max(1, min(POLL_MS, math.ceil(wait * 1000))))
        self._settle()
        return [s.result(start) for s in scripts]

    def _place(self, script: LegScript) -> None:
        leg = _Leg(self.account, script, self)
        self._legs.append(leg)
        self.emit_now(script, EventKind.DIALING, reason=self.plan.uri)
        script.placed_at = time.monotonic()
        try:
            leg.makeCall(self.plan.uri, pj.CallOpParam(True))
        except Exception as exc:
            script.ended_by = EndedBy.ERROR
            script.ended(time.monotonic(), 0, _short_error(exc))

    def _tend(self, leg: _Leg) -> None:
        """Connect media, run the script's due actions, report and release an ended call."""
        script = leg.script
        if leg.media_ready and leg.media is not None and script.ended_at is None:
            leg.media_ready = False
            self._connect_media(leg)
        for action in script.actions(time.monotonic()):
            if action is Action.SEND:
                step = script.next_step()
                try:
                    leg.dialDtmf(step.digits)
                    self.emit_now(script, EventKind.DIGIT, digits=step.digits)
                except Exception as exc:
                    log.error("call %d: cannot send %s: %s", script.index + 1, step.digits,
                              describe_error(exc))
            else:
                self._hangup(leg)
        if script.ended_at is not None and not leg.released:
            leg.released = True
            leg.recorder = None  # first: finalises the WAV header
            leg.player = None
            leg.media = None
            result = script.result(self.start)
            self.emit_now(script, EventKind.ENDED, status=result.status, reason=result.reason,
                          ended_by=result.ended_by, duration_s=result.duration_s)

    def _connect_media(self, leg: _Leg) -> None:
        index = leg.script.index
        try:
            if self.plan.record and leg.recorder is None:
                recorder = pj.AudioMediaRecorder()
                recorder.createRecorder(self.plan.record_path(index))
                leg.recorder = recorder
                leg.media.startTransmit(recorder)
            if self.plan.play and leg.player is None:
                player = pj.AudioMediaPlayer()
                player.createPlayer(self.plan.play, 0)
                leg.player = player
                player.startTransmit(leg.media)
        except Exception as exc:
            log.error("call %d: cannot connect play/record: %s", index + 1, describe_error(exc))

    def _hangup(self, leg: _Leg) -> None:
        """Send BYE or CANCEL for a call whose script decided to end it."""
        script = leg.script
        self.emit_now(script, EventKind.HANGUP, ended_by=str(script.ended_by or ""))
        try:
            leg.hangup(pj.CallOpParam(True))
        except Exception as exc:
            log.warning("call %d: hangup: %s", script.index + 1, describe_error(exc))

    def _settle(self) -> None:
        """Let the last BYEs be answered; libDestroy would not wait for them."""
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            self.ep.libHandleEvents(20)

    def _release_legs(self) -> None:
        """Drop every call, its recorder first; no loop variable may outlive this frame."""
        for leg in self._legs:
            leg.recorder = None
            leg.player = None
            leg.media = None
        self._legs.clear()

    def close(self) -> None:
        """Release every pjsua2 object, calls last, then destroy the endpoint."""
        self._release_legs()
        if self.ep is None:
            return
        if self.account is not None:
            with suppress(Exception):
                self.account.shutdown()
            self.account = None
        with stdout_to_stderr():
            self.ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)
        self.ep = None
        self._writer = None


# --- batches: in this process or in children -----------------------------------------------


def run_batch(plan: CallPlan, emit: Emit, stopping: Callable[[], bool]) -> Report:
    """Place ``plan.count`` calls: here when they fit one process, else in children."""
    began = time.monotonic()
    if plan.count <= LEGS_PER_PROCESS:
        results = _run_here(plan, emit, stopping)
    else:
        results = _run_children(plan, emit, stopping)
    return Report(uri=plan.uri, rate=plan.rate, hold=plan.hold, calls=tuple(results),
                  wall_s=time.monotonic() - began, interrupted=stopping())


def _run_here(plan: CallPlan, emit: Emit, stopping: Callable[[], bool]) -> list[CallResult]:
    engine = CallerEngine(plan, emit)
    try:
        try:
            engine.open()
        except Exception as exc:
            return _not_placed(plan, f"无法启动 SIP: {_short_error(exc)}")
        return engine.run(time.monotonic(), stopping)
    finally:
        engine.close()


def _not_placed(plan: CallPlan, reason: str) -> list[CallResult]:
    return [CallResult(index=i, confirmed=False, status=0, reason=reason,
                       ended_by=str(EndedBy.ERROR), setup_ms=None, duration_s=None,
                       placed_at=None, recording="")
            for i in range(plan.first, plan.first + plan.count)]


@dataclass
class _Child:
    plan: CallPlan
    result: Path
    proc: subprocess.Popen[bytes]
    ready: bool = False
    done: bool = False


def _read_child(child: _Child, lines: Queue[tuple[_Child, bytes]]) -> None:
    """Forward a child's stdout lines to the main thread (b"" marks the end)."""
    assert child.proc.stdout is not None
    for line in child.proc.stdout:
        lines.put((child, line))
    lines.put((child, b""))


def _send(child: _Child, text: str) -> None:
    stdin = child.proc.stdin
    if stdin is None or stdin.closed:
        return
    try:
        stdin.write(text.encode() + b"\n")
        stdin.flush()
    except OSError:
        pass


def _run_children(plan: CallPlan, emit: Emit,
                  stopping: Callable[[], bool]) -> list[CallResult]:
    """Split the batch over child processes of four calls each and merge their results."""
    lines: Queue[tuple[_Child, bytes]] = Queue()
    children: list[_Child] = []
    with tempfile.TemporaryDirectory(prefix="hotline-call-") as folder:
        for first in range(plan.first, plan.first + plan.count, LEGS_PER_PROCESS):
            share = replace(plan, first=first,
                            count=min(LEGS_PER_PROCESS, plan.first + plan.count - first))
            result = Path(folder) / f"calls-{first}.json"
            proc = subprocess.Popen(
                [sys.executable, "-m", "hotline.telephony.caller", "--plan", share.to_json(),
                 "--result", str(result)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
            child = _Child(share, result, proc)
            children.append(child)
            threading.Thread(target=_read_child, args=(child, lines), daemon=True).start()
        start_epoch: float | None = None
        deadline = time.monotonic() + CHILD_START_TIMEOUT
        stop_sent = False
        while not all(c.done for c in children):
            if stopping() and not stop_sent:
                stop_sent = True
                for child in children:
                    _send(child, "stop")
            if start_epoch is None and (all(c.ready or c.done for c in children)
                                        or time.monotonic() > deadline or stop_sent):
                start_epoch = time.time() + 0.1
                for child in children:
                    _send(child, json.dumps({"start_at": start_epoch}))
            try:
                child, line = lines.get(timeout=0.1)
            except Empty:
                continue
            if not line:
                child.proc.wait()
                child.done = True
                continue
            _child_line(child, line, emit, start_epoch)
        results: list[CallResult] = []
        for child in children:
            try:
                data = json.loads(child.result.read_text(encoding="utf-8"))
                results.extend(CallResult.from_dict(c) for c in data["calls"])
            except (OSError, ValueError, KeyError, TypeError):
                results.extend(_not_placed(child.plan, "呼叫进程异常退出 "
                                           f"(退出码 {child.proc.returncode})"))
    return sorted(results, key=lambda r: r.index)


def _child_line(child: _Child, line: bytes, emit: Emit, start_epoch: float | None) -> None:
    try:
        data = json.loads(line)
    except ValueError:
        return  # stray output; the child's stdout is ours only after start-up
    if not isinstance(data, dict):
        return
    if data.get("ready"):
        child.ready = True
    elif "kind" in data:
        at = float(data.pop("epoch")) - (start_epoch or time.time())
        emit(CallEvent(**{**data, "kind": EventKind(data["kind"]), "at": round(at, 3)}))


# --- the child process -----------------------------------------------------------------------


class _Stdin:
    """The parent's commands: the start time, then ``stop`` (or end of input)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.fd = stream.fileno()
        self.buffer = b""
        self.closed = False

    def poll(self, timeout: float) -> list[str]:
        """Complete lines that arrived within ``timeout`` seconds."""
        if self.closed:
            return []
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            chunk = os.read(self.fd, 4096)
            if not chunk:
                self.closed = True
            self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        return [line.decode("utf-8", "replace").strip() for line in lines]


def _print_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Run one child's share of a batch; 0 when it ran (whatever the calls did), 2 if not."""
    parser = argparse.ArgumentParser(prog="python -m hotline.telephony.caller")
    parser.add_argument("--plan", required=True, help="CallPlan as JSON")
    parser.add_argument("--result", required=True, help="file for the results (JSON)")
    args = parser.parse_args(argv)
    plan = CallPlan.from_json(args.plan)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    if plan.pj_log_level <= 1:  # as in ``hotline call``: failures reach the results
        pjlog.setLevel(logging.CRITICAL)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    control = _Stdin(sys.stdin.buffer)
    epoch_offset = time.time() - time.monotonic()

    def emit(event: CallEvent) -> None:
        data = {k: v for k, v in asdict(event).items() if k != "at"}
        _print_json({**data, "epoch": event.at + engine.start + epoch_offset})

    def stopping() -> bool:
        if any(line == "stop" for line in control.poll(0)) or control.closed:
            stop.set()
        return stop.is_set()

    engine = CallerEngine(plan, emit)
    try:
        try:
            engine.open()
        except Exception as exc:
            log.error("cannot start SIP: %s", describe_error(exc))
            results = _not_placed(plan, f"无法启动 SIP: {_short_error(exc)}")
        else:
            _print_json({"ready": True, "sip_port": engine.sip_port})
            start = _await_start(control, stop)
            if start is None:
                results = [LegScript(i, plan).result(0.0)
                           for i in range(plan.first, plan.first + plan.count)]
            else:
                results = engine.run(start - epoch_offset, stopping)
        Path(args.result).write_text(json.dumps({"calls": [asdict(r) for r in results]}),
                                     encoding="utf-8")
    finally:
        engine.close()
    return 0


def _await_start(control: _Stdin, stop: threading.Event) -> float | None:
    """The batch's start (epoch seconds) from the parent; None when told to stop."""
    while not stop.is_set() and not control.closed:
        for line in control.poll(0.2):
            if line == "stop":
                return None
            with suppress(ValueError, KeyError, TypeError):
                return float(json.loads(line)["start_at"])
    return None


if __name__ == "__main__":
    sys.exit(main())
