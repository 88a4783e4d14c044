"""`hotline flows simulate --lookup` takes caller facts from the real ledger."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from hotline.store.migrate import upgrade
from hotline.store.session import open_session
from hotline.store.tables import KnownCaller

ROOT = Path(__file__).resolve().parents[2]


def test_simulate_uses_known_green_channel_caller(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    upgrade(url)
    with open_session(url) as session:
        session.add(KnownCaller(number="13911112222", green_channel=True,
                                green_reasons=["disabled"], added_at=datetime.now(UTC)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update({"HOTLINE_DATABASE_URL": url, "HOTLINE_PATHS_FLOWS": str(ROOT / "ivr_flows")})

    def run(number):
        return subprocess.run(
            [sys.executable, "-m", "hotline", "flows", "simulate", "main", "--lookup",
             "--caller", number, "--digits", "1 6", "--at", "2026-12-01T10:00"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    known = run("13911112222")
    assert known.returncode == 0, known.stderr
    assert "main/green_known" in known.stdout
    assert "green_reason=disabled" in known.stdout and "priority=green (绿色通道)" in known.stdout
    stranger = run("13700000000")
    assert stranger.returncode == 0
    assert "green_known" not in stranger.stdout and "priority=" not in stranger.stdout
