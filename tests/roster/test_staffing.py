"""Staffing: Erlang B/C/A against published values and independent formulas, the history
read from a real ledger (SQLite and PostgreSQL), and ``hotline staffing`` end to end."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

import hotline.cli
from hotline.cli import cli, main
from hotline.cli import db as db_cli
from hotline.cli import staffing as staffing_cli
from hotline.domain import (
    AgentEventKind,
    AgentState,
    AgentStatus,
    CallEventKind,
    EndReason,
    Priority,
    Role,
)
from hotline.roster.model import Need, Slot
from hotline.roster.staffing import (
    HOURS_OF_WEEK,
    History,
    HourStats,
    agents_needed,
    asa_c,
    erlang_a,
    erlang_b,
    erlang_c,
    history,
    hour_counts,
    parse_target,
    raise_needs,
    service_level_c,
    table,
)
from hotline.store import agents as store_agents
from hotline.store import callbacks as store_callbacks
from hotline.store.calls import (
    append_events,
    assign_lawyer,
    close_call,
    open_call,
    update_call,
)
from hotline.store.engine import make_engine, make_session_factory
from hotline.store.migrate import upgrade
from hotline.store.session import session_scope
from hotline.store.users import add_user

SH = ZoneInfo("Asia/Shanghai")

# --- Erlang B ----------------------------------------------------------------------------


def test_erlang_b_against_tables() -> None:
    # B(10, 5 E): the value every Erlang B table gives (0.01838).
    assert erlang_b(10, 5.0) == pytest.approx(0.018385, abs=5e-6)
    # erlang.com calculator manual, "How much traffic?": 15 lines at 1 % blocking carry
    # 8.108 E (http://www.erlang.com/calculatormanual/howmuchtrafficcanatrunkgrouphandle.htm).
    assert erlang_b(15, 8.108) == pytest.approx(0.01, abs=2e-5)
    # Lucent's Erlang B capacity table at 2 % blocking (garywagoner.tripod.com/traffic):
    # 11 channels 5.842 E, 31 → 22.827 E, 89 → 77.342 E (loads printed to 3 decimals).
    for n, a in [(11, 5.842), (31, 22.827), (89, 77.342)]:
        assert erlang_b(n, a) == pytest.approx(0.02, abs=5e-5)
    assert erlang_b(0, 3.0) == 1.0 and erlang_b(4, 0.0) == 0.0
    assert erlang_b(1, 2.0) == pytest.approx(2 / 3)


# --- Erlang C ----------------------------------------------------------------------------


def test_erlang_c_textbook_example() -> None:
    # The classic worked example (Call Centre Helper, "Erlang C formula – made simple"):
    # 100 calls in 30 min with AHT 180 s → A = 10 E; with 11 agents P(wait) = 68.21 %.
    a, aht = 100 * 180 / 1800, 180.0
    assert a == 10
    assert erlang_c(11, a) == pytest.approx(0.6821, abs=5e-5)
    # SL(20 s) = 1 − 0.6821·e^(−(11 − 10)·20/180) = 0.3896 (the brief quoted 0.3960, which
    # does not follow from 0.6821 and the formula: e^(−1/9) = 0.89484).
    assert service_level_c(11, a, aht, 20) == pytest.approx(0.3896, abs=5e-5)
    assert asa_c(11, a, aht) == pytest.approx(0.68212 * 180, abs=0.01)
    # 13 agents reach 79.6 %, 14 reach 88.8 %: 14 agents for 80/20.
    assert service_level_c(13, a, aht, 20) == pytest.approx(0.7956, abs=5e-5)
    assert service_level_c(14, a, aht, 20) == pytest.approx(0.8884, abs=5e-5)
    assert agents_needed(100 / 1800, aht, 0.8, 20) == 14


@pytest.mark.parametrize(("agents", "calls_per_hour", "seconds"), [
    (5, 186, 30), (5, 197, 40), (5, 202, 45), (6, 238, 30), (6, 251, 40), (6, 257, 45)])
def test_erlang_c_against_avaya_engineering_table(agents: int, calls_per_hour: int,
                                                  seconds: int) -> None:
    # Avaya BCMS Operations (07-300061, issue 5.0, 2005) p. 111: with a 60 s service time,
    # the busy-hour calls `agents` can take with 90 % answered within `seconds`.
    a = calls_per_hour * 60 / 3600
    assert service_level_c(agents, a, 60, seconds) == pytest.approx(0.90, abs=2e-3)


def test_erlang_c_is_stable_up_to_hundreds_of_erlangs() -> None:
    # Exact rational arithmetic as the reference: A^N/N! · N/(N−A) / (Σ_{k<N} A^k/k! + …).
    n, a = 520, Fraction(500)
    terms = [Fraction(1)]
    for k in range(1, n + 1):
        terms.append(terms[-1] * a / k)
    tail = terms[n] * n / (n - a)
    exact = tail / (sum(terms[:n]) + tail)
    assert erlang_c(n, 500.0) == pytest.approx(float(exact), rel=1e-10)
    assert erlang_c(500, 500.0) == 1.0 and service_level_c(500, 500.0, 180, 20) == 0.0
    assert asa_c(499, 500.0, 180) == math.inf
    needed = agents_needed(500 / 180, 180, 0.8, 20)
    assert service_level_c(needed, 500.0, 180, 20) >= 0.8 > service_level_c(
        needed - 1, 500.0, 180, 20)


# --- Erlang A ----------------------------------------------------------------------------


def test_erlang_a_without_abandonment_is_erlang_c() -> None:
    lam, mu = 10 / 180, 1 / 180
    for theta in (0.0, 1e-9):
        r = erlang_a(11, lam, mu, theta, 20)
        assert r.p_wait == pytest.approx(erlang_c(11, 10.0), abs=1e-6)
        assert r.service_level == pytest.approx(service_level_c(11, 10.0, 180, 20), abs=1e-6)
        assert r.asa == pytest.approx(asa_c(11, 10.0, 180), rel=1e-5)
        assert r.answer_rate == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError):
        erlang_a(10, lam, mu, 0.0, 20)  # no patience and A = n: no steady state


def _incomplete_gamma_a(x: float, y: float) -> float:
    """Mandelbaum & Zeltyn's A(x, y) = x·e^y·y^(−x)·γ(x, y), γ by Simpson quadrature.

    γ(x, y) = ∫₀^y s^(x−1) e^(−s) ds; with s = w^(4/x) it is (4/x) ∫₀^(y^(x/4)) w³ e^(−w^(4/x)) dw,
    whose integrand is smooth at 0 for any x > 0.
    """
    w = np.linspace(0.0, y ** (x / 4), 200_001)
    f = w**3 * np.exp(-(w ** (4 / x)))
    h = float(w[1] - w[0])
    integral = h / 3 * float(f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())
    return float(math.exp(y) * y ** (-x) * 4 * integral)


@pytest.mark.parametrize(("n", "lam", "mu", "theta"), [
    (1, 1 / 400, 1 / 300, 1 / 120),  # M/M/1+M
    (1, 1 / 200, 1 / 300, 1 / 90),  # M/M/1+M overloaded: patience keeps it stable
    (8, 9 / 300, 1 / 300, 1 / 120),
    (30, 32 / 360, 1 / 360, 1 / 200),
])
def test_erlang_a_against_the_palm_closed_form(n: int, lam: float, mu: float,
                                               theta: float) -> None:
    # A. Mandelbaum, S. Zeltyn, "The Palm/Erlang-A queue, with applications to call
    # centers" (2004), §4.4–4.5: with E = Erlang B(n, λ/μ), A = A(nμ/θ, λ/θ), ρ = λ/(nμ),
    #   P{W > 0} = A·E / (1 + (A − 1)·E),   P{Ab | W > 0} = 1/(ρA) + 1 − 1/ρ.
    e = erlang_b(n, lam / mu)
    big_a = _incomplete_gamma_a(n * mu / theta, lam / theta)
    rho = lam / (n * mu)
    p_wait = big_a * e / (1 + (big_a - 1) * e)
    p_ab = (1 / (rho * big_a) + 1 - 1 / rho) * p_wait
    r = erlang_a(n, lam, mu, theta, 15)
    assert r.p_wait == pytest.approx(p_wait, abs=1e-12)
    assert r.p_abandon == pytest.approx(p_ab, abs=1e-12)
    assert r.answer_rate == pytest.approx(1 - p_ab, abs=1e-12)


def test_erlang_a_with_patience_equal_to_service_is_poisson() -> None:
    # θ = μ: every caller leaves at rate μ, queued or served, so the number in the system
    # is Poisson(λ/μ) (M/M/∞); P(W>0) = P(N ≥ n), P(Ab) = E[(N − n)⁺] / a.
    n, a, mu = 6, 5.5, 1 / 240
    pmf = [math.exp(-a)]
    for k in range(1, 200):
        pmf.append(pmf[-1] * a / k)
    r = erlang_a(n, a * mu, mu, mu, 15)
    assert r.p_wait == pytest.approx(math.fsum(pmf[n:]), abs=1e-12)
    assert r.p_abandon == pytest.approx(
        math.fsum((k - n) * p for k, p in enumerate(pmf) if k > n) / a, abs=1e-12)


def _expm(m: np.ndarray) -> np.ndarray:
    """Matrix exponential by scaling and squaring of a Taylor series (test reference)."""
    norm = float(np.abs(m).sum(axis=1).max())
    s = max(0, math.ceil(math.log2(norm / 0.25))) if norm > 0 else 0
    small = m / 2**s
    result, term = np.eye(len(m)), np.eye(len(m))
    for k in range(1, 30):
        term = term @ small / k
        result = result + term
    for _ in range(s):
        result = result @ result
    return result


@pytest.mark.parametrize(("n", "lam", "mu", "theta", "t"), [
    (1, 1 / 400, 1 / 300, 1 / 120, 15),
    (4, 5 / 300, 1 / 300, 1 / 60, 20),
    (8, 9 / 300, 1 / 300, 1 / 120, 15),
    (8, 9 / 300, 1 / 300, 1 / 120, 600),
])
def test_erlang_a_service_level_against_matrix_exponential(n: int, lam: float, mu: float,
                                                           theta: float, t: float) -> None:
    # Independent of the uniformization: the waiting caller's chain (callers ahead 0..K,
    # plus "answered") as a generator, exp(Gt) by Taylor scaling and squaring, and the
    # stationary queue from the product form written out directly.
    weights = [1.0]
    for k in range(1, n):
        weights.append(weights[-1] * lam / (k * mu))
    queue = [weights[-1] * lam / (n * mu)]
    for j in range(1, 400):
        queue.append(queue[-1] * lam / (n * mu + j * theta))
    total = math.fsum(weights) + math.fsum(queue)
    ahead = np.array(queue) / total
    k = len(queue)
    g = np.zeros((k + 1, k + 1))  # state k = answered (absorbing)
    for i in range(k):
        move = n * mu + i * theta
        g[i, i] = -(move + theta)
        g[i, i - 1 if i else k] = move
    answered_within = math.fsum(weights) / total + float(ahead @ _expm(g * t)[:k, k])
    r = erlang_a(n, lam, mu, theta, t)
    assert r.answered_within == pytest.approx(answered_within, abs=1e-9)
    assert r.service_level == pytest.approx(answered_within / r.answer_rate, abs=1e-9)
    # Abandonment from the same chain: absorbed anywhere but "answered" as t → ∞.
    served_ever = float(ahead @ [n * mu / (n * mu + (j + 1) * theta) for j in range(k)])
    assert r.p_abandon == pytest.approx(float(ahead.sum()) - served_ever, abs=1e-12)


def test_erlang_a_quiet_and_saturated_ends() -> None:
    assert erlang_a(3, 0.0, 1 / 300, 1 / 60, 15).service_level == 1.0
    r = erlang_a(2000, 10 / 180, 1 / 180, 1 / 120, 20)  # n ≫ a: no overflow in the weights
    assert (r.p_wait, r.p_abandon, r.service_level) == (0.0, 0.0, 1.0)
    r = erlang_a(3, 1 / 60, 1 / 300, 1 / 3600, 3600)  # λ > nμ, an hour-long threshold
    assert 0 < r.answer_rate < 0.7 and 0.99 < r.service_level <= 1.0


# --- agents needed -----------------------------------------------------------------------


def test_agents_needed_with_patience() -> None:
    lam, aht, patience = 40 / 3600, 300.0, 90.0  # 3.33 E, callers wait 1.5 min on average
    c = agents_needed(lam, aht, 0.8, 15)
    a = agents_needed(lam, aht, 0.8, 15, patience=patience)
    assert a <= c  # abandonment shortens the queue for those who stay
    strict = agents_needed(lam, aht, 0.8, 15, answer_rate=0.99, patience=patience)
    r = erlang_a(strict, lam, 1 / aht, 1 / patience, 15)
    below = erlang_a(strict - 1, lam, 1 / aht, 1 / patience, 15)
    assert r.answer_rate >= 0.99 and r.service_level >= 0.8
    assert below.answer_rate < 0.99 or below.service_level < 0.8
    assert agents_needed(500 / 180, 180, 0.8, 20, 0.95, 120) < agents_needed(
        500 / 180, 180, 0.8, 20)
    assert agents_needed(0.0, aht, 0.8, 15) == 1
    assert agents_needed(0.0, aht, 0.8, 15, min_agents=2) == 2
    assert agents_needed(1 / 3600, aht, 0.8, 15, min_agents=3) == 3
    for bad in ({"target_sl": 1.0}, {"target_sl": 0.0}, {"answer_rate": 1.0},
                {"patience": 0.0}):
        kwargs = {"target_sl": 0.8, **bad}
        with pytest.raises(ValueError):
            agents_needed(lam, aht, t=15, **kwargs)  # type: ignore[arg-type]


def test_parse_target() -> None:
    assert parse_target("0.8/15") == (0.8, 15.0)
    assert parse_target(" .9 / 20s") == (0.9, 20.0)
    for bad in ("80/15", "0.8", "1.0/15", "0/15", "abc", "0.8/-1"):
        with pytest.raises(ValueError):
            parse_target(bad)


# --- hours of the week, table, raising slots ---------------------------------------------


def test_hour_counts_follow_local_time() -> None:
    since = datetime(2026, 11, 2, tzinfo=SH)
    counts = hour_counts(since, since + timedelta(weeks=2), SH)
    assert set(counts.values()) == {2.0}
    berlin = ZoneInfo("Europe/Berlin")  # autumn: 2026-10-25 02:00–03:00 happens twice
    autumn = hour_counts(datetime(2026, 10, 19, tzinfo=berlin),
                         datetime(2026, 10, 26, tzinfo=berlin), berlin)
    assert autumn[(6, 2)] == 2.0 and sum(autumn.values()) == 169
    spring = hour_counts(datetime(2026, 3, 23, tzinfo=berlin),
                         datetime(2026, 3, 30, tzinfo=berlin), berlin)
    assert spring[(6, 2)] == 0.0 and sum(spring.values()) == 167
    half = hour_counts(datetime(2026, 11, 2, 9, 30, tzinfo=SH),
                       datetime(2026, 11, 2, 11, tzinfo=SH), SH)
    assert (half[(0, 9)], half[(0, 10)]) == (0.5, 1.0)


def _synthetic(patience_data: bool) -> History:
    stats = {key: HourStats(*key, hours=4.0) for key in HOURS_OF_WEEK}
    stats[(0, 10)] = HourStats(0, 10, hours=4.0, offered=80, answered=76,
                               abandoned=4 if patience_data else 0, waited=3600.0,
                               talk=76 * 280.0, talked=76)
    start = datetime(2026, 11, 2, tzinfo=SH)
    return History(start, start + timedelta(weeks=4), "main", stats, wrap_up=20.0,
                   wrap_ups=76)


def test_table_uses_erlang_a_when_patience_is_known() -> None:
    hist = _synthetic(patience_data=True)
    assert hist.patience == 900.0 and hist.handle_time(0, 10) == 300.0
    assert hist.handle_time(3, 3) == 300.0  # no calls there: the window's AHT
    rows = table(hist, 0.8, 15, 0.95)
    assert [(r.weekday, r.hour) for r in rows] == list(HOURS_OF_WEEK)
    busy = rows[10]
    assert (busy.arrivals, busy.aht) == (20.0, 300.0)
    assert busy.erlangs == pytest.approx(20 / 12)
    assert busy.model == "erlang_a" and busy.need == busy.need_a
    assert busy.need == agents_needed(20 / 3600, 300, 0.8, 15, 0.95, 900.0)
    assert busy.need_c == agents_needed(20 / 3600, 300, 0.8, 15)
    assert busy.service_level >= 0.8 and busy.answer_rate >= 0.95
    quiet = rows[3]
    assert (quiet.need, quiet.service_level, quiet.answer_rate) == (1, 1.0, 1.0)


def test_table_falls_back_to_erlang_c() -> None:
    hist = _synthetic(patience_data=False)
    assert hist.patience is None
    busy = table(hist, 0.8, 15, 0.95)[10]
    assert busy.model == "erlang_c" and busy.need_a is None and busy.need == busy.need_c
    assert busy.service_level == pytest.approx(
        service_level_c(busy.need, 20 / 12, 300, 15))
    assert busy.answer_rate == 1.0


def _slot(line: str, code: str, start: datetime, hours: int, lawyers: int) -> Slot:
    return Slot(start.date(), line, code, code, start, start + timedelta(hours=hours),
                Need(lawyers, {"labor": 1}))


def test_raise_needs_takes_the_peak_hour_of_each_slot() -> None:
    mon = datetime(2026, 11, 2, tzinfo=SH)
    slots = [_slot("main", "D", mon.replace(hour=8), 8, 2),
             _slot("main", "N", mon.replace(hour=20), 12, 1),  # Mon 20:00 → Tue 08:00
             _slot("main", "E", mon.replace(hour=16, minute=30), 2, 3),
             _slot("sme", "S", mon.replace(hour=9), 8, 1)]
    needs = {(0, 10): 4, (0, 15): 3, (1, 3): 2, (1, 8): 9, (0, 17): 1, (0, 16): 5}
    raised = raise_needs(slots, needs, line="main")
    assert [s.need.lawyers for s in raised] == [4, 2, 5, 1]
    assert raised[0].need.skills == {"labor": 1}  # only the head-count changes
    assert raised[1].id == slots[1].id and raised[3] is slots[3]
    assert raise_needs(slots, {}, line="main") == slots


# --- the history from a real ledger ------------------------------------------------------

LOCAL = SH


def _t(day: int, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, ss, tzinfo=LOCAL)


class Ledger:
    """Writes calls through the store helpers, in the order the coordinator does."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        self.seq = 0

    def call(self, queued: datetime | None, *, outcome: str, wait: float = 0,
             talk: float = 0, flow: str = "main", ring_all: bool = False) -> int:
        """One inbound call: IVR, queue, then answered / abandoned / overflow / ivr_only."""
        self.seq += 1
        start = (queued or datetime(2026, 11, 5, 20, 0, tzinfo=LOCAL)) - timedelta(seconds=40)
        with session_scope(self.factory) as s:
            cid = open_call(s, sip_call_id=f"c{self.seq}@trunk", line="12348", flow=flow,
                            caller_number="13800000000", worker="w1", at=start,
                            local_day=start.astimezone(LOCAL).date(),
                            data={"remote": "10.0.0.1"}).call_id
            update_call(s, cid, answered_at=start + timedelta(seconds=1))
            append_events(s, cid, [(start + timedelta(seconds=1), CallEventKind.ANSWERED, {}),
                                   (start + timedelta(seconds=2), CallEventKind.IVR_NOTE,
                                    {"flow": flow, "node": "hours", "open": True})])
            if outcome == "ivr_only":
                close_call(s, cid, at=start + timedelta(seconds=30),
                           reason=EndReason.IVR_HANGUP, ivr_vars={}, ivr_path=["main/menu"])
                return cid
            if outcome == "direct":  # 点名: rung directly, never queued
                ans = start + timedelta(seconds=40)
                self._answered(s, cid, ans, talk, lawyer_hangs_up=False)
                return cid
            assert queued is not None
            append_events(s, cid, [(queued, CallEventKind.ENQUEUED, {"target": "general"})])
            update_call(s, cid, queued_at=queued, queue_code="general",
                        priority=Priority.NORMAL)
            append_events(s, cid, [(queued + timedelta(seconds=1), CallEventKind.OFFER,
                                    {"leg": "lawyer1", "role": "lawyer", "to": "sip:1001@x"})])
            left = queued + timedelta(seconds=wait)
            if outcome == "abandoned":
                close_call(s, cid, at=left, reason=EndReason.ABANDONED, ivr_vars={},
                           ivr_path=["main/general_queue"])
            elif outcome == "overflow":
                append_events(s, cid, [(left, CallEventKind.IVR_NOTE,
                                        {"flow": flow, "node": "general_queue",
                                         "left_queue": "max_wait"}),
                                       (left, CallEventKind.VOICEMAIL, {"target": "vm"})])
                close_call(s, cid, at=left + timedelta(seconds=60), reason=EndReason.VOICEMAIL,
                           ivr_vars={}, ivr_path=["main/general_queue", "main/busy"])
            else:
                self._answered(s, cid, left, talk, lawyer_hangs_up=outcome == "lawyer_hangup",
                               ring_all=ring_all)
        return cid

    @staticmethod
    def _answered(s: Session, cid: int, at: datetime, talk: float, *, lawyer_hangs_up: bool,
                  ring_all: bool = False) -> None:
        assign_lawyer(s, cid, "L001")
        update_call(s, cid, agent_answered_at=at)
        events: list[tuple[datetime, CallEventKind, dict[str, object]]] = [
            (at, CallEventKind.AGENT_ANSWERED,
             {"leg": "lawyer1", "to": "sip:1001@x", "codec": "PCMA"})]
        if ring_all:  # the other lawyer's phone stops ringing: its leg ends first
            events.append((at + timedelta(seconds=1), CallEventKind.LEG_ENDED,
                           {"leg": "lawyer2", "role": "lawyer",
                            "reason": "answered_elsewhere", "status": 487}))
        events += [(at + timedelta(seconds=30), CallEventKind.HOLD, {"leg": "lawyer1"}),
                   (at + timedelta(seconds=50), CallEventKind.UNHOLD, {"leg": "lawyer1"})]
        end = at + timedelta(seconds=talk)
        if lawyer_hangs_up:  # then the after-call survey, 20 s of IVR
            events.append((end, CallEventKind.LEG_ENDED,
                           {"leg": "lawyer1", "role": "lawyer", "reason": "hangup",
                            "status": 200}))
            append_events(s, cid, events)
            close_call(s, cid, at=end + timedelta(seconds=20), reason=EndReason.LAWYER_HANGUP,
                       ivr_vars={"satisfaction": 5}, ivr_path=["main/survey"])
        else:
            append_events(s, cid, events)
            close_call(s, cid, at=end, reason=EndReason.CALLER_HANGUP, ivr_vars={},
                       ivr_path=["main/general_queue"])

    def desk(self, work_id: str, *changes: tuple[datetime, AgentStatus, AgentState]) -> None:
        """A lawyer's desk timeline, as the coordinator records it."""
        with session_scope(self.factory) as s:
            for at, status, state in changes:
                kind = AgentEventKind.STATUS if status is AgentStatus.ON_BREAK else (
                    AgentEventKind.STATE)
                assert store_agents.record(s, work_id, at, kind, status, state)


AV, BRK = AgentStatus.AVAILABLE, AgentStatus.ON_BREAK


def seed(factory: sessionmaker[Session]) -> None:
    """Two weeks (Mon 2026-11-02 – Sun 11-15, Shanghai) of a small hotline."""
    with session_scope(factory) as s:
        for work_id in ("L001", "L002"):
            add_user(s, work_id, name=f"律师{work_id}", role=Role.LAWYER,
                     password="correct-horse-9")
    led = Ledger(factory)
    # Monday 10:00–11:00, twice in the window: 4 callers offered.
    led.call(_t(2, 10, 5), outcome="lawyer_hangup", wait=20, talk=300, ring_all=True)
    led.call(_t(2, 10, 20), outcome="abandoned", wait=60)
    led.call(_t(9, 10, 40), outcome="caller_hangup", wait=10, talk=200)
    overflowed = led.call(_t(9, 10, 50), outcome="overflow", wait=300)
    # Tuesday 09:30 Shanghai written as UTC (01:30): local hours of the week.
    led.call(datetime(2026, 11, 3, 1, 30, tzinfo=UTC), outcome="lawyer_hangup", wait=5,
             talk=100)
    led.call(None, outcome="direct", talk=60)  # 点名, Thu 11-05 20:00
    led.call(_t(4, 14, 0), outcome="lawyer_hangup", wait=30, talk=400, flow="sme")
    # Not offered to humans, or outside [since, until).
    led.call(_t(2, 10, 30), outcome="ivr_only")
    led.call(datetime(2026, 11, 1, 23, 59, 30, tzinfo=LOCAL), outcome="abandoned", wait=10)
    led.call(datetime(2026, 11, 16, 0, 0, tzinfo=LOCAL), outcome="abandoned", wait=10)
    with session_scope(factory) as s:  # the overflowed caller chose a callback: outbound
        request = store_callbacks.request_callback(
            s, overflowed, number="13800000000", queue="general", priority=Priority.NORMAL,
            place_at=_t(9, 10, 50), at=_t(9, 10, 55))
        store_callbacks.start_attempt(s, request.id, worker="w1", sip_call_id="cb1@x",
                                      at=_t(9, 11, 0), local_day=date(2026, 11, 9))
    # Wrap-ups: 30 s after the first call, 50 s after the third (a break does not end it),
    # and one before the window that must not count.
    led.desk("L001", (_t(2, 10, 5, 20), AV, AgentState.IN_CALL),
             (_t(2, 10, 10, 20), AV, AgentState.WRAP_UP), (_t(2, 10, 10, 50), AV,
                                                           AgentState.IDLE))
    led.desk("L002", (datetime(2026, 11, 1, 23, 0, tzinfo=LOCAL), AV, AgentState.WRAP_UP),
             (datetime(2026, 11, 1, 23, 1, tzinfo=LOCAL), AV, AgentState.IDLE),
             (_t(9, 10, 43, 30), AV, AgentState.WRAP_UP),
             (_t(9, 10, 43, 50), BRK, AgentState.WRAP_UP),
             (_t(9, 10, 44, 20), BRK, AgentState.IDLE))


SINCE, UNTIL = datetime(2026, 11, 2, tzinfo=LOCAL), datetime(2026, 11, 16, tzinfo=LOCAL)


@pytest.fixture
def seeded(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    seed(factory)
    return factory


def test_history_from_the_ledger(seeded: sessionmaker[Session]) -> None:
    with session_scope(seeded) as s:
        hist = history(s, SINCE, UNTIL, LOCAL, "main")
        everyone = history(s, SINCE, UNTIL, LOCAL)
    assert hist.weeks == 2 and hist.line == "main"
    mon10 = hist.hours[(0, 10)]
    assert (mon10.hours, mon10.offered, mon10.answered, mon10.abandoned) == (2.0, 4, 2, 1)
    assert mon10.waited == 20 + 60 + 10 + 300  # answered, abandoned, overflowed: all exposed
    # Talk + hold: to the answering lawyer's leg end (not the ring-all leg, not the survey),
    # or to the caller's hang-up.
    assert (mon10.talk, mon10.talked) == (300 + 200, 2)
    assert mon10.arrivals == 2.0 and mon10.answer_rate == 0.5
    tue9 = hist.hours[(1, 9)]
    assert (tue9.offered, tue9.answered, tue9.waited, tue9.talk) == (1, 1, 5, 100)
    thu20 = hist.hours[(3, 20)]  # 点名: offered when answered, no wait
    assert (thu20.offered, thu20.answered, thu20.waited, thu20.talk) == (1, 1, 0, 60)
    assert (hist.offered, hist.answered, hist.abandoned) == (6, 4, 1)
    assert (hist.wrap_up, hist.wrap_ups) == (40.0, 2)
    assert hist.talk == (300 + 200 + 100 + 60) / 4
    assert hist.aht == hist.talk + 40
    assert hist.handle_time(0, 10) == 250 + 40 and hist.handle_time(1, 9) == 140
    assert hist.handle_time(5, 3) == hist.aht  # no calls: the window's AHT
    # Patience: 1 abandonment over 395 s of queue time (the exponential MLE).
    assert hist.abandon_rate == pytest.approx(1 / 395) and hist.patience == pytest.approx(395)
    assert sum(st.hours for st in hist.hours.values()) == 24 * 14
    # Every line: the SME call too.
    assert (everyone.offered, everyone.answered, everyone.waited) == (7, 5, 425)
    assert everyone.hours[(2, 14)].talk == 400


def test_history_of_an_empty_window_uses_the_default(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as s:
        hist = history(s, SINCE, UNTIL, LOCAL, "main", default_aht=420)
    assert (hist.offered, hist.patience, hist.talk, hist.aht) == (0, None, None, 420)
    rows = table(hist, 0.8, 15, 0.95)
    assert {r.need for r in rows} == {1} and rows[0].model == "erlang_c"


# --- hotline staffing --------------------------------------------------------------------

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'var' / 'ledger.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def run(sqlite_ledger: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Run:
    """``hotline ARGS`` through the real main(), on the seeded SQLite ledger."""
    for name in ("HOTLINE_CONFIG", "HOTLINE_DATABASE_URL", "HOTLINE_PATHS_VAR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOTLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'ledger.db'}")
    monkeypatch.setenv("HOTLINE_PATHS_VAR", str(tmp_path / "var"))

    def register() -> None:
        # Only the commands under test: other modules are written concurrently elsewhere.
        for module in (db_cli, staffing_cli):
            for command in module.COMMANDS:
                cli.add_command(command)

    monkeypatch.setattr(hotline.cli, "_register", register)
    seed(sqlite_ledger)

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


def test_cli_prints_the_weekly_grid(run: Run) -> None:
    code, out, err = run("staffing", "--weeks", "2", "--until", "2026-11-15",
                         "--target-sl", "0.8/15", "--answer-rate", "0.95")
    assert (code, err) == (0, ""), err
    lines = out.splitlines()
    assert lines[0] == "话务统计: 2026-11-02 至 2026-11-15 (2 周, 线路 main, 时区 Asia/Shanghai)"
    assert lines[1] == "转人工来电 6 个, 律师接起 4 个, 排队放弃 1 个"
    assert lines[2] == ("目标: 已接来电 80% 在 15 秒内接起, 接通率 ≥ 95%; "
                        "模型 Erlang A (平均耐心 395 秒)")
    header = lines.index("每小时需要的值班律师 (人):") + 1
    assert lines[header].split() == ["时段", "周一", "周二", "周三", "周四", "周五", "周六",
                                     "周日"]
    grid = {row.split()[0]: row.split()[1:] for row in lines[header + 1: header + 25]}
    assert list(grid) == [f"{h:02d}:00" for h in range(24)]
    assert grid["10:00"][0] == "2" and grid["03:00"] == ["1"] * 7
    assert lines[-2] == ("合计: 每周律师工时 169 小时, 峰值 2 人 (周一 10:00), "
                         "每周来电 3.0 个")
    assert lines[-1] == "实测平均处理时长 205 秒 (通话含保持 165 + 话后整理 40); 平均耐心 395 秒"


def test_cli_json_has_every_hour_and_the_planner_map(run: Run) -> None:
    code, out, _ = run("staffing", "--weeks", "2", "--until", "2026-11-15", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["target"] == {"service_level": 0.8, "seconds": 15.0, "answer_rate": 0.95}
    assert data["model"] == "erlang_a" and len(data["hours"]) == 168
    assert data["measured"]["patience_seconds"] == pytest.approx(395)
    mon10 = data["hours"][10]
    assert (mon10["weekday"], mon10["hour"], mon10["arrivals_per_hour"]) == (0, 10, 2.0)
    assert (mon10["offered"], mon10["abandoned"], mon10["measured_answer_rate"]) == (4, 1, 0.5)
    assert mon10["need"] == data["need"]["0-10"] == 2
    assert data["lawyer_hours_per_week"] == sum(data["need"].values()) == 169
    # The map is what the roster planner reads ("weekday-hour" → lawyers).
    assert set(data["need"]) == {f"{wd}-{h}" for wd, h in HOURS_OF_WEEK}


@pytest.mark.parametrize(("args", "message"), [
    (("--target-sl", "80/15"), "用法错误: --target-sl 的值无效: '80/15' 应为 比例/秒数"),
    (("--target-sl", "0.8"), "用法错误: --target-sl 的值无效: '0.8' 应为 比例/秒数"),
    (("--answer-rate", "95"), "用法错误: --answer-rate 的值无效: '95' 应为 0 到 1 之间的比例"),
    (("--until", "2026-13-01"), "用法错误: --until 的值无效: '2026-13-01' 应为日期 YYYY-MM-DD"),
    (("--weeks", "0"), "用法错误: --weeks 的值无效: '0' 应为 1 到 52 之间的整数"),
])
def test_cli_bad_values_are_usage_errors(run: Run, args: tuple[str, ...], message: str) -> None:
    code, out, err = run("staffing", *args)
    assert (code, out) == (2, "")
    assert err.startswith(message), err
    assert err.endswith("运行 'hotline staffing --help' 查看用法\n")


def test_cli_defaults_come_from_the_configuration(run: Run, tmp_path: Path) -> None:
    (tmp_path / "hotline.toml").write_text(
        '[roster]\ntarget_sl = "0.9/20"\nanswer_rate = 0.9\nstaffing_weeks = 2\n'
        'staffing_line = "sme"\n', encoding="utf-8")
    code, out, err = run("staffing", "--until", "2026-11-15", "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["target"] == {"service_level": 0.9, "seconds": 20.0, "answer_rate": 0.9}
    assert (data["line"], data["weeks"], data["measured"]["offered"]) == ("sme", 2, 1)
    assert data["model"] == "erlang_c"  # nobody abandoned on the SME line
    assert data["since"] == datetime.combine(date(2026, 11, 2), time(0), LOCAL).isoformat()
