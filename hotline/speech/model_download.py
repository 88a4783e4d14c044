"""Downloading a Vosk model: resumable, size- and sha256-checked, unpacked atomically.

``hotline models download NAME`` (see :mod:`hotline.speech.models` for the manifest, the
layout checks and ``resolve``). The archive is fetched into ``models/.partial/NAME.zip.part``
(an interrupted download resumes with an HTTP Range request), checked against the
manifest's size and sha256, unpacked into a staging folder, its layout verified, and only
then renamed into ``models/NAME`` (a previous install is replaced only by a sound one).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from hotline.errors import ModelError
from hotline.speech.models import (
    PARTIAL_DIR,
    Manifest,
    ModelEntry,
    Stage,
    check_name,
    install_command,
    joined_problems,
    verify_layout,
)

if TYPE_CHECKING:
    import httpx

CHUNK = 1 << 16
# Extraction needs the unpacked size plus this much head-room on the models' file system.
DISK_MARGIN = 64 * 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
# Unpack failures that downloading again cannot fix; a full disk keeps the verified archive.
_ARCHIVE_REFUSED = ("speech.model.bad_zip", "speech.model.unsafe_zip", "speech.model.bad_layout")
Progress = Callable[[int, int], None]

def download(name: str, models_dir: Path, *, manifest: Manifest,
             progress: Progress | None = None, on_stage: Callable[[Stage], None] | None = None,
             timeout: float = 30.0, url_base: str | None = None, retries: int = 3,
             retry_delay: float = 2.0) -> Path:
    """Download, check and install a manifest model as ``models_dir/name``.

    Safe to interrupt at any point and to run again: bytes already fetched are kept and
    resumed, and an existing install is replaced only by a new one that passed every check.

    Args:
        name: a model of ``manifest``.
        models_dir: ``Settings.path("models")``; created when missing.
        manifest: the known models (URL, size and sha256 are taken from here).
        progress: called with (bytes so far, total bytes) as bytes arrive.
        on_stage: called as each :class:`Stage` begins.
        timeout: seconds to wait for connecting or for the next bytes.
        url_base: a mirror replacing the URL's folder (the file name is kept).
        retries: automatic resumes after a dropped connection before giving up.
        retry_delay: seconds between those resumes.

    Returns:
        The installed folder (absolute).

    Raises:
        ModelError: unknown model, network failure (partial kept), size or checksum mismatch,
            unsafe or broken archive, bad layout, another download of the same model running.
    """
    entry = manifest.get(name)
    if entry is None:
        check_name(name)
        raise ModelError("speech.model.unknown", name=name, path=str(models_dir / name),
                         known=", ".join(manifest.names) or "无")
    part_path = models_dir / PARTIAL_DIR / f"{name}.zip.part"
    _mkdirs(part_path.parent)
    with _exclusive(part_path.with_name(f"{name}.lock"), name):
        _clear_stale_staging(models_dir, name)
        if on_stage:
            on_stage(Stage.DOWNLOAD)
        part = _PartFile(part_path)
        fetch = _Fetch(entry, entry.url_from(url_base), part, progress)
        fetch.run(timeout=timeout, retries=retries, retry_delay=retry_delay)
        if on_stage:
            on_stage(Stage.VERIFY)
        _check_digest(entry, part)
        if on_stage:
            on_stage(Stage.UNPACK)
        try:
            target = _unpack(part_path, models_dir, name)
        except ModelError as exc:
            if exc.code in _ARCHIVE_REFUSED:
                part_path.unlink(missing_ok=True)  # the pinned archive itself is unusable
            raise
        part_path.unlink(missing_ok=True)
    return target


class _PartFile:
    """The ``.part`` file and the running sha256 of its bytes, so a resume never re-reads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sha = hashlib.sha256()
        self.size = 0
        if path.is_file():
            with path.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    self.sha.update(chunk)
                    self.size += len(chunk)

    def restart(self) -> None:
        """Forget the bytes so far (the server ignored our Range, or they were wrong)."""
        self.path.write_bytes(b"")
        self.sha = hashlib.sha256()
        self.size = 0

    def discard(self) -> None:
        """Delete the file: its bytes can never become the archive the manifest pins."""
        self.path.unlink(missing_ok=True)
        self.sha = hashlib.sha256()
        self.size = 0


class _Interrupted(Exception):
    """The connection dropped or ended early; the bytes so far are good and kept."""


class _Fetch:
    """One model's bytes into its ``.part`` file, resuming across dropped connections."""

    def __init__(self, entry: ModelEntry, url: str, part: _PartFile,
                 progress: Progress | None) -> None:
        self.entry = entry
        self.url = url
        self.part = part
        self.progress = progress

    def run(self, *, timeout: float, retries: int, retry_delay: float) -> None:
        """Fetch until the file is complete; raise ModelError when that cannot happen."""
        import httpx

        if self.part.size > self.entry.size:
            self.part.restart()
        attempt = 0
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            while self.part.size < self.entry.size:
                try:
                    self._once(client)
                except (_Interrupted, httpx.HTTPError) as exc:
                    if attempt >= retries:
                        raise self._network_error(_describe(exc)) from None
                    attempt += 1
                    time.sleep(retry_delay)
        self._report()

    def _once(self, client: httpx.Client) -> None:
        import httpx

        resume_from = self.part.size
        # identity: Range offsets count the file's bytes, not a gzip stream's.
        headers = {"Accept-Encoding": "identity"}
        if resume_from:
            headers["Range"] = f"bytes={resume_from}-"
        with client.stream("GET", self.url, headers=headers) as response:
            if response.status_code == 416:
                # Our bytes reach past the server's file: it is not the manifest's file, or
                # the partial is not a prefix of it. Start over; a mismatch is caught then.
                self.part.restart()
                raise _Interrupted("HTTP 416")
            if response.status_code >= 500 or response.status_code in (408, 429):
                raise _Interrupted(f"HTTP {response.status_code}")  # worth another try
            if response.status_code not in (200, 206):
                raise ModelError("speech.model.http_status", url=self.url,
                                 status=response.status_code)
            self._accept(response, resume_from)
            try:
                self._write(response)
            except httpx.HTTPError as exc:
                raise _Interrupted(_describe(exc)) from None
        if self.part.size < self.entry.size:
            raise _Interrupted(f"连接提前结束 ({self.part.size}/{self.entry.size} 字节)")

    def _accept(self, response: httpx.Response, resume_from: int) -> None:
        """Decide where the body's bytes go; refuse a file of the wrong size early."""
        total: int | None = None
        if response.status_code == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
            if match is None or int(match.group(1)) != resume_from:
                self.part.restart()
                raise _Interrupted("服务器返回的续传范围不符")
            total = int(match.group(3)) if match.group(3) != "*" else None
        else:
            if resume_from:
                self.part.restart()  # the server ignored Range: the body starts at byte 0
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
        if total is not None and total != self.entry.size:
            self.part.discard()
            raise ModelError("speech.model.size_mismatch", url=self.url, actual=total,
                             expected=self.entry.size)

    def _write(self, response: httpx.Response) -> None:
        self._report()
        with self.part.path.open("ab") as fh:
            # No chunk_size: httpx would buffer up to it and lose the buffer when the
            # connection drops, so the .part file would hold less than we received.
            for chunk in response.iter_raw():
                if self.part.size + len(chunk) > self.entry.size:
                    fh.close()
                    self.part.discard()
                    raise ModelError("speech.model.size_mismatch", url=self.url,
                                     actual=f"> {self.entry.size}", expected=self.entry.size)
                fh.write(chunk)
                self.part.sha.update(chunk)
                self.part.size += len(chunk)
                self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.part.size, self.entry.size)

    def _network_error(self, detail: str) -> ModelError:
        return ModelError("speech.model.network", url=self.url, detail=detail,
                          done=self.part.size, total=self.entry.size,
                          command=install_command(self.entry.name))


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _check_digest(entry: ModelEntry, part: _PartFile) -> None:
    actual = part.sha.hexdigest()
    if actual != entry.sha256:
        part.discard()
        raise ModelError("speech.model.checksum", name=entry.name, actual=actual,
                         expected=entry.sha256)


@contextmanager
def _exclusive(lock: Path, name: str) -> Iterator[None]:
    """Hold a per-model lock so two downloads never write the same ``.part`` file."""
    with lock.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ModelError("speech.model.busy", name=name, lock=str(lock)) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _mkdirs(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError("speech.model.io", path=str(path), detail=exc.strerror or str(exc)
                         ) from None


def _clear_stale_staging(models_dir: Path, name: str) -> None:
    # Under the model's lock no other process is unpacking it: leftovers are from a crash.
    for stale in models_dir.glob(f".unpack-{name}-*"):
        shutil.rmtree(stale, ignore_errors=True)


# --- unpack -------------------------------------------------------------------------------


def _unpack(archive: Path, models_dir: Path, name: str) -> Path:
    """Extract beside the install, verify, then swap it in with one rename."""
    staging = Path(tempfile.mkdtemp(prefix=f".unpack-{name}-", dir=models_dir))
    try:
        root = _extract(archive, staging / "unpacked", name)
        problems = verify_layout(root)
        if problems:
            raise ModelError("speech.model.bad_layout", path=f"{name}.zip",
                             problems=joined_problems(problems))
        return _swap_in(root, models_dir / name, staging / "previous")
    except OSError as exc:
        raise ModelError("speech.model.io", path=str(exc.filename or models_dir),
                         detail=exc.strerror or str(exc)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract(archive: Path, dest: Path, name: str) -> Path:
    """Unzip after checking every member; return the model's root inside ``dest``."""
    dest.mkdir()
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                _check_member(info, dest, name)
            _check_space(members, dest, name)
            for info in members:
                zf.extract(info, dest)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise ModelError("speech.model.bad_zip", name=name, detail=str(exc)) from None
    return _model_root(dest)


def _check_member(info: zipfile.ZipInfo, dest: Path, name: str) -> None:
    """Refuse absolute paths, ``..``, backslashes and symlinks (zip-slip)."""
    member = info.filename
    parts = PurePosixPath(member).parts
    is_link = stat.S_ISLNK(info.external_attr >> 16)
    inside = (dest / member).resolve().is_relative_to(dest.resolve())
    if (not member or member.startswith("/") or "\\" in member or ".." in parts
            or (parts and ":" in parts[0]) or is_link or not inside):
        raise ModelError("speech.model.unsafe_zip", name=name, member=member)


def _check_space(members: list[zipfile.ZipInfo], dest: Path, name: str) -> None:
    need = sum(info.file_size for info in members)
    free = shutil.disk_usage(dest).free
    if need + DISK_MARGIN > free:
        raise ModelError("speech.model.disk_full", name=name, need=need, path=str(dest.parent),
                         free=free)


def _model_root(dest: Path) -> Path:
    """The single top folder Alpha Cephei zips hold, or ``dest`` for a layout at the root."""
    children = list(dest.iterdir())
    if len(children) == 1 and children[0].is_dir():
        return children[0]
    return dest


def _swap_in(new: Path, target: Path, previous: Path) -> Path:
    """Rename ``new`` to ``target``, keeping exactly one complete install at all times.

    An existing ``target`` is moved aside first and put back if the rename fails.
    """
    had_previous = target.exists() or target.is_symlink()
    if had_previous:
        os.rename(target, previous)
    try:
        os.rename(new, target)
    except OSError:
        if had_previous:
            os.rename(previous, target)
        raise
    return target.resolve()
