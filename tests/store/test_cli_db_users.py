from __future__ import annotations

import io
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import hotline.cli
from hotline.cli import AppContext, cli, main
from hotline.cli import db as db_cli
from hotline.cli import users as users_cli
from hotline.domain import Role
from hotline.errors import AuthError
from hotline.store.session import open_session
from hotline.store.users import get_user, list_users, verify_password

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> Path:
    """A working directory with no hotline.toml, the ledger at db_url, var/ under tmp."""
    for name in ("HOTLINE_CONFIG", "HOTLINE_DATABASE_URL", "HOTLINE_PATHS_VAR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOTLINE_DATABASE_URL", db_url)
    monkeypatch.setenv("HOTLINE_PATHS_VAR", str(tmp_path / "var"))
    return tmp_path


@pytest.fixture
def run(env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``hotline ARGS`` through the real main() (error rendering and exit codes)."""

    def register() -> None:
        # Only the commands under test: other modules are written concurrently elsewhere.
        for module in (db_cli, users_cli):
            for command in module.COMMANDS:
                cli.add_command(command)

    monkeypatch.setattr(hotline.cli, "_register", register)

    def invoke(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


def test_commands_are_exported() -> None:
    assert [c.name for c in db_cli.COMMANDS] == ["db"]
    assert [c.name for c in users_cli.COMMANDS] == ["users"]
    assert set(db_cli.db_group.commands) == {"upgrade", "current", "seed"}
    assert set(users_cli.users_group.commands) == {"add", "list", "passwd", "disable", "enable"}


def test_not_upgraded_database(run: Run) -> None:
    assert run("db", "current") == (
        0, "数据库尚未初始化 (最新版本 0003); 请运行 hotline db upgrade\n", "")
    code, out, err = run("users", "list")
    assert (code, out) == (1, "")
    assert err == "错误: 数据库结构不是最新版本 (当前 无, 需要 0003); 请运行 hotline db upgrade\n"


def test_upgrade_then_current(run: Run) -> None:
    code, out, err = run("db", "upgrade")
    assert (code, err) == (0, "")
    assert out.startswith("数据库已升级: 空库 → 0003 (")
    assert out.endswith("), 已同步 8 个队列\n")
    assert out.count("\n") == 1
    code, out, _ = run("db", "upgrade")
    assert code == 0 and out.startswith("数据库已是最新版本 0003 (")
    assert run("db", "current") == (0, "数据库版本 0003 (已是最新)\n", "")


def test_users_add_reads_password_from_stdin(run: Run, db_url: str) -> None:
    run("db", "upgrade")
    code, out, err = run(
        "users", "add", "L9001", "--name", "测试律师", "--role", "lawyer", "--firm", "测试律所",
        "--skill", "labor:4", "--skill", "general:2", "--language", "mandarin",
        "--language", "cantonese", "--phone", "13912345678", "--sip-uri", "sip:9001@10.0.0.9",
        stdin="correct-horse-battery\nignored second line\n")
    assert (code, out, err) == (0, "已添加用户 L9001 测试律师 (值班律师)\n", "")
    with open_session(db_url) as s:
        view = verify_password(s, "L9001", "correct-horse-battery")
    assert view.skills == (("general", 2), ("labor", 4))
    assert [lang.value for lang in view.languages] == ["mandarin", "cantonese"]
    assert (view.firm, view.remote_phone, view.sip_uri) == (
        "测试律所", "13912345678", "sip:9001@10.0.0.9")


def test_users_add_errors_are_chinese_without_traceback(run: Run, db_url: str) -> None:
    run("db", "upgrade")
    add = ("users", "add", "L9001", "--name", "测试律师", "--role", "lawyer")
    assert run(*add, stdin="long enough\n")[0] == 0
    assert run(*add, stdin="another password\n") == (1, "", "错误: 工号 L9001 已存在\n")
    assert run("users", "add", "L9002", "--name", "甲", "--role", "lawyer", stdin="short\n") == (
        1, "", "错误: 密码不符合要求: 至少 8 个字符\n")
    assert run("users", "add", "L9002", "--name", "甲", "--role", "lawyer",
               "--skill", "labor:9", stdin="long enough\n") == (
        1, "", "错误: 技能格式应为 代码:熟练度(1-5), 例如 labor:4, 实际为 'labor:9'\n")
    assert run("users", "add", "L9002", "--name", "甲", "--role", "lawyer", stdin="") == (
        1, "", "错误: 密码不符合要求: 至少 8 个字符\n")
    with open_session(db_url) as s:
        assert [u.work_id for u in list_users(s)] == ["L9001"]


def test_users_add_warns_about_unrouted_skill(run: Run) -> None:
    run("db", "upgrade")
    code, out, err = run("users", "add", "L9003", "--name", "乙", "--role", "lawyer",
                         "--skill", "labour:3", stdin="long enough\n")
    assert code == 0
    assert out == "已添加用户 L9003 乙 (值班律师)\n"
    assert err == "注意: 技能 labour 没有被任何队列使用, 请检查拼写\n"


def test_users_list_is_an_aligned_masked_table(run: Run) -> None:
    run("db", "upgrade")
    run("users", "add", "L1", "--name", "欧阳娜娜", "--role", "lawyer", "--skill", "labor:5",
        "--language", "hubei", "--phone", "13912345678", stdin="long enough\n")
    run("users", "add", "S22", "--name", "王五", "--role", "supervisor", stdin="long enough\n")
    code, out, err = run("users", "list")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["工号", "姓名", "角色", "律所", "技能", "语言", "远程电话", "状态"]
    assert lines[1].split() == ["L1", "欧阳娜娜", "值班律师", "-", "labor:5", "湖北话",
                                "139****5678", "启用"]
    assert lines[2].split() == ["S22", "王五", "管理人员", "-", "-", "普通话", "-", "启用"]
    assert lines[3] == "共 2 个用户"
    assert "13912345678" not in out
    # No cell here contains a space, so each token starts a column: all rows must agree
    # in terminal columns (CJK characters are two wide).
    starts = [[users_cli._width(line[: m.start()]) for m in re.finditer(r"\S+", line)]
              for line in lines[:3]]
    assert starts[0] == starts[1] == starts[2]
    assert starts[0][:3] == [0, 6, 16]  # "L1"/"S22"/"工号" + 2; "欧阳娜娜" is 8 wide + 2
    code, out, _ = run("users", "list", "--role", "supervisor")
    assert [line.split()[0] for line in out.splitlines()] == ["工号", "S22", "共"]
    assert run("users", "list", "--role", "scheduler") == (0, "没有用户\n", "")


def test_users_passwd_disable_enable(run: Run, db_url: str) -> None:
    run("db", "upgrade")
    run("users", "add", "L1", "--name", "甲", "--role", "lawyer", stdin="first password\n")
    assert run("users", "passwd", "L1", stdin="second password\n") == (
        0, "已修改 L1 的密码\n", "")
    assert run("users", "passwd", "L404", stdin="second password\n") == (
        1, "", "错误: 找不到工号 L404\n")
    assert run("users", "disable", "L1") == (0, "已停用 L1 甲\n", "")
    with open_session(db_url) as s:
        assert get_user(s, "L1").active is False
        with pytest.raises(AuthError) as info:
            verify_password(s, "L1", "second password")
        assert info.value.code == "auth.disabled"
    assert run("users", "list")[1].splitlines()[1].split()[-1] == "停用"
    assert run("users", "enable", "L1") == (0, "已启用 L1 甲\n", "")
    with open_session(db_url) as s:
        assert verify_password(s, "L1", "second password").active is True
    assert run("users", "disable", "NOPE") == (1, "", "错误: 找不到工号 NOPE\n")


def test_db_seed_writes_private_password_file(run: Run, env: Path, db_url: str) -> None:
    assert run("db", "seed")[0] == 1  # not upgraded yet
    assert not (env / "var" / "sample-passwords.txt").exists()
    run("db", "upgrade")
    code, out, err = run("db", "seed")
    path = env / "var" / "sample-passwords.txt"
    assert (code, err) == (0, "")
    assert out == f"已创建 11 个示例用户, 初始密码已写入 {path} (仅所有者可读)\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()
             if not line.startswith("#")]
    assert len(lines) == 11
    assert ["L1001", "张明华", "值班律师"] == lines[0][:3]
    with open_session(db_url) as s:
        for work_id, _name, _role, password in lines:
            assert verify_password(s, work_id, password).work_id == work_id
        assert len(list_users(s, Role.LAWYER)) == 8
    before = path.read_text(encoding="utf-8")
    assert run("db", "seed") == (0, "示例用户均已存在, 未创建新用户\n", "")
    assert path.read_text(encoding="utf-8") == before


def test_cli_runner_add_with_input(env: Path, db_url: str) -> None:
    # The same command through click's own runner, as a console test would drive it.
    runner = CliRunner()
    result = runner.invoke(db_cli.db_group, ["upgrade"], obj=AppContext(None))
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        users_cli.users_group, ["add", "P1", "--name", "排班员甲", "--role", "scheduler"],
        obj=AppContext(None), input="scheduler password\n")
    assert result.exit_code == 0, result.output
    assert result.output == "已添加用户 P1 排班员甲 (排班员)\n"
    with open_session(db_url) as s:
        assert verify_password(s, "P1", "scheduler password").role is Role.SCHEDULER


def test_unreachable_database_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HOTLINE_CONFIG", raising=False)
    monkeypatch.setenv("HOTLINE_DATABASE_URL", "postgresql://hotline:s3cret@127.0.0.1:1/h")
    monkeypatch.setattr(hotline.cli, "_register",
                        lambda: cli.add_command(db_cli.db_group))
    assert main(["db", "current"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("错误: 无法连接数据库 postgresql+psycopg://hotline:***@127.0.0.1:1/h: ")
    assert "s3cret" not in err
    assert "Traceback" not in err
