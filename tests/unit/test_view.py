"""`slp view`: the HTTP API against a server on a free port (generation with the dictionary
baseline and a tiny trained model, artifact browsing, scores, .pose export, bad requests, the
generation lock), the CLI, the page's JS logic (`node --test`) and the page end to end in
headless chromium: ready state, skeleton colours in a screenshot, and its controls driven over
the DevTools protocol (skipped with a message where chromium is not installed)."""

from __future__ import annotations

import base64
import html
import http.client
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import quote, urlencode

import numpy as np
import pytest
from typer.testing import CliRunner

import slp_cli
from slp_cli import skeleton
from slp_cli.cli.main import app
from slp_cli.generate import Request, generate
from slp_cli.metrics import dtw_mje
from slp_cli.view import Viewer, make_server
from slp_cli.view.server import encode_pose

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "slp_cli" / "view" / "static"


# --- fixtures ------------------------------------------------------------------------------------

def cli(*args: str) -> None:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output


@pytest.fixture(scope="module")
def files(tmp_path_factory, one_torch_thread):
    """A tiny corpus, its dictionary, a tiny trained A2V generator and the dictionary baseline's
    outputs for the test split, made with the CLI."""
    d = tmp_path_factory.mktemp("view")
    cli("synth", "--preset", "tiny", "-o", str(d / "c.h5"))
    cli("normalize", str(d / "c.h5"), "-o", str(d / "n.h5"))
    cli("dict", "build", str(d / "n.h5"), "-o", str(d / "d.h5"))
    cli("train", "vae", "--data", str(d / "n.h5"), "-o", str(d / "vae"), "--preset", "tiny", "--max-steps", "30")
    cli("train", "generator", "--arch", "a2v", "--tokenizer", str(d / "vae"), "--data", str(d / "n.h5"),
        "-o", str(d / "gen"), "--preset", "tiny", "--max-steps", "30")
    cli("generate", "--dictionary", str(d / "d.h5"), "--texts-from", str(d / "n.h5"), "--split", "test",
        "-o", str(d / "concat.test.h5"))
    return d


@pytest.fixture(scope="module")
def viewer(files):
    return Viewer.open([f"gen={files / 'gen'}"], files / "d.h5", [str(files / "n.h5"), str(files / "concat.test.h5")],
                       device="cpu")


def serving(viewer: Viewer):
    server = make_server(viewer, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture(scope="module")
def server(viewer):
    srv, thread = serving(viewer)
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def sentence(files):
    s = next(s for s in slp_cli.load(files / "n.h5").samples if s.split == "test" and s.lang == "dgs")
    return s


def request(server, method: str, path: str, body=None, headers=None, raw: bytes | None = None):
    """(status, headers, parsed JSON or bytes) of one request to ``server``."""
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=data, headers=headers or {})
    res = conn.getresponse()
    payload = res.read()
    conn.close()
    if (res.getheader("Content-Type") or "").startswith("application/json"):
        payload = json.loads(payload)
    return res.status, res, payload


def decode(result: dict) -> np.ndarray:
    raw = base64.b64decode(result["pose"])
    return np.frombuffer(raw, dtype="<f4").reshape(result["shape"])


def assert_one_line_error(status: int, payload, expected_status: int, pattern: str) -> None:
    assert status == expected_status, payload
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    line = payload["error"]
    assert "\n" not in line and "Traceback" not in line and line.strip() == line
    assert re.search(pattern, line, re.I), line


# --- the API -------------------------------------------------------------------------------------

def test_methods_and_the_skeleton_come_from_the_package(server):
    from slp_cli import render

    status, _, body = request(server, "GET", "/api/methods")
    assert status == 200
    methods = {m["name"]: m for m in body["methods"]}
    assert methods["concat"]["kind"] == "concat" and methods["gen"]["kind"] == "model"
    assert methods["gen"]["label"] == "a2v" and methods["gen"]["fps"] == 25
    assert methods["concat"]["langs"] == ["asl", "csl", "dgs"] and body["languages"] == ["asl", "csl", "dgs"]
    status, _, spec = request(server, "GET", "/api/skeleton")
    assert status == 200 and spec["num_keypoints"] == 178
    assert spec["bones"] == {k: [list(b) for b in v] for k, v in skeleton.BONES.items()}
    assert spec["articulators"] == {k: [v.start, v.stop] for k, v in skeleton.ARTICULATORS.items()}
    assert spec["draw_order"] == list(skeleton.DRAW_ORDER)
    # one source of colours: the page's are skeleton.COLORS, `slp render`'s the same in BGR
    for name, rgb in skeleton.COLORS.items():
        assert spec["colors"][name] == "#%02x%02x%02x" % rgb
        assert render.COLORS[name] == rgb[::-1]
    assert render.COLORS["right_hand"] == (200, 100, 20) and render.COLORS["left_hand"] == (20, 120, 235)


def test_generate_with_the_dictionary_baseline_and_a_trained_model(server, viewer, files, sentence):
    status, _, body = request(server, "POST", "/api/generate",
                              {"text": sentence.text, "lang": "dgs", "methods": ["concat", "gen"]})
    assert status == 200, body
    got = {r["method"]: r for r in body["results"]}
    assert list(got) == ["concat", "gen"]
    for name, r in got.items():
        pose = decode(r)
        assert r["shape"] == list(pose.shape) and pose.shape[1:] == (178, 3) and pose.shape[0] >= 1
        assert r["fps"] == 25 and r["ms"] > 0 and r["normalization"] == "neck-shoulder/frame"
        # the same poses as the library gives, bit for bit (NaN where missing)
        direct = generate([Request("q", sentence.text, "dgs")], method=viewer.methods[name].generator).samples[0]
        np.testing.assert_array_equal(pose, direct.pose)
    concat = got["concat"]
    assert concat["glosses"] and len(concat["gloss_spans"]) == len(concat["glosses"])
    assert all(0 <= a < b <= concat["shape"][0] for a, b in concat["gloss_spans"])
    assert [g for _, g in concat["report"]["signed"]] == concat["glosses"]
    assert got["gen"]["glosses"] == [] and got["gen"]["gloss_spans"] == []


def test_the_dictionary_baseline_with_a_glosser(files, sentence):
    """`slp view --glosser T2G_DIR`: concat looks up the glosses the text-to-gloss model gives."""
    from slp_cli.dictionary import load_dictionary
    from slp_cli.errors import SlpError
    from slp_cli.text2gloss import load_glosser

    cli("train", "text2gloss", "--data", str(files / "n.h5"), "-o", str(files / "t2g"), "--preset", "tiny",
        "--max-steps", "120", "--eval-every", "120")
    with pytest.raises(SlpError, match="--dictionary"):
        Viewer.open([], None, [], device="cpu", glosser=files / "t2g")
    srv, thread = serving(Viewer.open([], files / "d.h5", [], device="cpu", glosser=files / "t2g"))
    try:
        status, _, body = request(srv, "GET", "/api/methods")
        concat = body["methods"][0]
        assert status == 200 and concat["glosser"] == "t2g" and "glosser" in concat["label"]
        status, _, body = request(srv, "POST", "/api/generate", {"text": sentence.text, "lang": "dgs"})
        (r,) = body["results"]
        assert status == 200 and "error" not in r, r
        translated = load_glosser(files / "t2g").glosses([sentence.text], ["dgs"])[0]
        known = [g for g in translated if load_dictionary(files / "d.h5").by_gloss("dgs", g) is not None]
        assert r["report"]["glosser_glosses"] == translated and r["glosses"] == known
        assert r["report"].get("unknown", []) == [g for g in translated if g not in known]
        assert len(r["gloss_spans"]) == len(known) and decode(r).shape[0] >= len(known)
        assert_one_line_error(*request(srv, "POST", "/api/generate", {"text": " ", "lang": "dgs"})[::2], 400, "empty")
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def test_a_method_that_cannot_sign_answers_with_its_error(server):
    status, _, body = request(server, "POST", "/api/generate", {"text": "xyzzy plugh", "lang": "dgs"})
    assert status == 200
    concat = next(r for r in body["results"] if r["method"] == "concat")
    assert "pose" not in concat and "no word of" in concat["error"] and "\n" not in concat["error"]
    assert any(r["method"] == "gen" and "pose" in r for r in body["results"])  # the model still signs


def test_browsing_an_artifact_with_scores(server, files, sentence):
    status, _, body = request(server, "GET", "/api/samples?" + urlencode({"artifact": "n", "split": "test", "lang": "dgs"}))
    assert status == 200
    assert [r["id"] for r in body["samples"]] == [s.id for s in slp_cli.load(files / "n.h5").samples
                                                  if s.split == "test" and s.lang == "dgs"]
    status, _, body = request(server, "GET", "/api/samples?" + urlencode({"artifact": "n", "q": sentence.text[:8].upper()}))
    assert sentence.id in [r["id"] for r in body["samples"]] and all(
        sentence.text[:8] in r["text"].lower() or sentence.text[:8] in r["id"] for r in body["samples"])

    status, _, body = request(server, "GET", "/api/sample?" + urlencode({"artifact": "concat.test", "id": sentence.id}))
    assert status == 200, body
    assert body["text"] == sentence.text and body["reference"] == "n" and body["glosses"] == sentence.glosses
    truth, generated = body["results"]
    assert (truth["method"], truth["kind"], generated["method"], generated["kind"]) == (
        "n", "ground truth", "concat.test", "artifact")
    np.testing.assert_array_equal(decode(truth), sentence.pose)
    assert truth["gloss_spans"] == sentence.gloss_spans.tolist() and "scores" not in truth
    hyp = slp_cli.load(files / "concat.test.h5")[sentence.id].pose
    scores = generated["scores"]
    assert scores["dtw_mje"]["all"] == pytest.approx(dtw_mje(hyp, sentence.pose))
    assert scores["dtw_mje"]["right_hand"] == pytest.approx(dtw_mje(hyp[:, 8:29], sentence.pose[:, 8:29]))
    assert set(scores["dtw_mje"]) == {"all", "body", "right_hand", "left_hand", "face"}
    assert scores["frames_ratio"] == pytest.approx(len(hyp) / len(sentence.pose))

    # generating the same sentence live, scored against the same reference, gives the same score
    status, _, live = request(server, "POST", "/api/generate", {"text": sentence.text, "lang": "dgs", "methods": ["concat"],
                                                               "ref": {"artifact": "n", "id": sentence.id}})
    assert live["results"][0]["scores"]["dtw_mje"]["all"] == pytest.approx(scores["dtw_mje"]["all"])
    assert live["results"][0]["reference"] == "n"


def test_pose_export_reads_back(server, files, sentence):
    from slp_cli.interop.pose_format import read_pose

    pose = sentence.pose.copy()
    pose[3, 10] = np.nan
    seq = {"name": "ground truth/1", "fps": 25, "shape": list(pose.shape), "pose": encode_pose(pose)}
    status, res, data = request(server, "POST", "/api/pose", {"sequences": [seq]})
    assert status == 200 and res.getheader("Content-Disposition") == 'attachment; filename="ground_truth_1.pose"'
    out = files / "back.pose"
    out.write_bytes(data)
    back = read_pose(out)
    np.testing.assert_array_equal(back.pose, pose)
    status, res, data = request(server, "POST", "/api/pose", {"sequences": [seq, {**seq, "name": "again"}]})
    assert status == 200 and res.getheader("Content-Type") == "application/zip"
    assert sorted(zipfile.ZipFile(io.BytesIO(data)).namelist()) == ["again.pose", "ground_truth_1.pose"]
    status, _, body = request(server, "POST", "/api/pose", {"sequences": [{**seq, "shape": [5, 178, 3]}]})
    assert_one_line_error(status, body, 400, r"bytes; shape \[5, 178, 3\]")


BAD = [
    ("POST", "/api/generate", {"text": "regen", "lang": "dgs", "methods": ["nope"]}, 400, r"unknown method 'nope'.*concat, gen"),
    ("POST", "/api/generate", {"text": "   ", "lang": "dgs"}, 400, r"empty text"),
    ("POST", "/api/generate", {"lang": "dgs"}, 400, r"empty text"),
    ("POST", "/api/generate", {"text": "regen", "lang": "klingon"}, 400, r"unknown language 'klingon'"),
    ("POST", "/api/generate", {"text": "regen"}, 400, r"sign language"),
    ("POST", "/api/generate", {"text": "regen", "lang": "dgs", "methods": "concat"}, 400, r"list of method names"),
    ("POST", "/api/generate", ["regen"], 400, r"JSON object"),
    ("POST", "/api/generate", {"text": "regen", "lang": "dgs", "ref": {"artifact": "n", "id": "nope"}}, 404, "no sample 'nope'"),
    ("POST", "/api/pose", {"sequences": []}, 400, r"sequences"),
    ("GET", "/api/samples?artifact=/etc/passwd", None, 404, r"no artifact named '/etc/passwd'"),
    ("GET", "/api/samples?artifact=../n.h5", None, 404, r"no artifact named"),
    ("GET", "/api/samples", None, 400, r"give an artifact name"),
    ("GET", "/api/sample?artifact=n&id=nope", None, 404, r"artifact 'n' has no sample 'nope'"),
    ("GET", "/static/../server.py", None, 404, r"no such path"),
    ("GET", "/static/%2e%2e/server.py", None, 404, r"no such path"),
    ("GET", "/static/..%2f..%2fartifacts.py", None, 404, r"no such path"),
    ("GET", "/../../etc/passwd", None, 404, r"no such path"),
    ("GET", "/n.h5", None, 404, r"no such path"),
    ("GET", "/static/", None, 404, r"no such path"),
    ("DELETE", "/api/methods", None, 405, r"not supported"),
]


@pytest.mark.parametrize("method,path,body,status,pattern", BAD, ids=[f"{m} {p} {b}"[:60] for m, p, b, *_ in BAD])
def test_bad_requests_get_one_line(server, method, path, body, status, pattern):
    got, _, payload = request(server, method, path, body)
    assert_one_line_error(got, payload, status, pattern)


def test_malformed_requests_and_hostile_clients(server):
    port = server.server_address[1]
    status, _, payload = request(server, "POST", "/api/generate", raw=b'{"text": "regen", ', headers={"Content-Type": "application/json"})
    assert_one_line_error(status, payload, 400, r"malformed JSON")
    status, _, payload = request(server, "POST", "/api/generate", raw=b"\xff\xfe", headers={})
    assert_one_line_error(status, payload, 400, r"not UTF-8")
    status, _, payload = request(server, "POST", "/api/generate", raw=b"", headers={"Content-Length": str(1 << 30)})
    assert_one_line_error(status, payload, 413, r"limit")
    status, _, payload = request(server, "GET", "/api/methods", headers={"Host": "attacker.example:8765"})
    assert_one_line_error(status, payload, 403, r"Host 'attacker.example' refused")
    # no Content-Length at all
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /api/generate HTTP/1.1\r\nHost: localhost\r\n\r\n")
        head, _, body = s.makefile("rb").read().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 411") and "Content-Length" in json.loads(body)["error"]
    # garbage instead of HTTP: 4xx, one line
    for garbage, status in [(b"\x00\x01 / HTTP/1.1", 405), (b"GET / HTTP/7.5", 400), (b"GET / HTTP/1.1 extra", 400),
                            (b"\x00\x01 hello", 400)]:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(garbage + b"\r\nHost: localhost\r\n\r\n")
            head, _, body = s.makefile("rb").read().partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 %d" % status), (garbage, head)
        assert_one_line_error(status, json.loads(body), status, ".")
    # a client that connects and sends nothing does not hold up the others
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        start = time.perf_counter()
        status, _, _ = request(server, "GET", "/api/methods")
        assert status == 200 and time.perf_counter() - start < 5
    finally:
        idle.close()


class SlowGenerator:
    """A generation method that takes its time and records, in ``calls`` (shared between
    methods), how many calls overlap."""

    fps, normalized, normalization = 25.0, True, "neck-shoulder/frame"
    langs, batch_size, method, label = ["dgs"], 1, "model", "slow"

    def __init__(self, calls: dict):
        self.calls = calls

    def sign(self, requests):
        from slp_cli.generate import Report

        with self.calls["guard"]:
            self.calls["active"] += 1
            self.calls["most"] = max(self.calls["most"], self.calls["active"])
        time.sleep(0.15)
        with self.calls["guard"]:
            self.calls["active"] -= 1
        return [(np.zeros((3, 178, 3), np.float32), Report(words=r.text.split())) for r in requests]

    def describe(self):
        return {"architecture": "slow"}


def test_generation_requests_are_serialised():
    calls = {"guard": threading.Lock(), "active": 0, "most": 0}
    server, thread = serving(Viewer({"a": SlowGenerator(calls), "b": SlowGenerator(calls)}))
    try:
        answers = []

        def ask(methods):
            answers.append(request(server, "POST", "/api/generate", {"text": "eins zwei", "lang": "dgs", "methods": methods}))

        threads = [threading.Thread(target=ask, args=(m,)) for m in (["a"], ["b"], ["a", "b"], ["b"])]
        for t in threads:
            t.start()
        time.sleep(0.05)
        start = time.perf_counter()
        status, _, _ = request(server, "GET", "/api/skeleton")  # the page keeps loading meanwhile
        assert status == 200 and time.perf_counter() - start < 0.3
        for t in threads:
            t.join(10)
        assert sorted(a[0] for a in answers) == [200] * 4
        assert all(r["shape"] == [3, 178, 3] for a in answers for r in a[2]["results"])
        assert calls["most"] == 1 and calls["active"] == 0  # never two generations at once, across methods too
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_the_page_and_its_assets_are_served_offline(server):
    status, res, page = request(server, "GET", "/")
    assert status == 200 and res.getheader("Content-Type").startswith("text/html")
    assert "default-src 'self'" in res.getheader("Content-Security-Policy")
    page = page.decode()
    for ref in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
        assert request(server, "GET", ref)[0] == 200, ref
    status, res, _ = request(server, "GET", "/static/app.mjs")
    assert status == 200 and res.getheader("Content-Type").startswith("text/javascript")
    for f in STATIC.iterdir():
        text = f.read_text()
        # offline: no asset from elsewhere (a CDN...), and every module import is a served file
        assert not re.search(r"""(?:src|href|from|import)\s*[=(]?\s*["']https?://""", text), f
        for mod in re.findall(r"""from\s+["']\./([^"']+)["']""", text):
            assert (STATIC / mod).is_file() and request(server, "GET", f"/static/{mod}")[0] == 200


def test_the_assets_are_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = conf["tool"]["setuptools"]["package-data"]["slp_cli.view"]
    for f in STATIC.iterdir():
        assert any(fnmatch(f"static/{f.name}", p) for p in patterns), f"{f.name} is not in pyproject's package data"


# --- the CLI -------------------------------------------------------------------------------------

def test_cli_refuses_nothing_to_show_and_bad_names(files):
    res = CliRunner().invoke(app, ["view"])
    assert res.exit_code != 0 and "nothing to show" in str(res.exception)
    res = CliRunner().invoke(app, ["view", "--model", f"concat={files / 'gen'}", "--dictionary", str(files / "d.h5")])
    assert "taken" in str(res.exception)
    res = CliRunner().invoke(app, ["view", "--artifact", str(files / "missing.h5")])
    assert "not found" in str(res.exception)


def test_cli_serves_and_prints_its_url(files):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "slp_cli", "view", "--dictionary", str(files / "d.h5"),
                             "--artifact", f"truth={files / 'n.h5'}", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), (url, proc.stderr.read() if proc.poll() is not None else "")
        port = int(url.rsplit(":", 1)[1].strip("/"))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/artifacts")
        body = json.loads(conn.getresponse().read())
        assert [a["name"] for a in body["artifacts"]] == ["truth"] and body["artifacts"][0]["generated"] is False
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


# --- the page ------------------------------------------------------------------------------------

def test_js_logic_with_node():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the page's JS unit tests (tests/js) did not run")
    res = subprocess.run([node, "--test", str(ROOT / "tests" / "js")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert re.search(r"^# fail 0$", res.stdout, re.M) and re.search(r"^# pass [1-9]", res.stdout, re.M)
    # the page decodes what the server encodes
    pose = np.array([1.5, np.nan, -2.0, 1e-3], np.float32)
    script = ("import {decodeFloat32} from '%s'; const a = decodeFloat32(process.argv[1]);"
              "console.log(JSON.stringify(Array.from(a, (x) => Number.isNaN(x) ? null : x)))"
              % (STATIC / "logic.mjs").as_uri())
    res = subprocess.run([node, "--input-type=module", "-e", script, encode_pose(pose)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [1.5, None, -2.0, pytest.approx(1e-3)]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def headless(browser: str, url: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """One headless chromium run, offline (no background connections), fresh profile."""
    shutil.rmtree(profile, ignore_errors=True)
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           "--hide-scrollbars", "--force-device-scale-factor=1", f"--user-data-dir={profile}",
                           "--window-size=1400,900", "--virtual-time-budget=8000", *args, url],
                          capture_output=True, text=True, timeout=120)


def ready_state(dom: str) -> dict:
    body = re.search(r"<body([^>]*)>", dom).group(1)
    attrs = {k: html.unescape(v) for k, v in re.findall(r'data-(\w+)="([^"]*)"', body)}
    return {"ready": attrs.get("ready"), **{k: json.loads(attrs[k]) for k in ("frames", "errors", "canvases") if k in attrs}}


def test_the_page_end_to_end_in_headless_chromium(server, viewer, sentence, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (make test installs it with apt-get where it can): "
                    "the browser end-to-end test did not run")
    from PIL import Image

    base = f"http://127.0.0.1:{server.server_address[1]}/"
    url = base + "?" + urlencode({"text": sentence.text, "lang": "dgs", "methods": "concat,gen", "t": "0.5"}, quote_via=quote)
    res = headless(browser, url, tmp_path / "profile", "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    state = ready_state(res.stdout)
    expected = {name: generate([Request("q", sentence.text, "dgs")], method=viewer.methods[name].generator)
                .samples[0].num_frames for name in ("concat", "gen")}
    assert state["ready"] == "1" and state["errors"] == {} and state["frames"] == expected

    shot = tmp_path / "page.png"
    res = headless(browser, url, tmp_path / "profile", f"--screenshot={shot}")
    assert shot.exists(), res.stderr[-2000:]
    image = np.asarray(Image.open(shot).convert("RGB")).astype(np.int32)
    for name, (x, y, w, h) in state["canvases"].items():
        panel = image[y + h // 8:y + h, x:x + w]  # below the frame counter drawn over the canvas
        for part, rgb in skeleton.COLORS.items():
            near = (np.abs(panel - np.array(rgb)).sum(-1) < 60).sum()
            assert near >= 15, f"panel {name}: {near} pixels in the {part} colour {rgb}"

    # browsing a sample: the ground truth, the chosen methods' outputs for the same id and the
    # chosen methods' generations of its text
    url = base + "?" + urlencode({"artifact": "n", "id": sentence.id, "methods": "concat,concat.test"})
    state = ready_state(headless(browser, url, tmp_path / "profile", "--dump-dom").stdout)
    assert state["ready"] == "1" and state["frames"] == {"n": sentence.num_frames, "concat.test": expected["concat"],
                                                         "concat": expected["concat"]}
    url = base + "?" + urlencode({"artifact": "n", "id": sentence.id, "methods": "gen"})
    state = ready_state(headless(browser, url, tmp_path / "profile", "--dump-dom").stdout)
    assert state["frames"] == {"n": sentence.num_frames, "gen": expected["gen"]}


class DevTools:
    """Headless chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
    JSON messages ended by NUL on the browser's fds 3 and 4), with the standard library only."""

    def __init__(self, browser: str, profile: Path, downloads: Path):
        import fcntl

        to_browser, from_browser = os.pipe(), os.pipe()
        # the browser's ends, above 4 so that bash can move them to its fds 3 and 4
        r, w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser[0], from_browser[1]))
        os.close(to_browser[0])
        os.close(from_browser[1])
        args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--force-device-scale-factor=1", f"--user-data-dir={profile}", "--window-size=1400,900",
                "--remote-debugging-pipe", "about:blank"]
        self.proc = subprocess.Popen(["bash", "-c", f'exec "$0" "$@" 3<&{r} 4>&{w} {r}<&- {w}>&-', *args],
                                     pass_fds=(r, w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(r)
        os.close(w)
        self.out, self.inp = os.fdopen(to_browser[1], "wb", buffering=0), os.fdopen(from_browser[0], "rb", buffering=0)
        self.buf, self.id, self.session = b"", 0, None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Browser.setDownloadBehavior", browser=True, behavior="allow", downloadPath=str(downloads))

    def call(self, method: str, browser: bool = False, **params):
        self.id += 1
        msg = {"id": self.id, "method": method, "params": params}
        if self.session and not browser:
            msg["sessionId"] = self.session
        self.out.write(json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buf:
                chunk = self.inp.read(1 << 16)
                assert chunk, "chromium closed the DevTools pipe"
                self.buf += chunk
            raw, _, self.buf = self.buf.partition(b"\0")
            reply = json.loads(raw)
            if reply.get("id") == self.id:
                assert "error" not in reply, (method, reply["error"])
                return reply.get("result", {})

    def js(self, expr: str):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return None if "exceptionDetails" in r else r["result"].get("value")

    def wait(self, expr: str, timeout: float = 30):
        end = time.time() + timeout
        while time.time() < end:
            if self.js(expr):
                return
            time.sleep(0.05)
        raise AssertionError(f"the page never got to {expr}")

    def key(self, key: str, code: int, shift: bool = False):
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=code,
                      modifiers=8 if shift else 0, text=" " if key == " " and kind == "keyDown" else "")

    def click(self, selector: str):
        x, y = self.js(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                       " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def close(self):
        try:
            self.call("Browser.close", browser=True)
        except (AssertionError, OSError):
            pass
        self.proc.wait(10)
        self.out.close()
        self.inp.close()


def test_the_page_controls_in_headless_chromium(server, sentence, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed: the viewer's controls were not tested in a browser")
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    page = DevTools(browser, tmp_path / "profile", downloads)
    clock = "document.getElementById('clock').textContent"
    frames = "[...document.querySelectorAll('.overlay')].map((e) => e.textContent.split(' ')[0])"
    try:
        page.call("Page.navigate", url=base + "?" + urlencode({"text": sentence.text, "lang": "dgs",
                                                               "methods": "concat,gen"}, quote_via=quote))
        page.wait("document.body && document.body.dataset.ready === '1'")
        page.wait(f"parseFloat({clock}) > 0.2")  # it plays
        page.key(" ", 32)  # pauses
        paused = page.js(clock)
        time.sleep(0.3)
        assert page.js(clock) == paused and page.js("document.getElementById('play').ariaLabel") == "play"
        page.key("Home", 36)
        page.key("ArrowRight", 39)
        page.key("ArrowRight", 39)
        page.wait(f"{clock}.startsWith('0.08 ')")  # two frames at 25 fps
        assert page.js(frames) == ["3", "3"]
        page.key("ArrowRight", 39, shift=True)
        page.wait(f"JSON.stringify({frames}) === '[\"13\",\"13\"]'")
        page.click("[data-align=stretch]")
        page.click("[data-view=side]")
        page.click("[data-part=face]")
        page.wait("location.search.includes('align=stretch') && location.search.includes('view=side')"
                  " && location.search.includes('hide=face')")
        page.click("#png")
        page.click("#pose")
        end = time.time() + 20
        while time.time() < end and sorted(p.suffix for p in downloads.iterdir()) != [".png", ".zip"]:
            time.sleep(0.1)
        assert sorted(p.suffix for p in downloads.iterdir()) == [".png", ".zip"], list(downloads.iterdir())
        assert sorted(zipfile.ZipFile(next(downloads.glob("*.zip"))).namelist()) == ["concat.pose", "gen.pose"]
        # the URL reproduces the view: a reload comes back with the same methods and settings
        page.call("Page.reload")
        page.wait("document.body && document.body.dataset.ready === '1' && document.querySelectorAll('.panel').length === 2")
        assert page.js("document.querySelector('[data-view=side]').classList.contains('on')")
        assert page.js("document.querySelector('[data-align=stretch]').classList.contains('on')")
    finally:
        page.close()
