import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hotline.config import Settings, load_settings
from hotline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_embedded_defaults_need_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(environ={})
    assert s.database_url == f"sqlite:///{tmp_path / 'var' / 'hotline.db'}"
    assert (s.sip.host, s.sip.port) == ("127.0.0.1", 5060)
    assert (s.api.host, s.api.port) == ("127.0.0.1", 8348)
    assert s.path("recordings") == tmp_path / "recordings"
    assert s.path("flows") == tmp_path / "ivr_flows"
    assert str(s.tz) == "Asia/Shanghai"


def test_documented_file_lists_every_key_with_its_default():
    documented = tomllib.loads((ROOT / "docs" / "hotline.toml").read_text(encoding="utf-8"))
    parsed = Settings.model_validate(documented)
    defaults = Settings()
    assert parsed.model_dump(exclude={"base_dir"}) == defaults.model_dump(exclude={"base_dir"})

    def keys(data, prefix=""):
        out = set()
        for k, v in data.items():
            if isinstance(v, dict) and k not in ("queues", "lines"):
                out |= keys(v, f"{prefix}{k}.")
            else:
                out.add(prefix + k)
        return out

    assert keys(defaults.model_dump(exclude={"base_dir"})) == keys(documented)


def test_file_then_environment_precedence(tmp_path):
    cfg = tmp_path / "hotline.toml"
    cfg.write_text('[api]\nport = 9000\nhost = "0.0.0.0"\n[paths]\nvar = "state"\n',
                   encoding="utf-8")
    s = load_settings(cfg, environ={"HOTLINE_API_PORT": "9100"})
    assert s.api.port == 9100  # environment beats the file
    assert s.api.host == "0.0.0.0"  # the file beats the default
    assert s.path("var") == tmp_path / "state"  # relative to the file's folder


def test_environment_values_are_typed():
    s = load_settings(environ={"HOTLINE_DATABASE_ECHO": "true",
                               "HOTLINE_SIP_TRANSPORTS": '["udp"]',
                               "HOTLINE_TIMEZONE": "Asia/Urumqi",
                               "HOTLINE_DATABASE_URL": "postgresql://u@h/db"})
    assert s.database.echo is True
    assert s.sip.transports == ("udp",)
    assert s.timezone == "Asia/Urumqi"
    assert s.database_url == "postgresql://u@h/db"


@pytest.mark.parametrize(("env", "message"), [
    ({"HOTLINE_API_PORT": "abc"},
     "配置错误: api.port = 'abc' (来自 HOTLINE_API_PORT): 应为整数"),
    ({"HOTLINE_API_PORT": "70000"},
     "配置错误: api.port = 70000 (来自 HOTLINE_API_PORT): 应 ≤ 65535"),
    ({"HOTLINE_TIMEZONE": "Mars/Olympus"},
     "配置错误: timezone = 'Mars/Olympus' (来自 HOTLINE_TIMEZONE): "
     "应为 IANA 时区名, 例如 Asia/Shanghai"),
    ({"HOTLINE_LOG_LEVEL": "LOUD"},
     "配置错误: log_level = 'LOUD' (来自 HOTLINE_LOG_LEVEL): "
     "应为以下之一: DEBUG, INFO, WARNING, ERROR"),
    ({"HOTLINE_APIPORT": "1"}, "配置错误: 环境变量 HOTLINE_APIPORT 不对应任何配置项"),
])
def test_bad_environment_value_names_key_value_and_expectation(env, message):
    with pytest.raises(ConfigError) as err:
        load_settings(environ=env)
    assert str(err.value) == message


def test_bad_file_values(tmp_path):
    cfg = tmp_path / "hotline.toml"
    cfg.write_text("[queues.labor]\nname = '劳动'\nstrategy = 'fastest'\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, environ={})
    assert str(err.value).startswith(
        f"配置错误: queues.labor.strategy = 'fastest' (来自 {cfg}): 应为以下之一: ring-all,")
    cfg.write_text("[api]\nprot = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, environ={})
    assert str(err.value) == f"配置错误: api.prot = 1 (来自 {cfg}): 未知的配置项"
    cfg.write_text("[api\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, environ={})
    assert str(err.value).startswith(f"配置错误: {cfg} 不是有效的 TOML")


def _cli(args, cwd, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "hotline", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_reports_bad_value_in_one_line_with_exit_code_2(tmp_path):
    proc = _cli(["config", "check"], tmp_path, {"HOTLINE_API_PORT": "eighty"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "配置错误: api.port = 'eighty' (来自 HOTLINE_API_PORT): 应为整数"
    assert "Traceback" not in proc.stderr + proc.stdout
    proc = _cli(["--config", "missing.toml", "config", "check"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "配置错误: 找不到配置文件 missing.toml"


def test_cli_config_show_and_check(tmp_path):
    proc = _cli(["config", "check"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "配置正确" in proc.stdout
    proc = _cli(["config", "show"], tmp_path, {"HOTLINE_API_PORT": "8500"})
    assert proc.returncode == 0
    assert '"port": 8500' in proc.stdout
