"""``hotline users``: accounts for lawyers, supervisors, schedulers and administrators.

Passwords never appear on the command line (where ``ps`` and shell history would keep
them): they are typed twice at a terminal, or read as the first line of standard input
so scripts can pipe them in.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Sequence

import click

from hotline.callers import mask_number
from hotline.cli import AppContext, pass_app
from hotline.domain import Language, Role
from hotline.errors import AuthError, ConflictError, NotFoundError

_ROLES = [r.value for r in Role]
_LANGUAGES = [lang.value for lang in Language]


@click.group("users", help="用户管理: 值班律师、管理人员、排班员、系统管理员。")
def users_group() -> None:
    """Account commands; help text is Chinese (operators), docstrings English (code)."""


def parse_skill(raw: str) -> tuple[str, int]:
    """Parse ``labor:4`` into ``("labor", 4)``.

    Raises:
        AuthError: ``auth.bad_skill`` when the text is not ``code:1-5``.
    """
    code, sep, level = raw.partition(":")
    code = code.strip()
    if not sep or not code or not level.strip().isdigit() or not 1 <= int(level) <= 5:
        raise AuthError("auth.bad_skill", value=raw)
    return code, int(level)


def read_password(work_id: str) -> str:
    """The new password: prompted twice, hidden, at a terminal; else stdin's first line.

    Raises:
        AuthError: ``auth.password_mismatch`` or ``auth.bad_password``.
    """
    from hotline.store.users import check_password

    stdin = sys.stdin  # CliRunner swaps it in tests
    if stdin.isatty():
        first: str = click.prompt("密码", hide_input=True)
        second: str = click.prompt("再次输入密码", hide_input=True)
        if first != second:
            raise AuthError("auth.password_mismatch")
        password = first
    else:
        password = stdin.readline().rstrip("\r\n")
    check_password(password, work_id)
    return password


@users_group.command("add", help="添加用户; 密码从终端输入两次, 或从标准输入读取第一行。")
@click.argument("work_id")
@click.option("--name", required=True, help="姓名")
@click.option("--role", required=True, type=click.Choice(_ROLES), help="角色")
@click.option("--firm", default=None, help="所属律所")
@click.option("--skill", "skills", multiple=True, metavar="代码:熟练度",
              help="技能及熟练度 1-5, 可重复, 例如 --skill labor:4")
@click.option("--language", "languages", multiple=True, type=click.Choice(_LANGUAGES),
              help="服务语言/方言, 可重复 (默认 mandarin)")
@click.option("--phone", default=None, help="远程值班电话 (夜间转接)")
@click.option("--sip-uri", default=None, help="SIP 话机地址, 例如 sip:1001@10.0.0.5")
@pass_app
def add_cmd(app: AppContext, work_id: str, name: str, role: str, firm: str | None,
            skills: Sequence[str], languages: Sequence[str], phone: str | None,
            sip_uri: str | None) -> None:
    """Create an account; refuse a taken work id before asking for a password."""
    from hotline.store.session import open_session
    from hotline.store.users import add_user, get_user

    parsed = [parse_skill(s) for s in skills]
    with open_session(app.settings.database_url) as session:
        try:
            get_user(session, work_id)
        except NotFoundError:
            pass
        else:  # say so before asking for a password that would be thrown away
            raise ConflictError("store.conflict", what="工号", key=work_id)
        password = read_password(work_id)
        view = add_user(
            session, work_id, name=name, role=Role(role), password=password, firm=firm,
            skills=parsed, languages=[Language(x) for x in languages] or [Language.MANDARIN],
            remote_phone=phone, sip_uri=sip_uri,
        )
    click.echo(f"已添加用户 {view.work_id} {view.name} ({view.role.label})")
    routed = {skill for q in app.settings.queues.values() for skill in q.skills}
    for code, _ in parsed:
        if code not in routed:
            click.echo(f"注意: 技能 {code} 没有被任何队列使用, 请检查拼写", err=True)


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, measured in terminal columns."""
    widths = [max(_width(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [c + " " * (w - _width(c)) for c, w in zip(cells, widths, strict=True)]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


@users_group.command("list", help="列出用户 (远程电话已打码)。")
@click.option("--role", type=click.Choice(_ROLES), default=None, help="只列出某一角色")
@pass_app
def list_cmd(app: AppContext, role: str | None) -> None:
    """Print an aligned table; phone numbers are masked as in logs."""
    from hotline.store.session import open_session
    from hotline.store.users import list_users

    with open_session(app.settings.database_url) as session:
        users = list_users(session, Role(role) if role else None)
    if not users:
        click.echo("没有用户")
        return
    headers = ["工号", "姓名", "角色", "律所", "技能", "语言", "远程电话", "状态"]
    rows = [
        [
            u.work_id,
            u.name,
            u.role.label,
            u.firm or "-",
            " ".join(f"{code}:{level}" for code, level in u.skills) or "-",
            "/".join(lang.label for lang in u.languages) or "-",
            mask_number(u.remote_phone) if u.remote_phone else "-",
            "启用" if u.active else "停用",
        ]
        for u in users
    ]
    click.echo(format_table(headers, rows))
    click.echo(f"共 {len(users)} 个用户")


@users_group.command("passwd", help="修改用户密码; 新密码的输入方式同 add。")
@click.argument("work_id")
@pass_app
def passwd_cmd(app: AppContext, work_id: str) -> None:
    """Replace a password (e.g. after a lawyer forgot theirs)."""
    from hotline.store.session import open_session
    from hotline.store.users import get_user, set_password

    with open_session(app.settings.database_url) as session:
        get_user(session, work_id)  # unknown work id: fail before asking for a password
        set_password(session, work_id, read_password(work_id))
    click.echo(f"已修改 {work_id} 的密码")


@users_group.command("disable", help="停用用户: 不能再登录, 历史记录保留。")
@click.argument("work_id")
@pass_app
def disable_cmd(app: AppContext, work_id: str) -> None:
    """Disable rather than delete: tickets and events keep pointing at the user."""
    _set_active(app, work_id, False)


@users_group.command("enable", help="重新启用已停用的用户。")
@click.argument("work_id")
@pass_app
def enable_cmd(app: AppContext, work_id: str) -> None:
    """Undo ``disable``."""
    _set_active(app, work_id, True)


def _set_active(app: AppContext, work_id: str, active: bool) -> None:
    from hotline.store.session import open_session
    from hotline.store.users import set_active

    with open_session(app.settings.database_url) as session:
        view = set_active(session, work_id, active)
    click.echo(f"已{'启用' if active else '停用'} {view.work_id} {view.name}")


COMMANDS: list[click.Command] = [users_group]
