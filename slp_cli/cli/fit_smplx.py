"""`slp fit-smplx poses.h5 --model-dir DIR -o smplx.h5`: SMPL-X parameters fitted to keypoints."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import DATA, RichProgress, console, print_json


def fit_smplx(
    input_path: Path = typer.Argument(..., help="Pose artifact (mp178 layout), e.g. from `slp extract`."),
    model_dir: Path = typer.Option(..., "--model-dir", help="Folder with SMPLX_NEUTRAL.npz (or SMPLX_<GENDER>.npz, "
                                   "also found in its smplx/ subfolder), or the .npz itself. The files are "
                                   "licence-gated: register at https://smpl-x.is.tue.mpg.de to download them."),
    output: Path = typer.Option(..., "-o", "--output", help="Artifact to write: the fitted points in mp178 plus "
                                "per-sample arrays smplx (T, 133), global_orient, betas, camera, fit_error. "
                                "Re-running the same command resumes from OUTPUT.partial."),
    gender: str = typer.Option("neutral", help="Which model file: neutral, female or male."),
    device: str = typer.Option("auto", help="auto (CUDA when torch sees a GPU), cpu, cuda or cuda:N."),
    hand_pca: int = typer.Option(12, min=1, max=45, help="Hand poses as this many PCA components of the "
                                 "model's hand space per hand (a prior against implausible hands)."),
    no_hand_pca: bool = typer.Option(False, "--no-hand-pca", help="Fit all 15 x 3 hand joint rotations instead "
                                     "of PCA components."),
    iters: int = typer.Option(300, min=1, help="Optimisation steps on all parameters (after iters/4 steps placing "
                              "the camera): more is slower and closer."),
    target: str = typer.Option("2d", help="2d: image x, y only (SOKE appendix A). 3d: x, y and z, only for "
                               "poses whose z is a true depth in the units of x and y (MediaPipe's is not)."),
    temporal_weight: float = typer.Option(0.01, min=0.0, help="Weight of the temporal loss (joint and vertex "
                                          "motion between consecutive frames); 0 drops it (shape and camera scale "
                                          "stay shared per sample)."),
    batch_frames: int = typer.Option(2048, min=1, help="Frames optimised together (whole samples; a longer "
                                     "sample is a batch of its own). Larger batches use the GPU better."),
    threads: Optional[int] = typer.Option(None, min=1, help="CPU threads for torch (default: torch's choice; "
                                          "1 is often fastest for small batches on a busy machine)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Fit per-frame SMPL-X parameters (body, hands, jaw, expression; shape per sample) with re-projection, temporal and pose-prior losses."""
    from ..extract.smplx_fit import FitOptions, run

    if threads:
        import torch

        torch.set_num_threads(threads)
    opts = FitOptions(iters=iters, hand_pca=None if no_hand_pca else hand_pca, target=target,
                      w_temporal=temporal_weight, batch_frames=batch_frames, device=device)
    result = run(input_path, output, model_dir, gender=gender, opts=opts, progress=RichProgress())
    secs = max(result["seconds"], 1e-9)
    console.print(f"wrote {result['samples']} samples to {output}: {result['fitted']} fitted now ({result['frames']} "
                  f"frames, {result['frames'] / secs:.1f} frames/s on {result['device']}), {result['resumed']} "
                  f"resumed, {len(result['skipped'])} skipped", highlight=False)
    if as_json:
        print_json(result)


def register(app: typer.Typer) -> None:
    app.command("fit-smplx", rich_help_panel=DATA)(fit_smplx)
