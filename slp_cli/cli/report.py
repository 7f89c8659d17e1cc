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
) -> None:
    """One table of several runs: methods as rows (ground truth first), the papers' metrics as columns."""
    from rich.table import Table

    from ..report import _cell, run

    columns, rows = run(runs, output)
    table = Table("method", *columns, title="slp report")
    for name, row in rows.items():
        table.add_row(name, *(_cell(row[c], c) for c in columns))
    console.print(table)
    if output:
        console.print(f"wrote {output.with_suffix('.md')}, .csv and .png", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("report", rich_help_panel=EVAL)(report)
