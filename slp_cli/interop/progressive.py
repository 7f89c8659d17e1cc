"""Progressive Transformers' skeleton files (``.skels``, ``.text``, ``.gloss``, ``.files``) to and
from mp178 samples.

The PHOENIX-2014T 3D skeleton release that Progressive Transformers trains on, and much sign
language production code since, stores a split as four line-aligned text files with one stem:

* ``PREFIX.skels``: one sequence a line, T frames x (150 joint values + 1 counter), space
  separated: 50 joints x (x, y, z) (``skeleton.from_pt50`` says which joint is which), divided
  by 3, then the counter t / T;
* ``PREFIX.text``: the spoken-language sentence; ``PREFIX.gloss``: the glosses, space separated;
* ``PREFIX.files``: the sample's name, ``split/name`` (``train/11August_2010_Wednesday_tagesschau-1``).

The release is at 25 fps and normalized per frame: multiplied by 3, the neck joint is at the
origin and the shoulders are 1 apart in x-y (their 3D distance is 1.0 to 1.04). That is not
quite slp's ``neck-shoulder/frame``, which centres on the shoulders' midpoint (0.03 below PT's
neck on average, up to 0.14) and scales the 3D width; so an import keeps the release's values,
marked :data:`NORMALIZATION`, and ``slp normalize`` turns them into slp's own.

Lost on the way in: PT's nose and neck, for which mp178 has no slot (the face points of mp178
and the hips, which PT lacks, are NaN). On the way out an mp178 sample is brought into PT's
normalization (centred on the shoulders' midpoint, x-y shoulder width 1, divided by 3) unless it
is already in it. The neck is written as 0, the origin of that frame; the nose, which mp178 does
not have, as 0 too, the value an undetected joint gets in OpenPose-derived data, and so are
missing joints. A PT import exported again gives back the same four files but for the nose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .. import skeleton
from ..artifacts import ArtifactWriter, Sample, provenance
from ..atomic import atomic_write_all, refuse_overwriting
from ..errors import SlpError

FPS = 25.0
SCALE = 3.0  # the release divides every coordinate by 3
VALUES = 150  # 50 joints x 3 per frame, then the counter
NORMALIZATION = "progressive-transformers/frame"
SIDE_FILES = ("text", "gloss", "files")


def stem(path: str | Path) -> Path:
    """``data/train.skels`` or ``data/train`` -> ``data/train``."""
    path = Path(path)
    return path.with_suffix("") if path.suffix == ".skels" else path


def _side_lines(prefix: Path, ext: str, n: int) -> list[str]:
    path = prefix.with_name(f"{prefix.name}.{ext}")
    if not path.is_file():
        raise SlpError(f"{path}: not found; a Progressive Transformers split is {prefix.name}.skels with "
                       f"{', '.join(f'{prefix.name}.{e}' for e in SIDE_FILES)} beside it")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise SlpError(f"{path}: not UTF-8 text") from None
    if len(lines) != n:
        raise SlpError(f"{path}: {len(lines)} lines, but {prefix.name}.skels has {n} sequences; "
                       "the four files must be line-aligned")
    return lines


def _parse_line(line: str, where: str) -> np.ndarray:
    """(T, 50, 3) release values of one .skels line."""
    try:
        values = np.array(line.split(), dtype=np.float32)
    except ValueError as e:
        raise SlpError(f"{where}: not a list of numbers ({e})") from None
    width = VALUES + 1
    if values.size == 0 or values.size % width:
        raise SlpError(f"{where}: {values.size} values, not a multiple of {width} (150 joint values and a "
                       "counter per frame); is this a Progressive Transformers .skels file?")
    if not np.isfinite(values).all():
        raise SlpError(f"{where}: non-finite values (nan or inf); the release has none")
    return values.reshape(-1, width)[:, :VALUES].reshape(-1, 50, 3)


def read_skels(path: str | Path, *, lang: str = "dgs", split: str | None = None,
               fps: float | None = None) -> Iterator[Sample]:
    """Samples of a ``.skels`` file and the ``.text``, ``.gloss``, ``.files`` beside it, one at a
    time (a whole release is about 1 GB of text).

    The id is the ``.files`` line without its ``split/`` folder, which becomes the split unless
    ``split`` is given. Poses are the release's values times 3 (see the module docstring), in
    mp178 (``skeleton.from_pt50``); ``fps`` resamples from the release's 25 fps.
    """
    from .pose_format import resample

    path = Path(path)
    prefix = stem(path)
    skels = prefix.with_name(prefix.name + ".skels")
    if not skels.is_file():
        raise SlpError(f"{skels}: not found")
    with open(skels, encoding="utf-8") as f:
        n = sum(1 for _ in f)
    if n == 0:
        raise SlpError(f"{skels}: empty; expected one sequence a line")
    text, gloss, files = (_side_lines(prefix, ext, n) for ext in SIDE_FILES)
    seen: set[str] = set()
    with open(skels, encoding="utf-8") as f:
        for i, line in enumerate(f):
            where = f"{skels}:{i + 1}"
            name = files[i].strip()
            folder, _, sid = name.rpartition("/")
            if not sid:
                raise SlpError(f"{prefix.name}.files:{i + 1}: empty name; every sequence needs one")
            if sid in seen:
                raise SlpError(f"{prefix.name}.files:{i + 1}: duplicate name '{name}'")
            seen.add(sid)
            pose = skeleton.from_pt50(_parse_line(line, where) * SCALE)
            conf = np.isfinite(pose).all(-1).astype(np.float32)
            if fps is not None:
                pose, conf = resample(pose, conf, FPS, float(fps))
            yield Sample(id=sid, pose=pose, confidence=conf, text=text[i].strip(), glosses=gloss[i].split(),
                         lang=lang, split=split or folder or "train")


def pt_frame(pose: np.ndarray, normalization: str, where: str = "") -> np.ndarray:
    """(T, 178, 3) in PT's normalization (times 3): unchanged if already there, else centred on
    the shoulders' midpoint and scaled to x-y shoulder width 1 per frame; frames without both
    shoulders take the nearest frame's centre and scale."""
    pose = np.asarray(pose, dtype=np.float32)
    if normalization == NORMALIZATION:
        return pose
    rs, ls = pose[:, skeleton.R_SHOULDER], pose[:, skeleton.L_SHOULDER]
    neck, width = (rs + ls) / 2, np.linalg.norm((rs - ls)[:, :2], axis=-1)
    ok = np.isfinite(neck).all(-1) & np.isfinite(width) & (width > 1e-8)
    if not ok.any():
        raise SlpError(f"{where}: both shoulders are never seen together; it cannot be put in Progressive "
                       "Transformers' normalization")
    seen = np.nonzero(ok)[0]
    nearest = seen[np.abs(np.arange(len(ok))[:, None] - seen[None, :]).argmin(1)]
    return (pose - neck[nearest][:, None]) / width[nearest][:, None, None]


def skels_line(pose: np.ndarray) -> tuple[str, int]:
    """One .skels line for a (T, 178, 3) pose already in PT's frame (:func:`pt_frame`), and the
    number of joints written as 0 because they were missing (the nose and neck not counted)."""
    joints = skeleton.to_pt50(pose) / SCALE
    # The frame's origin is the neck (PT's neck joint, or the shoulders' midpoint that pt_frame
    # centred on); mp178 has no nose.
    joints[:, [skeleton.PT50_NOSE, skeleton.PT50_NECK]] = 0.0
    missing = int((~np.isfinite(joints)).any(-1).sum())
    joints = np.where(np.isfinite(joints), joints, 0.0)
    t = len(joints)
    rows = np.concatenate([joints.reshape(t, VALUES), (np.arange(t) / t)[:, None]], axis=1)
    cells = [" ".join(f"{v:.5f}" for v in r[:-1]) + f" {r[-1]:.4f}" for r in rows]
    return " ".join(cells), missing


def _one_line(s: str) -> str:
    return " ".join(s.split())


def write_skels(samples: Iterable[Sample], prefix: str | Path, *, normalization: str = "") -> dict:
    """Write samples as ``PREFIX.skels/.text/.gloss/.files`` (each atomically). ``normalization``
    is the artifact's (see :func:`pt_frame`). Returns counts: samples, frames, missing joints."""
    prefix = stem(prefix)
    out = {ext: [] for ext in ("skels",) + SIDE_FILES}
    frames = missing = 0
    for s in samples:
        line, m = skels_line(pt_frame(s.pose, normalization, f"sample '{s.id}'"))
        out["skels"].append(line)
        out["text"].append(_one_line(s.text))
        out["gloss"].append(_one_line(" ".join(s.glosses)))
        out["files"].append(f"{s.split}/{s.id}" if s.split else s.id)
        frames += s.num_frames
        missing += m
    if not out["skels"]:
        raise SlpError("no samples to write")
    targets = {ext: prefix.with_name(f"{prefix.name}.{ext}") for ext in out}
    with atomic_write_all(targets.values()) as temps:  # all four written before any is replaced
        for tmp, lines in zip(temps, out.values()):
            tmp.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    return {"samples": len(out["skels"]), "frames": frames, "missing_joints": missing,
            "files": [str(t) for t in targets.values()]}


def output_files(prefix: str | Path) -> list[Path]:
    """The four files of a split written at ``prefix`` (PREFIX or PREFIX.skels)."""
    p = stem(prefix)
    return [p.with_name(f"{p.name}.{ext}") for ext in ("skels",) + SIDE_FILES]


def import_skels(paths: Iterable[str | Path], output: str | Path, *, fps: float | None = None, lang: str = "",
                 split: str | None = None) -> dict:
    """Read ``.skels`` splits (with their side files) into one artifact, streamed (a release is
    about 1 GB of text); a bad line leaves nothing behind. Returns the sample count per split."""
    paths = [Path(p) for p in paths]
    refuse_overwriting([output], [f for p in paths for f in output_files(p)])
    if fps is not None and fps <= 0:
        raise SlpError(f"--fps must be positive, got {fps}")
    lang = lang or "dgs"
    rate = float(fps or FPS)
    counts: dict[str, int] = {}
    prov = provenance("import-pose", {"format": "pt", "fps": fps, "lang": lang, "split": split}, paths)
    w = ArtifactWriter(output, fps=rate, normalized=True, normalization=NORMALIZATION, provenance=prov)
    try:
        for path in paths:
            chunk = []
            for s in read_skels(path, lang=lang, split=split, fps=fps):
                chunk.append(s)
                counts[s.split] = counts.get(s.split, 0) + 1
                if len(chunk) == 256:
                    w.extend(chunk)
                    chunk = []
            w.extend(chunk)
    except BaseException:
        w.abort()
        w.partial.unlink(missing_ok=True)
        raise
    w.commit()
    return {"counts": counts, "fps": rate, "lang": lang, "output": str(output)}
