"""The closed set of IVR verbs and the schema of each, as frozen pydantic models.

A flow file is a mapping with ``flow`` (its id), ``start`` (first node), optional ``name``,
``description``, ``anytime`` (keys that jump from any prompt or menu, e.g. ``"0": operator``
so a human is always one key away) and ``vars`` (custom variables with initial values), and
``nodes``: each node holds exactly one verb plus optional ``next`` (where a continuing verb goes
on) and ``note`` (a comment kept for the graph). Shorthands: ``play: id`` for one prompt,
``goto: node``, ``subflow: flow`` and ``hangup: {}`` / ``hangup: true``.

Cross-references (targets, prompts, queues, calendars) are checked in :mod:`validate`, which
also turns pydantic's errors into ``file:line:col: verb.property`` problems.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hotline.domain import Category, GreenReason, Language, Priority

NodeId = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", max_length=64)]
PromptId = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-.]*$", max_length=64)]
VarName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$", max_length=40)]
DIGIT_KEYS = re.compile(r"^[0-9*#]{1,32}$")


class _Verb(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # Prompt-list properties that also accept a single id (``prompt: menu``).
    _prompt_fields: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _prompt_lists(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k in data for k in cls._prompt_fields):
            data = dict(data)
            for key in cls._prompt_fields:
                if key in data:
                    data[key] = _prompt_list(data[key])
        return data


def _prompt_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class Play(_Verb):
    """Play catalogue prompts, a WAV file, or text synthesised by espeak-ng (exactly one)."""

    prompt: tuple[PromptId, ...] = ()
    file: str | None = None
    say: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    barge_in: bool = True

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"prompt": [data]}
        if isinstance(data, dict) and "prompt" in data:
            return {**data, "prompt": _prompt_list(data["prompt"])}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> Play:
        given = sum(1 for v in (self.prompt, self.file, self.say) if v)
        if given != 1:
            raise ValueError("play_one_source")
        return self


class Gather(_Verb):
    """Collect DTMF digits: a menu (``routes``) and/or an entry stored in a variable.

    A menu may also take a spoken choice: ``speech`` maps route keys to phrases (``"1": [劳动,
    工资]``), listened for after the prompt with Vosk's grammar mode. Keys keep working all the
    time and win over speech; a rejected utterance re-prompts with ``speech_invalid_prompt``
    (else ``invalid_prompt``) and the rest of the menu is keys only. ``speech_prompt`` follows
    ``prompt`` only while the menu listens, so callers are never invited to speak to a menu
    that no longer (or cannot) listen. ``speech_timeout`` is how long the menu waits after its
    prompt while listening (default and minimum: the first-digit timeout), longer because a
    spoken answer is only known once the caller stops.
    """

    _prompt_fields = ("prompt", "no_input_prompt", "invalid_prompt", "speech_prompt",
                      "speech_invalid_prompt")

    prompt: tuple[PromptId, ...] = ()
    max_digits: int = Field(1, ge=1, le=32)
    min_digits: int = Field(1, ge=1, le=32)
    terminator: Literal["#", "*", ""] = "#"
    first_digit_timeout: float = Field(5.0, ge=1, le=60)
    inter_digit_timeout: float = Field(3.0, ge=1, le=30)
    retries: int = Field(2, ge=0, le=5)
    no_input_prompt: tuple[PromptId, ...] = ()
    invalid_prompt: tuple[PromptId, ...] = ()
    routes: dict[str, NodeId] = Field(default_factory=dict)
    store: VarName | None = None
    pattern: str | None = None
    otherwise: NodeId | None = None
    speech: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    speech_timeout: float | None = Field(None, ge=1, le=60)
    speech_prompt: tuple[PromptId, ...] = ()
    speech_invalid_prompt: tuple[PromptId, ...] = ()

    @field_validator("speech", mode="before")
    @classmethod
    def _phrase_lists(cls, value: Any) -> Any:
        # `"2": 婚姻` is a list of one phrase, like `prompt: menu`.
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error:
                raise ValueError("bad_regex") from None
        return value


class Hours(_Verb):
    """Branch on a weekly schedule plus a holiday calendar.

    On a public holiday the call goes to ``holiday`` when given; without it the holiday keeps
    the weekday's hours. Adjusted working days (调休上班) use Monday's hours.
    """

    weekly: dict[str, str | tuple[str, ...]]
    calendar: str | None = None
    open: NodeId
    closed: NodeId
    holiday: NodeId | None = None


class Case(_Verb):
    """One ``branch`` case: all conditions in ``when`` must hold."""

    when: dict[str, Any] = Field(min_length=1)
    goto: NodeId


class Branch(_Verb):
    """Conditions on variables and caller facts, first match wins, else ``otherwise``."""

    cases: tuple[Case, ...] = Field(min_length=1)
    otherwise: NodeId


class Announce(_Verb):
    """What a waiting caller hears between hold music."""

    position: bool = True
    expected_wait: bool = True
    interval: int = Field(45, ge=15, le=600)


class Enqueue(_Verb):
    """Hand the call to the ACD: a queue (or skills), priority, overflow, announcements."""

    queue: str | None = None
    skills: tuple[str, ...] = ()
    priority: Priority | None = None
    max_wait: int | None = Field(None, ge=10, le=7200)
    overflow: NodeId | None = None
    announce: Announce = Announce()
    hold_music: PromptId | None = None
    offer_callback: bool = False
    after_call: NodeId | None = None

    @model_validator(mode="after")
    def _queue_or_skills(self) -> Enqueue:
        if not self.queue and not self.skills:
            raise ValueError("enqueue_target")
        return self


class Transfer(_Verb):
    """Send the call out: an outside number (12345, 110) or a lawyer by work id (点名式)."""

    _prompt_fields = ("prompt",)

    number: Annotated[str, Field(pattern=r"^\+?[0-9]{3,20}$")] | None = None
    lawyer: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,16}$")] | None = None
    lawyer_var: VarName | None = None
    prompt: tuple[PromptId, ...] = ()
    timeout: int = Field(60, ge=5, le=600)
    fallback: NodeId | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Transfer:
        if sum(1 for v in (self.number, self.lawyer, self.lawyer_var) if v) != 1:
            raise ValueError("transfer_target")
        return self


class Voicemail(_Verb):
    """Record a message that becomes a ticket for the next shift to call back."""

    _prompt_fields = ("prompt",)

    prompt: tuple[PromptId, ...] = ()
    max_seconds: int = Field(120, ge=5, le=600)
    beep: bool = True
    silence_timeout: int = Field(8, ge=2, le=60)
    thanks: PromptId | None = None
    queue: str | None = None


class Callback(_Verb):
    """Take a callback number (or the caller's own with ``#``), stored as ``callback_number``."""

    _prompt_fields = ("prompt", "invalid_prompt")

    prompt: tuple[PromptId, ...] = Field(min_length=1)
    invalid_prompt: tuple[PromptId, ...] = ()
    allow_caller_id: bool = True
    min_digits: int = Field(7, ge=3, le=20)
    max_digits: int = Field(12, ge=3, le=20)
    timeout: float = Field(8.0, ge=2, le=60)
    retries: int = Field(2, ge=0, le=5)
    thanks: PromptId | None = None
    queue: str | None = None


class Survey(_Verb):
    """Post-call satisfaction 1–5, stored on the ticket as ``satisfaction``."""

    _prompt_fields = ("prompt", "invalid_prompt")

    prompt: tuple[PromptId, ...] = Field(min_length=1)
    invalid_prompt: tuple[PromptId, ...] = ()
    timeout: float = Field(6.0, ge=2, le=30)
    retries: int = Field(1, ge=0, le=3)
    thanks: PromptId | None = None


class Goto(_Verb):
    """Jump to another node of the same flow."""

    node: NodeId

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"node": data} if isinstance(data, str) else data


class Subflow(_Verb):
    """Run another flow; when it falls off its end, continue at this node's ``next``."""

    flow: str
    node: NodeId | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"flow": data} if isinstance(data, str) else data


class Hangup(_Verb):
    """End the call, optionally after a goodbye prompt."""

    prompt: tuple[PromptId, ...] = ()
    reason: Literal["normal", "closed", "invalid", "emergency_advice"] = "normal"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if data is None or data is True:
            return {}
        if isinstance(data, str):
            return {"prompt": [data]}
        if isinstance(data, dict) and "prompt" in data:
            return {**data, "prompt": _prompt_list(data["prompt"])}
        return data


class SetVars(_Verb):
    """Set ticket fields (category, priority, language, green_reason, tags) and variables."""

    values: dict[str, Any]


VERBS: dict[str, type[BaseModel]] = {
    "play": Play,
    "gather": Gather,
    "hours": Hours,
    "set": SetVars,
    "branch": Branch,
    "enqueue": Enqueue,
    "transfer": Transfer,
    "voicemail": Voicemail,
    "callback": Callback,
    "survey": Survey,
    "goto": Goto,
    "subflow": Subflow,
    "hangup": Hangup,
}
# Verbs after which the flow continues at the node's `next` (or falls off the end).
CONTINUING = frozenset({"play", "set", "callback", "survey", "subflow", "gather"})
# Verbs that hand the call out of the IVR: the session's outcome.
TERMINAL = frozenset({"enqueue", "transfer", "voicemail", "hangup"})
# Verbs that wait for the caller to key something.
INPUT_VERBS = frozenset({"gather", "callback", "survey"})
NODE_KEYS = frozenset({"next", "note"})

# Fields `set` may write, with their closed vocabularies (None: free text / list).
TICKET_FIELDS: dict[str, type[Any] | None] = {
    "category": Category,
    "priority": Priority,
    "language": Language,
    "green_reason": GreenReason,
    "tags": None,
}
# Variables the engine itself writes.
BUILTIN_VARS = frozenset({"callback_number", "callback_queue", "satisfaction"})


class Node(BaseModel):
    """One validated node: its verb name, the verb's model, and where it goes next."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    id: str
    verb: str
    spec: Any
    next: str | None = None
    note: str | None = None


class Flow(BaseModel):
    """A validated flow, ready for the engine."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    description: str = ""
    file: str
    start: str
    anytime: dict[str, str] = Field(default_factory=dict)
    vars: dict[str, Any] = Field(default_factory=dict)
    nodes: dict[str, Node]
    lines: dict[str, int] = Field(default_factory=dict)  # node id -> line in file
    # Nodes that failed their schema: still valid targets, so one typo is one problem.
    broken: frozenset[str] = frozenset()


FLOW_KEYS = frozenset({"flow", "name", "description", "start", "anytime", "vars", "nodes"})
