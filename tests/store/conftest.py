"""Fixtures for ledger tests: every test taking ``db_url`` runs on each available backend.

SQLite always; PostgreSQL when HOTLINE_TEST_PG_URL names a server we may create databases
on (e.g. postgresql://postgres@127.0.0.1:5432/test). Each PostgreSQL test gets a fresh,
uniquely named database that is dropped afterwards, so parallel runs never collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from hotline.store import users as store_users
from hotline.store.engine import make_engine, make_session_factory, normalise_url
from hotline.store.migrate import upgrade

PG_ENV = "HOTLINE_TEST_PG_URL"


def available_backends() -> list[str]:
    return ["sqlite", "pg"] if os.environ.get(PG_ENV) else ["sqlite"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Parametrize only with the backends we can reach: an unreachable backend is not a
    # skipped test but one that does not exist in this run.
    if "db_url" in metafunc.fixturenames:
        params = [pytest.param(b, id=b, marks=[pytest.mark.pg] if b == "pg" else [])
                  for b in available_backends()]
        metafunc.parametrize("db_url", params, indirect=True)


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> PasswordHasher:
    """Argon2 with tiny parameters: the production cost would make the suite crawl."""
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(store_users, "_hasher", hasher)
    return hasher


def _pg_admin() -> tuple[Engine, URL]:
    base = make_url(normalise_url(os.environ[PG_ENV]))
    return create_engine(base, isolation_level="AUTOCOMMIT"), base


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database (never upgraded)."""
    if request.param == "sqlite":
        # A folder that does not exist yet: make_engine must create it.
        yield f"sqlite:///{tmp_path / 'var' / 'ledger.db'}"
        return
    name = f"hotline_test_{uuid.uuid4().hex[:16]}"
    admin, base = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture
def upgraded_url(db_url: str) -> str:
    """A URL to a database upgraded to head."""
    upgrade(db_url)
    return db_url


@pytest.fixture
def factory(upgraded_url: str) -> Iterator[sessionmaker[Session]]:
    """A session factory on an upgraded database; the engine is disposed afterwards."""
    engine = make_engine(upgraded_url)
    yield make_session_factory(engine)
    engine.dispose()
