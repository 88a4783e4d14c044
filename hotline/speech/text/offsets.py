"""Carry character positions through the rewriting stages (lexicon → numbers → masking).

Each stage replaces some spans of its input; the console highlights dialect words, amounts and
masked numbers in the final text, so a span found at one stage must be moved through the later
ones. A stage reports its replacements as :class:`Edit` s and :func:`map_span` does the moving.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    """``text_in[src_start:src_end]`` became ``text_out[dst_start:dst_end]``."""

    src_start: int
    src_end: int
    dst_start: int
    dst_end: int


def map_pos(pos: int, edits: Sequence[Edit], *, end: bool) -> int:
    """Where ``pos`` of a stage's input lands in its output.

    A position inside a replaced span snaps to the replacement's start (for a span's start) or
    end (for a span's end), so a mapped span always covers the whole replacement.
    """
    delta = 0
    for edit in edits:
        if pos <= edit.src_start:
            break
        if pos < edit.src_end:
            return edit.dst_end if end else edit.dst_start
        delta = edit.dst_end - edit.src_end
    return pos + delta


def map_span(start: int, end: int, edits: Sequence[Edit]) -> tuple[int, int]:
    """Move ``[start, end)`` of a stage's input to its output."""
    return map_pos(start, edits, end=False), map_pos(end, edits, end=True)


def overlaps(start: int, end: int, edits: Sequence[Edit]) -> bool:
    """Whether ``[start, end)`` of a stage's input touches any replaced span."""
    return any(start < e.src_end and e.src_start < end for e in edits)
