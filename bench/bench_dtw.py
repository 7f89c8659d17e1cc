"""Benchmark: slp's exact DTW-MJE against fastdtw (approximate) and a plain numpy DTW.

    python bench/bench_dtw.py [--pairs 12] [--seed 0]

Random-walk-like sequences of 178 keypoints, 100-300 frames. Prints ms per pair for
  * slp ``dtw_mje`` (exact; numba, timed after a warm-up compile),
  * fastdtw (radius 1, approximate) with the SAME frame cost (mean per-joint Euclidean distance)
    passed as its ``dist``, scored as its path cost / path length,
  * fastdtw with scipy's euclidean on flattened frames (what the SLRTP 2025 evaluation runs),
    checked against exact DTW on that same cost,
  * a plain numpy reference (vectorised cost matrix, Python DP loop),
with the speed ratios and fastdtw's relative error against the exact optimum (docs/design.md, section 9).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slp_cli.metrics.dtw import FLAT_L2, cost_matrix, dtw_from_cost, dtw_mje  # noqa: E402


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                model = row.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numba

    return (f"{model}, {os.cpu_count()} cores, numba {numba.__version__} "
            f"({numba.config.NUMBA_NUM_THREADS} threads), numpy {np.__version__}, Python {platform.python_version()}")


def random_walk(rng, t: int, k: int = 178) -> np.ndarray:
    """A signer-like sequence: a base pose plus smooth per-joint drifts."""
    base = rng.normal(size=(1, k, 3))
    steps = rng.normal(scale=0.02, size=(t, k, 3))
    return (base + np.cumsum(steps, axis=0)).astype(np.float32)


def numpy_reference(h: np.ndarray, r: np.ndarray) -> float:
    """Plain DTW-MJE: numpy cost matrix, O(NM) Python DP with step counting."""
    cost = np.linalg.norm(h[:, None].astype(np.float64) - r[None].astype(np.float64), axis=-1).mean(-1)
    t, s = cost.shape
    d = np.full((t + 1, s + 1), np.inf)
    n = np.zeros((t + 1, s + 1), dtype=np.int64)
    d[0, 0] = 0.0
    for i in range(1, t + 1):
        for j in range(1, s + 1):
            best, steps = d[i - 1, j - 1], n[i - 1, j - 1]
            if d[i - 1, j] < best:
                best, steps = d[i - 1, j], n[i - 1, j]
            if d[i, j - 1] < best:
                best, steps = d[i, j - 1], n[i, j - 1]
            d[i, j] = best + cost[i - 1, j - 1]
            n[i, j] = steps + 1
    return d[t, s] / n[t, s]


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=12, help="sequence pairs to time")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from fastdtw import fastdtw
    from scipy.spatial.distance import euclidean

    rng = np.random.default_rng(args.seed)
    pairs = [(random_walk(rng, int(rng.integers(100, 301))), random_walk(rng, int(rng.integers(100, 301))))
             for _ in range(args.pairs)]
    print(f"machine: {machine()}")
    print(f"{args.pairs} pairs, 178 keypoints, lengths 100-300 (mean {np.mean([len(a) for p in pairs for a in p]):.0f})")

    t0 = time.perf_counter()
    dtw_mje(pairs[0][0][:5], pairs[0][1][:5])  # compile (or load the on-disk cache)
    print(f"warm-up (compile or cache load): {(time.perf_counter() - t0) * 1000:.0f} ms")

    def joint_mean(a, b):
        return float(np.linalg.norm((a - b).reshape(-1, 3), axis=1).mean())

    ours, fast_same, fast_flat, rel_same, rel_flat, exact_scores = [], [], [], [], [], []
    for h, r in pairs:
        exact, ms = timed(dtw_mje, h, r)
        ours.append(ms)
        exact_scores.append(exact)
        hf, rf = h.reshape(len(h), -1).astype(np.float64), r.reshape(len(r), -1).astype(np.float64)
        (dist, path), ms = timed(fastdtw, hf, rf, 1, joint_mean)
        fast_same.append(ms)
        rel_same.append((dist / len(path) - exact) / exact)
        (dist, _), ms = timed(fastdtw, hf, rf, 1, euclidean)
        fast_flat.append(ms)
        exact_flat, _ = dtw_from_cost(cost_matrix(h, r, FLAT_L2))
        rel_flat.append((dist - exact_flat) / exact_flat)

    n_ref = min(3, len(pairs))
    ref_ms = []
    for h, r in pairs[:n_ref]:
        value, ms = timed(numpy_reference, h, r)
        ref_ms.append(ms)
        assert abs(value - dtw_mje(h, r)) <= 1e-4 * value, "numpy reference disagrees with slp"

    med = statistics.median
    print()
    print(f"{'method':58s} {'ms/pair (median)':>16s} {'slower than slp':>16s}")
    rows = [("slp dtw_mje (exact, numba)", ours),
            ("fastdtw r=1, same frame cost as Python dist (approx.)", fast_same),
            ("fastdtw r=1, scipy euclidean on flattened frames (approx.)", fast_flat),
            (f"plain numpy reference (exact; {n_ref} pairs)", ref_ms)]
    for name, ms in rows:
        print(f"{name:58s} {med(ms):16.2f} {med(ms) / med(ours):15.1f}x")
    print()
    print("fastdtw relative error vs exact optimum (path cost; >0 = overestimates):")
    for name, rel in (("same frame cost, per path pair", rel_same), ("flattened euclidean, total", rel_flat)):
        rel = np.asarray(rel)
        print(f"  {name:32s} median {np.median(rel) * 100:6.2f} %  max {rel.max() * 100:6.2f} %  "
              f"pairs off by >1 %: {(np.abs(rel) > 0.01).sum()}/{len(rel)}")
    ratio = med(fast_same) / med(ours)
    print(f"\nspeed-up over fastdtw with the same cost: {ratio:.1f}x (target >= 10x: {'met' if ratio >= 10 else 'NOT met'})")


if __name__ == "__main__":
    main()
