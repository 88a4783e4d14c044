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
from hotline.telephony.tap import LegTap

log = logging.getLogger("hotline.worker")

POLL_MS = 50
# Shutdown waits this long for DISCONNECTED callbacks before releasing legs anyway.
HANGUP_GRACE = 5.0
BYE_SETTLE = 0.2
CONNECT_RETRY = 10.0
GC_EVERY = 10.0
CALLER = "caller"


# Lines of events kept while no coordinator is connected (a reconnect replays them).
BACKLOG_LIMIT = 10_000
RECONNECT_EVERY = 1.0
# With no coordinator and no call left, wait this long for a new coordinator, then exit.
ORPHAN_LINGER = 60.0
LOST_PROMPT_TOKEN = -1
# SIP statuses of a failed outbound leg → the reason reported in LegEnded.
_FAILURES = {486: "busy", 600: "busy", 480: "no_answer", 408: "no_answer", 487: "cancelled",
             603: "declined", 404: "not_found", 484: "not_found", 503: "unavailable"}


@dataclass(frozen=True)
class _Closed:
    """Queue marker: this control connection is gone."""

    control: Any


@dataclass(frozen=True)
class _Reconnected:
    """Queue marker: the reconnect thread reached a coordinator."""

    sock: socket.socket


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
class LegSlot:
    """One leg of a call: the caller's, or one the worker originated (lawyer, consult...)."""

    name: str
    leg: Leg
    outbound: bool = False
    answered: bool = False  # inbound: 200 sent; outbound: the far end answered
    reported: bool = False  # LegAnswered sent
    ended: bool = False
    hangup_reason: str = ""


@dataclass
class CallSlot:
    """A call held by this worker: its legs, who hears whom, what plays and records."""

    key: str
    sip_call_id: str
    legs: dict[str, LegSlot] = field(default_factory=dict)
    group: tuple[str, ...] = ()  # legs talking to each other (Connect)
    links: set[tuple[str, str]] = field(default_factory=set)  # (from leg, to leg) on the bridge
    heard: dict[str, Any] = field(default_factory=dict)  # leg → media on the right channel
    playbacks: dict[int, Playback] = field(default_factory=dict)
    targets: dict[int, str] = field(default_factory=dict)  # playback token → leg
    recordings: dict[int, StereoRecording] = field(default_factory=dict)
    taps: dict[str, LegTap] = field(default_factory=dict)  # leg → its PCM stream
    hangup_after_prompt: bool = False

    def live(self, name: str) -> LegSlot | None:
        """The leg called ``name`` while it is up (or ringing)."""
        slot = self.legs.get(name)
        return slot if slot is not None and not slot.ended else None

    @property
    def over(self) -> bool:
        """True when no leg is left."""
        return all(leg.ended for leg in self.legs.values())

    @property
    def bridged(self) -> bool:
        """The caller talks to at least one other answered leg."""
        if CALLER not in self.group or self.live(CALLER) is None:
            return False
        return any(n != CALLER and (s := self.live(n)) is not None and s.answered
                   for n in self.group)


class Control:
    """One control connection: a reader thread feeding the worker's inbox, and a writer.

    Args:
        sock: A connected stream socket to the coordinator.
        inbox: Where decoded commands (and a final :class:`_Closed`) go.
        wake: Called after queueing, to wake the main loop (see :class:`Waker`).
    """

    def __init__(self, sock: socket.socket, inbox: queue.Queue[Any],
                 wake: Callable[[], None] = lambda: None) -> None:
        self.sock = sock
        self.wake = wake
        self.inbox = inbox
        self.closed = False
        self.peer_gone = False
        self._thread = threading.Thread(target=self._read, name="control-reader", daemon=True)

    def start(self) -> None:
        """Start reading commands."""
        self._thread.start()

    def send(self, message: Any) -> bool:
        """Write one event; False (and the control marked closed) when the link broke."""
        if self.closed:
            return False
        try:
            self.sock.sendall(p.encode(message))
        except OSError as exc:
            # Expected while stopping after the coordinator hung up; worth a warning else.
            log.log(logging.INFO if self.peer_gone else logging.WARNING,
                    "control connection lost while sending: %s", exc)
            self.closed = True
            self.inbox.put(_Closed(self))
            return False
        return True

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
        self.inbox.put(_Closed(self))
        self.wake()


class Worker:
    """Executes commands on pjsua2 legs and reports their events; see the module doc.

    Args:
        worker_id: This worker's name in ``WorkerReady``.
        endpoint_factory: Builds the endpoint with this worker as its listener.
        control: The coordinator connection (``None``: connect later via ``reconnect``).
        reconnect: Opens a new connection to the coordinator (raises OSError when it is
            not there); ``None`` means a lost connection stops the worker.
        lost_prompt: A WAV played to callers still in the IVR when the coordinator is lost,
            before they are hung up.
    """

    def __init__(self, worker_id: str, endpoint_factory: Callable[[Worker], SipEndpoint],
                 control: Control, reconnect: Callable[[], socket.socket] | None = None,
                 lost_prompt: str = "") -> None:
        self.worker_id = worker_id
        self.control: Control | None = control
        self.inbox = control.inbox
        self.wake = control.wake
        self.reconnect = reconnect
        self.lost_prompt = lost_prompt
        self.endpoint = endpoint_factory(self)
        self.slots: dict[str, CallSlot] = {}
        self.stopping = False
        self._backlog: list[Any] = []
        self._away: dict[str, str] = {}  # calls carried on while orphaned: key → Call-ID
        self._orphan_since: float | None = None
        self._exit_when_idle = False
        self._idle_since: float | None = None
        self._ended_legs: list[tuple[str, str]] = []
        self._tap_errors: queue.SimpleQueue[tuple[str, str, str]] = queue.SimpleQueue()
        self._eofs: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
        # Merging a long recording takes a while; SIP and commands must not wait for it.
        self._merger = ThreadPoolExecutor(max_workers=1, thread_name_prefix="merge")
        self._merged: queue.SimpleQueue[tuple[str, int, Future[RecordingResult]]] = (
            queue.SimpleQueue())
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            p.Answer: self._answer, p.PlayFiles: self._play, p.StopPlayback: self._stop_play,
            p.Record: self._record, p.StopRecording: self._stop_record, p.Hangup: self._hangup,
            p.Originate: self._originate, p.Connect: self._connect,
            p.StartTap: self._start_tap, p.StopTap: self._stop_tap,
        }

    # --- main loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Announce the worker, then serve until Shutdown, SIGTERM or a closed connection."""
        self.send(p.WorkerReady(self.worker_id, self.endpoint.sip_port,
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

    def send(self, message: Any) -> None:
        """Report an event, or keep it for the next coordinator while there is none."""
        if self.control is not None and self.control.send(message):
            return
        if len(self._backlog) < BACKLOG_LIMIT:
            self._backlog.append(message)

    def _after_poll(self) -> None:
        """Work that must not run inside pjsua2 callbacks: EOFs, commands, released calls."""
        self._drain_eofs()
        self._drain_merges()
        self._drain_tap_errors()
        while True:
            try:
                message = self.inbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(message, _Closed):
                if message.control is self.control:
                    self._control_lost()
            elif isinstance(message, _Reconnected):
                self._adopted_by(message.sock)
            elif isinstance(message, p.Shutdown):
                self.request_stop("Shutdown command")
            else:
                self._command(message)
        self._release_finished()
        if self._orphan_since is not None:
            self._linger()
        elif self._exit_when_idle and not self.slots:
            self.request_stop("callers told, coordinator lost")

    # --- losing and finding the coordinator -----------------------------------------------

    def _control_lost(self) -> None:
        """Bridged conversations go on without a coordinator; everything else stops."""
        self.control = None
        bridged = [s for s in self.slots.values() if s.bridged]
        told = self.lost_prompt and any(
            (c := s.live(CALLER)) is not None and c.answered for s in self.slots.values())
        if self.stopping or (not bridged and not told) or (
                bridged and self.reconnect is None):
            self.request_stop("control connection closed")
            return
        if not bridged:  # only IVR callers: tell them, then stop
            log.warning("coordinator lost: telling %d caller(s) and stopping", len(self.slots))
            self._exit_when_idle = True
            for slot in self.slots.values():
                self._tell_and_end(slot)
            return
        log.warning("coordinator lost: %d bridged call(s) go on, %d other call(s) end",
                    len(bridged), len(self.slots) - len(bridged))
        self._orphan_since = time.monotonic()
        self._away = {key: slot.sip_call_id for key, slot in self.slots.items()}
        self._backlog = []
        for slot in self.slots.values():
            if not slot.bridged:
                self._tell_and_end(slot)
        threading.Thread(target=self._reconnect_loop, name="reconnect", daemon=True).start()

    def _tell_and_end(self, slot: CallSlot) -> None:
        """Play the 'service interrupted' prompt to a caller in the IVR, then hang up."""
        for leg in slot.legs.values():
            if not leg.ended:
                leg.hangup_reason = "coordinator_lost"
        caller = slot.live(CALLER)
        if caller is None or not caller.answered or not self.lost_prompt:
            self._end_all(slot, "coordinator_lost")
            return
        for token in list(slot.playbacks):
            self._end_playback(slot, token)
        slot.hangup_after_prompt = True
        self._play(p.PlayFiles(slot.key, LOST_PROMPT_TOKEN, (self.lost_prompt,)))

    def _reconnect_loop(self) -> None:
        """Reconnect thread: try the coordinator's address until it answers (no pjsua2)."""
        assert self.reconnect is not None
        while not self.stopping:
            try:
                sock = self.reconnect()
            except OSError:
                time.sleep(RECONNECT_EVERY)
                continue
            self.inbox.put(_Reconnected(sock))
            self.wake()
            return

    def _adopted_by(self, sock: socket.socket) -> None:
        """A coordinator is back: say who we are, what we carried, then what happened."""
        control = Control(sock, self.inbox, self.wake)
        self.control = control
        control.start()
        held = tuple(self._away.values())
        backlog, self._backlog = self._backlog, []
        self.send(p.WorkerReady(self.worker_id, self.endpoint.sip_port, self.endpoint.max_legs,
                                os.getpid(), held))
        for key, sip_call_id in self._away.items():
            slot = self.slots.get(key)
            legs = tuple(n for n, s in slot.legs.items() if not s.ended) if slot else ()
            group = slot.group if slot else ()
            self.send(p.CallHeld(key, sip_call_id, legs, group))
        for message in backlog:
            self.send(message)
        log.info("coordinator back: reported %d call(s) and %d event(s)", len(held),
                 len(backlog))
        self._away = {}
        self._orphan_since = None

    def _linger(self) -> None:
        """Orphaned and idle for ORPHAN_LINGER: nobody is coming back, exit."""
        if self.slots:
            self._idle_since = None
            return
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        elif now - self._idle_since > ORPHAN_LINGER:
            self.request_stop("no coordinator came back")

    # --- shutdown -------------------------------------------------------------------------

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
        for slot in self.slots.values():
            log.warning("call %s did not end in time; releasing it", slot.key)
            for leg in slot.legs.values():
                leg.ended = True
        self._release_finished()
        if had_calls:  # let the last BYEs get their answers; libDestroy will not wait
            settle = time.monotonic() + BYE_SETTLE
            while time.monotonic() < settle:
                self.endpoint.poll(10)
        self._merger.shutdown(wait=True)  # the bridge finalises the parts meanwhile
        self._drain_merges()
        gc.collect()
        self.endpoint.destroy()
        if self.control is not None:
            self.control.close()

    def _mark_shutdown(self) -> None:
        for slot in self.slots.values():
            for leg in slot.legs.values():
                if not leg.ended and not leg.hangup_reason:
                    leg.hangup_reason = "shutdown"

    # --- leg events (pjsua2 thread, inside callbacks) -------------------------------------

    def leg_offered(self, leg: Leg, incoming: Incoming) -> None:
        """Keep the leg, ring, and offer the call to the coordinator."""
        key = uuid.uuid4().hex
        slot = CallSlot(key, incoming.sip_call_id)
        slot.legs[CALLER] = LegSlot(CALLER, leg)
        self.slots[key] = slot
        leg.key, leg.name = key, CALLER
        if self.stopping or self.control is None:
            leg.respond(503)
            return
        leg.respond(180)
        self.send(p.CallOffered(key, incoming.sip_call_id, incoming.from_uri,
                                incoming.to_user, incoming.remote))

    def leg_progress(self, leg: Leg, state: str) -> None:
        """An originated leg rings or answers."""
        found = self._leg_of(leg)
        if found is None:
            return
        slot, legslot = found
        if not legslot.outbound or legslot.ended:
            return
        if state == "ringing":
            self.send(p.LegRinging(slot.key, legslot.name))
        elif state == "confirmed":
            legslot.answered = True
            self._apply_links(slot)
            if not legslot.reported:
                legslot.reported = True
                self.send(p.LegAnswered(slot.key, legslot.name, leg.codec()))

    def leg_media_active(self, leg: Leg) -> None:
        """Start what waited for audio; report the answered caller leg once."""
        found = self._leg_of(leg)
        if found is None:
            return
        slot, legslot = found
        if legslot.ended:
            return
        if legslot.name == CALLER:
            for token, recording in list(slot.recordings.items()):
                self._start_recording(slot, token, recording)
        tap = slot.taps.get(legslot.name)
        if tap is not None:
            self._run_tap(slot, legslot, tap)
        for token, playback in list(slot.playbacks.items()):
            if slot.targets.get(token) == legslot.name:
                self._start_playback(slot, token, playback)
        # A new media port (re-INVITE) needs its links made again.
        slot.links = {link for link in slot.links if legslot.name not in link}
        slot.heard.pop(legslot.name, None)
        self._apply_links(slot)
        if not legslot.outbound and legslot.answered and not legslot.reported:
            legslot.reported = True
            self.send(p.LegAnswered(slot.key, legslot.name, leg.codec()))

    def leg_digit(self, leg: Leg, digit: str) -> None:
        """Forward a DTMF digit."""
        found = self._leg_of(leg)
        if found is not None and not found[1].ended:
            self.send(p.Digit(found[0].key, found[1].name, digit))

    def leg_disconnected(self, leg: Leg, status: int, reason: str) -> None:
        """Report the end now; release what the leg used after the poll."""
        found = self._leg_of(leg)
        if found is None:
            return
        slot, legslot = found
        if legslot.ended:
            return
        legslot.ended = True
        if legslot.hangup_reason:
            why = legslot.hangup_reason
        elif legslot.reported:
            why = "remote_hangup"
        elif not legslot.outbound:
            why = "caller_cancelled" if status == 487 else "failed"
        else:
            why = _FAILURES.get(status, "failed")
        log.info("call %s leg %s ended: %s (SIP %d %s)", slot.key, legslot.name, why, status,
                 reason)
        # The port is gone from the bridge with its connections: forget them, undo nothing.
        slot.links = {link for link in slot.links if legslot.name not in link}
        gone = slot.heard.pop(legslot.name, None)
        if gone is not None:
            for recording in slot.recordings.values():
                recording.forget(gone)
        self.send(p.LegEnded(slot.key, legslot.name, why, status, time.time()))
        self._ended_legs.append((slot.key, legslot.name))

    def _leg_of(self, leg: Leg) -> tuple[CallSlot, LegSlot] | None:
        slot = self.slots.get(getattr(leg, "key", ""))
        if slot is None:
            return None
        legslot = slot.legs.get(getattr(leg, "name", ""))
        return (slot, legslot) if legslot is not None and legslot.leg is leg else None

    # --- who hears whom -------------------------------------------------------------------

    def _apply_links(self, slot: CallSlot) -> None:
        """Make the bridge match ``slot.group``: full mesh inside, nothing between others.

        The recordings' right channel hears the legs that talk with the caller.
        """
        media = {n: s.leg.media for n, s in slot.legs.items()
                 if not s.ended and s.leg.media is not None
                 and (s.answered or not s.outbound)}
        members = [n for n in slot.group if n in media]
        wanted = {(a, b) for a in members for b in members if a != b}
        for a, b in slot.links - wanted:
            if a in media and b in media:
                try:
                    media[a].stopTransmit(media[b])
                except Exception as exc:
                    log.info("call %s: unlink %s→%s: %s", slot.key, a, b, describe_error(exc))
        for a, b in wanted - slot.links:
            media[a].startTransmit(media[b])
        slot.links = wanted
        heard = ({n: media[n] for n in members if n != CALLER} if CALLER in members else {})
        for name in set(slot.heard) - set(heard):
            source = slot.heard.pop(name)
            for recording in slot.recordings.values():
                recording.unhear(source)
        for name, source in heard.items():
            if name not in slot.heard:
                slot.heard[name] = source
                for recording in slot.recordings.values():
                    recording.hear(source)

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
        self.send(p.CommandFailed(getattr(message, "call", ""), type(message).__name__,
                                  int(getattr(message, "token", 0)), detail[:500]))

    def _live(self, message: Any) -> CallSlot | None:
        """The call a command names, or None (logged) when it is unknown or already over."""
        slot = self.slots.get(message.call)
        if slot is None or slot.over:
            log.info("ignored %s for %s call %s", type(message).__name__,
                     "ended" if slot else "unknown", message.call)
            return None
        return slot

    def _answer(self, message: p.Answer) -> None:
        slot = self._live(message)
        caller = slot.live(CALLER) if slot is not None else None
        if slot is None or caller is None:
            return
        if caller.answered:
            log.info("ignored Answer for call %s: already answered", slot.key)
            return
        caller.answered = True
        caller.leg.respond(200)

    def _originate(self, message: p.Originate) -> None:
        if message.new_call and message.call not in self.slots and not self.stopping:
            # Its own key stands for the SIP Call-ID (the ledger row uses the same).
            self.slots[message.call] = CallSlot(message.call, message.call)
            slot: CallSlot | None = self.slots[message.call]
        else:
            slot = self._live(message)
        if slot is None:
            self.send(p.LegEnded(message.call, message.leg, "no_call", 0, time.time()))
            return
        if message.leg in slot.legs:
            self._failed(message, f"leg {message.leg!r} exists")
            return
        leg = self.endpoint.new_leg(message.leg)
        leg.key = slot.key
        slot.legs[message.leg] = LegSlot(message.leg, leg, outbound=True)
        try:
            leg.dial(message.uri)
        except Exception as exc:
            detail = describe_error(exc)
            why = "no_free_leg" if "TOOMANY" in detail.upper() or "too many" in detail else (
                "failed")
            log.warning("call %s: cannot call %s leg: %s", slot.key, message.leg, detail)
            slot.legs[message.leg].ended = True
            leg.listener = None
            self._failed(message, detail)
            self.send(p.LegEnded(slot.key, message.leg, why, 0, time.time()))
            self._ended_legs.append((slot.key, message.leg))

    def _connect(self, message: p.Connect) -> None:
        slot = self._live(message)
        if slot is None:
            return
        unknown = [n for n in message.legs if n not in slot.legs]
        if unknown:
            self._failed(message, f"no leg {unknown[0]!r}")
        slot.group = tuple(n for n in message.legs if n in slot.legs)
        self._apply_links(slot)

    def _start_tap(self, message: p.StartTap) -> None:
        slot = self._live(message)
        if slot is None:
            return
        legslot = slot.live(message.leg)
        if legslot is None or message.leg in slot.taps:
            self._failed(message, f"no leg {message.leg!r}" if legslot is None
                         else f"leg {message.leg!r} is tapped already")
            return
        tap = LegTap(slot.key, message.leg, message.address,
                     functools.partial(_queue_tap_error, self._tap_errors, slot.key,
                                       message.leg))
        slot.taps[message.leg] = tap
        if legslot.leg.media is not None:
            self._run_tap(slot, legslot, tap)

    def _run_tap(self, slot: CallSlot, legslot: LegSlot, tap: LegTap) -> None:
        """Feed the tap from the leg's (new) media port; a failure drops the tap."""
        try:
            tap.start(legslot.leg.media)
        except Exception as exc:
            log.warning("call %s: cannot tap %s: %s", slot.key, legslot.name,
                        describe_error(exc))
            slot.taps.pop(legslot.name, None)
            tap.stop()
            self.send(p.CommandFailed(slot.key, "StartTap", 0, describe_error(exc)[:500]))

    def _stop_tap(self, message: p.StopTap) -> None:
        slot = self.slots.get(message.call)
        tap = slot.taps.pop(message.leg, None) if slot is not None else None
        if tap is None:
            log.info("ignored StopTap of %s for call %s: not tapped", message.leg, message.call)
            return
        tap.stop()

    def _drain_tap_errors(self) -> None:
        """A consumer that went away or fell behind: tell the coordinator (main thread)."""
        while True:
            try:
                key, leg, why = self._tap_errors.get_nowait()
            except queue.Empty:
                return
            log.warning("call %s: tap of %s: %s", key, leg, why)
            if key in self.slots:
                self.send(p.CommandFailed(key, "StartTap", 0, f"{leg}: {why}"[:500]))

    def _play(self, message: p.PlayFiles) -> None:
        slot = self._live(message)
        if slot is None:
            return
        target = slot.live(message.leg)
        if target is None or message.token in slot.playbacks:
            why = (f"no leg {message.leg!r}" if target is None
                   else f"token {message.token} already playing")
            self._failed(message, why)
            if target is None:
                self.send(p.PlaybackDone(slot.key, message.token))
            return
        playback = Playback(message.token, message.paths, message.loop,
                            functools.partial(self._on_eof, slot.key))
        slot.playbacks[message.token] = playback
        slot.targets[message.token] = message.leg
        if target.leg.media is not None:
            self._start_playback(slot, message.token, playback)

    def _start_playback(self, slot: CallSlot, token: int, playback: Playback) -> None:
        """Start (or, after a media change, reconnect) a playback; a failure ends it."""
        target = slot.legs[slot.targets[token]]
        try:
            if not playback.started:
                playback.start([target.leg.media])
            else:
                playback.connect(target.leg.media)
            if target.name == CALLER:
                for recording in slot.recordings.values():
                    recording.hear(playback.source)
        except Exception as exc:
            log.warning("call %s: playback %d failed: %s", slot.key, token, describe_error(exc))
            slot.playbacks.pop(token, None)
            slot.targets.pop(token, None)
            playback.stop()
            self.send(p.CommandFailed(slot.key, "PlayFiles", token, describe_error(exc)[:500]))
            self.send(p.PlaybackDone(slot.key, token))

    def _on_eof(self, key: str, token: int) -> None:
        """End of a playlist; may run on a media thread, so it only queues."""
        self._eofs.put((key, token))
        self.wake()

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
            if token == LOST_PROMPT_TOKEN and slot.hangup_after_prompt:
                self._end_all(slot, "coordinator_lost")

    def _end_playback(self, slot: CallSlot, token: int) -> None:
        playback = slot.playbacks.pop(token)
        slot.targets.pop(token, None)
        if playback.started:
            for recording in slot.recordings.values():
                recording.unhear(playback.source)
        playback.stop()
        if token != LOST_PROMPT_TOKEN:
            self.send(p.PlaybackDone(slot.key, token))

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
        caller = slot.live(CALLER)
        if caller is not None and caller.leg.media is not None:
            self._start_recording(slot, message.token, recording)

    def _start_recording(self, slot: CallSlot, token: int, recording: StereoRecording) -> None:
        """Start (or reconnect) a recording; one that cannot start is dropped and reported."""
        heard = [pb.source for t, pb in slot.playbacks.items()
                 if pb.started and slot.targets.get(t) == CALLER]
        heard += list(slot.heard.values())
        caller = slot.legs[CALLER].leg.media
        try:
            if not recording.started:
                recording.start(caller, heard)
            else:
                recording.listen(caller)
                for source in heard:
                    recording.hear(source)
        except Exception as exc:
            log.warning("call %s: recording %d failed: %s", slot.key, token,
                        describe_error(exc))
            slot.recordings.pop(token, None)
            self.send(p.CommandFailed(slot.key, "Record", token, describe_error(exc)[:500]))

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
        self.wake()

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
                self.send(p.CommandFailed(key, "Record", token, describe_error(exc)[:500]))
                continue
            self.send(p.RecordingDone(key, token, result.path, result.seconds, result.sha256))

    def _hangup(self, message: p.Hangup) -> None:
        slot = self._live(message)
        if slot is None:
            return
        if not message.leg:
            self._end_all(slot, message.reason or "hangup")
            return
        legslot = slot.live(message.leg)
        if legslot is None:
            log.info("ignored Hangup of leg %s of call %s: not up", message.leg, slot.key)
            return
        legslot.hangup_reason = message.reason or "hangup"
        legslot.leg.end()

    def _end_all(self, slot: CallSlot, reason: str) -> None:
        for legslot in slot.legs.values():
            if not legslot.ended:
                legslot.hangup_reason = legslot.hangup_reason or reason
                try:
                    legslot.leg.end()
                except Exception as exc:
                    log.info("call %s: hanging up %s: %s", slot.key, legslot.name,
                             describe_error(exc))

    # --- release --------------------------------------------------------------------------

    def _release_finished(self) -> None:
        """Release ended legs and calls outside callbacks: players, recorders, then legs."""
        while self._ended_legs:
            key, name = self._ended_legs.pop(0)
            slot = self.slots.get(key)
            if slot is None:
                continue
            legslot = slot.legs.get(name)
            if legslot is not None:
                self._leg_gone(slot, legslot)
            if slot.over:
                self._release_call(slot)
        for slot in [s for s in self.slots.values() if s.over]:  # e.g. shutdown's timeout
            self._release_call(slot)

    def _leg_gone(self, slot: CallSlot, legslot: LegSlot) -> None:
        """One leg ended: stop what played to it; the caller's end ends the whole call."""
        try:
            tap = slot.taps.pop(legslot.name, None)
            if tap is not None:
                tap.stop()
            for token in [t for t, n in slot.targets.items() if n == legslot.name]:
                self._end_playback(slot, token)
        except Exception:
            log.exception("call %s: releasing %s's playbacks failed", slot.key, legslot.name)
        legslot.leg.listener = None
        del slot.legs[legslot.name]  # drops the Leg: pjsua2 releases it on this thread
        slot.group = tuple(n for n in slot.group if n != legslot.name)
        if legslot.name == CALLER:
            self._end_all(slot, "caller_gone")
        elif self._orphan_since is not None and not slot.bridged:
            # Nobody can decide for the caller now: the conversation is over.
            self._end_all(slot, "peer_gone")

    def _release_call(self, slot: CallSlot) -> None:
        try:
            for tap in slot.taps.values():
                tap.stop()
            slot.taps.clear()
            for token in list(slot.recordings):
                self._close_recording(slot, token)
            for token in list(slot.playbacks):
                self._end_playback(slot, token)
        except Exception:
            log.exception("call %s: releasing its media failed", slot.key)
        finally:
            for legslot in slot.legs.values():
                legslot.leg.listener = None
            slot.legs.clear()
            self.slots.pop(slot.key, None)


def _queue_tap_error(errors: queue.SimpleQueue[tuple[str, str, str]], key: str, leg: str,
                     why: str) -> None:
    """A tap's sender thread reports trouble: only queue it (no pjsua2, no Worker ref)."""
    errors.put((key, leg, why))


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hotline.telephony.worker",
                                     description="hotline media worker (pjsua2)")
    parser.add_argument("--id", required=True, help="worker id reported in WorkerReady")
    parser.add_argument("--sip-port", type=int, required=True, help="SIP port (UDP and TCP)")
    parser.add_argument("--rtp-port", type=int, required=True, help="first RTP port")
    parser.add_argument("--rtp-ports", type=int, default=0,
                        help="RTP ports to use from --rtp-port (default: 2 per leg)")
    parser.add_argument("--control", required=True,
                        help="coordinator HOST:PORT, or the path of its unix socket")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind SIP and RTP to")
    parser.add_argument("--proxy", default="", help="outbound proxy for originated legs")
    parser.add_argument("--lost-prompt", default="",
                        help="WAV for IVR callers when the coordinator is lost")
    parser.add_argument("--no-reconnect", action="store_true",
                        help="stop when the coordinator is lost, even with bridged calls")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--pj-log-level", type=int, default=1, help="pjsip log level 0-6")
    return parser.parse_args(argv)


def _open(address: str) -> socket.socket:
    """One connection attempt to the coordinator (TCP HOST:PORT or a unix socket path)."""
    if address.startswith("/"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(5)
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        sock.settimeout(None)
        return sock
    host, _, port = address.rpartition(":")
    sock = socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=5)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _connect(address: str) -> socket.socket:
    """Connect to the coordinator, retrying briefly while it starts listening."""
    deadline = time.monotonic() + CONNECT_RETRY
    while True:
        try:
            return _open(address)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


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
    control = Control(sock, queue.Queue(), waker)

    def factory(worker: Worker) -> SipEndpoint:
        return SipEndpoint(args.host, args.sip_port, args.rtp_port, worker,
                           rtp_ports=args.rtp_ports, pj_log_level=args.pj_log_level,
                           proxy=args.proxy)

    reconnect = None if args.no_reconnect else functools.partial(_open, args.control)
    worker = Worker(args.id, factory, control, reconnect=reconnect,
                    lost_prompt=args.lost_prompt)

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
