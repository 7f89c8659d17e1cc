"""`slp import-pose` and `slp export-pose`: .pose files (pose-format) to and from artifacts."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import List, Optional

import typer

from .common import DATA, console
from ..errors import SlpError


def import_pose(
    inputs: List[Path] = typer.Argument(..., help="MediaPipe Holistic .pose files (full or reduced to "
                                        "178 points) and/or spoken-to-signed lexicon folders (index.csv "
                                        "+ .pose files)."),
    output: Path = typer.Option(..., "-o", "--output", help="Artifact (.h5) to write, mp178 layout."),
    fps: Optional[float] = typer.Option(None, help="Frame rate of the artifact; inputs at another rate "
                                        "are resampled linearly (default: the most common input rate)."),
    lang: str = typer.Option("", help="Sign language code stored with the .pose files' samples "
                             "(lexicon rows carry their own)."),
    split: str = typer.Option("train", help="Split stored with every sample."),
) -> None:
    """Import .pose files and lexicons into one artifact (id = file stem, first person only); nothing is written if any input fails."""
    from ..artifacts import provenance, save
    from ..interop.pose_format import import_poses

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples, rate = import_poses(inputs, fps=fps, lang=lang)
    for w in caught:
        console.print(f"[yellow]note:[/] {w.message}", highlight=False)
    for s in samples:
        s.split = split
    save(samples, output, fps=rate,
         provenance=provenance("import-pose", {"fps": fps, "lang": lang, "split": split}, inputs))
    console.print(f"wrote {len(samples)} samples ({sum(s.num_frames for s in samples)} frames at "
                  f"{rate:g} fps) to {output}", highlight=False)


def export_pose(
    input_path: Path = typer.Argument(..., help="Pose artifact (mp178 layout)."),
    sample_id: Optional[str] = typer.Option(None, "--id", help="Sample to export (needed when the "
                                            "artifact holds several)."),
    output: Path = typer.Option(..., "-o", "--output", help=".pose file to write (pose-format's reduced "
                                "holistic order, 178 points)."),
) -> None:
    """Export one sample as a .pose file readable by pose-format and the spoken-to-signed tools."""
    from ..artifacts import load
    from ..interop.pose_format import write_pose

    art = load(input_path)
    if art.layout != "mp178":
        raise SlpError(f"{input_path}: layout {art.layout}; only mp178 samples can be written as .pose")
    few = ", ".join(art.ids[:5]) + (", ..." if len(art) > 5 else "")
    if sample_id is None:
        if len(art.samples) != 1:
            raise SlpError(f"{input_path}: {len(art)} samples; choose one with --id (e.g. {few})")
        sample = art.samples[0]
    else:
        if sample_id not in set(art.ids):
            raise SlpError(f"{input_path}: no sample with id '{sample_id}'; ids there include: {few}")
        sample = art[sample_id]
    write_pose(sample, output, art.fps)
    note = " (normalized coordinates: pose-format viewers expect pixels)" if art.normalized else ""
    console.print(f"wrote {output}: '{sample.id}', {sample.num_frames} frames at {art.fps:g} fps{note}",
                  highlight=False)


def register(app: typer.Typer) -> None:
    app.command("import-pose", rich_help_panel=DATA)(import_pose)
    app.command("export-pose", rich_help_panel=DATA)(export_pose)
