"""``hotline call``: a built-in SIP caller for trying flows, tests and benchmarks.

The calls themselves are :mod:`hotline.telephony.caller`'s (imported only when calling, since
it loads pjsua2 and every ``hotline`` command imports this module). This module checks the
options, turns call events into a Chinese timeline on stdout, prints the summary and sets the
exit code (0 only when every call was answered). Ctrl-C or SIGTERM hangs every call up and still
prints what happened.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import wave
from pathlib import Path
from types import FrameType
from typing import Any

import click

from hotline.cli import EXIT_USAGE, AppContext, pass_app
from hotline.telephony.callplan import (
    CallEvent,
    CallPlan,
    EventKind,
    Report,
    digit_schedule,
    parse_target,
)

# Chinese hints for the SIP failures operators meet most.
_STATUS_ZH = {
    403: "被拒绝",
    404: "号码不存在",
    408: "无应答 (地址或端口是否正确? 服务是否已启动?)",
    480: "暂时无法接通",
    486: "忙",
    487: "呼叫已取消",
    488: "媒体协商失败",
    500: "对方内部错误",
    503: "服务不可用 (没有空闲线路?)",
    603: "拒接",
}
_ENDED_BY_ZH = {
    "local": "本方挂机",
    "remote": "对方挂机",
    "timeout": "等待接通超时",
    "stopped": "已中断",
    "error": "本地错误",
}


class CallUsageError(click.ClickException):
    """A bad address or option value: one line on stderr, exit 2."""

    exit_code = EXIT_USAGE


def _target(app: AppContext, uri: str) -> str:
    """The SIP address to call; a bare number calls this node's own SIP front."""
    if uri.isdigit():
        sip = app.settings.sip
        uri = f"sip:{uri}@{sip.host}:{sip.port}"
    try:
        return parse_target(uri).uri
    except ValueError as exc:
        raise CallUsageError(str(exc)) from None


def _check_wav(path: Path) -> None:
    try:
        with wave.open(str(path), "rb") as w:
            ok = w.getnchannels() == 1 and w.getsampwidth() == 2
    except (OSError, EOFError, wave.Error) as exc:
        raise CallUsageError(f"--play 文件 {path} 无法读取: {exc}") from None
    if not ok:
        raise CallUsageError(f"--play 文件 {path} 应为单声道 16 位 PCM WAV")


def _status_text(status: int, reason: str) -> str:
    if not status:
        return f"呼叫未能发出: {reason}" if reason else "呼叫未能发出"
    hint = _STATUS_ZH.get(status)
    head = f"SIP {status} {reason}".strip()
    return f"{head} — {hint}" if hint and status != 200 else head


def _timeline(event: CallEvent, numbered: bool) -> str:
    kind = event.kind
    if kind is EventKind.DIALING:
        text = f"呼叫 {event.reason}"
    elif kind is EventKind.TRYING:
        text = "对方已受理 (100 Trying)"
    elif kind is EventKind.RINGING:
        text = f"振铃 ({event.status} {event.reason})"
    elif kind is EventKind.CONFIRMED:
        text = f"接通 (SIP 200 OK, 建立用时 {event.setup_ms:.1f} ms)"
    elif kind is EventKind.DIGIT:
        text = f"按键 {event.digits}"
    elif kind is EventKind.HANGUP:
        text = f"挂机 ({_ENDED_BY_ZH.get(event.ended_by, event.ended_by)})"
    elif event.duration_s is not None:
        who = _ENDED_BY_ZH.get(event.ended_by, event.ended_by)
        text = f"通话结束: {who}, 通话 {event.duration_s:.1f} 秒"
    else:
        text = f"呼叫失败: {_status_text(event.status, event.reason)}"
    prefix = f"#{event.call + 1:<3} " if numbered else ""
    return f"[{event.at:8.3f}s] {prefix}{text}"


def _ms(value: float | None) -> str:
    return f"{value:.1f} ms" if value is not None else "-"


def _s(value: float | None) -> str:
    return f"{value:.1f} 秒" if value is not None else "-"


def _summary(report: Report) -> list[str]:
    lines = [f"共 {len(report.calls)} 路: 接通 {report.confirmed} 路, 失败 {report.failed} 路 "
             f"(用时 {report.wall_s:.1f} 秒{', 已中断' if report.interrupted else ''})"]
    statuses = ", ".join(f"{code or '未发出'} × {n}" for code, n in report.statuses().items())
    lines.append(f"SIP 状态: {statuses}")
    setup = report.setup_ms()
    if setup["p50"] is not None:
        lines.append(f"建立用时 (INVITE→接通): 中位 {_ms(setup['p50'])}, "
                     f"p95 {_ms(setup['p95'])}, 最长 {_ms(setup['max'])}")
        talk = report.duration_s()
        lines.append(f"通话时长: 最短 {_s(talk['min'])}, 中位 {_s(talk['p50'])}, "
                     f"最长 {_s(talk['max'])}")
    for call in report.calls:
        if not call.confirmed:
            lines.append(f"  #{call.index + 1}: {_status_text(call.status, call.reason)}")
    return lines


class _Stop:
    """SIGINT/SIGTERM set a flag instead of raising inside pjsua2 callbacks."""

    def __init__(self) -> None:
        self.flag = threading.Event()
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._saved[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        if not self.flag.is_set():
            click.echo("正在挂断全部呼叫 ...", err=True)
        self.flag.set()


@click.command("call")
@click.argument("uri")
@click.option("--digits", default="", help='按键脚本, 如 "1 0"; "5s" 表示多等 5 秒')
@click.option("--first-digit", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="接通后多少秒发第一个按键")
@click.option("--digit-gap", type=click.FloatRange(min=0), default=3.0, show_default=True,
              help="相邻按键的间隔秒数")
@click.option("--play", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="来电人说话的声音 (单声道 16 位 WAV, 循环播放; 默认静音)")
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="录下来电人听到的声音 (单声道 8 kHz WAV; 多路时文件名加 -01、-02 ...)")
@click.option("--hold", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="接通后多少秒挂机; 0 表示等对方挂机")
@click.option("--timeout", "answer_timeout", type=click.FloatRange(min=1), default=60.0,
              show_default=True, help="等待接通的最长秒数")
@click.option("--count", type=click.IntRange(1, 2000), default=1, show_default=True,
              help="呼叫路数 (每个进程 4 路, 超过时自动开子进程)")
@click.option("--rate", type=click.FloatRange(min=0.01), default=2.0, show_default=True,
              help="每秒发起的呼叫数")
@click.option("--from", "caller", default="13800138000", show_default=True,
              help="主叫号码")
@click.option("--bind", default=None, help="本地 SIP/RTP 地址 (默认: 目标在本机时 127.0.0.1, "
              "否则所有网卡)")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="把结果写成 JSON 文件")
@click.option("-q", "--quiet", is_flag=True, help="只打印汇总, 不打印每路的时间线")
@click.option("-v", "--verbose", is_flag=True, help="在 stderr 显示 pjsip 日志")
@pass_app
def call(app: AppContext, uri: str, digits: str, first_digit: float, digit_gap: float,
         play: Path | None, record: Path | None, hold: float, answer_timeout: float,
         count: int, rate: float, caller: str, bind: str | None, json_path: Path | None,
         quiet: bool, verbose: bool) -> None:
    """拨打热线 (或任何 SIP 地址): 按键、放音、录音、并发压测。

    URI 形如 sip:12348@127.0.0.1:5060 (默认端口 5060); 只写号码 (如 12348) 则呼叫本机
    配置的 SIP 地址。按键时间: 接通后 --first-digit 秒发第一个按键, 之后每隔 --digit-gap
    秒发下一个; "5s" 这样的词不发按键, 只把后面的按键推迟 5 秒。全部接通时退出码为 0。
    """
    from hotline.telephony.caller import run_batch  # loads pjsua2: only when calling

    target = _target(app, uri)
    try:
        steps = digit_schedule(digits, first_digit, digit_gap)
    except ValueError as exc:
        raise CallUsageError(str(exc)) from None
    if play is not None:
        _check_wav(play)
    pattern = ""
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        pattern = str(record if count == 1 else
                      record.with_name(f"{record.stem}-{{n}}{record.suffix or '.wav'}"))
    host = parse_target(target).host
    if bind is None:
        bind = "127.0.0.1" if host.startswith("127.") or host == "localhost" else ""
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR,
                        format="%(name)s: %(message)s")
    if not verbose:  # failures reach the timeline; pjsip's own error lines would repeat them
        logging.getLogger("hotline.pjsip").setLevel(logging.CRITICAL)
    plan = CallPlan(uri=target, count=count, rate=rate, digits=steps, hold=hold,
                    answer_timeout=answer_timeout, play=str(play or ""), record=pattern,
                    bind=bind, caller=caller, pj_log_level=4 if verbose else 1)

    def emit(event: CallEvent) -> None:
        if not quiet:
            click.echo(_timeline(event, numbered=count > 1))

    with _Stop() as stop:
        report = run_batch(plan, emit, stop.flag.is_set)
    if count > 1 or quiet:
        for line in _summary(report):
            click.echo(line)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report.to_json(), ensure_ascii=False, indent=1),
                             encoding="utf-8")
    if report.interrupted:
        click.echo("已中断", err=True)
        raise click.exceptions.Exit(130)
    if report.failed:
        raise click.exceptions.Exit(1)


COMMANDS = [call]
