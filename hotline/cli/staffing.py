"""``hotline staffing``: lawyers needed per hour of the week, from the ledger's call history.

Defaults come from the ``[roster]`` section (``target_sl``, ``answer_rate``,
``staffing_weeks``, ``staffing_line``); the options override them for one run. ``--json``
prints every hour and the ``"weekday-hour" → lawyers`` map the roster planner takes.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import click

from hotline.cli import AppContext, pass_app
from hotline.cli.users import format_table

if TYPE_CHECKING:
    from hotline.roster.staffing import History, HourNeed

_TARGET_HELP = "应为 比例/秒数, 例如 0.8/15 (已接来电中 80% 在 15 秒内接起)"


def _target(ctx: click.Context, param: click.Parameter,
            value: str | None) -> tuple[float, float] | None:
    from hotline.roster.staffing import parse_target

    if value is None:
        return None
    try:
        return parse_target(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' {_TARGET_HELP}", ctx, param) from None


def _fraction(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        share = float(value.rstrip("%")) / (100 if value.endswith("%") else 1)
    except ValueError:
        share = -1.0
    if not 0 < share < 1:
        raise click.BadParameter(f"'{value}' 应为 0 到 1 之间的比例, 例如 0.95", ctx, param)
    return share


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' 应为日期 YYYY-MM-DD", ctx, param) from None


@click.command("staffing")
@click.option("--weeks", type=int, default=None,
              help="统计最近几周的来电 (1-52, 默认配置 roster.staffing_weeks)")
@click.option("--until", "until", callback=_day, default=None, metavar="YYYY-MM-DD",
              help="统计截至此日期 (含), 默认昨天")
@click.option("--target-sl", "target", callback=_target, default=None, metavar="比例/秒",
              help="服务水平目标: 已接来电中在 N 秒内接起的比例, 如 0.8/15 "
                   "(默认配置 roster.target_sl)")
@click.option("--answer-rate", callback=_fraction, default=None, metavar="比例",
              help="接通率目标 (已接 / 转人工), 如 0.95 (默认配置 roster.answer_rate)")
@click.option("--line", default=None,
              help="线路: 拨入号码对应的流程, 如 main、sme (默认配置 roster.staffing_line)")
@click.option("--default-aht", type=float, default=360.0, show_default=True,
              help="窗口内没有已接来电时假定的平均处理时长 (秒)")
@click.option("--json", "as_json", is_flag=True, help="输出 JSON (每小时的完整结果)")
@pass_app
def staffing(app: AppContext, weeks: int | None, until: date | None,
             target: tuple[float, float] | None, answer_rate: float | None,
             line: str | None, default_aht: float, as_json: bool) -> None:
    """按历史话务量 (Erlang C / Erlang A) 计算一周每小时需要的值班律师人数。"""
    from hotline.roster.staffing import history, parse_target, table
    from hotline.store.session import open_session

    settings = app.settings
    conf = settings.roster
    weeks = conf.staffing_weeks if weeks is None else weeks
    if not 1 <= weeks <= 52:
        raise click.BadParameter(f"'{weeks}' 应为 1 到 52 之间的整数", param_hint="'--weeks'")
    if not 1 <= default_aht <= 7200:
        raise click.BadParameter(f"'{default_aht:g}' 应在 1 到 7200 秒之间",
                                 param_hint="'--default-aht'")
    share, seconds = target or parse_target(conf.target_sl)
    rate = conf.answer_rate if answer_rate is None else answer_rate
    line = line or conf.staffing_line
    tz = settings.tz
    last = until or datetime.now(tz).date() - timedelta(days=1)
    end = datetime.combine(last + timedelta(days=1), time(0), tz)
    start = datetime.combine(last + timedelta(days=1 - 7 * weeks), time(0), tz)
    with open_session(settings.database_url) as session:
        hist = history(session, start, end, tz, line, default_aht=default_aht)
    rows = table(hist, share, seconds, rate)
    if as_json:
        click.echo(json.dumps(_as_json(hist, rows, share, seconds, rate, str(tz)),
                              ensure_ascii=False, indent=2))
        return
    click.echo(_report(hist, rows, share, seconds, rate, str(tz), last))


def _report(hist: History, rows: list[HourNeed], share: float, seconds: float, rate: float,
            tz: str, last: date) -> str:
    from hotline.roster.model import WEEKDAYS_ZH

    patience = hist.patience
    lines = [f"话务统计: {hist.since.date()} 至 {last} ({hist.weeks:g} 周, 线路 {hist.line}, "
             f"时区 {tz})"]
    if hist.offered:
        lines.append(f"转人工来电 {hist.offered} 个, 律师接起 {hist.answered} 个, 排队放弃 "
                     f"{hist.abandoned} 个")
    else:
        lines.append("窗口内没有转人工的来电: 各时段按最少 1 名律师计")
    model = (f"Erlang A (平均耐心 {patience:.0f} 秒)" if patience is not None
             else "Erlang C (没有排队放弃记录, 不估计耐心)")
    lines.append(f"目标: 已接来电 {share:.0%} 在 {seconds:g} 秒内接起, 接通率 ≥ {rate:.0%}; "
                 f"模型 {model}")
    lines.append("")
    lines.append("每小时需要的值班律师 (人):")
    grid = {(r.weekday, r.hour): r.need for r in rows}
    body = [[f"{h:02d}:00", *(str(grid[(wd, h)]) for wd in range(7))] for h in range(24)]
    lines.append(format_table(["时段", *WEEKDAYS_ZH], body))
    lines.append("")
    peak = max(rows, key=lambda r: r.need)
    hours_per_week = sum(r.need for r in rows)
    calls = hist.offered / hist.weeks if hist.weeks else 0.0
    talk = hist.talk
    measured = (f"{hist.aht:.0f} 秒 (通话含保持 {talk:.0f} + 话后整理 {hist.wrap_up:.0f})"
                if talk is not None else f"无已接来电, 按 {hist.default_aht:.0f} 秒")
    lines.append(f"合计: 每周律师工时 {hours_per_week} 小时, 峰值 {peak.need} 人 "
                 f"({WEEKDAYS_ZH[peak.weekday]} {peak.hour:02d}:00), 每周来电 {calls:.1f} 个")
    lines.append(f"实测平均处理时长 {measured}; 平均耐心 "
                 + (f"{patience:.0f} 秒" if patience is not None else "未知"))
    return "\n".join(lines)


def _as_json(hist: History, rows: list[HourNeed], share: float, seconds: float, rate: float,
             tz: str) -> dict[str, Any]:
    stats = hist.hours
    peak = max(rows, key=lambda r: r.need)
    return {
        "since": hist.since.isoformat(), "until": hist.until.isoformat(), "timezone": tz,
        "line": hist.line, "weeks": hist.weeks,
        "target": {"service_level": share, "seconds": seconds, "answer_rate": rate},
        "model": rows[0].model,
        "measured": {"offered": hist.offered, "answered": hist.answered,
                     "abandoned": hist.abandoned, "waited_seconds": round(hist.waited, 3),
                     "calls_per_week": hist.offered / hist.weeks,
                     "talk_seconds": hist.talk, "wrap_up_seconds": hist.wrap_up,
                     "aht_seconds": hist.aht, "patience_seconds": hist.patience},
        "lawyer_hours_per_week": sum(r.need for r in rows),
        "peak": {"lawyers": peak.need, "weekday": peak.weekday, "hour": peak.hour},
        "need": {f"{r.weekday}-{r.hour}": r.need for r in rows},
        "hours": [{
            "weekday": r.weekday, "hour": r.hour, "arrivals_per_hour": r.arrivals,
            "aht_seconds": r.aht, "erlangs": r.erlangs, "need_c": r.need_c,
            "need_a": r.need_a, "need": r.need, "service_level": r.service_level,
            "answer_rate": r.answer_rate, "asa_seconds": r.asa,
            "offered": stats[(r.weekday, r.hour)].offered,
            "answered": stats[(r.weekday, r.hour)].answered,
            "abandoned": stats[(r.weekday, r.hour)].abandoned,
            "measured_answer_rate": stats[(r.weekday, r.hour)].answer_rate,
        } for r in rows],
    }


COMMANDS: list[click.Command] = [staffing]
