"""``hotline serve``'s side of the speech service: which models, how many streams, the process.

The models are resolved before anything starts: a missing live model is one clear log
line naming the command that installs it, and the hotline answers calls without live
transcription (those calls are transcribed in batch once a model is installed). The
service process is restarted when it dies; calls it was transcribing go to batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hotline.config import Settings
from hotline.errors import HotlineError
from hotline.speech.models import resolve

if TYPE_CHECKING:
    from hotline.callcenter import LiveCall

log = logging.getLogger("hotline.speech")
# Live streams per core that stay real time beside the media workers (bench/speech_bench.py,
# README's performance section): a live stream costs 0.30–0.39 of a core; alone, 2 cores
# carried 6 streams, but with 50 calls up on the same 2 cores only 2 stayed near real time.
# Too many live streams lag and drop words; too few only send calls to batch: err low.
STREAMS_PER_CORE = 1
RESTART_DELAY = 2.0
MAX_SOCKET_PATH = 107


def default_capacity(settings: Settings) -> int:
    """``speech.max_live_streams``, or what this machine's cores carry (0 = auto)."""
    configured = settings.speech.max_live_streams
    return configured or max(2, STREAMS_PER_CORE * (os.cpu_count() or 1))


@dataclass(frozen=True)
class SpeechPlan:
    """The models found for live use, and why live transcription is off (if it is).

    Attributes:
        models: Model name → folder, for every live model that is installed.
        live: The default live model's name (a key of ``models`` unless ``why_off``).
        why_off: Operator-facing reason there is no live transcription at all, or "".
        problems: One line per configured model that is missing (others may still work).
        capacity: K, the live streams allowed at once.
    """

    models: dict[str, Path]
    live: str
    why_off: str
    problems: tuple[str, ...] = ()
    capacity: int = 0
    line_models: dict[str, str] = field(default_factory=dict)
    language_models: dict[str, str] = field(default_factory=dict)

    def model_for(self, call: LiveCall, flow_of: Callable[[str], str]) -> str | None:
        """The installed live model for the call's line, else its language, else default."""
        for name in (self.line_models.get(call.line), self.line_models.get(flow_of(call.line)),
                     self.language_models.get(call.language.value), self.live):
            if name:
                return name if name in self.models else None
        return None


def plan(settings: Settings) -> SpeechPlan:
    """Resolve every configured live model; never raises."""
    s = settings.speech
    capacity = default_capacity(settings)
    if not s.enabled:
        return SpeechPlan({}, s.live_model, "实时转写已关闭 (speech.enabled = false)",
                          capacity=capacity)
    wanted = {s.live_model, *s.line_models.values(), *s.language_models.values()}
    found: dict[str, Path] = {}
    problems: list[str] = []
    for name in sorted(wanted):
        try:
            found[name] = resolve(name, settings.path("models"), base_dir=settings.base_dir)
        except HotlineError as exc:
            problems.append(str(exc))
    why = "" if s.live_model in found else (
        f"语音模型不可用, 本次运行不做实时转写 (通话结束后可批量转写): "
        f"{problems[0] if problems else s.live_model}")
    rules = _check_text_rules(settings)
    if rules and not why:
        why = f"文本规则文件有误, 本次运行不做实时转写:\n{rules}"
    return SpeechPlan(found, s.live_model, why, tuple(problems), capacity,
                      dict(s.line_models), {str(k): v for k, v in s.language_models.items()})


def text_rule_paths(settings: Settings) -> tuple[Path | None, Path | None]:
    """``speech.lexicon`` and ``speech.rules`` as paths (None: the packaged defaults)."""
    def one(value: str) -> Path | None:
        if not value:
            return None
        path = Path(value)
        return path if path.is_absolute() else settings.base_dir / path
    return one(settings.speech.lexicon), one(settings.speech.rules)


def _check_text_rules(settings: Settings) -> str:
    """Every problem of the configured lexicon / rules files, or ""."""
    from hotline.speech.text.pipeline import TextPipeline

    try:
        TextPipeline.from_files(*text_rule_paths(settings))
    except HotlineError as exc:
        return str(exc)
    return ""


def socket_paths(var_dir: Path) -> tuple[Path, Path]:
    """(tap socket, control socket) under ``var/run``, or a short temp folder when deep."""
    run = var_dir / "run"
    if len(str(run / "speech-ctl.sock")) > MAX_SOCKET_PATH:
        digest = hashlib.sha256(str(var_dir.resolve()).encode()).hexdigest()[:12]
        run = Path(tempfile.gettempdir()) / f"hotline-{digest}"
    return run / "speech-tap.sock", run / "speech-ctl.sock"


class SpeechProcess:
    """Starts the speech service and starts it again when it dies."""

    def __init__(self, settings: Settings, speech: SpeechPlan) -> None:
        self.settings, self.speech = settings, speech
        self.tap_path, self.control_path = socket_paths(settings.path("var"))
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def command(self) -> list[str]:
        """The service's command line."""
        cmd = [sys.executable, "-m", "hotline.speech.server", "--tap", str(self.tap_path),
               "--control", str(self.control_path), "--capacity", str(self.speech.capacity),
               "--db", self.settings.database_url, "--preload", self.speech.live,
               "--log-level", self.settings.log_level]
        for name, path in self.speech.models.items():
            cmd += ["--model", f"{name}={path}"]
        lexicon, rules = text_rule_paths(self.settings)
        for flag, rule_path in (("--lexicon", lexicon), ("--rules", rules)):
            if rule_path is not None:
                cmd += [flag, str(rule_path)]
        return cmd

    def stopping(self) -> bool:
        """Whether :meth:`stop` was called (the process may end any moment then)."""
        return self._stopping

    async def start(self) -> None:
        """Spawn the service and keep it running."""
        self.tap_path.parent.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.get_running_loop().create_task(self._keep())

    async def _keep(self) -> None:
        while not self.stopping():
            self.process = await asyncio.create_subprocess_exec(
                *self.command(), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
            assert self.process.stderr is not None
            async for raw in self.process.stderr:
                line = raw.decode("utf-8", "replace").rstrip()
                # The service logs through the same format; pass its lines on as they are.
                log.info("[语音] %s", line.split(": ", 1)[-1] if " hotline." in line else line)
            code = await self.process.wait()
            if self.stopping():
                return
            self.restarts += 1
            log.error("语音服务意外退出 (退出码 %s), %.0f 秒后重启", code, RESTART_DELAY)
            await asyncio.sleep(RESTART_DELAY)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        self._stopping = True
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
