"""``hotline flows``: check, simulate, graph and list the YAML call flows."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from hotline.callers import CallerFacts
from hotline.cli import AppContext, pass_app
from hotline.errors import FlowError, HotlineError
from hotline.ivr import graph as graph_mod
from hotline.ivr.registry import check_paths
from hotline.ivr.simulate import parse_script, render, simulate
from hotline.ivr.validate import FlowSet


@click.group("flows")
def flows() -> None:
    """呼叫流程: 检查、模拟、画图。"""


def _load(app: AppContext, path: str | None) -> FlowSet:
    root = Path(path) if path else app.settings.path("flows")
    sets, problems = check_paths([root], app.settings)
    if problems:
        raise FlowError(problems)
    return sets[0]


@flows.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@pass_app
def check(app: AppContext, paths: tuple[Path, ...]) -> None:
    """检查流程文件 (默认检查配置的 ivr_flows/), 一次列出全部问题。"""
    targets = list(paths) or [app.settings.path("flows")]
    sets, problems = check_paths(targets, app.settings)
    for problem in problems:
        click.echo(problem.render())
    if problems:
        click.echo(f"发现 {len(problems)} 处问题", err=True)
        raise click.exceptions.Exit(1)
    flows_n = sum(len(fs.flows) for fs in sets)
    nodes_n = sum(len(f.nodes) for fs in sets for f in fs.flows.values())
    prompts_n = sum(len(fs.prompts) for fs in sets)
    click.echo(f"检查通过: {flows_n} 个流程, {nodes_n} 个节点, {prompts_n} 条提示音")


@flows.command("simulate")
@click.argument("flow")
@click.option("--digits", default="",
              help='按键脚本, 如 "1 0"; _ 表示静音, ! 表示挂机, ^0 表示在提示音中按 0')
@click.option("--at", "at", default=None, help="模拟的来电时间, 如 2026-12-31T23:30 (默认现在)")
@click.option("--caller", default="13800000000", show_default=True, help="来电号码")
@click.option("--silence", is_flag=True, help="来电人始终不按键")
@click.option("--repeat", is_flag=True, help="视为近期来电过的重复来电人")
@click.option("--green", is_flag=True, help="视为绿色通道来电人")
@click.option("--queue", "queue", type=click.Choice(["answered", "overflow", "abandon"]),
              default="answered", show_default=True, help="排队结果")
@click.option("--hangup-at", type=int, default=None, help="在第 N 个事件时挂机")
@click.option("--lookup", is_flag=True,
              help="从数据库查询来电人 (近期工单 → 重复来电, 绿色通道名单)")
@click.option("--flows-dir", default=None, help="流程目录 (默认配置中的 ivr_flows/)")
@pass_app
def simulate_cmd(app: AppContext, flow: str, digits: str, at: str | None, caller: str,
                 silence: bool, repeat: bool, green: bool, queue: str, hangup_at: int | None,
                 lookup: bool, flows_dir: str | None) -> None:
    """用脚本化的来电人运行一个流程, 打印通话时间线。"""
    tz = app.settings.tz
    if at:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise HotlineError("sim.bad_time", value=at) from None
        when = when.replace(tzinfo=tz) if when.tzinfo is None else when.astimezone(tz)
    else:
        when = datetime.now(tz).replace(microsecond=0)
    script = [] if silence else parse_script(digits)
    fs = _load(app, flows_dir)
    if flow not in fs.flows:
        raise HotlineError("flow.not_found", flow=flow, known=", ".join(sorted(fs.flows)))
    facts = CallerFacts(number=caller, repeat=repeat, green_channel=green, known=green)
    if lookup:
        from dataclasses import replace

        from hotline.store.callers import lookup_caller_facts
        from hotline.store.session import open_session

        with open_session(app.settings.database_url) as session:
            found = lookup_caller_facts(session, caller, when,
                                        app.settings.callers.repeat_window_days)
        facts = replace(found, number=caller, repeat=found.repeat or repeat,
                        green_channel=found.green_channel or green,
                        known=found.known or green)
    result = simulate(fs, flow, script=script, at=when, caller=facts,
                      queue=queue, hangup_at=hangup_at)  # type: ignore[arg-type]
    click.echo(render(result, fs, when, facts))


@flows.command("graph")
@click.argument("flow")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid",
              show_default=True)
@click.option("--flows-dir", default=None, help="流程目录 (默认配置中的 ivr_flows/)")
@pass_app
def graph(app: AppContext, flow: str, fmt: str, flows_dir: str | None) -> None:
    """输出流程图 (Mermaid 或 Graphviz DOT)。"""
    fs = _load(app, flows_dir)
    if flow not in fs.flows:
        raise HotlineError("flow.not_found", flow=flow, known=", ".join(sorted(fs.flows)))
    text = graph_mod.mermaid(fs.flows[flow]) if fmt == "mermaid" else graph_mod.dot(
        fs.flows[flow])
    click.echo(text, nl=False)


@flows.command("list")
@pass_app
def list_flows(app: AppContext) -> None:
    """列出流程及其服务的号码。"""
    fs = _load(app, None)
    lines_by_flow: dict[str, list[str]] = {}
    for number, flow_id in app.settings.lines.items():
        lines_by_flow.setdefault(flow_id, []).append(number)
    for flow in fs.flows.values():
        numbers = ", ".join(lines_by_flow.get(flow.id, [])) or "-"
        click.echo(f"{flow.id:<14} {len(flow.nodes):>3} 个节点  号码 {numbers:<16} {flow.name}")


COMMANDS = [flows]
