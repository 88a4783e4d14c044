"""Who is on duty when: the published roster as seen by a running server (sans-IO).

:class:`DutyBook` holds the published shifts around now and answers, for any ``now``
given to it: which lawyers are on duty (eligible for offers), whether the roster is in
force at all, when the next shift edge is, whose shift just started or ended, and which
running shifts have nobody logged in. No clock and no database: the keeper in
:mod:`hotline.roster.keeper` feeds it and acts on its answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from hotline.store.roster import DutySpan

Enforce = Literal["auto", "on", "off"]


@dataclass(frozen=True)
class Edge:
    """What changes at one moment: lawyers whose shift starts and whose shift ends."""

    at: datetime
    starting: frozenset[str]
    ending: frozenset[str]


class DutyBook:
    """Published shifts of a window, queried at any moment."""

    def __init__(self, spans: Iterable[DutySpan], enforce: Enforce = "auto") -> None:
        self.spans: tuple[DutySpan, ...] = tuple(sorted(spans, key=lambda s: s.start))
        self.enforce = enforce

    def in_force(self, now: datetime) -> bool:
        """Whether the roster decides who takes calls at ``now``."""
        if self.enforce == "off":
            return False
        if self.enforce == "on":
            return True
        return any(s.start <= now < s.end for s in self.spans)

    def on_duty(self, now: datetime) -> frozenset[str] | None:
        """Lawyers on a shift at ``now``; None when the roster is not in force (anyone)."""
        if not self.in_force(now):
            return None
        return frozenset(s.work_id for s in self.spans if s.start <= now < s.end)

    def shifts_of(self, work_id: str, now: datetime) -> list[DutySpan]:
        """The lawyer's current and coming shifts."""
        return [s for s in self.spans if s.work_id == work_id and s.end > now]

    def next_edge(self, now: datetime) -> datetime | None:
        """The first shift start or end after ``now``."""
        times = [t for s in self.spans for t in (s.start, s.end) if t > now]
        return min(times, default=None)

    def edge(self, before: datetime, now: datetime) -> Edge:
        """Who started and who finished duty between ``before`` (excluded) and ``now``.

        A lawyer whose shift ends as their next one starts (back-to-back shifts) neither
        starts nor ends.
        """
        was = self.on_duty(before) or frozenset()
        is_ = self.on_duty(now) or frozenset()
        return Edge(now, is_ - was, was - is_)

    def unstaffed(self, now: datetime, logged_in: Iterable[str],
                  after: timedelta) -> list[tuple[str, str, datetime, tuple[str, ...]]]:
        """Shifts running for at least ``after`` with none of their lawyers logged in.

        Returns (line, code, start, the shift's lawyers) per shift.
        """
        present = set(logged_in)
        shifts: dict[tuple[str, str, datetime], list[str]] = {}
        for s in self.spans:
            if s.start + after <= now < s.end:
                shifts.setdefault((s.line, s.code, s.start), []).append(s.work_id)
        return [(line, code, start, tuple(sorted(people)))
                for (line, code, start), people in sorted(shifts.items(), key=lambda x: x[0][2])
                if not present & set(people)]


def lines_of(spans: Sequence[DutySpan], work_id: str, now: datetime) -> list[str]:
    """The lines a lawyer is on duty for at ``now``."""
    return sorted({s.line for s in spans if s.work_id == work_id and s.start <= now < s.end})
