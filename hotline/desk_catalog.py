"""The lawyers' desk catalogue: category tree, referral targets, 服务用语 and 禁语.

Loaded from ``paths.desk`` (default ``desk.yaml`` next to the configuration) or, when that
file does not exist, from the built-in ``hotline/desk.yaml``. The consoles read it from
``GET /api/v1/desk/catalog``. A bad file is a :class:`~hotline.errors.ConfigError` naming
the file and the property.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hotline.domain import Category
from hotline.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategoryItem(_Strict):
    """One category (a code of the domain taxonomy) and its subcategories."""

    code: Category
    subcategories: tuple[str, ...] = ()


class CategoryGroup(_Strict):
    """A heading of the tree (民事, 刑事与行政...)."""

    group: str = Field(min_length=1, max_length=40)
    items: tuple[CategoryItem, ...] = Field(min_length=1)


class Phrase(_Strict):
    """A standard phrase (服务用语) to read out."""

    title: str = Field(min_length=1, max_length=40)
    text: str = Field(min_length=1, max_length=500)


class DeskCatalog(_Strict):
    """Everything the wrap-up form and the phrases panel offer."""

    categories: tuple[CategoryGroup, ...] = Field(min_length=1)
    referrals: tuple[str, ...] = ()
    phrases: tuple[Phrase, ...] = ()
    banned: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The catalogue with Chinese labels, for ``/api/v1/desk/catalog``."""
        return {
            "categories": [{"group": g.group, "items": [
                {"code": i.code.value, "label": i.code.label,
                 "subcategories": list(i.subcategories)} for i in g.items]}
                for g in self.categories],
            "referrals": list(self.referrals),
            "phrases": [p.model_dump() for p in self.phrases],
            "banned": list(self.banned),
        }


def load_catalog(path: Path) -> DeskCatalog:
    """Read ``path`` (or the built-in catalogue when it does not exist)."""
    if path.exists():
        text, name = path.read_text(encoding="utf-8"), str(path)
    else:
        text = resources.files("hotline").joinpath("desk.yaml").read_text(encoding="utf-8")
        name = "hotline/desk.yaml"
    return _parse(text, name)


@cache
def _parse(text: str, name: str) -> DeskCatalog:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("desk.syntax", path=name,
                          detail=str(exc).replace("\n", " ")) from None
    try:
        return DeskCatalog.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError("desk.invalid", path=name, where=where, detail=err["msg"]) from None
