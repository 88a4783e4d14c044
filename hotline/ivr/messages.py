"""Chinese wording of flow problems (what ``hotline flows check`` prints after the location)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hotline.ivr.loader import Problem

FLOW_MESSAGES: dict[str, str] = {
    "flow.yaml_syntax": "YAML 语法错误: {detail}",
    "flow.empty_file": "文件为空",
    "flow.too_large": "文件过大 ({size} 字节, 上限 {limit} 字节)",
    "flow.unreadable": "无法读取文件: {detail}",
    "flow.not_utf8": "文件不是 UTF-8 编码 (第 {offset} 字节)",
    "flow.bad_key": "键必须是简单的文字",
    "flow.duplicate_key": "重复的键 {key!r}",
    "flow.not_mapping": "应为映射 (键: 值)",
    "flow.missing_key": "缺少必填项 {key!r}",
    "flow.unknown_top_key": "未知的顶层属性 {key!r} (可用: {allowed})",
    "flow.bad_flow_id": "流程名 {value!r} 无效: 只能用小写字母、数字和下划线, 以字母开头",
    "flow.duplicate_flow": "流程名 {flow!r} 已在 {other} 中定义",
    "flow.no_nodes": "nodes 不能为空",
    "flow.node_not_mapping": "节点 {node!r} 应为映射, 包含一个动词",
    "flow.bad_node_id": "节点名 {node!r} 无效: 只能用字母、数字、下划线和连字符",
    "flow.unknown_verb": "未知动词 {verb!r}{hint} (可用: {allowed})",
    "flow.no_verb": "节点 {node!r} 没有动词 (可用: {allowed})",
    "flow.two_verbs": "一个节点只能有一个动词, 这里有 {verbs}",
    "flow.unknown_node_key": "未知属性 {key!r}{hint} (节点可用: 动词, next, note)",
    "flow.unknown_property": "未知属性 {name!r}{hint} (可用: {allowed})",
    "flow.missing_property": "缺少必填属性",
    "flow.wrong_value": "值 {value} 无效: {expected}",
    "flow.play_one_source": "prompt、file、say 三者必须且只能给出一个",
    "flow.enqueue_target": "必须给出 queue 或 skills",
    "flow.transfer_target": "number、lawyer、lawyer_var 三者必须且只能给出一个",
    "flow.bad_regex": "不是有效的正则表达式",
    "flow.next_not_allowed": "{verb} 之后不能有 next ({why})",
    "flow.unknown_target": "没有节点 {target!r}{hint}",
    "flow.unreachable": "节点 {node!r} 从 start 出发永远到不了",
    "flow.silent_loop": "无需任何按键即可无限循环: {cycle}",
    "flow.no_way_out": "{verb} 节点 {node!r} 没有出口: 无论来电人按什么, 通话都无法结束或转出",
    "flow.gather_no_otherwise": "缺少 otherwise: 重试用尽或无输入时无路可走",
    "flow.unknown_prompt": "提示音目录中没有 {prompt!r}{hint}",
    "flow.missing_file": "找不到音频文件 {path}",
    "flow.not_wav": "音频文件应为 .wav: {path}",
    "flow.unknown_queue": "没有队列 {queue!r}{hint} (配置中的队列: {known})",
    "flow.unknown_calendar": "没有节假日日历 {calendar!r}{hint} (现有: {known})",
    "flow.bad_schedule": "{detail}",
    "flow.unknown_flow": "没有流程 {flow!r}{hint} (现有: {known})",
    "flow.subflow_cycle": "子流程循环调用: {cycle}",
    "flow.engine_variable": "{name} 由语音导航自动写入, set 不能设置它",
    "flow.unknown_variable": "未知变量 {name!r}{hint} (可用: {known})",
    "flow.bad_field_value": "{field} 的值 {value!r} 无效 (可用: {allowed})",
    "flow.bad_condition": "条件 {name} 的写法无效: {detail}",
    "flow.bad_route_key": ("按键 {key!r} 无效: 只能由 0-9 * # 组成, "
                           "且不超过 max_digits={max_digits} 位"),
    "flow.bad_anytime_key": "anytime 按键 {key!r} 无效: 应为单个 0-9 * #",
    "flow.speech_not_menu": "speech 只能用于菜单 (routes), 不能用于号码输入 (store/pattern)",
    "flow.speech_unknown_route": "speech 的按键 {key!r} 不在本菜单的 routes 中 (现有: {routes})",
    "flow.speech_empty_phrase": "说法不能为空",
    "flow.speech_phrase_too_long": "说法 {phrase!r} 太长 (最多 {limit} 个字)",
    "flow.speech_two_routes": "说法 {phrase!r} 已用于按键 {other!r}: 一个说法只能对应一个按键",
    "flow.speech_too_many": "本菜单共有 {count} 个说法, 最多 {limit} 个",
    "flow.speech_option_alone": "{name} 只在有 speech 时才有用",
    "flow.min_over_max": "min_digits ({min}) 大于 max_digits ({max})",
    "flow.transfer_needs_fallback": "转接律师时必须给出 fallback (律师不在线或未接听时去哪里)",
    "flow.prompt_entry": "提示音 {prompt!r} 必须有 text 或 file",
    "flow.calendar_data": "节假日日历数据错误: {detail}",
    "flow.missing_catalogue": "找不到提示音目录 prompts.yaml",
}


def flow_message(problem: Problem) -> str:
    """Render one problem's message (without its location)."""
    template = FLOW_MESSAGES.get(problem.code, problem.code)
    params: dict[str, Any] = {"hint": "", **problem.params}
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return f"{template} {problem.params}"
