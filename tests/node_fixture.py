"""A real `hotline serve` node for telephony and speech tests: free ports, its own folder,
cleaned up (a pytest plugin of tests/conftest.py)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def start_node(tmp_path, port_block):
    """``start_node(workers, legs_per_call, **env)`` → a running node: dir, sip, uri, db, env,
    proc; ``env`` keys are settings (``telephony_lawyer_uris=...`` → HOTLINE_TELEPHONY_...).
    """
    procs = []
    logs = []

    def start(workers=2, legs_per_call=2, **extra_env):
        flows = tmp_path / "ivr_flows"
        shutil.copytree(ROOT / "ivr_flows", flows)
        sip, api = port_block(1), port_block(1)
        db = tmp_path / "var" / "hotline.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        env.update({
            "HOTLINE_PATHS_FLOWS": str(flows), "HOTLINE_PATHS_VAR": str(tmp_path / "var"),
            "HOTLINE_PATHS_RECORDINGS": str(tmp_path / "rec"),
            "HOTLINE_DATABASE_URL": f"sqlite:///{db}", "HOTLINE_API_PORT": str(api),
            "HOTLINE_SIP_PORT": str(sip), "HOTLINE_TELEPHONY_WORKERS": str(workers),
            "HOTLINE_TELEPHONY_WORKER_SIP_PORT_BASE": str(port_block(workers)),
            "HOTLINE_TELEPHONY_RTP_PORT_BASE": str(port_block(40 * workers)),
            "HOTLINE_TELEPHONY_QUEUE_WAIT": "5",
            "HOTLINE_TELEPHONY_LEGS_PER_CALL": str(legs_per_call),
        })
        env.update({f"HOTLINE_{k.upper()}": str(v) for k, v in extra_env.items()})
        subprocess.run([sys.executable, "-m", "hotline", "db", "upgrade"], cwd=tmp_path,
                       env=env, check=True, capture_output=True)
        node = {"dir": tmp_path, "sip": sip, "uri": f"sip:12348@127.0.0.1:{sip}", "db": db,
                "env": env, "api": api}
        launch(node)
        return node

    def launch(node):
        """Start (or start again, after a crash) ``hotline serve`` for ``node``."""
        tmp, env, api = node["dir"], node["env"], node["api"]
        log = (tmp / "serve.log").open("ab")
        logs.append(log)
        proc = subprocess.Popen([sys.executable, "-m", "hotline", "serve"], cwd=tmp,
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        node["proc"] = proc
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp / "serve.log").read_text()
            try:
                httpx.get(f"http://127.0.0.1:{api}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, (tmp / "serve.log").read_text()
                time.sleep(0.2)
        return node

    start.again = launch
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    # A test that killed the coordinator may leave its workers and Kamailio behind.
    for pid_file in (tmp_path / "var" / "run").glob("worker-*.pid"):
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    subprocess.run(["pkill", "-9", "-f", str(tmp_path / "var" / "kamailio" / "kamailio.cfg")],
                   check=False)
    for log in logs:
        log.close()
    if procs:
        out = (tmp_path / "serve.log").read_text()
        assert "Traceback" not in out, out
