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
@click.option("--softphone", is_flag=True,
              help="使用工作台内置软电话 (耳机/声卡), 无需另配话机")
@click.option("--softphone-host", default="",
              help="软电话使用的本机地址 (默认: 通往服务器的本机地址)")
@click.option("--mic", default=None, help="麦克风设备 (名称或编号, 默认系统默认设备)")
@click.option("--speaker", default=None, help="耳机/扬声器设备 (名称或编号)")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="本机草稿目录 (默认 ~/.local/state/hotline-console)")
@pass_app
def console_command(app: AppContext, server: str | None, work_id: str, phone: str,
                    accept_in_console: bool, softphone: bool, softphone_host: str,
                    mic: str | None, speaker: str | None, state_dir: Path | None) -> None:
    """Run the Textual console until the user leaves."""
    from agent_console.app import ConsoleApp

    if server is None:
        api = app.settings.api
        host = "127.0.0.1" if api.host in ("0.0.0.0", "::") else api.host
        server = f"http://{host}:{api.port}"
    if not server.startswith(("http://", "https://")):
        raise click.BadParameter("应以 http:// 或 https:// 开头", param_hint="--server")
    if softphone and phone:
        raise click.BadParameter("--softphone 与 --phone 只能选一个", param_hint="--phone")
    ConsoleApp(server, work_id, phone=phone, accept_in_console=accept_in_console,
               state_dir=state_dir, softphone=softphone, softphone_host=softphone_host,
               audio_devices=(_device(mic), _device(speaker))).run()


def _device(value: str | None) -> str | int | None:
    """A PortAudio device: its number, or a part of its name."""
    if value is None:
        return None
    return int(value) if value.isdigit() else value


COMMANDS = [console_command]
