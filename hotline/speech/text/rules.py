"""Load ``rules.yaml``: category phrases, urgency phrases and the party words of draft tickets.

One file, so a supervisor tuning the hotline's vocabulary edits one place; its sections are
read by the modules that own them (:mod:`classify`, :mod:`urgency`). Subcategory names are
checked against the desk catalogue, because a suggestion the wrap-up form cannot show is
useless. Every problem in the file is reported at once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from hotline.desk_catalog import DeskCatalog
from hotline.ivr.loader import Document
from hotline.speech.text.classify import Classifier, parse_classifier
from hotline.speech.text.urgency import UrgencyDetector, parse_urgency
from hotline.speech.text.yamlcheck import Checker, load_document

DEFAULT_FILE = Path(__file__).with_name("rules.yaml")
TOP_KEYS = ("classify", "urgency", "parties")


@dataclass(frozen=True)
class Rules:
    """Everything ``rules.yaml`` configures."""

    classifier: Classifier
    urgency: UrgencyDetector
    parties: tuple[str, ...]


def load_rules(path: Path | None = None,
               subcategories: Mapping[str, Collection[str]] | None = None) -> Rules:
    """Load and validate ``path`` (the packaged ``rules.yaml`` when ``None``).

    Args:
        path: the rules file.
        subcategories: allowed subcategory names per category code; ``None`` uses the
            built-in desk catalogue (``hotline/desk.yaml``).
    """
    if subcategories is None:
        subcategories = builtin_subcategories()
    return parse_rules(load_document(path or DEFAULT_FILE), subcategories)


def parse_rules(doc: Document, subcategories: Mapping[str, Collection[str]] | None) -> Rules:
    """Validate a rules document; raise one error listing every problem."""
    check = Checker(doc)
    top = check.mapping((), doc.data, required=("classify", "urgency"), allowed=TOP_KEYS) or {}
    classifier = parse_classifier(check, ("classify",), top.get("classify", {}), subcategories)
    urgency = parse_urgency(check, ("urgency",), top.get("urgency", {}))
    parties = check.strings(("parties",), top.get("parties", []))
    check.raise_if_any()
    return Rules(classifier, urgency, tuple(parties))


def builtin_subcategories() -> dict[str, tuple[str, ...]]:
    """Subcategories per category code in the built-in desk catalogue."""
    text = resources.files("hotline").joinpath("desk.yaml").read_text(encoding="utf-8")
    catalog = DeskCatalog.model_validate(yaml.safe_load(text))
    return subcategories_of(catalog)


def subcategories_of(catalog: DeskCatalog) -> dict[str, tuple[str, ...]]:
    """Subcategories per category code of a desk catalogue (a configured ``desk.yaml``)."""
    return {item.code.value: tuple(item.subcategories)
            for group in catalog.categories for item in group.items}
