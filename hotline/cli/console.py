"""``hotline console``: the lawyers' and supervisors' terminal console (agent_console)."""

from __future__ import annotations

from pathlib import Path

import click

from hotline.cli import AppContext, pass_app


@click.command("console", help="打开值班律师工作台 / 班长监控台 (终端界面)。")
@click.option("--server", default=None,
              help="服务器地址, 例如 http://127.0.0.1:8348 (默认取本机配置 api.host/api.port)")
@click.option("--user", "work_id", default="", help="工号")
@click.option("--phone", default="", help="话机 SIP 地址 (律师; 默认用账号登记的话机)")
@click.option("--accept-in-console", is_flag=True,
              help="在工作台按 A 接听, 之后服务器呼叫话机 (话机须设为自动应答)")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="本机草稿目录 (默认 ~/.local/state/hotline-console)")
@pass_app
def console_command(app: AppContext, server: str | None, work_id: str, phone: str,
                    accept_in_console: bool, state_dir: Path | None) -> None:
    """Run the Textual console until the user leaves."""
    from agent_console.app import ConsoleApp

    if server is None:
        api = app.settings.api
        host = "127.0.0.1" if api.host in ("0.0.0.0", "::") else api.host
        server = f"http://{host}:{api.port}"
    if not server.startswith(("http://", "https://")):
        raise click.BadParameter("应以 http:// 或 https:// 开头", param_hint="--server")
    ConsoleApp(server, work_id, phone=phone, accept_in_console=accept_in_console,
               state_dir=state_dir).run()


COMMANDS = [console_command]
