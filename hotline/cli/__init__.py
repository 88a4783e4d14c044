"""The ``hotline`` command.

Subcommands live in small modules (``flows.py``, ``db.py``, ``users.py``, ``serve.py``) and are
registered here. :func:`main` is the only place that turns errors into operator messages: a
:class:`~hotline.errors.HotlineError` prints its Chinese message (exit 2 for configuration
errors, 1 otherwise); anything unexpected prints one line and leaves the traceback in
``var/log/crash.log``, never on the operator's screen.
"""

from __future__ import annotations

import re
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

import click

from hotline.config import Settings, load_settings
from hotline.errors import ConfigError, FlowError, HotlineError

EXIT_FAILURE = 1
EXIT_USAGE = 2


class AppContext:
    """Per-invocation state: the config path, and the settings loaded on first use."""

    def __init__(self, config: str | None) -> None:
        self.config = config
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """Settings, loaded and validated once."""
        if self._settings is None:
            self._settings = load_settings(self.config)
        return self._settings


pass_app = click.make_pass_decorator(AppContext)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="配置文件 (默认 $HOTLINE_CONFIG 或 ./hotline.toml, 没有则用内置默认值)")
@click.version_option(package_name="hotline12348", message="hotline %(version)s")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """12348 公共法律服务热线 — 管理命令。"""
    ctx.obj = AppContext(config)


def _register() -> None:
    from hotline.cli import (
        call,
        config_cmd,
        console,
        db,
        flows,
        models,
        roster,
        serve,
        staffing,
        transcribe,
        users,
    )

    for module in (call, config_cmd, console, db, flows, models, roster, serve, staffing,
                   transcribe, users):
        for command in module.COMMANDS:
            cli.add_command(command)


def _crash_log(settings_hint: Path | None) -> Path:
    folder = settings_hint or Path("var")
    folder = folder / "log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "crash.log"
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"--- {datetime.now(UTC).isoformat()} {' '.join(sys.argv)}\n")
            fh.write(traceback.format_exc())
        return path
    except OSError:
        return Path("(无法写入日志)")


# Click's own messages are English; these patterns cover what operators actually meet.
_USAGE_ZH = [
    (re.compile(r"^Missing argument '(.+)'\.$"), r"缺少参数 \1"),
    (re.compile(r"^Missing option '(.+)'\.$"), r"缺少选项 \1"),
    (re.compile(r"^No such command '(.+)'\.$"), r"没有命令 \1"),
    (re.compile(r"^No such option: (.+)$"), r"没有选项 \1"),
    (re.compile(r"^No such option '(.+)'\.?(.*)$"), r"没有选项 \1\2"),
    (re.compile(r"^Got unexpected extra arguments? \((.+)\)$"), r"多余的参数: \1"),
    (re.compile(r"^Option '(.+)' requires an argument\.$"), r"选项 \1 需要一个值"),
    (re.compile(r"^Invalid value for '(.+)': '(.*)' is not one of (.+)\.$"),
     r"\1 的值 '\2' 无效, 应为以下之一: \3"),
    (re.compile(r"^Invalid value for '(.+)': '(.*)' is not a valid integer\.$"),
     r"\1 的值 '\2' 无效, 应为整数"),
    (re.compile(r"^Invalid value for '(.+)': (.+)$"), r"\1 的值无效: \2"),
]


def usage_zh(message: str) -> str:
    """Chinese for the common click usage messages; others pass through unchanged."""
    for pattern, replacement in _USAGE_ZH:
        if pattern.match(message):
            return pattern.sub(replacement, message)
    return message


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code; errors become one Chinese line on stderr."""
    _register()
    try:
        code = cli.main(args=argv, prog_name="hotline", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("已取消", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "hotline"
        click.echo(f"用法错误: {usage_zh(exc.format_message())}", err=True)
        click.echo(f"运行 '{command} --help' 查看用法", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        click.echo(f"错误: {usage_zh(exc.format_message())}", err=True)
        return exc.exit_code
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        return EXIT_USAGE
    except FlowError as exc:
        for problem in exc.problems:
            click.echo(problem.render(), err=True)
        click.echo(f"错误: {exc}", err=True)
        return EXIT_FAILURE
    except HotlineError as exc:
        click.echo(f"错误: {exc}", err=True)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        click.echo("已中断", err=True)
        return 130
    except BrokenPipeError:
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback to users
        path = _crash_log(None)
        click.echo(f"内部错误: {type(exc).__name__}: {exc} (详情已写入 {path})", err=True)
        return EXIT_FAILURE
    return code if isinstance(code, int) else 0


def run() -> None:  # pragma: no cover - console-script shim
    """Console-script entry point."""
    sys.exit(main())
