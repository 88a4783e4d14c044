"""The router: which waiting caller is offered to which lawyer, as a pure function.

:func:`route` takes the queues, the lawyers, the waiting callers and ``now`` and returns the
offers to make. Nothing else goes in (randomness comes from ``seed``) and nothing is changed,
so the same inputs always give the same offers, and properties can be proven over random
inputs (tests/acd).

Order: callers are served by priority (urgent, green channel, normal), then by how long they
have waited, across all queues; each takes the lawyer its queue's strategy prefers among
those eligible, and that lawyer is gone for the callers after it. A lawyer is eligible for a
caller when available and idle, speaking the caller's language, and holding one of the
queue's skills at the required proficiency. The queue's escalation steps widen that with
the caller's wait (lower proficiency, other queues' skills, then any lawyer speaking the
caller's language), as Amazon Connect's routing steps do. A caller asking for a lawyer
(点名, or the lawyer of their last ticket: 首问负责) waits for that lawyer alone until
``preferred_until``.

Strategies are FreeSWITCH mod_callcenter's: ``ring-all`` and ``ring-progressively`` offer
one caller to several lawyers at once (one :class:`Offer`, several lawyers); the others
pick one.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hotline.acd.agents import Agent
from hotline.domain import Language, Priority, QueueStrategy

PRIORITY_RANK = {Priority.URGENT: 0, Priority.GREEN: 1, Priority.NORMAL: 2}
_EPOCH = datetime.min.replace(tzinfo=UTC)  # never idle-stamped: first in line


@dataclass(frozen=True)
class EscalationStep:
    """After ``after`` seconds of waiting, widen the match (steps add up)."""

    after: int
    min_proficiency: int | None = None  # accept lower proficiency
    queues: tuple[str, ...] = ()  # also the skills of these queues (e.g. the 综合 queue)
    any_lawyer: bool = False  # any lawyer who speaks the caller's language


@dataclass(frozen=True)
class QueueSpec:
    """One queue as the router needs it."""

    code: str
    skills: tuple[str, ...]
    strategy: QueueStrategy = QueueStrategy.LONGEST_IDLE_AGENT
    min_proficiency: int = 1
    steps: tuple[EscalationStep, ...] = ()
    # ring-progressively: another lawyer joins the ringing every this many seconds.
    progressive_every: int = 10


@dataclass(frozen=True)
class WaitingCall:
    """A caller in a queue. ``ringing`` lists lawyers already offered (with ``offered_at``)."""

    id: str
    queue: str
    since: datetime
    priority: Priority = Priority.NORMAL
    language: Language = Language.MANDARIN
    preferred_agent: str | None = None
    preferred_until: datetime | None = None
    ringing: tuple[str, ...] = ()
    offered_at: datetime | None = None


@dataclass(frozen=True)
class Offer:
    """Offer ``call`` to ``agents`` (all ring at once; the first to answer takes it).

    For a call that already rings, ``agents`` are the lawyers to add (ring-progressively).
    """

    call: str
    queue: str
    agents: tuple[str, ...]
    step: int  # escalation steps in force (0: the queue's own match)


@dataclass(frozen=True)
class RouterMemory:
    """What round-robin strategies remember between decisions: the last lawyer per queue."""

    last: Mapping[str, str] = field(default_factory=dict)


def caller_order(call: WaitingCall) -> tuple[int, datetime, str]:
    """Priority first, then the longest wait, then the id (a total order)."""
    return PRIORITY_RANK[call.priority], call.since, call.id


def active_steps(queue: QueueSpec, call: WaitingCall, now: datetime) -> int:
    """How many of the queue's escalation steps the caller's wait has reached."""
    waited = (now - call.since).total_seconds()
    return sum(1 for step in queue.steps if waited >= step.after)


def eligible(agent: Agent, call: WaitingCall, queue: QueueSpec,
             queues: Mapping[str, QueueSpec], now: datetime) -> bool:
    """Whether ``agent`` may be offered ``call`` now (see the module docstring)."""
    if not agent.takes_calls or call.language not in agent.languages:
        return False
    if (call.preferred_agent and call.preferred_until is not None
            and now < call.preferred_until):
        return agent.id == call.preferred_agent
    steps = queue.steps[:active_steps(queue, call, now)]
    if any(step.any_lawyer for step in steps):
        return True
    floor = min([queue.min_proficiency, *(s.min_proficiency for s in steps
                                          if s.min_proficiency is not None)])
    skills = set(queue.skills)
    for step in steps:
        for code in step.queues:
            other = queues.get(code)
            if other is not None:
                skills.update(other.skills)
    return any(agent.skills.get(skill, 0) >= floor for skill in skills)


def route(queues: Mapping[str, QueueSpec], agents: Iterable[Agent],
          calls: Iterable[WaitingCall], now: datetime, memory: RouterMemory = RouterMemory(),
          seed: int = 0) -> tuple[list[Offer], RouterMemory]:
    """The offers to make now, and the round-robin memory after them."""
    everyone = list(agents)
    positions = {a.id: (a.order, a.id) for a in everyone}
    free = {a.id: a for a in everyone if a.takes_calls}
    last = dict(memory.last)
    offers: list[Offer] = []
    for call in sorted(calls, key=caller_order):
        queue = queues.get(call.queue)
        if queue is None or not free:
            continue
        if call.ringing and queue.strategy is not QueueStrategy.RING_PROGRESSIVELY:
            continue
        candidates = [a for a in free.values() if eligible(a, call, queue, queues, now)]
        if not candidates:
            continue
        chosen = _choose(queue, call, candidates, now, last, positions, seed)
        if not chosen:
            continue
        for agent_id in chosen:
            del free[agent_id]
        last[queue.code] = chosen[-1]
        offers.append(Offer(call.id, queue.code, tuple(chosen),
                            active_steps(queue, call, now)))
    return offers, RouterMemory(last)


def _choose(queue: QueueSpec, call: WaitingCall, candidates: Sequence[Agent],
            now: datetime, last: Mapping[str, str],
            positions: Mapping[str, tuple[int, str]], seed: int) -> list[str]:
    strategy = queue.strategy
    by_order = sorted(candidates, key=lambda a: (a.order, a.id))
    if strategy is QueueStrategy.RING_ALL:
        return [a.id for a in by_order]
    if strategy is QueueStrategy.RING_PROGRESSIVELY:
        if not call.ringing or call.offered_at is None:
            return [by_order[0].id]
        rounds = int((now - call.offered_at).total_seconds() // max(1, queue.progressive_every))
        wanted = 1 + rounds - len(call.ringing)
        return [a.id for a in by_order[:max(0, wanted)]]
    if strategy is QueueStrategy.LONGEST_IDLE_AGENT:
        pick = min(candidates, key=lambda a: (a.since or _EPOCH, a.id))
    elif strategy is QueueStrategy.AGENT_WITH_LEAST_TALK_TIME:
        pick = min(candidates, key=lambda a: (a.talk_seconds, a.since or _EPOCH, a.id))
    elif strategy is QueueStrategy.AGENT_WITH_FEWEST_CALLS:
        pick = min(candidates, key=lambda a: (a.calls, a.since or _EPOCH, a.id))
    elif strategy is QueueStrategy.TOP_DOWN:
        pick = by_order[0]
    elif strategy is QueueStrategy.ROUND_ROBIN:
        # The lawyer offered a call longest ago (never offered: first), as a rotation.
        pick = min(candidates, key=lambda a: (a.last_offer or _EPOCH, a.order, a.id))
    elif strategy is QueueStrategy.SEQUENTIALLY_BY_AGENT_ORDER:
        # By position, going on after the last lawyer this queue offered to, wrapping around.
        previous = positions.get(last.get(queue.code, ""), (-(2**31), ""))
        after = [a for a in by_order if (a.order, a.id) > previous]
        pick = (after or by_order)[0]
    else:  # RANDOM
        pick = random.Random(f"{seed}:{call.id}").choice(by_order)
    return [pick.id]
