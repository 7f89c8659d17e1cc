"""`slp normalize`: neck-centred, shoulder-width-scaled poses with short gaps filled.

Following A2V-SLP (section 4.1: "poses are centered
at the neck and scaled by shoulder width") and Progressive Transformers' PHOENIX-2014T skeletons
(per frame), docs/design.md, section 5:

* short gaps of a missing joint (at most ``max_gap`` frames, with the joint seen on both sides)
  are filled by linear interpolation; longer gaps stay missing (NaN, confidence 0) rather than
  inventing data;
* every frame is translated so that the neck (the midpoint of the shoulders) is at the origin
  and scaled so that the 3D shoulder width is 1 (``mode="frame"``, the default), or with one
  neck and one width per sequence (``mode="sequence"``, as pose-format does);
* the dataset's mean and std per coordinate (train split if it has one) are stored for models
  that standardize.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from . import skeleton
from .artifacts import Sample, load, provenance, save
from .atomic import refuse_overwriting
from .errors import SlpError
from .progress import SILENT, Progress, track

MODES = ("frame", "sequence")


def fill_gaps(pose: np.ndarray, conf: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate runs of at most ``max_gap`` missing frames per joint.

    Only gaps with a seen frame on both sides are filled (no extrapolation at the ends).
    Filled joints get the interpolated confidence of their neighbours.
    """
    t = pose.shape[0]
    valid = np.isfinite(pose).all(-1)  # (T, K)
    if valid.all() or max_gap <= 0:
        return pose, conf
    frames = np.arange(t)[:, None]
    # Index of the last seen frame at or before t, and of the first seen frame at or after t.
    prev = np.maximum.accumulate(np.where(valid, frames, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(valid, frames, t)[::-1], axis=0)[::-1]
    fill = ~valid & (prev >= 0) & (nxt < t) & (nxt - prev - 1 <= max_gap)
    if not fill.any():
        return pose, conf
    tt, kk = np.nonzero(fill)
    p, n = prev[tt, kk], nxt[tt, kk]
    w = ((tt - p) / (n - p)).astype(np.float32)
    pose = pose.copy()
    conf = conf.copy()
    pose[tt, kk] = pose[p, kk] * (1 - w[:, None]) + pose[n, kk] * w[:, None]
    conf[tt, kk] = conf[p, kk] * (1 - w) + conf[n, kk] * w
    return pose, conf


def neck_and_width(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame neck (midpoint of the shoulders) (T, 3) and 3D shoulder width (T,)."""
    rs, ls = pose[:, skeleton.R_SHOULDER], pose[:, skeleton.L_SHOULDER]
    return (rs + ls) / 2, np.linalg.norm(rs - ls, axis=-1)


def normalize_pose(pose: np.ndarray, conf: np.ndarray | None = None, *, mode: str = "frame",
                   max_gap: int = 5, sample_id: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Normalize one (T, K, 3) sequence; returns (pose, confidence).

    Frames whose shoulders are missing take the neck and width of the nearest frame that has
    them. A sequence whose shoulders are never seen raises SlpError.
    """
    if mode not in MODES:
        raise SlpError(f"unknown normalization mode {mode!r}; use one of {', '.join(MODES)}")
    pose = np.asarray(pose, dtype=np.float32)
    if np.isinf(pose).any():
        raise SlpError(f"sample '{sample_id}': pose contains inf values; fix the source (missing joints must be NaN)")
    if conf is None:
        conf = np.isfinite(pose).all(-1).astype(np.float32)
    pose, conf = fill_gaps(pose, conf, max_gap)
    conf = np.where(np.isfinite(pose).all(-1), conf, 0).astype(np.float32)
    neck, width = neck_and_width(pose)
    ok = np.isfinite(neck).all(-1) & np.isfinite(width) & (width > 1e-8)
    if not ok.any():
        raise SlpError(f"sample '{sample_id}': both shoulders are never seen together; it cannot be normalized")
    if mode == "sequence":
        neck = np.broadcast_to(neck[ok].mean(0), neck.shape)
        width = np.broadcast_to(width[ok].mean(), width.shape)
    elif not ok.all():
        seen = np.nonzero(ok)[0]
        # nearest frame with both shoulders: interpolate the index, round to the closest
        nearest = seen[np.abs(np.arange(len(ok))[:, None] - seen[None, :]).argmin(1)]
        neck, width = neck[nearest], width[nearest]
    out = (pose - neck[:, None, :]) / width[:, None, None]
    return out.astype(np.float32), conf


def dataset_stats(samples: list[Sample]) -> dict[str, np.ndarray]:
    """Mean and std per keypoint coordinate over the seen joints of all frames (K, 3) each.

    Uses the train split when there is one, so that models standardize with train statistics.
    """
    train = [s for s in samples if s.split == "train"] or samples
    frames = np.concatenate([s.pose for s in train])
    seen = np.isfinite(frames)
    count = np.maximum(seen.sum(0), 1)
    x = np.where(seen, frames, 0.0).astype(np.float64)
    mean = x.sum(0) / count
    var = (np.where(seen, frames - mean, 0.0) ** 2).sum(0) / count
    return {"mean": mean.astype(np.float32), "std": np.sqrt(var).astype(np.float32)}


def normalize_samples(samples: list[Sample], *, mode: str = "frame", max_gap: int = 5,
                      on_error=None) -> list[Sample]:
    """Normalize every sample; a sample that cannot be normalized is passed to ``on_error(sample,
    message)`` and left out (or raises when no handler is given)."""
    out = []
    for s in samples:
        try:
            pose, conf = normalize_pose(s.pose, s.confidence, mode=mode, max_gap=max_gap, sample_id=s.id)
        except SlpError as e:
            if on_error is None:
                raise
            on_error(s, str(e))
            continue
        out.append(replace(s, pose=pose, confidence=conf))
    return out


def run(input_path: Path, output: Path, *, mode: str = "frame", max_gap: int = 5, progress: Progress = SILENT) -> dict:
    """Normalize an artifact into a new one; returns a summary (counts, skipped samples)."""
    refuse_overwriting([output], [input_path])
    art = load(input_path)
    if art.layout != "mp178":
        raise SlpError(f"{input_path}: layout {art.layout} has no shoulders to normalize by; only mp178 is supported")
    skipped = []
    samples = normalize_samples(
        list(track(art.samples, progress, "normalizing")), mode=mode, max_gap=max_gap,
        on_error=lambda s, msg: skipped.append({"input": f"{input_path}#{s.id}", "reason": msg}),
    )
    if not samples:
        raise SlpError(f"{input_path}: no sample could be normalized ({skipped[0]['reason'] if skipped else 'empty'})")
    save(samples, output, fps=art.fps, layout=art.layout, normalized=True, normalization=f"neck-shoulder/{mode}",
         provenance=provenance("normalize", {"mode": mode, "max_gap": max_gap}, [input_path]),
         stats=dataset_stats(samples), skipped=art.skipped + skipped)
    missing_before = sum(int((~np.isfinite(s.pose).all(-1)).sum()) for s in art.samples)
    missing_after = sum(int((~np.isfinite(s.pose).all(-1)).sum()) for s in samples)
    return {"samples": len(samples), "skipped": skipped, "missing_joints_before": missing_before,
            "missing_joints_after": missing_after, "output": str(output)}
