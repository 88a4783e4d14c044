"""``hotline transcribe``: batch transcription of call recordings (both channels)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from datetime import time as dtime
from typing import TYPE_CHECKING

import click

from hotline.cli import AppContext, pass_app

if TYPE_CHECKING:
    from hotline.speech.batch import BatchRun, CallResult
    from hotline.store.transcripts import BatchItem


@click.command("transcribe")
@click.argument("call_ids", nargs=-1, type=int)
@click.option("--pending", is_flag=True,
              help="待批量转写的通话 (实时转写未覆盖或中断的; "
                   "已安装更大的模型时也包括实时转写过的)")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="转写此日期 (含) 以来开始的全部已结束通话, 如 2026-11-01")
@click.option("--model", "model_name", default=None,
              help="模型名称或目录 (默认: 已安装时用 speech.batch_model, 否则 speech.live_model)")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="并行转写的通话数 (共用一个模型)")
@click.option("--quiet", is_flag=True, help="不显示进度条 (定时任务)")
@pass_app
def transcribe(app: AppContext, call_ids: tuple[int, ...], pending: bool,
               since: datetime | None, model_name: str | None, jobs: int,
               quiet: bool) -> None:
    """批量转写通话录音 (来电人、律师两个声道分别识别), 可重复运行, 结果整通替换。"""
    chosen = sum(bool(x) for x in (call_ids, pending, since))
    if chosen != 1:
        raise click.UsageError("请指定且只指定一种范围: 通话编号、--pending 或 --since")
    settings = app.settings
    from hotline.speech.batch import BatchRun, choose_model
    from hotline.speech.supervisor import text_rule_paths
    from hotline.speech.text.pipeline import TextPipeline
    from hotline.store.engine import make_engine, make_session_factory
    from hotline.store.migrate import ensure_current

    model = choose_model(settings, model_name)
    s = settings.speech
    pipeline = TextPipeline.from_files(*text_rule_paths(settings))
    engine = make_engine(settings.database_url)
    try:
        ensure_current(engine)
        run = BatchRun(make_session_factory(engine), model, pipeline, jobs=jobs,
                       live_model=s.live_model)
        start = None
        if since is not None:
            local = datetime.combine(since.date(), dtime(0), tzinfo=settings.tz)
            start = local.astimezone(UTC)
        items = run.candidates(call_ids, start, pending)
        missing = sorted(set(call_ids) - {i.call_id for i in items})
        if missing:
            click.echo("以下通话没有可转写的录音 (不存在、未结束或录音已清理): "
                       + ", ".join(map(str, missing)), err=True)
        if not items:
            click.echo(f"没有需要转写的通话 (模型 {model.name})")
            if missing:
                raise click.exceptions.Exit(1)
            return
        click.echo(f"转写 {len(items)} 个通话, 模型 {model.name}, 并行 {jobs}")
        began = time.monotonic()
        results = _run_with_progress(run, items, quiet)
        wall = time.monotonic() - began
    finally:
        engine.dispose()
    failed = [r for r in results if r.error]
    audio = sum(r.audio_seconds for r in results)
    segments = sum(r.segments for r in results)
    click.echo(f"完成: {len(results) - len(failed)} 个通话, {segments} 段, 音频 "
               f"{audio / 60:.1f} 分钟 (双声道), 用时 {wall:.1f} 秒"
               + (f", 实时率 {wall / audio:.2f}" if audio else ""))
    for r in failed:
        click.echo(f"失败: 工单 {r.ticket_no or r.call_id}: {r.error}", err=True)
    if failed or missing:
        raise click.exceptions.Exit(1)


def _run_with_progress(run: BatchRun, items: list[BatchItem], quiet: bool,
                       ) -> list[CallResult]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    if quiet:
        return run.run(items)
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn()) as progress:
        task = progress.add_task("转写中", total=len(items))
        return run.run(items, on_done=lambda r: progress.advance(task))


COMMANDS = [transcribe]
