"""Fixtures shared across test folders.

Ledger fixtures: every test taking ``db_url`` runs on each available backend: SQLite always;
PostgreSQL when HOTLINE_TEST_PG_URL names a server we may create databases on (e.g.
postgresql://postgres@127.0.0.1:5432/test). Each PostgreSQL test gets a fresh, uniquely named
database that is dropped afterwards, so parallel runs never collide.
"""

import os
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from hotline.callcenter import CallCenter
from hotline.config import load_settings
from hotline.ivr.registry import FlowRegistry
from hotline.ivr.tts import PromptAudio
from hotline.ledger import Ledger
from hotline.store import users as store_users
from hotline.store.engine import make_engine, make_session_factory, normalise_url
from hotline.store.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]


def free_block(size: int) -> int:
    """A base port with ``size`` consecutive free UDP and TCP ports on loopback."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + size > 65000:
            continue
        held = []
        try:
            for port in range(base, base + size):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    held.append(s)
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
        return base
    raise RuntimeError("no free port block on loopback")


@pytest.fixture
def port_block():
    """``port_block(n)`` → the first of n free consecutive ports."""
    return free_block


@pytest.fixture
def make_center(tmp_path):
    """``make_center(**env)`` → (CallCenter, sent commands, session factory, ledger).

    The coordinator with a scripted worker: real ledger (SQLite), real flows and prompt
    audio; what it sends to workers is appended to ``sent`` as (worker, message).
    """
    made = []

    def make(**env):
        url = f"sqlite:///{tmp_path / 'h.db'}"
        settings = load_settings(environ={
            "HOTLINE_DATABASE_URL": url, "HOTLINE_PATHS_FLOWS": str(ROOT / "ivr_flows"),
            "HOTLINE_PATHS_VAR": str(tmp_path / "var"),
            "HOTLINE_PATHS_RECORDINGS": str(tmp_path / "rec"),
            "HOTLINE_TELEPHONY_QUEUE_WAIT": "5", **env})
        upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        ledger = Ledger(factory)
        sent = []
        # Office hours (a Tuesday morning in Shanghai), advancing with real time for timers.
        base = datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
        t0 = time.monotonic()
        cc = CallCenter(settings, FlowRegistry(settings),
                        PromptAudio(tmp_path / "var" / "prompts"), ledger,
                        lambda worker, msg: sent.append((worker, msg)) or True,
                        now=lambda: base + timedelta(seconds=time.monotonic() - t0))
        made.append((ledger, engine))
        return cc, sent, factory, ledger

    yield make
    for ledger, engine in made:
        ledger.close()
        engine.dispose()


# --- ledger backends ------------------------------------------------------------

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


# A real `hotline serve` node (tests/node_fixture.py), for the telephony and speech tests.
pytest_plugins = ["node_fixture"]
