"""Settings: ``hotline.toml`` overlaid by ``HOTLINE_*`` environment variables, validated once.

Precedence, lowest first: built-in defaults → the config file → environment variables. The
file is ``--config PATH``, else ``$HOTLINE_CONFIG``, else ``./hotline.toml`` when it exists;
with none of them the embedded defaults run the whole hotline (SQLite in ``var/``).

An environment variable names a key as ``HOTLINE_<SECTION>_<KEY>`` in upper case, e.g.
``HOTLINE_API_PORT=8400`` or ``HOTLINE_DATABASE_URL=postgresql://...``; top-level keys drop the
section (``HOTLINE_TIMEZONE``). Values are parsed like TOML values would be (``8400`` is an
int, ``true`` a bool, ``["a","b"]`` a list). Relative paths are resolved against the config
file's folder, or the working directory when there is no file.

Every problem becomes a :class:`~hotline.errors.ConfigError` naming the key, the bad value,
where it came from and what was expected.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hotline.domain import Language, QueueStrategy
from hotline.errors import ConfigError

ENV_PREFIX = "HOTLINE_"
# Environment variables with our prefix that are not configuration keys.
_ENV_RESERVED = ("HOTLINE_CONFIG", "HOTLINE_TEST_")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    """The ledger's database."""

    url: str = "sqlite:///var/hotline.db"
    echo: bool = False


class SipSettings(_Section):
    """The SIP front callers and trunks dial (Kamailio from the telephony issue)."""

    host: str = "127.0.0.1"
    port: int = Field(5060, ge=1, le=65535)
    transports: tuple[Literal["udp", "tcp"], ...] = ("udp", "tcp")
    # Requests per 2 s from one address before the front bans it for flood_ban_seconds.
    flood_limit: int = Field(64, ge=8, le=100000)
    flood_ban_seconds: int = Field(300, ge=1, le=86400)
    # Addresses or networks exempt from the flood guard (an SBC or PBX in front of us).
    trusted: tuple[str, ...] = ()

    @field_validator("trusted")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"应为 IP 地址或网段 (例如 10.0.0.0/8), 有误: {item}") from None
        return value


class TelephonySettings(_Section):
    """Media workers (pjsua2 processes) behind the SIP front."""

    enabled: bool = True
    workers: int = Field(8, ge=1, le=1000)
    # Legs kept for each admitted call: the caller, the lawyer, a consultation/transfer
    # target and a supervisor. A worker admits max_legs // legs_per_call callers (the PyPI
    # pjsua2 wheel carries 4 legs: 1 caller per worker; 2 here means no attended transfer or
    # conference when a worker's other call has a lawyer too).
    legs_per_call: int = Field(4, ge=1, le=16)
    # Upper bound on callers per worker; 0 = as many as legs_per_call allows.
    calls_per_worker: int = Field(0, ge=0, le=64)
    worker_host: str = "127.0.0.1"
    worker_sip_port_base: int = Field(5100, ge=1024, le=65000)
    rtp_port_base: int = Field(20000, ge=1024, le=65000)
    rtp_ports_per_worker: int = Field(40, ge=8, le=1000)
    # Longest a caller waits in one queue before its overflow (caps queues.*.max_wait).
    queue_wait: int = Field(300, ge=5, le=7200)  # cap on any queue's max_wait
    # Duty lawyers' phones rung in turn for queued calls until the ACD lands (SIP URIs).
    lawyer_uris: tuple[str, ...] = ()
    # Seconds a lawyer's phone (or a transfer target) rings before the next one is tried.
    ring_timeout: int = Field(20, ge=5, le=120)
    # A call still up after this many seconds is ended (end reason: timeout).
    max_call_seconds: int = Field(4 * 3600, ge=60, le=24 * 3600)

    @field_validator("lawyer_uris")
    @classmethod
    def _lawyer_uris(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from hotline.telephony.front_config import sip_uri_ok

        bad = [uri for uri in value if not sip_uri_ok(uri)]
        if bad:
            raise ValueError(f"应为 SIP URI 列表 (例如 [\"sip:8001@10.0.0.21\"]), 有误: {bad[0]}")
        return value


class ApiSettings(_Section):
    """The HTTP + WebSocket API for consoles."""

    host: str = "127.0.0.1"
    port: int = Field(8348, ge=1, le=65535)
    # Hours a console login stays valid (a shift and a bit); then the lawyer logs in again.
    token_hours: float = Field(12.0, gt=0, le=168)


class TrunkSettings(_Section):
    """The upstream SIP trunk that outside numbers (12345, 110, any PSTN number) go to.

    Workers dial ``sip:<number>@<front>``; the front relays those to the trunk. With
    ``username`` empty the trunk authenticates the front by its IP address (common with
    Chinese carriers): nothing is registered and no password is used. With a username the
    front registers every ``expires`` seconds and answers the trunk's digest challenges.
    Values given are checked even when the trunk is disabled; ``registrar`` and the
    username/password pairing only matter once it is enabled.
    """

    enabled: bool = False
    # The trunk's SIP URI: its registrar, or just its address for an IP trunk.
    registrar: str = Field("", validate_default=True)
    # Before username, whose validator checks the pair (and so names the key, never the secret).
    password: SecretStr = SecretStr("")
    username: str = Field("", validate_default=True)
    # Where requests for the trunk are sent instead of the registrar's host:port ("" = none).
    proxy: str = ""
    expires: int = Field(300, ge=60, le=86400)

    @field_validator("username", "password", mode="before")
    @classmethod
    def _digits_are_text(cls, value: Any) -> Any:
        # HOTLINE_TRUNK_USERNAME=862787654321 arrives as a TOML integer; it is an account name.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("registrar")
    @classmethod
    def _registrar_uri(cls, value: str, info: ValidationInfo) -> str:
        from hotline.telephony.front_config import sip_uri_ok

        if not value:
            if info.data.get("enabled"):
                raise ValueError("启用中继 (trunk.enabled = true) 时必须填写, "
                                 "例如 sip:trunk.example.cn 或 sip:10.1.2.3:5060")
            return value
        if not sip_uri_ok(value):
            raise ValueError("应为 SIP URI, 例如 sip:trunk.example.cn 或 sip:10.1.2.3:5060")
        return value

    @field_validator("proxy")
    @classmethod
    def _proxy_uri(cls, value: str) -> str:
        from hotline.telephony.front_config import sip_uri_ok

        if value and not sip_uri_ok(value):
            raise ValueError("应为 SIP URI (例如 sip:10.1.2.4:5060), 或留空")
        return value

    @field_validator("username")
    @classmethod
    def _username_and_password(cls, value: str, info: ValidationInfo) -> str:
        from hotline.telephony.front_config import trunk_user_ok

        if not trunk_user_ok(value):
            raise ValueError("应为 SIP 用户名 (字母、数字和 _ . - + 等, 最多 64 个), "
                             "IP 认证的中继留空")
        secret = info.data.get("password")
        has_password = isinstance(secret, SecretStr) and bool(secret.get_secret_value())
        if info.data.get("enabled") and value and not has_password:
            raise ValueError("需要注册的中继 (填写了 username) 必须同时填写 trunk.password")
        if info.data.get("enabled") and has_password and not value:
            raise ValueError("填写了 trunk.password 却没有 username: 需要注册的中继两者都要填写, "
                             "IP 认证的中继两者都留空")
        return value

    @model_validator(mode="after")
    def _password_fits(self) -> TrunkSettings:
        # Reported for the whole section so the password itself is never echoed.
        from hotline.telephony.front_config import trunk_password_ok

        if not trunk_password_ok(self.password.get_secret_value()):
            raise ValueError("trunk.password 不能包含引号、反斜杠、换行或 %%")
        return self


class PathSettings(_Section):
    """Data folders; relative paths are resolved against the config file's folder."""

    var: Path = Path("var")
    recordings: Path = Path("recordings")
    flows: Path = Path("ivr_flows")
    models: Path = Path("models")
    desk: Path = Path("desk.yaml")


class IvrSettings(_Section):
    """How flows run and prompts are made."""

    default_flow: str = "main"
    tts_voice: str = "cmn"
    tts_words_per_minute: int = Field(150, ge=80, le=400)
    prompt_sample_rate: Literal[8000, 16000] = 8000
    max_flow_file_bytes: int = Field(1_000_000, ge=1_000, le=50_000_000)


class SpeechSettings(_Section):
    """Speech to text (Vosk): which model serves which use, and how many live streams.

    A model is a name from ``models/manifest.toml`` (unpacked in ``paths.models``) or a path
    to a model folder. A missing model is reported at start-up with the command that installs
    it; calls are answered without live transcription.
    """

    enabled: bool = True
    # Live captions use a small model; batch re-transcription the large one when installed
    # (else the live model).
    live_model: str = "vosk-model-small-cn-0.22"
    batch_model: str = "vosk-model-cn-0.22"
    # Per dialed line (a flow name from [lines]) or per caller language, the live model.
    line_models: dict[str, str] = Field(default_factory=dict)
    language_models: dict[Language, str] = Field(default_factory=dict)
    # At most this many legs are transcribed live at once (0: from the machine's cores, see
    # docs/hotline.toml); legs beyond it are transcribed in batch after hang-up.
    max_live_streams: int = Field(0, ge=0, le=1000)
    # The nightly batch job (local time, HH:MM) for calls without a live transcript.
    nightly_at: str = "02:30"
    # Text pipeline rules (YAML); empty: the packaged defaults in hotline/speech/text/.
    lexicon: str = ""
    rules: str = ""

    @field_validator("nightly_at")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
            raise ValueError("应为 HH:MM（24 小时制）")
        return value


class RosterSettings(_Section):
    """The duty roster: shift templates, who may take calls when, the scheduler's jobs."""

    # Shift templates (YAML); relative to the configuration file's folder.
    templates: Path = Path("roster/shifts.yaml")
    # Holiday calendar name (a file in the flows folder's calendars/).
    calendar: str = "china"
    # "auto": while a published shift covers the time, only its lawyers get offers (others
    # logged in wait; duty phones always take calls); "on": always (no roster = nobody);
    # "off": anyone logged in takes calls.
    enforce: Literal["auto", "on", "off"] = "auto"
    # A shift with none of its lawyers logged in this long after its start alerts supervisors.
    unstaffed_alert_minutes: int = Field(10, ge=1, le=240)
    # Several server nodes on one database: only the lease holder runs the scheduler role.
    scheduler: Literal["auto", "on", "off"] = "auto"
    lease_seconds: int = Field(30, ge=5, le=3600)
    # The solver's time limit per plan (seconds) and the hard rules' defaults.
    solver_seconds: float = Field(60.0, gt=0, le=3600)
    min_rest_hours: float = Field(11.0, ge=0, le=48)
    max_shifts: int = Field(22, ge=1, le=93)
    max_consecutive_nights: int = Field(3, ge=1, le=31)
    # Staffing (Erlang): the target "share/seconds", answer rate, history weeks, its line.
    target_sl: str = "0.8/15"
    answer_rate: float = Field(0.95, gt=0, lt=1)
    staffing_weeks: int = Field(4, ge=1, le=52)
    staffing_line: str = "main"

    @field_validator("target_sl")
    @classmethod
    def _sl(cls, value: str) -> str:
        if not re.fullmatch(r"0?\.\d+/\d+", value):
            raise ValueError("应为 比例/秒, 如 0.8/15")
        return value


class CallerSettings(_Section):
    """Caller facts the flows can branch on."""

    repeat_window_days: int = Field(30, ge=1, le=3650)
    # 首问负责: a repeat caller waits this long for the lawyer of their last ticket (when that
    # lawyer is on duty) before anyone else may take the call.
    prefer_last_lawyer_seconds: int = Field(30, ge=0, le=600)
    # Callbacks (回拨): tries per request, and the pause before trying again.
    callback_attempts: int = Field(3, ge=1, le=10)
    callback_retry_minutes: int = Field(10, ge=1, le=1440)


class QueueSettings(_Section):
    """One ACD queue; behaviour arrives with the queue issue, flows reference it now."""

    name: str
    skills: tuple[str, ...] = ()
    languages: tuple[Language, ...] = (Language.MANDARIN,)
    strategy: QueueStrategy = QueueStrategy.LONGEST_IDLE_AGENT
    max_wait: int = Field(300, ge=10, le=7200)
    wrap_up: int = Field(30, ge=0, le=1800)
    # Where a caller goes after max_wait (see docs/hotline.toml): another queue's code,
    # "flow" (the flow's own overflow branch; also when unset), "callback" (a callback
    # request for the caller's number, keeping their place) or "transfer:<number>".
    overflow: str | None = None
    # Overflow at once when no lawyer who could take this queue is signed in.
    overflow_when_unstaffed: bool = False

    @field_validator("overflow")
    @classmethod
    def _overflow_form(cls, value: str | None) -> str | None:
        if value is None or value in ("flow", "callback") or re.fullmatch(
                r"[a-z][a-z0-9_]{0,63}", value) or re.fullmatch(r"transfer:\+?[0-9]{3,20}",
                                                                 value):
            return value
        raise ValueError("应为队列代码、flow、callback 或 transfer:号码")


def _default_queues() -> dict[str, QueueSettings]:
    q = QueueSettings
    return {
        "general": q(name="综合咨询", skills=("general",)),
        "labor": q(name="劳动争议", skills=("labor",), overflow="general"),
        "marriage_family": q(name="婚姻家庭", skills=("marriage_family",), overflow="general"),
        "contract": q(name="合同纠纷", skills=("contract",), overflow="general"),
        "legal_aid": q(name="法律援助", skills=("legal_aid",), overflow="general"),
        "mediation": q(name="人民调解", skills=("mediation",), overflow="general"),
        "sme": q(name="中小企业法律服务", skills=("sme",), overflow="general"),
        "dialect": q(name="方言坐席", skills=("general",),
                     languages=(Language.HUBEI, Language.SOUTHWESTERN), overflow="general"),
    }


def _default_lines() -> dict[str, str]:
    return {"12348": "main", "12348-8": "sme"}


class Settings(_Section):
    """The whole configuration; see ``docs/hotline.toml`` for every key documented."""

    timezone: str = "Asia/Shanghai"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    database: DatabaseSettings = DatabaseSettings()
    sip: SipSettings = SipSettings()
    trunk: TrunkSettings = TrunkSettings()
    api: ApiSettings = ApiSettings()
    telephony: TelephonySettings = TelephonySettings()
    paths: PathSettings = PathSettings()
    ivr: IvrSettings = IvrSettings()
    callers: CallerSettings = CallerSettings()
    speech: SpeechSettings = SpeechSettings()
    roster: RosterSettings = RosterSettings()
    queues: dict[str, QueueSettings] = Field(default_factory=_default_queues)
    lines: dict[str, str] = Field(default_factory=_default_lines)
    # Where relative paths were resolved from; not a configuration key.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("tz") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The hotline's local time zone (schedules, holidays, reports)."""
        return ZoneInfo(self.timezone)

    def path(self, name: Literal["var", "recordings", "flows", "models", "desk"]) -> Path:
        """An absolute data folder."""
        p: Path = getattr(self.paths, name)
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL with a relative SQLite path made absolute."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
            rel = url[len(prefix):]
            if rel != ":memory:" and not rel.startswith("file:"):
                return prefix + str((self.base_dir / rel).resolve())
        return url


def _parse_env_value(raw: str) -> Any:
    """Parse an environment value the way a TOML value would read."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        try:
            return json.loads(raw)
        except ValueError:
            return raw


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Map HOTLINE_* variables onto keys; return (overrides, key → variable name)."""
    sections = {
        name: field.annotation
        for name, field in Settings.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, _Section)
    }
    overrides: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for var, raw in sorted(environ.items()):
        if not var.startswith(ENV_PREFIX) or var.startswith(_ENV_RESERVED):
            continue
        name = var[len(ENV_PREFIX):].lower()
        placed = False
        for section, model in sections.items():
            key = name[len(section) + 1:]
            if name.startswith(section + "_") and key in model.model_fields:
                overrides.setdefault(section, {})[key] = _parse_env_value(raw)
                origin[f"{section}.{key}"] = var
                placed = True
                break
        if not placed:
            if name in Settings.model_fields and name not in sections and name != "base_dir":
                overrides[name] = _parse_env_value(raw)
                origin[name] = var
            else:
                raise ConfigError("config.unknown_env", var=var)
    return overrides, origin


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def find_config_file(explicit: str | os.PathLike[str] | None,
                     environ: Mapping[str, str]) -> Path | None:
    """The config file to read, or None for the embedded defaults."""
    if explicit:
        return Path(explicit)
    if environ.get("HOTLINE_CONFIG"):
        return Path(environ["HOTLINE_CONFIG"])
    local = Path("hotline.toml")
    return local if local.is_file() else None


def load_settings(config: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read, merge and validate the configuration; raise ConfigError on the first bad key."""
    env = os.environ if environ is None else environ
    path = find_config_file(config, env)
    data: dict[str, Any] = {}
    origin_file = "默认值"
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("config.file_missing", path=str(path)) from None
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError("config.file_syntax", path=str(path), detail=str(exc)) from None
        origin_file = str(path)
    overrides, origin_env = _env_overrides(env)
    merged = _merge(data, overrides)
    base = path.resolve().parent if path is not None else Path.cwd()
    try:
        return Settings.model_validate({**merged, "base_dir": base})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        source = next((v for k, v in origin_env.items() if key.startswith(k)), origin_file)
        from hotline.i18n import expectation

        raise ConfigError(
            "config.invalid_value",
            key=key,
            value=_show(err.get("input")),
            source=source,
            expected=expectation(err),
        ) from None


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{…}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
