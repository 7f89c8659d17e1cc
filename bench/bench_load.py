"""Loading a 5,000-sentence artifact for training: slp's layout (all frames in one contiguous
dataset, one bulk read) vs the common alternative of one HDF5 dataset per sample.

Run: python bench/bench_load.py [--sentences 5000] [--repeat 3]
Each loader runs --repeat times, alternating; the best time is reported (the first read of a
freshly written file pays for page faults either way).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

import slp_cli  # noqa: E402


def load_per_sample_datasets(path: Path) -> list[np.ndarray]:
    with h5py.File(path) as f:
        return [(f[k]["pose"][...], f[k]["confidence"][...]) for k in f]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sentences", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.gamma(4, 29, args.sentences).astype(int), 16, 475)  # PHOENIX-like, mean ~116
    samples = [slp_cli.Sample(id=f"s{i:05d}", pose=rng.normal(size=(n, 178, 3)).astype(np.float32),
                              text="am mittwoch zieht regen heran", glosses=["REGEN"], lang="dgs")
               for i, n in enumerate(lengths)]
    with tempfile.TemporaryDirectory() as d:
        ours, theirs = Path(d) / "corpus.h5", Path(d) / "per_sample.h5"
        t0 = time.perf_counter()
        slp_cli.save(samples, ours, fps=25)
        t_save = time.perf_counter() - t0
        with h5py.File(theirs, "w") as f:
            for s in samples:
                g = f.create_group(s.id)
                g["pose"], g["confidence"] = s.pose, s.conf()
        size = ours.stat().st_size / 2**20
        del samples

        best = {"slp": float("inf"), "per-sample": float("inf")}
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            art = slp_cli.load(ours)
            best["slp"] = min(best["slp"], time.perf_counter() - t0)
            del art
            t0 = time.perf_counter()
            other = load_per_sample_datasets(theirs)
            best["per-sample"] = min(best["per-sample"], time.perf_counter() - t0)
            assert len(other) == args.sentences
            del other

    frames = int(lengths.sum())
    print(f"machine: {machine()}")
    print(f"{args.sentences} sentences, {frames} frames, {size:.0f} MiB (pose + confidence)")
    print(f"slp_cli.save (atomic, one write per dataset): {t_save:.2f} s")
    print(f"slp_cli.load (one bulk read, validated):      {best['slp']:.2f} s  "
          f"({frames / best['slp'] / 1e6:.2f} M frames/s)")
    print(f"one HDF5 dataset per sample:                  {best['per-sample']:.2f} s  "
          f"-> slp is {best['per-sample'] / best['slp']:.1f}x faster")


if __name__ == "__main__":
    main()
