"""Draw a flow as Mermaid or Graphviz DOT (``hotline flows graph``)."""

from __future__ import annotations

from collections.abc import Callable

from hotline.ivr import schema as s
from hotline.ivr.validate import edges

_LABELS = {"next": "", "otherwise": "其他/超时", "open": "服务时间", "closed": "非服务时间",
           "holiday": "节假日", "overflow": "溢出", "after_call": "通话后",
           "fallback": "未接通", "node": ""}


_KEY_NAMES = {"*": "star", "#": "hash"}


def _summary(node: s.Node) -> str:
    spec = node.spec
    detail: Callable[[], str] | None = {
        "play": lambda: ", ".join(spec.prompt) or spec.file or f"「{(spec.say or '')[:12]}」",
        "gather": lambda: ", ".join(spec.prompt) + (f" → {spec.store}" if spec.store else ""),
        "enqueue": lambda: spec.queue or ",".join(spec.skills),
        "transfer": lambda: spec.number or spec.lawyer or f"${spec.lawyer_var}",
        "subflow": lambda: spec.flow,
        "set": lambda: ", ".join(f"{k}={v}" for k, v in spec.values.items()),
        "voicemail": lambda: spec.queue or "",
        "hours": lambda: spec.calendar or "",
    }.get(node.verb)
    text = detail() if detail else ""
    return f"{node.id}\n{node.verb}" + (f" {text}" if text else "")


def _edge_label(sub: tuple[str | int, ...]) -> str:
    if sub[0] in ("routes", "anytime"):
        return f"按 {sub[1]}" if sub[0] == "routes" else f"随时按 {sub[1]}"
    if sub[0] == "cases":
        return f"条件 {int(sub[1]) + 1}"
    return _LABELS.get(str(sub[0]), str(sub[0]))


def _ident(flow: s.Flow, node_id: str) -> str:
    return f"{flow.id}__{node_id}".replace("-", "_")


def mermaid(flow: s.Flow) -> str:
    """A Mermaid flowchart; terminal verbs are drawn as rounded boxes."""
    out = ["flowchart TD", f"  start(((\"{flow.name}\"))) --> {_ident(flow, flow.start)}"]
    for node in flow.nodes.values():
        text = _summary(node).replace('"', "'").replace("\n", "<br/>")
        shape = ('(["', '"])') if node.verb in s.TERMINAL else (
            ('{"', '"}') if node.verb in ("branch", "hours") else ('["', '"]'))
        out.append(f"  {_ident(flow, node.id)}{shape[0]}{text}{shape[1]}")
    for node in flow.nodes.values():
        for sub, target, _silent in edges(node):
            if target not in flow.nodes:
                continue
            label = _edge_label(sub)
            arrow = f" -- \"{label}\" --> " if label else " --> "
            out.append(f"  {_ident(flow, node.id)}{arrow}{_ident(flow, target)}")
    for key, target in flow.anytime.items():
        ident = f"anytime_{_KEY_NAMES.get(key, key)}"
        out.append(f"  {ident}{{{{\"随时按 {key}\"}}}} -.-> {_ident(flow, target)}")
    return "\n".join(out) + "\n"


def dot(flow: s.Flow) -> str:
    """A Graphviz digraph."""
    out = [f'digraph "{flow.id}" {{', "  rankdir=TB;", '  node [fontname="Noto Sans CJK SC"];',
           f'  start [shape=circle, label="{flow.name}"];',
           f'  start -> "{flow.start}";']
    for node in flow.nodes.values():
        shape = "box" if node.verb not in s.TERMINAL else "box, style=rounded"
        if node.verb in ("branch", "hours"):
            shape = "diamond"
        label = _summary(node).replace('"', "'").replace("\n", "\\n")
        out.append(f'  "{node.id}" [shape={shape}, label="{label}"];')
    for node in flow.nodes.values():
        for sub, target, _silent in edges(node):
            if target in flow.nodes:
                label = _edge_label(sub)
                attr = f' [label="{label}"]' if label else ""
                out.append(f'  "{node.id}" -> "{target}"{attr};')
    for key, target in flow.anytime.items():
        ident = f"anytime_{_KEY_NAMES.get(key, key)}"
        out.append(f'  "{ident}" [shape=plaintext, label="随时按 {key}"];')
        out.append(f'  "{ident}" -> "{target}" [style=dashed];')
    out.append("}")
    return "\n".join(out) + "\n"
