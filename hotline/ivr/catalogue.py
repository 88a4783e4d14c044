"""The prompt catalogue (``ivr_flows/prompts.yaml``): prompt id → Chinese text and/or WAV.

A prompt with a ``file`` plays that recording; one with only ``text`` is synthesised by
espeak-ng (Mandarin) and cached (see :mod:`hotline.ivr.tts`). The text is also what the
simulator prints and what a transcript shows for the system side of a call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hotline.ivr.loader import Document, Problem, read_file

CATALOGUE_FILE = "prompts.yaml"


@dataclass(frozen=True)
class PromptEntry:
    """One catalogue prompt."""

    id: str
    text: str
    file: Path | None
    line: int


def _hint(key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, ["text", "file"], n=1, cutoff=0.6)
    return f", 是否想写 {close[0]!r}?" if close else ""


def load_catalogue(root: Path, max_bytes: int) -> tuple[dict[str, PromptEntry], list[Problem]]:
    """Read ``root/prompts.yaml``; every malformed entry is a problem, good ones still load."""
    path = root / CATALOGUE_FILE
    if not path.is_file():
        return {}, [Problem(str(path), 1, 1, "prompts", "flow.missing_catalogue")]
    doc, problems = read_file(path, max_bytes=max_bytes)
    if doc is None:
        return {}, problems
    return _entries(doc, root, problems)


def _entries(doc: Document, root: Path,
             problems: list[Problem]) -> tuple[dict[str, PromptEntry], list[Problem]]:
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("prompts"), dict):
        problems.append(doc.problem(("prompts",), "prompts", "flow.missing_key", key="prompts"))
        return {}, problems
    out: dict[str, PromptEntry] = {}
    for pid, raw in data["prompts"].items():
        path = ("prompts", pid)
        line = doc.where(path, key=True)[0]
        where = f"prompts.{pid}"
        if isinstance(raw, str):
            out[pid] = PromptEntry(pid, raw, None, line)
            continue
        if not isinstance(raw, dict):
            problems.append(doc.problem(path, where, "flow.prompt_entry", prompt=pid))
            continue
        extra = sorted(set(raw) - {"text", "file"})
        for key in extra:
            problems.append(doc.problem((*path, key), f"{where}.{key}",
                                        "flow.unknown_property", at_key=True,
                                        allowed="text, file", name=key,
                                        hint=_hint(key)))
        text = raw.get("text")
        file = raw.get("file")
        if (text is not None and not isinstance(text, str)) or (
                file is not None and not isinstance(file, str)) or not (text or file):
            problems.append(doc.problem(path, where, "flow.prompt_entry", prompt=pid))
            continue
        wav: Path | None = None
        if file:
            wav = (root / file).resolve()
            if not file.lower().endswith(".wav"):
                problems.append(doc.problem((*path, "file"), f"{where}.file", "flow.not_wav",
                                            path=file))
            elif not wav.is_file():
                problems.append(doc.problem((*path, "file"), f"{where}.file",
                                            "flow.missing_file", path=file))
        out[pid] = PromptEntry(pid, text or "", wav, line)
    return out, problems
