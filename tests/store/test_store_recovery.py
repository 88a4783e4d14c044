"""Start-up recovery on SQLite and PostgreSQL with real files."""

import struct
import wave
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from hotline.domain import EndReason
from hotline.recovery import recover
from hotline.store.calls import add_recording, open_call
from hotline.store.engine import make_engine, make_session_factory
from hotline.store.migrate import upgrade
from hotline.store.session import session_scope
from hotline.store.tables import Call, Recording

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_recover_closes_calls_and_repairs_recordings(db_url, tmp_path):
    upgrade(db_url)
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    cut = tmp_path / "cut.wav"
    with wave.open(str(cut), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x01\x00\x02\x00" * 8000)
    raw = bytearray(cut.read_bytes())
    raw[4:8] = b"\0\0\0\0"
    at = raw.index(b"data")
    raw[at + 4:at + 8] = struct.pack("<I", 0)
    cut.write_bytes(bytes(raw))
    with session_scope(factory) as s:
        a = open_call(s, sip_call_id="a", line="12348", caller_number="1", flow="main",
                      worker="w1", at=T0, local_day=date(2026, 12, 1))
        b = open_call(s, sip_call_id="b", line="12348", caller_number="2", flow="main",
                      worker="w1", at=T0, local_day=date(2026, 12, 1))
        add_recording(s, a.call_id, str(cut), T0)
        add_recording(s, b.call_id, str(tmp_path / "gone.wav"), T0)
    later = T0 + timedelta(minutes=5)
    with session_scope(factory) as s:
        done = recover(s, later)
    assert (done.calls_closed, done.recordings_closed, done.recordings_repaired) == (2, 2, 1)
    with session_scope(factory) as s:
        calls = s.scalars(select(Call).order_by(Call.id)).all()
        assert [c.end_reason for c in calls] == [EndReason.SYSTEM_RESTART] * 2
        assert all(c.ended_at == later for c in calls)
        recs = s.scalars(select(Recording).order_by(Recording.id)).all()
        assert abs(recs[0].duration_s - 1.0) < 1e-6 and len(recs[0].sha256) == 64
        assert recs[0].flagged_reason == "系统重启后修复"
        assert recs[1].flagged_reason.startswith("录音文件缺失或损坏")
    with session_scope(factory) as s:
        assert recover(s, later) == type(done)(0, 0, 0)
    engine.dispose()
