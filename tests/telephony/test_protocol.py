import pytest

from hotline.telephony import protocol as p


@pytest.mark.parametrize("message", [
    p.WorkerReady("w1", 5070, 4, 1234),
    p.CallOffered("c1", "abc@host", "sip:138@x", "12348", "127.0.0.1:5060"),
    p.Digit("c1", "caller", "#"),
    p.PlayFiles("c1", 3, ("/a.wav", "/b 中文.wav"), loop=True),
    p.RecordingDone("c1", 1, "/r.wav", 12.5, "ab" * 32),
    p.CommandFailed("c1", "PlayFiles", 3, "FileNotFoundError: /a.wav"),
    p.Hangup("c1", "normal"),
    p.Shutdown(),
])
def test_round_trip(message):
    line = p.encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert p.decode(line) == message


def test_decoder_splits_stream_and_survives_garbage():
    d = p.Decoder()
    a, b = p.encode(p.Digit("c", "caller", "1")), p.encode(p.Answer("c"))
    stream = a + b"{not json}\n" + b'{"type":"Digit","call":"c"}\n' + b[:5]
    out = d.feed(stream)
    assert out[0] == p.Digit("c", "caller", "1")
    assert isinstance(out[1], p.ProtocolError) and isinstance(out[2], p.ProtocolError)
    assert "Digit.leg missing" in str(out[2])
    assert d.feed(b[5:]) == [p.Answer("c")]


@pytest.mark.parametrize("line", [
    b'{"type":"Nope"}', b'[]', b'{"type":"Answer","call":5}',
    b'{"type":"Answer","call":"c","extra":1}', b'{"type":"PlayFiles","call":"c","token":1,'
    b'"paths":"x"}', b'{"type":"WorkerReady","worker":"w","sip_port":true,"max_legs":4,'
    b'"pid":1}', b"\xff\xfe",
])
def test_malformed_lines_are_protocol_errors(line):
    with pytest.raises(p.ProtocolError):
        p.decode(line)


def test_overlong_line_is_dropped():
    d = p.Decoder()
    out = d.feed(b"x" * (p.MAX_LINE + 10))
    assert len(out) == 1 and isinstance(out[0], p.ProtocolError)
    assert d.feed(p.encode(p.Shutdown())) == [p.Shutdown()]
