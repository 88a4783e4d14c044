import re
import subprocess
import sys
from pathlib import Path

import pytest

from hotline.config import load_settings
from hotline.ivr import graph
from hotline.ivr.validate import check_folder, edges

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def flows():
    fs, problems = check_folder(ROOT / "ivr_flows", load_settings(environ={}))
    assert problems == []
    return fs


@pytest.mark.parametrize("flow_id", ["main", "after_hours", "sme"])
def test_mermaid_has_every_node_and_edge(flows, flow_id):
    flow = flows.flows[flow_id]
    text = graph.mermaid(flow)
    assert text.startswith("flowchart TD\n")
    for node in flow.nodes.values():
        ident = f"{flow.id}__{node.id}".replace("-", "_")
        assert re.search(rf"^  {ident}[\[\(\{{]", text, re.M), node.id
        for _sub, target, _silent in edges(node):
            target_id = f"{flow.id}__{target}".replace("-", "_")
            assert re.search(rf"^  {ident}( -- \"[^\"]*\" | )--> {target_id}$", text, re.M)
    for key in flow.anytime:
        assert f"随时按 {key}" in text


def test_mermaid_labels_menu_keys_and_shapes(flows):
    text = graph.mermaid(flows.flows["main"])
    assert 'main__category -- "按 1" --> main__labor' in text
    assert 'main__check_hours -- "非服务时间" --> main__night' in text
    assert 'main__labor_queue(["labor_queue<br/>enqueue labor"])' in text  # terminal: rounded
    assert 'main__known_caller{"known_caller<br/>branch"}' in text  # decision: rhombus
    assert "anytime_0{{\"随时按 0\"}} -.-> main__operator" in text


def test_dot_is_a_balanced_digraph(flows):
    text = graph.dot(flows.flows["after_hours"])
    assert text.startswith('digraph "after_hours" {') and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    assert '"menu" -> "emergency" [label="按 9"];' in text
    assert '"anytime_0" -> "night_duty" [style=dashed];' in text
    declared = set(re.findall(r'^  "([^"]+)" \[', text, re.M))
    used = set(re.findall(r'-> "([^"]+)"', text))
    assert used <= declared


def test_cli_graph_and_list(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "hotline", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
    proc = run("flows", "graph", "sme", "--format", "dot")
    assert proc.returncode == 0 and proc.stdout.startswith('digraph "sme"')
    proc = run("flows", "graph", "nope")
    assert proc.returncode == 1
    assert "找不到呼叫流程 'nope' (现有: after_hours, main, sme)" in proc.stderr
    proc = run("flows", "list")
    assert proc.returncode == 0
    assert re.search(r"^main\s+35 个节点\s+号码 12348\s+12348 公共法律服务热线$", proc.stdout, re.M)
