"""Flag calls that need 110 or 120 now: self-harm, violence, threats, abuse, a child in danger.

A duty lawyer must transfer emergencies at once (DOMAIN.md), and a caller in danger often says
so in passing, between questions about wages or divorce. The flags are a prompt on the lawyer's
screen with the words that raised them, never an automatic transfer. Rules live in
``rules.yaml`` (section ``urgency``). False alarms wear out attention, so ordinary phrases that
merely contain a rule phrase are excluded (打官司, 打电话, 打工 are not violence; 打我电话 is not
打我), negated phrases are dropped (他没有打我), and a specific flag hides a general one on the
same words (老公打我 is domestic violence, not also plain violence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hotline.ivr.loader import Path_
from hotline.speech.text.phrases import (
    Evidence,
    Negation,
    drop_covered,
    drop_overlapped,
    find,
    parse_negation,
)
from hotline.speech.text.yamlcheck import Checker

URGENCY_KEYS = ("negation", "exclude", "flags")
FLAG_KEYS = ("transfers", "phrases", "pairs", "exclude")
PAIR_KEYS = ("first", "then", "within")


class UrgencyKind(StrEnum):
    """Why a call may need an emergency transfer."""

    SELF_HARM = "self_harm"  # 自伤自杀风险
    VIOLENCE = "violence"  # 正在发生的暴力
    THREAT = "threat"  # 人身威胁
    DOMESTIC_VIOLENCE = "domestic_violence"  # 家庭暴力
    CHILD_DANGER = "child_danger"  # 儿童处于危险
    MEDICAL = "medical"  # 伤病急救


class Transfer(StrEnum):
    """Emergency numbers a lawyer transfers to (three-way when responsibility is unclear)."""

    POLICE = "110"  # 报警
    AMBULANCE = "120"  # 急救


@dataclass(frozen=True)
class Pair:
    """A ``first`` word followed within ``within`` characters by a ``then`` phrase.

    Callers put words between who and what (老公又打我, 孩子昨天被打了); listing every variant
    as a phrase would never end.
    """

    first: tuple[str, ...]
    then: tuple[str, ...]
    within: int = 4

    def find(self, text: str) -> list[tuple[Evidence, int]]:
        """Each match spanning both words, with where its ``then`` phrase starts."""
        out: list[tuple[Evidence, int]] = []
        for head in find(text, self.first):
            window = text[head.end:head.end + self.within + max(map(len, self.then))]
            for tail in find(window, self.then):
                if tail.start <= self.within:
                    start = head.end + tail.start
                    out.append((Evidence(text[head.start:start + len(tail.phrase)],
                                         head.start, start + len(tail.phrase)), start))
                    break
        return out


@dataclass(frozen=True)
class UrgencyRule:
    """The phrases of one flag and where to transfer when it is raised."""

    kind: UrgencyKind
    transfers: tuple[Transfer, ...]
    phrases: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    pairs: tuple[Pair, ...] = ()


@dataclass(frozen=True)
class UrgencyFlag:
    """A raised flag: what, where to transfer, and the words that raised it."""

    kind: UrgencyKind
    transfers: tuple[Transfer, ...]
    evidence: tuple[Evidence, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {"kind": self.kind.value, "transfers": [t.value for t in self.transfers],
                "evidence": [e.to_dict() for e in self.evidence]}


class UrgencyDetector:
    """Finds urgency flags in texts."""

    def __init__(self, rules: Sequence[UrgencyRule], *, exclude: Sequence[str] = (),
                 negation: Negation | None = None) -> None:
        """``exclude`` applies to every flag, each rule's own ``exclude`` to its phrases."""
        self.rules = tuple(rules)
        self.exclude = tuple(exclude)
        self.negation = negation or Negation()

    def detect(self, text: str) -> tuple[UrgencyFlag, ...]:
        """The flags raised by ``text``, most serious kind first."""
        return self.detect_parts([text])

    def detect_parts(self, texts: Sequence[str]) -> tuple[UrgencyFlag, ...]:
        """The flags raised by several texts (a caller's segments); evidence names the part."""
        found: dict[UrgencyKind, list[Evidence]] = {}
        for n, text in enumerate(texts):
            for kind, hit in self._hits(text):
                found.setdefault(kind, []).append(
                    Evidence(hit.phrase, hit.start, hit.end, 1.0, n))
        order = list(UrgencyKind)
        return tuple(UrgencyFlag(rule.kind, rule.transfers, tuple(found[rule.kind]))
                     for rule in sorted(self.rules, key=lambda r: order.index(r.kind))
                     if rule.kind in found)

    def _hits(self, text: str) -> list[tuple[UrgencyKind, Evidence]]:
        common = find(text, self.exclude)
        hits: list[tuple[UrgencyKind, Evidence]] = []
        for rule in self.rules:
            own = find(text, rule.exclude)
            found = [(h, h.start) for h in find(text, rule.phrases)]
            found += [p for pair in rule.pairs for p in pair.find(text)]
            for hit, core in found:
                if drop_overlapped(drop_overlapped([hit], common), own) and not (
                        self.negation.negates(text, core)):
                    hits.append((rule.kind, hit))
        kept = drop_covered([h for _, h in hits])
        return [(kind, h) for kind, h in hits if h in kept]


def parse_urgency(check: Checker, path: Path_, data: Any) -> UrgencyDetector:
    """Read the ``urgency`` section."""
    table = check.mapping(path, data, required=("flags",), allowed=URGENCY_KEYS) or {}
    negation = parse_negation(check, (*path, "negation"), table.get("negation", {"words": []}))
    exclude = check.strings((*path, "exclude"), table.get("exclude", []))
    kinds = [k.value for k in UrgencyKind]
    rules: list[UrgencyRule] = []
    for name, body in (check.mapping((*path, "flags"), table.get("flags", {})) or {}).items():
        where = (*path, "flags", name)
        if check.choice(where, name, "紧急情况类型", kinds, at_key=True) is None:
            continue
        flag = check.mapping(where, body, required=("transfers", "phrases"), allowed=FLAG_KEYS)
        if flag is None:
            continue
        transfers = []
        for i, raw in enumerate(check.strings((*where, "transfers"),
                                              _as_strings(flag.get("transfers", [])))):
            value = check.choice((*where, "transfers", i), raw, "转接号码",
                                 [t.value for t in Transfer])
            if value is not None:
                transfers.append(Transfer(value))
        if "transfers" in flag and flag["transfers"] in ([], None):
            check.wrong((*where, "transfers"), flag["transfers"], "至少需要一个转接号码 (110/120)")
        phrases = check.strings((*where, "phrases"), flag.get("phrases", []))
        own = check.strings((*where, "exclude"), flag.get("exclude", []))
        pairs = _pairs(check, (*where, "pairs"), flag.get("pairs", []))
        rules.append(UrgencyRule(UrgencyKind(name), tuple(transfers), tuple(phrases), tuple(own),
                                 tuple(pairs)))
    return UrgencyDetector(rules, exclude=exclude, negation=negation)


def _pairs(check: Checker, path: Path_, data: Any) -> list[Pair]:
    if not isinstance(data, list):
        check.wrong(path, data, "应为列表, 每项含 first、then 和可选的 within")
        return []
    pairs: list[Pair] = []
    for i, item in enumerate(data):
        table = check.mapping((*path, i), item, required=("first", "then"), allowed=PAIR_KEYS)
        if table is None:
            continue
        first = check.strings((*path, i, "first"), table.get("first", []))
        then = check.strings((*path, i, "then"), table.get("then", []))
        within = table.get("within", 4)
        if not isinstance(within, int) or isinstance(within, bool) or not 0 <= within <= 20:
            check.wrong((*path, i, "within"), within, "应为 0 到 20 的整数 (中间最多隔几个字)")
            within = 4
        if first and then:
            pairs.append(Pair(tuple(first), tuple(then), within))
    return pairs


def _as_strings(value: Any) -> Any:
    """Transfers may be written 110 or "110"; YAML reads the first as a number."""
    if isinstance(value, list):
        return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
    return value
