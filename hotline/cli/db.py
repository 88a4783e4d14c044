"""``hotline db``: create and upgrade the ledger, show its version, load sample users.

Store modules are imported inside the commands so ``hotline --help`` and unrelated commands
do not pay for SQLAlchemy, Alembic and Argon2 at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import click

from hotline.cli import AppContext, pass_app

PASSWORDS_FILE = "sample-passwords.txt"


@click.group("db", help="话务台账数据库: 升级结构、查看版本、导入示例用户。")
def db_group() -> None:
    """Ledger maintenance; help text is Chinese (operators), docstrings English (code)."""


@db_group.command("upgrade", help="把数据库结构升级到最新版本, 并按配置同步队列。")
@pass_app
def upgrade_cmd(app: AppContext) -> None:
    """Migrate, then mirror the configured queues so reports can name them."""
    from hotline.store.engine import mask_url
    from hotline.store.migrate import current_revision, upgrade
    from hotline.store.queues import sync_queues
    from hotline.store.session import open_session

    settings = app.settings
    url = settings.database_url
    before = current_revision(url)
    revision = upgrade(url)
    with open_session(url) as session:
        count = sync_queues(session, settings.queues)
    if before == revision:
        state = f"数据库已是最新版本 {revision}"
    else:
        state = f"数据库已升级: {before or '空库'} → {revision}"
    click.echo(f"{state} ({mask_url(url)}), 已同步 {count} 个队列")


@db_group.command("current", help="显示数据库当前的结构版本。")
@pass_app
def current_cmd(app: AppContext) -> None:
    """Tell the operator whether ``hotline db upgrade`` is needed."""
    from hotline.store.migrate import current_revision, head_revision

    current = current_revision(app.settings.database_url)
    head = head_revision()
    if current == head:
        click.echo(f"数据库版本 {current} (已是最新)")
    elif current is None:
        click.echo(f"数据库尚未初始化 (最新版本 {head}); 请运行 hotline db upgrade")
    else:
        click.echo(f"数据库版本 {current}, 最新版本 {head}; 请运行 hotline db upgrade")


@db_group.command("seed", help="导入示例用户 (律师、管理人员、排班员、管理员); 已有工号不受影响。")
@pass_app
def seed_cmd(app: AppContext) -> None:
    """Create sample accounts for a demonstration hotline; passwords go to a 0600 file."""
    from hotline.store.seed import SAMPLE_USERS, seed_sample_users
    from hotline.store.session import open_session

    path = app.settings.path("var") / PASSWORDS_FILE
    names = {u.work_id: f"{u.name}\t{u.role.label}" for u in SAMPLE_USERS}
    with open_session(app.settings.database_url) as session:
        created = seed_sample_users(session)
        if created:
            # Written before the commit: if the file cannot be written, no account is
            # created whose password nobody knows.
            write_passwords(path, created, names)
    if not created:
        click.echo("示例用户均已存在, 未创建新用户")
        return
    click.echo(f"已创建 {len(created)} 个示例用户, 初始密码已写入 {path} (仅所有者可读)")


def write_passwords(path: Path, passwords: Mapping[str, str],
                    names: Mapping[str, str]) -> None:
    """Append ``work id, name, role, password`` lines to a file only its owner may read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
    lines = [f"# hotline db seed {stamp}: 工号\t姓名\t角色\t初始密码 (请登录后修改)"]
    lines += [f"{wid}\t{names.get(wid, '')}\t{pw}" for wid, pw in passwords.items()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the file may predate us with a looser mode
        os.write(fd, ("\n".join(lines) + "\n").encode("utf-8"))
    finally:
        os.close(fd)


COMMANDS: list[click.Command] = [db_group]
