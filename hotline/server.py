"""``hotline serve``: start every component that exists, supervise, stop cleanly.

Each component logs one line when it is up. SIGINT/SIGTERM stop the server (API first, then
the database); SIGHUP reloads the flows, keeping the old ones when the new ones have problems.
Later issues add the SIP front, media workers, ACD, speech and scheduler here.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from datetime import UTC, datetime
from typing import Any

import uvicorn

from hotline.api.app import create_app
from hotline.api.events import EventHub
from hotline.callcenter import SYSTEM_PROMPTS, CallCenter
from hotline.config import Settings
from hotline.desk_catalog import load_catalog
from hotline.errors import HotlineError
from hotline.ivr.registry import FlowRegistry
from hotline.ivr.tts import PromptAudio
from hotline.jobs import Jobs, Runtime
from hotline.ledger import Ledger
from hotline.looplag import LoopLag
from hotline.recovery import recover
from hotline.roster.keeper import DutyKeeper
from hotline.speech.live import LiveSpeech
from hotline.speech.supervisor import SpeechProcess
from hotline.speech.supervisor import plan as plan_speech
from hotline.store.engine import make_engine, make_session_factory, mask_url
from hotline.store.migrate import ensure_current
from hotline.store.session import session_scope
from hotline.telephony.front import FrontConfig, KamailioFront, WorkerRoute
from hotline.telephony.pool import WorkerPool

log = logging.getLogger("hotline.serve")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise HotlineError("serve.port_busy", host=host, port=port,
                           detail=exc.strerror or str(exc)) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class Telephony:
    """The running SIP side: ledger writer, coordinator, media workers, Kamailio front."""

    def __init__(self, ledger: Ledger, center: CallCenter, pool: WorkerPool,
                 front: KamailioFront, speech: SpeechProcess | None = None) -> None:
        self.ledger, self.center, self.pool, self.front = ledger, center, pool, front
        self.speech = speech

    async def stop(self) -> None:
        """Live calls first (their BYEs pass the front), then the front, workers, ledger."""
        live = len(self.center.calls)
        await self.center.shutdown()
        if live:
            log.info("已结束 %d 个进行中的通话", live)
        await asyncio.to_thread(self.front.stop)
        log.info("SIP 前端已停止")
        await self.pool.stop()
        log.info("媒体进程已停止")
        await self.center.speech.stop()
        if self.speech is not None:
            await self.speech.stop()
            log.info("语音服务已停止")
        await asyncio.to_thread(self.ledger.close)


async def _start_telephony(settings: Settings, engine: Any, registry: FlowRegistry,
                           ) -> Telephony:
    t = settings.telephony
    ledger = Ledger(make_session_factory(engine))
    audio = _prompt_audio(settings)
    center = CallCenter(settings, registry, audio, ledger, lambda *a: False)
    speech = await _start_speech(settings, center)
    lost = await asyncio.to_thread(audio.for_text, SYSTEM_PROMPTS["coordinator_lost"])
    pool = WorkerPool(settings, center.on_worker_event, center.on_worker_lost,
                      lost_prompt=str(lost))
    center.send = pool.send
    center.workers = pool.connected
    try:
        await pool.start()
        # Only now, with the calls that survived a crash known, close what it left open.
        _recover(engine, keep=pool.held)
    except BaseException:
        await pool.stop()
        await _stop_speech(center, speech)
        ledger.close()
        raise
    if pool.held:
        log.warning("接管了上次运行中仍在通话的 %d 路通话", len(pool.held))
    legs = pool.max_legs
    # Each admitted caller keeps legs for the lawyer, a transfer target and a supervisor.
    per_worker = max(1, legs // t.legs_per_call)
    if t.calls_per_worker:
        per_worker = min(per_worker, t.calls_per_worker)
    log.info("媒体进程已启动: %d 个 (每进程 %d 路, 接入 %d 路来电), SIP 端口 %d–%d",
             len(pool.slots), legs, per_worker, t.worker_sip_port_base,
             t.worker_sip_port_base + t.workers - 1)
    routes = [WorkerRoute(slot.worker_id, t.worker_host, slot.sip_port, maxload=per_worker)
              for slot in pool.slots.values()]
    front = KamailioFront(FrontConfig.from_settings(settings, routes))
    try:
        await asyncio.to_thread(front.start)
    except BaseException:
        await pool.stop()
        await _stop_speech(center, speech)
        ledger.close()
        raise
    log.info("SIP 前端 (Kamailio) 已启动: %s %s:%d, 共可接入 %d 路来电",
             "/".join(settings.sip.transports), settings.sip.host, settings.sip.port,
             per_worker * len(routes))
    await center.callbacks.restore()  # requests that waited through a restart
    return Telephony(ledger, center, pool, front, speech)


async def _start_speech(settings: Settings, center: CallCenter) -> SpeechProcess | None:
    """The speech service, when its live model is installed; the hotline runs without."""
    speech_plan = plan_speech(settings)
    for problem in speech_plan.problems:
        log.warning("语音模型: %s", problem)
    flow_of = lambda line: settings.lines.get(line, settings.ivr.default_flow)  # noqa: E731
    process = None
    if speech_plan.why_off:
        log.warning("%s", speech_plan.why_off)
    else:
        process = SpeechProcess(settings, speech_plan)
        await process.start()
        log.info("语音服务已启动: 模型 %s, 最多 %d 路实时转写",
                 ", ".join(sorted(speech_plan.models)), speech_plan.capacity)
    center.speech = LiveSpeech(
        center, control_path=process.control_path if process else None,
        tap_path=process.tap_path if process else None, capacity=speech_plan.capacity,
        model_for=lambda call: speech_plan.model_for(call, flow_of),
        why_off=speech_plan.why_off)
    center.speech.start()
    return process


async def _stop_speech(center: CallCenter, process: SpeechProcess | None) -> None:
    await center.speech.stop()
    if process is not None:
        await process.stop()


def _recover(engine: Any, keep: set[str]) -> None:
    with session_scope(make_session_factory(engine)) as session:
        done = recover(session, datetime.now(UTC), keep=keep)
    if done.calls_closed or done.recordings_closed:
        log.warning("启动恢复: 关闭了 %d 个未结束的通话, 关闭了 %d 个录音 (修复 %d 个)",
                    done.calls_closed, done.recordings_closed, done.recordings_repaired)


async def _supervise_front(telephony: Telephony) -> None:
    """Restart Kamailio if it dies; calls in the workers go on meanwhile."""
    while True:
        await asyncio.sleep(2.0)
        if not telephony.front.alive():
            log.error("SIP 前端 (Kamailio) 意外退出, 正在重启")
            try:
                await asyncio.to_thread(telephony.front.start)
                log.info("SIP 前端已重启")
            except HotlineError as exc:
                log.error("SIP 前端重启失败: %s", exc)


def _prompt_audio(settings: Settings) -> PromptAudio:
    return PromptAudio(settings.path("var") / "prompts", voice=settings.ivr.tts_voice,
                       words_per_minute=settings.ivr.tts_words_per_minute,
                       sample_rate=settings.ivr.prompt_sample_rate)


def prepare_prompts(settings: Settings, registry: FlowRegistry) -> tuple[int, int]:
    """Render every catalogue prompt to 8 kHz WAV once (TTS or resampled file)."""
    audio = _prompt_audio(settings)
    audio.check_tools()
    fresh = 0
    for entry in registry.current.prompts.values():
        before = len(list(audio.cache_dir.glob("*.wav"))) if audio.cache_dir.exists() else 0
        if entry.file is not None:
            audio.for_file(entry.file)
        else:
            audio.for_text(entry.text)
        after = len(list(audio.cache_dir.glob("*.wav")))
        fresh += after - before
    for text in SYSTEM_PROMPTS.values():
        audio.for_text(text)
    return len(registry.current.prompts), fresh


async def run(settings: Settings, config_file: str | None = None) -> None:
    """Run until a stop signal; raises HotlineError when a component cannot start.

    ``config_file`` is the configuration file the server was started with (scheduled jobs that
    run ``hotline`` commands pass it on).
    """
    engine = make_engine(settings.database_url, echo=settings.database.echo)
    try:
        revision = ensure_current(engine)
        log.info("数据库就绪: %s (结构版本 %s)", mask_url(settings.database_url), revision)
        if not settings.telephony.enabled:
            _recover(engine, keep=set())

        registry = FlowRegistry(settings)
        flows = registry.current
        log.info("呼叫流程已加载: %d 个 (%s), 共 %d 个节点, 号码 %s", len(flows.flows),
                 ", ".join(sorted(flows.flows)), sum(len(f.nodes) for f in flows.flows.values()),
                 ", ".join(f"{k}→{v}" for k, v in settings.lines.items()))

        total, fresh = await asyncio.to_thread(prepare_prompts, settings, registry)
        log.info("提示音就绪: %d 条 (本次新合成 %d 条)", total, fresh)

        lag = LoopLag()
        lag.start()

        def status() -> dict[str, Any]:
            body: dict[str, Any] = {"flows": sorted(registry.current.flows),
                                    "database": revision, "loop_lag": lag.report()}
            if telephony is not None:
                speech = telephony.center.speech
                body["speech"] = {"live": speech.available, "streams": speech.active,
                                  "capacity": speech.capacity,
                                  "off": speech.why_off or None}
            body["scheduler"] = {"role": jobs.holds_role, "node": jobs.node}
            return body

        sock = _bind(settings.api.host, settings.api.port)
        try:
            telephony = await _start_telephony(settings, engine, registry) if (
                settings.telephony.enabled) else None
        except BaseException:
            sock.close()
            raise
        hub = EventHub()
        factory = make_session_factory(engine)
        jobs = Jobs(settings, engine, config_file)
        keeper: DutyKeeper | None = None
        if telephony is not None:
            telephony.center.publish = hub.publish
            keeper = DutyKeeper(telephony.center, factory, settings.roster.enforce, jobs.local)
        jobs.runtime = Runtime(settings, factory, telephony.center if telephony else None,
                               keeper)
        app = create_app(status, factory, settings.api.token_hours,
                         center=lambda: telephony.center if telephony else None, hub=hub,
                         catalog=load_catalog(settings.path("desk")), tz=settings.tz,
                         settings=settings, keeper=lambda: keeper)
        config = uvicorn.Config(app, log_level="warning", access_log=False,
                                lifespan="off")
        server = uvicorn.Server(config)
        # uvicorn captures SIGINT/SIGTERM while serving; the handlers added below, once it
        # has started, replace its own, so the server (not uvicorn) decides how to stop.
        api_task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not api_task.done():
            await asyncio.sleep(0.02)
        if api_task.done():
            api_task.result()
        log.info("API 已启动: http://%s:%d (健康检查 /health, 接口文档 /docs)",
                 settings.api.host, settings.api.port)

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_stop(name: str) -> None:
            log.info("收到 %s, 正在停止…", name)
            stop.set()

        def on_reload() -> None:
            replaced, messages = registry.reload()
            if replaced:
                log.info("呼叫流程已重新加载: %d 个", len(registry.current.flows))
            else:
                log.error("呼叫流程重新加载失败, 继续使用原有流程; 问题 %d 处:", len(messages))
                for line in messages:
                    log.error("  %s", line)

        loop.add_signal_handler(signal.SIGINT, on_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGTERM, on_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGHUP, on_reload)
        jobs.start()
        if keeper is not None:
            await keeper.refresh()
            state = keeper.book.on_duty(keeper.clock())
            log.info("值班表: %s", "未生效 (签入的律师都可接听)" if state is None
                     else f"生效中, 当前值班 {len(state)} 人")
        log.info("热线已启动 (Ctrl-C 停止, SIGHUP 重新加载流程)")
        watch = asyncio.create_task(_supervise_front(telephony)) if telephony else None
        await stop.wait()
        jobs.stop()
        if watch is not None:
            watch.cancel()
        if telephony is not None:
            await telephony.stop()
        server.should_exit = True
        await api_task
        log.info("API 已停止")
    finally:
        engine.dispose()
        log.info("数据库连接已关闭; 已停止")
