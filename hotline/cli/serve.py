"""``hotline serve``: run the hotline on this machine."""

from __future__ import annotations

import asyncio

import click

from hotline import logs
from hotline.cli import AppContext, pass_app


@click.command("serve")
@pass_app
def serve(app: AppContext) -> None:
    """启动热线服务 (数据库、呼叫流程、提示音、API); Ctrl-C 或 SIGTERM 停止。"""
    settings = app.settings
    logs.setup(settings.log_level, settings.path("var") / "log")
    from hotline.server import run

    asyncio.run(run(settings, app.config))


COMMANDS = [serve]
