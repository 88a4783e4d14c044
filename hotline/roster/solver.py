"""The duty roster's constraint solver (OR-Tools CP-SAT).

One Boolean ``x[lawyer, slot]`` exists only where :func:`~hotline.roster.model.may_serve`
allows the pair, so leave, lines and remote nights never appear as constraints. The hard
rules (head-count, skill and language minimums, rest, consecutive nights, shifts per month)
are constraints; the soft goals (fair spreads, firms' shares, avoid / prefer, continuity
and, in a re-plan, as few changes as possible) are one weighted objective from
:class:`~hotline.roster.model.Rules`.

:class:`RosterModel` builds the same hard model for :mod:`.explain`, which puts every rule
group behind an assumption literal to find which rules conflict when no roster exists.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta

from ortools.sat.python import cp_model

from hotline.errors import RosterError
from hotline.roster.model import (
    Assignment,
    Problem,
    Slot,
    Solution,
    may_serve,
    rest_conflict,
)
from hotline.roster.rules import (
    eligible,
    figures,
    is_remote,
    night_limit,
    shift_limit,
    summary,
    touches,
)

# (kind, index, key): ("coverage", slot, ""), ("skill", slot, skill), ("language", slot,
# language), ("rest", lawyer, ""), ("nights", lawyer, ""), ("max_shifts", lawyer, "").
Group = tuple[str, int, str]
Term = cp_model.IntVar | int


def rest_pairs(slots: Sequence[Slot], rest_hours: float) -> list[tuple[int, int]]:
    """Index pairs of slots one lawyer cannot both work (overlap or too little rest).

    Slots are compared in start order and only within the longest shift plus the rest, so
    a month of shifts costs a few comparisons per slot rather than all pairs.
    """
    if not slots:
        return []
    order = sorted(range(len(slots)), key=lambda i: slots[i].start)
    reach = max(s.end - s.start for s in slots) + timedelta(hours=rest_hours)
    pairs = []
    for pos, i in enumerate(order):
        for j in order[pos + 1:]:
            if slots[j].start >= slots[i].start + reach:
                break
            if rest_conflict(slots[i], slots[j], rest_hours):
                pairs.append((i, j))
    return pairs


class RosterModel:
    """The CP-SAT model of a problem's hard rules, optionally with its soft goals.

    Args:
        problem: What to roster.
        assumptions: Put each rule group (coverage / skill / language of a slot; rest,
            nights, shifts per month of a lawyer) behind its own enforcement literal,
            listed in :attr:`groups`, for :mod:`.explain`.

    Fixed assignments are constants: their slots keep exactly the fixed lawyers (and are
    not held to the head-count, they are facts), and they count for rest, nights and the
    monthly limit of their lawyers.
    """

    def __init__(self, problem: Problem, *, assumptions: bool = False) -> None:
        self.problem = problem
        self.model = cp_model.CpModel()
        self.assumptions = assumptions
        self.groups: dict[Group, cp_model.IntVar] = {}
        self.slots = problem.slots
        self.lawyers = problem.lawyers
        slot_index = {s.id: i for i, s in enumerate(self.slots)}
        lawyer_index = {lawyer.work_id: i for i, lawyer in enumerate(self.lawyers)}
        self.fixed: dict[int, list[Assignment]] = {}
        fixed_pairs: set[tuple[int, int]] = set()
        for a in problem.fixed:
            if a.slot_id in slot_index and a.work_id in lawyer_index:
                pair = (lawyer_index[a.work_id], slot_index[a.slot_id])
                if pair not in fixed_pairs:
                    fixed_pairs.add(pair)
                    self.fixed.setdefault(pair[1], []).append(a)
        self.x: dict[tuple[int, int], cp_model.IntVar] = {}
        self.terms: dict[tuple[int, int], Term] = {}
        for s, slot in enumerate(self.slots):
            line = problem.lines.get(slot.line)
            for li, lawyer in enumerate(self.lawyers):
                if s in self.fixed:
                    if (li, s) in fixed_pairs:
                        self.terms[(li, s)] = 1
                    continue
                if may_serve(lawyer, slot, line) is None:
                    var = self.model.new_bool_var(f"x[{lawyer.work_id},{slot.id}]")
                    self.x[(li, s)] = var
                    self.terms[(li, s)] = var
        self.by_slot: dict[int, list[tuple[int, Term]]] = defaultdict(list)
        self.by_lawyer: dict[int, list[tuple[int, Term]]] = defaultdict(list)
        for (li, s), term in self.terms.items():
            self.by_slot[s].append((li, term))
            self.by_lawyer[li].append((s, term))
        self.pairs = rest_pairs(self.slots, problem.rules.min_rest_hours)
        self._coverage()
        self._rest()
        self._nights()
        self._max_shifts()

    # --- plumbing ------------------------------------------------------------------------

    def _enforce(self, constraint: cp_model.Constraint, group: Group) -> None:
        if not self.assumptions:
            return
        lit = self.groups.get(group)
        if lit is None:
            lit = self.model.new_bool_var(f"{group[0]}[{group[1]},{group[2]}]")
            self.groups[group] = lit
        constraint.only_enforce_if(lit)

    def _at_most(self, terms: Sequence[Term], limit: int, group: Group) -> None:
        """sum(terms) ≤ limit, constants folded in (never below zero for the variables)."""
        variables = [t for t in terms if not isinstance(t, int)]
        constant = sum(t for t in terms if isinstance(t, int))
        if variables and len(variables) > limit - constant:
            bound = max(0, limit - constant)
            self._enforce(self.model.add(cp_model.LinearExpr.sum(variables) <= bound), group)

    # --- hard rules ----------------------------------------------------------------------

    def _coverage(self) -> None:
        for s, slot in enumerate(self.slots):
            if s in self.fixed:
                continue
            staff = self.by_slot.get(s, [])
            need = slot.need
            self._enforce(self.model.add(
                cp_model.LinearExpr.sum([t for _, t in staff]) == need.lawyers),
                ("coverage", s, ""))
            for skill, n in need.skills.items():
                skilled = [t for li, t in staff
                           if self.lawyers[li].skills.get(skill, 0) >= need.min_proficiency]
                self._enforce(self.model.add(cp_model.LinearExpr.sum(skilled) >= n),
                              ("skill", s, skill))
            for language, n in need.languages.items():
                speakers = [t for li, t in staff if language in self.lawyers[li].languages]
                self._enforce(self.model.add(cp_model.LinearExpr.sum(speakers) >= n),
                              ("language", s, str(language)))

    def _rest(self) -> None:
        rest = self.problem.rules.min_rest_hours
        for a, b in self.pairs:
            for li in range(len(self.lawyers)):
                ta, tb = self.terms.get((li, a)), self.terms.get((li, b))
                if ta is None or tb is None or (isinstance(ta, int) and isinstance(tb, int)):
                    continue
                self._at_most([ta, tb], 1, ("rest", li, ""))
        history: dict[str, list[Slot]] = defaultdict(list)
        for slot, work_id in self.problem.history:
            history[work_id].append(slot)
        for li, lawyer in enumerate(self.lawyers):
            for past in history.get(lawyer.work_id, []):
                for s, term in self.by_lawyer.get(li, []):
                    if not isinstance(term, int) and rest_conflict(past, self.slots[s], rest):
                        self._at_most([term], 0, ("rest", li, ""))

    def _nights(self) -> None:
        past_nights: dict[str, set[date]] = defaultdict(set)
        for slot, work_id in self.problem.history:
            if slot.night:
                past_nights[work_id].add(slot.date)
        for li, lawyer in enumerate(self.lawyers):
            limit = night_limit(lawyer, self.problem.rules)
            per_day: dict[date, list[Term]] = defaultdict(list)
            for s, term in self.by_lawyer.get(li, []):
                if self.slots[s].night:
                    per_day[self.slots[s].date].append(term)
            if not any(not isinstance(t, int) for ts in per_day.values() for t in ts):
                continue
            night: dict[date, Term] = {d: 1 for d in past_nights.get(lawyer.work_id, ())}
            for d, ts in per_day.items():
                if d in night or any(isinstance(t, int) for t in ts):
                    night[d] = 1
                elif len(ts) == 1:
                    night[d] = ts[0]
                else:
                    worked = self.model.new_bool_var(f"night[{lawyer.work_id},{d}]")
                    for t in ts:
                        self.model.add(worked >= t)
                    night[d] = worked
            open_days = sorted(d for d, t in night.items() if not isinstance(t, int))
            done: set[date] = set()
            for d in open_days:
                for back in range(limit + 1):
                    first = d - timedelta(days=back)
                    if first in done:
                        continue
                    done.add(first)
                    window = [night[first + timedelta(days=k)] for k in range(limit + 1)
                              if first + timedelta(days=k) in night]
                    self._at_most(window, limit, ("nights", li, ""))

    def _max_shifts(self) -> None:
        for li, lawyer in enumerate(self.lawyers):
            terms = [t for _, t in self.by_lawyer.get(li, [])]
            self._at_most(terms, shift_limit(lawyer, self.problem.rules),
                          ("max_shifts", li, ""))

    # --- soft goals ----------------------------------------------------------------------

    def add_objective(self) -> None:
        """Minimise the weighted soft goals of ``problem.rules`` (and changes in a re-plan).

        Terms: for total, night and weekend/holiday shifts, the spread (max − min over the
        lawyers of :func:`.rules.eligible`) plus every shift outside the fair band
        (:meth:`_band`), both at ``w_fair_*``; the worst firm's share gap in percentage
        points (``w_fair_firms``); ``w_avoid`` per avoided shift and a ``w_prefer`` bonus per
        preferred one; ``w_continuity`` per lawyer-day followed by another shift code; and,
        when ``problem.previous`` is set, ``w_change`` per (slot, lawyer) added or removed,
        with the previous roster as the solver's hint.
        """
        rules = self.problem.rules
        variables: list[cp_model.IntVar] = []
        weights: list[int] = []
        constant = 0

        def cost(var: cp_model.IntVar, weight: int) -> None:
            if weight:
                variables.append(var)
                weights.append(weight)

        pools = eligible(self.problem)
        for kind, weight, keep in (
                ("shifts", rules.w_fair_shifts, lambda slot: True),
                ("nights", rules.w_fair_nights, lambda slot: slot.night),
                ("weekends", rules.w_fair_weekends, lambda slot: slot.weekend_or_holiday)):
            counts = [cp_model.LinearExpr.sum([t for s, t in self.by_lawyer.get(li, [])
                                               if keep(self.slots[s])])
                      for li, lawyer in enumerate(self.lawyers)
                      if lawyer.work_id in pools[kind]]
            if weight and len(counts) > 1:
                cost(self._spread(counts, kind), weight)
                seats = sum(len(self.fixed[s]) if s in self.fixed else slot.need.lawyers
                            for s, slot in enumerate(self.slots) if keep(slot))
                for off in self._band(counts, seats, kind):
                    cost(off, weight)
        if rules.w_fair_firms:
            firm = self._firm_deviation()
            if firm is not None:
                cost(firm, rules.w_fair_firms)
        for (li, s), var in self.x.items():
            lawyer, slot = self.lawyers[li], self.slots[s]
            cost(var, (rules.w_avoid if touches(slot, lawyer.avoid) else 0)
                 - (rules.w_prefer if touches(slot, lawyer.prefer) else 0))
        if rules.w_continuity:
            for var in self._continuity():
                cost(var, rules.w_continuity)
        previous = {(a.slot_id, a.work_id) for a in self.problem.previous}
        for (li, s), var in self.x.items() if previous else ():
            self.model.add_hint(var, (self.slots[s].id, self.lawyers[li].work_id) in previous)
        if previous and rules.w_change:
            for (li, s), var in self.x.items():
                was = (self.slots[s].id, self.lawyers[li].work_id) in previous
                if was:
                    constant += rules.w_change
                    cost(var, -rules.w_change)
                else:
                    cost(var, rules.w_change)
            known = {(self.slots[s].id, self.lawyers[li].work_id) for li, s in self.terms}
            # Previous assignments that can no longer exist (new leave): sure changes.
            open_slots = {slot.id for s, slot in enumerate(self.slots) if s not in self.fixed}
            constant += rules.w_change * sum(1 for p in previous
                                             if p[0] in open_slots and p not in known)
        self.model.minimize(cp_model.LinearExpr.weighted_sum(variables, weights) + constant)

    def _spread(self, counts: Sequence[cp_model.LinearExprT], name: str) -> cp_model.IntVar:
        top = len(self.slots)
        high = self.model.new_int_var(0, top, f"{name}_max")
        low = self.model.new_int_var(0, top, f"{name}_min")
        for count in counts:
            self.model.add(high >= count)
            self.model.add(low <= count)
        spread = self.model.new_int_var(0, top, f"{name}_spread")
        self.model.add(spread == high - low)
        return spread

    def _band(self, counts: Sequence[cp_model.LinearExprT], seats: int,
              name: str) -> list[cp_model.IntVar]:
        """Per lawyer: shifts below or above the fair share ⌊seats/n⌋ … ⌈seats/n⌉.

        The spread alone only prices the two extremes, leaving everyone between free to
        drift (for a preference, say); this prices every shift outside the fair band at the
        same weight, so no wish is worth unbalancing the roster.
        """
        low, high = seats // len(counts), -(-seats // len(counts))
        top = len(self.slots)
        out = []
        for i, count in enumerate(counts):
            off = self.model.new_int_var(0, top, f"{name}_off[{i}]")
            self.model.add(off >= count - high)
            self.model.add(off >= low - count)
            out.append(off)
        return out

    def _firm_deviation(self) -> cp_model.IntVar | None:
        """Percentage points (rounded up) of the worst firm's share gap; None without firms."""
        firms: dict[str, list[int]] = defaultdict(list)
        for li, lawyer in enumerate(self.lawyers):
            if lawyer.firm:
                firms[lawyer.firm].append(li)
        total = sum(len(self.fixed[s]) if s in self.fixed else slot.need.lawyers
                    for s, slot in enumerate(self.slots))
        headcount = len(self.lawyers)
        if not firms or not total or all(len(m) == headcount for m in firms.values()):
            return None
        points = self.model.new_int_var(0, 100, "firm_share_points")
        for members in firms.values():
            shifts = cp_model.LinearExpr.sum([t for li in members
                                              for _, t in self.by_lawyer.get(li, [])])
            # |shifts/total − members/headcount| · 100 ≤ points, times total·headcount.
            gap = 100 * headcount * shifts - 100 * total * len(members)
            self.model.add(gap <= points * total * headcount)
            self.model.add(-gap <= points * total * headcount)
        return points

    def _continuity(self) -> list[cp_model.IntVar]:
        """One Boolean per lawyer and day: works code A that day and another code the next."""
        rest = self.problem.rules.min_rest_hours
        out: list[cp_model.IntVar] = []
        for li, lawyer in enumerate(self.lawyers):
            by_day: dict[date, list[tuple[int, Term]]] = defaultdict(list)
            for s, term in self.by_lawyer.get(li, []):
                by_day[self.slots[s].date].append((s, term))
            for d, today in by_day.items():
                tomorrow = by_day.get(d + timedelta(days=1), [])
                pairs = [(ta, tb) for sa, ta in today for sb, tb in tomorrow
                         if self.slots[sa].code != self.slots[sb].code
                         and not (isinstance(ta, int) and isinstance(tb, int))
                         and not rest_conflict(self.slots[sa], self.slots[sb], rest)]
                if not pairs:
                    continue
                changed = self.model.new_bool_var(f"change[{lawyer.work_id},{d}]")
                for ta, tb in pairs:
                    self.model.add(changed >= ta + tb - 1)
                out.append(changed)
        return out

    # --- reading a solution --------------------------------------------------------------

    def assignments(self, solver: cp_model.CpSolver) -> tuple[Assignment, ...]:
        """The roster of a solved model, in slot order then lawyer order."""
        out: list[Assignment] = []
        for s, slot in enumerate(self.slots):
            if s in self.fixed:
                out.extend(self.fixed[s])
                continue
            for li, lawyer in enumerate(self.lawyers):
                var = self.x.get((li, s))
                if var is not None and solver.boolean_value(var):
                    out.append(Assignment(slot.id, lawyer.work_id, is_remote(slot, lawyer)))
        return tuple(out)


def changes(problem: Problem, assignments: Sequence[Assignment]) -> int:
    """(slot, lawyer) pairs added or removed against ``problem.previous`` (its slots only)."""
    if not problem.previous:
        return 0
    ids = {s.id for s in problem.slots}
    before = {(a.slot_id, a.work_id) for a in problem.previous if a.slot_id in ids}
    after = {(a.slot_id, a.work_id) for a in assignments}
    return len(before ^ after)


def solve(problem: Problem, *, time_limit: float = 60.0, workers: int = 2,
          seed: int = 0) -> Solution:
    """The best roster CP-SAT finds within ``time_limit`` seconds.

    Cheap pre-checks (:func:`.explain.prechecks`) run first, so a slot nobody can serve is
    reported at once rather than after a search.

    Raises:
        RosterError: ``roster.infeasible`` with ``reasons`` (from :func:`.explain.explain`)
            when no roster satisfies the hard rules or none was found in time.
    """
    from hotline.roster.explain import explain, prechecks

    started = time.perf_counter()
    reasons = prechecks(problem)
    if reasons:
        raise RosterError("roster.infeasible", reasons=reasons, summary=summary(reasons))
    built = RosterModel(problem)
    built.add_objective()
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    status = solver.solve(built.model)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        roster = built.assignments(solver)
        return Solution(
            roster,
            "optimal" if status == cp_model.OPTIMAL else "feasible",
            float(solver.objective_value),
            float(solver.best_objective_bound),
            time.perf_counter() - started,
            figures(problem, roster),
            changes(problem, roster))
    if status == cp_model.MODEL_INVALID:
        raise RosterError("roster.error", detail=built.model.validate())
    reasons = explain(problem, time_limit=max(5.0, time_limit))
    raise RosterError("roster.infeasible", reasons=reasons, summary=summary(reasons))
