"""The `slp view` server: the viewer's state (:class:`Viewer`) and its HTTP front (:func:`make_server`).

Why the standard library (``http.server.ThreadingHTTPServer``) and no framework: the API is a
handful of JSON routes and a few static files, all answered by plain functions; Flask or
FastAPI (+ an ASGI server) would add dependencies and a second concurrency model for nothing the
viewer needs. The threaded server keeps the page's assets and artifact browsing answering while
a model signs; generation itself is serialised by one lock (one torch model in use at a time).

Safety, for a tool that is meant to run on a researcher's machine: it binds to loopback unless
told otherwise, and then answers only requests addressed to localhost (a guard against DNS
rebinding by a web page in the same browser); it serves only the files of its own ``static/``
folder (looked up by name in a fixed table, never joined to a path from the request) and the
artifacts it was started with (by name); a bad request gets a 4xx answer ``{"error": "one
line"}``; bodies are size-capped and sockets time out, so no client can hang it. It is not
meant to face the internet (no authentication).

Artifacts are loaded whole at start (``slp_cli.load``): browsing is then instant, at the cost of
their size in memory.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import ipaddress
import json
import math
import re
import socket
import sys
import tempfile
import threading
import time
import traceback
import zipfile
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Iterable
from urllib.parse import parse_qs, urlsplit

import numpy as np

from .. import skeleton
from ..artifacts import Artifact, Sample, load
from ..errors import SlpError

MAX_BODY = 64 << 20  # bytes: a few minutes of poses in base64, far more than a sentence needs
MAX_TEXT = 2000  # characters of one sentence
SOCKET_TIMEOUT = 30  # seconds a client may take to send its request
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # method and artifact names (URLs, file names)
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".mjs": "text/javascript; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
# The page loads only its own assets; it draws on canvases and exports PNGs through data URLs.
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class HttpError(Exception):
    """A request the viewer refuses: HTTP status and one line for ``{"error": ...}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# --- payloads ----------------------------------------------------------------------------------

def encode_pose(pose: np.ndarray) -> str:
    """Base64 of the little-endian float32 bytes of a pose array (NaN = missing)."""
    return base64.b64encode(np.ascontiguousarray(pose, dtype="<f4").tobytes()).decode("ascii")


def decode_pose(data: str, shape) -> np.ndarray:
    """Inverse of :func:`encode_pose`, checked against ``shape`` (T, 178, 3)."""
    if (not isinstance(shape, list) or len(shape) != 3 or not all(isinstance(x, int) for x in shape)
            or shape[0] < 1 or tuple(shape[1:]) != (skeleton.NUM_KEYPOINTS, 3)):
        raise HttpError(400, f"shape must be [T, {skeleton.NUM_KEYPOINTS}, 3] with T >= 1, got {shape!r}")
    try:
        raw = base64.b64decode(data, validate=True)
    except (TypeError, ValueError):
        raise HttpError(400, "pose is not base64 text") from None
    if len(raw) != 4 * math.prod(shape):
        raise HttpError(400, f"pose has {len(raw)} bytes; shape {shape} needs {4 * math.prod(shape)} (float32)")
    return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)


def sequence(method: str, kind: str, sample: Sample, fps: float, normalization: str, **extra) -> dict:
    """One shown sequence, as the API returns it (docs/viewer.md)."""
    spans = sample.gloss_spans
    return {"method": method, "kind": kind, "fps": float(fps), "normalization": normalization,
            "shape": list(sample.pose.shape),
            "pose": encode_pose(sample.pose), "glosses": list(sample.glosses),
            "gloss_spans": None if spans is None else np.asarray(spans).reshape(-1, 2).tolist(),
            "report": sample.report or {}, **extra}


def scores(hyp: np.ndarray, ref: np.ndarray) -> dict:
    """Per-sample scores of a hypothesis against the reference: DTW-MJE over all joints and per
    articulator (slp's protocol, ``slp score``) and the ratio of their frame counts."""
    from ..metrics.dtw import dtw_mje, selections

    return {"dtw_mje": {name: dtw_mje(hyp[:, sl], ref[:, sl]) for name, sl in selections(hyp.shape[1]).items()},
            "frames_ratio": len(hyp) / len(ref)}


def jsonable(obj):
    """``obj`` with numpy values as Python ones and non-finite floats as null (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# --- the viewer's state ------------------------------------------------------------------------

def named(spec: str, what: str) -> tuple[str | None, Path]:
    """``NAME=PATH`` -> (NAME, PATH); a bare ``PATH`` -> (None, PATH). The path must exist."""
    name, sep, rest = str(spec).partition("=")
    if sep and not Path(spec).exists():
        if not NAME.match(name):
            raise SlpError(f"{what} {spec!r}: the name {name!r} may hold only letters, digits, '.', '_', '-'")
        path = Path(rest)
    else:
        name, path = None, Path(spec)
    if not path.exists():
        raise SlpError(f"{path}: {what} not found")
    return name, path


@dataclass
class Method:
    name: str
    kind: str  # "concat" (the dictionary baseline) or "model"
    label: str
    generator: object

    def info(self) -> dict:
        g = self.generator
        out = {"name": self.name, "kind": self.kind, "label": self.label, "fps": float(g.fps),
               "normalization": g.normalization, "langs": sorted(g.langs) or None}
        if getattr(g, "glosser", None) is not None:
            out["glosser"] = Path(str(g.glosser_path)).name
        return out


@dataclass
class Source:
    """An artifact given with ``--artifact``: ground truth (a corpus) or a method's outputs."""

    name: str
    artifact: Artifact
    index: dict[str, Sample]

    @property
    def generated(self) -> bool:
        return self.artifact.provenance.get("stage") == "generate"

    def info(self) -> dict:
        a = self.artifact
        return {"name": self.name, "file": a.path.name, "samples": len(a), "fps": a.fps,
                "normalization": a.normalization, "generated": self.generated,
                "stage": a.provenance.get("stage", ""), "splits": sorted({s.split for s in a}),
                "langs": sorted({s.lang for s in a})}


class Viewer:
    """The methods and artifacts a viewer shows, and the API's answers as dicts.

    ``methods`` maps a name to a ready generator (``slp_cli.generate.make_generator``): the name
    ``concat`` is the dictionary baseline, any other a trained model. ``artifacts`` maps a name to
    a loaded artifact. Generation requests are serialised (one lock for all methods).
    """

    def __init__(self, methods: dict[str, object] | None = None, artifacts: dict[str, Artifact] | None = None):
        clash = sorted(set(methods or {}) & set(artifacts or {}))
        if clash:
            raise SlpError(f"the name {clash[0]!r} is both a method and an artifact; name one of them otherwise (NAME=...)")
        self.methods: dict[str, Method] = {}
        for name, gen in (methods or {}).items():
            self.methods[name] = Method(name, gen.method, gen.label, gen)
        self.sources = {name: Source(name, a, {s.id: s for s in a.samples}) for name, a in (artifacts or {}).items()}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, models: Iterable[str] = (), dictionary: str | Path | None = None,
             artifacts: Iterable[str] = (), device: str = "auto", glosser: str | Path | None = None) -> "Viewer":
        """Load the methods and artifacts of `slp view`'s options: ``models`` as ``NAME=RUN_DIR``
        (or ``RUN_DIR``, named after its folder), ``artifacts`` as ``FILE`` or ``NAME=FILE``;
        ``glosser`` (a text-to-gloss run directory) makes the dictionary baseline look up the
        glosses it translates the text into, instead of matching word by word."""
        from ..generate import make_generator

        methods: dict[str, object] = {}
        gpath = named(str(glosser), "glosser directory")[1] if glosser is not None else None
        glossed = False  # whether any method takes the glosser
        if dictionary is not None:
            _, path = named(str(dictionary), "dictionary")
            extra = {"glosser": gpath, "device": device} if gpath is not None else {}
            methods["concat"] = make_generator("concat", dictionary=path, **extra)
            glossed = gpath is not None
        for spec in models:
            name, path = named(spec, "model directory")
            name = name or path.resolve().name
            if not NAME.match(name):
                raise SlpError(f"--model {spec}: name it NAME=RUN_DIR (letters, digits, '.', '_', '-')")
            if name in methods:
                raise SlpError(f"--model {spec}: the name {name!r} is taken" + (
                    " (by the dictionary baseline)" if name == "concat" else "") + "; name it NAME=RUN_DIR")
            gen = make_generator("model", model=path, device=device)
            if gpath is not None and "glosser" in {f.name for f in dataclasses.fields(gen.model.GenerateOptions)}:
                gen.options = gen.model.make_options({"glosser": gpath})  # e.g. GLOS: text -> glosses -> poses
                glossed = True
            methods[name] = gen
        if gpath is not None and not glossed:
            raise SlpError("--glosser translates text into glosses for the dictionary baseline (give --dictionary "
                           "DICT.h5 too) or for a gloss-conditioned --model such as GLOS")
        loaded: dict[str, Artifact] = {}
        for spec in artifacts:
            name, path = named(spec, "artifact")
            if name is None:  # the file's name without .h5, made unique
                base = re.sub(r"[^A-Za-z0-9._-]", "_", path.name.removesuffix(".h5")).lstrip("._-") or "artifact"
                name, i = base, 2
                while name in loaded or name in methods:
                    name, i = f"{base}-{i}", i + 1
            elif name in loaded or name in methods:
                raise SlpError(f"--artifact {spec}: the name {name!r} is taken")
            loaded[name] = load(path)
        if not methods and not loaded:
            raise SlpError("nothing to show: give --model NAME=RUN_DIR, --dictionary DICT.h5 or --artifact FILE.h5")
        viewer = cls(methods, loaded)
        viewer.warm_up()
        return viewer

    def warm_up(self) -> None:
        """Sign a word in each language of each method once, so that lazily loaded parts
        (lemmatizers, word segmenters, the first forward pass) do not count in the generation
        time of the first request."""
        from ..generate import Request, generate

        for m in self.methods.values():
            for lang in m.generator.langs:
                try:
                    generate([Request(id="warm-up", text="warm up", lang=lang)], method=m.generator)
                except SlpError:
                    pass

    # --- answers ---

    def methods_info(self) -> dict:
        from ..text.lemmas import SPOKEN

        methods = [m.info() for m in self.methods.values()]
        langs = sorted({x for m in methods for x in (m["langs"] or [])}
                       | {x for s in self.sources.values() for x in s.info()["langs"]})
        return {"methods": methods, "languages": langs or sorted(SPOKEN)}

    def artifacts_info(self) -> dict:
        return {"artifacts": [s.info() for s in self.sources.values()]}

    def source(self, name) -> Source:
        if not isinstance(name, str) or not name:
            raise HttpError(400, "give an artifact name (see GET /api/artifacts)")
        if name not in self.sources:
            known = ", ".join(self.sources) or "none: start slp view with --artifact FILE.h5"
            raise HttpError(404, f"no artifact named {name!r} (this viewer serves: {known})")
        return self.sources[name]

    def samples(self, artifact: str, split: str | None = None, lang: str | None = None,
                query: str | None = None) -> dict:
        """The samples of one artifact (id, split, lang, text, frames), filtered by split, language
        and a case-insensitive substring of the id or text."""
        src = self.source(artifact)
        q = (query or "").strip().lower()
        rows = [{"id": s.id, "split": s.split, "lang": s.lang, "text": s.text, "frames": s.num_frames}
                for s in src.artifact.samples
                if (not split or s.split == split) and (not lang or s.lang == lang)
                and (not q or q in s.id.lower() or q in s.text.lower())]
        return {"artifact": src.name, "samples": rows}

    def reference(self, sample_id: str, prefer: str | None = None) -> tuple[str, Sample] | None:
        """The ground truth of a sample id: ``prefer``'s sample if that artifact is not a method's
        output, else the first such artifact holding the id."""
        order = sorted(self.sources.values(), key=lambda s: s.name != prefer)
        for src in order:
            if not src.generated and sample_id in src.index:
                return src.name, src.index[sample_id]
        return None

    def _scored(self, entry: dict, pose: np.ndarray, normalization: str, ref) -> dict:
        if ref is None:
            return entry
        ref_name, ref_sample = ref
        ref_norm = self.sources[ref_name].artifact.normalization
        if normalization != ref_norm:
            entry["scores_note"] = (f"not scored: its poses are normalized {normalization or 'not at all'}, "
                                    f"the reference's {ref_norm or 'not at all'}")
        else:
            entry["scores"] = scores(pose, ref_sample.pose)
        entry["reference"] = ref_name
        return entry

    def sample(self, artifact: str, sample_id: str) -> dict:
        """One sample of ``artifact`` and the same id in every other artifact: ground truth first,
        each other one scored against it."""
        src = self.source(artifact)
        if not isinstance(sample_id, str) or not sample_id:
            raise HttpError(400, "give a sample id (see GET /api/samples)")
        if sample_id not in src.index:
            raise HttpError(404, f"artifact {src.name!r} has no sample {sample_id!r}")
        chosen = src.index[sample_id]
        ref = self.reference(sample_id, prefer=src.name)
        holders = [s for s in self.sources.values() if sample_id in s.index]
        holders.sort(key=lambda s: ref is None or s.name != ref[0])
        results = []
        for s in holders:
            x = s.index[sample_id]
            is_ref = ref is not None and s.name == ref[0]
            entry = sequence(s.name, "ground truth" if is_ref else "artifact", x, s.artifact.fps,
                             s.artifact.normalization, id=x.id,
                             text=x.text, translation=x.translation, split=x.split, lang=x.lang)
            results.append(entry if is_ref else self._scored(entry, x.pose, s.artifact.normalization, ref))
        about = ref[1] if ref else chosen  # the sentence, as the ground truth has it
        return {"artifact": src.name, "id": chosen.id, "text": about.text, "lang": about.lang,
                "split": about.split, "glosses": list(about.glosses), "translation": about.translation,
                "reference": ref[0] if ref else None, "results": results}

    def generate(self, body) -> dict:
        """``{"text", "lang", "methods"?, "ref"?: {"artifact", "id"}}`` -> one result per method
        (all methods when ``methods`` is absent). A method that cannot sign the sentence gets
        ``{"method", "error"}`` in place of its poses."""
        from ..generate import Request, generate
        from ..text.lemmas import spoken_language

        if not isinstance(body, dict):
            raise HttpError(400, "the request body must be a JSON object {\"text\", \"lang\", \"methods\"}")
        text, lang = body.get("text"), body.get("lang")
        if not isinstance(text, str) or not text.strip():
            raise HttpError(400, "empty text: give a sentence to sign in \"text\"")
        if len(text) > MAX_TEXT:
            raise HttpError(400, f"text has {len(text)} characters; the viewer signs up to {MAX_TEXT}")
        if not isinstance(lang, str) or not lang.strip():
            raise HttpError(400, "give the sign language in \"lang\", e.g. \"dgs\"")
        try:
            spoken_language(lang)
        except SlpError as e:
            raise HttpError(400, str(e)) from None
        names = body.get("methods", list(self.methods))
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise HttpError(400, "\"methods\" must be a list of method names (see GET /api/methods)")
        unknown = [n for n in names if n not in self.methods]
        if unknown:
            raise HttpError(400, f"unknown method {unknown[0]!r}; this viewer has "
                                 f"{', '.join(self.methods) or 'no methods: start it with --model or --dictionary'}")
        ref = None
        if body.get("ref") is not None:
            r = body["ref"]
            if not isinstance(r, dict):
                raise HttpError(400, "\"ref\" must be {\"artifact\": NAME, \"id\": SAMPLE_ID}")
            src = self.source(r.get("artifact"))
            if r.get("id") not in src.index:
                raise HttpError(404, f"artifact {src.name!r} has no sample {r.get('id')!r}")
            ref = (src.name, src.index[r["id"]])
        results = []
        for name in dict.fromkeys(names):
            m = self.methods[name]
            with self._lock:
                start = time.perf_counter()
                try:
                    out = generate([Request(id="q", text=text, lang=lang)], method=m.generator)
                except SlpError as e:
                    results.append({"method": name, "kind": m.kind, "error": str(e)})
                    continue
                ms = (time.perf_counter() - start) * 1000
            s = out.samples[0]
            entry = sequence(name, m.kind, s, m.generator.fps, m.generator.normalization, ms=round(ms, 1))
            results.append(self._scored(entry, s.pose, m.generator.normalization, ref))
        return {"text": text, "lang": lang, "results": results}

    def export_pose(self, body) -> tuple[bytes, str, str]:
        """``{"sequences": [{"name", "fps", "shape", "pose"}]}`` -> (bytes, file name, content
        type): one ``.pose`` file (pose-format), or a zip of them for several sequences."""
        from ..interop.pose_format import write_pose

        seqs = body.get("sequences") if isinstance(body, dict) else None
        if not isinstance(seqs, list) or not seqs:
            raise HttpError(400, "give {\"sequences\": [{\"name\", \"fps\", \"shape\", \"pose\"}, ...]}")
        files: dict[str, bytes] = {}
        with tempfile.TemporaryDirectory(prefix="slp-view-") as tmp:
            for i, seq in enumerate(seqs):
                if not isinstance(seq, dict):
                    raise HttpError(400, f"sequence {i}: expected an object {{\"name\", \"fps\", \"shape\", \"pose\"}}")
                fps = seq.get("fps")
                if not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
                    raise HttpError(400, f"sequence {i}: fps must be a positive number, got {fps!r}")
                pose = decode_pose(seq.get("pose"), seq.get("shape"))
                stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(seq.get("name") or f"sequence-{i}")).strip("._") or "pose"
                while f"{stem}.pose" in files:
                    stem += "_"
                path = write_pose(Sample(id=stem, pose=pose), Path(tmp) / f"{stem}.pose", float(fps))
                files[path.name] = path.read_bytes()
        if len(files) == 1:
            (name, data), = files.items()
            return data, name, "application/octet-stream"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files.items():
                z.writestr(name, data)
        return buf.getvalue(), "slp-view.zip", "application/zip"


def skeleton_info() -> dict:
    """The layout, bones and colours the page draws with: skeleton.py's, so Python and the page
    share one source."""
    return {"layout": skeleton.LAYOUT, "num_keypoints": skeleton.NUM_KEYPOINTS,
            "articulators": {n: [sl.start, sl.stop] for n, sl in skeleton.ARTICULATORS.items()},
            "bones": {n: [list(b) for b in bones] for n, bones in skeleton.BONES.items()},
            "colors": {n: "#%02x%02x%02x" % rgb for n, rgb in skeleton.COLORS.items()},
            "draw_order": list(skeleton.DRAW_ORDER)}


# --- HTTP --------------------------------------------------------------------------------------

def _assets() -> dict[str, tuple[bytes, str]]:
    """Every file of the packaged ``static/`` folder by name, with its content type."""
    folder = resources.files(__package__) / "static"
    out = {}
    for entry in folder.iterdir():
        suffix = Path(entry.name).suffix
        if entry.is_file() and suffix in CONTENT_TYPES:
            out[entry.name] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    if "index.html" not in out:
        raise SlpError("the viewer's page is missing from this installation (slp_cli/view/static); reinstall slp")
    return out


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(header: str | None) -> str:
    """The host of a Host header: ``localhost:8765`` -> ``localhost``, ``[::1]:8765`` -> ``::1``."""
    h = (header or "").strip()
    if h.startswith("[") and "]" in h:
        return h[1:h.index("]")]
    return h.rsplit(":", 1)[0]


class Handler(BaseHTTPRequestHandler):
    server_version = "slp-view"
    default_request_version = "HTTP/1.0"  # errors in a malformed request line still get a status line
    timeout = SOCKET_TIMEOUT
    server: "ViewServer"

    # --- answers ---

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if content_type.startswith("text/html"):
            self.send_header("Content-Security-Policy", CSP)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj, status: int = 200) -> None:
        body = json.dumps(jsonable(obj), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        self._send(status, body.encode("utf-8"), "application/json; charset=utf-8")

    def send_error(self, code, message=None, explain=None):
        """Every error, also those http.server raises itself (a malformed request line...), as JSON.
        Its 5xx answers to malformed requests (an unknown method, a bad HTTP version) are the
        client's fault: 405 and 400."""
        code = {501: 405, 505: 400}.get(int(code), int(code))
        line = " ".join(str(message or HTTPStatus(code).phrase).split())
        try:
            self.close_connection = True
            self._json({"error": line}, code)
        except OSError:
            pass

    def log_message(self, format, *args):  # quiet: the console is the user's
        if self.server.verbose:
            super().log_message(format, *args)

    # --- routing ---

    def _route(self, routes: dict) -> None:
        try:
            host = _host_name(self.headers.get("Host"))
            if self.server.loopback and not _is_loopback(host):
                raise HttpError(403, f"Host {host!r} refused: this viewer answers only to localhost "
                                     "(start it with --host to serve other names)")
            url = urlsplit(self.path)
            handler = routes.get(url.path)
            if handler is None:
                if url.path.startswith("/static/") and url.path[8:] in self.server.assets:
                    return self._asset(url.path[8:])
                raise HttpError(404, f"no such path: {url.path[:200]}")
            handler(self, {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()})
        except HttpError as e:
            self.send_error(e.status, str(e))
        except SlpError as e:
            self.send_error(400, str(e))
        except (ConnectionError, socket.timeout):
            self.close_connection = True
        except Exception as e:  # a bug: one line to the client, the traceback to the server's console
            traceback.print_exc(file=sys.stderr)
            self.send_error(500, f"internal error ({type(e).__name__}: {e}); see the server's console")

    def _asset(self, name: str) -> None:
        data, content_type = self.server.assets[name]
        self._send(200, data, content_type)

    def _body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raise HttpError(411, "send the body with a Content-Length (chunked bodies are not accepted)")
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            raise HttpError(411, "a POST needs a Content-Length header") from None
        if length < 0 or length > MAX_BODY:
            raise HttpError(413, f"request body of {length} bytes; the limit is {MAX_BODY}")
        raw = self.rfile.read(length)
        if len(raw) < length:
            raise HttpError(400, f"request body ended after {len(raw)} of {length} bytes")
        try:
            return json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise HttpError(400, "malformed JSON: the body is not UTF-8") from None
        except json.JSONDecodeError as e:
            raise HttpError(400, f"malformed JSON: {e}") from None

    def _get_index(self, q):
        self._asset("index.html")

    def _get_methods(self, q):
        self._json(self.server.viewer.methods_info())

    def _get_artifacts(self, q):
        self._json(self.server.viewer.artifacts_info())

    def _get_samples(self, q):
        self._json(self.server.viewer.samples(q.get("artifact"), q.get("split"), q.get("lang"), q.get("q")))

    def _get_sample(self, q):
        self._json(self.server.viewer.sample(q.get("artifact"), q.get("id")))

    def _get_skeleton(self, q):
        self._json(skeleton_info())

    def _post_generate(self, q):
        self._json(self.server.viewer.generate(self._body()))

    def _post_pose(self, q):
        data, name, content_type = self.server.viewer.export_pose(self._body())
        self._send(200, data, content_type, {"Content-Disposition": f'attachment; filename="{name}"'})

    GET = {"/": _get_index, "/index.html": _get_index, "/api/methods": _get_methods,
           "/api/artifacts": _get_artifacts, "/api/samples": _get_samples, "/api/sample": _get_sample,
           "/api/skeleton": _get_skeleton}
    POST = {"/api/generate": _post_generate, "/api/pose": _post_pose}

    def do_GET(self):
        self._route(self.GET)

    def do_HEAD(self):
        self._route(self.GET)

    def do_POST(self):
        self._route(self.POST)

    def _not_allowed(self):
        self.send_error(405, f"{self.command} is not supported; the API answers GET and POST")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed


class ViewServer(ThreadingHTTPServer):
    """A threaded HTTP server for one :class:`Viewer`."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, viewer: Viewer, host: str = "127.0.0.1", port: int = 8765, verbose: bool = False):
        self.viewer, self.verbose = viewer, verbose
        self.assets = _assets()
        self.loopback = _is_loopback(host)
        if ":" in host:
            self.address_family = socket.AF_INET6
        try:
            super().__init__((host.strip("[]"), port), Handler)
        except OSError as e:
            hint = "; give another --port (0 picks a free one)" if e.errno in (98, 48, 10048) else ""
            raise SlpError(f"cannot serve on {host}:{port}: {e.strerror or e}{hint}") from None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if self.address_family == socket.AF_INET6:
            host = f"[{host}]"
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/"


def make_server(viewer: Viewer, host: str = "127.0.0.1", port: int = 8765, verbose: bool = False) -> ViewServer:
    """A server for ``viewer`` bound to ``host``:``port`` (0: a free port; see ``.url``), not yet serving."""
    return ViewServer(viewer, host, port, verbose)


def serve(viewer: Viewer, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = False,
          ready=None) -> None:
    """Serve ``viewer`` until interrupted; ``ready(url)`` is called once it listens."""
    server = make_server(viewer, host, port)
    try:
        if ready:
            ready(server.url)
        if open_browser:
            import webbrowser

            webbrowser.open(server.url)
        server.serve_forever()
    finally:
        server.server_close()
