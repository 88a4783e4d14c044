"""Transcript segments, drafts and batch selection in the ledger, on SQLite and PostgreSQL."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from hotline.domain import Category, EndReason, Role
from hotline.errors import NotFoundError
from hotline.recovery import recover
from hotline.speech.text.pipeline import TextPipeline
from hotline.store import transcripts as st
from hotline.store.calls import (
    add_recording,
    assign_lawyer,
    close_call,
    close_recording,
    open_call,
)
from hotline.store.session import session_scope
from hotline.store.tables import Call, Recording, Ticket, TranscriptSegment
from hotline.store.users import add_user

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
PHONE = re.compile(r"1\d{10}|幺三八|零零一三")


@pytest.fixture(scope="module")
def pipeline():
    return TextPipeline.from_files(None, None)


def _call(factory, sip, *, at=T0, ended=True, recording="closed", state=None, path=None):
    """A call as the coordinator leaves it; ``recording``: closed, open, purged or None."""
    with session_scope(factory) as s:
        opened = open_call(s, sip_call_id=sip, line="12348", caller_number="13800138000",
                           flow="main", worker="w1", at=at, local_day=at.date())
        if recording is not None:
            rec = add_recording(s, opened.call_id, path or f"/rec/{sip}.wav", at)
            if recording != "open":
                close_recording(s, rec, sha256="ab" * 32, seconds=60.0, size=960044,
                                closed_at=at + timedelta(minutes=1), flagged=None)
            if recording == "purged":
                s.execute(update(Recording).where(Recording.id == rec)
                          .values(purged_at=at + timedelta(days=200)))
        if ended:
            close_call(s, opened.call_id, at=at + timedelta(minutes=1),
                       reason=EndReason.CALLER_HANGUP, ivr_vars={}, ivr_path=None)
        st.set_state(s, opened.call_id, state)
    return opened


def _state(factory, call_id):
    with session_scope(factory) as s:
        return s.scalar(select(Call.transcript_state).where(Call.id == call_id))


def _seg(speaker, start, text):
    return st.NewSegment(speaker, start, start + 2.0, text, text, 0.9)


def test_segments_come_back_in_time_order_with_both_speakers(factory):
    opened = _call(factory, "a@x")
    with session_scope(factory) as s:
        # stored as utterances end: the lawyer's short answer ends before the caller's
        for speaker, start, end, text in [("lawyer", 2.0, 3.0, "您好"),
                                          ("caller", 0.5, 4.0, "我想咨询"),
                                          ("caller", 5.0, 6.0, "工资的事"),
                                          ("lawyer", 4.5, 5.5, "请讲")]:
            seg_id = st.add_segment(s, opened.call_id, speaker, start, end, text, text, 0.8,
                                    model="small")
            assert isinstance(seg_id, int)
    with session_scope(factory) as s:
        segs = st.segments_of(s, opened.call_id)
        rec_ids = set(s.scalars(select(TranscriptSegment.recording_id)))
        rec_id = s.scalar(select(Recording.id).where(Recording.call_id == opened.call_id))
    assert [(x.speaker, x.start_s, x.text) for x in segs] == [
        ("caller", 0.5, "我想咨询"), ("lawyer", 2.0, "您好"), ("lawyer", 4.5, "请讲"),
        ("caller", 5.0, "工资的事")]
    assert {(x.source, x.model, x.confidence) for x in segs} == {("live", "small", 0.8)}
    assert rec_ids == {rec_id}


def test_replace_segments_is_idempotent_and_atomic(factory):
    opened = _call(factory, "a@x")
    other = _call(factory, "b@x")
    with session_scope(factory) as s:
        st.add_segment(s, opened.call_id, "caller", 0.0, 1.0, "实时", "实时", 0.5)
        st.add_segment(s, other.call_id, "caller", 0.0, 1.0, "别的通话", "别的通话", 0.5)
    batch = [_seg("caller", 0.5, "第一句"), _seg("lawyer", 1.0, "第二句"),
             _seg("caller", 3.0, "第三句")]
    for _ in range(2):
        with session_scope(factory) as s:
            assert st.replace_segments(s, opened.call_id, batch, source="batch",
                                       model="big") == 3
    with session_scope(factory) as s:
        segs = st.segments_of(s, opened.call_id)
        assert s.scalar(select(func.count()).select_from(TranscriptSegment)) == 4
        assert [x.text for x in st.segments_of(s, other.call_id)] == ["别的通话"]
    assert [(x.speaker, x.text, x.source, x.model) for x in segs] == [
        ("caller", "第一句", "batch", "big"), ("lawyer", "第二句", "batch", "big"),
        ("caller", "第三句", "batch", "big")]

    def broken():
        yield _seg("caller", 0.0, "写了一半")
        raise RuntimeError("decoder died")

    with pytest.raises(RuntimeError), session_scope(factory) as s:
        st.replace_segments(s, opened.call_id, broken(), source="batch", model="bigger")
    with session_scope(factory) as s:
        assert [(x.text, x.model) for x in st.segments_of(s, opened.call_id)] == [
            ("第一句", "big"), ("第二句", "big"), ("第三句", "big")]


def test_refresh_draft_from_chinese_segments(factory, pipeline):
    opened = _call(factory, "a@x")
    spoken = [("caller", 0.5, 4.0, "我 在 工地 干 了 三个 月 老板 欠 我 三千五百 块钱 不 给"),
              ("caller", 4.5, 8.0, "我的 电话 是 幺三八 零零一三 八零零零"),
              ("lawyer", 8.5, 10.0, "您 可以 去 劳动 监察 大队 投诉")]
    with session_scope(factory) as s:
        for speaker, start, end, raw in spoken:
            done = pipeline.process(raw)
            st.add_segment(s, opened.call_id, speaker, start, end, done.text,
                           done.original_masked, 0.9)
        category, body = st.refresh_draft(s, opened.call_id, pipeline)
    assert category == "labor"
    with session_scope(factory) as s:
        ticket = s.scalar(select(Ticket).where(Ticket.call_id == opened.call_id))
        stored = s.execute(select(TranscriptSegment.text, TranscriptSegment.text_original)
                           .order_by(TranscriptSegment.start_s)).all()
        assert ticket.suggested_category is Category.LABOR
        assert ticket.category is None  # the lawyer files the category, the draft suggests
        draft = ticket.draft
    assert draft == json.loads(json.dumps(body, ensure_ascii=False))
    assert draft["category"] == "labor"
    assert "3500元" in draft["amounts"]
    assert "老板欠我3500元" in draft["summary"]
    assert "劳动监察" not in draft["summary"]  # the lawyer's advice is not the caller's matter
    dumped = json.dumps(draft, ensure_ascii=False)
    assert not PHONE.search(dumped), dumped
    assert not any(PHONE.search(t + o) for t, o in stored), stored
    assert "138****8000" in stored[1][0]


def test_refresh_draft_without_ticket_or_segments(factory, pipeline):
    opened = _call(factory, "a@x")
    with session_scope(factory) as s:
        category, body = st.refresh_draft(s, opened.call_id, pipeline)
        assert category is None and body["summary"] == ""
        assert s.scalar(select(Ticket.suggested_category)
                        .where(Ticket.call_id == opened.call_id)) is None
        s.execute(update(Ticket).where(Ticket.call_id == opened.call_id).values(call_id=None))
        assert st.refresh_draft(s, opened.call_id, pipeline) is None


def test_batch_candidates(factory, tmp_path):
    day2 = T0 + timedelta(days=1)
    done = _call(factory, "done@x", state="batch")
    nothing = _call(factory, "none@x")
    pending = _call(factory, "pending@x", at=day2, state="pending")
    live = _call(factory, "live@x", at=day2, state="live")
    failed = _call(factory, "failed@x", at=day2, state="failed")
    never = [_call(factory, "open@x", ended=False, recording="open", state="pending"),
             _call(factory, "still@x", ended=False, state="pending"),  # recording closed
             _call(factory, "cut@x", recording="open", state="pending"),
             _call(factory, "purged@x", recording="purged", state="pending"),
             _call(factory, "norec@x", recording=None, state="pending")]

    def ids(**kw):
        with session_scope(factory) as s:
            return [i.call_id for i in st.batch_candidates(s, **kw)]

    every = [done.call_id, nothing.call_id, pending.call_id, live.call_id, failed.call_id]
    assert ids() == every
    assert ids(redo_live=True) == every  # only meaningful with pending
    assert ids(pending=True) == [pending.call_id]
    assert ids(pending=True, redo_live=True) == [pending.call_id, live.call_id]
    assert ids(since=day2) == [pending.call_id, live.call_id, failed.call_id]
    assert ids(since=day2, pending=True) == [pending.call_id]
    assert ids(call_ids=[live.call_id, nothing.call_id]) == [nothing.call_id, live.call_id]
    assert ids(call_ids=[c.call_id for c in never]) == []
    with session_scope(factory) as s:
        item = st.batch_candidates(s, call_ids=[pending.call_id])[0]
    assert item == st.BatchItem(pending.call_id, pending.ticket_no, "/rec/pending@x.wav",
                                day2, "pending")


def test_recover_requeues_live_calls_still_open(factory):
    cut = _call(factory, "cut@x", ended=False, recording=None, state="live")
    kept = _call(factory, "kept@x", ended=False, recording=None, state="live")
    closed = _call(factory, "closed@x", recording=None, state="live")
    quiet = _call(factory, "quiet@x", ended=False, recording=None)
    queued = _call(factory, "queued@x", ended=False, recording=None, state="pending")
    for _ in range(2):  # recovery is idempotent
        with session_scope(factory) as s:
            recover(s, T0 + timedelta(hours=1), keep=["kept@x"])
        assert _state(factory, cut.call_id) == "pending"
        # carried through the restart, but its live stream went with the speech service
        assert _state(factory, kept.call_id) == "pending"
        assert _state(factory, closed.call_id) == "live"
        assert _state(factory, quiet.call_id) is None
        assert _state(factory, queued.call_id) == "pending"


def test_ticket_transcript_for_its_lawyer_and_staff_only(factory):
    opened = _call(factory, "a@x", state="live")
    with session_scope(factory) as s:
        mine = add_user(s, "L1001", name="张明华", role=Role.LAWYER, password="pw-1234567890")
        other = add_user(s, "L1002", name="李文", role=Role.LAWYER, password="pw-1234567890")
        boss = add_user(s, "S2001", name="王强", role=Role.SUPERVISOR, password="pw-1234567890")
        assign_lawyer(s, opened.call_id, "L1001")
        st.add_segment(s, opened.call_id, "lawyer", 1.0, 2.0, "您好", "您好", 0.7)
        st.add_segment(s, opened.call_id, "caller", 2.5, 4.0, "我要咨询", "我要咨询", None)
        s.execute(update(Ticket).where(Ticket.call_id == opened.call_id)
                  .values(suggested_category=Category.LABOR, draft={"summary": "我要咨询"}))
    with session_scope(factory) as s:
        seen = st.ticket_transcript(s, opened.ticket_no, mine.id, staff=False)
        assert st.ticket_transcript(s, opened.ticket_no, boss.id, staff=True) == seen
    assert seen == {
        "ticket_no": opened.ticket_no, "state": "live", "suggested_category": "labor",
        "draft": {"summary": "我要咨询"},
        "segments": [
            {"speaker": "lawyer", "start": 1.0, "end": 2.0, "text": "您好", "confidence": 0.7,
             "source": "live", "model": None},
            {"speaker": "caller", "start": 2.5, "end": 4.0, "text": "我要咨询",
             "confidence": None, "source": "live", "model": None}]}
    for ticket_no, user in [(opened.ticket_no, other.id), ("12348-20261201-999999", mine.id)]:
        with pytest.raises(NotFoundError) as err, session_scope(factory) as s:
            st.ticket_transcript(s, ticket_no, user, staff=False)
        assert err.value.code == "ticket.not_found"
