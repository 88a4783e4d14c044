"""Load a folder of flows and check everything at once (``hotline flows check``).

Problems are collected, never raised one at a time: an administrator fixing a flow wants the
whole list. Checks, in order: the file itself (size, encoding, YAML), the shape of every node
against its verb's schema, then cross-references (targets, prompts, files, queues, calendars,
subflows, variables) and finally the graph: unreachable nodes, loops that repeat forever while
the caller stays silent, and nodes from which a call can never end.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hotline.config import Settings
from hotline.ivr import schema as s
from hotline.ivr.calendar import CalendarDataError, HolidayCalendar, WeeklySchedule
from hotline.ivr.catalogue import CATALOGUE_FILE, PromptEntry, load_catalogue
from hotline.ivr.loader import Document, Problem, read_file
from hotline.speech.grammar import phrase_key

CALENDAR_DIR = "calendars"
CALLER_FACTS = ("caller.number", "caller.region", "caller.known", "caller.repeat",
                "caller.last_lawyer", "caller.green_channel", "caller.green_reasons")
CONDITION_OPS = frozenset({"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists"})
# Spoken menu choices: a phrase is a word or two a caller says ("劳动", "法律援助"), and a
# grammar of more phrases than a menu needs only makes wrong matches likelier.
MAX_PHRASE_CHARS = 20
MAX_PHRASES = 50


@dataclass
class FlowSet:
    """Every flow of one folder with what they use, validated together."""

    root: Path
    flows: dict[str, s.Flow] = field(default_factory=dict)
    prompts: dict[str, PromptEntry] = field(default_factory=dict)
    calendars: dict[str, HolidayCalendar] = field(default_factory=dict)
    schedules: dict[tuple[str, str], WeeklySchedule] = field(default_factory=dict)

    def flow(self, flow_id: str) -> s.Flow:
        """A flow by id (KeyError when absent)."""
        return self.flows[flow_id]


def _hint(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f", 是否想写 {close[0]!r}?" if close else ""


def flow_files(root: Path) -> list[Path]:
    """The flow files of a folder: every ``*.yaml``/``*.yml`` except the prompt catalogue."""
    return sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml")
                  and p.name != CATALOGUE_FILE and p.is_file())


def load_calendars(root: Path, max_bytes: int,
                   ) -> tuple[dict[str, HolidayCalendar], list[Problem]]:
    """Read ``root/calendars/*.yaml`` holiday calendars."""
    out: dict[str, HolidayCalendar] = {}
    problems: list[Problem] = []
    folder = root / CALENDAR_DIR
    if not folder.is_dir():
        return out, problems
    for path in sorted(folder.glob("*.yaml")):
        doc, found = read_file(path, max_bytes=max_bytes)
        problems += found
        if doc is None:
            continue
        name = doc.data.get("name", path.stem) if isinstance(doc.data, dict) else path.stem
        try:
            out[str(name)] = HolidayCalendar.from_data(doc.data, str(name))
        except CalendarDataError as exc:
            for key_path, message in exc.problems:
                at = _doc_path(doc.data, key_path)
                where = ".".join(str(p) for p in key_path) or "calendar"
                problems.append(doc.problem(at, where, "flow.calendar_data", detail=message))
    return out, problems


def _doc_path(data: Any, key_path: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Map a calendar key path onto the document's (string keys, int list indices)."""
    out: list[str | int] = []
    node = data
    for part in key_path:
        if isinstance(node, list) and isinstance(part, int):
            out.append(part)
            node = node[part] if 0 <= part < len(node) else None
        else:
            out.append(str(part))
            node = node.get(str(part)) if isinstance(node, dict) else None
    return tuple(out)


def check_folder(root: Path, settings: Settings,
                 files: list[Path] | None = None) -> tuple[FlowSet, list[Problem]]:
    """Validate the flows of ``root`` (or just ``files`` in it); return the set and problems."""
    max_bytes = settings.ivr.max_flow_file_bytes
    fs = FlowSet(root=root)
    problems: list[Problem] = []
    fs.prompts, found = load_catalogue(root, max_bytes)
    problems += found
    catalogue_ok = not any(p.file.endswith(CATALOGUE_FILE) and p.code in (
        "flow.missing_catalogue", "flow.yaml_syntax", "flow.empty_file", "flow.not_utf8",
        "flow.too_large", "flow.unreadable", "flow.missing_key") for p in found)
    fs.calendars, found = load_calendars(root, max_bytes)
    problems += found
    docs: list[Document] = []
    for path in files if files is not None else flow_files(root):
        doc, found = read_file(path, max_bytes=max_bytes)
        problems += found
        if doc is not None:
            docs.append(doc)
    owners: dict[str, str] = {}
    parsed: list[tuple[Document, s.Flow]] = []
    for doc in docs:
        flow, found = _shape(doc)
        problems += found
        if flow is None:
            continue
        if flow.id in owners:
            problems.append(doc.problem(("flow",), "flow", "flow.duplicate_flow", flow=flow.id,
                                        other=owners[flow.id]))
            continue
        owners[flow.id] = doc.file
        fs.flows[flow.id] = flow
        parsed.append((doc, flow))
    for doc, flow in parsed:
        problems += _References(doc, flow, fs, settings, catalogue_ok).check()
        problems += _graph(doc, flow)
    problems += _subflow_cycles(fs, {f.id: d for d, f in parsed})
    problems.sort(key=lambda p: (p.file, p.line, p.col, p.code))
    return fs, problems


# --- shape -----------------------------------------------------------------------------


def _shape(doc: Document) -> tuple[s.Flow | None, list[Problem]]:
    data = doc.data
    problems: list[Problem] = []
    if not isinstance(data, dict):
        return None, [doc.problem((), "(根)", "flow.not_mapping")]
    for key in data:
        if key not in s.FLOW_KEYS:
            problems.append(doc.problem((key,), key, "flow.unknown_top_key", at_key=True,
                                        **{"key": key, "allowed": ", ".join(sorted(s.FLOW_KEYS))}))
    for key in ("flow", "start", "nodes"):
        if key not in data:
            problems.append(doc.problem((), key, "flow.missing_key", key=key))
    flow_id = data.get("flow")
    if "flow" in data and (not isinstance(flow_id, str) or not _is_flow_id(flow_id)):
        problems.append(doc.problem(("flow",), "flow", "flow.bad_flow_id", value=flow_id))
    for key in ("name", "description", "start"):
        if key in data and not isinstance(data[key], str):
            problems.append(doc.problem((key,), key, "flow.wrong_value",
                                        value=show_value(data[key]), expected="应为字符串"))
    anytime = data.get("anytime", {})
    if not isinstance(anytime, dict):
        problems.append(doc.problem(("anytime",), "anytime", "flow.not_mapping"))
        anytime = {}
    for key, target in anytime.items():
        if len(key) != 1 or key not in "0123456789*#":
            problems.append(doc.problem(("anytime", key), f"anytime.{key}",
                                        "flow.bad_anytime_key", at_key=True, **{"key": key}))
        if not isinstance(target, str):
            problems.append(doc.problem(("anytime", key), f"anytime.{key}", "flow.wrong_value",
                                        value=show_value(target), expected="应为节点名"))
    variables = data.get("vars", {})
    if not isinstance(variables, dict):
        problems.append(doc.problem(("vars",), "vars", "flow.not_mapping"))
        variables = {}
    raw_nodes = data.get("nodes")
    nodes: dict[str, s.Node] = {}
    if "nodes" in data and not isinstance(raw_nodes, dict):
        problems.append(doc.problem(("nodes",), "nodes", "flow.not_mapping"))
    elif isinstance(raw_nodes, dict):
        if not raw_nodes:
            problems.append(doc.problem(("nodes",), "nodes", "flow.no_nodes"))
        for node_id, raw in raw_nodes.items():
            node, found = _node(doc, node_id, raw)
            problems += found
            if node is not None:
                nodes[node_id] = node
    if problems and (not isinstance(flow_id, str) or not isinstance(raw_nodes, dict)):
        return None, problems
    bad_ids = {str(k) for k in (raw_nodes or {}) if k not in nodes}
    flow = s.Flow(
        id=str(flow_id), name=str(data.get("name") or flow_id), file=doc.file,
        description=str(data.get("description") or ""), start=str(data.get("start") or ""),
        anytime={k: v for k, v in anytime.items() if isinstance(v, str)},
        vars=dict(variables), nodes=nodes,
        lines={nid: doc.where(("nodes", nid), key=True)[0] for nid in (raw_nodes or {})},
        # Nodes that failed their schema still exist as targets: one typo, one problem.
        broken=frozenset(bad_ids),
    )
    return flow, problems


def _is_flow_id(value: str) -> bool:
    return bool(value) and value[0].isalpha() and value.isascii() and all(
        c.islower() or c.isdigit() or c == "_" for c in value)


def _node(doc: Document, node_id: str, raw: Any) -> tuple[s.Node | None, list[Problem]]:
    base = ("nodes", node_id)
    allowed = ", ".join(s.VERBS)
    if not _is_node_id(node_id):
        return None, [doc.problem(base, node_id, "flow.bad_node_id", at_key=True, node=node_id)]
    if not isinstance(raw, dict):
        return None, [doc.problem(base, node_id, "flow.node_not_mapping", node=node_id)]
    verbs = [k for k in raw if k in s.VERBS]
    unknown = [k for k in raw if k not in s.VERBS and k not in s.NODE_KEYS]
    problems: list[Problem] = []
    for key in unknown:
        if verbs:
            problems.append(doc.problem((*base, key), f"{verbs[0]}.{key}",
                                        "flow.unknown_node_key", at_key=True,
                                        **{"key": key, "hint": _hint(key, s.NODE_KEYS)}))
        else:
            problems.append(doc.problem((*base, key), key, "flow.unknown_verb", at_key=True,
                                        verb=key, hint=_hint(key, s.VERBS), allowed=allowed))
    if not verbs:
        if not unknown:
            problems.append(doc.problem(base, node_id, "flow.no_verb", at_key=True, node=node_id,
                                        allowed=allowed))
        return None, problems
    if len(verbs) > 1:
        problems.append(doc.problem((*base, verbs[1]), verbs[1], "flow.two_verbs", at_key=True,
                                    verbs=", ".join(verbs)))
        return None, problems
    verb = verbs[0]
    nxt = raw.get("next")
    if nxt is not None and not isinstance(nxt, str):
        problems.append(doc.problem((*base, "next"), f"{verb}.next", "flow.wrong_value",
                                    value=show_value(nxt), expected="应为节点名"))
        nxt = None
    payload = raw[verb]
    if verb == "set":
        if not isinstance(payload, dict) or not payload:
            problems.append(doc.problem((*base, verb), verb, "flow.not_mapping"))
            return None, problems
        payload = {"values": payload}
    model: type[BaseModel] = s.VERBS[verb]
    try:
        spec = model.model_validate(payload)
    except ValidationError as exc:
        problems += _schema_problems(doc, (*base, verb), verb, exc, model)
        return None, problems
    if nxt is not None:
        why = ""
        if verb not in s.CONTINUING:
            why = "它自己决定去向" if verb not in s.TERMINAL else "通话在这里离开语音导航"
        elif verb == "gather" and not spec.store:  # type: ignore[attr-defined]
            why = "菜单按 routes/otherwise 走; 只有 store 时才用 next"
        if why:
            problems.append(doc.problem((*base, "next"), f"{verb}.next", "flow.next_not_allowed",
                                        at_key=True, verb=verb, why=why))
    if problems:
        return None, problems
    note = raw.get("note")
    return s.Node(id=node_id, verb=verb, spec=spec, next=nxt,
                  note=str(note) if note is not None else None), problems


def show_value(value: Any) -> str:
    """A value as the flow's author wrote it in YAML (true, null, 'text'), not Python's repr."""
    if value is True or value is False:
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{…}"
    if isinstance(value, list):
        return "[…]"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _is_node_id(value: str) -> bool:
    return bool(value) and (value[0].isalpha() or value[0] == "_") and value.isascii() and all(
        c.isalnum() or c in "_-" for c in value) and len(value) <= 64


_CUSTOM = {"play_one_source", "enqueue_target", "transfer_target", "bad_regex"}


def _schema_problems(doc: Document, base: tuple[str, ...], verb: str, exc: ValidationError,
                     model: type[BaseModel]) -> list[Problem]:
    from hotline.i18n import expectation

    out: list[Problem] = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if p != "values") if verb == "set" else err["loc"]
        # Pydantic reports the failing union member; keep the property path only.
        loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in (
            "str", "tuple[str, ...]", "function-after", "function-before"))))
        path = (*base, *loc)
        where = ".".join(str(p) for p in (verb, *loc))
        kind = err["type"]
        ctx = err.get("ctx") or {}
        if kind == "value_error" and str(ctx.get("error", "")) in _CUSTOM:
            out.append(doc.problem(path, where, f"flow.{ctx['error']}"))
        elif kind == "extra_forbidden":
            fields = model.model_fields if len(loc) == 1 else {}
            allowed = ", ".join(fields) if fields else "见文档"
            name = str(loc[-1])
            # `timeout` on a menu means first_digit_timeout, not speech_timeout: speech
            # properties are suggested only for names that are about speech.
            similar = [f for f in fields if "speech" in name or not f.startswith("speech")]
            out.append(doc.problem(path, where, "flow.unknown_property", at_key=True,
                                   allowed=allowed, name=name, hint=_hint(name, similar)))
        elif kind == "missing":
            out.append(doc.problem(path[:-1], where, "flow.missing_property"))
        else:
            shown = show_value(err.get("input"))
            out.append(doc.problem(path, where, "flow.wrong_value", value=shown,
                                   expected=expectation(err)))
    return out


# --- references ------------------------------------------------------------------------


def edges(node: s.Node, anytime: dict[str, str] | None = None,
          ) -> Iterator[tuple[tuple[str | int, ...], str, bool]]:
    """Every way out of ``node``: (path below the verb, target, taken_without_input)."""
    spec = node.spec
    verb = node.verb
    if node.next is not None:
        silent = not (verb == "gather")  # gather's `next` needs a stored entry
        yield ("next",), node.next, silent
    if verb == "gather":
        for key, target in spec.routes.items():
            yield ("routes", key), target, False
        if spec.otherwise:
            yield ("otherwise",), spec.otherwise, True
    elif verb == "hours":
        yield ("open",), spec.open, True
        yield ("closed",), spec.closed, True
        if spec.holiday:
            yield ("holiday",), spec.holiday, True
    elif verb == "branch":
        for i, case in enumerate(spec.cases):
            yield ("cases", i, "goto"), case.goto, True
        yield ("otherwise",), spec.otherwise, True
    elif verb == "enqueue":
        if spec.overflow:
            yield ("overflow",), spec.overflow, True
        if spec.after_call:
            yield ("after_call",), spec.after_call, True
    elif verb == "transfer":
        if spec.fallback:
            yield ("fallback",), spec.fallback, True
    elif verb == "goto":
        yield ("node",), spec.node, True
    if anytime and verb in ("play", "gather"):
        for key, target in anytime.items():
            yield ("anytime", key), target, False


def prompt_refs(node: s.Node) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every catalogue prompt a node plays, with its path below the verb."""
    spec = node.spec
    for attr in ("prompt", "no_input_prompt", "invalid_prompt", "speech_prompt",
                 "speech_invalid_prompt"):
        for i, pid in enumerate(getattr(spec, attr, ()) or ()):
            yield (attr, i), pid
    for attr in ("thanks", "hold_music"):
        pid = getattr(spec, attr, None)
        if pid:
            yield (attr,), pid


class _References:
    def __init__(self, doc: Document, flow: s.Flow, fs: FlowSet, settings: Settings,
                 catalogue_ok: bool = True) -> None:
        self.doc, self.flow, self.fs, self.settings = doc, flow, fs, settings
        self.catalogue_ok = catalogue_ok
        self.problems: list[Problem] = []
        self.known_nodes = set(flow.nodes) | flow.broken
        stored = {n.spec.store for n in flow.nodes.values()
                  if n.verb == "gather" and n.spec.store}
        self.variables = set(s.TICKET_FIELDS) | s.BUILTIN_VARS | set(flow.vars) | stored

    def add(self, at: tuple[str | int, ...], where: str, code: str, /, **params: Any) -> None:
        self.problems.append(self.doc.problem(at, where, code, **params))

    def check(self) -> list[Problem]:
        flow = self.flow
        if flow.start and flow.start not in self.known_nodes:
            self.add(("start",), "start", "flow.unknown_target", target=flow.start,
                     hint=_hint(flow.start, self.known_nodes))
        for key, target in flow.anytime.items():
            self._target(("anytime", key), f"anytime.{key}", target)
        for node in flow.nodes.values():
            self._node(node)
        return self.problems

    def _target(self, path: tuple[str | int, ...], where: str, target: str) -> None:
        if target not in self.known_nodes:
            self.add(path, where, "flow.unknown_target", target=target,
                     hint=_hint(target, self.known_nodes))

    def _node(self, node: s.Node) -> None:
        base = ("nodes", node.id)
        vpath = (*base, node.verb)
        for sub, target, _silent in edges(node):
            path = (*base, "next") if sub == ("next",) else (*vpath, *sub)
            self._target(path, ".".join(str(p) for p in (node.verb, *sub)), target)
        for sub, pid in prompt_refs(node):
            if self.catalogue_ok and pid not in self.fs.prompts:
                self.add((*vpath, *sub), ".".join(str(p) for p in (node.verb, *sub[:1])),
                         "flow.unknown_prompt", prompt=pid, hint=_hint(pid, self.fs.prompts))
        check = getattr(self, f"_{node.verb}", None)
        if check is not None:
            check(node, vpath)

    def _queue(self, path: tuple[str | int, ...], where: str, queue: str | None) -> None:
        if queue and queue not in self.settings.queues:
            self.add(path, where, "flow.unknown_queue", queue=queue,
                     hint=_hint(queue, self.settings.queues),
                     known=", ".join(self.settings.queues))

    def _play(self, node: s.Node, vpath: tuple[str, ...]) -> None:
        file = node.spec.file
        if file:
            if not file.lower().endswith(".wav"):
                self.add((*vpath, "file"), "play.file", "flow.not_wav", path=file)
            elif not (self.fs.root / file).is_file():
                self.add((*vpath, "file"), "play.file", "flow.missing_file", path=file)

    def _gather(self, node: s.Node, vpath: tuple[str, ...]) -> None:
        spec = node.spec
        if spec.min_digits > spec.max_digits:
            self.add((*vpath, "min_digits"), "gather.min_digits", "flow.min_over_max",
                     min=spec.min_digits, max=spec.max_digits)
        for key in spec.routes:
            if not s.DIGIT_KEYS.match(key) or len(key) > spec.max_digits:
                self.problems.append(self.doc.problem(
                    (*vpath, "routes", key), f"gather.routes.{key}", "flow.bad_route_key",
                    at_key=True, **{"key": key, "max_digits": spec.max_digits}))
        if not spec.otherwise:
            self.add(vpath, "gather.otherwise", "flow.gather_no_otherwise")
        self._speech(node, vpath)

    def _speech(self, node: s.Node, vpath: tuple[str, ...]) -> None:
        """Spoken choices: only on menus, each phrase one route, short enough to say."""
        spec: s.Gather = node.spec
        if not spec.speech:
            for name in ("speech_timeout", "speech_prompt", "speech_invalid_prompt"):
                if name in spec.model_fields_set:
                    self.problems.append(self.doc.problem(
                        (*vpath, name), f"gather.{name}", "flow.speech_option_alone",
                        at_key=True, name=name))
            return
        if spec.store or spec.pattern or not spec.routes:
            self.problems.append(self.doc.problem((*vpath, "speech"), "gather.speech",
                                                  "flow.speech_not_menu", at_key=True))
            return
        owner: dict[str, str] = {}
        count = 0
        for key, phrases in spec.speech.items():
            if key not in spec.routes:
                self.problems.append(self.doc.problem(
                    (*vpath, "speech", key), f"gather.speech.{key}", "flow.speech_unknown_route",
                    at_key=True, **{"key": key, "routes": ", ".join(spec.routes)}))
            for i, phrase in enumerate(phrases):
                count += 1
                at: tuple[str | int, ...] = (*vpath, "speech", key, i)
                where = f"gather.speech.{key}.{i}"
                text = phrase_key(phrase)
                if not text:
                    self.add(at, where, "flow.speech_empty_phrase")
                elif len(phrase.strip()) > MAX_PHRASE_CHARS:
                    self.add(at, where, "flow.speech_phrase_too_long", phrase=phrase,
                             limit=MAX_PHRASE_CHARS)
                elif text in owner and owner[text] != key:
                    self.add(at, where, "flow.speech_two_routes", phrase=phrase,
                             other=owner[text])
                else:
                    owner.setdefault(text, key)
        if count > MAX_PHRASES:
            self.problems.append(self.doc.problem((*vpath, "speech"), "gather.speech",
                                                  "flow.speech_too_many", at_key=True,
                                                  count=count, limit=MAX_PHRASES))

    def _hours(self, node: s.Node, vpath: tuple[str, ...]) -> None:
        spec = node.spec
        if spec.calendar and spec.calendar not in self.fs.calendars:
            self.add((*vpath, "calendar"), "hours.calendar", "flow.unknown_calendar",
                     calendar=spec.calendar, hint=_hint(spec.calendar, self.fs.calendars),
                     known=", ".join(self.fs.calendars) or "无")
        weekly = {k: list(v) if isinstance(v, tuple) else v for k, v in spec.weekly.items()}
        try:
            self.fs.schedules[(self.flow.id, node.id)] = WeeklySchedule.parse(weekly)
        except ValueError as exc:
            at: tuple[str | int, ...] = (*vpath, "weekly")
            for key, value in weekly.items():
                try:
                    WeeklySchedule.parse({key: value})
                except ValueError:
                    at = (*vpath, "weekly", key)
                    break
            where = ".".join(str(p) for p in at[2:])
            self.add(at, where, "flow.bad_schedule", detail=str(exc))

    def _set(self, node: s.Node, vpath: tuple[str, ...]) -> None:
        settable = sorted(set(s.TICKET_FIELDS) | set(self.flow.vars))
        for name, value in node.spec.values.items():
            path = (*vpath, name)
            if name in s.BUILTIN_VARS:
                self.problems.append(self.doc.problem(path, f"set.{name}", "flow.engine_variable",
                                                      at_key=True, name=name))
                continue
            if name not in self.variables:
                self.problems.append(self.doc.problem(
                    path, f"set.{name}", "flow.unknown_variable", at_key=True, name=name,
                    hint=_hint(name, settable), known=", ".join(settable)))
                continue
            self._field_value(path, f"set.{name}", name, value)

    def _field_value(self, path: tuple[str | int, ...], where: str, name: str,
                     value: Any) -> None:
        vocab = s.TICKET_FIELDS.get(name)
        if name == "tags":
            if not (isinstance(value, str) or (isinstance(value, list) and all(
                    isinstance(v, str) for v in value))):
                self.add(path, where, "flow.wrong_value", value=show_value(value),
                         expected="应为文字或文字列表")
        elif vocab is not None and value not in {m.value for m in vocab}:
            self.add(path, where, "flow.bad_field_value", field=name, value=value,
                     allowed=", ".join(m.value for m in vocab))

    def _branch(self, node: s.Node, vpath: tuple[str, ...]) -> None:
        known = sorted(self.variables) + list(CALLER_FACTS)
        for i, case in enumerate(node.spec.cases):
            for name, cond in case.when.items():
                path = (*vpath, "cases", i, "when", name)
                where = f"branch.cases.{i}.when.{name}"
                if name not in self.variables and name not in CALLER_FACTS:
                    self.problems.append(self.doc.problem(
                        path, where, "flow.unknown_variable", at_key=True, name=name,
                        hint=_hint(name, known), known=", ".join(known)))
                    continue
                detail = _condition_error(cond)
                if detail:
                    self.add(path, where, "flow.bad_condition", name=name, detail=detail)
                elif name in s.TICKET_FIELDS and s.TICKET_FIELDS[name] is not None:
                    for literal in _condition_literals(cond):
                        self._field_value(path, where, name, literal)

    def _enqueue(self, node: s.Node, vpath: tuple[str, ...]) -> None:
        self._queue((*vpath, "queue"), "enqueue.queue", node.spec.queue)

    def _voicemail(self, node: s.Node, vpath: tuple[str, ...]) -> None:
        self._queue((*vpath, "queue"), "voicemail.queue", node.spec.queue)

    def _callback(self, node: s.Node, vpath: tuple[str, ...]) -> None:
        spec = node.spec
        self._queue((*vpath, "queue"), "callback.queue", spec.queue)
        if spec.min_digits > spec.max_digits:
            self.add((*vpath, "min_digits"), "callback.min_digits", "flow.min_over_max",
                     min=spec.min_digits, max=spec.max_digits)

    def _transfer(self, node: s.Node, vpath: tuple[str, ...]) -> None:
        spec = node.spec
        if (spec.lawyer or spec.lawyer_var) and not spec.fallback:
            self.add(vpath, "transfer.fallback", "flow.transfer_needs_fallback")
        if spec.lawyer_var and spec.lawyer_var not in self.variables:
            self.add((*vpath, "lawyer_var"), "transfer.lawyer_var", "flow.unknown_variable",
                     name=spec.lawyer_var, hint=_hint(spec.lawyer_var, self.variables),
                     known=", ".join(sorted(self.variables)))

    def _subflow(self, node: s.Node, vpath: tuple[str, ...]) -> None:
        spec = node.spec
        target = self.fs.flows.get(spec.flow)
        if target is None:
            self.add((*vpath, "flow"), "subflow.flow", "flow.unknown_flow", flow=spec.flow,
                     hint=_hint(spec.flow, self.fs.flows), known=", ".join(self.fs.flows))
        elif spec.node and spec.node not in target.nodes:
            self.add((*vpath, "node"), "subflow.node", "flow.unknown_target", target=spec.node,
                     hint=_hint(spec.node, target.nodes))


def _condition_error(cond: Any) -> str:
    if isinstance(cond, dict):
        bad = sorted(set(cond) - CONDITION_OPS)
        if bad:
            return f"未知运算 {', '.join(bad)} (可用: {', '.join(sorted(CONDITION_OPS))})"
        for op in ("in", "not_in"):
            if op in cond and not isinstance(cond[op], list):
                return f"{op} 需要一个列表"
        for op in ("gt", "gte", "lt", "lte"):
            if op in cond and not isinstance(cond[op], int | float):
                return f"{op} 需要一个数字"
    return ""


def _condition_literals(cond: Any) -> list[Any]:
    if isinstance(cond, dict):
        out: list[Any] = []
        for op, value in cond.items():
            if op in ("eq", "ne"):
                out.append(value)
            elif op in ("in", "not_in"):
                out += list(value)
        return out
    if isinstance(cond, list):
        return list(cond)
    return [cond]


# --- graph -----------------------------------------------------------------------------


def _graph(doc: Document, flow: s.Flow) -> list[Problem]:
    """Unreachable nodes, silent loops and traps, each reported once, without cascades.

    A node that failed its schema and a target that does not exist are unknowns: their exits
    are not known, so they count as ways out, and reachability is not judged at all while a
    flow has any (the typo is already reported; its consequences would only be noise).
    """
    problems: list[Problem] = []
    nodes = flow.nodes
    known = set(nodes)
    out_all: dict[str, list[str]] = {n: [] for n in nodes}
    out_silent: dict[str, list[str]] = {n: [] for n in nodes}
    unknowns: set[str] = set(flow.broken)
    for node in nodes.values():
        for _sub, target, silent in edges(node, flow.anytime):
            if target not in known:
                unknowns.add(target)
            out_all[node.id].append(target)
            if silent and target in known:
                out_silent[node.id].append(target)
    if flow.start not in known:
        unknowns.add(flow.start)
    if not unknowns:
        seen: set[str] = set()
        stack = [flow.start, *flow.anytime.values()]
        while stack:
            nid = stack.pop()
            if nid in seen or nid not in nodes:
                continue
            seen.add(nid)
            stack += out_all[nid]
        for nid in nodes:
            if nid not in seen:
                problems.append(doc.problem(("nodes", nid), nid, "flow.unreachable",
                                            at_key=True, node=nid))
    silent_nodes: set[str] = set()
    for comp in _cycles(out_silent):
        silent_nodes |= comp
        ordered = sorted(comp, key=lambda n: flow.lines.get(n, 0))
        problems.append(doc.problem(("nodes", ordered[0]), ordered[0], "flow.silent_loop",
                                    at_key=True, cycle=" → ".join([*ordered, ordered[0]])))
    # Traps: cycles the caller can only go round by keying, with no exit to an end.
    can_end = {n.id for n in nodes.values()
               if n.verb in s.TERMINAL or (n.verb in s.CONTINUING and n.next is None
                                           and n.verb != "gather")} | unknowns
    changed = True
    while changed:
        changed = False
        for nid, targets in out_all.items():
            if nid not in can_end and any(t in can_end for t in targets):
                can_end.add(nid)
                changed = True
    trapped = {nid: [t for t in out_all[nid] if t in nodes] for nid in nodes
               if nid not in can_end}
    for comp in _cycles(trapped):
        if comp & silent_nodes:
            continue
        first = min(comp, key=lambda n: flow.lines.get(n, 0))
        problems.append(doc.problem(("nodes", first), first, "flow.no_way_out", at_key=True,
                                    verb=nodes[first].verb, node=first))
    return problems


def _cycles(graph: dict[str, list[str]]) -> list[set[str]]:
    """Strongly connected components that contain a cycle (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            nid, i = work.pop()
            if i == 0:
                index[nid] = low[nid] = counter
                counter += 1
                stack.append(nid)
                on_stack.add(nid)
            succ = graph[nid]
            if i < len(succ):
                work.append((nid, i + 1))
                nxt = succ[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[nid] = min(low[nid], index[nxt])
                continue
            if low[nid] == index[nid]:
                comp: set[str] = set()
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.add(top)
                    if top == nid:
                        break
                if len(comp) > 1 or nid in graph[nid]:
                    result.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[nid])
    return result


def _subflow_cycles(fs: FlowSet, docs: dict[str, Document]) -> list[Problem]:
    calls: dict[str, list[str]] = {fid: [] for fid in fs.flows}
    where: dict[tuple[str, str], str] = {}
    for fid, flow in fs.flows.items():
        for node in flow.nodes.values():
            if node.verb == "subflow" and node.spec.flow in fs.flows:
                calls[fid].append(node.spec.flow)
                where.setdefault((fid, node.spec.flow), node.id)
    problems: list[Problem] = []
    for comp in _cycles(calls):
        ordered = sorted(comp)
        first = ordered[0]
        nxt = next(t for t in calls[first] if t in comp)
        node_id = where[(first, nxt)]
        problems.append(docs[first].problem(("nodes", node_id, "subflow", "flow"),
                                            "subflow.flow", "flow.subflow_cycle",
                                            cycle=" → ".join([*ordered, first])))
    return problems
