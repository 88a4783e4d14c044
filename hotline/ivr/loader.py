"""Read YAML flow files into plain data plus the line/column of every key and value.

PyYAML's composer gives us nodes with marks; we build ordinary dicts, lists and scalars from
them and keep a side table ``positions[path] = (line, col)`` (1-based) so the validator can
point at ``file:line:col`` for any property, including ones it finds wrong only later.
Duplicate keys (which PyYAML would silently overwrite) are reported, not merged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a flow file, located for ``file:line:col: where: message``."""

    file: str
    line: int
    col: int
    where: str
    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        """The operator's line, in Chinese."""
        from hotline.ivr.messages import flow_message

        return f"{self.file}:{self.line}:{self.col}: {self.where}: {flow_message(self)}"


@dataclass
class Document:
    """A parsed YAML file with the position of every key and value."""

    file: str
    data: Any
    key_pos: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    value_pos: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """Line and column of ``path`` (its key, or its value), else of its nearest parent."""
        table = self.key_pos if key else self.value_pos
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if not key and probe in self.key_pos:
                return self.key_pos[probe]
            probe = probe[:-1]
        return (1, 1)

    def problem(self, at: Path_, where: str, code: str, /, *, at_key: bool = False,
                **params: Any) -> Problem:
        """A problem located at path ``at`` (at its key rather than its value with ``at_key``)."""
        line, col = self.where(at, key=at_key)
        return Problem(self.file, line, col, where, code, dict(params))


def _scalar(node: yaml.ScalarNode) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except ValueError:
        # Looks like a date or time but is none (2026-13-01): keep the text, so that the
        # property's own check reports it at its file:line instead of the loader crashing.
        return str(node.value)
    finally:
        loader.dispose()


def _pos(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _build(doc: Document, node: yaml.Node, path: Path_, problems: list[Problem]) -> Any:
    doc.value_pos[path] = _pos(node)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line, col = _pos(key_node)
                problems.append(Problem(doc.file, line, col, _dotted(path) or "(根)",
                                        "flow.bad_key"))
                continue
            # Keys are always names or digit strings here: take the text as written, so that
            # `01:` stays "01" and `yes:` stays "yes" instead of YAML 1.1's int and bool.
            key = str(key_node.value)
            child = (*path, key)
            if key in out:
                line, col = _pos(key_node)
                problems.append(Problem(doc.file, line, col, _dotted(child),
                                        "flow.duplicate_key", {"key": key}))
                continue
            doc.key_pos[child] = _pos(key_node)
            out[key] = _build(doc, value_node, child, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(doc, item, (*path, i), problems) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    return _scalar(node)


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path)


def parse_text(text: str, file: str) -> tuple[Document | None, list[Problem]]:
    """Parse YAML text; syntax errors, anchors gone wrong and duplicate keys become problems."""
    doc = Document(file=file, data=None)
    problems: list[Problem] = []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = exc.problem or exc.context or "语法错误"
        return None, [Problem(file, line, col, "yaml", "flow.yaml_syntax", {"detail": detail})]
    except yaml.YAMLError as exc:
        return None, [Problem(file, 1, 1, "yaml", "flow.yaml_syntax", {"detail": str(exc)})]
    if root is None:
        return None, [Problem(file, 1, 1, "yaml", "flow.empty_file")]
    try:
        doc.data = _build(doc, root, (), problems)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return None, [Problem(file, line, col, "yaml", "flow.yaml_syntax",
                              {"detail": getattr(exc, "problem", None) or str(exc)})]
    return doc, problems


def read_file(path: Path, *, max_bytes: int, display: str | None = None,
              ) -> tuple[Document | None, list[Problem]]:
    """Read and parse one YAML file, refusing empty, huge and non-UTF-8 files clearly."""
    name = display or str(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return None, [Problem(name, 1, 1, "file", "flow.too_large",
                                  {"size": size, "limit": max_bytes})]
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(name, 1, 1, "file", "flow.unreadable",
                              {"detail": exc.strerror or str(exc)})]
    if not raw.strip():
        return None, [Problem(name, 1, 1, "file", "flow.empty_file")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        # Columns count characters, like YAML marks and editors do.
        line_start = before[before.rfind(b"\n") + 1:]
        col = len(line_start.decode("utf-8", errors="replace")) + 1
        return None, [Problem(name, line, col, "file", "flow.not_utf8",
                              {"offset": exc.start + 1})]
    if text.startswith("\ufeff"):
        text = text[1:]
    return parse_text(text, name)
