"""`slp translate IN.h5 --model SLT_DIR -o OUT.h5`: back-translate signing poses to text."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import EVAL, RichProgress, console, existing, print_json, print_skipped


def translate(
    input_path: Path = typer.Argument(..., help="Pose artifact (.h5, mp178, normalized like the model's "
                                      "training data)."),
    model: Path = typer.Option(..., "--model", help="Run directory of a pose-to-text model (a fine-tuned `slp train "
                               "slt`)."),
    output: Path = typer.Option(..., "-o", "--output", help="Artifact to write: the same samples (ids, poses, "
                                "texts) with their back-translation in the translation field (and, from a model "
                                "with a gloss head, the recognised glosses in report.recognised_glosses)."),
    beam: int = typer.Option(4, min=1, help="Beam size; 1 is greedy decoding."),
    length_penalty: float = typer.Option(1.0, help="Beam search ranks finished sentences by log-probability / "
                                         "length ** this (0: no length normalization)."),
    split: Optional[str] = typer.Option(None, help="Translate only this split (e.g. test)."),
    batch_size: int = typer.Option(32, min=1, help="Sequences decoded together."),
    device: str = typer.Option("auto", help="auto (CUDA if available), cpu, cuda or cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Translate every sample of a pose artifact to text (greedy or beam search) with an SLT model."""
    from ..translate import run

    existing(input_path, "pose artifact")
    existing(model, "SLT model directory")
    result = run(model, input_path, output, beam=beam, split=split, batch_size=batch_size,
                 length_penalty=length_penalty, device=device, progress=RichProgress(hide_below=64))
    if as_json:
        print_json(result)
    glosses = " with recognised glosses" if result["glosses"] else ""
    console.print(f"translated {result['translated']} of {result['samples']} samples{glosses} "
                  f"({'greedy' if beam == 1 else f'beam {beam}'}) into {output}", highlight=False)
    print_skipped(result["skipped"], "--json lists them all", shown=5)


def register(app: typer.Typer) -> None:
    app.command("translate", rich_help_panel=EVAL)(translate)
