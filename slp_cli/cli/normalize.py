"""`slp normalize IN -o OUT`."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import DATA, RichProgress, console


def normalize(
    input_path: Path = typer.Argument(..., help="Pose artifact to normalize (mp178 layout)."),
    output: Path = typer.Option(..., "-o", "--output", help="Normalized artifact to write."),
    mode: str = typer.Option("frame", help="'frame': neck and shoulder width of every frame (A2V-SLP, "
                             "Progressive Transformers); 'sequence': one per sequence (pose-format)."),
    max_gap: int = typer.Option(5, help="Fill gaps of a missing joint of at most this many frames by "
                                "linear interpolation; longer gaps stay missing."),
) -> None:
    """Centre poses at the neck (midpoint of the shoulders), scale shoulder width to 1, fill short gaps, store dataset mean/std."""
    from ..normalize import run

    result = run(input_path, output, mode=mode, max_gap=max_gap, progress=RichProgress())
    console.print(f"wrote {result['samples']} samples to {output} (missing joint-frames "
                  f"{result['missing_joints_before']} -> {result['missing_joints_after']})")
    for s in result["skipped"]:
        console.print(f"[yellow]skipped[/] {s['input']}: {s['reason']}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("normalize", rich_help_panel=DATA)(normalize)
