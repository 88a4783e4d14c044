"""Engines and sessions for the ledger, with the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from hotline.errors import StoreError

# Applied to every SQLite connection: WAL lets the API read while the coordinator writes;
# SQLite ignores foreign keys unless asked; a writer waits up to 5 s instead of failing at
# once; NORMAL sync is durable in WAL mode except for the last commits on power loss.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    "PRAGMA synchronous=NORMAL",
)

_PG_ALIASES = ("postgresql://", "postgres://")
URL_HINT = "格式应为 sqlite:///路径 或 postgresql://用户:密码@主机:端口/库名"


def normalise_url(url: str) -> str:
    """Point bare PostgreSQL URLs at psycopg 3, the driver we ship (SQLAlchemy assumes psycopg2)."""
    for alias in _PG_ALIASES:
        if url.startswith(alias):
            return "postgresql+psycopg://" + url[len(alias):]
    return url


# user:password@ in a URL SQLAlchemy cannot parse; the password is the greedy part up to
# the last "@" so passwords containing "@" are hidden whole.
_USERINFO = re.compile(r"(://[^:/@]*:)[^/]*@")


def mask_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs (even when malformed)."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _USERINFO.sub(r"\1***@", url)


def _parse(url: str) -> URL:
    try:
        return make_url(normalise_url(url))
    except (ArgumentError, ValueError):
        raise StoreError("store.bad_url", url=mask_url(url), detail=URL_HINT) from None


def _sqlite_file(url: URL) -> Path | None:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module, whose legacy mode never
    # BEGINs before DDL or SAVEPOINT: migrations would not be atomic and nested
    # transactions would not roll back (see SQLAlchemy's "sqlite_transactions" notes).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


# Execution option asking SQLite to take the write lock at BEGIN (now what every transaction
# does, see _on_sqlite_begin; migrations still ask for it explicitly, so a
# second upgrader waits for the first instead of failing half-way).
BEGIN_IMMEDIATE = "hotline_begin_immediate"


def _on_sqlite_begin(connection: Connection) -> None:
    # Every transaction takes the write lock at BEGIN (waiting up to busy_timeout): a
    # deferred one that read first and writes later fails at once with "database is
    # locked" when another connection (the ledger writer) wrote in between, since SQLite
    # cannot let it wait without risking a deadlock. Readers still never block WAL readers
    # of other processes; the embedded default serialises its own few writers instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, echo: bool = False) -> Engine:
    """Create an engine and prove it can connect.

    Connecting once here turns a wrong host, a missing database or an unwritable SQLite
    folder into one clear :class:`StoreError` at start-up instead of a failure at the
    first call.

    Raises:
        StoreError: ``store.bad_url`` for a malformed URL or unknown driver;
            ``store.unreachable`` (password masked) when the database cannot be reached.
    """
    parsed = _parse(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError("store.unreachable", url=mask_url(parsed),
                                 detail=str(exc)) from None
    elif parsed.get_backend_name() == "postgresql":
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError):
        raise StoreError("store.bad_url", url=mask_url(parsed),
                         detail=f"不支持的数据库类型或驱动 {parsed.drivername}") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        engine.dispose()
        raise StoreError("store.unreachable", url=mask_url(parsed),
                         detail=_first_line(exc.orig)) from None
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (repositories copy them into views)."""
    return sessionmaker(engine, expire_on_commit=False)


def _first_line(exc: BaseException | None) -> str:
    text = str(exc) if exc is not None else ""
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Re-raise driver errors as StoreError (the original stays chained for crash logs)."""
    try:
        yield
    except IntegrityError as exc:
        raise StoreError("store.integrity", detail=_first_line(exc.orig)) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreError("store.unreachable", url=mask_url(url),
                             detail=_first_line(exc.orig)) from exc
        raise StoreError("store.error", detail=_first_line(exc.orig)) from exc
