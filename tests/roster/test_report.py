"""The scheduler role's daily call report, from a real ledger (SQLite and PostgreSQL)."""

import asyncio
import json
from datetime import date

from test_staffing import seed

from hotline.config import load_settings
from hotline.jobs import Runtime


def test_daily_report_counts_the_days_calls(factory, tmp_path):
    seed(factory)
    config = tmp_path / "hotline.toml"
    config.write_text(f'[paths]\nvar = "{tmp_path / "var"}"\n', encoding="utf-8")
    runtime = Runtime(load_settings(config, environ={}), factory)
    # Monday 2026-11-09: one caller answered after 10 s, one moved on by overflow after 300 s.
    body = asyncio.run(runtime.report(date(2026, 11, 9)))
    assert body == {"date": "2026-11-09", "offered": 2, "answered": 1, "abandoned": 0,
                    "answer_rate": 0.5, "mean_wait_s": 155.0, "aht_s": body["aht_s"]}
    assert body["aht_s"] > 200  # talk 200 s plus the measured wrap-up
    stored = json.loads((tmp_path / "var" / "reports" / "daily-2026-11-09.json").read_text())
    assert stored == body
    quiet = asyncio.run(runtime.report(date(2026, 11, 20)))
    assert (quiet["offered"], quiet["answer_rate"]) == (0, None)
