"""``hotline models``: list, download and verify the Vosk speech models.

The work is in :mod:`hotline.speech.models`; this module only words it for operators. Errors
are raised as :class:`~hotline.errors.ModelError` and :func:`hotline.cli.main` prints them as
one Chinese line with exit code 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from hotline.cli import AppContext, pass_app
from hotline.config import Settings
from hotline.errors import ModelError
from hotline.speech import model_download
from hotline.speech import models as speech_models
from hotline.speech.models import InstallState, ModelStatus, ModelUse, Stage

_STATE_ZH = {InstallState.INSTALLED: "是", InstallState.MISSING: "否",
             InstallState.BROKEN: "不完整"}
_USE_ZH = {ModelUse.LIVE: "实时", ModelUse.BATCH: "批量"}
_STAGE_ZH = {Stage.DOWNLOAD: "下载", Stage.VERIFY: "校验 sha256", Stage.UNPACK: "解压并检查"}


@click.group("models")
def models_group() -> None:
    """语音识别模型 (Vosk): 列出、下载、检查。"""


@models_group.command("list")
@pass_app
def list_cmd(app: AppContext) -> None:
    """列出已知和已安装的模型, 以及配置中哪些用途使用它们。"""
    settings = app.settings
    models_dir = settings.path("models")
    rows = speech_models.status(models_dir, speech_models.default_manifest(models_dir))
    refs = _config_refs(settings)
    table = [("名称", "语言", "用途", "大小", "已安装", "配置")]
    for row in rows:
        table.append((row.name, *_describe(row), ", ".join(_used_by(row, refs, settings))))
    for line in _aligned(table):
        click.echo(line)
    click.echo(f"模型目录: {models_dir}")
    for note in _missing_refs(rows, refs, settings):
        click.echo(note)


def _describe(row: ModelStatus) -> tuple[str, str, str, str]:
    if row.entry is None:
        return "-", "-", "-", "是 (手动放置)"
    entry = row.entry
    return entry.language.label, _USE_ZH[entry.use], _size(entry.size), _STATE_ZH[row.state]


def _config_refs(settings: Settings) -> dict[str, str]:
    """Config key → configured model, for every key that names a speech model."""
    speech = settings.speech
    refs = {"live_model": speech.live_model, "batch_model": speech.batch_model}
    refs.update({f"line_models.{k}": v for k, v in speech.line_models.items()})
    refs.update({f"language_models.{k}": v for k, v in speech.language_models.items()})
    return refs


def _locate(value: str, settings: Settings) -> Path | None:
    try:
        return speech_models.locate(value, settings.path("models"), base_dir=settings.base_dir)
    except ModelError:
        return None


def _used_by(row: ModelStatus, refs: dict[str, str], settings: Settings) -> list[str]:
    return [key for key, value in refs.items() if _locate(value, settings) == row.path]


def _missing_refs(rows: list[ModelStatus], refs: dict[str, str],
                  settings: Settings) -> list[str]:
    """One note per configured model that would not load, worded by resolve() itself."""
    listed = {row.path for row in rows if row.state is InstallState.INSTALLED}
    notes = []
    for key, value in refs.items():
        if _locate(value, settings) in listed:
            continue
        try:
            speech_models.resolve(value, settings.path("models"), base_dir=settings.base_dir)
        except ModelError as exc:
            fallback = " (批量转写将改用实时模型)" if key == "batch_model" else ""
            notes.append(f"注意: speech.{key}: {exc}{fallback}")
    return notes


def _size(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"


def _aligned(table: Sequence[tuple[str, ...]]) -> list[str]:
    """Columns padded by display width: Chinese characters take two cells."""
    from rich.cells import cell_len

    widths = [max(cell_len(row[i]) for row in table) for i in range(len(table[0]))]
    return ["  ".join(cell + " " * (w - cell_len(cell)) for cell, w in zip(row, widths, strict=True)
                      ).rstrip() for row in table]


@models_group.command("download")
@click.argument("name")
@click.option("--url-base", default=None,
              help="从镜像下载: 替换清单中地址的目录部分 (文件名不变), 如 http://10.0.0.5/vosk")
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="连接和等待数据的超时 (秒)")
@click.option("--force", is_flag=True, help="已安装时也重新下载 (新模型检查通过后才替换旧的)")
@pass_app
def download_cmd(app: AppContext, name: str, url_base: str | None, timeout: float,
                 force: bool) -> None:
    """下载、校验并安装一个模型 (中断后再次运行会接着下载)。"""
    models_dir = app.settings.path("models")
    manifest = speech_models.default_manifest(models_dir)
    folder = models_dir / name
    if not force and manifest.get(name) is not None and folder.is_dir() and not (
            speech_models.verify_layout(folder)):
        click.echo(f"模型 {name} 已安装: {folder.resolve()} (重新下载请加 --force)")
        return
    path = _download_with_bar(name, models_dir, manifest, url_base, timeout)
    click.echo(f"已安装模型 {name}: {path}")


def _download_with_bar(name: str, models_dir: Path, manifest: speech_models.Manifest,
                       url_base: str | None, timeout: float) -> Path:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TextColumn("剩余"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"下载 {name}", total=None)

        def on_bytes(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        def on_stage(stage: Stage) -> None:
            bar.update(task, description=f"{_STAGE_ZH[stage]} {name}")

        return model_download.download(name, models_dir, manifest=manifest, progress=on_bytes,
                                      on_stage=on_stage, timeout=timeout, url_base=url_base)


@models_group.command("verify")
@click.argument("model")
@pass_app
def verify_cmd(app: AppContext, model: str) -> None:
    """检查模型文件夹是否完整 (参数为模型名或文件夹路径)。"""
    models_dir = app.settings.path("models")
    path = speech_models.locate(model, models_dir)
    if not path.exists():
        if speech_models.is_path(model):
            raise ModelError("speech.model.not_found", path=str(path))
        speech_models.resolve(model, models_dir)  # raises, naming the install command
    problems = speech_models.verify_layout(path)
    for problem in problems:
        click.echo(f"{path}: {problem.render()}")
    if problems:
        click.echo(f"发现 {len(problems)} 处问题", err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"检查通过: {path}")


COMMANDS = [models_group]
