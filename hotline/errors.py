"""One exception tree with stable codes.

Every error the product raises on purpose is a :class:`HotlineError` with a dotted ``code``
that never changes once released (tests, API clients and operators' scripts match on it) and
keyword ``params`` that a message template may use. Only the edges (CLI, API, console) turn a
code into words, through :mod:`hotline.i18n`, so the core never formats user text::

    HotlineError                      hotline.*
    ├── ConfigError                   config.*     bad hotline.toml / HOTLINE_* value
    │   └── TextRulesError            config.text_rules  a bad speech lexicon / rules YAML
    ├── FlowError                     flow.*       a flow set that failed to load or validate
    ├── StoreError                    store.*      database unreachable, schema out of date
    │   ├── NotFoundError             store.not_found
    │   └── ConflictError             store.conflict
    ├── AuthError                     auth.*       bad credentials, wrong role
    ├── DomainError                   domain.*     an illegal state transition or command
    ├── ExternalToolError             tool.*       espeak-ng / sox missing or failing
    ├── ModelError                    speech.model.*  a Vosk model missing, broken, bad download
    ├── RosterError                   roster.*     bad shift templates / lawyers file, no roster
    │                                              exists (with the reasons), a swap breaking a rule
    ├── ControlError                  speech.control  a bad line on the speech service's control
    └── TapStreamError                telephony.tap_stream  bytes that are not a tap stream
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class HotlineError(Exception):
    """Base of every deliberate error; ``code`` is stable, ``params`` feed the message."""

    default_code = "hotline.error"

    def __init__(self, code: str | None = None, /, **params: Any) -> None:
        self.code = code or self.default_code
        self.params: Mapping[str, Any] = params
        super().__init__(self.code, dict(params))

    def __str__(self) -> str:
        from hotline.i18n import render

        return render(self.code, self.params)

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (media workers, process pools): rebuild from
        # code and params rather than from Exception.args.
        return (_rebuild, (type(self), self.code, dict(self.params), self.__dict__))


def _rebuild(cls: type[HotlineError], code: str, params: dict[str, Any],
             state: dict[str, Any]) -> HotlineError:
    error = cls.__new__(cls)
    HotlineError.__init__(error, code, **params)
    error.__dict__.update(state)
    return error


class ConfigError(HotlineError):
    """A configuration value is missing, malformed or out of range."""

    default_code = "config.invalid"


class FlowError(HotlineError):
    """A flow set failed to load; ``problems`` lists every problem found, not just the first."""

    default_code = "flow.invalid"

    def __init__(self, problems: list[Any] | None = None, /, **_params: Any) -> None:
        problems = problems or []
        super().__init__("flow.invalid", count=len(problems))
        self.problems = problems


class StoreError(HotlineError):
    """The ledger cannot do what was asked (unreachable, out of date, constraint)."""

    default_code = "store.error"


class NotFoundError(StoreError):
    """A row named by id or work id does not exist."""

    default_code = "store.not_found"


class ConflictError(StoreError):
    """A unique value (work id, ticket number) is already taken."""

    default_code = "store.conflict"


class AuthError(HotlineError):
    """Credentials are wrong or the role may not do this."""

    default_code = "auth.denied"


class DomainError(HotlineError):
    """A command is not allowed in the current state (e.g. an illegal status transition)."""

    default_code = "domain.illegal"


class ExternalToolError(HotlineError):
    """A program we shell out to (espeak-ng, sox) is missing or failed."""

    default_code = "tool.failed"


class RosterError(HotlineError):
    """The roster cannot be built or changed as asked.

    ``roster.infeasible`` carries ``reasons`` (a list of Chinese sentences naming the shifts,
    skills and lawyers' rules in conflict); ``roster.swap_invalid`` carries ``reasons`` too;
    ``roster.templates`` / ``roster.lawyers`` carry ``problems`` (``file:line: message``).
    """

    default_code = "roster.error"


class ModelError(HotlineError):
    """A speech model is not installed, has a broken layout, or failed to download or unpack.

    Raised by :mod:`hotline.speech.models`; messages name the command that fixes the problem
    (``hotline models download NAME``) because operators meet it at server start-up.
    """

    default_code = "speech.model.error"
