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

import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hotline.domain import Language
from hotline.errors import ModelError

if TYPE_CHECKING:
    pass

MANIFEST_FILE = "manifest.toml"
PARTIAL_DIR = ".partial"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_ENTRY_KEYS = ("language", "use", "url", "size", "sha256")
# The source checkout's manifest, found when paths.models points elsewhere (a fresh data disk).
_SHIPPED_MANIFEST = Path(__file__).resolve().parents[2] / "models" / MANIFEST_FILE

# Wording of this module's error codes; kept beside the codes until hotline/i18n.py takes them.


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
        raise ModelError("speech.model.bad_layout", path=str(path),
                         problems=joined_problems(problems))
    if problems:
        raise ModelError("speech.model.broken", name=name, path=str(path),
                         problems=joined_problems(problems), command=install_command(name))
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
        raise ModelError("speech.model.bad_layout", path=str(path),
                         problems=joined_problems(problems))


def joined_problems(problems: list[LayoutProblem]) -> str:
    """Layout problems as one line for an error message."""
    return "; ".join(p.render() for p in problems)


# --- download -----------------------------------------------------------------------------

