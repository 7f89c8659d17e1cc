"""`slp extract VIDEOS... -o poses.h5`: MediaPipe keypoints (mp178) from videos and frame folders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import SlpError
from .common import DATA, RichProgress, console, print_json


def extract(
    inputs: List[Path] = typer.Argument(..., help="Video files, folders (searched recursively for videos and "
                                        "folders of frame images), or list files (.txt/.lst/.list: one path "
                                        "per line). Sample id = path relative to the folder given, without "
                                        "extension."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Pose artifact (.h5) to write, mp178 "
                                          "layout (default: beside a single input, its name with .h5, e.g. "
                                          "videos/ -> videos.h5). Re-running the same command resumes from "
                                          "OUTPUT.partial.", show_default=False),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Worker processes, one video "
                                          "each at a time (default: the number of CPU cores)."),
    fps: Optional[float] = typer.Option(None, help="Frame rate of the artifact; inputs at another rate are "
                                        "resampled linearly (default: the rate of the first input)."),
    frames_fps: float = typer.Option(25.0, help="Frame rate of folders of frame images (PHOENIX-2014T and "
                                     "CSL-Daily: 25)."),
    shard: Optional[str] = typer.Option(None, help="K/N: process only the inputs whose id hashes to shard K "
                                        "of N (K from 0), for a cluster job array; join with `slp merge`."),
    task_model: Optional[Path] = typer.Option(None, help="A MediaPipe Tasks holistic_landmarker.task file: use "
                                              "the Tasks API HolisticLandmarker (mediapipe 0.10.21 and later) "
                                              "instead of the legacy Holistic solution shipped in mediapipe "
                                              "0.10.21."),
    complexity: int = typer.Option(1, min=0, max=2, help="Legacy Holistic's pose model complexity. Only 1 ships in "
                                   "the mediapipe wheel; 0 and 2 are downloaded at first use (needs network)."),
    smooth: bool = typer.Option(True, "--smooth/--no-smooth", help="Legacy Holistic's temporal landmark smoothing."),
    refine_face: bool = typer.Option(True, "--refine-face/--no-refine-face", help="Legacy Holistic's face model "
                                     "with attention (finer lips and eyes, about 5% slower)."),
    min_detection: float = typer.Option(0.5, min=0.0, max=1.0, help="Minimum person/face detection confidence."),
    min_tracking: float = typer.Option(0.5, min=0.0, max=1.0, help="Minimum landmark tracking confidence "
                                       "(below it the detector runs again)."),
    verbose: bool = typer.Option(False, "--verbose", help="Let MediaPipe's own log lines through (hidden by "
                                 "default: it warns on every graph and many frames)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Extract MediaPipe Holistic keypoints (body, hands, face: 178 points, pixels, MediaPipe z) in parallel; bad inputs are reported and skipped."""
    if output is None:
        if len(inputs) != 1:
            raise SlpError(f"{len(inputs)} inputs: name the artifact to write, e.g. `slp extract "
                           f"{' '.join(map(str, inputs[:2]))} -o poses.h5`")
        output = Path(str(inputs[0]).rstrip("/")).with_suffix(".h5")
    if not verbose:  # FFmpeg's complaints about corrupt files, also in the workers (they inherit it)
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    from ..extract.mediapipe import BackendOptions
    from ..extract.runner import run
    from ..extract.sources import parse_shard

    opts = BackendOptions(task_model=str(task_model) if task_model else None, model_complexity=complexity,
                          smooth=smooth, refine_face=refine_face, min_detection_confidence=min_detection,
                          min_tracking_confidence=min_tracking)
    result = run(inputs, output, workers=workers, fps=fps, frames_fps=frames_fps, shard=parse_shard(shard),
                 backend=opts, quiet=not verbose, progress=RichProgress())
    secs = max(result["seconds"], 1e-9)
    note = " (no input falls in this shard)" if result["shard_empty"] else ""
    console.print(f"wrote {result['samples']} samples to {output}{note}: {result['extracted']} extracted now "
                  f"({result['frames']} frames, {result['extracted'] / secs:.2f} videos/s, "
                  f"{result['frames'] / secs:.1f} frames/s), {result['resumed']} resumed, "
                  f"{len(result['skipped'])} skipped", highlight=False)
    if as_json:
        print_json(result)


def register(app: typer.Typer) -> None:
    app.command("extract", rich_help_panel=DATA)(extract)
