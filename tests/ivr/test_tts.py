"""Prompt audio against the real espeak-ng and sox (both are Debian dependencies)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import wave
from array import array
from pathlib import Path

import pytest

from hotline.errors import ExternalToolError
from hotline.ivr import tts
from hotline.ivr.tts import PromptAudio, estimate_seconds

GREETING = "您好，这里是12348公共法律服务热线。"


def wav_info(path: Path) -> tuple[int, int, int, float, int]:
    """(channels, sample width, rate, seconds, peak amplitude)."""
    with wave.open(str(path), "rb") as wav:
        frames = wav.readframes(wav.getnframes())
        samples = array("h", frames)
        if sys.byteorder == "big":
            samples.byteswap()
        peak = max((abs(s) for s in samples), default=0)
        return (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(),
                wav.getnframes() / wav.getframerate(), peak)


def forbid_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"unexpected subprocess: {args}")

    monkeypatch.setattr(subprocess, "run", boom)


def sox_make(path: Path, *, rate: int, channels: int, seconds: float = 1.0) -> Path:
    subprocess.run(["sox", "-n", "-r", str(rate), "-c", str(channels), "-b", "16", str(path),
                    "synth", str(seconds), "sine", "440", "vol", "0.5"], check=True)
    return path


@pytest.fixture
def audio(tmp_path: Path) -> PromptAudio:
    return PromptAudio(tmp_path / "cache")


def test_tools_are_installed() -> None:
    PromptAudio.check_tools()


def test_for_text_renders_uniform_audible_wav(audio: PromptAudio) -> None:
    path = audio.for_text(GREETING)
    channels, width, rate, seconds, peak = wav_info(path)
    assert (channels, width, rate) == (1, 2, 8000)
    assert seconds > 0.5
    assert peak > 1000
    assert audio.duration(path) == pytest.approx(seconds)
    assert path.parent == audio.cache_dir
    assert path.name.startswith("tts-") and path.suffix == ".wav"
    assert len(path.stem) == len("tts-") + 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(audio.cache_dir) == [path.name]


def test_second_call_is_served_from_cache(audio: PromptAudio,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    first = audio.for_text(GREETING)
    before = first.read_bytes()
    forbid_subprocess(monkeypatch)
    assert audio.for_text(GREETING) == first
    assert first.read_bytes() == before


def test_cache_key_covers_text_voice_speed_and_rate(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    base = PromptAudio(cache).for_text("请按一")
    assert PromptAudio(cache).for_text("请按二") != base
    assert PromptAudio(cache, words_per_minute=200).for_text("请按一") != base
    wide = PromptAudio(cache, sample_rate=16000).for_text("请按一")
    assert wide != base
    assert wav_info(wide)[:3] == (1, 2, 16000)
    assert PromptAudio(cache, voice="yue").for_text("请按一") != base
    assert len(list(cache.iterdir())) == 5


def test_faster_speech_is_shorter(tmp_path: Path) -> None:
    slow = PromptAudio(tmp_path, words_per_minute=120).for_text(GREETING)
    fast = PromptAudio(tmp_path, words_per_minute=300).for_text(GREETING)
    assert PromptAudio.duration(fast) < PromptAudio.duration(slow)


def test_text_starting_with_dash_is_spoken_not_parsed(audio: PromptAudio) -> None:
    path = audio.for_text("--version 一二三")
    assert wav_info(path)[3] > 0.5


def test_blank_text_is_refused(audio: PromptAudio) -> None:
    with pytest.raises(ValueError, match="不能为空"):
        audio.for_text("  ")


def test_for_file_resamples_stereo_16k_to_mono_8k(tmp_path: Path, audio: PromptAudio,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    source = sox_make(tmp_path / "welcome.wav", rate=16000, channels=2)
    assert wav_info(source)[:3] == (2, 2, 16000)
    converted = audio.for_file(source)
    channels, width, rate, seconds, peak = wav_info(converted)
    assert (channels, width, rate) == (1, 2, 8000)
    assert seconds == pytest.approx(1.0, abs=0.01)
    assert peak > 1000
    assert converted.parent == audio.cache_dir
    forbid_subprocess(monkeypatch)
    assert audio.for_file(source) == converted
    # Same content under another name is the same cache entry.
    copy = tmp_path / "copy.wav"
    shutil.copy(source, copy)
    assert audio.for_file(copy) == converted


def test_for_file_copies_target_format_without_sox(tmp_path: Path, audio: PromptAudio,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    source = sox_make(tmp_path / "menu.wav", rate=8000, channels=1)
    forbid_subprocess(monkeypatch)
    cached = audio.for_file(source)
    assert cached != source
    assert cached.parent == audio.cache_dir
    assert cached.read_bytes() == source.read_bytes()


def test_for_file_rerenders_when_the_source_changes(tmp_path: Path, audio: PromptAudio) -> None:
    source = sox_make(tmp_path / "notice.wav", rate=16000, channels=1, seconds=1.0)
    first = audio.for_file(source)
    sox_make(source, rate=16000, channels=1, seconds=2.0)
    second = audio.for_file(source)
    assert second != first
    assert audio.duration(second) == pytest.approx(2.0, abs=0.01)


def test_check_tools_reports_missing_espeak(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ExternalToolError) as caught:
        PromptAudio.check_tools()
    assert caught.value.code == "tool.missing"
    assert caught.value.params == {"tool": "espeak-ng", "package": "espeak-ng"}
    assert "espeak-ng" in str(caught.value)


def test_check_tools_reports_missing_sox(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    only_espeak = tmp_path / "bin"
    only_espeak.mkdir()
    real = shutil.which("espeak-ng")
    assert real is not None
    (only_espeak / "espeak-ng").symlink_to(real)
    monkeypatch.setenv("PATH", str(only_espeak))
    with pytest.raises(ExternalToolError) as caught:
        PromptAudio.check_tools()
    assert caught.value.code == "tool.missing"
    assert caught.value.params == {"tool": "sox", "package": "sox"}


def test_rendering_without_tools_is_tool_missing(tmp_path: Path, audio: PromptAudio,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    source = sox_make(tmp_path / "in.wav", rate=16000, channels=2)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ExternalToolError) as caught:
        audio.for_text(GREETING)
    assert caught.value.code == "tool.missing"
    with pytest.raises(ExternalToolError) as caught:
        audio.for_file(source)
    assert caught.value.params["tool"] == "sox"


def test_espeak_failure_is_tool_failed_and_leaves_no_file(tmp_path: Path) -> None:
    audio = PromptAudio(tmp_path / "cache", voice="nonexistent")
    with pytest.raises(ExternalToolError) as caught:
        audio.for_text(GREETING)
    assert caught.value.code == "tool.failed"
    assert caught.value.params["tool"] == "espeak-ng"
    assert "voice does not exist" in caught.value.params["detail"]
    assert list((tmp_path / "cache").iterdir()) == []


def test_sox_failure_is_tool_failed_and_leaves_no_file(tmp_path: Path,
                                                       audio: PromptAudio) -> None:
    bogus = tmp_path / "bogus.wav"
    bogus.write_bytes(b"this is not audio at all")
    with pytest.raises(ExternalToolError) as caught:
        audio.for_file(bogus)
    assert caught.value.code == "tool.failed"
    assert caught.value.params["tool"] == "sox"
    assert caught.value.params["detail"]
    assert "\n" not in caught.value.params["detail"]
    assert list(audio.cache_dir.iterdir()) == []


def test_hung_tool_times_out_as_tool_failed(tmp_path: Path, audio: PromptAudio,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # The one fake here: a real espeak-ng does not hang on demand.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    hung = bin_dir / "espeak-ng"
    hung.write_text(f"#!/bin/sh\nexec {shutil.which('sleep')} 10\n")
    hung.chmod(0o755)
    real_sox = shutil.which("sox")
    assert real_sox is not None
    (bin_dir / "sox").symlink_to(real_sox)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(tts, "TIMEOUT_SECONDS", 0.3)
    with pytest.raises(ExternalToolError) as caught:
        audio.for_text(GREETING)
    assert caught.value.code == "tool.failed"
    assert caught.value.params["tool"] == "espeak-ng"
    assert "0.3" in caught.value.params["detail"]
    assert list(audio.cache_dir.iterdir()) == []


def test_estimate_seconds() -> None:
    assert estimate_seconds("") == 0
    # 9 syllables at 4.5 per second.
    assert estimate_seconds("一二三四五六七八九") == pytest.approx(2.0)
    assert PromptAudio.estimate_seconds("一二三四五六七八九", 300) == pytest.approx(1.0)
    assert estimate_seconds("一二三，四五六。") == pytest.approx(6 / 4.5 + 0.3 + 0.5)
    assert estimate_seconds("12348") == pytest.approx(5 / 4.5)
    assert estimate_seconds("请按 OK") == pytest.approx(4 / 4.5)


def test_estimate_is_the_right_order_of_magnitude(audio: PromptAudio) -> None:
    real = audio.duration(audio.for_text(GREETING))
    guess = estimate_seconds(GREETING)
    assert real / 2.5 < guess < real * 2.5
