"""The flows a running hotline uses: loaded and validated as a whole, swapped atomically.

A reload that finds any problem keeps the flows already in service, so a typo pushed to
``ivr_flows/`` never takes the hotline down.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hotline.config import Settings
from hotline.errors import ConfigError, FlowError, HotlineError
from hotline.ivr.loader import Problem
from hotline.ivr.validate import FlowSet, check_folder

log = logging.getLogger(__name__)


def check_paths(paths: list[Path], settings: Settings) -> tuple[list[FlowSet], list[Problem]]:
    """Validate folders or single flow files; files are checked with their folder's catalogue."""
    groups: dict[Path, list[Path] | None] = {}
    for path in paths:
        if path.is_dir():
            groups[path] = None
        elif path.is_file():
            files = groups.setdefault(path.parent, [])
            if files is not None:
                files.append(path)
        else:
            raise HotlineError("flow.path_missing", path=str(path))
    sets: list[FlowSet] = []
    problems: list[Problem] = []
    for root, files in groups.items():
        fs, found = check_folder(root, settings, files)
        sets.append(fs)
        problems += found
    return sets, problems


def load_flows(settings: Settings) -> FlowSet:
    """The configured flow folder, fully validated; FlowError lists every problem."""
    root = settings.path("flows")
    if not root.is_dir():
        raise HotlineError("flow.path_missing", path=str(root))
    fs, problems = check_folder(root, settings)
    if problems:
        raise FlowError(problems)
    for line, flow_id in settings.lines.items():
        if flow_id not in fs.flows:
            raise ConfigError("config.unknown_flow", line=line, flow=flow_id,
                              known=", ".join(sorted(fs.flows)))
    for code, queue in settings.queues.items():
        target = queue.overflow
        if target and target not in ("flow", "callback") and not target.startswith(
                "transfer:") and target not in settings.queues:
            raise ConfigError("config.unknown_queue", queue=code, target=target)
    if settings.ivr.default_flow not in fs.flows:
        raise ConfigError("config.unknown_flow", line="(ivr.default_flow)",
                          flow=settings.ivr.default_flow, known=", ".join(sorted(fs.flows)))
    return fs


class FlowRegistry:
    """Holds the flow set in service; ``reload`` replaces it only when the new one is sound."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.current: FlowSet = load_flows(settings)

    def reload(self) -> tuple[bool, list[str]]:
        """Try to load the flows again; on any problem keep the current set.

        Returns (replaced, messages) where messages are the problems as operator lines.
        """
        try:
            fresh = load_flows(self.settings)
        except FlowError as exc:
            return False, [p.render() for p in exc.problems]
        except HotlineError as exc:
            return False, [str(exc)]
        self.current = fresh
        return True, []

    def flow_for_line(self, dialed: str) -> str:
        """The flow serving a dialed number (the default flow for unknown lines)."""
        return self.settings.lines.get(dialed, self.settings.ivr.default_flow)
