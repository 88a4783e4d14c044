"""The media worker process: one pjsua2 endpoint driven by the coordinator's commands.

    python -m hotline.telephony.worker --id w1 --sip-port 5071 --rtp-port 40000 \
        --control 127.0.0.1:PORT [--host 127.0.0.1]

The worker connects to the coordinator's control address, says ``WorkerReady`` and from then
on executes commands and reports events, one JSON line each (:mod:`protocol`). It keeps no
business state: when the control connection closes, on ``Shutdown`` or on SIGTERM it hangs up
every leg, closes its recordings properly and exits 0.

Threads: pjsua2 lives on the main thread only (it aborts the process otherwise). A reader
thread turns socket bytes into commands on a queue; the main loop alternates
``libHandleEvents(50)`` with draining that queue (a :class:`Waker` ends the wait early).
Events are written from the main thread, including from pjsua2 callbacks, which run there
too. Merging a closed recording runs on a helper thread (file work only). Python's cyclic
garbage collector is switched to manual and run on the main thread, so a pjsua2 object
caught in a reference cycle can never be destroyed from another thread.

stdout is redirected to stderr before pjsua2 starts (``libCreate`` prints there); the
protocol only ever travels over the control socket.
"""

from __future__ import annotations

import argparse
import functools
import gc
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from hotline import logs
from hotline.recording import RecordingResult
from hotline.telephony import protocol as p
from hotline.telephony.media import Playback, StereoRecording
from hotline.telephony.pjsua import Incoming, Leg, SipEndpoint, describe_error

log = logging.getLogger("hotline.worker")

POLL_MS = 50
# Shutdown waits this long for DISCONNECTED callbacks before releasing legs anyway.
HANGUP_GRACE = 5.0
BYE_SETTLE = 0.2
CONNECT_RETRY = 10.0
GC_EVERY = 10.0
CALLER = "caller"


class _Closed:
    """Queue marker: the control connection is gone."""


class Waker:
    """Cuts the main loop's ``libHandleEvents`` wait short from any thread.

    pjsua2 offers no thread-safe wake-up, but its poll returns as soon as a SIP socket
    has data, and pjsip silently drops a bare CRLF keep-alive (RFC 5626). Sending one to
    our own UDP port therefore delivers queued commands at once instead of after up to
    ``POLL_MS``; it touches no pjsua2 object, so any thread may call it.

    Args:
        host: The SIP bind address (a wildcard is reached via loopback).
        port: The worker's SIP UDP port.
    """

    def __init__(self, host: str, port: int) -> None:
        wildcard = host in ("", "0.0.0.0", "::")
        self._address = ("127.0.0.1" if wildcard else host, port)
        family = socket.AF_INET6 if ":" in self._address[0] else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def __call__(self) -> None:
        """Send one keep-alive; losing it only costs latency."""
        try:
            self._sock.sendto(b"\r\n\r\n", self._address)
        except OSError:
            pass

    def close(self) -> None:
        """Release the socket."""
        self._sock.close()


@dataclass
class CallSlot:
    """A call held by this worker: its caller leg and what plays and records on it."""

    key: str
    leg: Leg
    answered: bool = False
    reported: bool = False
    ended: bool = False
    hangup_reason: str = ""
    playbacks: dict[int, Playback] = field(default_factory=dict)
    recordings: dict[int, StereoRecording] = field(default_factory=dict)


class Control:
    """The control connection: a reader thread feeding a queue, and a line writer.

    Args:
        sock: A connected stream socket to the coordinator.
        wake: Called after queueing, to wake the main loop (see :class:`Waker`).
    """

    def __init__(self, sock: socket.socket, wake: Callable[[], None] = lambda: None) -> None:
        self.sock = sock
        self.wake = wake
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.closed = False
        self.peer_gone = False
        self._thread = threading.Thread(target=self._read, name="control-reader", daemon=True)

    def start(self) -> None:
        """Start reading commands."""
        self._thread.start()

    def send(self, message: Any) -> None:
        """Write one event; a broken connection marks the control closed (worker stops)."""
        if self.closed:
            return
        try:
            self.sock.sendall(p.encode(message))
        except OSError as exc:
            # Expected while stopping after the coordinator hung up; worth a warning else.
            log.log(logging.INFO if self.peer_gone else logging.WARNING,
                    "control connection lost while sending: %s", exc)
            self.closed = True
            self.inbox.put(_Closed())

    def close(self) -> None:
        """Close the socket (the reader thread then ends)."""
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _read(self) -> None:
        """Decode lines until EOF; bad lines are logged and skipped. Never touches pjsua2."""
        decoder = p.Decoder()
        try:
            while data := self.sock.recv(65536):
                for message in decoder.feed(data):
                    if isinstance(message, p.ProtocolError):
                        log.warning("ignored bad control line: %s", message.params)
                    else:
                        self.inbox.put(message)
                self.wake()
        except OSError as exc:
            if not self.closed:
                log.warning("control connection error: %s", exc)
        self.peer_gone = True
        self.inbox.put(_Closed())
        self.wake()


class Worker:
    """Executes commands on pjsua2 legs and reports their events; see the module doc.

    Args:
        worker_id: This worker's name in ``WorkerReady``.
        endpoint_factory: Builds the endpoint with this worker as its listener.
        control: The coordinator connection.
    """

    def __init__(self, worker_id: str, endpoint_factory: Callable[[Worker], SipEndpoint],
                 control: Control) -> None:
        self.worker_id = worker_id
        self.control = control
        self.endpoint = endpoint_factory(self)
        self.slots: dict[str, CallSlot] = {}
        self.stopping = False
        self._finished: list[str] = []
        self._eofs: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
        # Merging a long recording takes a while; SIP and commands must not wait for it.
        self._merger = ThreadPoolExecutor(max_workers=1, thread_name_prefix="merge")
        self._merged: queue.SimpleQueue[tuple[str, int, Future[RecordingResult]]] = (
            queue.SimpleQueue())
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            p.Answer: self._answer, p.PlayFiles: self._play, p.StopPlayback: self._stop_play,
            p.Record: self._record, p.StopRecording: self._stop_record, p.Hangup: self._hangup,
        }

    # --- main loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Announce the worker, then serve until Shutdown, SIGTERM or a closed connection."""
        self.control.send(p.WorkerReady(self.worker_id, self.endpoint.sip_port,
                                        self.endpoint.max_legs, os.getpid()))
        last_gc = time.monotonic()
        while not self.stopping:
            self.endpoint.poll(POLL_MS)
            try:
                self._after_poll()
            except Exception:  # a bug in one step must not take the calls down
                log.exception("main loop step failed")
            if time.monotonic() - last_gc > GC_EVERY:
                gc.collect()
                last_gc = time.monotonic()
        self.shutdown()

    def request_stop(self, why: str) -> None:
        """Ask the main loop to shut down after the current poll (signal-safe)."""
        if not self.stopping:
            log.info("stopping: %s", why)
        self.stopping = True

    def _after_poll(self) -> None:
        """Work that must not run inside pjsua2 callbacks: EOFs, commands, released calls."""
        self._drain_eofs()
        self._drain_merges()
        while True:
            try:
                message = self.control.inbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(message, _Closed):
                self.request_stop("control connection closed")
            elif isinstance(message, p.Shutdown):
                self.request_stop("Shutdown command")
            else:
                self._command(message)
        self._release_finished()

    def shutdown(self) -> None:
        """Hang up every leg, wait for DISCONNECTED, close recordings, destroy pjsua2."""
        self.stopping = True
        had_calls = bool(self.slots)
        self._mark_shutdown()  # in a helper: a loop variable here would keep a Leg alive
        try:
            self.endpoint.hangup_all()
        except Exception:
            log.exception("hangupAllCalls failed")
        deadline = time.monotonic() + HANGUP_GRACE
        while self.slots and time.monotonic() < deadline:
            self.endpoint.poll(10)
            self._drain_eofs()
            self._drain_merges()
            self._release_finished()
        for key in list(self.slots):
            log.warning("call %s did not end in time; releasing it", key)
            self._finished.append(key)
        self._release_finished()
        if had_calls:  # let the last BYEs get their answers; libDestroy will not wait
            settle = time.monotonic() + BYE_SETTLE
            while time.monotonic() < settle:
                self.endpoint.poll(10)
        self._merger.shutdown(wait=True)  # the bridge finalises the parts meanwhile
        self._drain_merges()
        gc.collect()
        self.endpoint.destroy()
        self.control.close()

    def _mark_shutdown(self) -> None:
        for slot in self.slots.values():
            if not slot.ended and not slot.hangup_reason:
                slot.hangup_reason = "shutdown"

    # --- leg events (pjsua2 thread, inside callbacks) -------------------------------------

    def leg_offered(self, leg: Leg, incoming: Incoming) -> None:
        """Keep the leg, ring, and offer the call to the coordinator."""
        key = uuid.uuid4().hex
        self.slots[key] = CallSlot(key, leg)
        leg.key = key
        if self.stopping:
            leg.respond(503)
            return
        leg.respond(180)
        self.control.send(p.CallOffered(key, incoming.sip_call_id, incoming.from_uri,
                                        incoming.to_user, incoming.remote))

    def leg_media_active(self, leg: Leg) -> None:
        """Start what waited for audio; report the answered leg once."""
        slot = self._slot_of(leg)
        if slot is None or slot.ended:
            return
        for token, recording in list(slot.recordings.items()):
            self._start_recording(slot, token, recording)
        for token, playback in list(slot.playbacks.items()):
            self._start_playback(slot, token, playback)
        if slot.answered and not slot.reported:
            slot.reported = True
            self.control.send(p.LegAnswered(slot.key, CALLER))

    def leg_digit(self, leg: Leg, digit: str) -> None:
        """Forward a DTMF digit."""
        slot = self._slot_of(leg)
        if slot is not None and not slot.ended:
            self.control.send(p.Digit(slot.key, CALLER, digit))

    def leg_disconnected(self, leg: Leg, status: int, reason: str) -> None:
        """Report the end now; release recordings, players and the leg after the poll."""
        slot = self._slot_of(leg)
        if slot is None or slot.ended:
            return
        slot.ended = True
        if slot.hangup_reason:
            why = slot.hangup_reason
        elif slot.reported:
            why = "remote_hangup"
        elif status == 487:
            why = "caller_cancelled"
        else:
            why = "failed"
        log.info("call %s ended: %s (SIP %d %s)", slot.key, why, status, reason)
        self.control.send(p.LegEnded(slot.key, CALLER, why, status))
        self._finished.append(slot.key)

    def _slot_of(self, leg: Leg) -> CallSlot | None:
        slot = self.slots.get(getattr(leg, "key", ""))
        return slot if slot is not None and slot.leg is leg else None

    # --- commands (main loop, between polls) ----------------------------------------------

    def _command(self, message: Any) -> None:
        """Run one command; an exception is logged and reported, never fatal."""
        handler = self._handlers.get(type(message))
        if handler is None:
            log.warning("ignored %s: not a command", type(message).__name__)
            return
        try:
            handler(message)
        except Exception as exc:
            log.exception("%s failed", type(message).__name__)
            self._failed(message, describe_error(exc))

    def _failed(self, message: Any, detail: str) -> None:
        self.control.send(p.CommandFailed(getattr(message, "call", ""), type(message).__name__,
                                          int(getattr(message, "token", 0)), detail[:500]))

    def _live(self, message: Any) -> CallSlot | None:
        """The call a command names, or None (logged) when it is unknown or already over."""
        slot = self.slots.get(message.call)
        if slot is None or slot.ended:
            log.info("ignored %s for %s call %s", type(message).__name__,
                     "ended" if slot else "unknown", message.call)
            return None
        return slot

    def _answer(self, message: p.Answer) -> None:
        slot = self._live(message)
        if slot is None:
            return
        if slot.answered:
            log.info("ignored Answer for call %s: already answered", slot.key)
            return
        slot.answered = True
        slot.leg.respond(200)

    def _play(self, message: p.PlayFiles) -> None:
        slot = self._live(message)
        if slot is None:
            return
        if message.leg != CALLER or message.token in slot.playbacks:
            why = (f"no leg {message.leg!r}" if message.leg != CALLER
                   else f"token {message.token} already playing")
            self._failed(message, why)
            if message.leg != CALLER:
                self.control.send(p.PlaybackDone(slot.key, message.token))
            return
        playback = Playback(message.token, message.paths, message.loop,
                            functools.partial(self._on_eof, slot.key))
        slot.playbacks[message.token] = playback
        if slot.leg.media is not None:
            self._start_playback(slot, message.token, playback)

    def _start_playback(self, slot: CallSlot, token: int, playback: Playback) -> None:
        """Start (or, after a media change, reconnect) a playback; a failure ends it."""
        try:
            if not playback.started:
                playback.start([slot.leg.media])
            else:
                playback.connect(slot.leg.media)
            for recording in slot.recordings.values():
                recording.hear(playback.source)
        except Exception as exc:
            log.warning("call %s: playback %d failed: %s", slot.key, token, describe_error(exc))
            slot.playbacks.pop(token, None)
            playback.stop()
            self.control.send(p.CommandFailed(slot.key, "PlayFiles", token,
                                              describe_error(exc)[:500]))
            self.control.send(p.PlaybackDone(slot.key, token))

    def _on_eof(self, key: str, token: int) -> None:
        """End of a playlist; may run on a media thread, so it only queues."""
        self._eofs.put((key, token))
        self.control.wake()

    def _drain_eofs(self) -> None:
        while True:
            try:
                key, token = self._eofs.get_nowait()
            except queue.Empty:
                return
            slot = self.slots.get(key)
            playback = slot.playbacks.get(token) if slot is not None else None
            if slot is None or playback is None or playback.loop:
                continue
            self._end_playback(slot, token)

    def _end_playback(self, slot: CallSlot, token: int) -> None:
        playback = slot.playbacks.pop(token)
        if playback.started:
            for recording in slot.recordings.values():
                recording.unhear(playback.source)
        playback.stop()
        self.control.send(p.PlaybackDone(slot.key, token))

    def _stop_play(self, message: p.StopPlayback) -> None:
        slot = self.slots.get(message.call)
        if slot is None or message.token not in slot.playbacks:
            log.info("ignored StopPlayback %d for call %s: not playing", message.token,
                     message.call)
            return
        self._end_playback(slot, message.token)

    def _record(self, message: p.Record) -> None:
        slot = self._live(message)
        if slot is None:
            return
        if message.token in slot.recordings:
            self._failed(message, f"token {message.token} already recording")
            return
        recording = StereoRecording(message.token, message.path,
                                    silence=self.endpoint.silence())
        slot.recordings[message.token] = recording
        if slot.leg.media is not None:
            self._start_recording(slot, message.token, recording)

    def _start_recording(self, slot: CallSlot, token: int, recording: StereoRecording) -> None:
        """Start (or reconnect) a recording; one that cannot start is dropped and reported."""
        heard = [pb.source for pb in slot.playbacks.values() if pb.started]
        try:
            if not recording.started:
                recording.start(slot.leg.media, heard)
            else:
                recording.listen(slot.leg.media)
                for source in heard:
                    recording.hear(source)
        except Exception as exc:
            log.warning("call %s: recording %d failed: %s", slot.key, token,
                        describe_error(exc))
            slot.recordings.pop(token, None)
            self.control.send(p.CommandFailed(slot.key, "Record", token,
                                              describe_error(exc)[:500]))

    def _stop_record(self, message: p.StopRecording) -> None:
        slot = self.slots.get(message.call)
        if slot is None or message.token not in slot.recordings:
            log.info("ignored StopRecording %d for call %s: not recording", message.token,
                     message.call)
            return
        self._close_recording(slot, message.token)

    def _close_recording(self, slot: CallSlot, token: int) -> None:
        """Drop the recorders here; merge and hash on the merge thread (file work only)."""
        recording = slot.recordings.pop(token)
        try:
            recording.detach()
        except Exception:
            log.exception("call %s: detaching recording %d failed", slot.key, token)
        future = self._merger.submit(recording.finish)
        future.add_done_callback(functools.partial(self._merge_done, slot.key, token))

    def _merge_done(self, key: str, token: int, future: Future[RecordingResult]) -> None:
        """Merge thread: hand the outcome to the main loop."""
        self._merged.put((key, token, future))
        self.control.wake()

    def _drain_merges(self) -> None:
        """Report recordings whose merge finished (main thread: the socket's one writer)."""
        while True:
            try:
                key, token, future = self._merged.get_nowait()
            except queue.Empty:
                return
            try:
                result = future.result()
            except Exception as exc:
                log.error("call %s: recording %d could not be saved: %s", key, token,
                          describe_error(exc))
                self.control.send(p.CommandFailed(key, "Record", token,
                                                  describe_error(exc)[:500]))
                continue
            self.control.send(p.RecordingDone(key, token, result.path, result.seconds,
                                              result.sha256))

    def _hangup(self, message: p.Hangup) -> None:
        slot = self._live(message)
        if slot is None:
            return
        if message.leg not in ("", CALLER):
            self._failed(message, f"no leg {message.leg!r}")
            return
        slot.hangup_reason = message.reason or "hangup"
        slot.leg.end()

    # --- release --------------------------------------------------------------------------

    def _release_finished(self) -> None:
        """Release ended calls outside callbacks: recorders, then players, then the leg."""
        while self._finished:
            key = self._finished.pop()
            slot = self.slots.get(key)
            if slot is None:
                continue
            try:
                for token in list(slot.recordings):
                    self._close_recording(slot, token)
                for token in list(slot.playbacks):
                    self._end_playback(slot, token)
            except Exception:
                log.exception("call %s: releasing its media failed", key)
            finally:
                slot.leg.listener = None
                del self.slots[key]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hotline.telephony.worker",
                                     description="hotline media worker (pjsua2)")
    parser.add_argument("--id", required=True, help="worker id reported in WorkerReady")
    parser.add_argument("--sip-port", type=int, required=True, help="SIP port (UDP and TCP)")
    parser.add_argument("--rtp-port", type=int, required=True, help="first RTP port")
    parser.add_argument("--rtp-ports", type=int, default=0,
                        help="RTP ports to use from --rtp-port (default: 2 per leg)")
    parser.add_argument("--control", required=True, help="coordinator HOST:PORT")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind SIP and RTP to")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--pj-log-level", type=int, default=1, help="pjsip log level 0-6")
    return parser.parse_args(argv)


def _connect(address: str) -> socket.socket:
    """Connect to the coordinator, retrying briefly while it starts listening."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + CONNECT_RETRY
    while True:
        try:
            sock = socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)),
                                            timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            continue
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def main(argv: list[str] | None = None) -> int:
    """Run one worker; 0 after an orderly stop, 2 when it could not start."""
    args = _parse_args(argv)
    os.dup2(2, 1)  # libCreate and pjsip print to stdout: keep it off any protocol path
    logs.setup(args.log_level.upper(), None)
    gc.disable()  # collected on the main thread only (see the module docstring)
    try:
        sock = _connect(args.control)
    except (OSError, ValueError) as exc:
        log.error("cannot reach the coordinator at %s: %s", args.control, exc)
        return 2
    waker = Waker(args.host, args.sip_port)
    control = Control(sock, waker)

    def factory(worker: Worker) -> SipEndpoint:
        return SipEndpoint(args.host, args.sip_port, args.rtp_port, worker,
                           rtp_ports=args.rtp_ports, pj_log_level=args.pj_log_level)

    worker = Worker(args.id, factory, control)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        worker.request_stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        worker.endpoint.start()
    except Exception as exc:
        log.error("cannot start SIP on %s:%d (RTP %d): %s", args.host, args.sip_port,
                  args.rtp_port, describe_error(exc))
        worker.endpoint.destroy()
        control.close()
        waker.close()
        return 2
    control.start()
    worker.run()
    waker.close()
    log.info("worker %s stopped", args.id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
