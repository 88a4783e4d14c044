"""Schema migrations, driven from code: the package carries its Alembic scripts.

There is no ``alembic.ini``: the installed package must be able to upgrade its own database
wherever it runs, so the configuration is built here and the database URL travels in
``Config.attributes`` (never written to a file, since it may hold a password).
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine

from hotline.errors import StoreError
from hotline.store.engine import BEGIN_IMMEDIATE, make_engine, translate_errors

SCRIPT_LOCATION = "hotline.store:migrations"
# Shown when a database has no revision at all (never upgraded).
NO_REVISION = "无"
# pg_advisory_xact_lock key for migrations: the hotline's number, unlikely to clash.
MIGRATION_LOCK = 12348


def make_config(*, url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged scripts; give a URL or an open connection."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["url"] = url
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this version of the code knows."""
    head = ScriptDirectory.from_config(make_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise StoreError("store.error", detail="no migration scripts found")
    return head


def _revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _check_known(current: str | None, head: str) -> None:
    if current is None:
        return
    try:
        known = ScriptDirectory.from_config(make_config()).get_revision(current)
    except CommandError:
        known = None
    if known is None:
        raise StoreError("store.too_new", current=current, head=head)


def upgrade(url: str, revision: str = "head") -> str:
    """Bring the database at ``url`` up to ``revision``, atomically; return the new revision.

    Concurrent upgraders are serialised (a PostgreSQL advisory lock, SQLite's write lock
    taken at BEGIN): nodes started together wait for the first, then find nothing to do.

    Raises:
        StoreError: ``store.too_new`` when the database was upgraded by a newer release;
            ``store.unreachable`` or a translated driver error otherwise.
    """
    engine = make_engine(url)
    try:
        with translate_errors(url), engine.connect() as connection:
            connection.execution_options(**{BEGIN_IMMEDIATE: True})
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql(
                        f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                _check_known(_revision_of(connection), head_revision())
                command.upgrade(make_config(connection=connection), revision)
                revision_now = _revision_of(connection)
            return revision_now or NO_REVISION
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None when it was never upgraded."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return _revision_of(connection)
    finally:
        engine.dispose()


def ensure_current(engine: Engine) -> str:
    """Refuse to work on a database whose schema differs from the code's.

    Running on an old schema would fail later with obscure SQL errors, or silently drop
    data the new code expects to keep; one clear message naming the fix is better.

    Raises:
        StoreError: ``store.outdated`` with the current and the head revision, or
            ``store.too_new`` when a newer release has already upgraded the database.
    """
    head = head_revision()
    with engine.connect() as connection:
        current = _revision_of(connection)
    _check_known(current, head)
    if current != head:
        raise StoreError("store.outdated", current=current or NO_REVISION, head=head)
    return head
