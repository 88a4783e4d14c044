"""Half-filled wrap-up forms kept on the lawyer's disk until the server has them.

One JSON file per (work id, ticket) under the console's state folder, written atomically
(temporary file, fsync, rename) on every change, so neither a dropped connection nor a
closed console loses what the lawyer typed. Removed when the server accepts the wrap-up.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

_SAFE = re.compile(r"[^0-9A-Za-z_-]")


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/hotline-console`` (``~/.local/state/hotline-console``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hotline-console"


class DraftStore:
    """Drafts of one lawyer."""

    def __init__(self, folder: Path, work_id: str) -> None:
        self.folder = folder / "drafts" / _SAFE.sub("_", work_id)

    def _path(self, ticket_no: str) -> Path:
        return self.folder / f"{_SAFE.sub('_', ticket_no)}.json"

    def save(self, ticket_no: str, fields: dict[str, Any]) -> None:
        """Keep ``fields`` for ``ticket_no`` (replacing the previous draft)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"ticket_no": ticket_no, "fields": fields}, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self._path(ticket_no))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, ticket_no: str) -> dict[str, Any] | None:
        """The draft of ``ticket_no``, or None."""
        try:
            data = json.loads(self._path(ticket_no).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        fields = data.get("fields") if isinstance(data, dict) else None
        return fields if isinstance(fields, dict) else None

    def drop(self, ticket_no: str) -> None:
        """Forget the draft (the server has the wrap-up)."""
        self._path(ticket_no).unlink(missing_ok=True)

    def pending(self) -> list[str]:
        """Tickets with a draft not yet submitted, oldest first."""
        if not self.folder.is_dir():
            return []
        files = sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
        out = []
        for path in files:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                out.append(str(data["ticket_no"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return out
