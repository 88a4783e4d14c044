"""The lawyer state machine: every allowed transition, every illegal one refused."""

from datetime import UTC, datetime, timedelta

import pytest

from hotline.acd.agents import (
    MAX_MISSED_OFFERS,
    MISSED_OFFERS_BREAK,
    Agent,
    AgentEvent,
    allowed,
    apply,
)
from hotline.domain import AgentState, AgentStatus
from hotline.errors import DomainError

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def _run(agent, *events):
    now = T0
    for event in events:
        now += timedelta(seconds=10)
        agent = apply(agent, event, now, talk_seconds=60)
    return agent


def test_a_whole_call_and_the_counters():
    a = _run(Agent("8001"), AgentEvent.LOGIN, AgentEvent.RESERVE, AgentEvent.RING,
             AgentEvent.ANSWER, AgentEvent.HANGUP)
    assert (a.status, a.state) == (AgentStatus.AVAILABLE, AgentState.WRAP_UP)
    assert (a.calls, a.talk_seconds, a.last_offer) == (1, 60, T0 + timedelta(seconds=20))
    a = _run(a, AgentEvent.WRAP_DONE)
    assert a.takes_calls and a.since == T0 + timedelta(seconds=10)


def test_break_is_a_status_not_a_state():
    a = _run(Agent("8001"), AgentEvent.LOGIN, AgentEvent.RESERVE, AgentEvent.RING,
             AgentEvent.ANSWER)
    a = apply(a, AgentEvent.BREAK, T0, reason="lunch")  # asked for during the call
    assert (a.status, a.state, a.break_reason) == (AgentStatus.ON_BREAK, AgentState.IN_CALL,
                                                   "lunch")
    a = _run(a, AgentEvent.HANGUP, AgentEvent.WRAP_DONE)
    assert not a.takes_calls  # still on break after the call
    a = _run(a, AgentEvent.AVAILABLE)
    assert a.takes_calls and a.break_reason == ""


def test_missed_offers_in_a_row_put_the_lawyer_on_break():
    a = _run(Agent("8001"), AgentEvent.LOGIN)
    for _ in range(MAX_MISSED_OFFERS - 1):
        a = _run(a, AgentEvent.RESERVE, AgentEvent.RING, AgentEvent.MISS)
        assert a.takes_calls
    a = _run(a, AgentEvent.RESERVE, AgentEvent.RING, AgentEvent.MISS)
    assert (a.status, a.break_reason) == (AgentStatus.ON_BREAK, MISSED_OFFERS_BREAK)
    a = _run(a, AgentEvent.AVAILABLE, AgentEvent.RESERVE, AgentEvent.RING, AgentEvent.ANSWER)
    assert a.missed == 0


@pytest.mark.parametrize("status", list(AgentStatus))
@pytest.mark.parametrize("state", list(AgentState))
@pytest.mark.parametrize("event", list(AgentEvent))
def test_every_cell_of_the_table(status, state, event):
    agent = Agent("8001", status=status, state=state)
    if allowed(agent, event):
        after = apply(agent, event, T0)
        assert after.id == "8001"
        if after.status is AgentStatus.LOGGED_OUT:
            assert after.state is AgentState.IDLE  # nobody is logged out mid-call
    else:
        with pytest.raises(DomainError) as err:
            apply(agent, event, T0)
        assert err.value.code == "agent.illegal_transition"
        assert event.value in str(err.value) and "8001" in str(err.value)


def test_no_logout_in_the_middle_of_a_call():
    a = _run(Agent("8001"), AgentEvent.LOGIN, AgentEvent.RESERVE, AgentEvent.RING,
             AgentEvent.ANSWER)
    with pytest.raises(DomainError):
        apply(a, AgentEvent.LOGOUT, T0)
