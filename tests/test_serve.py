"""`hotline serve` as a real process: starts, answers /health, reloads, stops cleanly."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def site(tmp_path, port_block):
    flows = tmp_path / "ivr_flows"
    shutil.copytree(ROOT / "ivr_flows", flows)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update({
        "HOTLINE_PATHS_FLOWS": str(flows),
        "HOTLINE_PATHS_VAR": str(tmp_path / "var"),
        "HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'hotline.db'}",
        "HOTLINE_API_PORT": str(port),
        "HOTLINE_SIP_PORT": str(port_block(1)),
        "HOTLINE_TELEPHONY_WORKERS": "2",
        "HOTLINE_TELEPHONY_WORKER_SIP_PORT_BASE": str(port_block(2)),
        "HOTLINE_TELEPHONY_RTP_PORT_BASE": str(port_block(80)),
    })
    return {"dir": tmp_path, "flows": flows, "env": env, "port": port}


def _hotline(site, *args, **kw):
    return subprocess.run([sys.executable, "-m", "hotline", *args], cwd=site["dir"],
                          env=site["env"], capture_output=True, text=True, timeout=120, **kw)


def _start(site):
    return subprocess.Popen([sys.executable, "-m", "hotline", "serve"], cwd=site["dir"],
                            env=site["env"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _wait_health(site, proc, timeout=90.0):
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{site['port']}/health"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {proc.stdout.read()}")
        try:
            return httpx.get(url, timeout=1.0).json()
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("serve did not answer /health in time")


def _log(site) -> str:
    return (site["dir"] / "var" / "log" / "hotline.log").read_text(encoding="utf-8")


def test_serve_starts_reloads_and_stops(site):
    assert _hotline(site, "db", "upgrade").returncode == 0
    proc = _start(site)
    try:
        health = _wait_health(site, proc)
        assert health["status"] == "ok"
        assert health["flows"] == ["after_hours", "main", "sme"]
        log = _log(site)
        for line in ("数据库就绪", "呼叫流程已加载: 3 个", "提示音就绪: 29 条", "API 已启动",
                     "媒体进程已启动: 2 个 (每进程 4 路, 接入 1 路来电)",
                     "SIP 前端 (Kamailio) 已启动",
                     # no Vosk model here: one line says so and names the install command
                     "本次运行不做实时转写", "hotline models download vosk-model-small-cn-0.22",
                     "定时任务已启动: 夜间批量转写"):
            assert line in log
        # A broken flow on reload: the old flows stay in service.
        main = site["flows"] / "main.yaml"
        good = main.read_text(encoding="utf-8")
        main.write_text(good.replace("next: category\n", "next: categroy\n"), encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "重新加载失败" not in _log(site) and time.monotonic() < deadline:
            time.sleep(0.1)
        log = _log(site)
        assert "呼叫流程重新加载失败, 继续使用原有流程" in log
        assert "main.yaml:" in log and "没有节点 'categroy', 是否想写 'category'?" in log
        assert _wait_health(site, proc)["flows"] == ["after_hours", "main", "sme"]
        # Fixed again: the reload succeeds.
        main.write_text(good, encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "呼叫流程已重新加载" not in _log(site) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "呼叫流程已重新加载: 3 个" in _log(site)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "收到 SIGTERM, 正在停止" in out and "已停止" in out
    assert "SIP 前端已停止" in out and "媒体进程已停止" in out
    assert "Traceback" not in out


def test_serve_stops_on_ctrl_c(site):
    assert _hotline(site, "db", "upgrade").returncode == 0
    proc = _start(site)
    try:
        _wait_health(site, proc)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "收到 SIGINT" in out and "Traceback" not in out


def test_serve_refuses_a_broken_flow(site):
    assert _hotline(site, "db", "upgrade").returncode == 0
    (site["flows"] / "sme.yaml").write_text("flow: sme\nstart: a\nnodes:\n  a:\n    plya: x\n",
                                            encoding="utf-8")
    proc = _hotline(site, "serve")
    assert proc.returncode == 1
    assert "sme.yaml:5:5: plya: 未知动词 'plya', 是否想写 'play'?" in proc.stderr
    assert "错误: 呼叫流程有" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_refuses_an_unmigrated_database(site):
    proc = _hotline(site, "serve")
    assert proc.returncode == 1
    assert "hotline db upgrade" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_reports_a_busy_port(site):
    assert _hotline(site, "db", "upgrade").returncode == 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", site["port"]))
        busy.listen()
        proc = _hotline(site, "serve")
    assert proc.returncode == 1
    assert f"无法监听 127.0.0.1:{site['port']}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_reports_a_busy_worker_port(site):
    assert _hotline(site, "db", "upgrade").returncode == 0
    port = int(site["env"]["HOTLINE_TELEPHONY_WORKER_SIP_PORT_BASE"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", port))
        proc = _hotline(site, "serve")
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("错误")]
    assert len(lines) == 1
    assert lines[0].startswith(f"错误: 媒体进程 w1 (SIP 端口 {port}) 未能启动")
    assert "Traceback" not in proc.stderr


def test_serve_reports_a_busy_sip_front_port(site):
    assert _hotline(site, "db", "upgrade").returncode == 0
    port = int(site["env"]["HOTLINE_SIP_PORT"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", port))
        proc = _hotline(site, "serve")
    assert proc.returncode == 1
    assert f"错误: SIP 前端无法监听 127.0.0.1:{port} (udp): 端口已被占用" in proc.stderr
    assert "Traceback" not in proc.stderr
