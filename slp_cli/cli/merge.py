"""`slp merge A.h5 B.h5 ... -o all.h5`: join artifacts (e.g. the shards of `slp extract --shard`)."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from .common import DATA, console, print_json


def merge(
    inputs: List[Path] = typer.Argument(..., help="Artifacts to merge, all with the same layout, fps, "
                                        "normalization and per-sample arrays."),
    output: Path = typer.Option(..., "-o", "--output", help="Merged artifact to write (atomically)."),
    skip_duplicates: bool = typer.Option(False, "--skip-duplicates", help="When an id is in several inputs, "
                                         "keep the first (in argument order) and log the others as skipped; "
                                         "without it a duplicate id is an error and nothing is written."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Merge artifacts into one: samples in argument order, logs of skipped inputs joined."""
    from ..merge import merge as run

    result = run(inputs, output, skip_duplicates=skip_duplicates)
    dup = f", {result['duplicates_skipped']} duplicate ids skipped" if result["duplicates_skipped"] else ""
    console.print(f"wrote {result['samples']} samples ({result['frames']} frames) from {result['inputs']} "
                  f"artifacts to {output}{dup}", highlight=False)
    if as_json:
        print_json(result)


def register(app: typer.Typer) -> None:
    app.command("merge", rich_help_panel=DATA)(merge)
