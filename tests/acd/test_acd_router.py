"""The router's promises, proven over random queues, lawyers and callers (Hypothesis).

No caller is in two offers, no lawyer in two; every offered lawyer was eligible; a caller is
never overtaken in their queue by a lower-priority (or later, same-priority) caller who took
a lawyer the first could have had; and with no new arrivals everybody is served.
"""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.acd.agents import Agent
from hotline.acd.router import (
    EscalationStep,
    QueueSpec,
    RouterMemory,
    WaitingCall,
    caller_order,
    eligible,
    route,
)
from hotline.domain import AgentState, AgentStatus, Language, Priority, QueueStrategy

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
SKILLS = ("general", "labor", "marriage_family", "contract")
LANGS = (Language.MANDARIN, Language.HUBEI, Language.CANTONESE)
SINGLE = [s for s in QueueStrategy if s not in (QueueStrategy.RING_ALL,
                                                QueueStrategy.RING_PROGRESSIVELY)]


def _queues(strategy=QueueStrategy.LONGEST_IDLE_AGENT):
    general = QueueSpec("general", ("general",), strategy)
    out = {"general": general}
    for skill in SKILLS[1:]:
        out[skill] = QueueSpec(skill, (skill,), strategy, min_proficiency=3, steps=(
            EscalationStep(30, min_proficiency=1), EscalationStep(60, queues=("general",)),
            EscalationStep(120, any_lawyer=True)))
    return out


agents_st = st.lists(st.builds(
    Agent,
    id=st.text("abcdefgh", min_size=1, max_size=4),
    skills=st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), max_size=3),
    languages=st.frozensets(st.sampled_from(LANGS), min_size=1),
    status=st.sampled_from(list(AgentStatus)),
    state=st.sampled_from(list(AgentState)),
    order=st.integers(0, 5),
    since=st.integers(0, 3600).map(lambda s: NOW - timedelta(seconds=s)),
    talk_seconds=st.floats(0, 5000),
    calls=st.integers(0, 50),
), max_size=12, unique_by=lambda a: a.id)

calls_st = st.lists(st.builds(
    WaitingCall,
    id=st.text("0123456789", min_size=1, max_size=4),
    queue=st.sampled_from(SKILLS),
    since=st.integers(0, 300).map(lambda s: NOW - timedelta(seconds=s)),
    priority=st.sampled_from(list(Priority)),
    language=st.sampled_from(LANGS),
), max_size=15, unique_by=lambda c: c.id)


@settings(max_examples=300, deadline=None)
@given(agents=agents_st, calls=calls_st, strategy=st.sampled_from(list(QueueStrategy)),
       seed=st.integers(0, 10))
def test_offers_are_exclusive_and_eligible(agents, calls, strategy, seed):
    queues = _queues(strategy)
    offers, _ = route(queues, agents, calls, NOW, seed=seed)
    by_id = {a.id: a for a in agents}
    calls_by_id = {c.id: c for c in calls}
    offered_agents = [a for o in offers for a in o.agents]
    assert len(offered_agents) == len(set(offered_agents))  # no lawyer gets two offers
    assert len({o.call for o in offers}) == len(offers)  # no caller is in two offers
    for offer in offers:
        call = calls_by_id[offer.call]
        assert offer.agents and offer.queue == call.queue
        if strategy in SINGLE:
            assert len(offer.agents) == 1
        for agent_id in offer.agents:
            assert eligible(by_id[agent_id], call, queues[call.queue], queues, NOW)


@settings(max_examples=300, deadline=None)
@given(agents=agents_st, calls=calls_st, strategy=st.sampled_from(SINGLE))
def test_nobody_is_overtaken_by_a_lower_caller(agents, calls, strategy):
    queues = _queues(strategy)
    offers, _ = route(queues, agents, calls, NOW)
    taken = {o.call: o.agents for o in offers}
    by_id = {a.id: a for a in agents}
    for high in calls:
        if high.id in taken:
            continue
        for low in calls:
            if low.id not in taken or low.queue != high.queue:
                continue
            if caller_order(low) <= caller_order(high):
                continue  # low is not behind high
            for agent_id in taken[low.id]:
                assert not eligible(by_id[agent_id], high, queues[high.queue], queues, NOW), (
                    f"{low.id} took {agent_id}, whom {high.id} (ahead) could have had")


@settings(max_examples=100, deadline=None)
@given(calls=calls_st, strategy=st.sampled_from(list(QueueStrategy)),
       lawyers=st.integers(1, 4))
def test_nobody_starves(calls, strategy, lawyers):
    """With no new arrivals, lawyers who keep taking calls serve everyone in the end."""
    queues = _queues(strategy)
    agents = [Agent(f"L{i}", skills={"general": 2}, languages=frozenset(LANGS),
                    status=AgentStatus.AVAILABLE, order=i, since=NOW) for i in range(lawyers)]
    waiting = {c.id: c for c in calls}
    now, memory = NOW, RouterMemory()
    for _ in range(len(calls) * 4 + 10):
        if not waiting:
            break
        offers, memory = route(queues, agents, waiting.values(), now, memory)
        for offer in offers:
            del waiting[offer.call]  # the first lawyer answers; the call is served
        now += timedelta(seconds=30)  # and is free again for the next round
    assert not waiting


def test_priority_then_wait_then_preferred_lawyer():
    queues = _queues()
    lawyer = Agent("8001", skills={"labor": 5}, status=AgentStatus.AVAILABLE, since=NOW)
    normal = WaitingCall("n", "labor", NOW - timedelta(seconds=100))
    green = WaitingCall("g", "labor", NOW - timedelta(seconds=5), Priority.GREEN)
    offers, _ = route(queues, [lawyer], [normal, green], NOW)
    assert [o.call for o in offers] == ["g"]
    # 首问负责: a repeat caller waits for their last lawyer, who is busy: nobody else.
    other = Agent("8002", skills={"labor": 5}, status=AgentStatus.AVAILABLE, since=NOW)
    repeat = WaitingCall("r", "labor", NOW, preferred_agent="8009",
                         preferred_until=NOW + timedelta(seconds=20))
    assert route(queues, [other], [repeat], NOW)[0] == []
    later = NOW + timedelta(seconds=21)  # the fallback after the timeout
    assert [o.agents for o in route(queues, [other], [repeat], later)[0]] == [("8002",)]


def test_escalation_widens_with_the_wait():
    queues = _queues()
    junior = Agent("j", skills={"labor": 1}, status=AgentStatus.AVAILABLE, since=NOW)
    generalist = Agent("g", skills={"general": 3}, status=AgentStatus.AVAILABLE, since=NOW)
    cantonese = Agent("c", skills={}, languages=frozenset({Language.CANTONESE}),
                      status=AgentStatus.AVAILABLE, since=NOW)
    fresh = WaitingCall("1", "labor", NOW)
    assert route(queues, [junior, generalist], [fresh], NOW)[0] == []
    after_30 = WaitingCall("1", "labor", NOW - timedelta(seconds=31))
    assert route(queues, [junior], [after_30], NOW)[0][0].agents == ("j",)
    assert route(queues, [generalist], [after_30], NOW)[0] == []
    after_60 = WaitingCall("1", "labor", NOW - timedelta(seconds=61))
    assert route(queues, [generalist], [after_60], NOW)[0][0].step == 2
    yue = WaitingCall("2", "labor", NOW - timedelta(seconds=121), language=Language.CANTONESE)
    assert route(queues, [cantonese], [yue], NOW)[0][0].agents == ("c",)


def _pool(n):
    return [Agent(f"a{i}", skills={"general": 3}, status=AgentStatus.AVAILABLE, order=i,
                  since=NOW - timedelta(seconds=10 * (n - i))) for i in range(n)]


def test_strategies_pick_as_mod_callcenter_does():
    calls = [WaitingCall("1", "general", NOW)]
    pick = {}
    for strategy in QueueStrategy:
        offers, _ = route(_queues(strategy), _pool(4), calls, NOW, seed=1)
        pick[strategy] = offers[0].agents
    assert pick[QueueStrategy.RING_ALL] == ("a0", "a1", "a2", "a3")
    assert pick[QueueStrategy.RING_PROGRESSIVELY] == ("a0",)
    assert pick[QueueStrategy.LONGEST_IDLE_AGENT] == ("a0",)  # idle the longest
    assert pick[QueueStrategy.TOP_DOWN] == ("a0",)
    # sequentially-by-agent-order goes on after the last lawyer this queue offered to
    q = _queues(QueueStrategy.SEQUENTIALLY_BY_AGENT_ORDER)
    memory = RouterMemory({"general": "a1"})
    assert route(q, _pool(4), calls, NOW, memory)[0][0].agents == ("a2",)
    memory = RouterMemory({"general": "a3"})
    assert route(q, _pool(4), calls, NOW, memory)[0][0].agents == ("a0",)  # wraps around
    # fewest calls and least talk time
    pool = _pool(3)
    pool[2] = Agent("a2", skills={"general": 3}, status=AgentStatus.AVAILABLE, calls=0,
                    talk_seconds=0, since=NOW)
    pool[0] = Agent("a0", skills={"general": 3}, status=AgentStatus.AVAILABLE, calls=5,
                    talk_seconds=900, since=NOW - timedelta(hours=1))
    pool[1] = Agent("a1", skills={"general": 3}, status=AgentStatus.AVAILABLE, calls=3,
                    talk_seconds=100, since=NOW)
    for strategy in (QueueStrategy.AGENT_WITH_FEWEST_CALLS,
                     QueueStrategy.AGENT_WITH_LEAST_TALK_TIME):
        assert route(_queues(strategy), pool, calls, NOW)[0][0].agents == ("a2",)
    # ring-progressively adds a lawyer every 10 s while the call rings
    ringing = WaitingCall("1", "general", NOW, ringing=("a0",),
                          offered_at=NOW - timedelta(seconds=21))
    q = _queues(QueueStrategy.RING_PROGRESSIVELY)
    assert route(q, _pool(4)[1:], [ringing], NOW)[0][0].agents == ("a1", "a2")
    # random is reproducible from the seed
    q = _queues(QueueStrategy.RANDOM)
    assert route(q, _pool(4), calls, NOW, seed=7) == route(q, _pool(4), calls, NOW, seed=7)
