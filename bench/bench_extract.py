"""Benchmark: `slp extract` against a bare MediaPipe Holistic loop over the same frames.

    python bench/bench_extract.py [--videos 6] [--frames 40] [--size 256] [--workers 1,2]

Clips are made from scikit-image's photograph of a person (moving a little per frame) and
written as mp4 in a temporary folder. Prints frames/s of

  * the bare loop: one process decodes each clip with OpenCV and runs one Holistic graph
    (model complexity 1, refine-face on, as slp's defaults), reset between clips — the most a
    single worker can do;
  * `slp extract` (the library call the CLI makes) with 1 and 2 workers, wall time from the call
    to the committed artifact (process start-up, MediaPipe import, writing included), and its
    steady rate (frames after the first finished video over the time after it);

with the ratios the targets are stated in (docs/design.md, section 9, issue 3): extract on one worker
>= 90 % of the bare loop, and near-linear in workers (2 workers ~ 2x, on a machine with 2 free
cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402


def make_clips(folder: Path, videos: int, frames: int, size: int) -> list[Path]:
    import cv2
    from skimage import data

    base = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (size, size))
    paths = []
    for v in range(videos):
        img = np.roll(base, 5 * v, axis=1)
        path = folder / f"clip{v:02d}.mp4"
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (size, size))
        for i in range(frames):
            w.write(np.roll(img, i % 7, axis=0))
        w.release()
        paths.append(path)
    return paths


def bare_loop(paths: list[Path]) -> tuple[int, float]:
    """Decode and run Holistic on every frame in this process; returns (frames, seconds)."""
    import cv2
    import mediapipe as mp

    holistic = mp.solutions.holistic.Holistic(model_complexity=1, refine_face_landmarks=True)
    holistic.process(np.zeros((64, 64, 3), np.uint8))  # graph start-up, as a worker's first frame
    frames, t0 = 0, time.perf_counter()
    for path in paths:
        holistic.reset()
        cap = cv2.VideoCapture(str(path))
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            holistic.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            frames += 1
        cap.release()
    return frames, time.perf_counter() - t0


def slp_extract(folder: Path, out: Path, workers: int, frames_per_video: int) -> dict:
    from slp_cli.extract import run
    from slp_cli.progress import Recorder

    first = {}

    def on_event(label, event, value):
        if event == "update" and "last" in value:  # a video done
            now = time.perf_counter()
            first.setdefault("t", now)
            first.setdefault("frames", frames_per_video)
            first["last"] = now

    t0 = time.perf_counter()
    result = run([folder], out, workers=workers, progress=Recorder(on_event))
    wall = time.perf_counter() - t0
    steady = (result["frames"] - first["frames"]) / max(first["last"] - first["t"], 1e-9)
    return {"frames": result["frames"], "wall": wall, "fps": result["frames"] / wall, "steady_fps": steady}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clips = tmp / "clips"
        clips.mkdir()
        paths = make_clips(clips, args.videos, args.frames, args.size)
        print(f"machine: {machine()}")
        print(f"{args.videos} clips x {args.frames} frames, {args.size}x{args.size} px, Holistic complexity 1, "
              f"refine-face on")
        n, secs = bare_loop(paths)
        bare = n / secs
        print(f"bare Holistic loop (1 process):          {bare:7.1f} frames/s ({1000 / bare:.1f} ms/frame)")
        one = None
        for w in (int(x) for x in args.workers.split(",")):
            r = slp_extract(clips, tmp / f"out{w}.h5", w, args.frames)
            one = one or r
            print(f"slp extract --workers {w}: {r['fps']:7.1f} frames/s wall ({r['wall']:.1f} s), "
                  f"{r['steady_fps']:.1f} steady; per worker {r['fps'] / w / bare:.0%} of bare "
                  f"(steady {r['steady_fps'] / w / bare:.0%}); vs 1 worker x{r['fps'] / one['fps']:.2f} "
                  f"(steady x{r['steady_fps'] / one['steady_fps']:.2f})")


if __name__ == "__main__":
    main()
