"""Chinese (zh-CN) wording for error codes; only the edges call this.

The core raises :class:`~hotline.errors.HotlineError` with a code and params; the CLI, the API
and the console render them here so one code always reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MESSAGES: dict[str, str] = {
    "hotline.error": "内部错误",
    # configuration
    "config.invalid": "配置无效",
    "config.invalid_value": "配置错误: {key} = {value} (来自 {source}): {expected}",
    "config.unknown_env": "配置错误: 环境变量 {var} 不对应任何配置项",
    "config.file_missing": "配置错误: 找不到配置文件 {path}",
    "config.file_syntax": "配置错误: {path} 不是有效的 TOML: {detail}",
    "config.unknown_flow": "配置错误: lines.{line} = {flow!r}: 没有这个呼叫流程 (现有: {known})",
    "config.unknown_queue": "配置错误: queues.{queue}.overflow = {target!r}: 没有这个队列",
    # flows
    "flow.invalid": "呼叫流程有 {count} 处问题",
    "flow.not_found": "找不到呼叫流程 {flow!r} (现有: {known})",
    "flow.path_missing": "找不到路径 {path}",
    # storage
    "store.error": "数据库错误: {detail}",
    "store.unreachable": "无法连接数据库 {url}: {detail}",
    "store.outdated": ("数据库结构不是最新版本 (当前 {current}, 需要 {head}); "
                       "请运行 hotline db upgrade"),
    "store.not_found": "找不到{what} {key}",
    "store.conflict": "{what} {key} 已存在",
    "store.bad_url": "数据库地址无效 {url}: {detail}",
    "store.too_new": "数据库版本 {current} 比本程序新 (本程序最新 {head}); 请升级 hotline 后再运行",
    "store.integrity": "数据不符合数据库约束: {detail}",
    # users and auth
    "auth.denied": "无权执行此操作",
    "auth.bad_password": "密码不符合要求: {reason}",
    "auth.bad_skill": "技能格式应为 代码:熟练度(1-5), 例如 labor:4, 实际为 {value!r}",
    "auth.bad_credentials": "工号或密码错误",
    "auth.disabled": "账号 {work_id} 已停用",
    "auth.password_mismatch": "两次输入的密码不一致",
    # domain values
    "domain.bad_value": "{field} {value!r} 无效: {expected}",
    # tools
    "tool.failed": "{tool} 执行失败: {detail}",
    "tool.missing": "找不到程序 {tool}; 请安装 Debian 软件包 {package} (make run 会自动安装)",
    # simulation
    "sim.bad_time": "--at 时间格式应为 2026-12-31T23:30, 实际为 {value!r}",
    "sim.bad_script": "--digits 中的 {token!r} 无效: 只能是按键 0-9 * #、静音 _、挂机 ! "
                      "或说话 say:词语",
}


# Vosk models (hotline.speech.models)
MESSAGES.update({
    "speech.model.error": "语音模型错误",
    "speech.model.manifest_missing": "找不到模型清单 {path}",
    "speech.model.manifest_syntax": "模型清单 {path} 不是有效的 TOML: {detail}",
    "speech.model.manifest_invalid": "模型清单 {path} 有 {count} 处问题: {problems}",
    "speech.model.bad_name": "模型名 {name!r} 无效: 只能包含字母、数字和 . _ -, 且不能以 . 开头",
    "speech.model.not_installed": "语音模型 {name} 未安装 (应在 {path}); 请运行 {command}",
    "speech.model.unknown": ("未知的语音模型 {name}: 模型清单中没有 (已知: {known}); "
                             "离线安装请把模型解压到 {path}"),
    "speech.model.not_found": "找不到模型文件夹 {path}",
    "speech.model.broken": "语音模型 {name} ({path}) 不完整: {problems}; 请运行 {command} 重新安装",
    "speech.model.bad_layout": "{path} 不是完整的 Vosk 模型: {problems}",
    "speech.model.busy": "语音模型 {name} 正在由另一个进程下载 (锁文件 {lock})",
    "speech.model.network": ("下载 {url} 失败: {detail} (已下载 {done}/{total} 字节, "
                             "已保留; 再次运行 {command} 会接着下载)"),
    "speech.model.http_status": "下载 {url} 失败: 服务器返回 HTTP {status}",
    "speech.model.size_mismatch": ("{url} 的大小为 {actual} 字节, 清单要求 {expected} 字节; "
                                   "文件可能已被更换, 已拒绝并删除下载的部分"),
    "speech.model.checksum": ("{name} 校验失败: sha256 为 {actual}, 清单要求 {expected}; "
                              "已删除下载的文件, 未安装"),
    "speech.model.bad_zip": "{name} 的压缩包无法解压: {detail}",
    "speech.model.unsafe_zip": "{name} 的压缩包含有不安全的路径 {member!r}, 已拒绝",
    "speech.model.disk_full": "磁盘空间不足: 解压 {name} 约需 {need} 字节, {path} 只剩 {free} 字节",
    "speech.model.io": "无法写入 {path}: {detail}",
})

def render(code: str, params: Mapping[str, Any]) -> str:
    """The Chinese message for an error code; unknown codes still show the code."""
    template = MESSAGES.get(code)
    if template is None:
        return f"{code} {dict(params)}" if params else code
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return f"{template} {dict(params)}"


def expectation(err: Mapping[str, Any]) -> str:
    """Turn one pydantic error into a Chinese "what was expected" phrase."""
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    simple = {
        "missing": "缺少必填项",
        "extra_forbidden": "未知的配置项",
        "int_type": "应为整数",
        "int_parsing": "应为整数",
        "int_from_float": "应为整数",
        "float_type": "应为数字",
        "float_parsing": "应为数字",
        "bool_type": "应为 true 或 false",
        "bool_parsing": "应为 true 或 false",
        "string_type": "应为字符串",
        "list_type": "应为列表",
        "tuple_type": "应为列表",
        "dict_type": "应为映射 (键: 值)",
        "model_type": "应为映射 (键: 值)",
        "model_attributes_type": "应为映射 (键: 值)",
        "path_type": "应为路径字符串",
        "string_too_short": "不能为空",
        "value_error": "值无效",
    }
    if kind == "greater_than_equal":
        return f"应 ≥ {ctx.get('ge')}"
    if kind == "greater_than":
        return f"应 > {ctx.get('gt')}"
    if kind == "less_than_equal":
        return f"应 ≤ {ctx.get('le')}"
    if kind == "less_than":
        return f"应 < {ctx.get('lt')}"
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return "应为以下之一: " + expected
    if kind == "value_error" and str(ctx.get("error", "")) == "tz":
        return "应为 IANA 时区名, 例如 Asia/Shanghai"
    if kind == "value_error" and ctx.get("error"):
        return str(ctx["error"])
    return simple.get(kind, str(err.get("msg", kind)))

MESSAGES.update({
    "serve.port_busy": ("无法监听 {host}:{port}: {detail} "
                        "(端口可能已被占用; 可用 HOTLINE_API_PORT 换一个)"),
})

MESSAGES.update({
    "telephony.protocol": "媒体进程消息格式错误: {detail}",
})

MESSAGES.update({
    "telephony.worker_failed": ("媒体进程 {worker} (SIP 端口 {port}) 未能启动: {detail} "
                                "(端口被占用时可修改 telephony.worker_sip_port_base)"),
})

MESSAGES.update({
    # the SIP front (Kamailio), hotline/telephony/front.py
    "front.bad_value": "SIP 前端配置错误 ({count} 处): {problems}",
    "front.port_busy": ("SIP 前端无法监听 {host}:{port} ({transport}): 端口已被占用 "
                        "(可用 HOTLINE_SIP_PORT 换一个端口)"),
    "front.bad_config": "Kamailio 拒绝了生成的配置 {path}: {detail}",
    "front.failed": "SIP 前端 (Kamailio) 启动失败: {detail} (完整日志: {log})",
    "front.rpc": "无法通过控制接口操作 SIP 前端 ({method}): {detail}",
})

MESSAGES.update({
    # lawyers' call control, hotline/conversation.py
    "call.not_found": "通话 {call} 不存在或已结束",
    "call.bad_state": "当前通话状态 ({state}) 不能执行此操作 ({action})",
    "call.bad_target": "转接目标无效: {target} (应为 SIP 地址或电话号码)",
})

MESSAGES.update({
    "telephony.tap_stream": "音频分流数据流错误: {detail}",
    "speech.control": "语音服务控制消息错误: {detail}",
    "config.text_rules": "文本规则文件有 {count} 处问题 ({files})",
})

MESSAGES.update({
    # the ACD's lawyer state machine, hotline/acd/agents.py
    "agent.illegal_transition": ("律师 {agent} 当前状态 ({status}/{state}) 不允许此操作: "
                                 "{event}"),
})

MESSAGES.update({
    # the agent API, hotline/api
    "auth.missing_token": "未登录: 请先登录 (Authorization: Bearer <token>)",
    "auth.invalid_token": "登录已失效, 请重新登录",
    "auth.too_many_attempts": "登录失败次数过多, 请 {minutes} 分钟后再试",
})

MESSAGES.update({
    "agent.no_phone": "律师 {agent} 未设置话机 (SIP 地址), 无法签入",
    "agent.not_logged_in": "律师 {agent} 未签入",
})

MESSAGES.update({
    "telephony.disabled": "本节点未启用电话功能 (telephony.enabled = false)",
})

MESSAGES.update({
    # tickets after the call, hotline/store/tickets.py
    "ticket.not_found": "工单 {ticket} 不存在",
    "ticket.closed": "工单 {ticket} 已{status}, 不能再修改话后整理",
    "ticket.incomplete": "话后整理未完成: {problems}",
})

MESSAGES.update({
    "call.lawyer_busy": "律师 {lawyer} 未签入或正忙, 无法转接",
    "offer.not_found": "来电 {call} 已不再等待您接听",
    "desk.syntax": "服务目录 {path} 不是有效的 YAML: {detail}",
    "desk.invalid": "服务目录 {path} 有误: {where}: {detail}",
    "offer.answer_on_phone": "来电 {call} 正在您的话机上振铃, 请在话机上接听",
})

MESSAGES.update({
    # the roster, hotline/roster/
    "roster.error": "排班错误: {detail}",
    "roster.infeasible": "无法排出满足全部硬性规则的班表, 原因: {summary}",
    "roster.swap_invalid": "换班不符合排班规则: {summary}",
    "roster.templates": "班次模板文件有 {count} 处问题: {summary}",
    "roster.lawyers": "律师名单文件有 {count} 处问题: {summary}",
    "roster.not_found": "没有 {what}: {key}",
    "roster.published": "{month} 的班表已发布; 调整请用 --replan (尽量少改动)",
    "roster.not_published": "{month} 还没有已发布的班表",
    "roster.bad_month": "月份格式应为 YYYY-MM: {value}",
})
