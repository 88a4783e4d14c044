"""Scripted callers through the shipped flows (``ivr_flows/``), one test per scenario.

Scenario files live in ``tests/flows/*.yaml``. Each file holds a ``scenarios:`` list (several
related calls per file); every entry is one scripted call::

    scenarios:
      - name: labor_migrant_wages          # unique across all files; the pytest id
        note: 农民工讨薪 → 绿色通道            # optional, free text (why the scenario exists)
        flow: main                         # a shipped flow id
        at: "2026-12-01T10:00"             # local wall time in the hotline's zone (settings.tz)
        caller:                            # optional; all keys optional
          number: "13800000000"            # caller id (default 13800000000; "" = withheld)
          repeat: false                    # called within the repeat window (重复来电)
          green_channel: false             # on the known green-channel list (绿色通道名单)
          green_reasons: [elderly]         # why, from that list (GreenReason values)
        input: "1 1 1 5"                   # simulator tokens, a string or a list (see below)
        # input: ["1", {say: 劳动}, "2"]     # list form; {say: ...} speaks to a listening menu
        queue: answered                    # answered | overflow | abandon (default answered)
        hangup_at: 3                       # optional: the caller hangs up at the Nth event
        expect:                            # every key optional; unknown keys are an error
          outcome: enqueue                 # enqueue | transfer | voicemail | hangup
          target: labor                    # Outcome.target, compared exactly ("" = none)
          reason: caller_hangup            # Outcome.reason, compared exactly
          fields:                          # session vars at the end (ticket fields);
            category: labor                #   null means "not set"; lists compare exactly
            priority: green
          path_includes: [wages, main/labor_queue]   # visited nodes, in this order
          path_excludes: [operator]                  # nodes that must not be visited
          played_includes: [wages_question]          # prompt ids played, in this order
          not_played: [no_input]                     # prompt ids never played

Input tokens (``hotline.ivr.simulate``): ``1`` or ``13800000000#`` keys digits when the call
waits for keys, ``_`` stays silent (the menu times out), ``!`` hangs up, ``^0`` keys during the
next prompt that starts playing. ``say:劳动`` (or ``{say: 劳动}`` in the list form, which also
allows spaces: ``{say: 法律 援助}``) speaks to a menu with ``speech:`` after its prompt: a phrase
of that menu (spaces ignored) is recognised as its key, anything else is rejected like an
invalid key and the menu then takes keys only; said to a menu that does not listen, it is not
heard and the menu times out. When the tokens run out the caller stays silent.

``path_includes``/``path_excludes`` name a node as ``node`` (in any flow) or ``flow/node``;
``path_includes`` and ``played_includes`` are ordered subsequences of the path / the prompts
played. Names of nodes, prompts and fields are checked against the shipped flows by
``test_scenario_file_is_valid``, so a typo in a negative check cannot pass silently.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotline.callers import CallerFacts
from hotline.config import load_settings
from hotline.domain import GreenReason
from hotline.errors import HotlineError
from hotline.ivr.registry import load_flows
from hotline.ivr.schema import BUILTIN_VARS, TICKET_FIELDS
from hotline.ivr.simulate import SAY, SimResult, parse_script, render, simulate
from hotline.ivr.validate import FlowSet

REPO = Path(__file__).resolve().parents[1]
SCENARIO_DIR = Path(__file__).resolve().parent / "flows"

SCENARIO_KEYS = {"name", "note", "flow", "at", "caller", "input", "queue", "hangup_at",
                 "expect"}
REQUIRED_KEYS = {"name", "flow", "at", "expect"}
CALLER_KEYS = {"number", "repeat", "green_channel", "green_reasons"}
EXPECT_KEYS = {"outcome", "target", "reason", "fields", "path_includes", "path_excludes",
               "played_includes", "not_played"}
OUTCOMES = {"enqueue", "transfer", "voicemail", "hangup"}
QUEUES = {"answered", "overflow", "abandon"}
DEFAULT_NUMBER = "13800000000"


@functools.cache
def settings() -> Any:
    # Default settings, with the flow folder made absolute so pytest may run from anywhere.
    return load_settings(environ={"HOTLINE_PATHS_FLOWS": str(REPO / "ivr_flows")})


@functools.cache
def shipped_flows() -> FlowSet:
    return load_flows(settings())


@dataclass(frozen=True)
class Scenario:
    name: str
    file: str
    flow: str
    at: datetime
    caller: CallerFacts
    script: tuple[str, ...]
    queue: str
    hangup_at: int | None
    expect: dict[str, Any] = field(hash=False)


def _tokens(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return parse_script(raw)
    if isinstance(raw, list):
        out: list[str] = []
        for item in raw:
            if isinstance(item, dict) and set(item) == {"say"} and isinstance(
                    item["say"], str) and item["say"].strip():
                out.append(f"{SAY}{item['say']}")
                continue
            tokens = parse_script(str(item))
            if len(tokens) != 1:
                raise HotlineError("sim.bad_script", token=str(item))
            out += tokens
        return out
    raise HotlineError("sim.bad_script", token=repr(raw))


def _scenario(raw: dict[str, Any], file: str) -> Scenario:
    caller = raw.get("caller") or {}
    green = bool(caller.get("green_channel", False))
    return Scenario(
        name=str(raw["name"]), file=file, flow=str(raw["flow"]),
        at=datetime.fromisoformat(str(raw["at"])).replace(tzinfo=settings().tz),
        caller=CallerFacts(number=str(caller.get("number", DEFAULT_NUMBER)),
                           repeat=bool(caller.get("repeat", False)), green_channel=green,
                           known=green, green_reasons=tuple(
                               GreenReason(r) for r in caller.get("green_reasons", []))),
        script=tuple(_tokens(raw.get("input"))), queue=str(raw.get("queue", "answered")),
        hangup_at=raw.get("hangup_at"), expect=dict(raw["expect"] or {}))


def scenario_files() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.yaml"))


def _raw_entries(path: Path) -> list[Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return []  # test_scenario_file_is_valid reports it
    if not isinstance(data, dict) or set(data) != {"scenarios"}:
        return []
    entries = data["scenarios"]
    return entries if isinstance(entries, list) else []


@functools.cache
def all_scenarios() -> tuple[Scenario, ...]:
    """Every scenario; entries that cannot even be parsed are reported by the validity test."""
    out = []
    for path in scenario_files():
        for raw in _raw_entries(path):
            try:
                out.append(_scenario(raw, path.name))
            except (KeyError, TypeError, ValueError, HotlineError):
                continue
    return tuple(out)


# --- validation -----------------------------------------------------------------------------

def _node_known(ref: Any, flows: FlowSet) -> bool:
    if not isinstance(ref, str):
        return False
    if "/" in ref:
        flow_id, node = ref.split("/", 1)
        return flow_id in flows.flows and node in flows.flows[flow_id].nodes
    return any(ref in f.nodes for f in flows.flows.values())


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def check_scenario(raw: Any, flows: FlowSet) -> list[str]:
    """Every problem of one scenario entry (empty when it is sound)."""
    if not isinstance(raw, dict):
        return [f"entry is not a mapping: {raw!r}"]
    problems = [f"unknown key {k!r}" for k in sorted(set(raw) - SCENARIO_KEYS)]
    problems += [f"missing key {k!r}" for k in sorted(REQUIRED_KEYS - set(raw))]
    if raw.get("flow") not in flows.flows:
        problems.append(f"unknown flow {raw.get('flow')!r} (known: {sorted(flows.flows)})")
    try:
        datetime.fromisoformat(str(raw.get("at")))
    except ValueError:
        problems.append(f"bad at {raw.get('at')!r}")
    caller = raw.get("caller") or {}
    if not isinstance(caller, dict):
        problems.append(f"caller must be a mapping, got {caller!r}")
    else:
        problems += [f"unknown caller key {k!r}" for k in sorted(set(caller) - CALLER_KEYS)]
        for key in ("repeat", "green_channel"):
            if key in caller and not isinstance(caller[key], bool):
                problems.append(f"caller.{key} must be true/false, got {caller[key]!r}")
        if "number" in caller and not isinstance(caller["number"], str):
            problems.append(f"caller.number must be a quoted string, got {caller['number']!r}")
    try:
        _tokens(raw.get("input"))
    except HotlineError as exc:
        problems.append(f"bad input: {exc}")
    if raw.get("queue", "answered") not in QUEUES:
        problems.append(f"queue must be one of {sorted(QUEUES)}, got {raw.get('queue')!r}")
    hangup_at = raw.get("hangup_at")
    if hangup_at is not None and (not isinstance(hangup_at, int) or hangup_at < 1):
        problems.append(f"hangup_at must be a positive event number, got {hangup_at!r}")
    expect = raw.get("expect")
    if not isinstance(expect, dict) or not expect:
        return problems + ["expect must be a non-empty mapping"]
    problems += [f"unknown expect key {k!r} (allowed: {sorted(EXPECT_KEYS)})"
                 for k in sorted(set(expect) - EXPECT_KEYS)]
    if "outcome" in expect and expect["outcome"] not in OUTCOMES:
        problems.append(f"expect.outcome must be one of {sorted(OUTCOMES)}")
    for key in ("target", "reason"):
        if key in expect and not isinstance(expect[key], str):
            problems.append(f"expect.{key} must be a string, got {expect[key]!r}")
    fields = expect.get("fields", {})
    known_fields = set(TICKET_FIELDS) | set(BUILTIN_VARS) | {
        v for f in flows.flows.values() for v in f.vars}
    if not isinstance(fields, dict):
        problems.append("expect.fields must be a mapping")
    else:
        problems += [f"unknown field {k!r} (known: {sorted(known_fields)})"
                     for k in sorted(set(fields) - known_fields)]
    for key in ("path_includes", "path_excludes"):
        refs = expect.get(key, [])
        if not _string_list(refs):
            problems.append(f"expect.{key} must be a list of node ids")
            continue
        problems += [f"expect.{key}: no node {r!r} in the shipped flows"
                     for r in refs if not _node_known(r, flows)]
    for key in ("played_includes", "not_played"):
        refs = expect.get(key, [])
        if not _string_list(refs):
            problems.append(f"expect.{key} must be a list of prompt ids")
            continue
        problems += [f"expect.{key}: no prompt {r!r} in the catalogue"
                     for r in refs if r not in flows.prompts]
    return problems


@pytest.mark.parametrize("path", scenario_files(), ids=lambda p: p.name)
def test_scenario_file_is_valid(path: Path) -> None:
    flows = shipped_flows()
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and set(data) == {"scenarios"}, (
        f"{path.name}: the file must be a mapping with exactly one key, 'scenarios'")
    assert isinstance(data["scenarios"], list) and data["scenarios"], (
        f"{path.name}: 'scenarios' must be a non-empty list")
    problems = []
    for i, raw in enumerate(data["scenarios"]):
        label = raw.get("name", f"#{i}") if isinstance(raw, dict) else f"#{i}"
        problems += [f"{path.name}: {label}: {p}" for p in check_scenario(raw, flows)]
    assert not problems, "\n".join(problems)


def test_scenario_checker_rejects_typos() -> None:
    typo = {"name": "x", "flow": "mian", "at": "2026-13-01", "input": "1 a", "queue": "busy",
            "caller": {"green": True},
            "expect": {"outcom": "enqueue", "fields": {"categroy": "labor"},
                       "not_played": ["goodby"], "path_excludes": ["operater"],
                       "path_includes": ["main/nite"]}}
    problems = "\n".join(check_scenario(typo, shipped_flows()))
    for word in ("'mian'", "bad at", "'green'", "bad input", "'busy'", "'outcom'",
                 "'categroy'", "'goodby'", "'operater'", "'main/nite'"):
        assert word in problems, f"{word} not reported in:\n{problems}"


def test_say_tokens() -> None:
    assert parse_script("1 say:劳动 _") == ["1", "say:劳动", "_"]
    assert _tokens(["1", {"say": "法律 援助"}]) == ["1", "say:法律 援助"]
    for bad in ("say:", "^say:劳动", "said:劳动"):
        with pytest.raises(HotlineError):
            parse_script(bad)
    for bad_item in ({"say": ""}, {"say": 1}, {"said": "劳动"}, {"say": "劳动", "x": 1}):
        with pytest.raises(HotlineError):
            _tokens([bad_item])


def test_scenario_names_are_unique() -> None:
    seen: dict[str, str] = {}
    dupes = []
    for path in scenario_files():
        for raw in _raw_entries(path):
            name = raw.get("name") if isinstance(raw, dict) else None
            if name in seen:
                dupes.append(f"{name!r} in {path.name} and {seen[name]}")
            seen[str(name)] = path.name
    assert not dupes, "duplicate scenario names:\n" + "\n".join(dupes)
    total = sum(len(_raw_entries(p)) for p in scenario_files())
    assert len(all_scenarios()) == total, "some scenarios could not be parsed"


# --- running -----------------------------------------------------------------------------

@functools.cache
def run(scenario: Scenario) -> SimResult:
    return simulate(shipped_flows(), scenario.flow, script=list(scenario.script),
                    at=scenario.at, caller=scenario.caller,
                    queue=scenario.queue,  # type: ignore[arg-type]
                    hangup_at=scenario.hangup_at)


def _matches(ref: str, step: tuple[str, str]) -> bool:
    return ref == f"{step[0]}/{step[1]}" if "/" in ref else ref == step[1]


def _missing_in_order(wanted: list[str], seen: list[Any], match: Any) -> str | None:
    """The first wanted item not found (in order) in ``seen``, or None."""
    pos = 0
    for item in wanted:
        while pos < len(seen) and not match(item, seen[pos]):
            pos += 1
        if pos == len(seen):
            return item
        pos += 1
    return None


def mismatches(scenario: Scenario, result: SimResult) -> list[str]:
    expect = scenario.expect
    out = []
    outcome = result.outcome
    if not result.done:
        out.append("the session did not end")
    if "outcome" in expect:
        actual = outcome.kind.value if outcome else None
        if actual != expect["outcome"]:
            out.append(f"outcome: expected {expect['outcome']!r}, got {actual!r}")
    for key in ("target", "reason"):
        if key in expect:
            actual = getattr(outcome, key) if outcome else None
            if actual != expect[key]:
                out.append(f"outcome.{key}: expected {expect[key]!r}, got {actual!r}")
    for name, wanted in expect.get("fields", {}).items():
        actual = result.vars.get(name)
        if actual != wanted:
            out.append(f"field {name}: expected {wanted!r}, got {actual!r}")
    missing = _missing_in_order(expect.get("path_includes", []), result.path, _matches)
    if missing is not None:
        out.append(f"path: {missing!r} not visited in the expected order")
    for ref in expect.get("path_excludes", []):
        if any(_matches(ref, step) for step in result.path):
            out.append(f"path: {ref!r} visited but must not be")
    missing = _missing_in_order(expect.get("played_includes", []), result.played,
                                lambda a, b: a == b)
    if missing is not None:
        out.append(f"played: {missing!r} not played in the expected order")
    for ref in expect.get("not_played", []):
        if ref in result.played:
            out.append(f"played: {ref!r} played but must not be")
    return out


@pytest.mark.parametrize("scenario", all_scenarios(), ids=lambda s: s.name)
def test_scenario(scenario: Scenario) -> None:
    result = run(scenario)
    problems = mismatches(scenario, result)
    if problems:
        report = render(result, shipped_flows(), scenario.at, scenario.caller)
        pytest.fail(f"{scenario.file}: {scenario.name}: input {' '.join(scenario.script)!r}, "
                    f"queue={scenario.queue}, hangup_at={scenario.hangup_at}\n  "
                    + "\n  ".join(problems) + f"\n\nplayed: {result.played}\n\n{report}",
                    pytrace=False)


def test_every_node_is_covered() -> None:
    flows = shipped_flows()
    every = {(f.id, n) for f in flows.flows.values() for n in f.nodes}
    visited: set[tuple[str, str]] = set()
    for scenario in all_scenarios():
        visited |= set(run(scenario).path)
    missing = sorted(every - visited)
    assert not missing, "nodes no scenario reaches:\n" + "\n".join(
        f"  {f}/{n}" for f, n in missing)
    assert visited <= every
