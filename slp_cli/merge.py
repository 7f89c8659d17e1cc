"""`slp merge A.h5 B.h5 ... -o all.h5`: join artifacts of the same kind into one.

Made for sharded extraction (``slp extract --shard K/N`` on each machine of a cluster job array,
docs/design.md, section 9), and useful for any artifacts of one layout. Rules:

* every input must have the same layout, fps, normalization and named per-sample arrays,
  checked before anything is written (one line names the first file that differs);
* a sample id present in two inputs is refused by default, since ids are the join key of every
  later stage; ``skip_duplicates=True`` keeps the first occurrence in argument order and records
  each dropped one in the skipped log (``file#id``: duplicate of ...);
* the inputs' logs of skipped inputs are merged (an entry repeated by several shards, such as a
  missing folder every shard was given, is kept once);
* dataset statistics (normalized artifacts) are recomputed over the merged samples, train split
  if there is one, as ``normalize.dataset_stats`` defines them;
* inputs are read one at a time, so memory holds one input, not the merged corpus.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np

from .artifacts import ArtifactWriter, load, provenance, read_header
from .atomic import refuse_overwriting
from .errors import SlpError


def _arrays_names(path: Path) -> list[str]:
    import h5py

    with h5py.File(path, "r") as f:
        return sorted(f["arrays"]) if "arrays" in f else []


def check_compatible(paths: list[Path]) -> list[dict]:
    """Headers of the inputs, after checking that they can be merged (SlpError otherwise)."""
    if not paths:
        raise SlpError("slp merge: no input artifacts given")
    headers = [read_header(p) for p in paths]
    first, ref = headers[0], paths[0]
    ref_arrays = _arrays_names(ref)
    for p, h in zip(paths[1:], headers[1:]):
        for key, same in (("layout", h["layout"] == first["layout"]),
                          ("fps", math.isclose(h["fps"], first["fps"], rel_tol=1e-6)),
                          ("normalization", (h["normalized"], h["normalization"])
                           == (first["normalized"], first["normalization"]))):
            if not same:
                raise SlpError(f"{p}: {key} {h[key]!r} differs from {ref}'s {first[key]!r}; only artifacts "
                               f"with the same {key} can be merged (re-run the stage that made one of them)")
        names = _arrays_names(p)
        if names != ref_arrays:
            raise SlpError(f"{p}: per-sample arrays {names or 'none'} differ from {ref}'s {ref_arrays or 'none'}; "
                           f"merge artifacts made by the same stage")
    return headers


class _Stats:
    """Streaming mean/std per coordinate over seen joints (train split if the data has one)."""

    def __init__(self):
        self.sums = {True: None, False: None}

    def add(self, pose: np.ndarray, train: bool) -> None:
        seen = np.isfinite(pose)
        x = np.where(seen, pose, 0.0).astype(np.float64)
        part = np.stack([seen.sum(0), x.sum(0), (x * x).sum(0)])
        for key in {train, False}:  # False accumulates every sample, True the train ones
            self.sums[key] = part if self.sums[key] is None else self.sums[key] + part

    def result(self) -> dict[str, np.ndarray] | None:
        s = self.sums[True] if self.sums[True] is not None else self.sums[False]
        if s is None:
            return None
        count = np.maximum(s[0], 1)
        mean = s[1] / count
        var = np.maximum(s[2] / count - mean ** 2, 0.0)
        return {"mean": mean.astype(np.float32), "std": np.sqrt(var).astype(np.float32)}


def merge(inputs: Iterable[str | Path], output: str | Path, *, skip_duplicates: bool = False) -> dict:
    """Merge artifacts into ``output`` (atomic); returns a summary dict."""
    paths = [Path(p) for p in inputs]
    refuse_overwriting([output], paths)
    headers = check_compatible(paths)
    owner: dict[str, Path] = {}
    dropped: list[dict] = []
    for p, h in zip(paths, headers):
        for sid in h["id"]:
            if sid in owner:
                if not skip_duplicates:
                    raise SlpError(f"{p}: sample id '{sid}' is also in {owner[sid]}; merging would duplicate it. "
                                   f"Pass --skip-duplicates to keep the first one (in argument order)")
                dropped.append({"input": f"{p}#{sid}", "reason": f"duplicate id, kept the one in {owner[sid]}"})
            else:
                owner[sid] = p
    first = headers[0]
    prov = provenance("merge", {"skip_duplicates": skip_duplicates}, paths)
    prov["parts"] = [h["provenance"] for h in headers]
    stats = _Stats() if first["normalized"] else None
    logged: set[tuple[str, str]] = set()
    kept = frames = 0
    with ArtifactWriter(output, fps=first["fps"], layout=first["layout"], normalized=first["normalized"],
                        normalization=first["normalization"], provenance=prov) as w:
        for p in paths:
            art = load(p)
            samples = [s for s in art.samples if owner[s.id] == p]
            w.extend(samples)
            kept += len(samples)
            frames += sum(s.num_frames for s in samples)
            if stats is not None:
                for s in samples:
                    stats.add(s.pose, s.split == "train")
            for entry in art.skipped + [d for d in dropped if d["input"].startswith(f"{p}#")]:
                key = (entry["input"], entry["reason"])
                if key not in logged:
                    logged.add(key)
                    w.log_skipped(*key)
        result = stats.result() if stats is not None else None
        if result is not None:
            w.set_stats(result["mean"], result["std"])
    return {"output": str(output), "inputs": len(paths), "samples": kept, "frames": frames,
            "duplicates_skipped": len(dropped), "skipped_logged": len(logged)}
