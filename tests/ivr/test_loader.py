"""The YAML loader: positions of every key and value, key text, and files refused clearly."""

from hotline.ivr.loader import parse_text, read_file

NESTED = """\
flow: main
nodes:
  menu:
    gather:
      prompt: [menu, no_input]
      routes:
        "1": labor
  list:
    - one
    - {k: v}
"""


def test_positions_of_keys_and_values_in_nested_maps_and_lists():
    doc, problems = parse_text(NESTED, "x.yaml")
    assert problems == []
    assert doc.data == {
        "flow": "main",
        "nodes": {
            "menu": {"gather": {"prompt": ["menu", "no_input"], "routes": {"1": "labor"}}},
            "list": ["one", {"k": "v"}],
        },
    }
    gather = ("nodes", "menu", "gather")
    assert doc.key_pos[("flow",)] == (1, 1)
    assert doc.value_pos[("flow",)] == (1, 7)
    assert doc.key_pos[("nodes", "menu")] == (3, 3)
    assert doc.key_pos[gather] == (4, 5)
    assert doc.key_pos[(*gather, "prompt")] == (5, 7)
    assert doc.value_pos[(*gather, "prompt")] == (5, 15)
    assert doc.value_pos[(*gather, "prompt", 0)] == (5, 16)
    assert doc.value_pos[(*gather, "prompt", 1)] == (5, 22)
    assert doc.key_pos[(*gather, "routes", "1")] == (7, 9)
    assert doc.value_pos[(*gather, "routes", "1")] == (7, 14)
    assert doc.value_pos[("nodes", "list", 0)] == (9, 7)
    assert doc.value_pos[("nodes", "list", 1)] == (10, 7)
    assert doc.key_pos[("nodes", "list", 1, "k")] == (10, 8)
    assert doc.value_pos[("nodes", "list", 1, "k")] == (10, 11)


def test_where_falls_back_to_the_nearest_parent():
    doc, _ = parse_text(NESTED, "x.yaml")
    gather = ("nodes", "menu", "gather")
    # A property that is absent (found missing later) is located at its parent.
    assert doc.where((*gather, "otherwise")) == (5, 7)
    assert doc.where((*gather, "otherwise"), key=True) == (4, 5)
    assert doc.where(("nowhere", "at", "all")) == (1, 1)


def test_problem_is_located_and_rendered():
    doc, _ = parse_text(NESTED, "x.yaml")
    problem = doc.problem(("nodes", "menu", "gather", "routes", "1"), "gather.routes.1",
                          "flow.unknown_target", target="labor", hint="")
    assert problem.render() == "x.yaml:7:14: gather.routes.1: 没有节点 'labor'"


def test_route_keys_keep_their_text():
    doc, problems = parse_text(
        'routes:\n  "01": a\n  "0": b\n  0: c2\n  10: d\n  yes: e\n  "#": f\n', "x.yaml")
    # `0:` and `"0":` are the same key for a caller pressing 0: a duplicate, not an int 0.
    assert [p.render() for p in problems] == ["x.yaml:4:3: routes.0: 重复的键 '0'"]
    assert doc.data == {"routes": {"01": "a", "0": "b", "10": "d", "yes": "e", "#": "f"}}
    assert list(doc.data["routes"]) == ["01", "0", "10", "yes", "#"]


def test_unquoted_leading_zero_key_stays_text():
    doc, problems = parse_text("routes:\n  01: a\n  00: b\n  0: c\n", "x.yaml")
    assert problems == []
    assert doc.data == {"routes": {"01": "a", "00": "b", "0": "c"}}


def test_duplicate_keys_are_reported_not_merged():
    doc, problems = parse_text("flow: main\nstart: a\nflow: other\n", "x.yaml")
    assert [p.render() for p in problems] == ["x.yaml:3:1: flow: 重复的键 'flow'"]
    assert doc.data["flow"] == "main"


def test_yaml_syntax_error_is_one_located_problem():
    doc, problems = parse_text("flow: main\nnodes:\n  a: [b\n", "x.yaml")
    assert doc is None
    assert len(problems) == 1
    problem = problems[0]
    assert (problem.file, problem.where, problem.code) == ("x.yaml", "yaml", "flow.yaml_syntax")
    assert problem.render().startswith("x.yaml:4:1: yaml: YAML 语法错误: ")


def test_non_utf8_file_reports_the_bad_byte(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"flow: main\nname: caf\xe9\n")
    doc, problems = read_file(path, max_bytes=10_000, display="latin.yaml")
    assert doc is None
    # The bad byte is the 10th on line 2 and the 21st of the file.
    assert [p.render() for p in problems] == [
        "latin.yaml:2:10: file: 文件不是 UTF-8 编码 (第 21 字节)",
    ]


def test_non_utf8_column_counts_characters_like_every_other_column(tmp_path):
    # Columns elsewhere (YAML marks, editors) count characters, not UTF-8 bytes: the bad byte
    # after "name: 中文" is in column 9 of line 2, though it is its 13th byte.
    path = tmp_path / "mixed.yaml"
    path.write_bytes(b"flow: main\n" + "name: 中文".encode() + b"\xff\n")
    doc, problems = read_file(path, max_bytes=10_000, display="mixed.yaml")
    assert doc is None
    assert len(problems) == 1
    assert (problems[0].line, problems[0].col, problems[0].code) == (2, 9, "flow.not_utf8")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_bytes(b"")
    doc, problems = read_file(path, max_bytes=10_000, display="empty.yaml")
    assert doc is None
    assert [p.render() for p in problems] == ["empty.yaml:1:1: file: 文件为空"]


def test_whitespace_only_file(tmp_path):
    path = tmp_path / "blank.yaml"
    path.write_bytes(b"  \n\t\n\n")
    doc, problems = read_file(path, max_bytes=10_000, display="blank.yaml")
    assert doc is None
    assert [p.code for p in problems] == ["flow.empty_file"]
    assert [p.render() for p in problems] == ["blank.yaml:1:1: file: 文件为空"]


def test_comments_only_file_is_empty(tmp_path):
    path = tmp_path / "comments.yaml"
    path.write_text("# 还没写\n# TODO\n", encoding="utf-8")
    doc, problems = read_file(path, max_bytes=10_000, display="comments.yaml")
    assert doc is None
    assert [p.code for p in problems] == ["flow.empty_file"]


def test_file_over_max_bytes_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"# " + b"x" * 2_000 + b"\n")
    doc, problems = read_file(path, max_bytes=1_000, display="huge.yaml")
    assert doc is None
    assert [p.render() for p in problems] == [
        "huge.yaml:1:1: file: 文件过大 (2003 字节, 上限 1000 字节)",
    ]


def test_file_of_exactly_max_bytes_is_read(tmp_path):
    text = "flow: main\n"
    path = tmp_path / "edge.yaml"
    path.write_text(text, encoding="utf-8")
    doc, problems = read_file(path, max_bytes=len(text.encode()))
    assert problems == []
    assert doc.data == {"flow": "main"}


def test_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + "flow: main\nname: 主流程\n".encode())
    doc, problems = read_file(path, max_bytes=10_000)
    assert problems == []
    assert doc.data == {"flow": "main", "name": "主流程"}
    # The mark is invisible: the first key is still at line 1, column 1.
    assert doc.key_pos[("flow",)] == (1, 1)
    assert doc.value_pos[("name",)] == (2, 7)


def test_missing_file_is_unreadable(tmp_path):
    doc, problems = read_file(tmp_path / "nope.yaml", max_bytes=10_000, display="nope.yaml")
    assert doc is None
    assert [p.code for p in problems] == ["flow.unreadable"]
    assert problems[0].render().startswith("nope.yaml:1:1: file: 无法读取文件: ")
