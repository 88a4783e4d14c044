"""Staffing: how many lawyers each hour of the week needs, from the ledger's call history.

Units: times in seconds and rates per second everywhere, except :class:`History` and
:class:`HourNeed`, which speak the operators' "calls per hour".

Two queueing models:

* **Erlang C** (M/M/n): every caller waits as long as it takes. Used when the history holds
  no abandonment, so callers' patience cannot be estimated. It needs occupancy < 1.
* **Erlang A** (M/M/n+M, Palm): each waiting caller hangs up after an exponential patience.
  The number in the system is a birth–death chain with birth rate λ and death rate
  ``min(k, n)·μ + max(k − n, 0)·θ``; it is computed in log space and its queue truncated
  once the rest of the tail is below 1e-16. A caller who must wait sees ``j`` callers ahead
  with probability ``π(n + j)`` (PASTA); with ``i`` ahead, the next departure ahead comes at
  rate ``nμ + iθ`` and the caller's own patience ends at rate θ (the killing), so
  "answered within t" is the absorption probability of that death chain by time ``t``,
  computed by uniformization (Poisson-weighted powers of the embedded chain, no matrix
  exponential and no cancellation). The answer rate and the ASA come in closed form from
  the same chain: starting with ``j`` ahead a caller is served with probability
  ``nμ / (nμ + (j + 1)θ)`` after ``Σ 1/(nμ + (i + 1)θ)`` seconds on average.

**Service level** is Asterisk's "SL" of DOMAIN.md: answered within ``t`` / answered, i.e.
``P(W ≤ t | answered)``. :class:`ErlangAResult` also gives ``answered_within``
(answered within ``t`` / offered). Under Erlang C every caller is answered, so both agree
with the textbook ``1 − C·exp(−(n − A)·t / AHT)``.

From the ledger (:func:`history`): a call is *offered to humans* when the flow queued it
(``calls.queued_at``) or a lawyer answered it without a queue (点名, ``agent_answered_at``);
callbacks (outbound) are the hotline's own calls and are not offered traffic. A call
counts in the hour of the week (hotline time) it was offered in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from hotline.domain import AgentState, CallEventKind, EndReason
from hotline.roster.model import Slot, hours_of
from hotline.store.tables import AgentEvent, Call, CallEvent

HOURS_OF_WEEK = tuple((wd, h) for wd in range(7) for h in range(24))
DEFAULT_AHT = 360.0  # seconds, when the window holds no answered call
MAX_WRAP_UP = 1800.0  # a queue's wrap-up is at most 30 min; longer means a lost end event
_TAIL = 1e-16  # queue truncation: the neglected stationary mass
_MAX_QUEUE = 1_000_000  # states; beyond this the parameters are not a call centre's
_MAX_AGENTS = 1_000_000


# --- Erlang B and C ------------------------------------------------------------------------


def erlang_b(n: int, a: float) -> float:
    """Blocking probability of ``n`` servers offered ``a`` erlangs (loss system M/M/n/n).

    The recursion ``B(k) = a·B(k−1) / (k + a·B(k−1))`` never forms a factorial or a power,
    so it is exact to rounding for any ``n`` and ``a``.
    """
    if n < 0 or a < 0:
        raise ValueError("n and a must be non-negative")
    b = 1.0
    for k in range(1, n + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(n: int, a: float) -> float:
    """Probability that a caller waits (M/M/n), 1 when ``a ≥ n`` (the queue never empties)."""
    if n < 1 or a < 0:
        raise ValueError("n must be ≥ 1 and a ≥ 0")
    if a >= n:
        return 1.0
    b = erlang_b(n, a)
    return n * b / (n - a * (1 - b))


def service_level_c(n: int, a: float, aht: float, t: float) -> float:
    """Erlang C's ``P(W ≤ t)``: share of callers answered within ``t`` seconds."""
    if a >= n:
        return 0.0
    return 1.0 - erlang_c(n, a) * math.exp(-(n - a) * t / aht)


def asa_c(n: int, a: float, aht: float) -> float:
    """Erlang C's mean wait of all callers (ASA), infinite when ``a ≥ n``."""
    if a >= n:
        return math.inf
    return erlang_c(n, a) * aht / (n - a)


# --- Erlang A ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErlangAResult:
    """Steady state of M/M/n+M for an arriving caller.

    ``service_level`` is ``P(W ≤ t | answered)`` (answered within ``t`` / answered);
    ``answered_within`` is ``P(answered and W ≤ t)`` (answered within ``t`` / offered);
    ``asa`` is the mean wait of answered callers, those answered at once included.
    """

    p_wait: float
    p_abandon: float
    answer_rate: float
    service_level: float
    answered_within: float
    asa: float


def _queue_distribution(n: int, lam: float, mu: float, theta: float) -> tuple[float, list[float]]:
    """P(fewer than ``n`` in the system) and ``π(n + j)`` for ``j = 0 … K``.

    Weights are kept as logarithms relative to state ``n`` (``n ≫ a`` would overflow a
    float otherwise), with a running log-sum-exp for the truncation test.
    """
    peak, scaled = 0.0, 1.0  # log-sum-exp accumulator: total = exp(peak) · scaled

    def add(log_x: float) -> None:
        nonlocal peak, scaled
        if log_x > peak:
            scaled = scaled * math.exp(peak - log_x) + 1.0
            peak = log_x
        else:
            scaled += math.exp(log_x - peak)

    below = []
    log_x = 0.0
    for k in range(n, 0, -1):  # x(k−1) = x(k) · kμ/λ
        log_x += math.log(k * mu / lam)
        below.append(log_x)
        add(log_x)
    queue = [0.0]
    log_x = 0.0
    j = 0
    while True:
        j += 1
        ratio = lam / (n * mu + j * theta)
        if ratio >= 1 and theta == 0:
            raise ValueError("no abandonment and λ ≥ nμ: the queue grows without bound")
        if j > _MAX_QUEUE:
            raise ValueError("queue too long to compute; check the rates")
        log_x += math.log(ratio)
        queue.append(log_x)
        add(log_x)
        # The ratios only shrink from here, so the rest of the tail is at most a geometric
        # series: x(j) · r / (1 − r).
        if ratio < 1 and log_x + math.log(ratio / (1 - ratio)) < peak + math.log(scaled * _TAIL):
            break
    log_total = peak + math.log(scaled)
    p_below = math.fsum(math.exp(v - log_total) for v in below)
    return p_below, [math.exp(v - log_total) for v in queue]


def _served_within(n: int, mu: float, theta: float, ahead: list[float], t: float) -> float:
    """``Σ_j ahead[j] · P(served by t | j ahead)`` by uniformization.

    State ``i`` (callers ahead) moves to ``i − 1`` (to "served" from 0) at rate
    ``nμ + iθ`` and is killed (the caller hangs up) at rate θ. With the uniformization rate
    Λ = nμ + (K + 1)θ, the probability is ``Σ_m Poisson(m; Λt) · S_m``, ``S_m`` being the
    mass absorbed in "served" after ``m`` steps of the embedded chain.
    """
    if t <= 0 or not ahead:
        return 0.0
    nmu = n * mu
    top = len(ahead) - 1
    rate = nmu + (top + 1) * theta
    progress = [(nmu + i * theta) / rate for i in range(top + 1)]
    stay = [1.0 - (nmu + (i + 1) * theta) / rate for i in range(top + 1)]
    mass = list(ahead)
    lt = rate * t
    log_lt = math.log(lt)
    last = int(lt + 12 * math.sqrt(lt) + 30)  # the Poisson tail beyond is < 1e-20
    served = total = weights = 0.0
    for m in range(last + 1):
        w = math.exp(-lt + m * log_lt - math.lgamma(m + 1))
        total += w * served
        weights += w
        served += mass[0] * progress[0]
        for i in range(top):
            mass[i] = mass[i] * stay[i] + mass[i + 1] * progress[i + 1]
        mass[top] *= stay[top]
        while top > 0 and mass[top] < 1e-300:
            top -= 1
        if sum(mass[: top + 1]) < 1e-18:  # everyone absorbed: S stays at `served`
            total += served * max(0.0, 1.0 - weights)
            break
    return total


def erlang_a(n: int, lam: float, mu: float, theta: float, t: float) -> ErlangAResult:
    """M/M/n+M with arrival rate ``lam``, service rate ``mu``, abandonment rate ``theta``.

    ``theta`` is 1 / mean patience; 0 gives Erlang C (then ``lam < n·mu`` is required).
    Rates and ``t`` share one time unit.
    """
    if n < 1 or lam < 0 or mu <= 0 or theta < 0 or t < 0:
        raise ValueError("need n ≥ 1, λ ≥ 0, μ > 0, θ ≥ 0, t ≥ 0")
    if lam == 0:
        return ErlangAResult(0.0, 0.0, 1.0, 1.0, 1.0, 0.0)
    p_below, ahead = _queue_distribution(n, lam, mu, theta)
    nmu = n * mu
    p_abandon = served_wait = 0.0
    mean_wait = 0.0  # mean time to service from j ahead, accumulated over j
    for j, pj in enumerate(ahead):
        stage = nmu + (j + 1) * theta
        mean_wait += 1.0 / stage
        served = nmu / stage  # the product over stages telescopes to this
        p_abandon += pj * (1.0 - served)
        served_wait += pj * served * mean_wait
    p_wait = math.fsum(ahead)
    answer_rate = 1.0 - p_abandon
    answered_within = min(answer_rate, p_below + _served_within(n, mu, theta, ahead, t))
    return ErlangAResult(p_wait=p_wait, p_abandon=p_abandon, answer_rate=answer_rate,
                         service_level=answered_within / answer_rate,
                         answered_within=answered_within, asa=served_wait / answer_rate)


def _smallest(lo: int, ok: Callable[[int], bool]) -> int:
    """The least ``n ≥ lo`` with ``ok(n)``, for a predicate monotone in ``n``."""
    if ok(lo):
        return lo
    step, bad = 1, lo
    while not ok(bad + step):
        bad += step
        step *= 2
        if bad > _MAX_AGENTS:
            raise ValueError("target not reachable")
    good = bad + step
    while good - bad > 1:
        mid = (bad + good) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good


def agents_needed(lam: float, aht: float, target_sl: float, t: float,
                  answer_rate: float | None = None, patience: float | None = None,
                  min_agents: int = 1) -> int:
    """Fewest lawyers so answered-within-``t`` / answered reaches ``target_sl``.

    Args:
        lam: Calls offered per second.
        aht: Mean handle time in seconds (talk + hold + wrap-up).
        target_sl: Service level goal, 0 < target < 1.
        t: The service level's threshold in seconds.
        answer_rate: Answered / offered goal; only Erlang A predicts abandonment, so it is
            checked only when ``patience`` is given (Erlang C answers every caller).
        patience: Mean seconds a caller waits before hanging up; given → Erlang A,
            None → Erlang C (which also requires occupancy < 1).
        min_agents: Floor (a 7×24 hotline keeps one lawyer on duty even when quiet).
    """
    if not 0 < target_sl < 1 or (answer_rate is not None and not 0 < answer_rate < 1):
        raise ValueError("targets must lie strictly between 0 and 1")
    if aht <= 0 or t < 0 or lam < 0 or min_agents < 0:
        raise ValueError("need λ ≥ 0, AHT > 0, t ≥ 0")
    if patience is not None and patience <= 0:
        raise ValueError("patience must be positive")
    if lam == 0:
        return min_agents
    a = lam * aht
    if patience is None or math.isinf(patience):
        return _smallest(max(min_agents, math.floor(a) + 1),
                         lambda n: service_level_c(n, a, aht, t) >= target_sl)
    mu, theta = 1.0 / aht, 1.0 / patience
    lo = max(min_agents, 1)
    if answer_rate is not None:  # the carried load a·(answer rate) is below n
        lo = max(lo, math.floor(a * answer_rate) + 1)

    def ok(n: int) -> bool:
        r = erlang_a(n, lam, mu, theta, t)
        return r.service_level >= target_sl and (answer_rate is None
                                                 or r.answer_rate >= answer_rate)

    return _smallest(lo, ok)


_TARGET = re.compile(r"\s*(0?\.\d+)\s*/\s*(\d+(?:\.\d+)?)\s*[sS秒]?\s*")


def parse_target(text: str) -> tuple[float, float]:
    """``"0.8/15"`` → (0.8, 15.0): the share answered within so many seconds.

    Raises:
        ValueError: not ``share/seconds`` with 0 < share < 1.
    """
    m = _TARGET.fullmatch(text)
    if m is None or not 0 < float(m.group(1)) < 1:
        raise ValueError(text)
    return float(m.group(1)), float(m.group(2))


# --- history from the ledger -------------------------------------------------------------


@dataclass(frozen=True)
class HourStats:
    """One hour of the week over the window (weekday 0 = Monday, hotline time).

    ``waited`` sums the queue time of every caller offered (answered, abandoned or sent
    elsewhere by the queue's overflow); ``talk`` sums talk + hold of the ``talked`` answered
    calls whose lawyer's leg has ended.
    """

    weekday: int
    hour: int
    hours: float = 0.0  # how many such hours the window holds
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    waited: float = 0.0
    talk: float = 0.0
    talked: int = 0

    @property
    def arrivals(self) -> float:
        """Mean calls offered to humans per such hour."""
        return self.offered / self.hours if self.hours else 0.0

    @property
    def answer_rate(self) -> float | None:
        """Measured 接通率 (answered / offered), None without calls."""
        return self.answered / self.offered if self.offered else None


@dataclass(frozen=True)
class History:
    """Traffic per hour of the week measured over ``[since, until)``.

    ``wrap_up`` is the mean wrap-up (话后整理) of all lawyers in the window, measured from
    their desk timeline (0 when none was recorded); it is added to every hour's talk time.
    """

    since: datetime
    until: datetime
    line: str | None
    hours: Mapping[tuple[int, int], HourStats]
    wrap_up: float = 0.0
    wrap_ups: int = 0
    default_aht: float = DEFAULT_AHT

    def _total(self, name: str) -> float:
        return math.fsum(float(getattr(s, name)) for s in self.hours.values())

    @property
    def offered(self) -> int:
        """Calls offered to humans in the window."""
        return int(self._total("offered"))

    @property
    def answered(self) -> int:
        """Calls a lawyer answered."""
        return int(self._total("answered"))

    @property
    def abandoned(self) -> int:
        """Callers who hung up while queued."""
        return int(self._total("abandoned"))

    @property
    def waited(self) -> float:
        """Seconds all offered callers spent queued."""
        return self._total("waited")

    @property
    def weeks(self) -> float:
        """Length of the window in weeks."""
        return (self.until - self.since) / timedelta(weeks=1)

    @property
    def abandon_rate(self) -> float | None:
        """θ̂ = abandoned / total queue time: the MLE of exponential patience's rate.

        Answered and overflowed callers are censored observations: their waits count in
        the exposure, not as abandonments. None without abandonment.
        """
        if not self.abandoned or self.waited <= 0:
            return None
        return self.abandoned / self.waited

    @property
    def patience(self) -> float | None:
        """Mean patience in seconds (1 / θ̂), None when no caller abandoned."""
        rate = self.abandon_rate
        return None if rate is None else 1.0 / rate

    @property
    def talk(self) -> float | None:
        """Mean talk + hold per answered call over the window, None without one."""
        talked = self._total("talked")
        return self._total("talk") / talked if talked else None

    @property
    def aht(self) -> float:
        """Measured mean handle time (talk + hold + wrap-up), else ``default_aht``."""
        talk = self.talk
        return self.default_aht if talk is None else talk + self.wrap_up

    def arrivals(self, weekday: int, hour: int) -> float:
        """Mean calls offered per hour in this hour of the week."""
        return self.hours[(weekday, hour)].arrivals

    def handle_time(self, weekday: int, hour: int) -> float:
        """This hour's mean talk + hold plus the mean wrap-up; the window's AHT without calls."""
        s = self.hours[(weekday, hour)]
        return s.talk / s.talked + self.wrap_up if s.talked else self.aht


def hour_counts(since: datetime, until: datetime, tz: tzinfo) -> dict[tuple[int, int], float]:
    """How many of each local hour of the week ``[since, until)`` holds (partial ones pro rata).

    Walks local hour boundaries, so a daylight-saving autumn night counts its repeated
    hour twice and the spring one skips an hour, as the calls do.
    """
    counts = dict.fromkeys(HOURS_OF_WEEK, 0.0)
    at = since.astimezone(UTC)
    end = until.astimezone(UTC)
    while at < end:
        local = at.astimezone(tz)
        start = local.replace(minute=0, second=0, microsecond=0)
        nxt = min(end, start.astimezone(UTC) + timedelta(hours=1))
        counts[(local.weekday(), local.hour)] += (nxt - at) / timedelta(hours=1)
        at = nxt
    return counts


def _calls_in(since: datetime, until: datetime, line: str | None) -> list[ColumnElement[bool]]:
    """Inbound calls offered to humans in the window (queued, or 点名 answered)."""
    conds: list[ColumnElement[bool]] = [
        Call.outbound.is_(False),
        or_(and_(Call.queued_at >= since, Call.queued_at < until),
            and_(Call.queued_at.is_(None), Call.agent_answered_at >= since,
                 Call.agent_answered_at < until)),
    ]
    if line is not None:
        conds.append(Call.flow == line)
    return conds


def _wrap_ups(session: Session, since: datetime, until: datetime) -> tuple[float, int]:
    """Total seconds and count of wrap-ups that started in the window, from agent_events."""
    rows = session.execute(
        select(AgentEvent.user_id, AgentEvent.at, AgentEvent.state)
        .where(AgentEvent.at >= since,
               AgentEvent.at < until + timedelta(seconds=MAX_WRAP_UP))
        .order_by(AgentEvent.user_id, AgentEvent.at, AgentEvent.id)).all()
    total, count = 0.0, 0
    user, began = None, None
    for user_id, at, state in rows:
        if user_id != user:
            user, began = user_id, None
        if state is AgentState.WRAP_UP:
            if began is None and at < until:
                began = at
                count += 1
        elif began is not None and state is not None:
            total += min((at - began).total_seconds(), MAX_WRAP_UP)
            began = None
    return total, count


def history(session: Session, since: datetime, until: datetime, tz: tzinfo,
            line: str | None = None, *, default_aht: float = DEFAULT_AHT) -> History:
    """Measure offered calls, waits, abandonment and handle times per hour of the week.

    Per call: *offered* at ``queued_at`` (or ``agent_answered_at`` for 点名 calls that never
    queued); *answered* when ``agent_answered_at`` is set, waiting until then; *abandoned*
    when it ended as ``abandoned`` (hung up while queued), waiting until ``ended_at``; other
    callers waited until the queue let them go (the ``left_queue`` note of an overflow),
    else until the call ended. Talk runs from the lawyer's answer to the end of that
    lawyer's leg (``leg_ended`` of the leg named by ``agent_answered``), or to the call's
    end when the caller hung up first; hold falls inside it. A transfer target's time is
    not counted.

    Args:
        session: A ledger session (SQLite or PostgreSQL).
        since: Window start (aware).
        until: Window end, exclusive (aware).
        tz: The hotline's time zone: hours of the week are local.
        line: The flow the dialed number selects ([lines] in hotline.toml: main, sme …);
            None for every line.
        default_aht: Handle time assumed when the window holds no answered call.
    """
    conds = _calls_in(since, until, line)
    calls = session.execute(
        select(Call.id, Call.queued_at, Call.agent_answered_at, Call.ended_at, Call.end_reason)
        .where(*conds)).all()
    events: dict[int, list[tuple[datetime, CallEventKind, dict[str, Any]]]] = {}
    for call_id, at, kind, data in session.execute(
            select(CallEvent.call_id, CallEvent.at, CallEvent.kind, CallEvent.data)
            .join(Call, Call.id == CallEvent.call_id)
            .where(*conds, or_(
                CallEvent.kind.in_([CallEventKind.AGENT_ANSWERED, CallEventKind.LEG_ENDED]),
                and_(CallEvent.kind == CallEventKind.IVR_NOTE,
                     Call.agent_answered_at.is_(None))))
            .order_by(CallEvent.call_id, CallEvent.seq)):
        events.setdefault(call_id, []).append((at, kind, data or {}))

    acc = {key: dict.fromkeys(("offered", "answered", "abandoned", "waited", "talk",
                               "talked"), 0.0) for key in HOURS_OF_WEEK}
    for call_id, queued_at, answered_at, ended_at, reason in calls:
        offered_at = queued_at or answered_at
        if offered_at is None:  # excluded by the query; keeps the types honest
            continue
        local = offered_at.astimezone(tz)
        a = acc[(local.weekday(), local.hour)]
        a["offered"] += 1
        timeline = events.get(call_id, [])
        if answered_at is not None:
            a["answered"] += 1
            a["waited"] += max(0.0, (answered_at - offered_at).total_seconds())
            end = _talk_end(timeline, answered_at) or ended_at
            if end is not None:
                a["talk"] += max(0.0, (end - answered_at).total_seconds())
                a["talked"] += 1
            continue
        if reason is EndReason.ABANDONED and ended_at is not None:
            a["abandoned"] += 1
            left = ended_at
        else:
            left = next((at for at, kind, data in timeline
                         if kind is CallEventKind.IVR_NOTE and "left_queue" in data
                         and at >= offered_at), None) or ended_at or until
        a["waited"] += max(0.0, (left - offered_at).total_seconds())

    exposure = hour_counts(since, until, tz)
    stats = {key: HourStats(key[0], key[1], hours=exposure[key], offered=int(v["offered"]),
                            answered=int(v["answered"]), abandoned=int(v["abandoned"]),
                            waited=v["waited"], talk=v["talk"], talked=int(v["talked"]))
             for key, v in acc.items()}
    wrap_total, wraps = _wrap_ups(session, since, until)
    return History(since, until, line, stats, wrap_up=wrap_total / wraps if wraps else 0.0,
                   wrap_ups=wraps, default_aht=default_aht)


def _talk_end(timeline: list[tuple[datetime, CallEventKind, dict[str, Any]]],
              answered_at: datetime) -> datetime | None:
    """When the answering lawyer's leg ended (ring-all's other legs end too: match by name)."""
    leg = next((data.get("leg") for _, kind, data in timeline
                if kind is CallEventKind.AGENT_ANSWERED), None)
    if leg is None:
        return None
    return next((at for at, kind, data in timeline
                 if kind is CallEventKind.LEG_ENDED and data.get("leg") == leg
                 and at >= answered_at), None)


# --- the need per hour ---------------------------------------------------------------------


@dataclass(frozen=True)
class HourNeed:
    """Lawyers one hour of the week needs, and what that head-count should achieve.

    ``need`` is Erlang A's (``need_a``) when patience is known, else Erlang C's;
    ``service_level`` (answered within t / answered), ``answer_rate`` and ``asa`` are that
    model's predictions at ``need``.
    """

    weekday: int
    hour: int
    arrivals: float  # calls offered per hour
    aht: float  # seconds
    erlangs: float
    need_c: int
    need_a: int | None
    need: int
    service_level: float
    answer_rate: float
    asa: float

    @property
    def model(self) -> str:
        """``erlang_a`` or ``erlang_c``."""
        return "erlang_c" if self.need_a is None else "erlang_a"


def table(history: History, target_sl: float, t: float, answer_rate: float,
          *, min_agents: int = 1) -> list[HourNeed]:
    """The need of every hour of the week, Monday 00:00 first."""
    patience = history.patience
    rows = []
    for wd, h in HOURS_OF_WEEK:
        arrivals, aht = history.arrivals(wd, h), history.handle_time(wd, h)
        lam = arrivals / 3600.0
        a = lam * aht
        need_c = agents_needed(lam, aht, target_sl, t, min_agents=min_agents)
        need_a = None
        if patience is not None:
            need_a = agents_needed(lam, aht, target_sl, t, answer_rate, patience, min_agents)
            r = erlang_a(need_a, lam, 1.0 / aht, 1.0 / patience, t)
            sl, rate, asa = r.service_level, r.answer_rate, r.asa
        elif lam > 0:
            sl, rate, asa = service_level_c(need_c, a, aht, t), 1.0, asa_c(need_c, a, aht)
        else:
            sl, rate, asa = 1.0, 1.0, 0.0
        rows.append(HourNeed(wd, h, arrivals, aht, a, need_c, need_a,
                             need_c if need_a is None else need_a, sl, rate, asa))
    return rows


def raise_needs(slots: Iterable[Slot], needs: Mapping[tuple[int, int], int],
                line: str = "main") -> list[Slot]:
    """Raise each ``line`` slot's head-count to the largest hourly need it covers.

    The template's head-count stays the floor; slots of other lines pass unchanged.
    ``needs`` maps (weekday, hour) in the slots' local time to lawyers.
    """
    raised = []
    for slot in slots:
        if slot.line == line:
            peak = max((needs.get((at.weekday(), at.hour), 0) for at in hours_of(slot)),
                       default=0)
            if peak > slot.need.lawyers:
                slot = replace(slot, need=slot.need.with_lawyers(peak))
        raised.append(slot)
    return raised
