"""The sans-IO engine driven event by event with a hand-held clock."""

from datetime import datetime, timedelta
from textwrap import dedent
from zoneinfo import ZoneInfo

import pytest

from hotline import commands as cmd
from hotline import events as ev
from hotline.callers import CallerFacts
from hotline.config import load_settings
from hotline.ivr.engine import MAX_SILENT_STEPS, IvrSession, OutcomeKind
from hotline.ivr.validate import check_folder

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=TZ)  # a Tuesday

PROMPTS = """
prompts:
  hello: 您好
  menu: 菜单
  again: 请再按一次
  silent: 没有按键
  ask_id: 请输入工号
  ask_number: 请输入号码
  thanks: 谢谢
  rate: 请评价
  bye: 再见
  leave: 请留言
"""

FLOW = """
flow: t
start: hello
anytime:
  "0": human
vars:
  vip: false
nodes:
  hello:
    play: {prompt: hello, barge_in: true}
    next: menu
  menu:
    gather:
      prompt: menu
      no_input_prompt: silent
      invalid_prompt: again
      retries: 1
      first_digit_timeout: 5
      routes: {"1": one, "2": ask_id, "3": ask_number, "4": rate, "5": sub, "6": leave_msg}
      otherwise: human
  one:
    set: {category: labor, tags: [a, b]}
    next: check
  check:
    branch:
      cases:
        - when: {category: [labor, contract], caller.repeat: true}
          goto: bye
        - when: {vip: {ne: true}}
          goto: human
      otherwise: bye
  ask_id:
    gather:
      prompt: ask_id
      max_digits: 4
      min_digits: 4
      pattern: "1[0-9]{3}"
      store: work_id
      retries: 1
      otherwise: human
    next: named
  named:
    transfer: {lawyer_var: work_id, fallback: human, timeout: 30}
  ask_number:
    callback: {prompt: ask_number, thanks: thanks, min_digits: 7, max_digits: 12}
    next: bye
  rate:
    survey: {prompt: rate, thanks: thanks}
    next: bye
  sub:
    subflow: other
    next: bye
  leave_msg:
    voicemail: {prompt: leave, thanks: thanks, max_seconds: 60}
  human:
    enqueue: {queue: general, after_call: rate, overflow: leave_msg}
  bye:
    hangup: bye
"""

OTHER = """
flow: other
start: a
nodes:
  a:
    set: {priority: green}
"""


@pytest.fixture(scope="module")
def flows(tmp_path_factory):
    root = tmp_path_factory.mktemp("flows")
    (root / "prompts.yaml").write_text(dedent(PROMPTS), encoding="utf-8")
    (root / "t.yaml").write_text(dedent(FLOW), encoding="utf-8")
    (root / "other.yaml").write_text(dedent(OTHER), encoding="utf-8")
    fs, problems = check_folder(root, load_settings(environ={}))
    assert [p.render() for p in problems] == []
    return fs


class Driver:
    def __init__(self, flows, caller=None, at=T0):
        self.now = at
        self.s = IvrSession(flows, "t", caller or CallerFacts(number="13800000000"), TZ)
        self.commands = []
        self.steps = [self.s.start(self.now)]
        self.commands += self.steps[-1].commands

    def send(self, event, after=0.0):
        self.now += timedelta(seconds=after)
        step = self.s.handle(event, self.now)
        self.steps.append(step)
        self.commands += step.commands
        return step

    def last_play(self):
        return [c for c in self.commands if isinstance(c, cmd.Play)][-1]

    def finish_prompt(self):
        return self.send(ev.PlaybackFinished(self.last_play().token), after=2)

    def timeout(self):
        assert self.s.deadline is not None
        self.now = self.s.deadline
        return self.send(ev.TimerFired())

    def keys(self, digits):
        for d in digits:
            self.send(ev.DigitReceived(d), after=0.3)

    def played(self):
        return [i.ref for c in self.commands if isinstance(c, cmd.Play) for i in c.items]


def test_start_plays_first_prompt_and_waits_without_deadline(flows):
    d = Driver(flows)
    play = d.steps[0].commands[0]
    assert isinstance(play, cmd.Play) and play.items[0].text == "您好"
    assert d.steps[0].deadline is None and d.s.waiting_for == "play"
    assert [t.kind for t in d.steps[0].trace] == ["node", "prompt"]


def test_menu_key_routes_and_sets_fields(flows):
    d = Driver(flows, CallerFacts(number="13800000000", repeat=True))
    d.finish_prompt()
    step = d.finish_prompt()  # the menu prompt ends: first-digit timeout starts
    assert step.deadline == d.now + timedelta(seconds=5)
    d.keys("1")
    assert d.s.vars["category"] == "labor" and d.s.vars["tags"] == ["a", "b"]
    # labor + repeat caller → bye (first case)
    assert d.s.outcome.kind is OutcomeKind.HANGUP
    d.finish_prompt()
    assert d.s.done and isinstance(d.commands[-1], cmd.Hangup)


def test_branch_operator_and_fallthrough(flows):
    d = Driver(flows)  # not a repeat caller: second case (vip ne true) → human
    d.finish_prompt()
    d.finish_prompt()
    d.keys("1")
    enqueue = d.commands[-1]
    assert isinstance(enqueue, cmd.Enqueue) and enqueue.queue == "general"
    assert enqueue.category == "labor"
    assert d.s.outcome.kind is OutcomeKind.ENQUEUE


def test_no_input_then_invalid_then_otherwise(flows):
    d = Driver(flows)
    d.finish_prompt()
    d.finish_prompt()
    d.timeout()  # no input: "silent" + menu again
    assert d.played()[-2:] == ["silent", "menu"]
    d.finish_prompt()
    d.keys("9")  # invalid, but retries (1) are used up → otherwise
    assert isinstance(d.commands[-1], cmd.Enqueue)
    notes = [t.data for s in d.steps for t in s.trace if t.kind == "note" and "retry" in t.data]
    assert notes == [{"retry": "no_input", "attempt": 1}, {"retry": "invalid", "attempt": 2}]


def test_anytime_zero_during_a_prompt_stops_it_and_reaches_a_human(flows):
    d = Driver(flows)
    token = d.last_play().token
    d.keys("0")
    assert cmd.StopPlayback(token) in d.commands
    assert isinstance(d.commands[-1], cmd.Enqueue)
    # a late PlaybackFinished for the stopped prompt changes nothing
    before = len(d.commands)
    d.send(ev.PlaybackFinished(token))
    assert len(d.commands) == before


def test_barge_in_keeps_typeahead_for_the_next_menu(flows):
    d = Driver(flows)
    d.keys("4")  # during "hello": skips it, the key answers the menu
    assert "menu" not in d.played()
    assert d.played()[-1] == "rate"


def test_stored_entry_with_pattern_and_named_lawyer_fallback(flows):
    d = Driver(flows)
    d.finish_prompt()
    d.finish_prompt()
    d.keys("2")
    d.finish_prompt()
    d.keys("9999")  # 4 digits but the pattern wants 1xxx → invalid, re-prompt
    assert d.played()[-2:] == ["ask_id", "ask_id"]
    d.finish_prompt()
    d.keys("1024")
    transfer = d.commands[-1]
    assert transfer == cmd.TransferToLawyer("1024", 30)
    assert d.s.vars["work_id"] == "1024"
    d.send(ev.TransferFailed("no_answer"), after=30)
    assert isinstance(d.commands[-1], cmd.Enqueue)
    assert d.s.outcome.kind is OutcomeKind.ENQUEUE


def test_entered_numbers_are_masked_in_the_trace(flows):
    d = Driver(flows)
    d.finish_prompt()
    d.finish_prompt()
    d.keys("3")
    d.finish_prompt()
    d.keys("02788886666#")
    assert d.s.vars["callback_number"] == "02788886666"
    texts = [str(t.data) for s in d.steps for t in s.trace]
    assert not any("02788886666" in t for t in texts)
    assert any("*******6666" in t for t in texts)


def test_callback_hash_alone_uses_caller_id(flows):
    d = Driver(flows)
    d.finish_prompt()
    d.finish_prompt()
    d.keys("3")
    d.finish_prompt()
    d.keys("#")
    assert d.s.vars["callback_number"] == "13800000000"
    assert d.played()[-1] == "thanks"


def test_inter_digit_timeout_submits_what_was_typed(flows):
    d = Driver(flows)
    d.finish_prompt()
    d.finish_prompt()
    d.keys("3")
    d.finish_prompt()
    d.keys("88886666")
    assert d.s.deadline is not None  # waiting for more digits or '#'
    d.timeout()
    assert d.s.vars["callback_number"] == "88886666"


def test_survey_score_and_invalid_key(flows):
    d = Driver(flows)
    d.finish_prompt()
    d.finish_prompt()
    d.keys("4")
    d.finish_prompt()
    d.keys("7")  # invalid → re-prompt once
    d.finish_prompt()
    d.keys("5")
    assert d.s.vars["satisfaction"] == 5


def test_subflow_returns_to_next(flows):
    d = Driver(flows)
    d.finish_prompt()
    d.finish_prompt()
    d.keys("5")
    assert d.s.vars["priority"] == "green"
    assert ("other", "a") in d.s.path and d.s.path[-1] == ("t", "bye")


def test_voicemail_records_then_thanks_then_hangs_up(flows):
    d = Driver(flows)
    d.finish_prompt()
    d.finish_prompt()
    d.keys("6")
    d.finish_prompt()  # "leave" prompt done → RecordMessage
    rec = d.commands[-1]
    assert isinstance(rec, cmd.RecordMessage) and rec.max_seconds == 60 and rec.beep
    assert d.s.outcome.kind is OutcomeKind.VOICEMAIL
    assert d.s.deadline == d.now + timedelta(seconds=70)
    d.send(ev.RecordingFinished(rec.token, 12.5), after=12.5)
    d.finish_prompt()
    assert d.s.done and d.commands[-1] == cmd.Hangup("voicemail")


def test_queue_answered_then_agent_left_runs_the_survey(flows):
    d = Driver(flows)
    d.keys("0")
    d.send(ev.QueueAnswered("1001"), after=10)
    assert d.s.waiting_for == "agent"
    d.send(ev.AgentLeft(), after=200)
    assert d.played()[-1] == "rate"
    d.finish_prompt()
    d.keys("3")
    d.finish_prompt()
    d.finish_prompt()
    assert d.s.done and d.s.vars["satisfaction"] == 3
    assert d.s.outcome.kind is OutcomeKind.ENQUEUE  # the survey's goodbye keeps the handoff


def test_queue_overflow_goes_to_the_flow_overflow_node(flows):
    d = Driver(flows)
    d.keys("0")
    d.send(ev.QueueOverflow("max_wait"), after=300)
    assert d.played()[-1] == "leave"
    d.finish_prompt()
    assert d.s.outcome.kind is OutcomeKind.VOICEMAIL


@pytest.mark.parametrize("moment", range(6))
def test_caller_hangs_up_at_any_moment(flows, moment):
    d = Driver(flows)
    actions = [d.finish_prompt, d.finish_prompt, lambda: d.keys("2"), d.finish_prompt,
               lambda: d.keys("10"), d.timeout]
    for act in actions[:moment]:
        act()
    had = d.s.outcome
    step = d.send(ev.CallerHungUp())
    assert d.s.done and step.done and step.deadline is None
    assert step.commands == ()
    assert d.s.outcome == (had or d.s.outcome)
    if had is None:
        assert d.s.outcome.reason == "caller_hangup"
    # nothing happens after the end
    assert d.send(ev.DigitReceived("1")).commands == ()


def test_unknown_and_out_of_place_events_are_ignored(flows):
    d = Driver(flows)
    assert d.send(ev.DigitReceived("x")).commands == ()
    assert d.send(ev.QueueAnswered("1001")).commands == ()
    assert d.send(ev.TimerFired()).commands == ()  # no deadline armed during a prompt
    assert d.send(ev.PlaybackFinished(999)).commands == ()
    assert d.s.waiting_for == "play"


def test_runaway_loop_is_cut_off(tmp_path):
    (tmp_path / "prompts.yaml").write_text("prompts:\n  a: 啊\n", encoding="utf-8")
    (tmp_path / "loop.yaml").write_text(dedent("""
        flow: loop
        start: x
        nodes:
          x:
            set: {category: other}
            next: y
          y:
            goto: x
    """), encoding="utf-8")
    fs, problems = check_folder(tmp_path, load_settings(environ={}))
    assert any(p.code == "flow.silent_loop" for p in problems)
    session = IvrSession(fs, "loop", CallerFacts(), TZ)
    step = session.start(T0)
    assert session.done and step.commands[-1] == cmd.Hangup("error")
    assert session.outcome.reason == "runaway_loop"
    assert len(session.path) == MAX_SILENT_STEPS


def test_green_channel_caller_starts_with_green_priority(flows):
    d = Driver(flows, CallerFacts(number="13800000000", green_channel=True))
    d.keys("0")
    assert d.commands[-1].priority.value == "green"
