"""The HDF5 artifact schema every stage reads and writes (spec: docs/artifacts.md).

One file per artifact. Samples are ragged pose sequences stored back to back in one
resizable ``frames/pose`` array (so a whole corpus loads in one contiguous read and a sample
appends with one resize), indexed by ``samples/offset`` and ``samples/length``. Root attributes
carry the schema name and ``"major.minor"`` version, the layout, fps, normalization and
provenance. Reading validates all of it and refuses newer major versions.

Writes are atomic: samples go to ``<target>.partial`` and the finished file is renamed onto the
target, so an interrupted stage never touches the previous output and can resume from the
partial file (``ArtifactWriter(..., resume=True)``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import h5py
import numpy as np

from . import __version__
from .atomic import writable_folder
from .errors import SlpError

SCHEMA = "slp.poses"
VERSION = "1.1"
LAYOUTS = {"mp178": 178}
STRING_FIELDS = ("id", "text", "glosses", "lang", "signer", "split", "gloss_spans", "translation")
# Added in 1.1; files of 1.0 read without them.
OPTIONAL_FIELDS = ("report",)
_STR = h5py.string_dtype("utf-8")


@dataclass
class Sample:
    """One sequence: ``pose`` is (T, K, 3) float32 with NaN where a joint is missing."""

    id: str
    pose: np.ndarray
    confidence: np.ndarray | None = None  # (T, K) in [0, 1]; None means 1 where pose is finite
    text: str = ""
    glosses: list[str] = field(default_factory=list)
    lang: str = ""
    signer: str = ""
    split: str = "train"
    gloss_spans: np.ndarray | None = None  # (G, 2) frame [start, end) of each gloss, if known
    # Text translated back from the poses by `slp translate` (kept apart from `text`, the
    # sentence the poses express, so scoring never compares a sentence with itself).
    translation: str = ""
    # What the method that made the poses reports about this sample (JSON-able): the words it
    # did not know, the keywords it retrieved, the durations it chose... (`slp generate`).
    report: dict = field(default_factory=dict)
    # Named per-sample arrays beside the pose, each (N, ...) with its own N: SMPL-X parameters
    # (T, 133), VAE latent means (T, 80), VQ-VAE token ids at a downsampled rate, fitting errors.
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.pose.shape[0])

    def conf(self) -> np.ndarray:
        if self.confidence is not None:
            return self.confidence
        return np.isfinite(self.pose).all(-1).astype(np.float32)


@dataclass
class Artifact:
    """A loaded artifact: its samples (in file order) and its root attributes."""

    path: Path
    samples: list[Sample]
    fps: float
    layout: str = "mp178"
    normalized: bool = False
    normalization: str = ""
    provenance: dict = field(default_factory=dict)
    stats: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    version: str = VERSION

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, key: int | str) -> Sample:
        if isinstance(key, str):
            for s in self.samples:
                if s.id == key:
                    return s
            raise SlpError(f"{self.path}: no sample with id '{key}' (it has {len(self.samples)} samples)")
        return self.samples[key]

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.samples]

    def select(self, split: str | None = None, langs: Iterable[str] | None = None) -> list[Sample]:
        langs = set(langs) if langs else None
        return [
            s for s in self.samples
            if (split is None or s.split == split) and (langs is None or s.lang in langs)
        ]

    def attrs(self) -> dict:
        """The root attributes to carry over when a stage writes a derived artifact."""
        return dict(fps=self.fps, layout=self.layout, normalized=self.normalized,
                    normalization=self.normalization, stats=self.stats)


def provenance(stage: str, args: dict | None = None, inputs: Iterable[str | Path] = ()) -> dict:
    """What made an artifact: stage, slp version, arguments, input files, time."""
    return {
        "stage": stage,
        "slp_version": __version__,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in (args or {}).items()},
        "inputs": [str(p) for p in inputs],
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


# --- validation ------------------------------------------------------------------------------

def check_sample(sample: Sample, num_keypoints: int, where: str = "") -> None:
    """Raise SlpError if a sample cannot be stored faithfully."""
    at = f"{where}: sample '{sample.id}'" if where else f"sample '{sample.id}'"
    if not isinstance(sample.id, str) or not sample.id:
        raise SlpError(f"{where or 'artifact'}: a sample has an empty id; give every sample a unique id")
    p = sample.pose
    if p.ndim != 3 or p.shape[1] != num_keypoints or p.shape[2] != 3:
        raise SlpError(f"{at}: pose has shape {p.shape}, expected (T, {num_keypoints}, 3)")
    if p.shape[0] == 0:
        raise SlpError(f"{at}: pose has no frames")
    if np.isinf(p).any():
        raise SlpError(f"{at}: pose contains inf values; mark missing joints with NaN instead")
    if sample.confidence is not None and sample.confidence.shape != p.shape[:2]:
        raise SlpError(f"{at}: confidence has shape {sample.confidence.shape}, expected {p.shape[:2]}")


def _open_h5(path: Path) -> h5py.File:
    if not path.exists():
        raise SlpError(f"{path}: file not found")
    if path.is_dir():
        raise SlpError(f"{path}: is a folder, expected an slp artifact (.h5)")
    if not h5py.is_hdf5(path):
        raise SlpError(f"{path}: not an HDF5 file; slp artifacts are written by slp stages (see `slp info`)")
    try:
        return h5py.File(path, "r")
    except OSError as e:  # e.g. "truncated file": an interrupted copy or download
        reason = str(e).split("(")[-1].rstrip(")") if "(" in str(e) else str(e)
        raise SlpError(f"{path}: cannot be read as an HDF5 file ({reason}); it is truncated or corrupt: copy it "
                       "again or re-run the stage that wrote it") from None


def _check_header(f: h5py.File, path: Path) -> tuple[str, int]:
    schema = f.attrs.get("schema")
    if schema != SCHEMA:
        raise SlpError(f"{path}: schema is {schema!r}, expected {SCHEMA!r}; this file was not written by slp")
    version = str(f.attrs.get("version", ""))
    try:
        major = int(version.split(".")[0])
    except ValueError:
        raise SlpError(f"{path}: unreadable schema version {version!r}") from None
    if major > int(VERSION.split(".")[0]):
        raise SlpError(f"{path}: schema version {version} is newer than this slp reads ({VERSION}); upgrade slp")
    layout = str(f.attrs.get("layout", ""))
    if layout not in LAYOUTS:
        raise SlpError(f"{path}: unknown layout {layout!r}; known layouts: {', '.join(LAYOUTS)}")
    k = LAYOUTS[layout]
    for name in ("frames/pose", "frames/confidence", "samples/offset", "samples/length") + tuple(
        f"samples/{n}" for n in STRING_FIELDS
    ):
        if name not in f:
            raise SlpError(f"{path}: dataset '{name}' is missing; the file is incomplete or corrupt")
    if f["frames/pose"].shape[1:] != (k, 3):
        raise SlpError(f"{path}: frames/pose has shape {f['frames/pose'].shape}, expected (F, {k}, 3) for {layout}")
    n = f["samples/offset"].shape[0]
    if any(f[f"samples/{x}"].shape[0] != n for x in ("length",) + STRING_FIELDS):
        raise SlpError(f"{path}: per-sample datasets have different lengths; the file is corrupt")
    return layout, k


def _strs(ds) -> list[str]:
    return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in ds[...]]


def read_header(path: str | Path) -> dict:
    """Root attributes and per-sample metadata without reading any poses (for `slp info`)."""
    path = Path(path)
    with _open_h5(path) as f:
        layout, _ = _check_header(f, path)
        return {
            "path": str(path),
            "schema": f"{SCHEMA}/{f.attrs['version']}",
            "layout": layout,
            "fps": float(f.attrs["fps"]),
            "normalized": bool(f.attrs.get("normalized", False)),
            "normalization": str(f.attrs.get("normalization", "")),
            "provenance": json.loads(f.attrs.get("provenance", "{}")),
            "skipped": json.loads(f.attrs.get("skipped", "[]")),
            "num_frames": int(f["frames/pose"].shape[0]),
            "lengths": f["samples/length"][...],
            **{x: _strs(f[f"samples/{x}"]) for x in ("id", "lang", "split", "signer")},
        }


def load(path: str | Path, split: str | None = None, langs: Iterable[str] | None = None) -> Artifact:
    """Read an artifact (one bulk read of all frames) and validate it.

    ``split``/``langs`` keep only matching samples. Sample poses are views into one array.
    """
    path = Path(path)
    with _open_h5(path) as f:
        layout, k = _check_header(f, path)
        try:
            pose = f["frames/pose"][...]
            conf = f["frames/confidence"][...]
            offset = f["samples/offset"][...]
            length = f["samples/length"][...]
            meta = {x: _strs(f[f"samples/{x}"]) for x in STRING_FIELDS}
            meta.update({x: _strs(f[f"samples/{x}"]) if f"samples/{x}" in f else [""] * len(offset)
                         for x in OPTIONAL_FIELDS})
            stats = {n: f[f"stats/{n}"][...] for n in ("mean", "std") if f"stats/{n}" in f}
            arrays = {name: (g["data"][...], g["offset"][...], g["length"][...])
                      for name, g in f["arrays"].items()} if "arrays" in f else {}
            attrs = dict(f.attrs)
        except (OSError, KeyError) as e:
            raise SlpError(f"{path}: cannot read ({e}); the file is corrupt") from None
    if len(offset) and (offset[-1] + length[-1] > len(pose) or (length <= 0).any()):
        raise SlpError(f"{path}: sample offsets point past the stored frames; the file is corrupt")
    bad = np.isinf(pose).any(axis=(1, 2))
    if bad.any():  # slp never writes inf (missing is NaN): another tool wrote this file
        frame = int(np.argmax(bad))
        i = int(np.searchsorted(offset, frame, side="right")) - 1
        raise SlpError(f"{path}: sample '{meta['id'][i]}' has inf values in its poses (frame {frame - offset[i]}); "
                       "missing joints must be NaN: fix the file or re-run the stage that wrote it")
    samples = []
    for i in range(len(offset)):
        sl = slice(int(offset[i]), int(offset[i] + length[i]))
        spans = meta["gloss_spans"][i]
        samples.append(
            Sample(
                id=meta["id"][i], pose=pose[sl], confidence=conf[sl], text=meta["text"][i],
                glosses=meta["glosses"][i].split(), lang=meta["lang"][i], signer=meta["signer"][i],
                split=meta["split"][i], translation=meta["translation"][i],
                report=json.loads(meta["report"][i]) if meta["report"][i] else {},
                arrays={name: data[o[i]:o[i] + n[i]] for name, (data, o, n) in arrays.items()},
                gloss_spans=np.asarray(json.loads(spans), dtype=np.int64).reshape(-1, 2) if spans else None,
            )
        )
    art = Artifact(
        path=path, samples=samples, fps=float(attrs["fps"]), layout=layout,
        normalized=bool(attrs.get("normalized", False)), normalization=str(attrs.get("normalization", "")),
        provenance=json.loads(attrs.get("provenance", "{}")), stats=stats,
        skipped=json.loads(attrs.get("skipped", "[]")), version=str(attrs["version"]),
    )
    if split is not None or langs is not None:
        art.samples = art.select(split, langs)
    return art


# --- writing -----------------------------------------------------------------------------------

class ArtifactWriter:
    """Append samples to ``<path>.partial``; on a clean exit the file is renamed onto ``path``.

    With ``resume=True`` an existing partial file is reopened and its samples kept
    (``done_ids`` lists them), so an interrupted stage continues where it stopped. On an
    exception the partial file stays for resuming and ``path`` is untouched.
    """

    def __init__(self, path: str | Path, *, fps: float, layout: str = "mp178", normalized: bool = False,
                 normalization: str = "", provenance: dict | None = None, resume: bool = False):
        if layout not in LAYOUTS:
            raise SlpError(f"{path}: unknown layout {layout!r}; known layouts: {', '.join(LAYOUTS)}")
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.k = LAYOUTS[layout]
        writable_folder(self.path)
        if resume and self.partial.exists():
            try:
                self.f = h5py.File(self.partial, "a")
                _check_header(self.f, self.partial)
            except (OSError, SlpError):
                # A partial file cut off mid-write cannot be trusted: start afresh.
                self.partial.unlink()
                resume = False
        else:
            resume = False
        if not resume:
            if self.partial.exists():
                self.partial.unlink()
            self.f = h5py.File(self.partial, "w")
            self._create(fps, layout, normalized, normalization, provenance or {})
        for name in OPTIONAL_FIELDS:  # a partial file of an older minor version
            if f"samples/{name}" not in self.f:
                n = self.f["samples/id"].shape[0]
                self.f.create_dataset(f"samples/{name}", (n,), _STR, maxshape=(None,), chunks=(1024,))
        self.done_ids = set(_strs(self.f["samples/id"]))
        self._skipped = json.loads(self.f.attrs.get("skipped", "[]"))

    def _create(self, fps, layout, normalized, normalization, prov):
        f = self.f
        f.attrs.update(schema=SCHEMA, version=VERSION, layout=layout, fps=float(fps),
                       normalized=bool(normalized), normalization=normalization,
                       provenance=json.dumps(prov), skipped="[]")
        chunk = 512
        f.create_dataset("frames/pose", (0, self.k, 3), np.float32, maxshape=(None, self.k, 3),
                         chunks=(chunk, self.k, 3))
        f.create_dataset("frames/confidence", (0, self.k), np.float32, maxshape=(None, self.k),
                         chunks=(chunk, self.k))
        for name in ("offset", "length"):
            f.create_dataset(f"samples/{name}", (0,), np.int64, maxshape=(None,), chunks=(1024,))
        for name in STRING_FIELDS + OPTIONAL_FIELDS:
            f.create_dataset(f"samples/{name}", (0,), _STR, maxshape=(None,), chunks=(1024,))

    def append(self, sample: Sample) -> None:
        self.extend([sample])

    def extend(self, samples: list[Sample]) -> None:
        """Append several samples with one resize per dataset."""
        if not samples:
            return
        for s in samples:
            check_sample(s, self.k, str(self.path))
            if s.id in self.done_ids:
                raise SlpError(f"{self.path}: duplicate sample id '{s.id}'")
            self.done_ids.add(s.id)
        f = self.f
        n0, f0 = f["samples/offset"].shape[0], f["frames/pose"].shape[0]
        lengths = np.array([s.num_frames for s in samples], dtype=np.int64)
        total = int(lengths.sum())
        f["frames/pose"].resize(f0 + total, axis=0)
        f["frames/pose"][f0:] = np.concatenate([s.pose for s in samples]).astype(np.float32, copy=False)
        f["frames/confidence"].resize(f0 + total, axis=0)
        f["frames/confidence"][f0:] = np.concatenate([s.conf() for s in samples]).astype(np.float32, copy=False)
        cols = {
            "offset": f0 + np.concatenate([[0], np.cumsum(lengths)[:-1]]),
            "length": lengths,
            "id": [s.id for s in samples],
            "text": [s.text.lstrip("\ufeff") for s in samples],  # a byte-order mark is no part of a sentence
            "glosses": [" ".join(s.glosses) for s in samples],
            "lang": [s.lang for s in samples],
            "signer": [s.signer for s in samples],
            "split": [s.split for s in samples],
            "gloss_spans": [
                json.dumps(np.asarray(s.gloss_spans).astype(int).tolist()) if s.gloss_spans is not None else ""
                for s in samples
            ],
            "translation": [s.translation for s in samples],
            "report": [json.dumps(s.report, ensure_ascii=False) if s.report else "" for s in samples],
        }
        for name, values in cols.items():
            ds = f[f"samples/{name}"]
            ds.resize(n0 + len(samples), axis=0)
            ds[n0:] = np.asarray(values, dtype=object if ds.dtype == _STR else np.int64)
        self._extend_arrays(samples, n0)
        f.flush()

    def _extend_arrays(self, samples: list[Sample], n0: int) -> None:
        """Append each named array of the samples to ``arrays/<name>/{data,offset,length}``.

        Every sample of an artifact carries the same array names (checked), so that a model
        reading them never meets a hole."""
        names = sorted(samples[0].arrays)
        existing = sorted(self.f["arrays"]) if "arrays" in self.f else []
        if n0 and names != existing or any(sorted(s.arrays) != names for s in samples):
            raise SlpError(f"{self.path}: every sample must carry the same named arrays ({existing or names})")
        for name in names:
            parts = [np.asarray(s.arrays[name]) for s in samples]
            if "arrays" not in self.f or name not in self.f["arrays"]:
                shape, dtype = parts[0].shape[1:], parts[0].dtype
                g = self.f.create_group(f"arrays/{name}")
                g.create_dataset("data", (0, *shape), dtype, maxshape=(None, *shape), chunks=(1024, *shape))
                for col in ("offset", "length"):
                    g.create_dataset(col, (0,), np.int64, maxshape=(None,), chunks=(1024,))
            g = self.f[f"arrays/{name}"]
            lengths = np.array([len(p) for p in parts], dtype=np.int64)
            d0 = g["data"].shape[0]
            if any(p.shape[1:] != g["data"].shape[1:] for p in parts):
                raise SlpError(f"{self.path}: array '{name}' must have shape (N, {', '.join(map(str, g['data'].shape[1:]))}) in every sample")
            g["data"].resize(d0 + int(lengths.sum()), axis=0)
            g["data"][d0:] = np.concatenate(parts).astype(g["data"].dtype, copy=False)
            for col, values in (("offset", d0 + np.concatenate([[0], np.cumsum(lengths)[:-1]])), ("length", lengths)):
                g[col].resize(n0 + len(samples), axis=0)
                g[col][n0:] = values

    def log_skipped(self, source: str, reason: str) -> None:
        """Record an input that could not be used (kept in the artifact, shown by `slp info`)."""
        self._skipped.append({"input": str(source), "reason": reason})
        self.f.attrs["skipped"] = json.dumps(self._skipped)
        self.f.flush()

    def set_stats(self, mean: np.ndarray, std: np.ndarray) -> None:
        for name, arr in (("mean", mean), ("std", std)):
            if f"stats/{name}" in self.f:
                del self.f[f"stats/{name}"]
            self.f.create_dataset(f"stats/{name}", data=np.asarray(arr, dtype=np.float32))

    def commit(self) -> Path:
        """Close and atomically rename the partial file onto the target."""
        self.f.close()
        os.replace(self.partial, self.path)
        return self.path

    def abort(self) -> None:
        """Close, keeping the partial file for a later resume."""
        if self.f.id.valid:
            self.f.close()

    def __enter__(self) -> "ArtifactWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def save(samples: Iterable[Sample], path: str | Path, *, fps: float, layout: str = "mp178",
         normalized: bool = False, normalization: str = "", provenance: dict | None = None,
         stats: dict[str, np.ndarray] | None = None, skipped: Iterable[dict] = ()) -> Path:
    """Write samples to a new artifact atomically (temporary file, then rename)."""
    samples = list(samples)
    w = ArtifactWriter(path, fps=fps, layout=layout, normalized=normalized, normalization=normalization,
                       provenance=provenance)
    try:
        w.extend(samples)
        if stats:
            w.set_stats(stats["mean"], stats["std"])
        for s in skipped:
            w.log_skipped(s["input"], s["reason"])
    except BaseException:  # nothing to resume here: leave no partial file behind
        w.abort()
        w.partial.unlink(missing_ok=True)
        raise
    return w.commit()
