""".pose files (the pose-format library) to and from mp178 samples, and spoken-to-signed lexicons.

Reading accepts MediaPipe Holistic files as pose-format writes them, full (POSE_LANDMARKS 33,
FACE_LANDMARKS 468/478, LEFT_HAND_LANDMARKS 21, RIGHT_HAND_LANDMARKS 21, optional
POSE_WORLD_LANDMARKS, which is ignored) or reduced by ``reduce_holistic`` (8 pose points, 128 face
contour points, the two hands). Points are found by component and point *name*
(``skeleton.BODY_NAMES``, ``skeleton.HAND_NAMES``, face-mesh indices ``skeleton.FACE_MESH_INDICES``
as strings), so both files and any other subset holding the 178 points map to mp178 the same way
(docs/design.md, section 4). Writing produces the reduced order, the layout of the spoken-to-signed
lexicons; mp178 -> .pose -> mp178 is lossless (float32 values, NaN <-> confidence 0).

pose-format marks a missing point by confidence 0 (its mask is ``confidence == 0``); slp marks it
by NaN. Both directions translate one into the other.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np

from .. import skeleton
from ..artifacts import Sample
from ..atomic import write_bytes
from ..errors import SlpError

BODY, FACE, LEFT_HAND, RIGHT_HAND = (
    "POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS")
WORLD = "POSE_WORLD_LANDMARKS"
REQUIRED = (BODY, FACE, LEFT_HAND, RIGHT_HAND)
SUPPORTED = ("MediaPipe Holistic .pose files (POSE_LANDMARKS, FACE_LANDMARKS, LEFT_HAND_LANDMARKS, "
             "RIGHT_HAND_LANDMARKS), full or reduced by pose-format's reduce_holistic")
LEXICON_COLUMNS = ("path", "spoken_language", "signed_language", "start", "end", "words", "glosses",
                   "priority")

# (component, point name) of every mp178 point, in mp178 order.
MP178_POINTS: list[tuple[str, str]] = (
    [(BODY, n) for n in skeleton.BODY_NAMES]
    + [(RIGHT_HAND, n) for n in skeleton.HAND_NAMES]
    + [(LEFT_HAND, n) for n in skeleton.HAND_NAMES]
    + [(FACE, str(i)) for i in skeleton.FACE_MESH_INDICES]
)


# --- reading -----------------------------------------------------------------------------------

def _load(path: Path):
    from pose_format import Pose

    if not path.is_file():
        raise SlpError(f"{path}: .pose file not found")
    try:
        return Pose.read(path.read_bytes())
    except Exception as e:  # pose-format raises struct.error, ValueError, IndexError... on bad bytes
        raise SlpError(f"{path}: not a readable .pose file ({type(e).__name__}: {e}); "
                       f"expected a file written by pose-format") from None


def mp178_indices(header, where: str | Path = "") -> np.ndarray:
    """Index into a pose-format header's points of each mp178 point, found by component and point
    name. Raises SlpError naming the components found when the file is not MediaPipe Holistic."""
    offsets, points = {}, {}
    start = 0
    for c in header.components:
        offsets[c.name] = start
        points[c.name] = {name: i for i, name in enumerate(c.points)}
        start += len(c.points)
    found = ", ".join(f"{c.name} ({len(c.points)})" for c in header.components) or "none"
    missing = [c for c in REQUIRED if c not in points]
    if missing:
        raise SlpError(f"{where}: components {found}; missing {', '.join(missing)}. "
                       f"Supported: {SUPPORTED}")
    absent = [f"{c}.{n}" for c, n in MP178_POINTS if n not in points[c]]
    if absent:
        raise SlpError(f"{where}: {len(absent)} of the 178 points are not in the file (e.g. "
                       f"{', '.join(absent[:3])}); components {found}. Supported: {SUPPORTED}")
    extra = [c.name for c in header.components if c.name not in REQUIRED + (WORLD,)]
    if extra:
        warnings.warn(f"{where}: ignoring components {', '.join(extra)}", stacklevel=3)
    return np.array([offsets[c] + points[c][n] for c, n in MP178_POINTS], dtype=np.int64)


def _pose_to_arrays(pose, where: Path) -> tuple[np.ndarray, np.ndarray]:
    """(T, 178, 3) float32 with NaN where missing and (T, 178) confidence, first person only."""
    idx = mp178_indices(pose.header, where)
    data = np.ma.getdata(pose.body.data)
    conf = np.asarray(pose.body.confidence, dtype=np.float32)
    if data.ndim != 4 or data.shape[0] == 0:
        raise SlpError(f"{where}: no frames in the file")
    if data.shape[1] == 0:
        raise SlpError(f"{where}: no person in the file")
    if data.shape[1] > 1:
        warnings.warn(f"{where}: {data.shape[1]} people in the file; keeping the first", stacklevel=3)
    xyz = np.asarray(data[:, 0][:, idx], dtype=np.float32)
    conf = conf[:, 0][:, idx]
    if xyz.shape[-1] == 2:  # an XYC file: no depth
        xyz = np.concatenate([xyz, np.zeros_like(xyz[..., :1])], axis=-1)
    xyz = xyz[..., :3]
    missing = (conf <= 0) | ~np.isfinite(xyz).all(-1) | ~np.isfinite(conf)
    xyz[missing] = np.nan
    conf = np.where(missing, 0.0, conf).astype(np.float32)
    return np.ascontiguousarray(xyz), conf


def resample(pose: np.ndarray, conf: np.ndarray, fps_in: float, fps_out: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """Linear resampling in time from ``fps_in`` to ``fps_out``; an output frame between two input
    frames is missing (NaN, confidence 0) where the joint is missing in either of them."""
    if math.isclose(fps_in, fps_out):
        return pose, conf
    t = pose.shape[0]
    n = max(1, int(round(t * fps_out / fps_in)))
    pos = np.minimum(np.arange(n) * fps_in / fps_out, t - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo).astype(np.float32)[:, None]
    new_pose = pose[lo] * (1 - w[..., None]) + pose[hi] * w[..., None]
    exact = w[:, 0] == 0  # no neighbour needed: keep the frame as it is, even next to a gap
    new_pose[exact] = pose[lo[exact]]
    new_conf = conf[lo] * (1 - w) + conf[hi] * w
    new_conf[exact] = conf[lo[exact]]
    new_conf = np.where(np.isfinite(new_pose).all(-1), new_conf, 0.0)
    return new_pose.astype(np.float32), new_conf.astype(np.float32)


def read_pose(path: str | Path, sample_id: str | None = None, fps: float | None = None,
              **fields) -> Sample:
    """Read a MediaPipe Holistic .pose file (full or reduced) as an mp178 Sample.

    The id is the file stem unless ``sample_id`` is given; ``fields`` set other Sample fields
    (text, lang, ...). With ``fps`` the sequence is resampled from the file's rate to it (see
    ``pose_fps`` for the file's rate). Only the first person is kept (a warning says so).
    """
    path = Path(path)
    pose = _load(path)
    xyz, conf = _pose_to_arrays(pose, path)
    if fps is not None:
        xyz, conf = resample(xyz, conf, float(pose.body.fps), float(fps))
    return Sample(id=sample_id or path.stem, pose=xyz, confidence=conf, **fields)


def pose_fps(path: str | Path) -> float:
    """The frame rate stored in a .pose file (reads the header and the fps only)."""
    from pose_format import Pose
    from pose_format.pose_body import EmptyPoseBody

    path = Path(path)
    if not path.is_file():
        raise SlpError(f"{path}: .pose file not found")
    try:
        with open(path, "rb") as f:
            return float(Pose.read(f, pose_body=EmptyPoseBody).body.fps)
    except Exception as e:
        raise SlpError(f"{path}: not a readable .pose file ({type(e).__name__}: {e})") from None


def _common_fps(rates: list[float], fps: float | None, where: str) -> float:
    """The rate to store: ``fps`` if given, else the most common rate (the others are resampled)."""
    if fps is not None:
        if fps <= 0:
            raise SlpError(f"fps must be positive, got {fps}")
        return float(fps)
    counts = Counter(rates)
    target = max(counts, key=lambda r: (counts[r], r))
    if len(counts) > 1:
        others = ", ".join(f"{n} at {r:g}" for r, n in counts.items() if r != target)
        warnings.warn(f"{where}: files have different frame rates; resampling {others} fps to "
                      f"{target:g} fps (pass fps to choose)", stacklevel=3)
    return target


def import_poses(paths: Iterable[str | Path], fps: float | None = None, **fields
                 ) -> tuple[list[Sample], float]:
    """Read .pose files and lexicon folders (see ``read_lexicon``) into samples at one frame rate:
    ``fps`` if given, else the most common rate among the files. ``fields`` set Sample fields of
    the .pose files (lexicon rows carry their own). Returns (samples, fps); ids must be unique
    (a file's id is its stem)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise SlpError("no .pose files given")
    lexicons = {p: _lexicon_index(p) for p in paths if p.is_dir()}
    rates = [pose_fps(f) for p in paths for f in (lexicons[p][2].values() if p in lexicons else [p])]
    target = _common_fps(rates, fps, "inputs")
    samples = []
    for p in paths:
        samples += read_lexicon(p, target)[0] if p in lexicons else [read_pose(p, fps=target, **fields)]
    dup = [i for i, n in Counter(s.id for s in samples).items() if n > 1]
    if dup:
        raise SlpError(f"several inputs give the sample id '{dup[0]}' (ids come from file names); "
                       f"rename them or import them separately")
    return samples, target


# --- writing -----------------------------------------------------------------------------------

def _reduced_header(dims: tuple[int, int, int]):
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions
    from pose_format.utils.openpose import hand_colors

    # Bones drawn by pose-format's viewer: skeleton.py's bones, renumbered into each component.
    body_limbs = [(skeleton.REDUCED_BODY_NAMES.index(skeleton.BODY_NAMES[a]),
                   skeleton.REDUCED_BODY_NAMES.index(skeleton.BODY_NAMES[b]))
                  for a, b in skeleton.BODY_BONES]

    def hand(name):
        return PoseHeaderComponent(name, list(skeleton.HAND_NAMES), list(skeleton.HAND_BONES),
                                   list(hand_colors), "XYZC")

    # Colours as pose-format's holistic components have them (one per body / face component).
    components = [
        PoseHeaderComponent(BODY, list(skeleton.REDUCED_BODY_NAMES), body_limbs, [(255, 0, 0)], "XYZC"),
        PoseHeaderComponent(FACE, [str(i) for i in skeleton.FACE_MESH_INDICES],
                            list(skeleton.FACE_BONES), [(128, 0, 0)], "XYZC"),
        hand(LEFT_HAND),
        hand(RIGHT_HAND),
    ]
    return PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(*dims), components=components)


def write_pose(sample: Sample, path: str | Path, fps: float) -> Path:
    """Write an mp178 sample as a .pose file in pose-format's reduced holistic order (atomic).

    Missing joints (NaN) are written as 0 with confidence 0, which pose-format masks. A joint
    with confidence 0 is missing for pose-format, so it reads back as NaN. The header dimensions
    are the extent of the coordinates (pose-format's viewer uses them as canvas size).
    """
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody

    path = Path(path)
    pose = np.asarray(sample.pose, dtype=np.float32)
    if pose.ndim != 3 or pose.shape[1:] != (skeleton.NUM_KEYPOINTS, 3):
        raise SlpError(f"sample '{sample.id}': pose has shape {pose.shape}, expected (T, 178, 3) mp178")
    conf = np.asarray(sample.conf(), dtype=np.float32)
    missing = ~np.isfinite(pose).all(-1) | (conf <= 0)
    data = np.where(missing[..., None], 0.0, pose).astype(np.float32)
    conf = np.where(missing, 0.0, conf).astype(np.float32)
    data = skeleton.to_reduced_holistic(data)[:, None]
    conf = skeleton.to_reduced_holistic(conf[..., None])[:, None, :, 0]
    present = pose[~missing]
    extent = np.nanmax(present, axis=0) if len(present) else np.ones(3)
    dims = tuple(int(min(65535, max(1, math.ceil(v)))) for v in extent)
    body = NumPyPoseBody(fps=float(fps), data=np.ma.masked_array(
        data, mask=np.repeat((conf == 0)[..., None], 3, axis=-1)), confidence=conf)
    buf = io.BytesIO()
    Pose(_reduced_header(dims), body).write(buf)
    write_bytes(path, buf.getvalue())
    return path


# --- spoken-to-signed lexicons -----------------------------------------------------------------

def _slice_ms(num_frames: int, fps: float, start_ms: int, end_ms: int) -> slice:
    """Frames of a lexicon row. start/end are milliseconds, as spoken-to-signed's PoseLookup reads
    them: first frame floor(start / frame time), end frame ceil(end / frame time), end 0 = to the
    end of the file. (PoseLookup slices [start:-1] for end 0, dropping the last frame; we keep it.)"""
    frame_ms = 1000.0 / fps
    first = int(math.floor(start_ms / frame_ms))
    stop = int(math.ceil(end_ms / frame_ms)) if end_ms > 0 else num_frames
    return slice(min(first, num_frames), min(stop, num_frames))


def _lexicon_index(folder: Path) -> tuple[Path, list[dict], dict[str, Path]]:
    """index.csv path, its rows, and the .pose file of each distinct path column value."""
    index = folder / "index.csv"
    if not index.is_file():
        raise SlpError(f"{index}: lexicon index not found; a lexicon folder holds index.csv with "
                       f"columns {','.join(LEXICON_COLUMNS)} and the .pose files it lists")
    with open(index, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("path", "signed_language", "words", "glosses") if c not in (reader.fieldnames or [])]
        if missing:
            raise SlpError(f"{index}: columns {', '.join(missing)} missing; expected {','.join(LEXICON_COLUMNS)}")
        rows = list(reader)
    if not rows:
        raise SlpError(f"{index}: no rows")
    files: dict[str, Path] = {}
    for i, row in enumerate(rows):
        p = folder / row["path"]
        if not p.is_file():
            raise SlpError(f"{index}: row {i + 2} names {row['path']}, but {p} does not exist")
        files.setdefault(row["path"], p)
    return index, rows, files


def read_lexicon(folder: str | Path, fps: float | None = None) -> tuple[list[Sample], float]:
    """Read a spoken-to-signed-translation lexicon folder (``index.csv`` + .pose files).

    Each row becomes a Sample: id ``<path without .pose>#<row>``, text = words, glosses = [glosses],
    lang = signed_language, pose = the row's start/end milliseconds of the file (0, 0 = whole
    file). All samples are brought to one rate: ``fps`` if given, else the most common file rate.
    Returns (samples, fps).
    """
    folder = Path(folder)
    index, rows, files = _lexicon_index(folder)
    rates = {rel: pose_fps(p) for rel, p in files.items()}
    target = _common_fps(list(rates.values()), fps, str(folder))
    cache: dict[str, Sample] = {}
    samples = []
    for i, row in enumerate(rows):
        rel = row["path"]
        if rel not in cache:  # several rows may share a file
            cache[rel] = read_pose(files[rel])
        whole = cache[rel]
        try:
            start, end = int(row.get("start") or 0), int(row.get("end") or 0)
        except ValueError:
            raise SlpError(f"{index}: row {i + 2}: start/end must be integers (milliseconds), got "
                           f"{row.get('start')!r}, {row.get('end')!r}") from None
        sl = _slice_ms(whole.num_frames, rates[rel], start, end)
        if sl.stop <= sl.start:
            raise SlpError(f"{index}: row {i + 2}: {start}-{end} ms selects no frame of {rel} "
                           f"({whole.num_frames} frames at {rates[rel]:g} fps)")
        pose, conf = resample(whole.pose[sl], whole.confidence[sl], rates[rel], target)
        samples.append(Sample(
            id=f"{Path(rel).with_suffix('').as_posix()}#{i}", pose=pose, confidence=conf,
            text=row.get("words", ""), glosses=[row["glosses"]] if row.get("glosses") else [],
            lang=row.get("signed_language", ""),
        ))
    return samples, target
