from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from hotline.domain import AgentEventKind, CallEventKind, Language, Priority, Role
from hotline.errors import StoreError
from hotline.store.engine import make_engine, mask_url, normalise_url
from hotline.store.session import session_scope
from hotline.store.tables import (
    AgentEvent,
    AuditLog,
    Call,
    CallEvent,
    Skill,
    Survey,
    Ticket,
    User,
    UserSkill,
)

BEIJING = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 25, 9, 30, 15, 123456, tzinfo=BEIJING)


def _user(work_id: str = "L1") -> User:
    return User(work_id=work_id, name="张三", role=Role.LAWYER, password_hash="x")


def _call(sip_call_id: str = "abc@host", started_at: datetime = T0) -> Call:
    return Call(sip_call_id=sip_call_id, line_dialed="12348", caller_number="13812345678",
                started_at=started_at)


@pytest.mark.parametrize(("given", "expected"), [
    ("postgresql://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
    ("postgres://u@h/d", "postgresql+psycopg://u@h/d"),
    ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
    ("sqlite:///var/hotline.db", "sqlite:///var/hotline.db"),
])
def test_normalise_url(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


def test_mask_url_hides_the_password() -> None:
    assert mask_url("postgresql+psycopg://hotline:s3cret@db:5432/h") == (
        "postgresql+psycopg://hotline:***@db:5432/h")


def test_unreachable_database_is_a_store_error_without_password() -> None:
    with pytest.raises(StoreError) as info:
        make_engine("postgresql://hotline:s3cret@127.0.0.1:1/nowhere")
    assert info.value.code == "store.unreachable"
    assert info.value.params["url"] == "postgresql+psycopg://hotline:***@127.0.0.1:1/nowhere"
    message = str(info.value)
    assert message.startswith("无法连接数据库 postgresql+psycopg://hotline:***@127.0.0.1:1/")
    assert "s3cret" not in message
    assert info.value.params["detail"]


def test_malformed_url_is_a_store_error() -> None:
    with pytest.raises(StoreError) as info:
        make_engine("not a url")
    assert info.value.code == "store.bad_url"
    assert str(info.value) == (
        "数据库地址无效 not a url: 格式应为 sqlite:///路径 或 postgresql://用户:密码@主机:端口/库名")


def test_malformed_url_still_hides_the_password() -> None:
    with pytest.raises(StoreError) as info:
        make_engine("postgresql://hotline:p@ss@db:notaport/h")
    assert info.value.params["url"] == "postgresql://hotline:***@db:notaport/h"
    assert "p@ss" not in str(info.value)


def test_unknown_driver_is_a_store_error() -> None:
    with pytest.raises(StoreError) as info:
        make_engine("oracle+nosuchdriver://u@h/d")
    assert info.value.code == "store.bad_url"
    assert info.value.params["detail"] == "不支持的数据库类型或驱动 oracle+nosuchdriver"


def test_sqlite_creates_folder_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "ledger.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        engine.dispose()
    assert path.is_file()


def test_sqlite_savepoint_rolls_back_inside_outer_transaction(tmp_path: Path) -> None:
    # The BEGIN recipe makes SAVEPOINT real; legacy pysqlite would keep the inner insert.
    engine = make_engine(f"sqlite:///{tmp_path / 'sp.db'}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with engine.connect() as conn:
            with conn.begin():
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")
                nested = conn.begin_nested()
                conn.exec_driver_sql("INSERT INTO t VALUES (2)")
                nested.rollback()
            assert conn.exec_driver_sql("SELECT x FROM t").scalars().all() == [1]
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(factory: sessionmaker[Session]) -> None:
    with pytest.raises(StoreError) as info, session_scope(factory) as s:
        s.add(Skill(code="labor", name="劳动争议"))
        s.add(UserSkill(user_id=999, skill_code="labor", proficiency=3))
    assert info.value.code == "store.integrity"
    with session_scope(factory) as s:
        assert s.scalars(select(Skill)).all() == []  # rolled back as a whole


def test_proficiency_check_rejects_six(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as s:
        s.add(Skill(code="labor", name="劳动争议"))
        user = _user()
        s.add(user)
        s.flush()
        s.add(UserSkill(user_id=user.id, skill_code="labor", proficiency=5))
    with pytest.raises(IntegrityError), factory() as s, s.begin():
        uid = s.scalar(select(User.id))
        s.execute(update(UserSkill).where(UserSkill.user_id == uid).values(proficiency=6))
    with factory() as s:
        assert s.scalar(select(UserSkill.proficiency)) == 5


def test_satisfaction_check_rejects_zero(factory: sessionmaker[Session]) -> None:
    with pytest.raises(IntegrityError), factory() as s, s.begin():
        s.add(Ticket(ticket_no="12348-20261125-000001", satisfaction=0))
    with session_scope(factory) as s:
        s.add(Ticket(ticket_no="12348-20261125-000002", satisfaction=5))
        s.add(Ticket(ticket_no="12348-20261125-000003", satisfaction=None))
    with pytest.raises(IntegrityError), factory() as s, s.begin():
        s.add(Survey(score=6, at=T0))
    with factory() as s:
        assert s.scalars(select(Ticket.ticket_no).order_by(Ticket.ticket_no)).all() == [
            "12348-20261125-000002", "12348-20261125-000003"]


def _append_only_rows(s: Session) -> dict[str, object]:
    user = _user()
    call = _call()
    s.add_all([user, call])
    s.flush()
    event = CallEvent(call_id=call.id, seq=1, at=T0, kind=CallEventKind.OFFERED,
                      data={"from": "138"})
    agent = AgentEvent(user_id=user.id, at=T0, kind=AgentEventKind.LOGIN)
    audit = AuditLog(at=T0, action="login", actor_id=user.id, actor_role=Role.LAWYER)
    s.add_all([event, agent, audit])
    s.flush()
    return {"call_events": event, "agent_events": agent, "audit_log": audit}


@pytest.mark.parametrize("table", ["call_events", "agent_events", "audit_log"])
def test_append_only_tables_reject_update(factory: sessionmaker[Session], table: str) -> None:
    with session_scope(factory) as s:
        _append_only_rows(s)
    with pytest.raises(DBAPIError) as info, factory() as s, s.begin():
        s.execute(text(f"UPDATE {table} SET at = :at"), {"at": T0 + timedelta(hours=1)})
    assert f"{table} is append-only" in str(info.value)
    with factory() as s:
        model = {"call_events": CallEvent, "agent_events": AgentEvent, "audit_log": AuditLog}
        assert s.scalar(select(model[table].at)) == T0  # type: ignore[attr-defined]


def test_call_events_accept_appends(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as s:
        rows = _append_only_rows(s)
        call_id = rows["call_events"].call_id  # type: ignore[attr-defined]
        s.add(CallEvent(call_id=call_id, seq=2, at=T0 + timedelta(seconds=3),
                        kind=CallEventKind.ANSWERED))
    with factory() as s:
        kinds = s.scalars(select(CallEvent.kind).order_by(CallEvent.seq)).all()
        data = s.scalar(select(CallEvent.data).where(CallEvent.seq == 1))
    assert kinds == [CallEventKind.OFFERED, CallEventKind.ANSWERED]
    assert data == {"from": "138"}
    with pytest.raises(StoreError) as info, session_scope(factory) as s:
        s.add(CallEvent(call_id=call_id, seq=2, at=T0, kind=CallEventKind.ENDED))
    assert info.value.code == "store.integrity"  # unique (call_id, seq)


def test_timestamps_round_trip_as_aware_utc(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as s:
        call = _call()
        call.ivr_path = ["welcome", "menu:1"]
        call.language = Language.HUBEI
        call.priority = Priority.GREEN
        s.add(call)
    with factory() as s:
        loaded = s.scalars(select(Call)).one()
        assert loaded.started_at == T0
        assert loaded.started_at.utcoffset() == timedelta(0)
        assert loaded.started_at.tzinfo is UTC
        assert loaded.started_at == datetime(2026, 11, 25, 1, 30, 15, 123456, tzinfo=UTC)
        assert loaded.ended_at is None
        assert loaded.ivr_path == ["welcome", "menu:1"]
        assert loaded.language is Language.HUBEI
        assert loaded.priority is Priority.GREEN
        # Comparisons in SQL use the same instant whatever zone the bound value has.
        later = T0.astimezone(UTC) + timedelta(microseconds=1)
        assert s.scalar(select(Call.id).where(Call.started_at < later)) == loaded.id
        assert s.scalar(select(Call.id).where(Call.started_at > T0)) is None


def test_naive_timestamps_are_refused(factory: sessionmaker[Session]) -> None:
    with pytest.raises(StatementError) as info, factory() as s, s.begin():
        s.add(_call(started_at=datetime(2026, 11, 25, 9, 30)))
    assert "naive datetime" in str(info.value)
