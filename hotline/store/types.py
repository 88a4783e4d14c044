"""Column types that behave the same on SQLite and PostgreSQL.

The ledger runs on SQLite for a single node and on PostgreSQL in production; a value written on
one must read back identically on the other, or reports and tests would differ by backend.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, String
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

E = TypeVar("E", bound=StrEnum)

# Stored enum codes are short English words; 32 leaves room for new members without a migration.
ENUM_LENGTH = 32

# High-volume append-only tables need 64-bit keys on PostgreSQL, while SQLite only
# autoincrements a column declared exactly INTEGER PRIMARY KEY.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware timestamp that always reads back as aware UTC.

    SQLite has no time zone type and returns naive values; normalising to UTC on the way in
    and tagging UTC on the way out makes both backends agree, and keeps SQLite's text
    ordering equal to time ordering. Naive values are refused: a naive time in a ledger
    is a bug waiting for the next daylight-saving or server-zone change.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC; refuse naive datetimes."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} given to the ledger; use an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return aware UTC whatever the backend handed back."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class EnumText(TypeDecorator[E], Generic[E]):
    """A domain StrEnum stored as its plain string value.

    No database enum type and no CHECK: adding a member to :mod:`hotline.domain` must not
    need a migration, and the value stored is the stable code the API and YAML flows use.
    """

    impl = String(ENUM_LENGTH)
    cache_ok = True

    def __init__(self, enum: type[E], length: int = ENUM_LENGTH) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        """Accept members or their values; reject anything else before it is stored."""
        if value is None:
            return None
        return self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        """Turn the stored code back into the enum member."""
        return None if value is None else self.enum(value)


class JSONValue(TypeDecorator[Any]):
    """JSON on SQLite, JSONB on PostgreSQL (indexable, comparable); SQL NULL for None."""

    impl = JSON(none_as_null=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Pick the backend's best JSON type."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB(none_as_null=True))
        return dialect.type_descriptor(JSON(none_as_null=True))
