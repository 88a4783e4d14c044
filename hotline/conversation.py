"""Lawyer legs of a live call: ring, bridge, hold, transfer (blind and attended), conference.

The coordinator's half of the talking part of a call; it runs on the event loop like
:class:`~hotline.callcenter.CallCenter`, which owns it and hands it the worker events about
legs other than the caller's. Media happens in the call's worker (one pjsua2 bridge per
call); here we only decide who talks to whom (``Connect``), what the caller hears while
waiting (hold music), which leg is "the lawyer", and write every step to the ledger.

Roles of an originated leg:

* ``lawyer``: rung for a queued caller on the phone of the lawyer the duty desk
  (:mod:`hotline.acd.desk`) picked; answering bridges it to the caller.
* ``transfer``: the target of a blind transfer (another lawyer or an outside number); the
  caller hears hold music until it answers, then talks to it. A failed blind transfer
  rings the lawyer who transferred once more ("recall"); failing that, the call ends.
* ``consult``: the target of an attended transfer; it talks to the lawyer while the caller
  holds. Then the lawyer completes the transfer, joins all three in a conference, or
  cancels. A lawyer who hangs up during the consultation completes it.

The public methods (:meth:`hold`, :meth:`transfer`, ...) are what the agent API calls for a
lawyer; a command in the wrong state raises :class:`CallControlError` and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from hotline import events as ev
from hotline.callbacks import PREFIX as CALLBACK_PREFIX
from hotline.callers import mask_number
from hotline.domain import AgentState, CallEventKind, EndReason
from hotline.errors import DomainError
from hotline.store import calls as ledger_calls
from hotline.store.callers import caller_history
from hotline.telephony import protocol as p

if TYPE_CHECKING:
    from hotline.callcenter import CallCenter, LiveCall

log = logging.getLogger("hotline.conversation")

CALLER = "caller"
HOLD_MUSIC = "hold_music"  # the prompt catalogue's entry for music on hold
# While callers wait, the desk routes again this often (escalation steps, freed lawyers).
ROUTE_EVERY = 1.0
# Why a lawyer's ringing leg ended without it being the lawyer's doing.
_RELEASED = {"answered_elsewhere", "overflow", "not_needed", "caller_gone"}
# Outside numbers: digits with an optional leading + (what the SIP front relays to the trunk).
_NUMBER = re.compile(r"^\+?[0-9]{1,32}$")

Role = Literal["lawyer", "transfer", "consult"]


class CallControlError(DomainError):
    """A lawyer's command that does not fit the call's state (or names no live call)."""

    default_code = "call.bad_state"


@dataclass
class AgentLeg:
    """One originated leg as the coordinator tracks it."""

    name: str
    uri: str
    role: Role
    state: Literal["ringing", "up", "ended"] = "ringing"
    timer: asyncio.TimerHandle | None = None
    codec: str = ""
    agent: str = ""  # the lawyer's work id when the desk rang them
    answered_at: datetime | None = None


@dataclass
class ConsoleOffer:
    """An offer waiting for a lawyer's accept in the console (their phone not yet dialled)."""

    call: str
    timer: asyncio.TimerHandle


class Conversations:
    """The talking part of every live call; see the module docstring."""

    def __init__(self, center: CallCenter) -> None:
        self.center = center
        self._tick: asyncio.TimerHandle | None = None
        self.console_offers: dict[str, ConsoleOffer] = {}  # by work id

    # --- API for lawyers (the agent API calls these) ------------------------------------

    def hold(self, key: str) -> None:
        """Put the caller on hold: music for the caller, silence for the lawyer."""
        call = self._call(key)
        lawyer = self._require_lawyer(call)
        if call.held or call.consult:
            raise CallControlError("call.bad_state", action="hold", state=self._state(call))
        call.held = True
        self._send(call, p.Connect(call.key, (lawyer.name,)))
        self.music_on(call)
        self._event(call, CallEventKind.HOLD, {"leg": lawyer.name})
        self.notify(call)

    def unhold(self, key: str) -> None:
        """Take the caller off hold."""
        call = self._call(key)
        lawyer = self._require_lawyer(call)
        if not call.held or call.consult:
            raise CallControlError("call.bad_state", action="unhold", state=self._state(call))
        self._talk(call, lawyer.name)
        self._event(call, CallEventKind.UNHOLD, {"leg": lawyer.name})
        self.notify(call)

    def transfer(self, key: str, target: str = "", attended: bool = False, *,
                 lawyer_id: str = "", queue: str = "") -> str:
        """Transfer the caller; returns the new leg's name ("" for a queue).

        Targets: a SIP URI or an outside number (``target``), a lawyer on duty by work id
        (``lawyer_id``), or a queue (``queue``, blind only). Blind: the lawyer leaves at
        once and the caller waits with music for the target (in a queue: like any caller,
        keeping their priority). Attended: the caller holds while the lawyer consults the
        target; then :meth:`complete_transfer`, :meth:`conference` or
        :meth:`cancel_transfer`.
        """
        call = self._call(key)
        lawyer = self._require_lawyer(call)
        if call.consult:
            raise CallControlError("call.bad_state", action="transfer", state=self._state(call))
        if queue:
            if attended or queue not in self.center.desk.queues:
                raise CallControlError("call.bad_target", target=queue)
            self._to_queue(call, lawyer, queue)
            return ""
        agent = ""
        if lawyer_id:
            uri, outside, agent = self._claim(lawyer_id), False, lawyer_id
            target = f"lawyer:{lawyer_id}"
        else:
            uri, outside = self.target_uri(target)
        mode = "attended" if attended else "blind"
        self._event(call, CallEventKind.TRANSFER, {"mode": mode, "stage": "started",
                                                   "to": _mask(target), "from": lawyer.name})
        if attended:
            call.held = True
            self._send(call, p.Connect(call.key, (lawyer.name,)))
            self.music_on(call)
            name = self._originate(call, "consult", uri)
            call.legs[name].agent = agent
            call.consult = name
            self.notify(call)
            return name
        call.recall_uri = lawyer.uri
        call.outside = outside
        lawyer.state = "ended"
        self._send(call, p.Hangup(call.key, "transferred", leg=lawyer.name))
        call.lawyer = None
        call.held = False
        self.music_on(call)
        name = self._originate(call, "transfer", uri)
        call.legs[name].agent = agent
        self.notify(call)
        return name

    def _claim(self, work_id: str) -> str:
        """A lawyer on duty and free, reserved for a transfer; their phone's URI."""
        desk, now = self.center.desk, self.center.now()
        agent = desk.agents.get(work_id)
        if agent is None or not agent.takes_calls:
            raise CallControlError("call.lawyer_busy", lawyer=work_id)
        desk.claim(work_id, now)
        return desk.phones[work_id]

    def _to_queue(self, call: LiveCall, lawyer: AgentLeg, queue: str) -> None:
        """Blind transfer to a queue: the lawyer leaves, the caller waits there."""
        self._event(call, CallEventKind.TRANSFER, {"mode": "blind", "stage": "queued",
                                                   "to": queue, "from": lawyer.name})
        self._send(call, p.Hangup(call.key, "transferred", leg=lawyer.name))
        call.lawyer, call.held, call.queue = None, False, queue
        call.queued_since = self.center.now()
        self.music_on(call)
        self.queued(call)
        self.notify(call)

    def complete_transfer(self, key: str) -> None:
        """Attended transfer: the caller talks to the consulted party, the lawyer leaves."""
        call = self._call(key)
        lawyer = self._require_lawyer(call)
        consult = self._require_consult(call)
        lawyer.state = "ended"
        self._send(call, p.Hangup(call.key, "transferred", leg=lawyer.name))
        self._promote(call, consult)
        self._event(call, CallEventKind.TRANSFER, {"mode": "attended", "stage": "completed",
                                                   "to": consult.name})
        self.notify(call)

    def cancel_transfer(self, key: str) -> None:
        """Attended transfer: drop the consulted party, the caller talks to the lawyer again."""
        call = self._call(key)
        lawyer = self._require_lawyer(call)
        if not call.consult:
            raise CallControlError("call.bad_state", action="cancel_transfer",
                                   state=self._state(call))
        consult = call.legs[call.consult]
        consult.state = "ended"
        call.consult = None
        self._send(call, p.Hangup(call.key, "cancelled", leg=consult.name))
        self._talk(call, lawyer.name)
        self._event(call, CallEventKind.TRANSFER, {"mode": "attended", "stage": "cancelled"})
        self.notify(call)

    def conference(self, key: str) -> None:
        """Join caller, lawyer and the consulted party in a three-way conference."""
        call = self._call(key)
        lawyer = self._require_lawyer(call)
        consult = self._require_consult(call)
        call.conference = True
        self._talk(call, lawyer.name, consult.name)
        self._event(call, CallEventKind.CONFERENCE, {"legs": [CALLER, lawyer.name,
                                                              consult.name]})
        self.notify(call)

    def leave(self, key: str, leg: str) -> None:
        """A party leaves the conference; the other two go on talking."""
        call = self._call(key)
        if not call.conference or leg not in (call.lawyer, call.consult):
            raise CallControlError("call.bad_state", action="leave", state=self._state(call))
        self._send(call, p.Hangup(call.key, "left", leg=leg))

    def accept(self, key: str, work_id: str) -> None:
        """The lawyer accepts an offer in the console: their phone is dialled now.

        Only for lawyers signed in to accept in the console; an offer ringing on a phone is
        accepted by answering the phone (``offer.answer_on_phone``).
        """
        pending = self.console_offers.get(work_id)
        if pending is None or pending.call != key:
            call = self.center.calls.get(key)
            if call is not None and any(leg.agent == work_id and leg.state == "ringing"
                                        for leg in call.legs.values()):
                raise CallControlError("offer.answer_on_phone", call=key)
            raise CallControlError("offer.not_found", call=key)
        desk, now = self.center.desk, self.center.now()
        call = self.center.calls.get(key)
        self._drop_console_offer(work_id)
        if call is None or call.ended or not call.queued:
            desk.missed(work_id, key, now, released=True)
            self.route()
            raise CallControlError("offer.not_found", call=key)
        name = self._originate(call, "lawyer", desk.phones[work_id])
        call.legs[name].agent = work_id
        desk.ringing(work_id, now)
        self.notify(call)

    def offer_for(self, work_id: str) -> dict[str, Any] | None:
        """The offer now waiting for this lawyer (console or phone), for a console's hello."""
        pending = self.console_offers.get(work_id)
        if pending is not None and pending.call in self.center.calls:
            return {**self._offer_event(self.center.calls[pending.call]), "accept": "console"}
        for call in self.center.calls.values():
            if not call.ended and any(leg.agent == work_id and leg.role == "lawyer"
                                      and leg.state == "ringing" for leg in call.legs.values()):
                return {**self._offer_event(call), "accept": "phone"}
        return None

    def _drop_console_offer(self, work_id: str) -> None:
        pending = self.console_offers.pop(work_id, None)
        if pending is not None:
            pending.timer.cancel()

    def _console_offer_over(self, work_id: str, reason: str) -> None:
        """A console offer ends unaccepted: ``no_answer`` (a miss), ``rejected`` or released."""
        pending = self.console_offers.get(work_id)
        if pending is None:
            return
        self._drop_console_offer(work_id)
        desk, now = self.center.desk, self.center.now()
        desk.missed(work_id, pending.call, now, released=reason not in ("no_answer", "rejected"),
                    rejected=reason == "rejected")
        call = self.center.calls.get(pending.call)
        if call is not None and not call.ended:
            self._event(call, CallEventKind.OFFER_REJECTED, {"agent": work_id,
                                                             "reason": reason,
                                                             "in": "console"})
        self.center.publish({"type": "offer_gone", "call": pending.call, "reason": reason},
                            (work_id,), True)

    def _release_console_offers(self, key: str, reason: str) -> None:
        """Every console offer of call ``key`` ends (taken elsewhere, caller gone...)."""
        for work_id, pending in list(self.console_offers.items()):
            if pending.call == key:
                self._console_offer_over(work_id, reason)

    def reject(self, key: str, work_id: str) -> None:
        """The lawyer declines an offer (ringing on their phone or in the console)."""
        pending = self.console_offers.get(work_id)
        if pending is not None and pending.call == key:
            self._console_offer_over(work_id, "rejected")
            self.route()
            return
        call = self._call(key)
        ringing = [leg for leg in call.legs.values()
                   if leg.agent == work_id and leg.role == "lawyer" and leg.state == "ringing"]
        if not any(leg.agent == work_id for leg in call.legs.values()):
            raise CallControlError("call.not_found", call=key)  # not theirs to see
        if not ringing:
            raise CallControlError("call.bad_state", action="reject", state=self._state(call))
        for leg in ringing:
            self._send(call, p.Hangup(call.key, "rejected", leg=leg.name))

    def hangup(self, key: str) -> None:
        """The lawyer ends the call."""
        call = self._call(key)
        self._require_lawyer(call)
        call.end_reason = EndReason.LAWYER_HANGUP
        self._send(call, p.Hangup(call.key, "lawyer_hangup"))

    def target_uri(self, target: str) -> tuple[str, bool]:
        """A transfer target as a SIP URI; an outside number goes through the front's trunk."""
        if target.startswith(("sip:", "sips:")):
            return target, False
        if _NUMBER.match(target):
            sip = self.center.settings.sip
            return f"sip:{target}@{sip.host}:{sip.port}", True
        raise CallControlError("call.bad_target", target=target)

    # --- from the coordinator -----------------------------------------------------------

    def queued(self, call: LiveCall) -> None:
        """A caller entered a queue: the desk offers them to lawyers as they are free.

        A repeat caller waits a little for the lawyer of their last ticket first (首问负责),
        when that lawyer is on duty.
        """
        call.queued = True
        now = self.center.now()
        last = call.facts.last_lawyer if call.facts is not None else None
        wait = self.center.settings.callers.prefer_last_lawyer_seconds
        preferred = last if last and wait and last in self.center.desk.agents else None
        self.center.desk.enqueue(call.key, call.queue, call.queued_since or now,
                                 priority=call.priority, language=call.language,
                                 preferred=preferred,
                                 until=now + timedelta(seconds=wait) if preferred else None)
        self.route()

    def ask_for(self, call: LiveCall, work_id: str, timeout: int) -> None:
        """点名: the caller keyed a lawyer's work id; ring only them, for ``timeout`` s."""
        desk, now = self.center.desk, self.center.now()
        if work_id not in desk.agents:
            asyncio.get_running_loop().call_soon(
                self.center.feed, call, ev.TransferFailed("not_on_duty"))
            return
        call.queued, call.asked_for = True, work_id
        call.queued_since = call.queued_since or now
        desk.enqueue(call.key, "general", now, priority=call.priority,
                     language=call.language, preferred=work_id,
                     until=now + timedelta(seconds=timeout))
        self.music_on(call)
        call.asked_timer = asyncio.get_running_loop().call_later(
            timeout, self._ask_timed_out, call)
        self.route()

    def _ask_timed_out(self, call: LiveCall) -> None:
        call.asked_timer = None
        if not call.queued or call.ended or call.lawyer is not None:
            return
        self.stop_waiting(call)
        self._music_off(call)
        self.center.feed(call, ev.TransferFailed("no_answer"))

    def route(self) -> None:
        """Ring the lawyers the desk picks now; keep routing while callers wait."""
        desk, now = self.center.desk, self.center.now()
        for offer in desk.route(now):
            if offer.call.startswith(CALLBACK_PREFIX):  # a callback request's turn: the
                # hotline's own call is written first, then offered (Callbacks.start)
                self.center.callbacks.start(offer.call, offer.agents)
                continue
            call = self.center.calls.get(offer.call)
            for work_id in offer.agents:
                self.offer(call, work_id, offer.call)
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        if desk.waiting:
            self._tick = asyncio.get_running_loop().call_later(ROUTE_EVERY, self.route)
        self.center.publish_stats()

    def offer(self, call: LiveCall | None, work_id: str, key: str = "") -> None:
        """Offer ``call`` to the reserved lawyer ``work_id``: in the console, or ring them."""
        desk, now = self.center.desk, self.center.now()
        if call is None or call.ended or not call.queued:
            desk.missed(work_id, call.key if call else key, now, released=True)
            return
        agent = desk.agents.get(work_id)
        if agent is None or agent.state is not AgentState.RESERVED:
            return  # signed out (or released) while the offer was being prepared
        if work_id in desk.accept_in_console:
            self.console_offers[work_id] = ConsoleOffer(
                call.key, asyncio.get_running_loop().call_later(
                    self.center.settings.telephony.ring_timeout,
                    self._console_offer_timed_out, work_id))
            self.center.publish({**self._offer_event(call), "accept": "console"},
                                (work_id,), True)
            self._send_history(call, work_id)
            return
        name = self._originate(call, "lawyer", desk.phones[work_id])
        call.legs[name].agent = work_id
        desk.ringing(work_id, now)
        self.center.publish({**self._offer_event(call), "accept": "phone"}, (work_id,), True)
        self._send_history(call, work_id)

    def _send_history(self, call: LiveCall, work_id: str) -> None:
        """The caller's earlier tickets follow the offer on the lawyer's stream."""
        if not call.caller:
            return

        async def send() -> None:
            try:
                tickets = await self.center.ledger.run(caller_history, call.caller,
                                                       call.started)
            except Exception:  # noqa: BLE001 - the console can still ask over REST
                log.exception("来电人历史工单查询失败")
                return
            self.center.publish({"type": "caller_history", "call": call.key,
                                 "tickets": tickets}, (work_id,), False)

        asyncio.get_running_loop().create_task(send())

    def _console_offer_timed_out(self, work_id: str) -> None:
        self._console_offer_over(work_id, "no_answer")
        self.route()

    def call_out(self, call: LiveCall, number: str) -> None:
        """The IVR transfers the caller to an outside number (12345, 110...)."""
        try:
            uri, _ = self.target_uri(number)
        except CallControlError:
            log.warning("外线号码无效: %s", number)
            self._give_up(call)
            return
        call.outside = True
        self._event(call, CallEventKind.TRANSFER, {"mode": "blind", "stage": "started",
                                                   "to": _mask(number), "from": "ivr"})
        self.music_on(call)
        self._originate(call, "transfer", uri)

    def on_event(self, call: LiveCall, message: Any) -> None:
        """A worker event about a non-caller leg."""
        leg = call.legs.get(getattr(message, "leg", ""))
        if leg is None:
            return
        if isinstance(message, p.LegAnswered):
            leg.codec = message.codec
            self._answered(call, leg)
        elif isinstance(message, p.LegEnded):
            self._ended(call, leg, message)
        elif isinstance(message, p.Digit):
            log.debug("call %s: digit from %s ignored", call.key, leg.name)

    def caller_gone(self, call: LiveCall) -> None:
        """The caller hung up: the worker ends the other legs; stop our timers."""
        for leg in call.legs.values():
            if leg.timer is not None:
                leg.timer.cancel()
                leg.timer = None
        call.queued = False
        self.center.desk.withdraw(call.key)
        self._release_console_offers(call.key, "caller_gone")

    def stop_waiting(self, call: LiveCall) -> None:
        """The queue gave up on the call (overflow): stop ringing lawyers."""
        call.queued = False
        self.center.desk.withdraw(call.key)
        self._release_console_offers(call.key, "overflow")
        for leg in call.legs.values():
            if leg.role == "lawyer" and leg.state == "ringing":
                self._send(call, p.Hangup(call.key, "overflow", leg=leg.name))

    # --- internals ----------------------------------------------------------------------

    def _offer_event(self, call: LiveCall) -> dict[str, Any]:
        """What the console shows while the phone rings: the caller's facts, masked."""
        session = call.session
        variables = dict(session.vars) if session is not None else {}
        return {"type": "offer", "call": call.key, "ticket_no": call.ticket_no,
                "kind": "callback" if call.callback_id is not None else "call",
                "at": time.time(),  # when the server made the offer (epoch seconds)
                "caller": mask_number(call.caller), "line": call.line, "queue": call.queue,
                "priority": call.priority.value, "language": call.language.value,
                "region": call.facts.region if call.facts is not None else "",
                "repeat": bool(call.facts and call.facts.repeat),
                "category": variables.get("category"),
                "green_reasons": _green_reasons(call, variables),
                "ivr_path": [f"{f}/{n}" for f, n in session.path] if session else [],
                "waited": round((self.center.now() - call.queued_since).total_seconds())
                if call.queued_since else 0}

    def notify(self, call: LiveCall) -> None:
        """Tell the call's lawyers (and supervisors) its state."""
        self.center.publish({"type": "call", "call": call.key, "ticket_no": call.ticket_no,
                             "state": self._state(call),
                             "legs": {n: leg.state for n, leg in call.legs.items()}},
                            {leg.agent for leg in call.legs.values() if leg.agent}, True)

    def _call(self, key: str) -> LiveCall:
        call = self.center.calls.get(key)
        if call is None or call.ended:
            raise CallControlError("call.not_found", call=key)
        return call

    def _require_lawyer(self, call: LiveCall) -> AgentLeg:
        leg = call.legs.get(call.lawyer or "")
        if leg is None or leg.state != "up":
            raise CallControlError("call.bad_state", action="lawyer", state=self._state(call))
        return leg

    def _require_consult(self, call: LiveCall) -> AgentLeg:
        leg = call.legs.get(call.consult or "")
        if leg is None or leg.state != "up":
            raise CallControlError("call.bad_state", action="consult", state=self._state(call))
        return leg

    def state_of(self, call: LiveCall) -> str:
        """ivr, queued, talking, held, consulting or conference."""
        return self._state(call)

    @staticmethod
    def _state(call: LiveCall) -> str:
        if call.conference:
            return "conference"
        if call.consult:
            return "consulting"
        if call.held:
            return "held"
        if call.lawyer:
            return "talking"
        return "queued" if call.queued else "ivr"

    def event(self, call: LiveCall, kind: CallEventKind, data: dict[str, Any]) -> None:
        """Append to the call's timeline (when its row is written)."""
        self._event(call, kind, data)

    def talk_to(self, call: LiveCall, *legs: str) -> None:
        """The caller talks to ``legs`` (music off, nobody on hold)."""
        self._talk(call, *legs)

    def _send(self, call: LiveCall, message: Any) -> None:
        self.center.send(call.worker, message)

    def _event(self, call: LiveCall, kind: CallEventKind, data: dict[str, Any]) -> None:
        if call.db_id is not None:
            self.center.ledger.post(ledger_calls.append_events, call.db_id,
                                    [(self.center.now(), kind, data)])

    def _originate(self, call: LiveCall, role: Role, uri: str) -> str:
        call.leg_seq += 1
        name = f"{role}{call.leg_seq}"
        leg = AgentLeg(name, uri, role)
        call.legs[name] = leg
        leg.timer = asyncio.get_running_loop().call_later(
            self.center.settings.telephony.ring_timeout, self._ring_timeout, call, leg)
        # A call the hotline places (a callback) is opened in the worker by its first leg.
        self._send(call, p.Originate(call.key, name, uri,
                                     new_call=call.callback_id is not None))
        self._event(call, CallEventKind.OFFER, {"leg": name, "role": role,
                                                "to": _mask_uri(uri)})
        return name

    def _ring_timeout(self, call: LiveCall, leg: AgentLeg) -> None:
        leg.timer = None
        if leg.state == "ringing" and not call.ended:
            self._send(call, p.Hangup(call.key, "no_answer", leg=leg.name))

    def music_on(self, call: LiveCall) -> None:
        """Music on hold for the caller (no-op while it plays)."""
        if call.hold_token is not None:
            return
        path = self.center.prompt_path(HOLD_MUSIC)
        if path is None:
            return
        call.hold_token = self.center.next_hold_token()
        self._send(call, p.PlayFiles(call.key, call.hold_token, (str(path),), loop=True))

    def _music_off(self, call: LiveCall) -> None:
        if call.hold_token is not None:
            self._send(call, p.StopPlayback(call.key, call.hold_token))
            call.hold_token = None

    def _talk(self, call: LiveCall, *legs: str) -> None:
        """The caller talks to ``legs`` (music off, nobody on hold)."""
        self._music_off(call)
        call.held = False
        self._send(call, p.Connect(call.key, (CALLER, *legs)))

    def _promote(self, call: LiveCall, leg: AgentLeg) -> None:
        """``leg`` becomes the caller's lawyer (after a transfer or when the lawyer left).

        A lawyer on duty who takes the caller over also takes the ticket (they close it).
        """
        call.lawyer, call.consult, call.conference = leg.name, None, False
        self._talk(call, leg.name)
        if leg.agent and call.db_id is not None:
            self.center.ledger.post(ledger_calls.assign_lawyer, call.db_id, leg.agent)

    def _answered(self, call: LiveCall, leg: AgentLeg) -> None:
        if leg.timer is not None:
            leg.timer.cancel()
            leg.timer = None
        if leg.state != "ringing" or call.ended:
            return
        leg.state = "up"
        at = self.center.now()
        leg.answered_at = at
        if leg.role == "lawyer":
            if not call.queued or call.lawyer is not None:
                self._send(call, p.Hangup(call.key, "not_needed", leg=leg.name))
                return
            call.queued = False
            if call.asked_timer is not None:
                call.asked_timer.cancel()
                call.asked_timer = None
            if leg.agent:
                self.center.desk.answered(leg.agent, call.key, at)
                if call.db_id is not None:
                    self.center.ledger.post(ledger_calls.assign_lawyer, call.db_id, leg.agent)
            self._release_console_offers(call.key, "answered_elsewhere")
            for other in call.legs.values():  # ring-all: the others stop ringing
                if other is not leg and other.role == "lawyer" and other.state == "ringing":
                    self._send(call, p.Hangup(call.key, "answered_elsewhere", leg=other.name))
            self.center.left_queue(call)
            call.lawyer, call.agent_since = leg.name, at
            if call.callback_id is not None:  # now ring the caller who asked for it
                self.center.callbacks.lawyer_answered(call)
                self._event(call, CallEventKind.AGENT_ANSWERED, {"leg": leg.name,
                                                                 "to": _mask_uri(leg.uri)})
                self.notify(call)
                return
            self._talk(call, leg.name)
            if call.db_id is not None:
                self.center.ledger.post(ledger_calls.update_call, call.db_id,
                                        agent_answered_at=at)
            self._event(call, CallEventKind.AGENT_ANSWERED, {"leg": leg.name,
                                                             "to": _mask_uri(leg.uri),
                                                             "codec": leg.codec})
            self.center.feed(call, ev.QueueAnswered(leg.uri))
            log.info("律师已接听: 工单 %s (%s)", call.ticket_no, _mask_uri(leg.uri))
            self.center.speech.leg_up(call, leg.name)
            self.notify(call)
        elif leg.role == "transfer":
            if leg.agent:
                self.center.desk.answered(leg.agent, call.key, at)
            self._promote(call, leg)
            self._event(call, CallEventKind.TRANSFER, {"stage": "answered", "to": leg.name})
            self.center.speech.leg_up(call, leg.name)
        else:  # consult: the lawyer and the consulted party talk, the caller holds
            if leg.agent:
                self.center.desk.answered(leg.agent, call.key, at)
            self._send(call, p.Connect(call.key, tuple(n for n in (call.lawyer, leg.name)
                                                       if n)))
            self._event(call, CallEventKind.TRANSFER, {"mode": "attended",
                                                       "stage": "consulting"})
            self.center.speech.leg_up(call, leg.name)

    def _ended(self, call: LiveCall, leg: AgentLeg, message: p.LegEnded) -> None:
        if leg.timer is not None:
            leg.timer.cancel()
            leg.timer = None
        was = leg.state
        leg.state = "ended"
        if leg.agent:
            self._agent_leg_ended(call, leg, message.reason)
        if call.ended and call.recording_id is None and all(
                other.state == "ended" for other in call.legs.values()):
            self.center.calls.pop(call.key, None)  # nothing more to wait for
        if call.ended or message.reason == "caller_gone":
            return  # the call's own end says it all; its timeline ends with ENDED
        self._event(call, CallEventKind.LEG_ENDED, {"leg": leg.name, "role": leg.role,
                                                    "reason": message.reason,
                                                    "status": message.status})
        if was == "ringing":
            self._not_reached(call, leg, message.reason)
        elif leg.name == call.consult:
            call.consult = None
            if call.lawyer and call.legs[call.lawyer].state == "up":
                was_conference = call.conference
                call.conference = False
                self._talk(call, call.lawyer)
                if not was_conference:
                    self._event(call, CallEventKind.TRANSFER, {"mode": "attended",
                                                               "stage": "cancelled"})
        elif leg.name == call.lawyer:
            call.lawyer = None
            consult = call.legs.get(call.consult or "")
            if consult is not None and consult.state == "up":
                # The lawyer left the conference, or hung up while consulting: the
                # consulted party stays with the caller (the transfer completes).
                self._promote(call, consult)
                self._event(call, CallEventKind.TRANSFER, {"mode": "attended",
                                                           "stage": "completed"})
            elif message.reason != "transferred":
                self._lawyer_left(call)
        self.notify(call)

    def _agent_leg_ended(self, call: LiveCall, leg: AgentLeg, reason: str) -> None:
        """Tell the desk: an offer that ended unanswered, or a conversation over.

        Whether the lawyer had answered is what counts (the leg's state may already say
        "ended" when we hung it up ourselves, e.g. for a transfer).
        """
        desk, now = self.center.desk, self.center.now()
        if leg.answered_at is None:
            desk.missed(leg.agent, call.key, now, released=reason in _RELEASED,
                        rejected=reason == "rejected")
            if leg.role == "lawyer":
                self.center.publish({"type": "offer_gone", "call": call.key,
                                     "reason": reason}, (leg.agent,), True)
        else:
            talked = (now - leg.answered_at).total_seconds()
            wrap = desk.hung_up(leg.agent, talked, now)
            work_id = leg.agent
            asyncio.get_running_loop().call_later(wrap, self._wrapped, work_id)
        self.route()

    def _wrapped(self, work_id: str) -> None:
        self.center.desk.wrap_done(work_id, self.center.now())
        self.route()

    def _not_reached(self, call: LiveCall, leg: AgentLeg, reason: str) -> None:
        if leg.role == "lawyer":
            self._event(call, CallEventKind.OFFER_REJECTED, {"leg": leg.name,
                                                             "reason": reason})
        elif leg.role == "consult":
            call.consult = None
            if call.lawyer:
                self._talk(call, call.lawyer)
            self._event(call, CallEventKind.TRANSFER, {"mode": "attended", "stage": "failed",
                                                       "reason": reason})
        else:
            self._event(call, CallEventKind.TRANSFER, {"stage": "failed", "reason": reason})
            if call.recall_uri:
                uri, call.recall_uri = call.recall_uri, ""
                call.outside = False
                self._originate(call, "transfer", uri)  # back to the lawyer who transferred
            else:
                self._give_up(call)

    def _lawyer_left(self, call: LiveCall) -> None:
        """The lawyer (or the outside party) hung up; the caller is still there."""
        call.end_reason = EndReason.TRANSFERRED if call.outside else EndReason.LAWYER_HANGUP
        session = call.session
        if session is not None and not session.done and session.waiting_for == "agent":
            self.center.feed(call, ev.AgentLeft())  # e.g. the after-call survey
        else:
            self._send(call, p.Hangup(call.key, call.end_reason.value))

    def _give_up(self, call: LiveCall) -> None:
        """Nobody could take the call: tell the caller, then hang up."""
        call.end_reason = EndReason.FAILED
        self._music_off(call)
        path = self.center.system_prompt("transfer_failed")
        call.hangup_after_token = self.center.next_hold_token()
        self._send(call, p.PlayFiles(call.key, call.hangup_after_token, (str(path),)))


def _green_reasons(call: LiveCall, variables: dict[str, Any]) -> list[str]:
    """Why the caller is in the green channel: keyed in the IVR or a known caller."""
    reasons = [str(variables["green_reason"])] if variables.get("green_reason") else []
    if call.facts is not None:
        reasons += [r.value for r in call.facts.green_reasons if r.value not in reasons]
    return reasons


def _mask(target: str) -> str:
    """Outside numbers are shown like callers' numbers in the ledger and logs."""
    return mask_number(target) if _NUMBER.match(target) else _mask_uri(target)


def _mask_uri(uri: str) -> str:
    """``sip:13800138000@host`` → ``sip:138****8000@host``; lawyers' extensions stay."""
    match = re.match(r"^(sips?:)([^@]+)(@.*)?$", uri)
    if not match:
        return uri
    user = match.group(2)
    shown = mask_number(user) if user.isdigit() and len(user) > 6 else user
    return f"{match.group(1)}{shown}{match.group(3) or ''}"


def now_epoch(at: float, fallback: datetime) -> datetime:
    """A worker's epoch timestamp as an aware datetime (``fallback`` when it sent none)."""
    if at <= 0:
        return fallback
    return datetime.fromtimestamp(at, tz=fallback.tzinfo)
