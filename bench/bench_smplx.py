"""Benchmark: `slp fit-smplx` throughput (frames/s) on CPU, and on CUDA when torch sees a GPU.

    python bench/bench_smplx.py [--videos 2] [--frames 50] [--iters 300] [--threads 1]

SMPL-X files are licence-gated, so the model is the synthetic SMPL-X-format file the tests use
(``smplx_fit.write_synthetic_model``: real array shapes, 10,475 vertices; the cost of a fit does
not depend on the values). Keypoints are a smooth random motion of that model through a
weak-perspective camera. Prints

  * frames/s of ``fit_videos`` (the work of `slp fit-smplx`: all videos in one batch, default
    options: 2D target, hand PCA 12, ``iters`` steps plus iters/4 camera steps) per device and
    CPU thread count (0 = torch's default), with the mean fit error;
  * the evaluator: one forward + backward of ``SparseSMPLX`` (the vertices the fit needs)
    against the full ``smplx.SMPLX`` forward + backward on the same batch, and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402


def motion(body, videos: int, frames: int, seed: int = 0):
    """Keypoints (mp178) of smooth random motion of the model, per video."""
    import torch

    from slp_cli.extract import smplx_fit as F

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(videos):
        knots = rng.normal(0, 0.3, (4, 55, 3)).astype(np.float32)
        knots[:, 0] *= 0.3
        knots[:, 1:12] = 0
        w = np.linspace(0, 3, frames)
        lo = np.minimum(w.astype(int), 2)
        a = (w - lo)[:, None, None]
        full = torch.as_tensor(knots[lo] * (1 - a) + knots[lo + 1] * a, dtype=torch.float32)
        shape = torch.as_tensor(np.concatenate([np.tile(rng.normal(0, 1, (1, 10)), (frames, 1)),
                                                rng.normal(0, 1, (frames, 10))], 1), dtype=torch.float32)
        with torch.no_grad():
            joints, _ = body.sparse(full.to(body.device), shape.to(body.device))
        kp = np.full((frames, 178, 3), np.nan, np.float32)
        kp[:, F.MP178_POINTS] = 400 * joints.cpu().numpy()[:, F.SMPLX_POINTS] * [1, -1, -1] + [256, 220, 0]
        out.append((kp, np.isfinite(kp).all(-1).astype(np.float32)))
    return out


def evaluator_speed(model_dir: Path, frames: int, device: str) -> tuple[float, float]:
    """ms of one forward+backward: sparse evaluator, full smplx.SMPLX."""
    import torch

    from slp_cli.extract import smplx_fit as F

    model = F.load_smplx(model_dir, device=device)
    sparse = F.SparseSMPLX(model)
    full = (torch.randn(frames, 55, 3, device=device) * 0.3).requires_grad_(True)
    shape = torch.randn(frames, 20, device=device).requires_grad_(True)

    def sparse_step():
        j, v = sparse(full, shape)
        (j.sum() + v.sum()).backward()

    def full_step():
        out = model(global_orient=full[:, 0], body_pose=full[:, 1:22].reshape(frames, -1), jaw_pose=full[:, 22],
                    leye_pose=full[:, 23], reye_pose=full[:, 24], left_hand_pose=full[:, 25:40].reshape(frames, -1),
                    right_hand_pose=full[:, 40:].reshape(frames, -1), betas=shape[:, :10], expression=shape[:, 10:])
        (out.joints.sum() + out.vertices.sum()).backward()

    times = []
    for step in (sparse_step, full_step):
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(5):
            step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) / 5 * 1000)
    return times[0], times[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=2)
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--threads", default="1", help="CPU thread counts to try, e.g. 1,0 (0 = torch's default; "
                    "on a busy machine more threads can be much slower for these small batches)")
    args = ap.parse_args()
    import torch

    from slp_cli.extract import smplx_fit as F

    print(f"machine: {machine()}, torch {torch.__version__}"
          + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"))
    default_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = F.write_synthetic_model(Path(tmp)).parent
        runs = [("cpu", int(t)) for t in args.threads.split(",")]
        if torch.cuda.is_available():
            runs.append(("cuda", 0))
        print(f"{args.videos} videos x {args.frames} frames, {args.iters} steps (+{args.iters // 4} camera steps), "
              f"2D target, hand PCA 12, one batch")
        for device, threads in runs:
            torch.set_num_threads(threads or default_threads)
            body = F.BodyModel(model_dir, device=device)
            videos = motion(body, args.videos, args.frames)
            opts = F.FitOptions(iters=args.iters, device=device)
            t0 = time.perf_counter()
            results = F.fit_videos(body, videos, opts)
            if device == "cuda":
                torch.cuda.synchronize()
            secs = time.perf_counter() - t0
            frames = args.videos * args.frames
            err = np.nanmean(np.concatenate([r.fit_error for r in results]))
            label = f"{device}" + (f", {threads or default_threads} thread(s)" if device == "cpu" else "")
            print(f"fit {label:>20}: {frames / secs:8.1f} frames/s ({secs:.1f} s), mean fit error {err:.2f} px "
                  f"(shoulder width ~140 px)")
            sparse_ms, full_ms = evaluator_speed(model_dir, frames, device)
            print(f"    forward+backward of {frames} frames: sparse {sparse_ms:.1f} ms, full smplx.SMPLX "
                  f"{full_ms:.1f} ms (x{full_ms / sparse_ms:.1f})")


if __name__ == "__main__":
    main()
