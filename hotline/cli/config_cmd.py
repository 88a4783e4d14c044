"""``hotline config``: show and check the effective configuration."""

from __future__ import annotations

import json

import click

from hotline.cli import AppContext, pass_app


@click.group("config")
def config() -> None:
    """配置: 查看和检查。"""


@config.command("check")
@pass_app
def check(app: AppContext) -> None:
    """检查配置 (hotline.toml 与 HOTLINE_* 环境变量); 有错时退出码为 2。"""
    settings = app.settings
    click.echo(f"配置正确: 数据库 {settings.database.url}, SIP {settings.sip.host}:"
               f"{settings.sip.port}, API {settings.api.host}:{settings.api.port}")


@config.command("show")
@pass_app
def show(app: AppContext) -> None:
    """以 JSON 打印生效的配置 (默认值 + 配置文件 + 环境变量)。"""
    data = app.settings.model_dump(mode="json")
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


COMMANDS = [config]
