"""Suggest a consultation category (and subcategory) from what the caller said.

The wrap-up form asks the lawyer for a category; a good first guess saves clicks on every call
and makes the ledger's statistics less dependent on who was on duty. Rules are weighted phrases
per category code and desk subcategory (``rules.yaml``, section ``classify``), so supervisors
can tune them without a model to retrain. A category's score is the sum of the weights of the
distinct phrases found (a longer phrase hides the shorter ones inside it); below the threshold
we suggest nothing rather than something wrong. Every suggestion carries its evidence, so the
console can show why.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hotline.domain import Category
from hotline.ivr.loader import Path_
from hotline.speech.text.phrases import (
    Evidence,
    Negation,
    drop_covered,
    find,
    parse_negation,
)
from hotline.speech.text.yamlcheck import Checker

CLASSIFY_KEYS = ("threshold", "max_suggestions", "negation", "categories")


@dataclass(frozen=True)
class CategoryRule:
    """The phrases of one category: general ones and those that also name a subcategory."""

    category: Category
    phrases: tuple[tuple[str, float], ...] = ()
    subcategories: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()

    def weighted(self) -> dict[str, tuple[str | None, float]]:
        """``{phrase: (subcategory or None, weight)}``."""
        out: dict[str, tuple[str | None, float]] = {p: (None, w) for p, w in self.phrases}
        for sub, phrases in self.subcategories:
            out.update({p: (sub, w) for p, w in phrases})
        return out


@dataclass(frozen=True)
class Suggestion:
    """A suggested category, its best subcategory, the score and the phrases behind it."""

    category: Category
    subcategory: str | None
    score: float
    evidence: tuple[Evidence, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form with the Chinese label for the console."""
        return {"category": self.category.value, "label": self.category.label,
                "subcategory": self.subcategory, "score": self.score,
                "evidence": [e.to_dict() for e in self.evidence]}


class Classifier:
    """Scores texts against the category rules."""

    def __init__(self, rules: Sequence[CategoryRule], *, threshold: float = 2.0,
                 max_suggestions: int = 3, negation: Negation | None = None) -> None:
        """Index the rules; ``threshold`` is the least score worth suggesting."""
        self.rules = tuple(rules)
        self.threshold = threshold
        self.max_suggestions = max_suggestions
        self.negation = negation or Negation()
        self._tables = {rule.category: rule.weighted() for rule in self.rules}
        self._phrases = sorted({p for table in self._tables.values() for p in table})

    def classify(self, text: str) -> tuple[Suggestion, ...]:
        """Ranked suggestions for one text, best first; empty when nothing is convincing."""
        return self.classify_parts([(text, 1.0)])

    def classify_parts(self, parts: Sequence[tuple[str, float]]) -> tuple[Suggestion, ...]:
        """Suggestions for several texts, each with a factor (the lawyer's words count less).

        A phrase counts once per category, with its best factor among the parts: a lawyer who
        repeats the caller's 欠薪 confirms it but does not double it.
        """
        best: dict[Category, dict[str, Evidence]] = {c: {} for c in self._tables}
        for n, (text, factor) in enumerate(parts):
            hits = [h for h in find(text, self._phrases)
                    if not self.negation.negates(text, h.start)]
            for category, table in self._tables.items():
                mine = drop_covered([h for h in hits if h.phrase in table])
                for hit in mine:
                    weight = round(table[hit.phrase][1] * factor, 3)
                    seen = best[category].get(hit.phrase)
                    if seen is None or weight > seen.weight:
                        best[category][hit.phrase] = Evidence(hit.phrase, hit.start, hit.end,
                                                              weight, n)
        out = [self._suggestion(c, found) for c, found in best.items() if found]
        out = [s for s in out if s.score >= self.threshold]
        order = {rule.category: i for i, rule in enumerate(self.rules)}
        out.sort(key=lambda s: (-s.score, order[s.category]))
        return tuple(out[: self.max_suggestions])

    def _suggestion(self, category: Category, found: dict[str, Evidence]) -> Suggestion:
        table = self._tables[category]
        subs: dict[str, float] = {}
        for phrase, hit in found.items():
            sub = table[phrase][0]
            if sub is not None:
                subs[sub] = subs.get(sub, 0.0) + hit.weight
        # Ties go to the subcategory listed first in the rules.
        names = [name for name, _ in next(r for r in self.rules if r.category is category)
                 .subcategories]
        ranked = sorted((s for s in subs if subs[s] > 0), key=lambda s: (-subs[s],
                                                                         names.index(s)))
        evidence = tuple(sorted(found.values(), key=lambda e: (e.part, e.start)))
        return Suggestion(category, ranked[0] if ranked else None,
                          round(sum(e.weight for e in evidence), 2), evidence)


def parse_classifier(check: Checker, path: Path_, data: Any,
                     subcategories: Mapping[str, Collection[str]] | None = None) -> Classifier:
    """Read the ``classify`` section; ``subcategories`` (from the desk catalogue) limits names."""
    table = check.mapping(path, data, required=("threshold", "categories"),
                          allowed=CLASSIFY_KEYS) or {}
    threshold = check.number((*path, "threshold"), table.get("threshold", 2.0), low=0.1,
                             high=100) or 2.0
    most = table.get("max_suggestions", 3)
    if not isinstance(most, int) or isinstance(most, bool) or not 1 <= most <= 10:
        check.wrong((*path, "max_suggestions"), most, "应为 1 到 10 的整数")
        most = 3
    negation = parse_negation(check, (*path, "negation"), table.get("negation", {"words": []}))
    raw = check.mapping((*path, "categories"), table.get("categories", {})) or {}
    codes = [c.value for c in Category]
    rules: list[CategoryRule] = []
    for code, body in raw.items():
        where = (*path, "categories", code)
        if check.choice(where, code, "类别代码", codes, at_key=True) is None:
            continue
        allowed = None if subcategories is None else subcategories.get(code, ())
        rule = _category(check, where, Category(code), body, allowed)
        if rule is not None:
            rules.append(rule)
    return Classifier(rules, threshold=threshold, max_suggestions=most, negation=negation)


def _category(check: Checker, path: Path_, category: Category, body: Any,
              allowed: Collection[str] | None) -> CategoryRule | None:
    table = check.mapping(path, body, allowed=("phrases", "subcategories"))
    if table is None:
        return None
    if "phrases" not in table and "subcategories" not in table:
        check.add(path, "flow.missing_key", key="phrases")
    phrases = check.weights((*path, "phrases"), table.get("phrases", {}))
    seen = set(phrases)
    subs: list[tuple[str, tuple[tuple[str, float], ...]]] = []
    for name, sub_body in (check.mapping((*path, "subcategories"),
                                         table.get("subcategories", {})) or {}).items():
        where = (*path, "subcategories", name)
        if allowed is not None and name not in allowed:
            check.add(where, "flow.bad_field_value", at_key=True, field="子类",
                      value=name, allowed=", ".join(allowed) or "(该类别没有子类)")
            continue
        sub_phrases = check.weights(where, sub_body)
        for phrase in sub_phrases:
            if phrase in seen:
                check.wrong((*where, phrase), phrase, f"短语在类别 {category.value} 中重复")
        seen |= set(sub_phrases)
        subs.append((name, tuple(sub_phrases.items())))
    return CategoryRule(category, tuple(phrases.items()), tuple(subs))
