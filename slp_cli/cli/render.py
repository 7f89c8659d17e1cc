"""`slp render IN.h5 -o out.mp4|out.gif|folder`: skeleton videos of an artifact's samples."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import List, Optional

import typer

from .common import DATA, console


def render(
    input_path: Path = typer.Argument(..., help="Pose artifact (mp178 layout) to draw."),
    output: Path = typer.Option(..., "-o", "--output", help="Video to write (.mp4 or .gif), or a folder "
                                "(an existing one or a path without extension) for one video per sample."),
    ids: Optional[List[str]] = typer.Option(None, "--id", help="Sample id to render; repeat for several "
                                            "(they need a folder output). Default: the first sample, or "
                                            "every sample when the output is a folder."),
    ref: Optional[Path] = typer.Option(None, "--ref", help="Artifact with reference poses (e.g. the "
                                       "ground truth) drawn side by side at the same scale, matched by id."),
    fps: Optional[float] = typer.Option(None, help="Playback frame rate (default: the artifact's fps)."),
    size: int = typer.Option(512, help="Width and height of each panel in pixels; side by side doubles "
                             "the width."),
    fmt: str = typer.Option("mp4", "--format", help="Video format of the files in a folder output: mp4 or gif."),
    title: str = typer.Option("", help="Title drawn at the top of every frame."),
) -> None:
    """Draw skeleton videos: body, hands and face contours, with the sentence and glosses as captions."""
    from ..render import render_artifact

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = render_artifact(input_path, output, ids=ids, reference_path=ref, fps=fps, size=size,
                               fmt=fmt, title=title)
    for w in caught:
        console.print(f"[yellow]note:[/] {w.message}", highlight=False)
    for sample_id, path in done:
        console.print(f"wrote {path} ({sample_id})", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("render", rich_help_panel=DATA)(render)
