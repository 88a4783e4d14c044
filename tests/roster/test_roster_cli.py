"""`hotline roster` end to end on a real SQLite ledger with the shipped shift templates and
example lawyers: import, plan, publish, show, check, export, leave and re-plan, swaps."""

import csv
import io
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import openpyxl
import pytest

from hotline.cli import main
from hotline.config import load_settings
from hotline.roster import rules
from hotline.roster.planning import month_problem
from hotline.store.session import open_session

ROOT = Path(__file__).resolve().parents[2]
SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def site(tmp_path):
    config = tmp_path / "hotline.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "h.db"}"\n'
        f'[paths]\nvar = "{tmp_path / "var"}"\nflows = "{ROOT / "ivr_flows"}"\n'
        f'[roster]\ntemplates = "{ROOT / "roster" / "shifts.yaml"}"\nsolver_seconds = 8\n',
        encoding="utf-8")

    def run(*args):
        return main(["--config", str(config), *args])

    assert run("db", "upgrade") == 0
    run.config = config
    run.tmp = tmp_path
    return run


def _roster(site):
    settings = load_settings(site.config, environ={})
    with open_session(settings.database_url) as session:
        problem, roster = month_problem(session, settings, "2026-12",
                                        now=datetime(2026, 11, 20, tzinfo=SH))
    return problem, roster


@pytest.mark.timeout(240)
def test_a_scheduler_plans_publishes_exports_and_adjusts_a_month(site, capsys):
    assert site("roster", "lawyers", str(ROOT / "roster" / "lawyers.example.yaml")) == 0
    assert "已导入 30 名律师" in capsys.readouterr().out
    assert site("roster", "plan", "--month", "2026-12") == 0
    out = capsys.readouterr().out
    assert "草稿已保存" in out and "公平与偏好" in out
    assert site("roster", "show", "--month", "2026-12") == 0
    assert "2026-12 班表 (草稿)" in capsys.readouterr().out
    assert site("roster", "publish", "--month", "2026-12") == 0
    # Planning a published month again is refused with the way to adjust it.
    assert site("roster", "plan", "--month", "2026-12") == 1
    assert "--replan" in capsys.readouterr().err

    problem, roster = _roster(site)
    assert roster.published and len(roster.slots) == 147  # December with its weekends
    assert rules.violations(problem, roster.assignments) == []
    assert site("roster", "check", "--month", "2026-12") == 0
    assert "没有违反硬性规则" in capsys.readouterr().out

    # One day: every shift and its lawyers, Christmas being an ordinary Friday in China.
    assert site("roster", "show", "--date", "2026-12-25") == 0
    day = capsys.readouterr().out
    assert day.count("夜班 N") == 2 and day.count("白班 D") == 4 and "中小企业专线 S" in day

    # Exports: the calendar, the spreadsheet and the CSV hold every assignment.
    ics, table, book = site.tmp / "r.ics", site.tmp / "r.csv", site.tmp / "r.xlsx"
    assert site("roster", "export", "--month", "2026-12", "--ics", str(ics), "--csv",
                str(table), "--xlsx", str(book)) == 0
    events = icalendar.Calendar.from_ical(ics.read_bytes()).walk("VEVENT")
    assert len(events) == len(roster.assignments)
    rows = list(csv.reader(io.StringIO(table.read_text(encoding="utf-8-sig"))))
    assert len(rows) == len(roster.assignments) + 1
    assert openpyxl.load_workbook(book).sheetnames[:2] == ["班表", "明细"]
    mine = site.tmp / "mine.ics"
    assert site("roster", "export", "--month", "2026-12", "--ics", str(mine), "--lawyer",
                "L1001") == 0
    own = icalendar.Calendar.from_ical(mine.read_bytes()).walk("VEVENT")
    assert 0 < len(own) == sum(a.work_id == "L1001" for a in roster.assignments)

    # A lawyer falls ill: the re-plan changes only what the illness forces.
    def days(a):
        return date(2026, 12, 10) <= date.fromisoformat(a.slot_id[:10]) <= date(2026, 12, 12)

    patient = next(a.work_id for a in roster.assignments if days(a))
    ill = [a for a in roster.assignments if a.work_id == patient and days(a)]
    assert site("roster", "leave", patient, "--from", "2026-12-10", "--to", "2026-12-12",
                "--reason", "病假") == 0
    # (a generous limit: the minimum-change re-plan proves itself optimal in seconds)
    assert site("roster", "plan", "--month", "2026-12", "--replan", "--publish",
                "--time-limit", "120") == 0
    out = capsys.readouterr().out
    assert "已发布改动" in out
    problem, after = _roster(site)
    assert rules.violations(problem, after.assignments) == []
    removed = set(roster.assignments) - set(after.assignments)
    added = set(after.assignments) - set(roster.assignments)
    assert removed == set(ill)  # nothing else moved out
    assert {a.slot_id for a in added} == {a.slot_id for a in ill}  # only her seats refilled


@pytest.mark.timeout(240)
def test_swaps_are_checked_against_every_hard_rule(site, capsys):
    assert site("roster", "lawyers", str(ROOT / "roster" / "lawyers.example.yaml")) == 0
    assert site("roster", "plan", "--month", "2026-12", "--publish") == 0
    capsys.readouterr()
    problem, roster = _roster(site)
    # A swap the rules allow (found with the same checker the approval uses) …
    good = None
    for give in roster.assignments:
        for colleague in problem.lawyers:
            try:
                rules.check_swap(problem, roster.assignments, give, colleague.work_id)
            except Exception:  # noqa: BLE001 - not this one
                continue
            good = (give, colleague.work_id)
            break
        if good:
            break
    assert good is not None
    give, to = good
    # … and one that breaks a rule: the colleague already works that day's shift.
    busy = next(a for a in roster.assignments
                if a.slot_id == give.slot_id and a.work_id != give.work_id)
    assert site("roster", "swap", "request", "--lawyer", give.work_id, "--shift",
                give.slot_id, "--to", busy.work_id, "--note", "家中有事") == 0
    assert site("roster", "swap", "request", "--lawyer", give.work_id, "--shift",
                give.slot_id, "--to", to) == 1  # one pending request per shift
    assert "已有待审批" in capsys.readouterr().err
    assert _add_scheduler(site) == 0
    assert site("roster", "swap", "approve", "1", "--by", "S01") == 1
    assert "未能处理换班申请" in capsys.readouterr().err
    assert site("roster", "swap", "reject", "1", "--by", "S01") == 0
    assert site("roster", "swap", "request", "--lawyer", give.work_id, "--shift",
                give.slot_id, "--to", to) == 0
    assert site("roster", "swap", "approve", "2", "--by", "S01") == 0
    assert site("roster", "swap", "list") == 0
    listing = capsys.readouterr().out
    assert "已批准" in listing and "已驳回" in listing
    problem, after = _roster(site)
    assert (give.slot_id, to) in {(a.slot_id, a.work_id) for a in after.assignments}
    assert give not in after.assignments
    assert rules.violations(problem, after.assignments) == []


def _add_scheduler(site):
    done = subprocess.run([sys.executable, "-m", "hotline", "--config", str(site.config),
                           "users", "add", "S01", "--name", "排班员", "--role", "scheduler"],
                          input="Sched-2026-pass!\n", text=True, capture_output=True)
    return done.returncode
