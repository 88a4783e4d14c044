import struct
import wave
from datetime import datetime
from pathlib import Path

from hotline.recording import flag_reason, inspect, recording_path, repair_wav


def _stereo(path: Path, seconds: float, rate: int = 8000) -> bytes:
    frames = b"".join(struct.pack("<hh", (i * 37) % 2000 - 1000, (i * 11) % 500)
                      for i in range(int(seconds * rate)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return frames


def test_path_uses_local_date_and_ticket(tmp_path):
    p = recording_path(tmp_path, "12348-20261231-000007", datetime(2026, 12, 31, 23, 59))
    assert p == tmp_path / "2026" / "12" / "31" / "12348-20261231-000007.wav"


def test_inspect_reports_length_hash_and_format(tmp_path):
    path = tmp_path / "a.wav"
    _stereo(path, 1.5)
    facts = inspect(path)
    assert abs(facts.seconds - 1.5) < 1e-6
    assert (facts.channels, facts.sample_rate, facts.size) == (2, 8000, path.stat().st_size)
    assert len(facts.sha256) == 64


def test_flag_when_length_drifts_over_two_percent():
    assert flag_reason(60.0, 60.5) is None
    reason = flag_reason(57.0, 60.0)
    assert reason is not None and "57.0" in reason and "5.0%" in reason
    assert flag_reason(0.0, 0.0) is None


def test_repair_rewrites_header_of_a_crashed_file(tmp_path):
    path = tmp_path / "crash.wav"
    frames = _stereo(path, 2.0)
    raw = bytearray(path.read_bytes())
    # What a killed recorder leaves: sizes still zero, plus half a frame at the end.
    raw[4:8] = struct.pack("<I", 0)
    data_at = raw.index(b"data")
    raw[data_at + 4:data_at + 8] = struct.pack("<I", 0)
    path.write_bytes(bytes(raw) + b"\x01\x02")
    assert repair_wav(path) is True
    with wave.open(str(path), "rb") as w:
        assert w.getnframes() == 16000
        assert w.readframes(16000) == frames
    assert repair_wav(path) is False  # already sound


def test_repair_leaves_non_wav_alone(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(b"not a wav at all")
    assert repair_wav(path) is False
    assert path.read_bytes() == b"not a wav at all"
