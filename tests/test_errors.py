import pickle

from hotline.errors import ConfigError, FlowError, HotlineError, NotFoundError
from hotline.ivr.loader import Problem


def test_errors_survive_pickling_with_code_params_and_message():
    err = NotFoundError("store.not_found", what="工号", key="1001")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is NotFoundError
    assert back.code == "store.not_found" and dict(back.params) == {"what": "工号", "key": "1001"}
    assert str(back) == "找不到工号 1001"
    flow = FlowError([Problem("a.yaml", 3, 5, "play", "flow.empty_file")])
    back_flow = pickle.loads(pickle.dumps(flow))
    assert back_flow.problems == flow.problems and str(back_flow) == "呼叫流程有 1 处问题"


def test_unknown_code_still_shows_the_code():
    assert str(HotlineError("x.y", a=1)) == "x.y {'a': 1}"
    assert str(ConfigError("config.unknown_env", var="HOTLINE_X")) == (
        "配置错误: 环境变量 HOTLINE_X 不对应任何配置项")


def test_cli_usage_errors_are_chinese_one_liners(capsys):
    from hotline.cli import main

    assert main(["nope"]) == 2
    err = capsys.readouterr().err
    assert err == "用法错误: 没有命令 nope\n运行 'hotline --help' 查看用法\n"
    assert main(["flows", "simulate", "main", "--hangup-at", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("用法错误: --hangup-at 的值 'x' 无效, 应为整数\n")
    assert "Traceback" not in err and "Usage:" not in err
