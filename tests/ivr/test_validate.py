"""`check_folder`: every kind of flow problem, located and worded exactly as the operator sees it.

Each test builds a small folder (``flows/`` under a temporary working directory, so the rendered
file names are short and stable), runs the validator with default settings and compares the
rendered ``file:line:col: where: message`` lines in full.
"""

import shutil
import textwrap
import wave
from pathlib import Path

import pytest

from hotline.config import load_settings
from hotline.ivr.validate import check_folder

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "ivr_flows"

PROMPTS = """\
prompts:
  welcome: 您好，这里是12348公共法律服务热线。
  menu: 劳动争议请按1，其他问题请按9。
  goodbye: 感谢您的来电，再见。
  no_input: 对不起，没有收到您的按键。
"""

# A sound flow; `extra` (reached only by key 9, so a broken `extra` strands nothing) holds the
# node under test. Its body starts on line 20.
BASE = """\
flow: main
start: welcome
nodes:
  welcome:
    play: welcome
    next: menu
  menu:
    gather:
      prompt: menu
      routes:
        "1": labor
        "9": extra
      otherwise: bye
  labor:
    enqueue:
      queue: labor
  bye:
    hangup: goodbye
  extra:
"""
F = "flows/main.yaml"


def with_extra(body: str) -> str:
    """BASE with ``body`` (written at column 1) as the `extra` node, from line 20."""
    return BASE + textwrap.indent(textwrap.dedent(body), "    ")


@pytest.fixture
def check(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    root = Path("flows")
    root.mkdir()
    (root / "audio").mkdir()
    with wave.open(str(root / "audio" / "ok.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x00" * 800)

    def run(flows, *, prompts=PROMPTS, calendars=False):
        if prompts is not None:
            (root / "prompts.yaml").write_text(prompts, encoding="utf-8")
        if calendars:
            (root / "calendars").mkdir()
            shutil.copy(SHIPPED / "calendars" / "china.yaml", root / "calendars" / "china.yaml")
        if isinstance(flows, str):
            flows = {"main.yaml": flows}
        for name, text in flows.items():
            (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
        _, problems = check_folder(root, settings)
        return [p.render() for p in problems]

    return run


# --- sound flows -----------------------------------------------------------------------------

def test_minimal_sound_flow_has_no_problems(check):
    assert check(with_extra("hangup: {}\n")) == []


def test_shipped_flow_folder_is_sound(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray hotline.toml may change the defaults
    settings = load_settings(environ={})
    fs, problems = check_folder(SHIPPED, settings)
    assert [p.render() for p in problems] == []
    assert set(fs.flows) == {"main", "after_hours", "sme"}


def test_gather_with_store_may_continue_at_next(check):
    assert check(with_extra("""\
        gather:
          prompt: menu
          store: case_no
          max_digits: 8
          otherwise: bye
        next: labor
        """)) == []


# --- the file and its YAML -------------------------------------------------------------------

def test_yaml_syntax_error(check):
    assert check("flow: main\nstart: [welcome\nnodes: {}\n") == [
        f"{F}:3:6: yaml: YAML 语法错误: expected ',' or ']', but got ':'",
    ]


def test_duplicate_key(check):
    assert check(BASE + "    hangup: {}\n  bye:\n    hangup: {}\n") == [
        f"{F}:21:3: nodes.bye: 重复的键 'bye'",
    ]


def test_unknown_top_level_key(check):
    assert check("version: 2\n" + with_extra("hangup: {}\n")) == [
        f"{F}:1:1: version: 未知的顶层属性 'version' "
        "(可用: anytime, description, flow, name, nodes, start, vars)",
    ]


def test_missing_start_and_nodes(check):
    assert check("flow: main\nname: 主流程\n") == [
        f"{F}:1:1: start: 缺少必填项 'start'",
        f"{F}:1:1: nodes: 缺少必填项 'nodes'",
    ]


def test_bad_flow_id(check):
    assert check(with_extra("hangup: {}\n").replace("flow: main", "flow: Main-Flow")) == [
        f"{F}:1:7: flow: 流程名 'Main-Flow' 无效: 只能用小写字母、数字和下划线, 以字母开头",
    ]


def test_duplicate_flow_id_across_two_files(check):
    flow = with_extra("hangup: {}\n")
    assert check({"a.yaml": flow, "b.yaml": flow}) == [
        "flows/b.yaml:1:7: flow: 流程名 'main' 已在 flows/a.yaml 中定义",
    ]


# --- node shape ------------------------------------------------------------------------------

VERB_LIST = ("play, gather, hours, set, branch, enqueue, transfer, voicemail, callback, survey, "
             "goto, subflow, hangup")


def test_node_that_is_not_a_mapping(check):
    assert check(BASE.replace("  extra:\n", "  extra: goodbye\n")) == [
        f"{F}:19:10: extra: 节点 'extra' 应为映射, 包含一个动词",
    ]


def test_unknown_verb_with_hint(check):
    assert check(with_extra("""\
        gahter:
          prompt: menu
          otherwise: bye
        """)) == [
        f"{F}:20:5: gahter: 未知动词 'gahter', 是否想写 'gather'? (可用: {VERB_LIST})",
    ]


def test_node_without_verb(check):
    assert check(with_extra("note: 还没写完\n")) == [
        f"{F}:19:3: extra: 节点 'extra' 没有动词 (可用: {VERB_LIST})",
    ]


def test_two_verbs_in_one_node(check):
    assert check(with_extra("play: goodbye\nhangup: {}\n")) == [
        f"{F}:21:5: hangup: 一个节点只能有一个动词, 这里有 play, hangup",
    ]


def test_unknown_node_key_suggests_next(check):
    assert check(with_extra("play: goodbye\nnxet: bye\n")) == [
        f"{F}:21:5: play.nxet: 未知属性 'nxet', 是否想写 'next'? (节点可用: 动词, next, note)",
    ]


GATHER_FIELDS = ("prompt, max_digits, min_digits, terminator, first_digit_timeout, "
                 "inter_digit_timeout, retries, no_input_prompt, invalid_prompt, routes, store, "
                 "pattern, otherwise, speech, speech_timeout, speech_prompt, speech_invalid_prompt")


def test_unknown_property_lists_allowed_names(check):
    assert check(with_extra("""\
        gather:
          prompt: menu
          timeout: 5
          otherwise: bye
        """)) == [
        f"{F}:22:7: gather.timeout: 未知属性 'timeout' (可用: {GATHER_FIELDS})",
    ]


def test_unknown_property_with_hint(check):
    assert check(with_extra("""\
        gather:
          prompt: menu
          retry: 3
          otherwise: bye
        """)) == [
        f"{F}:22:7: gather.retry: 未知属性 'retry', 是否想写 'retries'? (可用: {GATHER_FIELDS})",
    ]


def test_wrong_type(check):
    assert check(with_extra("""\
        gather:
          prompt: menu
          max_digits: many
          otherwise: bye
        """)) == [
        f"{F}:22:19: gather.max_digits: 值 'many' 无效: 应为整数",
    ]


def test_value_out_of_range(check):
    assert check(with_extra("""\
        gather:
          prompt: menu
          retries: -1
          otherwise: bye
        """)) == [
        f"{F}:22:16: gather.retries: 值 -1 无效: 应 ≥ 0",
    ]


def test_value_outside_closed_vocabulary(check):
    assert check(with_extra("hangup:\n  reason: rude\n")) == [
        f"{F}:21:15: hangup.reason: 值 'rude' 无效: 应为以下之一: "
        "normal, closed, invalid, emergency_advice",
    ]


def test_play_with_two_sources(check):
    assert check(with_extra("""\
        play:
          prompt: goodbye
          say: 再见
        """)) == [
        f"{F}:21:7: play: prompt、file、say 三者必须且只能给出一个",
    ]


def test_enqueue_without_queue_or_skills(check):
    assert check(with_extra("enqueue:\n  priority: urgent\n")) == [
        f"{F}:21:7: enqueue: 必须给出 queue 或 skills",
    ]


def test_transfer_with_two_targets(check):
    assert check(with_extra("""\
        transfer:
          number: "110"
          lawyer: "1001"
          fallback: bye
        """)) == [
        f"{F}:21:7: transfer: number、lawyer、lawyer_var 三者必须且只能给出一个",
    ]


def test_bad_regex_in_gather_pattern(check):
    assert check(with_extra("""\
        gather:
          prompt: menu
          store: case_no
          max_digits: 8
          pattern: "[0-9"
          otherwise: bye
        next: labor
        """)) == [
        f"{F}:24:16: gather.pattern: 不是有效的正则表达式",
    ]


def test_next_on_a_terminal_verb(check):
    # The stray `next` is refused; it must not also count as an edge (hangup → welcome would
    # otherwise make a silent loop welcome → menu → bye → welcome that cannot happen).
    flow = BASE.replace("    hangup: goodbye\n", "    hangup: goodbye\n    next: welcome\n")
    assert check(flow + "    hangup: {}\n") == [
        f"{F}:19:5: hangup.next: hangup 之后不能有 next (通话在这里离开语音导航)",
    ]


def test_next_on_a_menu_without_store(check):
    assert check(with_extra("""\
        gather:
          prompt: menu
          otherwise: bye
        next: labor
        """)) == [
        f"{F}:23:5: gather.next: gather 之后不能有 next "
        "(菜单按 routes/otherwise 走; 只有 store 时才用 next)",
    ]


def test_min_digits_over_max_digits(check):
    assert check(with_extra("""\
        gather:
          prompt: menu
          min_digits: 3
          max_digits: 2
          otherwise: bye
        """)) == [
        f"{F}:22:19: gather.min_digits: min_digits (3) 大于 max_digits (2)",
    ]


# --- targets ---------------------------------------------------------------------------------
# A mistyped target is one problem: the nodes it strands are not reported as unreachable, and
# the node holding it is not reported as having no way out.

def test_unknown_target_in_next(check):
    flow = with_extra("hangup: {}\n").replace("    next: menu", "    next: mneu")
    assert check(flow) == [
        f"{F}:6:11: play.next: 没有节点 'mneu', 是否想写 'menu'?",
    ]


def test_unknown_target_in_routes(check):
    flow = with_extra("hangup: {}\n").replace('"1": labor', '"1": labour')
    assert check(flow) == [
        f"{F}:11:14: gather.routes.1: 没有节点 'labour', 是否想写 'labor'?",
    ]


def test_unknown_target_in_otherwise(check):
    flow = with_extra("hangup: {}\n").replace("otherwise: bye", "otherwise: byebye")
    assert check(flow) == [
        f"{F}:13:18: gather.otherwise: 没有节点 'byebye', 是否想写 'bye'?",
    ]


def test_unknown_target_in_branch_goto(check):
    assert check(with_extra("""\
        branch:
          cases:
            - when: {language: cantonese}
              goto: labr
          otherwise: labor
        """)) == [
        f"{F}:23:17: branch.cases.0.goto: 没有节点 'labr', 是否想写 'labor'?",
    ]


def test_unknown_target_in_start(check):
    flow = with_extra("hangup: {}\n").replace("start: welcome", "start: welcom")
    assert check(flow) == [
        f"{F}:2:8: start: 没有节点 'welcom', 是否想写 'welcome'?",
    ]


def test_unknown_target_in_anytime(check):
    flow = with_extra("hangup: {}\n").replace("start: welcome\n",
                                              'start: welcome\nanytime:\n  "0": operator\n')
    assert check(flow) == [
        f"{F}:4:8: anytime.0: 没有节点 'operator'",
    ]


# --- graph -----------------------------------------------------------------------------------

def test_unreachable_node(check):
    assert check(with_extra("hangup: {}\n") + "  orphan:\n    hangup: goodbye\n") == [
        f"{F}:21:3: orphan: 节点 'orphan' 从 start 出发永远到不了",
    ]


def test_anytime_target_is_reachable(check):
    flow = with_extra("hangup: {}\n").replace("start: welcome\n",
                                              'start: welcome\nanytime:\n  "0": operator\n')
    assert check(flow + "  operator:\n    enqueue:\n      queue: general\n") == []


def test_silent_loop_play_goto_play(check):
    # Reported once, as a silent loop; "no way out" would only repeat it.
    assert check(with_extra("""\
        play: goodbye
        next: back
        """) + "  back:\n    goto: extra\n") == [
        f"{F}:19:3: extra: 无需任何按键即可无限循环: extra → back → extra",
    ]


def test_silent_loop_gather_otherwise_back_to_itself(check):
    flow = with_extra("goto: bye\n").replace("otherwise: bye", "otherwise: menu")
    assert check(flow) == [
        f"{F}:7:3: menu: 无需任何按键即可无限循环: menu → menu",
    ]


def test_node_with_no_way_out(check):
    # Every key of `menu` leads back to it; the caller can never leave.
    assert check("""\
        flow: main
        start: menu
        nodes:
          menu:
            gather:
              prompt: menu
              routes:
                "1": info
                "2": menu
          info:
            play: goodbye
            next: menu
        """) == [
        f"{F}:4:3: menu: gather 节点 'menu' 没有出口: 无论来电人按什么, 通话都无法结束或转出",
        f"{F}:6:7: gather.otherwise: 缺少 otherwise: 重试用尽或无输入时无路可走",
    ]


def test_gather_without_otherwise(check):
    assert check(with_extra("""\
        gather:
          prompt: menu
          routes:
            "1": labor
        """)) == [
        f"{F}:21:7: gather.otherwise: 缺少 otherwise: 重试用尽或无输入时无路可走",
    ]


# --- prompts and audio -----------------------------------------------------------------------

def test_unknown_prompt_with_hint(check):
    assert check(with_extra("play: goodby\n")) == [
        f"{F}:20:11: play.prompt: 提示音目录中没有 'goodby', 是否想写 'goodbye'?",
    ]


def test_unknown_prompt_in_a_list(check):
    assert check(with_extra("""\
        gather:
          prompt: [menu, no_inptu]
          otherwise: bye
        """)) == [
        f"{F}:21:22: gather.prompt: 提示音目录中没有 'no_inptu', 是否想写 'no_input'?",
    ]


def test_play_file_present(check):
    assert check(with_extra("play:\n  file: audio/ok.wav\n")) == []


def test_play_file_missing_wav(check):
    assert check(with_extra("play:\n  file: audio/missing.wav\n")) == [
        f"{F}:21:13: play.file: 找不到音频文件 audio/missing.wav",
    ]


def test_play_file_not_wav(check):
    assert check(with_extra("play:\n  file: audio/ok.mp3\n")) == [
        f"{F}:21:13: play.file: 音频文件应为 .wav: audio/ok.mp3",
    ]


def test_catalogue_entry_with_missing_file(check):
    prompts = PROMPTS + "  hold:\n    text: （等待音乐）\n    file: audio/hold.wav\n"
    assert check(with_extra("hangup: {}\n"), prompts=prompts) == [
        "flows/prompts.yaml:8:11: prompts.hold.file: 找不到音频文件 audio/hold.wav",
    ]


def test_missing_catalogue_is_one_problem(check):
    # Without a catalogue every prompt is unknown; that is one cause, reported once.
    assert check(with_extra("hangup: {}\n"), prompts=None) == [
        "flows/prompts.yaml:1:1: prompts: 找不到提示音目录 prompts.yaml",
    ]


# --- queues, calendars, schedules, subflows --------------------------------------------------

QUEUES = "general, labor, marriage_family, contract, legal_aid, mediation, sme, dialect"


def test_unknown_queue(check):
    assert check(with_extra("enqueue:\n  queue: labour\n")) == [
        f"{F}:21:14: enqueue.queue: 没有队列 'labour', 是否想写 'labor'? (配置中的队列: {QUEUES})",
    ]


def test_unknown_calendar(check):
    assert check(with_extra("""\
        hours:
          weekly:
            mon-fri: "09:00-18:00"
          calendar: chna
          open: labor
          closed: bye
        """), calendars=True) == [
        f"{F}:23:17: hours.calendar: 没有节假日日历 'chna', 是否想写 'china'? (现有: china)",
    ]


def test_known_calendar(check):
    assert check(with_extra("""\
        hours:
          weekly:
            mon-fri: "09:00-18:00"
          calendar: china
          open: labor
          closed: bye
        """), calendars=True) == []


def test_bad_time_in_weekly_schedule(check):
    assert check(with_extra("""\
        hours:
          weekly:
            mon-fri: "25:00-26:00"
          open: labor
          closed: bye
        """)) == [
        f'{F}:22:18: hours.weekly.mon-fri: 营业时间 "mon-fri: 25:00-26:00": 时间 "25:00" 无效, '
        "应为 HH:MM (00:00 至 24:00), 例如 08:30",
    ]


def test_bad_day_name_in_weekly_schedule(check):
    assert check(with_extra("""\
        hours:
          weekly:
            mon-fir: "09:00-18:00"
          open: labor
          closed: bye
        """)) == [
        f'{F}:22:18: hours.weekly.mon-fir: 营业时间 "mon-fir": 未知的星期 "fir", '
        "应为 mon tue wed thu fri sat sun 之一、范围 (如 mon-fri) 或 daily",
    ]


def test_bad_weekly_entry_is_located_at_that_entry(check):
    # With several days, the line must point at the bad one, not at the first.
    assert check(with_extra("""\
        hours:
          weekly:
            mon-fri: "09:00-18:00"
            sat: "25:00-26:00"
          open: labor
          closed: bye
        """)) == [
        f'{F}:23:14: hours.weekly.sat: 营业时间 "sat: 25:00-26:00": 时间 "25:00" 无效, '
        "应为 HH:MM (00:00 至 24:00), 例如 08:30",
    ]


def test_unknown_subflow_flow(check):
    other = "flow: after_hours\nstart: bye\nnodes:\n  bye:\n    hangup: goodbye\n"
    assert check({
        "main.yaml": with_extra("subflow: after_hour\nnext: bye\n"),
        "after_hours.yaml": other,
    }) == [
        f"{F}:20:14: subflow.flow: 没有流程 'after_hour', 是否想写 'after_hours'? "
        "(现有: after_hours, main)",
    ]


def test_subflow_cycle_between_two_flows(check):
    other = "flow: other\nstart: back\nnodes:\n  back:\n    subflow: main\n"
    assert check({
        "main.yaml": with_extra("subflow: other\nnext: bye\n"),
        "other.yaml": other,
    }) == [
        f"{F}:20:14: subflow.flow: 子流程循环调用: main → other → main",
    ]


# --- variables and conditions ----------------------------------------------------------------

def test_unknown_variable_in_set(check):
    assert check(with_extra("set:\n  categry: labor\nnext: labor\n")) == [
        f"{F}:21:7: set.categry: 未知变量 'categry', 是否想写 'category'? "
        "(可用: category, green_reason, language, priority, tags)",
    ]


def test_set_cannot_write_an_engine_variable(check):
    # `satisfaction` exists but only the engine writes it: the message must say so rather than
    # call it unknown and suggest the very same name.
    lines = check(with_extra("set:\n  satisfaction: 5\nnext: labor\n"))
    assert len(lines) == 1
    assert lines[0].startswith(f"{F}:21:7: set.satisfaction: ")
    assert "是否想写 'satisfaction'" not in lines[0]


BRANCH_KNOWN = ("callback_number, callback_queue, category, green_reason, language, priority, "
                "satisfaction, tags, caller.number, caller.region, caller.known, caller.repeat, "
                "caller.last_lawyer, caller.green_channel, caller.green_reasons")


def test_unknown_variable_in_branch(check):
    assert check(with_extra("""\
        branch:
          cases:
            - when: {langauge: cantonese}
              goto: labor
          otherwise: bye
        """)) == [
        f"{F}:22:18: branch.cases.0.when.langauge: 未知变量 'langauge', 是否想写 'language'? "
        f"(可用: {BRANCH_KNOWN})",
    ]


CATEGORIES = ("marriage_family, inheritance, labor, contract, property, traffic, personal_injury, "
              "consumer, debt, procedure, criminal, administrative, legal_aid, mediation, notary, "
              "forensic, complaint, sme, other")


def test_bad_field_value_in_set(check):
    assert check(with_extra("set:\n  category: labr\nnext: labor\n")) == [
        f"{F}:21:17: set.category: category 的值 'labr' 无效 (可用: {CATEGORIES})",
    ]


def test_bad_field_value_in_branch(check):
    assert check(with_extra("""\
        branch:
          cases:
            - when: {language: catonese}
              goto: labor
          otherwise: bye
        """)) == [
        f"{F}:22:28: branch.cases.0.when.language: language 的值 'catonese' 无效 "
        "(可用: mandarin, cantonese, hakka, teochew, southwestern, hubei, minnan, wu, english)",
    ]


def test_bad_condition_operator(check):
    assert check(with_extra("""\
        branch:
          cases:
            - when: {caller.repeat: {equals: true}}
              goto: labor
          otherwise: bye
        """)) == [
        f"{F}:22:33: branch.cases.0.when.caller.repeat: 条件 caller.repeat 的写法无效: "
        "未知运算 equals (可用: eq, exists, gt, gte, in, lt, lte, ne, not_in)",
    ]


# --- keys ------------------------------------------------------------------------------------

def test_bad_route_keys(check):
    flow = with_extra("hangup: {}\n").replace('"1": labor', '"12": labor\n        a: bye')
    rule = "只能由 0-9 * # 组成, 且不超过 max_digits=1 位"
    assert check(flow) == [
        f"{F}:11:9: gather.routes.12: 按键 '12' 无效: {rule}",
        f"{F}:12:9: gather.routes.a: 按键 'a' 无效: {rule}",
    ]


def test_bad_anytime_keys(check):
    flow = with_extra("hangup: {}\n").replace(
        "start: welcome\n", 'start: welcome\nanytime:\n  "00": labor\n  x: bye\n')
    assert check(flow) == [
        f"{F}:4:3: anytime.00: anytime 按键 '00' 无效: 应为单个 0-9 * #",
        f"{F}:5:3: anytime.x: anytime 按键 'x' 无效: 应为单个 0-9 * #",
    ]


def test_transfer_to_a_lawyer_without_fallback(check):
    assert check(with_extra('transfer:\n  lawyer: "1001"\n')) == [
        f"{F}:21:7: transfer.fallback: 转接律师时必须给出 fallback (律师不在线或未接听时去哪里)",
    ]


def test_transfer_to_a_lawyer_with_fallback(check):
    assert check(with_extra('transfer:\n  lawyer: "1001"\n  fallback: labor\n')) == []


# --- all at once, and no cascades ------------------------------------------------------------

def test_every_problem_in_a_file_is_reported_sorted_by_line(check):
    lines = check("""\
        flow: main
        version: 2
        start: welcome
        nodes:
          welcome:
            play: welcom
            next: menu
          menu:
            gather:
              prompt: menu
              routes:
                "1": labor
                a: bye
              otherwise: bye
          labor:
            enqueue:
              queue: labour
          bye:
            hangup:
              reason: rude
        """)
    assert lines == [
        f"{F}:2:1: version: 未知的顶层属性 'version' "
        "(可用: anytime, description, flow, name, nodes, start, vars)",
        f"{F}:6:11: play.prompt: 提示音目录中没有 'welcom', 是否想写 'welcome'?",
        f"{F}:13:9: gather.routes.a: 按键 'a' 无效: 只能由 0-9 * # 组成, 且不超过 max_digits=1 位",
        f"{F}:17:14: enqueue.queue: 没有队列 'labour', 是否想写 'labor'? (配置中的队列: {QUEUES})",
        f"{F}:20:15: hangup.reason: 值 'rude' 无效: 应为以下之一: "
        "normal, closed, invalid, emergency_advice",
    ]
    assert len(lines) == 5


def test_problems_of_several_files_are_all_reported(check):
    lines = check({
        "a.yaml": with_extra("hangup: {}\n").replace("flow: main", "flow: first").replace(
            "queue: labor", "queue: labour"),
        "b.yaml": with_extra("play: goodby\n").replace("flow: main", "flow: second"),
    })
    assert [line.split(": ")[0] for line in lines] == [
        "flows/a.yaml:16:14",
        "flows/b.yaml:20:11",
    ]


def test_typo_in_a_verb_does_not_cascade(check):
    # `menu` fails its schema; `welcome`, which leads to it, must not be called a dead end.
    flow = with_extra("hangup: {}\n").replace("    gather:\n", "    gahter:\n")
    assert check(flow) == [
        f"{F}:8:5: gahter: 未知动词 'gahter', 是否想写 'gather'? (可用: {VERB_LIST})",
    ]


def test_typo_in_a_property_does_not_cascade(check):
    flow = with_extra("hangup: {}\n").replace("      otherwise: bye\n",
                                              "      otherwise: bye\n      timeout: 5\n")
    assert check(flow) == [
        f"{F}:14:7: gather.timeout: 未知属性 'timeout' (可用: {GATHER_FIELDS})",
    ]


def test_typo_in_next_does_not_cascade(check):
    flow = with_extra("hangup: {}\n").replace("    next: menu", "    nxet: menu")
    assert check(flow) == [
        f"{F}:6:5: play.nxet: 未知属性 'nxet', 是否想写 'next'? (节点可用: 动词, next, note)",
    ]


# --- spoken menu choices (speech:) -----------------------------------------------------------

SPEECH_PROMPTS = (PROMPTS + "  press: 对不起，没有听清，请按键选择。\n"
                  "  hint: 也可以直接说出问题类型。\n")


def test_menu_with_speech_is_sound(check):
    assert check(with_extra("""\
        gather:
          prompt: menu
          speech_prompt: hint
          speech_invalid_prompt: press
          speech_timeout: 8
          routes:
            "1": labor
            "2": bye
          speech:
            "1": [劳动, 工资, 法律 援助]
            "2": 再见
          otherwise: bye
        """), prompts=SPEECH_PROMPTS) == []


def test_every_speech_problem_at_once(check):
    long = "劳动" * 11
    assert check(with_extra(f"""\
        gather:
          prompt: menu
          routes:
            "1": labor
            "2": bye
          speech:
            "1": [劳动, "", {long}]
            "2": [再见, 劳动]
            "3": [合同]
            "4": [工资]
          speech_invalid_prompt: pres
          otherwise: bye
        """)) == [
        f"{F}:26:19: gather.speech.1.1: 说法不能为空",
        f"{F}:26:23: gather.speech.1.2: 说法 '{long}' 太长 (最多 20 个字)",
        f"{F}:27:19: gather.speech.2.1: 说法 '劳动' 已用于按键 '1': 一个说法只能对应一个按键",
        f"{F}:28:9: gather.speech.3: speech 的按键 '3' 不在本菜单的 routes 中 (现有: 1, 2)",
        f"{F}:29:9: gather.speech.4: speech 的按键 '4' 不在本菜单的 routes 中 (现有: 1, 2)",
        f"{F}:30:30: gather.speech_invalid_prompt: 提示音目录中没有 'pres'",
    ]


def test_same_phrase_spaced_differently_is_one_phrase(check):
    # The recogniser's word spacing is ignored, so 法律援助 and 法律 援助 are the same answer.
    assert check(with_extra("""\
        gather:
          prompt: menu
          routes: {"1": labor, "2": bye}
          speech: {"1": [法律援助], "2": [法律 援助]}
          otherwise: bye
        """)) == [
        f"{F}:23:35: gather.speech.2.0: 说法 '法律 援助' 已用于按键 '1': 一个说法只能对应一个按键",
    ]


def test_speech_on_an_entry_is_refused(check):
    assert check(with_extra("""\
        gather:
          prompt: menu
          max_digits: 8
          store: case_no
          speech: {"1": [劳动]}
          otherwise: bye
        next: labor
        """)) == [
        f"{F}:24:7: gather.speech: speech 只能用于菜单 (routes), 不能用于号码输入 (store/pattern)",
    ]


def test_too_many_phrases(check):
    phrases = ", ".join(f"说法{i}" for i in range(51))
    assert check(with_extra(f"""\
        gather:
          prompt: menu
          routes: {{"1": labor}}
          speech: {{"1": [{phrases}]}}
          otherwise: bye
        """)) == [
        f"{F}:23:7: gather.speech: 本菜单共有 51 个说法, 最多 50 个",
    ]


def test_speech_options_without_speech(check):
    assert check(with_extra("""\
        gather:
          prompt: menu
          routes: {"1": labor}
          speech_timeout: 8
          speech_prompt: menu
          speech_invalid_prompt: menu
          otherwise: bye
        """)) == [
        f"{F}:23:7: gather.speech_timeout: speech_timeout 只在有 speech 时才有用",
        f"{F}:24:7: gather.speech_prompt: speech_prompt 只在有 speech 时才有用",
        f"{F}:25:7: gather.speech_invalid_prompt: speech_invalid_prompt 只在有 speech 时才有用",
    ]


def test_phrase_that_is_not_text(check):
    assert check(with_extra("""\
        gather:
          prompt: menu
          routes: {"1": labor}
          speech: {"1": [劳动, 12]}
          otherwise: bye
        """)) == [
        f"{F}:23:26: gather.speech.1.1: 值 12 无效: 应为字符串",
    ]


def test_timeout_typo_is_not_pointed_at_speech_timeout(check):
    # `timeout` on a menu means first_digit_timeout; speech_timeout would mislead.
    lines = check(with_extra("""\
        gather:
          prompt: menu
          timeout: 5
          otherwise: bye
        """))
    assert len(lines) == 1 and "speech_timeout'?" not in lines[0]
    lines = check(with_extra("""\
        gather:
          prompt: menu
          speech_timout: 5
          otherwise: bye
        """))
    assert "是否想写 'speech_timeout'?" in lines[0]


def test_an_impossible_date_in_a_calendar_is_a_located_problem(tmp_path, monkeypatch):
    """A value YAML takes for a date but cannot build (month 13) must not crash the loader."""
    monkeypatch.chdir(tmp_path)
    flows = tmp_path / "flows"
    shutil.copytree(SHIPPED, flows)
    calendar = flows / "calendars" / "china.yaml"
    text = calendar.read_text(encoding="utf-8")
    calendar.write_text(text.replace("to: 2026-01-03}", "to: 2026-13-03}"), encoding="utf-8")
    _, problems = check_folder(flows, load_settings(environ={}))
    rendered = [p.render() for p in problems]
    assert any(line.startswith(f"{calendar}:") and "'2026-13-03' 无效" in line
               for line in rendered), rendered
