"""Vosk speech models: the manifest of known models, installed folders, download and unpack.

A model is a folder ``<paths.models>/<name>/`` in Vosk's layout (``am/``, ``conf/``,
``graph/``, optionally ``ivector/``). ``models/manifest.toml`` pins, for each model the hotline
knows, its download URL, byte size and sha256, because Alpha Cephei publishes no checksums and
a changed archive must be refused rather than installed. A folder placed by hand (an offline
machine) counts exactly like a downloaded one as long as its layout is sound; the manifest only
matters for downloading.

Downloads are built to survive bad links: bytes go to ``<models>/.partial/<name>.zip.part``
and an interrupted download resumes with an HTTP ``Range`` request (a server that ignores it
and answers 200 makes us start over). The archive is checked against the pinned size and
sha256, extracted into a hidden staging folder inside ``<models>`` (same file system, so the
final ``os.rename`` is atomic), its layout verified, and only then does it replace whatever
was installed before. Nothing here imports ``vosk``: the checks are about files, so the CLI
and the server's start-up stay fast and work where the recogniser is not installed.

A mirror (an intranet server on a machine without internet access) is used by passing
``url_base`` to :func:`download` (``hotline models download NAME --url-base URL``): the
manifest URL's folder is replaced and its file name kept. There is deliberately no
``HOTLINE_*`` variable for it: :mod:`hotline.config` rejects unknown ``HOTLINE_*`` names.
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
import tomllib
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hotline.domain import Language
from hotline.errors import ModelError
from hotline.i18n import MESSAGES

if TYPE_CHECKING:
    import httpx

MANIFEST_FILE = "manifest.toml"
PARTIAL_DIR = ".partial"
CHUNK = 1 << 16
# Extraction needs the unpacked size plus this much head-room on the models' file system.
DISK_MARGIN = 64 * 1024 * 1024

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_ENTRY_KEYS = ("language", "use", "url", "size", "sha256")
# Unpack failures that downloading again cannot fix; a full disk keeps the verified archive.
_ARCHIVE_REFUSED = ("speech.model.bad_zip", "speech.model.unsafe_zip", "speech.model.bad_layout")
# The source checkout's manifest, found when paths.models points elsewhere (a fresh data disk).
_SHIPPED_MANIFEST = Path(__file__).resolve().parents[2] / "models" / MANIFEST_FILE

# Wording of this module's error codes; kept beside the codes until hotline/i18n.py takes them.
MODEL_MESSAGES: dict[str, str] = {
    "speech.model.error": "语音模型错误",
    "speech.model.manifest_missing": "找不到模型清单 {path}",
    "speech.model.manifest_syntax": "模型清单 {path} 不是有效的 TOML: {detail}",
    "speech.model.manifest_invalid": "模型清单 {path} 有 {count} 处问题: {problems}",
    "speech.model.bad_name": "模型名 {name!r} 无效: 只能包含字母、数字和 . _ -, 且不能以 . 开头",
    "speech.model.not_installed": "语音模型 {name} 未安装 (应在 {path}); 请运行 {command}",
    "speech.model.unknown": ("未知的语音模型 {name}: 模型清单中没有 (已知: {known}); "
                             "离线安装请把模型解压到 {path}"),
    "speech.model.not_found": "找不到模型文件夹 {path}",
    "speech.model.broken": "语音模型 {name} ({path}) 不完整: {problems}; 请运行 {command} 重新安装",
    "speech.model.bad_layout": "{path} 不是完整的 Vosk 模型: {problems}",
    "speech.model.busy": "语音模型 {name} 正在由另一个进程下载 (锁文件 {lock})",
    "speech.model.network": ("下载 {url} 失败: {detail} (已下载 {done}/{total} 字节, "
                             "已保留; 再次运行 {command} 会接着下载)"),
    "speech.model.http_status": "下载 {url} 失败: 服务器返回 HTTP {status}",
    "speech.model.size_mismatch": ("{url} 的大小为 {actual} 字节, 清单要求 {expected} 字节; "
                                   "文件可能已被更换, 已拒绝并删除下载的部分"),
    "speech.model.checksum": ("{name} 校验失败: sha256 为 {actual}, 清单要求 {expected}; "
                              "已删除下载的文件, 未安装"),
    "speech.model.bad_zip": "{name} 的压缩包无法解压: {detail}",
    "speech.model.unsafe_zip": "{name} 的压缩包含有不安全的路径 {member!r}, 已拒绝",
    "speech.model.disk_full": "磁盘空间不足: 解压 {name} 约需 {need} 字节, {path} 只剩 {free} 字节",
    "speech.model.io": "无法写入 {path}: {detail}",
}
MESSAGES.update(MODEL_MESSAGES)


class ModelUse(StrEnum):
    """What a manifest model is meant for (``speech.live_model`` / ``speech.batch_model``)."""

    LIVE = "live"  # 实时转写
    BATCH = "batch"  # 批量转写


class Stage(StrEnum):
    """Steps of :func:`download`, reported so a progress display can name them."""

    DOWNLOAD = "download"  # 下载
    VERIFY = "verify"  # 校验
    UNPACK = "unpack"  # 解压


class InstallState(StrEnum):
    """Whether a model's folder is there and usable."""

    INSTALLED = "installed"  # 已安装
    MISSING = "missing"  # 未安装
    BROKEN = "broken"  # 不完整


@dataclass(frozen=True)
class ModelEntry:
    """One ``[models.NAME]`` table of the manifest."""

    name: str
    language: Language
    use: ModelUse
    url: str
    size: int
    sha256: str

    def url_from(self, base: str | None) -> str:
        """The download URL, on a mirror when ``base`` is given (the file name is kept)."""
        if not base:
            return self.url
        return base.rstrip("/") + "/" + PurePosixPath(urlsplit(self.url).path).name


@dataclass(frozen=True)
class Manifest:
    """The known models, in file order; ``path`` is None when no manifest was found."""

    path: Path | None
    entries: tuple[ModelEntry, ...] = ()

    def get(self, name: str) -> ModelEntry | None:
        """The entry called ``name``, if the manifest knows it."""
        return next((e for e in self.entries if e.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        """Model names, in file order."""
        return tuple(e.name for e in self.entries)


class LayoutIssue(StrEnum):
    """What is wrong with one path of a model folder."""

    MISSING = "missing"  # 缺少
    EMPTY = "empty"  # 文件为空
    NOT_A_FOLDER = "not_a_folder"  # 不是文件夹


_ISSUE_ZH = {LayoutIssue.MISSING: "缺少", LayoutIssue.EMPTY: "文件为空",
             LayoutIssue.NOT_A_FOLDER: "不是文件夹"}


@dataclass(frozen=True)
class LayoutProblem:
    """One problem of a model folder; ``path`` is relative to the folder, as Vosk reads it."""

    path: str
    issue: LayoutIssue

    def render(self) -> str:
        """Chinese one-liner, e.g. ``am/final.mdl: 缺少``."""
        return f"{self.path}: {_ISSUE_ZH[self.issue]}"


@dataclass(frozen=True)
class ModelStatus:
    """One row of ``hotline models list``: a manifest model, or a folder placed by hand."""

    name: str
    path: Path
    entry: ModelEntry | None
    state: InstallState
    problems: tuple[LayoutProblem, ...] = ()


# --- the manifest -------------------------------------------------------------------------


def load_manifest(path: Path) -> Manifest:
    """Read and validate a manifest, reporting every bad key at once.

    Raises:
        ModelError: ``speech.model.manifest_missing``, ``manifest_syntax`` or
            ``manifest_invalid`` (naming each bad key, its value and what was expected).
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError("speech.model.manifest_missing", path=str(path)) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ModelError("speech.model.manifest_syntax", path=str(path),
                         detail=str(exc)) from None
    problems: list[str] = []
    entries = _parse_manifest(data, problems)
    if problems:
        raise ModelError("speech.model.manifest_invalid", path=str(path), count=len(problems),
                         problems="; ".join(problems))
    return Manifest(path, tuple(entries))


def find_manifest(models_dir: Path) -> Path | None:
    """``<models>/manifest.toml``, else the source checkout's, else None (offline, by hand)."""
    for candidate in (models_dir / MANIFEST_FILE, _SHIPPED_MANIFEST):
        if candidate.is_file():
            return candidate
    return None


def default_manifest(models_dir: Path) -> Manifest:
    """The manifest that goes with ``models_dir``; empty when there is none."""
    path = find_manifest(models_dir)
    return load_manifest(path) if path is not None else Manifest(None)


def _parse_manifest(data: Mapping[str, Any], problems: list[str]) -> list[ModelEntry]:
    for key in data:
        if key != "models":
            problems.append(f"{key}: 未知的顶层键 (只能有 [models.名称])")
    models = data.get("models", {})
    if not isinstance(models, Mapping):
        problems.append("models: 应为表 [models.名称]")
        return []
    entries = []
    for name, table in models.items():
        entry = _parse_entry(name, table, problems)
        if entry is not None:
            entries.append(entry)
    return entries


def _parse_entry(name: str, table: Any, problems: list[str]) -> ModelEntry | None:
    where = f"models.{name}"
    before = len(problems)
    if not _NAME.fullmatch(name):
        problems.append(f"{where}: 模型名只能包含字母、数字和 . _ -, 且不能以 . 开头")
    if not isinstance(table, Mapping):
        problems.append(f"{where}: 应为表 (language, use, url, size, sha256)")
        return None
    if table and not set(table) & set(_ENTRY_KEYS) and all(
            isinstance(v, Mapping) for v in table.values()):
        # [models.vosk-model-cn-0.22] is the dotted key vosk-model-cn-0 → 22 in TOML.
        dotted = f"{name}.{next(iter(table))}"
        problems.append(f'{where}: 含 "." 的模型名须加引号, 如 [models."{dotted}"]')
        return None
    problems.extend(f"{where}.{key}: 未知的键" for key in table if key not in _ENTRY_KEYS)
    problems.extend(f"{where}.{key}: 缺少必填项" for key in _ENTRY_KEYS if key not in table)
    for key, check in _FIELD_CHECKS.items():
        if key in table and (expected := check(table[key])):
            problems.append(f"{where}.{key} = {table[key]!r}: {expected}")
    if len(problems) > before:
        return None
    return ModelEntry(name=name, language=Language(table["language"]), use=ModelUse(table["use"]),
                      url=table["url"], size=table["size"], sha256=table["sha256"].lower())


def _check_language(value: Any) -> str:
    known = [m.value for m in Language]
    return "" if value in known else "应为以下之一: " + ", ".join(known)


def _check_use(value: Any) -> str:
    return "" if value in {u.value for u in ModelUse} else "应为 live 或 batch"


def _check_url(value: Any) -> str:
    if isinstance(value, str) and urlsplit(value).scheme in ("http", "https") and value.endswith(
            ".zip"):
        return ""
    return "应为以 .zip 结尾的 http(s) 地址"


def _check_size(value: Any) -> str:
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return "" if ok else "应为正整数 (字节数)"


def _check_sha256(value: Any) -> str:
    return "" if isinstance(value, str) and _SHA256.fullmatch(value) else "应为 64 位十六进制"


_FIELD_CHECKS: dict[str, Callable[[Any], str]] = {
    "language": _check_language, "use": _check_use, "url": _check_url,
    "size": _check_size, "sha256": _check_sha256,
}


# --- layout -------------------------------------------------------------------------------


def verify_layout(path: Path) -> list[LayoutProblem]:
    """Check a folder holds what Vosk's ``Model()`` reads, without loading it.

    Vosk takes the "v2" layout when ``am/final.mdl`` exists, reads ``conf/model.conf`` and a
    feature config (``conf/mfcc.conf``, or ``conf/fbank.conf`` in newer models), then either
    ``graph/HCLG.fst`` with ``graph/words.txt`` or the lookahead pair ``graph/HCLr.fst`` +
    ``graph/Gr.fst`` with ``graph/disambig_tid.int``; an ``ivector/`` folder is used only
    when ``final.ie`` is in it, and then its five companions are read too. A failed load in
    the C++ library kills the process with little explanation, so we look first.

    Returns:
        Every problem found; an empty list means the layout is sound.
    """
    if not path.is_dir():
        issue = LayoutIssue.NOT_A_FOLDER if path.exists() else LayoutIssue.MISSING
        return [LayoutProblem(str(path), issue)]
    problems = _need(path, "am/final.mdl", data=True) + _need(path, "conf/model.conf")
    if not _any_file(path, "conf/mfcc.conf", "conf/fbank.conf"):
        problems.append(LayoutProblem("conf/mfcc.conf", LayoutIssue.MISSING))
    problems += _graph_problems(path)
    if (path / "ivector").exists():
        problems += _ivector_problems(path)
    return problems


def _graph_problems(path: Path) -> list[LayoutProblem]:
    if (path / "graph/HCLG.fst").exists():
        return _need(path, "graph/HCLG.fst", data=True) + _need(path, "graph/words.txt")
    if (path / "graph/HCLr.fst").exists() or (path / "graph/Gr.fst").exists():
        return (_need(path, "graph/HCLr.fst", data=True) + _need(path, "graph/Gr.fst", data=True)
                + _need(path, "graph/disambig_tid.int"))
    return [LayoutProblem("graph/HCLG.fst (或 graph/HCLr.fst + graph/Gr.fst)",
                          LayoutIssue.MISSING)]


def _ivector_problems(path: Path) -> list[LayoutProblem]:
    if not (path / "ivector").is_dir():
        return [LayoutProblem("ivector", LayoutIssue.NOT_A_FOLDER)]
    problems = _need(path, "ivector/final.ie", data=True)
    if not problems:
        for name in ("final.mat", "final.dubm", "global_cmvn.stats", "online_cmvn.conf",
                     "splice.conf"):
            problems += _need(path, f"ivector/{name}")
    return problems


def _need(root: Path, rel: str, *, data: bool = False) -> list[LayoutProblem]:
    try:
        info = (root / rel).stat()
    except OSError:
        return [LayoutProblem(rel, LayoutIssue.MISSING)]
    if not stat.S_ISREG(info.st_mode):
        return [LayoutProblem(rel, LayoutIssue.MISSING)]
    if data and info.st_size == 0:
        # A zero-byte model file is what an interrupted copy or a full disk leaves behind.
        return [LayoutProblem(rel, LayoutIssue.EMPTY)]
    return []


def _any_file(root: Path, *rels: str) -> bool:
    return any((root / rel).is_file() for rel in rels)


# --- installed models ---------------------------------------------------------------------


def installed(models_dir: Path) -> dict[str, Path]:
    """Model folders in ``models_dir`` with a sound layout, by name (manifest or not)."""
    found: dict[str, Path] = {}
    for child in _folders(models_dir):
        if not verify_layout(child):
            found[child.name] = child.resolve()
    return found


def status(models_dir: Path, manifest: Manifest) -> list[ModelStatus]:
    """Every manifest model (installed, missing or broken), then folders placed by hand."""
    rows = []
    for entry in manifest.entries:
        folder = models_dir / entry.name
        problems = tuple(verify_layout(folder)) if folder.exists() else ()
        state = (InstallState.MISSING if not folder.exists()
                 else InstallState.BROKEN if problems else InstallState.INSTALLED)
        rows.append(ModelStatus(entry.name, folder.resolve(), entry, state, problems))
    for name, path in installed(models_dir).items():
        if manifest.get(name) is None:
            rows.append(ModelStatus(name, path, None, InstallState.INSTALLED))
    return rows


def _folders(models_dir: Path) -> list[Path]:
    try:
        children = sorted(models_dir.iterdir())
    except OSError:
        return []
    # Hidden folders are ours: .partial downloads and .unpack-* staging areas.
    return [c for c in children if c.is_dir() and not c.name.startswith(".")]


def install_command(name: str) -> str:
    """The command an operator runs to install ``name``; every "missing" message names it."""
    return f"hotline models download {name}"


def is_path(name_or_path: str) -> bool:
    """Whether a configured model is a folder path rather than a name from the manifest."""
    return "/" in name_or_path or os.sep in name_or_path or name_or_path.startswith((".", "~"))


def locate(name_or_path: str, models_dir: Path, *, base_dir: Path | None = None) -> Path:
    """Where a model would be, whether or not its folder exists.

    A path is taken as given (relative to ``base_dir``), a name is looked up in ``models_dir``.

    Raises:
        ModelError: ``speech.model.bad_name`` for a name that is not a safe folder name.
    """
    if is_path(name_or_path):
        path = Path(name_or_path).expanduser()
        return (path if path.is_absolute() else (base_dir or Path.cwd()) / path).resolve()
    check_name(name_or_path)
    return (models_dir / name_or_path).resolve()


def check_name(name: str) -> None:
    """Refuse names that could escape ``models_dir`` or hide among our dot-folders."""
    if not _NAME.fullmatch(name):
        raise ModelError("speech.model.bad_name", name=name)


def resolve(name_or_path: str, models_dir: Path, *, base_dir: Path | None = None,
            manifest: Manifest | None = None) -> Path:
    """The absolute folder of an installed, sound model, for the recogniser to load.

    Args:
        name_or_path: a model name (``speech.live_model``) or a folder path.
        models_dir: ``Settings.path("models")``.
        base_dir: what relative paths are relative to (the config file's folder); default cwd.
        manifest: the known models, consulted only to word a failure; default: the manifest
            found for ``models_dir``.

    Raises:
        ModelError: ``speech.model.not_installed`` (its message names
            ``hotline models download NAME``), ``unknown``, ``not_found``, ``broken``,
            ``bad_layout`` or ``bad_name``.
    """
    path = locate(name_or_path, models_dir, base_dir=base_dir)
    if is_path(name_or_path):
        if not path.exists():
            raise ModelError("speech.model.not_found", path=str(path))
        _raise_bad_layout(path)
        return path
    name = name_or_path
    problems = verify_layout(path) if path.exists() else []
    if path.exists() and not problems:
        return path
    known = _manifest_for(models_dir, manifest)
    if problems and known.get(name) is None:
        raise ModelError("speech.model.bad_layout", path=str(path), problems=_joined(problems))
    if problems:
        raise ModelError("speech.model.broken", name=name, path=str(path),
                         problems=_joined(problems), command=install_command(name))
    if known.get(name) is not None:
        raise ModelError("speech.model.not_installed", name=name, path=str(path),
                         command=install_command(name))
    raise ModelError("speech.model.unknown", name=name, path=str(path),
                     known=", ".join(known.names) or "无")


def _manifest_for(models_dir: Path, manifest: Manifest | None) -> Manifest:
    return manifest if manifest is not None else default_manifest(models_dir)


def _raise_bad_layout(path: Path) -> None:
    problems = verify_layout(path)
    if problems:
        raise ModelError("speech.model.bad_layout", path=str(path), problems=_joined(problems))


def _joined(problems: list[LayoutProblem]) -> str:
    return "; ".join(p.render() for p in problems)


# --- download -----------------------------------------------------------------------------

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
                             problems=_joined(problems))
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
