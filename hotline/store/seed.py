"""Sample users for a demonstration or development hotline (``hotline db seed``).

The names, firms and numbers are invented. Every run gives new random passwords to the
accounts it creates and leaves existing work ids alone, so seeding twice is harmless and
never resets a password someone has since changed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.domain import Language, Role
from hotline.store.tables import User
from hotline.store.users import add_user

M, C, H, S = Language.MANDARIN, Language.CANTONESE, Language.HUBEI, Language.SOUTHWESTERN


@dataclass(frozen=True)
class SampleUser:
    """One sample account."""

    work_id: str
    name: str
    role: Role
    firm: str | None = None
    skills: tuple[tuple[str, int], ...] = ()
    languages: tuple[Language, ...] = (M,)
    remote_phone: str | None = None
    remote_night_allowed: bool = False


_CHUTIAN = "湖北楚天明理律师事务所"
_JIANGHAN = "江汉衡平律师事务所"
_LINGNAN = "岭南正信律师事务所"

SAMPLE_USERS: tuple[SampleUser, ...] = (
    SampleUser("L1001", "张明华", Role.LAWYER, _CHUTIAN,
               (("labor", 5), ("legal_aid", 4), ("general", 3)), (M, H),
               "13800138001", True),
    SampleUser("L1002", "李秀英", Role.LAWYER, _CHUTIAN,
               (("marriage_family", 5), ("mediation", 4), ("general", 3)), (M,),
               "13800138002"),
    SampleUser("L1003", "王建国", Role.LAWYER, _JIANGHAN,
               (("contract", 5), ("sme", 4), ("general", 3)), (M,), "13800138003", True),
    SampleUser("L1004", "刘芳", Role.LAWYER, _JIANGHAN,
               (("labor", 4), ("contract", 3), ("general", 4)), (M, H, S), "13800138004"),
    SampleUser("L1005", "陈志强", Role.LAWYER, _LINGNAN,
               (("sme", 5), ("contract", 4), ("general", 3)), (M, C), "13800138005", True),
    SampleUser("L1006", "黄丽娟", Role.LAWYER, _LINGNAN,
               (("marriage_family", 4), ("legal_aid", 3), ("general", 3)), (M, C),
               "13800138006"),
    SampleUser("L1007", "周俊", Role.LAWYER, _CHUTIAN,
               (("mediation", 5), ("marriage_family", 3), ("general", 4)), (M, H),
               "13800138007"),
    SampleUser("L1008", "吴晓燕", Role.LAWYER, _JIANGHAN,
               (("legal_aid", 5), ("labor", 3), ("general", 5)), (M,), "13800138008", True),
    SampleUser("S2001", "赵敏", Role.SUPERVISOR),
    SampleUser("P3001", "孙立", Role.SCHEDULER),
    SampleUser("A0001", "系统管理员", Role.ADMIN),
)


def seed_sample_users(session: Session) -> dict[str, str]:
    """Create the sample accounts that do not exist yet; return ``{work_id: password}``."""
    existing = set(session.scalars(select(User.work_id)))
    created: dict[str, str] = {}
    for sample in SAMPLE_USERS:
        if sample.work_id in existing:
            continue
        password = secrets.token_urlsafe(12)
        add_user(
            session,
            sample.work_id,
            name=sample.name,
            role=sample.role,
            password=password,
            firm=sample.firm,
            skills=sample.skills,
            languages=sample.languages,
            remote_phone=sample.remote_phone,
            remote_night_allowed=sample.remote_night_allowed,
            max_shifts_per_month=8 if sample.role is Role.LAWYER else None,
            max_consecutive_nights=2 if sample.role is Role.LAWYER else None,
        )
        created[sample.work_id] = password
    return created
