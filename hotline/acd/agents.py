"""A lawyer's status and state as a transition table (mod_callcenter's model).

Status says whether the lawyer takes calls (logged out / available / on break with a
reason); state says what they are doing (idle / reserved / ringing / in call / wrap-up).
Every change is an :class:`AgentEvent` applied by :func:`apply`; a change the table does
not allow raises :class:`~hotline.errors.DomainError` with the stable code
``agent.illegal_transition`` and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from hotline.domain import AgentState, AgentStatus, Language
from hotline.errors import DomainError

# A lawyer who lets this many offers in a row go unanswered goes on break by themselves.
MAX_MISSED_OFFERS = 3
MISSED_OFFERS_BREAK = "missed_offers"


class AgentEvent(StrEnum):
    """What can happen to a lawyer."""

    LOGIN = "login"
    LOGOUT = "logout"
    AVAILABLE = "available"  # back from a break
    BREAK = "break"
    RESERVE = "reserve"  # the router picked them for a caller
    RING = "ring"  # their phone rings
    ANSWER = "answer"
    MISS = "miss"  # the offer timed out unanswered
    REJECT = "reject"  # they declined the offer
    RELEASE = "release"  # the offer went away (the caller hung up, another lawyer took it)
    HANGUP = "hangup"  # the conversation ended: wrap-up starts
    WRAP_DONE = "wrap_done"


@dataclass(frozen=True)
class Agent:
    """One lawyer as the router sees them.

    ``skills`` maps a skill to proficiency 1 (basic) – 5 (specialist); ``order`` is the
    lawyer's position for the ordered strategies; the counters feed the fairness strategies.
    """

    id: str
    skills: dict[str, int] = field(default_factory=dict)
    languages: frozenset[Language] = frozenset({Language.MANDARIN})
    status: AgentStatus = AgentStatus.LOGGED_OUT
    state: AgentState = AgentState.IDLE
    break_reason: str = ""
    order: int = 0
    since: datetime | None = None  # when the state last changed (idle since, for idle)
    last_offer: datetime | None = None
    talk_seconds: float = 0.0
    calls: int = 0
    missed: int = 0  # offers missed in a row
    on_duty: bool = True  # on a shift of the published roster (or the roster not in force)

    @property
    def takes_calls(self) -> bool:
        """Available, idle and on duty: the router may offer a caller."""
        return (self.status is AgentStatus.AVAILABLE and self.state is AgentState.IDLE
                and self.on_duty)


S, T = AgentStatus, AgentState
# (event, status, state) → (new status or None = same, new state or None = same)
_TABLE: dict[tuple[AgentEvent, AgentStatus, AgentState],
             tuple[AgentStatus | None, AgentState | None]] = {
    (AgentEvent.LOGIN, S.LOGGED_OUT, T.IDLE): (S.AVAILABLE, T.IDLE),
    **{(AgentEvent.LOGOUT, st, T.IDLE): (S.LOGGED_OUT, T.IDLE) for st in (S.AVAILABLE,
                                                                          S.ON_BREAK)},
    **{(AgentEvent.LOGOUT, st, T.WRAP_UP): (S.LOGGED_OUT, T.IDLE) for st in (S.AVAILABLE,
                                                                             S.ON_BREAK)},
    **{(AgentEvent.BREAK, S.AVAILABLE, st): (S.ON_BREAK, None) for st in T},
    **{(AgentEvent.AVAILABLE, S.ON_BREAK, st): (S.AVAILABLE, None) for st in T},
    (AgentEvent.RESERVE, S.AVAILABLE, T.IDLE): (None, T.RESERVED),
    (AgentEvent.RING, S.AVAILABLE, T.RESERVED): (None, T.RINGING),
    **{(AgentEvent.ANSWER, st, T.RINGING): (None, T.IN_CALL) for st in (S.AVAILABLE,
                                                                        S.ON_BREAK)},
    **{(ev, st, t): (None, T.IDLE) for ev in (AgentEvent.MISS, AgentEvent.REJECT,
                                              AgentEvent.RELEASE)
       for st in (S.AVAILABLE, S.ON_BREAK) for t in (T.RESERVED, T.RINGING)},
    **{(AgentEvent.HANGUP, st, T.IN_CALL): (None, T.WRAP_UP) for st in (S.AVAILABLE,
                                                                        S.ON_BREAK)},
    **{(AgentEvent.WRAP_DONE, st, T.WRAP_UP): (None, T.IDLE) for st in (S.AVAILABLE,
                                                                        S.ON_BREAK)},
}


def allowed(agent: Agent, event: AgentEvent) -> bool:
    """Whether ``event`` may happen to ``agent`` now."""
    return (event, agent.status, agent.state) in _TABLE


def apply(agent: Agent, event: AgentEvent, now: datetime, *, reason: str = "",
          talk_seconds: float = 0.0, max_missed: int = MAX_MISSED_OFFERS) -> Agent:
    """The lawyer after ``event``; DomainError ``agent.illegal_transition`` if not allowed.

    ``reason`` is the break's reason; ``talk_seconds`` the length of the conversation that
    a ``HANGUP`` ends. A ``MISS`` that makes ``max_missed`` in a row puts the lawyer on a
    break with the reason ``missed_offers`` (the supervisor sees why).
    """
    target = _TABLE.get((event, agent.status, agent.state))
    if target is None:
        raise DomainError("agent.illegal_transition", agent=agent.id, event=event.value,
                          status=agent.status.value, state=agent.state.value)
    status, state = target
    changes: dict[str, object] = {}
    if status is not None:
        changes["status"] = status
    if state is not None and state is not agent.state:
        changes["state"] = state
        changes["since"] = now
    if event is AgentEvent.BREAK:
        changes["break_reason"] = reason or "break"
    elif event in (AgentEvent.AVAILABLE, AgentEvent.LOGIN, AgentEvent.LOGOUT):
        changes["break_reason"] = ""
    if event is AgentEvent.RESERVE:
        changes["last_offer"] = now
    elif event is AgentEvent.ANSWER:
        changes["missed"] = 0
        changes["calls"] = agent.calls + 1
    elif event is AgentEvent.HANGUP:
        changes["talk_seconds"] = agent.talk_seconds + max(0.0, talk_seconds)
    elif event is AgentEvent.MISS:
        missed = agent.missed + 1
        changes["missed"] = missed
        if missed >= max_missed and agent.status is AgentStatus.AVAILABLE:
            changes["status"] = AgentStatus.ON_BREAK
            changes["break_reason"] = MISSED_OFFERS_BREAK
    return replace(agent, **changes)  # type: ignore[arg-type]
