from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hotline.config import QueueSettings, Settings
from hotline.domain import Language, QueueStrategy, Role
from hotline.store.queues import active_queue_codes, sync_queues
from hotline.store.seed import SAMPLE_USERS, seed_sample_users
from hotline.store.session import session_scope
from hotline.store.tables import Queue, Skill
from hotline.store.users import add_user, list_users, verify_password


def test_seed_creates_sample_users(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as s:
        created = seed_sample_users(s)
    assert len(created) == len(SAMPLE_USERS) == 11
    assert len(set(created.values())) == 11  # every password differs
    with session_scope(factory) as s:
        users = list_users(s)
        for work_id, password in created.items():
            assert verify_password(s, work_id, password).work_id == work_id
    roles = Counter(u.role for u in users)
    assert roles == {Role.LAWYER: 8, Role.SUPERVISOR: 1, Role.SCHEDULER: 1, Role.ADMIN: 1}
    lawyers = [u for u in users if u.role is Role.LAWYER]
    assert all(Language.MANDARIN in u.languages for u in lawyers)
    assert any(Language.HUBEI in u.languages for u in lawyers)
    assert any(Language.CANTONESE in u.languages for u in lawyers)
    skills = {code for u in lawyers for code, _ in u.skills}
    assert skills == {"labor", "marriage_family", "contract", "legal_aid", "mediation", "sme",
                      "general"}
    assert all(u.firm for u in lawyers)
    assert all(1 <= level <= 5 for u in lawyers for _, level in u.skills)


def test_seed_is_idempotent_and_leaves_existing_users_alone(
        factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as s:
        add_user(s, "L1001", name="本地律师", role=Role.LAWYER, password="my own password")
    with session_scope(factory) as s:
        first = seed_sample_users(s)
    with session_scope(factory) as s:
        second = seed_sample_users(s)
        users = {u.work_id: u for u in list_users(s)}
        assert verify_password(s, "L1001", "my own password").name == "本地律师"
    assert "L1001" not in first
    assert len(first) == 10
    assert second == {}
    assert len(users) == 11
    assert users["L1001"].name == "本地律师"


def test_sync_queues_mirrors_the_configuration(factory: sessionmaker[Session]) -> None:
    queues = dict(Settings().queues)
    with session_scope(factory) as s:
        assert sync_queues(s, queues) == 8
    with session_scope(factory) as s:
        assert active_queue_codes(s) == sorted(queues)
        dialect = s.get(Queue, "dialect")
        assert dialect is not None
        assert dialect.name == "方言坐席"
        assert dialect.languages == ["hubei", "southwestern"]
        assert dialect.overflow_code == "general"
        assert dialect.strategy is QueueStrategy.LONGEST_IDLE_AGENT
        assert set(s.scalars(select(Skill.code))) == {
            "general", "labor", "marriage_family", "contract", "legal_aid", "mediation", "sme"}
    queues.pop("sme")
    queues["labor"] = QueueSettings(name="劳动争议 (欠薪优先)", skills=("labor",),
                                    strategy=QueueStrategy.ROUND_ROBIN, max_wait=120)
    with session_scope(factory) as s:
        assert sync_queues(s, queues) == 7
    with session_scope(factory) as s:
        assert "sme" not in active_queue_codes(s)
        sme = s.get(Queue, "sme")
        labor = s.get(Queue, "labor")
        assert sme is not None and sme.active is False  # kept for old calls' reports
        assert labor is not None
        assert (labor.name, labor.strategy, labor.max_wait) == (
            "劳动争议 (欠薪优先)", QueueStrategy.ROUND_ROBIN, 120)
