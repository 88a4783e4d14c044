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
from hotline.config import Settings
from hotline.errors import HotlineError
from hotline.ivr.registry import FlowRegistry
from hotline.ivr.tts import PromptAudio
from hotline.recovery import recover
from hotline.store.engine import make_engine, make_session_factory, mask_url
from hotline.store.migrate import ensure_current
from hotline.store.session import session_scope

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


def prepare_prompts(settings: Settings, registry: FlowRegistry) -> tuple[int, int]:
    """Render every catalogue prompt to 8 kHz WAV once (TTS or resampled file)."""
    audio = PromptAudio(settings.path("var") / "prompts", voice=settings.ivr.tts_voice,
                        words_per_minute=settings.ivr.tts_words_per_minute,
                        sample_rate=settings.ivr.prompt_sample_rate)
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
    return len(registry.current.prompts), fresh


async def run(settings: Settings) -> None:
    """Run until a stop signal; raises HotlineError when a component cannot start."""
    engine = make_engine(settings.database_url, echo=settings.database.echo)
    try:
        revision = ensure_current(engine)
        log.info("数据库就绪: %s (结构版本 %s)", mask_url(settings.database_url), revision)
        with session_scope(make_session_factory(engine)) as session:
            done = recover(session, datetime.now(UTC))
        if done.calls_closed or done.recordings_closed:
            log.warning("启动恢复: 关闭了 %d 个未结束的通话, 关闭了 %d 个录音 (修复 %d 个)",
                        done.calls_closed, done.recordings_closed, done.recordings_repaired)

        registry = FlowRegistry(settings)
        flows = registry.current
        log.info("呼叫流程已加载: %d 个 (%s), 共 %d 个节点, 号码 %s", len(flows.flows),
                 ", ".join(sorted(flows.flows)), sum(len(f.nodes) for f in flows.flows.values()),
                 ", ".join(f"{k}→{v}" for k, v in settings.lines.items()))

        total, fresh = await asyncio.to_thread(prepare_prompts, settings, registry)
        log.info("提示音就绪: %d 条 (本次新合成 %d 条)", total, fresh)

        def status() -> dict[str, Any]:
            return {"flows": sorted(registry.current.flows), "database": revision}

        sock = _bind(settings.api.host, settings.api.port)
        config = uvicorn.Config(create_app(status), log_level="warning", access_log=False,
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
        log.info("热线已启动 (Ctrl-C 停止, SIGHUP 重新加载流程)")
        await stop.wait()
        server.should_exit = True
        await api_task
        log.info("API 已停止")
    finally:
        engine.dispose()
        log.info("数据库连接已关闭; 已停止")
