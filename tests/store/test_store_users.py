from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hotline.domain import Language, Role
from hotline.errors import AuthError, ConflictError, DomainError, NotFoundError
from hotline.store import users as store_users
from hotline.store.session import session_scope
from hotline.store.tables import Firm, Skill, User
from hotline.store.users import (
    UserView,
    add_user,
    get_user,
    list_users,
    set_active,
    set_password,
    verify_password,
)

PASSWORD = "correct horse battery"


def _add(s: Session, work_id: str = "L1001", role: Role = Role.LAWYER, *,
         name: str = "张明华", password: str = PASSWORD, **kw: Any) -> UserView:
    return add_user(s, work_id, name=name, role=role, password=password, **kw)


def test_add_and_get_user(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as s:
        view = _add(s, firm="楚天律师事务所", skills=[("labor", 5), ("general", 3)],
                    languages=[Language.MANDARIN, Language.HUBEI], remote_phone="13800138001",
                    sip_uri="sip:1001@10.0.0.5", max_shifts_per_month=8)
    assert view.work_id == "L1001"
    assert view.name == "张明华"
    assert view.role is Role.LAWYER
    assert view.active is True
    assert view.firm == "楚天律师事务所"
    assert view.skills == (("general", 3), ("labor", 5))
    assert view.languages == (Language.MANDARIN, Language.HUBEI)
    assert view.proficiency("labor") == 5
    assert view.proficiency("contract") == 0
    assert view.max_shifts_per_month == 8
    assert view.created_at is not None and view.created_at.tzinfo is UTC
    with session_scope(factory) as s:
        again = get_user(s, "L1001")
        stored = s.scalars(select(User)).one()
        skills = {code: name for code, name in s.execute(select(Skill.code, Skill.name))}
        firms = s.scalars(select(Firm.name)).all()
        assert stored.password_hash.startswith("$argon2id$")
        assert PASSWORD not in stored.password_hash
    assert again == view
    assert skills == {"general": "综合咨询", "labor": "劳动争议"}
    assert firms == ["楚天律师事务所"]
    assert not hasattr(view, "password_hash")


def test_second_user_of_a_firm_reuses_it(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as s:
        _add(s, "L1", firm="江汉律师事务所", skills=[("labor", 2)])
        _add(s, "L2", firm="江汉律师事务所", skills=[("labor", 4)])
    with session_scope(factory) as s:
        assert s.scalars(select(Firm.name)).all() == ["江汉律师事务所"]
        assert [u.firm for u in list_users(s)] == ["江汉律师事务所", "江汉律师事务所"]


def test_duplicate_work_id_is_a_conflict(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as s:
        _add(s, "L1001")
    with pytest.raises(ConflictError) as info, session_scope(factory) as s:
        _add(s, "L1001", name="另一个人")
    assert info.value.code == "store.conflict"
    assert dict(info.value.params) == {"what": "工号", "key": "L1001"}
    assert str(info.value) == "工号 L1001 已存在"
    with session_scope(factory) as s:
        assert [u.name for u in list_users(s)] == ["张明华"]


@pytest.mark.parametrize(("password", "reason"), [
    ("short", "至少 8 个字符"),
    ("1234567", "至少 8 个字符"),
    (" padded password ", "首尾不能有空白字符"),
    ("LAWYER-0001", "不能与工号相同"),
    ("x" * 257, "最多 256 个字符"),
])
def test_password_policy(factory: sessionmaker[Session], password: str, reason: str) -> None:
    with pytest.raises(AuthError) as info, session_scope(factory) as s:
        _add(s, "lawyer-0001", password=password)
    assert info.value.code == "auth.bad_password"
    assert info.value.params["reason"] == reason
    assert str(info.value) == f"密码不符合要求: {reason}"
    with session_scope(factory) as s:
        assert list_users(s) == []


def test_eight_characters_is_enough(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as s:
        _add(s, password="12345678")
    with session_scope(factory) as s:
        assert verify_password(s, "L1001", "12345678").work_id == "L1001"


@pytest.mark.parametrize("skill", [("labor", 6), ("labor", 0), ("", 3)])
def test_bad_skill_is_refused(factory: sessionmaker[Session], skill: tuple[str, int]) -> None:
    with pytest.raises(AuthError) as info, session_scope(factory) as s:
        _add(s, skills=[skill])
    assert info.value.code == "auth.bad_skill"


@pytest.mark.parametrize("work_id", ["", "L 1", "x" * 33])
def test_bad_work_id_is_refused(factory: sessionmaker[Session], work_id: str) -> None:
    with pytest.raises(DomainError) as info, session_scope(factory) as s:
        _add(s, work_id)
    assert info.value.code == "domain.bad_value"
    assert info.value.params["field"] == "工号"


def test_list_users_by_role_in_work_id_order(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as s:
        _add(s, "L2", name="乙")
        _add(s, "S1", Role.SUPERVISOR, name="丙")
        _add(s, "L1", name="甲")
        _add(s, "A1", Role.ADMIN, name="丁")
    with session_scope(factory) as s:
        assert [u.work_id for u in list_users(s)] == ["A1", "L1", "L2", "S1"]
        assert [u.name for u in list_users(s, Role.LAWYER)] == ["甲", "乙"]
        assert [u.work_id for u in list_users(s, Role.SCHEDULER)] == []
        set_active(s, "L1", False)
        assert [u.work_id for u in list_users(s, Role.LAWYER, include_inactive=False)] == ["L2"]


def test_verify_password(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as s:
        _add(s, "L1001")
    with session_scope(factory) as s:
        assert verify_password(s, "L1001", PASSWORD).name == "张明华"
        with pytest.raises(AuthError) as wrong:
            verify_password(s, "L1001", PASSWORD + "!")
        with pytest.raises(AuthError) as unknown:
            verify_password(s, "NOBODY", PASSWORD)
    assert wrong.value.code == unknown.value.code == "auth.bad_credentials"
    assert str(wrong.value) == str(unknown.value) == "工号或密码错误"


def test_get_unknown_user(factory: sessionmaker[Session]) -> None:
    with pytest.raises(NotFoundError) as info, session_scope(factory) as s:
        get_user(s, "L404")
    assert str(info.value) == "找不到工号 L404"


def test_set_password_replaces_the_old_one(factory: sessionmaker[Session]) -> None:
    before = datetime.now(UTC)
    with session_scope(factory) as s:
        _add(s)
        set_password(s, "L1001", "a new long password")
    with session_scope(factory) as s:
        assert verify_password(s, "L1001", "a new long password").work_id == "L1001"
        with pytest.raises(AuthError):
            verify_password(s, "L1001", PASSWORD)
        changed = s.scalar(select(User.password_changed_at))
        assert changed is not None and changed >= before
        with pytest.raises(AuthError) as info:
            set_password(s, "L1001", "short")
        assert info.value.code == "auth.bad_password"
        with pytest.raises(NotFoundError):
            set_password(s, "L404", "long enough pw")


def test_disabled_user_cannot_log_in(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as s:
        _add(s)
        assert set_active(s, "L1001", False).active is False
    with session_scope(factory) as s:
        with pytest.raises(AuthError) as info:
            verify_password(s, "L1001", PASSWORD)
        assert info.value.code == "auth.disabled"
        assert str(info.value) == "账号 L1001 已停用"
        with pytest.raises(AuthError) as wrong:
            verify_password(s, "L1001", "wrong password")
        assert wrong.value.code == "auth.bad_credentials"  # no hint without the password
        assert set_active(s, "L1001", True).active is True
        assert verify_password(s, "L1001", PASSWORD).active is True


def test_login_rehashes_when_parameters_were_raised(
        factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    with session_scope(factory) as s:
        _add(s)
        old_hash = s.scalar(select(User.password_hash))
    assert old_hash is not None and "t=1," in old_hash
    stronger = PasswordHasher(time_cost=2, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(store_users, "_hasher", stronger)
    with session_scope(factory) as s:
        verify_password(s, "L1001", PASSWORD)
    with session_scope(factory) as s:
        new_hash = s.scalar(select(User.password_hash))
        assert new_hash is not None and "t=2," in new_hash
        assert verify_password(s, "L1001", PASSWORD).work_id == "L1001"
