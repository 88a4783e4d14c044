"""The real `hotline` CLI on bad input: one clear Chinese line, exit code 1, never a traceback.

Every test runs ``python -m hotline`` as a subprocess in a temporary directory with the
``HOTLINE_*`` environment cleared, exactly as an operator would.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SHIPPED = Path(__file__).resolve().parents[1] / "ivr_flows"

PROMPTS = """\
prompts:
  welcome: 您好，这里是12348公共法律服务热线。
  goodbye: 感谢您的来电，再见。
"""

SOUND = """\
flow: main
start: welcome
nodes:
  welcome:
    play: welcome
    next: bye
  bye:
    hangup: goodbye
"""


def hotline(cwd, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    return subprocess.run([sys.executable, "-m", "hotline", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)


@pytest.fixture
def folder(tmp_path):
    """``flows/`` with a sound catalogue, so a checked file is judged on its own merits."""
    root = tmp_path / "flows"
    root.mkdir()
    (root / "prompts.yaml").write_text(PROMPTS, encoding="utf-8")
    return root


def assert_one_problem(result, expected_line):
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 1
    assert result.stdout.splitlines() == [expected_line]
    assert result.stderr.splitlines() == ["发现 1 处问题"]


def test_sound_file_passes(tmp_path, folder):
    (folder / "main.yaml").write_text(SOUND, encoding="utf-8")
    result = hotline(tmp_path, "flows", "check", "flows/main.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["检查通过: 1 个流程, 2 个节点, 2 条提示音"]


def test_malformed_yaml(tmp_path, folder):
    (folder / "bad.yaml").write_text("flow: main\nstart: [welcome\nnodes: {}\n", encoding="utf-8")
    result = hotline(tmp_path, "flows", "check", "flows/bad.yaml")
    assert_one_problem(
        result, "flows/bad.yaml:3:6: yaml: YAML 语法错误: expected ',' or ']', but got ':'")


def test_flow_referencing_a_missing_wav(tmp_path, folder):
    flow = SOUND.replace("    play: welcome\n", "    play:\n      file: audio/welcome.wav\n")
    (folder / "main.yaml").write_text(flow, encoding="utf-8")
    result = hotline(tmp_path, "flows", "check", "flows/main.yaml")
    assert_one_problem(result, "flows/main.yaml:6:13: play.file: 找不到音频文件 audio/welcome.wav")


def test_non_utf8_file(tmp_path, folder):
    (folder / "gbk.yaml").write_bytes("flow: main\nname: 主流程\n".encode("gbk"))
    result = hotline(tmp_path, "flows", "check", "flows/gbk.yaml")
    # "主" in GBK is 0xD6 0xF7: 0xF7 cannot continue a UTF-8 sequence, so byte 18 (0xD6) is bad.
    assert_one_problem(result, "flows/gbk.yaml:2:7: file: 文件不是 UTF-8 编码 (第 18 字节)")


def test_ten_megabyte_file(tmp_path, folder):
    path = folder / "huge.yaml"
    line = b"# " + b"x" * 1021 + b"\n"
    with path.open("wb") as fh:
        for _ in range(10 * 1024):
            fh.write(line)
    size = path.stat().st_size
    assert size == 10 * 1024 * 1024
    result = hotline(tmp_path, "flows", "check", "flows/huge.yaml")
    assert_one_problem(
        result, f"flows/huge.yaml:1:1: file: 文件过大 ({size} 字节, 上限 1000000 字节)")


def test_empty_file(tmp_path, folder):
    (folder / "empty.yaml").write_bytes(b"")
    result = hotline(tmp_path, "flows", "check", "flows/empty.yaml")
    assert_one_problem(result, "flows/empty.yaml:1:1: file: 文件为空")


def test_missing_path(tmp_path):
    result = hotline(tmp_path, "flows", "check", "no_such_dir/")
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["错误: 找不到路径 no_such_dir"]


def test_shipped_folder_passes(tmp_path):
    result = hotline(tmp_path, "flows", "check", str(SHIPPED))
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("检查通过: 3 个流程, ")


def test_simulate_rejects_a_bad_digit_token(tmp_path):
    result = hotline(tmp_path, "flows", "simulate", "main", "--digits", "1 x",
                     "--flows-dir", str(SHIPPED))
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "错误: --digits 中的 'x' 无效: 只能是按键 0-9 * #、静音 _、挂机 ! 或说话 say:词语",
    ]


def test_simulate_rejects_a_bad_time(tmp_path):
    result = hotline(tmp_path, "flows", "simulate", "main", "--at", "nonsense",
                     "--flows-dir", str(SHIPPED))
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "错误: --at 时间格式应为 2026-12-31T23:30, 实际为 'nonsense'",
    ]


def test_simulate_unknown_flow_lists_known_flows(tmp_path):
    result = hotline(tmp_path, "flows", "simulate", "mian", "--flows-dir", str(SHIPPED))
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "错误: 找不到呼叫流程 'mian' (现有: after_hours, main, sme)",
    ]
