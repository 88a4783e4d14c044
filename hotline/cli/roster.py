"""``hotline roster``: lawyers, planning, publishing, showing, exporting, leave and swaps."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import NoReturn

import click

from hotline.cli import AppContext, pass_app
from hotline.cli.users import format_table
from hotline.errors import RosterError
from hotline.roster.model import WEEKDAYS_ZH, Assignment, Lawyer, Slot


@click.group("roster")
def roster_group() -> None:
    """值班排班: 导入律师、排班、发布、查看、导出、请假与换班。"""


def _month(value: str | None) -> str:
    if value is None:
        today = date.today()
        return f"{today.year:04d}-{today.month:02d}"
    from hotline.store.roster import month_span

    month_span(value)  # validates
    return value


@roster_group.command("lawyers")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def lawyers_cmd(app: AppContext, file: Path) -> None:
    """从 YAML 或 CSV 导入值班律师 (律所、技能、方言、排班限制、请假、偏好)。"""
    from hotline.roster.files import load_lawyers, load_templates
    from hotline.roster.planning import templates_path
    from hotline.store.roster import import_lawyers
    from hotline.store.session import open_session

    settings = app.settings
    tpath = templates_path(settings)
    templates = load_templates(tpath) if tpath.is_file() else None
    today = datetime.now(settings.tz).date()
    lawyers = load_lawyers(file, tz=settings.tz, today=today, templates=templates)
    with open_session(settings.database_url) as session:
        result = import_lawyers(session, lawyers, today=today)
    click.echo(f"已导入 {len(lawyers)} 名律师: 新建 {len(result.created)} 名, "
               f"更新 {len(result.updated)} 名")
    if result.created:
        click.echo("新建账号尚无密码, 请用 'hotline users passwd 工号' 设置后再登录控制台")


@roster_group.command("plan")
@click.option("--month", "month", required=True, help="月份 YYYY-MM, 如 2026-12")
@click.option("--publish", is_flag=True, help="排好后立即发布")
@click.option("--replan", is_flag=True,
              help="重排已发布的月份 (如律师病假): 已开始的班次不变, 其余尽量少改动")
@click.option("--staffing", is_flag=True,
              help="按最近几周来电用 Erlang 计算每小时所需人数, 提高班次人数")
@click.option("--time-limit", type=click.FloatRange(1, 3600), default=None,
              help="求解时间上限 (秒, 默认 roster.solver_seconds)")
@click.option("--by", "by", default=None, help="排班员工号 (记入排班记录)")
@pass_app
def plan_cmd(app: AppContext, month: str, publish: bool, replan: bool, staffing: bool,
             time_limit: float | None, by: str | None) -> None:
    """求解一个月的班表 (OR-Tools CP-SAT), 满足全部硬性规则并尽量公平。"""
    from hotline.roster.planning import plan_month
    from hotline.store.session import open_session

    settings = app.settings
    month = _month(month)
    need: dict[str, int] = {}
    if staffing:
        need = _staffing_need(app)
    click.echo(f"正在排 {month} 的班表 (最长 {time_limit or settings.roster.solver_seconds:g} 秒)…")
    with open_session(settings.database_url) as session:
        try:
            result = plan_month(session, settings, month, need=need, publish=publish,
                                replan=replan, by=by, time_limit=time_limit)
        except RosterError as exc:
            _refused(exc, "roster.infeasible", "无法排出满足全部硬性规则的班表, 原因:")
    sol = result.solution
    click.echo(f"求解结果: {'最优' if sol.status == 'optimal' else '可行'}, 目标值 "
               f"{sol.objective:g} (下界 {sol.bound:g}), 用时 {sol.seconds:.1f} 秒, "
               f"{len(result.slots)} 个班次, {len(sol.assignments)} 人次")
    _figures(sol.figures)
    if replan:
        click.echo(f"改动 {len(result.removed) + len(result.added)} 处:")
        for a in result.removed:
            click.echo(f"  - 撤下 {a.work_id} {a.slot_id}")
        for a in result.added:
            click.echo(f"  + 排上 {a.work_id} {a.slot_id}")
        click.echo("已发布改动" if publish else "未发布: 加 --publish 应用这些改动")
    elif publish:
        click.echo(f"{month} 班表已发布")
    else:
        click.echo(f"草稿已保存; 用 'hotline roster publish --month {month}' 发布")


def _refused(exc: RosterError, code: str, headline: str) -> NoReturn:
    """Print every reason of a refusal with ``code`` (exit 1); other errors go on up."""
    if exc.code != code:
        raise exc
    click.echo(headline, err=True)
    for reason in exc.params.get("reasons", []):
        click.echo(f"  - {reason}", err=True)
    raise click.exceptions.Exit(1) from None


def _staffing_need(app: AppContext) -> dict[str, int]:
    from hotline.roster import staffing
    from hotline.store.session import open_session

    settings = app.settings
    r = settings.roster
    share, seconds = r.target_sl.split("/")
    until = datetime.now(settings.tz)
    since = until - timedelta(weeks=r.staffing_weeks)
    with open_session(settings.database_url) as session:
        history = staffing.history(session, since, until, settings.tz, line=r.staffing_line)
    table = staffing.table(history, float(share), float(seconds), r.answer_rate)
    need = {f"{h.weekday}-{h.hour}": h.need for h in table}
    click.echo(f"按最近 {r.staffing_weeks} 周来电计算人数 (目标 {r.target_sl}, 接通率 "
               f"{r.answer_rate:.0%}): 高峰 {max(need.values(), default=0)} 人")
    return need


def _figures(figures: dict[str, float] | object) -> None:
    if not isinstance(figures, dict) or not figures:
        return
    names = {"shifts_min": "每人班次最少", "shifts_max": "最多", "nights_spread": "夜班差",
             "weekends_spread": "周末节假日差", "firm_share_deviation": "律所份额偏差(百分点)",
             "preferred_hits": "满足偏好", "avoided_hits": "排到回避的班",
             "continuity_changes": "班型切换"}
    parts = [f"{label} {figures[key]:g}" for key, label in names.items() if key in figures]
    if parts:
        click.echo("公平与偏好: " + ", ".join(parts))


@roster_group.command("publish")
@click.option("--month", "month", required=True, help="月份 YYYY-MM")
@click.option("--by", "by", default=None, help="排班员工号")
@pass_app
def publish_cmd(app: AppContext, month: str, by: str | None) -> None:
    """发布草稿班表 (发布后律师可见, 服务器在交接班时按它分配来电)。"""
    from hotline.store.roster import publish
    from hotline.store.session import open_session

    with open_session(app.settings.database_url) as session:
        publish(session, _month(month), by=by)
    click.echo(f"{month} 班表已发布 (运行中的服务器几分钟内生效)")


def _load(app: AppContext, month: str) -> tuple[list[Slot], list[Assignment], list[Lawyer], bool]:
    from hotline.store.roster import load_lawyers, load_roster, month_span
    from hotline.store.session import open_session

    settings = app.settings
    first, end = month_span(month)
    with open_session(settings.database_url) as session:
        roster = load_roster(session, first, end, settings.tz)
        if not roster.slots:
            roster = load_roster(session, first, end, settings.tz, published=False)
        lawyers = load_lawyers(session, today=datetime.now(settings.tz).date(),
                               tz=settings.tz)
    if not roster.slots:
        raise RosterError("roster.not_found", what="班表", key=month)
    return list(roster.slots), list(roster.assignments), lawyers, roster.published


@roster_group.command("show")
@click.option("--month", "month", default=None, help="月份 YYYY-MM (默认本月或 --date 所在月)")
@click.option("--lawyer", "lawyer", default=None, help="只看一名律师 (工号)")
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="只看一天")
@pass_app
def show_cmd(app: AppContext, month: str | None, lawyer: str | None,
             day: datetime | None) -> None:
    """显示班表: 整月网格 (律师 × 日期), 或一名律师的班次, 或一天的班次。"""
    if month is None and day is not None:
        month = f"{day.year:04d}-{day.month:02d}"
    month = _month(month)
    slots, assignments, lawyers, published = _load(app, month)
    by_id = {s.id: s for s in slots}
    names = {lw.work_id: lw.name for lw in lawyers}
    click.echo(f"{month} 班表 ({'已发布' if published else '草稿'})")
    if day is not None or lawyer is not None:
        rows = []
        for a in sorted(assignments, key=lambda a: (by_id[a.slot_id].start, a.work_id)):
            s = by_id[a.slot_id]
            if day is not None and s.date != day.date():
                continue
            if lawyer is not None and a.work_id != lawyer:
                continue
            rows.append([f"{s.date:%m-%d} {WEEKDAYS_ZH[s.date.weekday()]}", s.line,
                         f"{s.name} {s.code}", f"{s.start:%H:%M}-{s.end:%H:%M}",
                         f"{names.get(a.work_id, '')}({a.work_id})",
                         "远程" if a.remote else ""])
        if not rows:
            click.echo("没有班次")
            return
        click.echo(format_table(["日期", "线路", "班次", "时间", "律师", ""], rows))
        click.echo(f"共 {len(rows)} 个班次")
        return
    days = sorted({s.date for s in slots})
    cell: dict[tuple[str, date], list[str]] = {}
    for a in assignments:
        s = by_id[a.slot_id]
        cell.setdefault((a.work_id, s.date), []).append(s.code)
    header = ["律师"] + [f"{d.day:02d}" for d in days] + ["合计"]
    rows = []
    count = Counter(a.work_id for a in assignments)
    for lw in lawyers:
        if not count.get(lw.work_id):
            continue
        rows.append([f"{lw.name}({lw.work_id})"]
                    + ["".join(cell.get((lw.work_id, d), [])) or "·" for d in days]
                    + [str(count[lw.work_id])])
    click.echo(format_table(header, rows))


@roster_group.command("export")
@click.option("--month", "month", required=True, help="月份 YYYY-MM")
@click.option("--ics", "ics", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="导出日历文件 (.ics, 可导入手机/Outlook 日历)")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="导出 CSV (Excel 可直接打开)")
@click.option("--xlsx", "xlsx", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="导出 Excel 工作簿 (班表网格、明细、统计)")
@click.option("--lawyer", "lawyer", default=None, help="只导出一名律师的班次")
@pass_app
def export_cmd(app: AppContext, month: str, ics: Path | None, csv_file: Path | None,
               xlsx: Path | None, lawyer: str | None) -> None:
    """导出班表为 iCalendar / CSV / Excel。"""
    from hotline.roster import export
    from hotline.roster.files import load_templates
    from hotline.roster.planning import templates_path

    if not (ics or csv_file or xlsx):
        raise click.UsageError("请至少指定 --ics、--csv 或 --xlsx 之一")
    month = _month(month)
    slots, assignments, lawyers, _ = _load(app, month)
    tz = app.settings.tz
    if ics:
        tpath = templates_path(app.settings)
        lines = load_templates(tpath).lines if tpath.is_file() else None
        ics.write_bytes(export.to_ics(slots, assignments, lawyers, tz=tz, work_id=lawyer,
                                      lines=lines))
        click.echo(f"已写入 {ics}")
    if csv_file:
        csv_file.write_text(export.to_csv(slots, assignments, lawyers, tz=tz, work_id=lawyer),
                            encoding="utf-8", newline="")
        click.echo(f"已写入 {csv_file}")
    if xlsx:
        export.to_xlsx(slots, assignments, lawyers, xlsx, tz=tz, work_id=lawyer)
        click.echo(f"已写入 {xlsx}")


@roster_group.command("check")
@click.option("--month", "month", required=True, help="月份 YYYY-MM")
@pass_app
def check_cmd(app: AppContext, month: str) -> None:
    """检查班表是否违反硬性规则, 并显示公平性指标。"""
    from hotline.roster import rules
    from hotline.roster.planning import month_problem
    from hotline.store.session import open_session

    with open_session(app.settings.database_url) as session:
        problem, roster = month_problem(session, app.settings, _month(month))
    found = rules.violations(problem, roster.assignments)
    _figures(rules.figures(problem, roster.assignments))
    if not found:
        click.echo(f"{month}: 没有违反硬性规则 ({len(roster.assignments)} 人次)")
        return
    for v in found:
        click.echo(f"  - [{v.code}] {v.message}")
    raise click.exceptions.Exit(1)


@roster_group.command("leave")
@click.argument("work_id")
@click.option("--from", "start", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%d %H:%M"]),
              required=True, help="开始 (日期或 日期 时间)")
@click.option("--to", "end", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%d %H:%M"]),
              required=True, help="结束 (日期含当天, 或 日期 时间)")
@click.option("--reason", default="", help="原因 (病假、开庭…)")
@pass_app
def leave_cmd(app: AppContext, work_id: str, start: datetime, end: datetime,
              reason: str) -> None:
    """登记律师请假 (之后用 plan --replan 调整已发布的班表)。"""
    from hotline.store.roster import add_leave
    from hotline.store.session import open_session

    tz = app.settings.tz
    begin = start.replace(tzinfo=tz)
    stop = end.replace(tzinfo=tz)
    if end.time() == time(0):
        stop = stop + timedelta(days=1)  # a date: the whole day
    with open_session(app.settings.database_url) as session:
        add_leave(session, work_id, begin, stop, reason)
    click.echo(f"已登记 {work_id} 请假 {begin:%Y-%m-%d %H:%M} 至 {stop:%Y-%m-%d %H:%M}; "
               f"调整已发布的班表: hotline roster plan --month {begin:%Y-%m} --replan --publish")


@roster_group.group("swap")
def swap_group() -> None:
    """换班: 律师申请, 排班员审批 (审批前校验全部硬性规则)。"""


@swap_group.command("request")
@click.option("--lawyer", "lawyer", required=True, help="申请人工号")
@click.option("--shift", "slot_id", required=True, help="要让出的班次, 如 2026-12-03/main/N")
@click.option("--to", "to", required=True, help="接班同事工号")
@click.option("--take", "take", default=None, help="互换: 申请人接过同事的这个班次")
@click.option("--note", default="", help="说明")
@pass_app
def swap_request_cmd(app: AppContext, lawyer: str, slot_id: str, to: str, take: str | None,
                     note: str) -> None:
    """登记换班申请。"""
    from hotline.store.roster import request_swap
    from hotline.store.session import open_session

    with open_session(app.settings.database_url) as session:
        swap_id = request_swap(session, lawyer, slot_id, to, take_slot_id=take, note=note,
                               tz=app.settings.tz)
    click.echo(f"换班申请 {swap_id} 已登记, 等待排班员审批")


@swap_group.command("list")
@click.option("--status", type=click.Choice(["pending", "approved", "rejected"]), default=None)
@pass_app
def swap_list_cmd(app: AppContext, status: str | None) -> None:
    """列出换班申请。"""
    from hotline.store.roster import swaps
    from hotline.store.session import open_session

    with open_session(app.settings.database_url) as session:
        views = swaps(session, app.settings.tz, status=status)
    if not views:
        click.echo("没有换班申请")
        return
    labels = {"pending": "待审批", "approved": "已批准", "rejected": "已驳回"}
    click.echo(format_table(["编号", "状态", "申请人", "让出班次", "接班人", "互换班次", "说明"], [
        [str(v.id), labels.get(v.status, v.status), v.requested_by, v.give_label, v.to_work_id,
         v.take_label or "-", v.note or "-"] for v in views]))


def _decide(app: AppContext, swap_id: int, approve: bool, by: str) -> None:
    from hotline.roster.planning import decide_swap
    from hotline.store.session import open_session

    with open_session(app.settings.database_url) as session:
        try:
            decide_swap(session, app.settings, swap_id, approve=approve, by=by)
        except RosterError as exc:
            _refused(exc, "roster.swap_invalid", "未能处理换班申请:")
    click.echo(f"换班申请 {swap_id} 已{'批准' if approve else '驳回'}")


@swap_group.command("approve")
@click.argument("swap_id", type=int)
@click.option("--by", "by", required=True, help="排班员工号")
@pass_app
def swap_approve_cmd(app: AppContext, swap_id: int, by: str) -> None:
    """批准换班 (先校验硬性规则)。"""
    _decide(app, swap_id, True, by)


@swap_group.command("reject")
@click.argument("swap_id", type=int)
@click.option("--by", "by", required=True, help="排班员工号")
@pass_app
def swap_reject_cmd(app: AppContext, swap_id: int, by: str) -> None:
    """驳回换班。"""
    _decide(app, swap_id, False, by)


COMMANDS = [roster_group]
