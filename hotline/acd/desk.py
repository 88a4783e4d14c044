"""The duty desk: lawyers' live states and the waiting callers, fed to the router.

A thin stateful holder around the pure parts (:mod:`hotline.acd.agents`,
:mod:`hotline.acd.router`); the coordinator (:mod:`hotline.conversation`) tells it what
happens (a caller queued, a phone rang, answered, missed, a conversation ended) and asks
it whom to ring (:meth:`Desk.route`). It does no I/O; ``now`` comes from the owner and the
wrap-up timers are the owner's to run (:meth:`Desk.wrap_up_seconds`).

Duty phones from ``telephony.lawyer_uris`` are logged in as lawyers of every skill and
language who never go on break by themselves (nobody can put them back).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime

from hotline.acd.agents import MAX_MISSED_OFFERS, Agent, AgentEvent, apply
from hotline.acd.router import EscalationStep, Offer, QueueSpec, RouterMemory, WaitingCall, route
from hotline.config import QueueSettings
from hotline.domain import AgentState, AgentStatus, Language, Priority
from hotline.errors import DomainError

# Default routing steps for a queue: lower proficiency after 30 s, the 综合 queue's lawyers
# after 60 s, anyone speaking the caller's language after 120 s.
DEFAULT_STEPS = (EscalationStep(30, min_proficiency=1),
                 EscalationStep(60, queues=("general",)),
                 EscalationStep(120, any_lawyer=True))


def queue_specs(queues: Mapping[str, QueueSettings]) -> dict[str, QueueSpec]:
    """The router's view of the configured queues."""
    return {code: QueueSpec(code, q.skills, q.strategy, min_proficiency=1,
                            steps=DEFAULT_STEPS if code != "general" else DEFAULT_STEPS[2:])
            for code, q in queues.items()}


class Desk:
    """Lawyers and waiting callers of one node.

    Args:
        queues: The configured queues (strategy, skills, wrap-up).
        on_change: Called with (work id, agent, event) after every change of a lawyer (the
            owner writes agent_events and tells the consoles).
    """

    def __init__(self, queues: Mapping[str, QueueSettings],
                 on_change: Callable[[str, Agent, AgentEvent], None] = lambda w, a, e: None,
                 ) -> None:
        self.settings = dict(queues)
        self.queues = queue_specs(queues)
        self.on_change = on_change
        self.agents: dict[str, Agent] = {}
        self.phones: dict[str, str] = {}
        self.static: set[str] = set()
        # Lawyers who accept offers in the console; their phone is dialled (and answers by
        # itself) only after they accept. The others' phones ring at once.
        self.accept_in_console: set[str] = set()
        self.waiting: dict[str, WaitingCall] = {}
        self.memory = RouterMemory()
        # The roster: lawyers on duty now (None: not in force, anyone logged in may take
        # calls), and lawyers whose shift ended, logged out once their call and wrap-up end.
        self.duty: frozenset[str] | None = None
        self.leaving: set[str] = set()
        self.on_logout: Callable[[str, str], None] = lambda work_id, why: None
        self.on_duty_change: Callable[[str, Agent], None] = lambda work_id, agent: None

    # --- lawyers ------------------------------------------------------------------------

    def login(self, work_id: str, phone: str, now: datetime, *,
              skills: Mapping[str, int] | None = None,
              languages: frozenset[Language] | None = None, static: bool = False,
              accept_in_console: bool = False) -> Agent:
        """A lawyer starts taking calls on ``phone`` (a SIP URI).

        ``accept_in_console``: offers wait for the lawyer's accept in the console, then the
        phone is dialled and must answer by itself (the console's softphone, a headset
        phone set to auto-answer).
        """
        if not phone:
            raise DomainError("agent.no_phone", agent=work_id)
        agent = self.agents.get(work_id) or Agent(
            work_id, skills=dict(skills or {}),
            languages=languages or frozenset({Language.MANDARIN}), order=len(self.agents))
        agent = replace(agent, on_duty=static or self.duty is None or work_id in self.duty)
        self.leaving.discard(work_id)
        self.phones[work_id] = phone
        if static:
            self.static.add(work_id)
        if accept_in_console:
            self.accept_in_console.add(work_id)
        else:
            self.accept_in_console.discard(work_id)
        return self._apply(work_id, agent, AgentEvent.LOGIN, now)

    def logout(self, work_id: str, now: datetime) -> Agent:
        """Stop taking calls (refused mid-call: finish the call first)."""
        return self._apply(work_id, self._agent(work_id), AgentEvent.LOGOUT, now)

    def pause(self, work_id: str, reason: str, now: datetime) -> Agent:
        """On break (小休) with a reason."""
        return self._apply(work_id, self._agent(work_id), AgentEvent.BREAK, now, reason=reason)

    def resume(self, work_id: str, now: datetime) -> Agent:
        """Back from a break."""
        return self._apply(work_id, self._agent(work_id), AgentEvent.AVAILABLE, now)

    def claim(self, work_id: str, now: datetime) -> None:
        """Reserve a free lawyer outside the router (a transfer to them by work id)."""
        self._apply(work_id, self._agent(work_id), AgentEvent.RESERVE, now)
        self._apply(work_id, self.agents[work_id], AgentEvent.RING, now)

    def ringing(self, work_id: str, now: datetime) -> None:
        """The lawyer's phone rings for an offer."""
        self._apply(work_id, self._agent(work_id), AgentEvent.RING, now)

    def answered(self, work_id: str, call: str, now: datetime) -> None:
        """The lawyer took the call: it leaves the queue."""
        self.waiting.pop(call, None)
        self._apply(work_id, self._agent(work_id), AgentEvent.ANSWER, now)

    def missed(self, work_id: str, call: str, now: datetime, *, released: bool = False,
               rejected: bool = False) -> None:
        """An offer ended unanswered.

        ``released``: not the lawyer's doing; ``rejected``: the lawyer declined it, which is
        not counted as a miss.
        """
        agent = self.agents.get(work_id)
        if agent is None or agent.state not in (AgentState.RESERVED, AgentState.RINGING):
            return
        event = (AgentEvent.RELEASE if released else AgentEvent.REJECT if rejected
                 else AgentEvent.MISS)
        max_missed = 10**9 if work_id in self.static else MAX_MISSED_OFFERS
        self._apply(work_id, agent, event, now, max_missed=max_missed)
        if work_id in self.leaving:
            self._leave_if_idle(work_id, now)
        waiting = self.waiting.get(call)
        if waiting is not None:
            ringing = tuple(a for a in waiting.ringing if a != work_id)
            self.waiting[call] = replace(waiting, ringing=ringing,
                                         offered_at=waiting.offered_at if ringing else None)

    def hung_up(self, work_id: str, talk_seconds: float, now: datetime) -> int:
        """The conversation ended: wrap-up starts; returns its length in seconds."""
        agent = self.agents.get(work_id)
        if agent is None or agent.state is not AgentState.IN_CALL:
            return 0
        self._apply(work_id, agent, AgentEvent.HANGUP, now, talk_seconds=talk_seconds)
        return 0 if work_id in self.static else self.wrap_up_seconds(work_id)

    def wrap_done(self, work_id: str, now: datetime) -> None:
        """Wrap-up over (timer or the lawyer submitted the ticket)."""
        agent = self.agents.get(work_id)
        if agent is not None and agent.state is AgentState.WRAP_UP:
            self._apply(work_id, agent, AgentEvent.WRAP_DONE, now)
        if work_id in self.leaving:
            self._leave_if_idle(work_id, now)

    def wrap_up_seconds(self, work_id: str) -> int:
        """Wrap-up time after a call (the longest of the lawyer's queues')."""
        agent = self.agents.get(work_id)
        if agent is None:
            return 0
        spans = [q.wrap_up for code, q in self.settings.items()
                 if set(q.skills) & set(agent.skills)]
        return max(spans, default=self.settings["general"].wrap_up
                   if "general" in self.settings else 30)

    def set_duty(self, duty: frozenset[str] | None, now: datetime, *,
                 ended: frozenset[str] = frozenset()) -> list[str]:
        """Apply the roster: who is on duty now (None: roster not in force).

        Lawyers in ``ended`` (their shift just ended) stop getting offers and are logged out
        when idle: at once, or after their call and wrap-up. Others off duty stay logged
        in without offers (early for their shift). Returns the work ids whose duty changed.
        """
        self.duty = duty
        changed = []
        for work_id, agent in list(self.agents.items()):
            should = work_id in self.static or duty is None or work_id in duty
            if work_id in ended and work_id not in self.static and not (
                    duty is not None and work_id in duty):
                self.leaving.add(work_id)  # also when the roster's last shift just ended
            elif should:
                self.leaving.discard(work_id)
            if agent.on_duty != should:
                self.agents[work_id] = replace(agent, on_duty=should)
                changed.append(work_id)
                self.on_duty_change(work_id, self.agents[work_id])
        for work_id in list(self.leaving):
            self._leave_if_idle(work_id, now)
        return changed

    def _leave_if_idle(self, work_id: str, now: datetime) -> None:
        agent = self.agents.get(work_id)
        if agent is None:
            self.leaving.discard(work_id)
            return
        if agent.state is AgentState.IDLE:
            self.leaving.discard(work_id)
            self._apply(work_id, agent, AgentEvent.LOGOUT, now)
            self.on_logout(work_id, "shift_end")

    # --- callers ------------------------------------------------------------------------

    def enqueue(self, call: str, queue: str, since: datetime, *,
                priority: Priority = Priority.NORMAL, language: Language = Language.MANDARIN,
                preferred: str | None = None, until: datetime | None = None) -> None:
        """A caller waits in ``queue`` (unknown queues wait in 综合 / the first queue).

        ``preferred`` is the lawyer they wait for alone until ``until`` (首问负责, 点名).
        """
        if queue not in self.queues:
            queue = "general" if "general" in self.queues else next(iter(self.queues))
        self.waiting[call] = WaitingCall(call, queue, since, priority, language,
                                         preferred_agent=preferred, preferred_until=until)

    def rekey(self, old: str, new: str) -> None:
        """A waiting entry goes on under another key (a callback request became a call)."""
        waiting = self.waiting.pop(old, None)
        if waiting is not None:
            self.waiting[new] = replace(waiting, id=new)

    def withdraw(self, call: str) -> None:
        """The caller left the queue (hung up, overflow)."""
        self.waiting.pop(call, None)

    def route(self, now: datetime) -> list[Offer]:
        """Offers to make now; the lawyers in them are reserved."""
        offers, self.memory = route(self.queues, self.agents.values(), self.waiting.values(),
                                    now, self.memory)
        for offer in offers:
            for work_id in offer.agents:
                self._apply(work_id, self.agents[work_id], AgentEvent.RESERVE, now)
            waiting = self.waiting[offer.call]
            self.waiting[offer.call] = replace(
                waiting, ringing=waiting.ringing + offer.agents,
                offered_at=waiting.offered_at or now)
        return offers

    # --- internals ----------------------------------------------------------------------

    def _agent(self, work_id: str) -> Agent:
        agent = self.agents.get(work_id)
        if agent is None:
            raise DomainError("agent.not_logged_in", agent=work_id)
        return agent

    def _apply(self, work_id: str, agent: Agent, event: AgentEvent, now: datetime,
               **kwargs: object) -> Agent:
        after = apply(agent, event, now, **kwargs)  # type: ignore[arg-type]
        if after.status is AgentStatus.LOGGED_OUT:
            self.agents.pop(work_id, None)
            self.accept_in_console.discard(work_id)
            self.leaving.discard(work_id)
        else:
            self.agents[work_id] = after
        self.on_change(work_id, after, event)
        return after
