"""Skeleton videos (mp4, GIF) of mp178 pose sequences, alone or side by side with a reference.

The drawing is an orthographic front view (x right, y down; z ignored) of the bones in
``skeleton.BONES``, one colour per articulator, on a white background. Joints that are missing
(NaN) and the bones touching them are not drawn. The view is fitted once to a bounding box over
the whole sequence (and the reference), so the signer does not jump between frames; this works
for image coordinates and for normalized ones (neck at the origin, shoulder width 1, docs/design.md,
section 5), both y down.

Text (title, labels, sentence, glosses) is drawn with Pillow in a TrueType font: DejaVu Sans
(shipped with matplotlib) for Latin, Greek and Cyrillic; for Chinese and other scripts a system
font that has them (``SLP_FONT=/path/to/font.ttf`` chooses one). Characters no available font
has are replaced (with a warning), never an error.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from . import skeleton
from .artifacts import Sample
from .atomic import atomic_write, refuse_overwriting
from .errors import SlpError

FORMATS = (".mp4", ".gif")
BACKGROUND = (255, 255, 255)
# skeleton.COLORS in OpenCV's BGR order.
COLORS = {name: rgb[::-1] for name, rgb in skeleton.COLORS.items()}
_TEXT = (40, 40, 40)
_ACTIVE = (30, 30, 200)  # the gloss being signed


# --- geometry ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Viewport:
    """Maps pose x, y to pixels: the centre of the pose box goes to the centre of the area."""

    scale: float
    center: tuple[float, float]
    area: tuple[int, int, int, int]  # x0, y0, width, height in pixels

    def project(self, xy: np.ndarray) -> np.ndarray:
        x0, y0, w, h = self.area
        return (np.asarray(xy, dtype=np.float64)[..., :2] - self.center) * self.scale + (x0 + w / 2, y0 + h / 2)


def pose_box(poses: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """(min, max) of x, y over the finite joints of all frames of all sequences, ignoring
    outliers far outside the bulk (a stray detection must not shrink the signer)."""
    xy = np.concatenate([np.asarray(p)[..., :2].reshape(-1, 2) for p in poses])
    xy = xy[np.isfinite(xy).all(-1)]
    if not len(xy):
        return None
    q1, q99 = np.percentile(xy, [1, 99], axis=0)
    fence = (q99 - q1) * 0.5
    keep = ((xy >= q1 - fence) & (xy <= q99 + fence)).all(-1)
    xy = xy[keep]
    return xy.min(0), xy.max(0)


def fit_viewport(box: tuple[np.ndarray, np.ndarray] | None, area: tuple[int, int, int, int],
                 pad: float = 0.06) -> Viewport:
    """The largest view of ``box`` that fits in ``area`` with ``pad`` margin, same scale on x and y."""
    _, _, w, h = area
    if box is None:
        return Viewport(1.0, (0.0, 0.0), area)
    lo, hi = box
    span = np.maximum(hi - lo, 1e-6)
    span = np.maximum(span, span.max() * 1e-3)  # a flat box (one point) still gets a finite scale
    scale = float(min(w * (1 - 2 * pad) / span[0], h * (1 - 2 * pad) / span[1]))
    center = (lo + hi) / 2
    return Viewport(scale, (float(center[0]), float(center[1])), area)


def draw_pose(canvas: np.ndarray, frame: np.ndarray, view: Viewport, size: int | None = None) -> np.ndarray:
    """Draw one mp178 frame (178, >=2) onto a BGR canvas in place; NaN joints and their bones are
    skipped. ``size`` (default the canvas height) sets line widths."""
    import cv2

    size = size or canvas.shape[0]
    px = view.project(frame)
    ok = np.isfinite(px).all(-1)
    fixed = np.round(np.where(ok[:, None], px, 0) * 16).astype(np.int32)  # 4 bits of subpixel
    widths = {"face": 1, "body": max(2, size // 128), "right_hand": max(1, size // 256),
              "left_hand": max(1, size // 256)}
    for name in skeleton.DRAW_ORDER:
        bones = [(a, b) for a, b in skeleton.BONES[name] if ok[a] and ok[b]]
        if bones:
            segs = [fixed[[a, b]] for a, b in bones]
            cv2.polylines(canvas, segs, False, COLORS[name], widths[name], cv2.LINE_AA, shift=4)
    r = max(1, size // 200) * 16
    for name in ("right_hand", "left_hand", "body"):
        sl = skeleton.ARTICULATORS[name]
        for p in fixed[sl][ok[sl]]:
            cv2.circle(canvas, (int(p[0]), int(p[1])), r, COLORS[name], -1, cv2.LINE_AA, shift=4)
    return canvas


# --- text --------------------------------------------------------------------------------------

_CJK_FONTS = [
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
]


def _latin_fonts() -> list[str]:
    spec = importlib.util.find_spec("matplotlib")
    fonts = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"]
    if spec and spec.submodule_search_locations:
        fonts.append(os.path.join(spec.submodule_search_locations[0], "mpl-data/fonts/ttf/DejaVuSans.ttf"))
    return fonts


def _fc_match(text: str) -> list[str]:
    """Fonts fontconfig suggests for the first character no candidate font covers."""
    if not text or not shutil.which("fc-match"):
        return []
    try:
        out = subprocess.run(["fc-match", "-f", "%{file}", f":charset={ord(text[0]):x}"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return []
    return [out.stdout.strip()] if out.returncode == 0 and out.stdout.strip() else []


@functools.lru_cache(maxsize=32)
def _cmap(path: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    try:
        with TTFont(path, fontNumber=0, lazy=True) as font:
            return frozenset(font.getBestCmap() or {})
    except Exception:  # unreadable font: treat as covering nothing
        return frozenset()


def _font_path(text: str) -> tuple[str | None, frozenset[int]]:
    """The first font that has every character of ``text`` (else the one that has the most)."""
    needed = {ord(c) for c in text if not c.isspace()}
    user = [os.environ["SLP_FONT"]] if os.environ.get("SLP_FONT") else []
    best, best_cov = None, frozenset()
    for path in [p for p in user + _latin_fonts() if os.path.isfile(p)]:
        cov = _cmap(path)
        if needed <= cov:
            return path, cov
        if best is None or len(needed & cov) > len(needed & best_cov):
            best, best_cov = path, cov
    # Only look for fonts of other scripts when the usual ones lack characters.
    missing = "".join(chr(c) for c in sorted(needed - best_cov))
    for path in [p for p in _CJK_FONTS + _fc_match(missing) if os.path.isfile(p)]:
        cov = _cmap(path)
        if needed <= cov:
            return path, cov
    return best, best_cov


def drawable(text: str, cmap: frozenset[int], note: bool = True) -> tuple[str, int]:
    """``text`` with characters the font lacks replaced: accented letters by their base letter,
    others by '?' (with ``note``, the whole string by a note when most of it is missing).
    Returns the text and how many characters could not be drawn."""
    out, lost = [], 0
    for c in text:
        if c.isspace() or ord(c) in cmap:
            out.append(c)
            continue
        base = "".join(b for b in unicodedata.normalize("NFKD", c) if not unicodedata.combining(b))
        if base and all(ord(b) in cmap for b in base):
            out.append(base)
        else:
            out.append("?")
            lost += 1
    visible = sum(not c.isspace() for c in text)
    if note and lost and lost * 2 >= visible:
        return "(text not shown: no font here has its script; set SLP_FONT)", lost
    return "".join(out), lost


class _Text:
    """Text drawn with Pillow into RGBA layers, composited onto BGR frames."""

    def __init__(self, strings: Sequence[str], px: int):
        from PIL import ImageFont

        path, self.cmap = _font_path("".join(strings))
        self.px = px
        if path is None:
            self.font = ImageFont.load_default(px)
            self.cmap = frozenset(range(32, 127))
        else:
            self.font = ImageFont.truetype(path, px)
        self.lost = 0

    def fit(self, s: str, note: bool = True) -> str:
        s, lost = drawable(s, self.cmap, note)
        self.lost += lost
        return s

    def width(self, s: str) -> float:
        return self.font.getlength(s)

    def wrap(self, s: str, width: float, max_lines: int) -> list[str]:
        """Greedy wrap at spaces (at characters for unspaced scripts), ellipsis past max_lines."""
        lines, cur = [], ""
        for tok in s.replace("\n", " ").split(" "):
            cand = f"{cur} {tok}" if cur else tok
            if self.width(cand) <= width:
                cur = cand
                continue
            if cur:
                lines.append(cur)
            cur = ""
            for ch in tok:  # a token wider than the line (e.g. Chinese) breaks anywhere
                if self.width(cur + ch) > width and cur:
                    lines.append(cur)
                    cur = ""
                cur += ch
        if cur:
            lines.append(cur)
        if len(lines) > max_lines:
            last = lines[max_lines - 1]
            while last and self.width(last + "…") > width:
                last = last[:-1]
            lines = lines[: max_lines - 1] + [last + "…"]
        return lines

    def layer(self, shape: tuple[int, int], items: list[tuple[float, float, str, tuple]]) -> "_Layer":
        """Draw (x, y, text, BGR colour) items on a transparent layer of (height, width)."""
        from PIL import Image, ImageDraw

        img = Image.new("RGBA", (shape[1], shape[0]), (0, 0, 0, 0))
        draw = ImageDraw.Draw(img)
        for x, y, s, bgr in items:
            draw.text((x, y), s, font=self.font, fill=(bgr[2], bgr[1], bgr[0], 255))
        return _Layer(np.asarray(img))


class _Layer:
    """An RGBA image restricted to the rows it covers, alpha-composited onto BGR frames."""

    def __init__(self, rgba: np.ndarray):
        rows = np.nonzero(rgba[..., 3].any(1))[0]
        self.rows = slice(int(rows[0]), int(rows[-1]) + 1) if len(rows) else slice(0, 0)
        part = rgba[self.rows]
        self.bgr = part[..., 2::-1].astype(np.float32)
        self.alpha = part[..., 3:4].astype(np.float32) / 255.0

    def apply(self, frame: np.ndarray) -> None:
        if self.rows.stop > self.rows.start:
            region = frame[self.rows].astype(np.float32)
            frame[self.rows] = (region * (1 - self.alpha) + self.bgr * self.alpha + 0.5).astype(np.uint8)


# --- frames ------------------------------------------------------------------------------------

@dataclass
class _Side:
    pose: np.ndarray
    label: str
    glosses: list[str]
    spans: np.ndarray | None


def _side(x, default_label: str) -> tuple[_Side, str]:
    """A panel from a Sample or an array; returns it and the sample's text."""
    if isinstance(x, Sample):
        pose, text, glosses, spans, label = x.pose, x.text, list(x.glosses), x.gloss_spans, x.id
    else:
        pose, text, glosses, spans, label = x, "", [], None, default_label
    pose = np.asarray(pose, dtype=np.float32)
    if pose.ndim != 3 or pose.shape[1] != skeleton.NUM_KEYPOINTS or pose.shape[2] < 2:
        raise SlpError(f"pose '{label}': shape {pose.shape}, expected (T, {skeleton.NUM_KEYPOINTS}, 3) "
                       f"in the {skeleton.LAYOUT} layout")
    if pose.shape[0] == 0:
        raise SlpError(f"pose '{label}': no frames to render")
    if spans is not None and len(spans) != len(glosses):
        spans = None
    return _Side(pose, label, glosses, spans), text


def _gloss_window(text: _Text, glosses: list[str], active: int, width: float) -> list[tuple[str, bool]]:
    """The glosses that fit on one line, keeping the active one in view."""
    words = [text.fit(g, note=False) for g in glosses]
    sep = text.width(" ")
    lo = hi = max(active, 0)
    used = text.width(words[lo])
    hi += 1
    while True:
        grew = False
        if hi < len(words) and used + sep + text.width(words[hi]) <= width:
            used += sep + text.width(words[hi])
            hi += 1
            grew = True
        if lo > 0 and used + sep + text.width(words[lo - 1]) <= width:
            lo -= 1
            used += sep + text.width(words[lo])
            grew = True
        if not grew:
            break
    return [(w, i == active) for i, w in zip(range(lo, hi), words[lo:hi])]


@dataclass
class _Captions:
    """Everything drawn as text, laid out once for a video."""

    writer: _Text
    static: _Layer  # title, legend, panel labels, sentence
    top: int  # pixels above the signer
    bottom: int  # pixels below the signer
    glosses: _Side | None  # the side whose glosses are shown
    px: int
    margin: int
    line: int
    cache: dict

    def glosses_at(self, t: int, width: int, size: int) -> _Layer | None:
        """The gloss line at frame t, with the gloss being signed highlighted (cached)."""
        s = self.glosses
        if s is None:
            return None
        k = min(t, len(s.pose) - 1)
        active = -1
        if s.spans is not None:
            hits = np.nonzero((s.spans[:, 0] <= k) & (k < s.spans[:, 1]))[0]
            active = int(hits[0]) if len(hits) else -1
        if active not in self.cache:
            x, words = self.margin, []
            for w, on in _gloss_window(self.writer, s.glosses, active, width - 2 * self.margin):
                words.append((x, size - self.margin - self.line, w, _ACTIVE if on else _TEXT))
                x += self.writer.width(w + " ")
            self.cache[active] = self.writer.layer((size, width), words)
        return self.cache[active]


def _captions(sides: list[_Side], title: str, text: str, size: int) -> _Captions:
    """Lay out the text: title and legend (row 1), panel labels (row 2), sentence and glosses
    (bottom)."""
    width = size * len(sides)
    px = max(10, size // 30)
    line = int(round(px * 1.4))
    margin = max(4, size // 64)
    legend = [("right hand", COLORS["right_hand"]), ("left hand", COLORS["left_hand"])]
    strings = [title, text, *(s.label for s in sides), *(g for s in sides for g in s.glosses),
               *(name for name, _ in legend)]
    writer = _Text([s for s in strings if s], px)
    glosses = next((s for s in sides if s.glosses), None)
    if glosses is not None:
        joined = "".join(glosses.glosses)
        if drawable(joined, writer.cmap, note=False)[1] * 2 >= len(joined):
            glosses = None  # no font for them; the caption says so when the sentence has them
    items = []
    x = width - margin
    for name, color in reversed(legend):
        x -= writer.width(name)
        items.append((x, margin // 2, name, color))
        x -= writer.width("   ")
    if title:
        items.append((margin, margin // 2, writer.fit(title), _TEXT))
    for i, s in enumerate(sides):
        # the frame counter sits at the right end of the same row: a long id is cut short of it
        room = size - 3 * margin - writer.width(f"{len(s.pose)}/{len(s.pose)}") * 1.2
        label = writer.wrap(writer.fit(s.label), room, 1)[0] if writer.width(s.label) > room else writer.fit(s.label)
        items.append((i * size + margin, margin // 2 + line, label, _TEXT))
    text_lines = writer.wrap(writer.fit(text), width - 2 * margin, 2) if text else []
    n_bottom = len(text_lines) + (1 if glosses else 0)
    bottom = n_bottom * line + (margin if n_bottom else 0)
    for j, s in enumerate(text_lines):
        items.append((margin, size - bottom + j * line, s, _TEXT))
    if writer.lost:
        warnings.warn(f"{writer.lost} characters of the captions are not in any font found; "
                      f"set SLP_FONT to a .ttf/.ttc that has them", stacklevel=3)
    return _Captions(writer, writer.layer((size, width), items), margin // 2 + 2 * line + margin // 2,
                     bottom, glosses, px, margin, line, {})


def _views(sides: list[_Side], size: int, top: int, height: int) -> list[Viewport]:
    """One box for all sides, so they are drawn at the same scale, unless a side's box does not
    overlap it or is tiny within it (e.g. raw pixels next to normalized coordinates): then that
    side gets its own."""
    shared = pose_box([s.pose for s in sides])
    views = []
    for i, s in enumerate(sides):
        box = pose_box([s.pose])
        use = shared
        if box is not None and shared is not None:
            overlap = np.minimum(box[1], shared[1]) - np.maximum(box[0], shared[0])
            tiny = np.prod(box[1] - box[0]) < 0.02 * np.prod(shared[1] - shared[0])
            if (overlap <= 0).any() or tiny:
                use = box
        views.append(fit_viewport(use, (i * size, top, size, height)))
    return views


def render_frames(sample_or_pose, reference=None, *, title: str = "", size: int = 512,
                  text: str | None = None, label: str | None = None, ref_label: str | None = None
                  ) -> Iterator[np.ndarray]:
    """BGR uint8 frames of height ``size`` and width ``size`` per panel (two with ``reference``).

    The shorter of the two sequences holds its last frame. ``text`` defaults to the sample's
    sentence (or the reference's); glosses are shown with the current one highlighted when the
    sample has gloss spans.
    """
    import cv2

    if size < 64:
        raise SlpError(f"size {size} px is too small to draw a signer; use at least 64")
    main, main_text = _side(sample_or_pose, "pose")
    sides, ref_text = [main], ""
    if reference is not None:
        ref, ref_text = _side(reference, "reference")
        main.label = label or ("generated" if not isinstance(sample_or_pose, Sample) else main.label)
        ref.label = ref_label or "reference"
        sides.append(ref)
    elif label:
        main.label = label
    cap = _captions(sides, title, text if text is not None else (main_text or ref_text), size)
    if size - cap.top - cap.bottom < size // 3:
        raise SlpError(f"size {size} px leaves no room for the signer under the captions; use a larger --size")
    views = _views(sides, size, cap.top, size - cap.top - cap.bottom)

    width = size * len(sides)
    lengths = [len(s.pose) for s in sides]
    blank = np.full((size, width, 3), BACKGROUND, np.uint8)
    scale = cap.px / 32.0
    for t in range(max(lengths)):
        frame = blank.copy()
        for i, s in enumerate(sides):
            k = min(t, lengths[i] - 1)  # the shorter side holds its last frame
            draw_pose(frame, s.pose[k], views[i], size)
            counter = f"{k + 1}/{lengths[i]}"
            (tw, _), _ = cv2.getTextSize(counter, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            cv2.putText(frame, counter, ((i + 1) * size - cap.margin - tw,
                                         cap.margin // 2 + cap.line + int(cap.px * 0.85)),
                        cv2.FONT_HERSHEY_SIMPLEX, scale, _TEXT, 1, cv2.LINE_AA)
        if len(sides) > 1:
            cv2.line(frame, (size, cap.top), (size, size - cap.bottom), (200, 200, 200), 1)
        cap.static.apply(frame)
        gloss_line = cap.glosses_at(t, width, size)
        if gloss_line is not None:
            gloss_line.apply(frame)
        yield frame


# --- files -------------------------------------------------------------------------------------

def _check_format(out: Path) -> str:
    ext = out.suffix.lower()
    if ext not in FORMATS:
        raise SlpError(f"{out}: unsupported video format '{out.suffix or '(none)'}'; use .mp4 or .gif")
    return ext


def _write_video(frames: Iterator[np.ndarray], out: Path, fps: float) -> Path:
    """Write frames to ``out`` atomically (a temporary file with the same extension, renamed)."""
    import cv2

    ext = _check_format(out)
    if not fps or fps <= 0:
        raise SlpError(f"{out}: fps must be positive, got {fps}")
    with atomic_write(out) as tmp:
        if ext == ".mp4":
            writer = None
            for frame in frames:
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
                    if not writer.isOpened():
                        raise SlpError(f"{out}: OpenCV cannot write mp4 (mp4v) here; write a .gif instead")
                writer.write(frame)
            if writer is not None:
                writer.release()
        else:
            from PIL import Image

            palette = _gif_palette()

            def pil(it):
                for f in it:  # a fixed palette: 10x faster than an adaptive one per frame
                    yield Image.fromarray(np.ascontiguousarray(f[..., ::-1])).quantize(
                        palette=palette, dither=Image.Dither.NONE)

            it = pil(frames)
            first = next(it)
            # GIF delays are in 10 ms steps; loop forever like any preview.
            first.save(tmp, format="GIF", save_all=True, append_images=it,
                       duration=max(10, int(round(1000 / fps / 10)) * 10), loop=0)
    return out


def _gif_palette():
    """Every drawing colour blended with the white background in 16 steps (anti-aliased edges)."""
    from PIL import Image

    colors = [*COLORS.values(), _TEXT, _ACTIVE, (200, 200, 200), (0, 0, 0)]
    steps = np.linspace(0, 1, 16)[:, None]
    rgb = np.concatenate([np.array(BACKGROUND) * (1 - steps) + np.array(c[::-1]) * steps for c in colors])
    rgb = np.unique(np.round(rgb).astype(np.uint8), axis=0)[:256]
    pal = Image.new("P", (1, 1))
    pal.putpalette(rgb.ravel().tolist() + [255] * (768 - rgb.size))
    return pal


def render(sample_or_pose, out_path: str | Path, fps: float, reference=None, title: str = "",
           size: int = 512, text: str | None = None, label: str | None = None,
           ref_label: str | None = None) -> Path:
    """Render a Sample or a (T, 178, 3) mp178 array to ``out_path`` (.mp4 or .gif) at ``fps``.

    With ``reference`` (a Sample or array, e.g. the ground truth for a generated sample) the two
    are drawn side by side at the same scale; the frame is then twice as wide. Returns the path.
    """
    out = Path(out_path)
    _check_format(out)
    frames = render_frames(sample_or_pose, reference, title=title, size=size, text=text,
                           label=label, ref_label=ref_label)
    return _write_video(frames, out, fps)


def _safe_name(sample_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in sample_id) or "sample"


def render_artifact(path: str | Path, out: str | Path, ids: Sequence[str] | None = None,
                    reference_path: str | Path | None = None, fps: float | None = None,
                    size: int = 512, fmt: str = "mp4", title: str = "") -> list[tuple[str, Path]]:
    """Render samples of an artifact, by id. ``out`` is a video file (.mp4/.gif) for one sample or
    a folder (existing, or a path without extension) for one file per sample, named by id.

    With a file and no ``ids``, the first sample is rendered (a warning names it when there are
    more). With ``reference_path``, each sample is shown next to the reference sample of the same
    id (or the only one, when both artifacts hold one sample). Returns (id, path) pairs.
    """
    refuse_overwriting([out], [path, reference_path])
    from .artifacts import load

    path, out = Path(path), Path(out)
    art = load(path)
    if art.layout != skeleton.LAYOUT:
        raise SlpError(f"{path}: layout {art.layout} cannot be drawn; render draws {skeleton.LAYOUT} skeletons")
    if not art.samples:
        raise SlpError(f"{path}: no samples to render")
    folder = out.is_dir() or not out.suffix
    if fmt not in ("mp4", "gif"):
        raise SlpError(f"unsupported video format '{fmt}'; use mp4 or gif")
    if not folder:
        _check_format(out)
    known = {s.id: s for s in art.samples}
    if ids:
        unknown = [i for i in ids if i not in known]
        if unknown:
            few = ", ".join(list(known)[:5]) + (", ..." if len(known) > 5 else "")
            raise SlpError(f"{path}: no sample with id '{unknown[0]}'; ids there include: {few}")
        chosen = [known[i] for i in dict.fromkeys(ids)]
    elif folder:
        chosen = art.samples
    else:
        chosen = art.samples[:1]
        if len(art.samples) > 1:
            warnings.warn(f"{path} holds {len(art.samples)} samples; rendering the first, "
                          f"'{chosen[0].id}' (pass an id, or an output folder for all)", stacklevel=2)
    if len(chosen) > 1 and not folder:
        raise SlpError(f"{out}: {len(chosen)} samples need an output folder (a path without extension)")
    ref = None
    if reference_path is not None:
        ref = load(reference_path)
        if ref.layout != skeleton.LAYOUT:
            raise SlpError(f"{reference_path}: layout {ref.layout} cannot be drawn")
    done = []
    for s in chosen:
        if not np.isfinite(s.pose).any():  # a blank video would look like a rendering bug
            if len(chosen) == 1:
                raise SlpError(f"{path}: sample '{s.id}' has no joint present in any frame (all NaN): nothing to draw")
            warnings.warn(f"{path}: skipped sample '{s.id}': no joint present in any frame (all NaN)", stacklevel=2)
            continue
        other = None
        if ref is not None:
            by_id = {r.id: r for r in ref.samples}
            if s.id in by_id:
                other = by_id[s.id]
            elif len(ref.samples) == 1 and len(art.samples) == 1:
                other = ref.samples[0]
            else:
                raise SlpError(f"{reference_path}: no sample with id '{s.id}' to show next to {path}")
        target = out / f"{_safe_name(s.id)}.{fmt}" if folder else out
        render(s, target, fps or art.fps, reference=other, title=title, size=size,
               label=f"{path.stem}: {s.id}" if other is not None else s.id,
               ref_label=f"{Path(reference_path).stem}: {other.id}" if other is not None else None)
        done.append((s.id, target))
    if not done:
        raise SlpError(f"{path}: no sample has a joint present in any frame (all NaN): nothing to draw")
    return done
