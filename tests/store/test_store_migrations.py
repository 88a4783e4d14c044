from __future__ import annotations

import importlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, inspect

from hotline.errors import StoreError
from hotline.store.engine import make_engine
from hotline.store.migrate import (
    current_revision,
    ensure_current,
    head_revision,
    make_config,
    upgrade,
)
from hotline.store.tables import APPEND_ONLY_TABLES, Base

HEAD = "0003"

EXPECTED_TABLES = {
    "firms", "users", "user_skills", "user_languages", "skills", "api_sessions", "queues",
    "queue_tiers", "calls", "call_events", "agent_events", "callback_requests",
    "known_callers", "recordings", "transcript_segments", "tickets", "ticket_counters",
    "ticket_history", "surveys", "follow_ups", "qa_reviews", "audit_log", "shift_templates",
    "shifts", "roster_assignments", "swap_requests", "unavailability", "apscheduler_jobs",
    "roster_plans", "handover_notes", "scheduler_lease",
}


def _diffs(url: str, metadata: MetaData) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True})
            return list(compare_metadata(ctx, metadata))
    finally:
        engine.dispose()


def test_head_is_the_roster_revision() -> None:
    assert head_revision() == HEAD


def test_fresh_database_has_no_revision(db_url: str) -> None:
    assert current_revision(db_url) is None


def test_upgrade_creates_every_table(db_url: str) -> None:
    assert upgrade(db_url) == HEAD
    assert current_revision(db_url) == HEAD
    engine = make_engine(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(Base.metadata.tables) == EXPECTED_TABLES
    assert tables == EXPECTED_TABLES | {"alembic_version"}


def test_upgrade_twice_is_harmless(db_url: str) -> None:
    assert upgrade(db_url) == HEAD
    assert upgrade(db_url) == HEAD


def test_migration_matches_models_exactly(upgraded_url: str) -> None:
    assert _diffs(upgraded_url, Base.metadata) == []


def test_comparison_would_notice_drift(upgraded_url: str) -> None:
    # Guard against a vacuous "no diffs": a model with an extra table and column must differ.
    drifted = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["users"].append_column(Column("shoe_size", Integer))
    Table("not_migrated", drifted, Column("id", Integer, primary_key=True))
    diffs = [str(d) for d in _diffs(upgraded_url, drifted)]
    assert len(diffs) == 2
    assert any("shoe_size" in d for d in diffs)
    assert any("not_migrated" in d for d in diffs)


def test_indexes_named_in_the_design_exist(upgraded_url: str) -> None:
    engine = make_engine(upgraded_url)
    try:
        insp = inspect(engine)
        indexed = {
            table: {tuple(ix["column_names"]) for ix in insp.get_indexes(table)}
            | {tuple(uq["column_names"]) for uq in insp.get_unique_constraints(table)}
            for table in ("calls", "tickets", "call_events")
        }
    finally:
        engine.dispose()
    assert ("started_at",) in indexed["calls"]
    assert ("caller_number",) in indexed["calls"]
    assert ("status",) in indexed["tickets"]
    assert ("due_at",) in indexed["tickets"]
    assert ("call_id", "seq") in indexed["call_events"]  # leads with call_id


def test_downgrade_to_base_and_back(upgraded_url: str) -> None:
    engine = make_engine(upgraded_url)
    try:
        with engine.begin() as conn:
            command.downgrade(make_config(connection=conn), "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()
    assert current_revision(upgraded_url) is None
    assert upgrade(upgraded_url) == HEAD
    assert _diffs(upgraded_url, Base.metadata) == []


def test_ensure_current_refuses_an_old_schema(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with pytest.raises(StoreError) as info:
            ensure_current(engine)
    finally:
        engine.dispose()
    assert info.value.code == "store.outdated"
    assert dict(info.value.params) == {"current": "无", "head": HEAD}
    assert str(info.value) == (
        f"数据库结构不是最新版本 (当前 无, 需要 {HEAD}); 请运行 hotline db upgrade")


def test_ensure_current_accepts_head(upgraded_url: str) -> None:
    engine = make_engine(upgraded_url)
    try:
        assert ensure_current(engine) == HEAD
    finally:
        engine.dispose()


def test_migration_guards_the_tables_the_models_call_append_only() -> None:
    initial = importlib.import_module("hotline.store.migrations.versions.0001_initial")
    assert initial.APPEND_ONLY_TABLES == APPEND_ONLY_TABLES
    assert set(APPEND_ONLY_TABLES) == {"call_events", "agent_events", "audit_log"}


def test_concurrent_upgrades_are_serialised(db_url: str) -> None:
    # Several nodes starting at once must not race each other into half-built schemas.
    # Processes, not threads: Alembic's op/context proxies are process-global.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=3, mp_context=spawn) as pool:
        results = list(pool.map(upgrade, [db_url] * 3))
    assert results == [HEAD, HEAD, HEAD]
    assert _diffs(db_url, Base.metadata) == []


def test_database_from_a_newer_release(upgraded_url: str) -> None:
    engine = make_engine(upgraded_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0999'")
        with pytest.raises(StoreError) as checked:
            ensure_current(engine)
    finally:
        engine.dispose()
    with pytest.raises(StoreError) as upgraded:
        upgrade(upgraded_url)
    assert checked.value.code == upgraded.value.code == "store.too_new"
    assert str(checked.value) == (
        f"数据库版本 0999 比本程序新 (本程序最新 {HEAD}); 请升级 hotline 后再运行")
    assert current_revision(upgraded_url) == "0999"  # left untouched
