"""`slp report RUN...`: several runs' scores as one table (markdown, CSV, bar chart)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import EVAL, console


def report(
    runs: List[str] = typer.Argument(..., help="Score JSONs (from `slp score --json`) or run folders holding "
                                     "scores.json; 'NAME=PATH' names a row (default: the file or folder name)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the table here (.md) with a .csv "
                                          "and a bar chart .png beside it."),
    glosser: Optional[List[str]] = typer.Option(None, "--glosser", help="A text-to-gloss translator's scores "
                                                "(`slp score-glosses --json FILE`), 'NAME=PATH': a second table "
                                                "(gloss WER, BLEU, ROUGE-L). Repeatable."),
) -> None:
    """One table of several runs: methods as rows (ground truth first), the papers' metrics as columns."""
    from ..report import run

    _, _, text = run(runs, output, glosser or [])
    # Markdown rather than a drawn table: eleven columns stay readable in any terminal width,
    # and the text pastes into a paper or an issue as it is.
    typer.echo(text, nl=False)
    if output:
        console.print(f"wrote {output.with_suffix('.md')}, .csv and .png", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("report", rich_help_panel=EVAL)(report)
