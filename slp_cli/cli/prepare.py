"""`slp prepare phoenix|csl|how2sign DATA_DIR -o corpus.h5`: a real corpus as an slp artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import DATA, RichProgress, console, print_json, print_skipped


def prepare(
    corpus: str = typer.Argument(..., help="phoenix (PHOENIX-2014T), csl (CSL-Daily) or how2sign."),
    data_dir: Path = typer.Argument(..., help="The corpus root as distributed (see `slp_cli/data/corpora.py` "
                                    "or the README for the layout each reader expects)."),
    output: Path = typer.Option(..., "-o", "--output", help="Corpus artifact to write (.h5)."),
    poses: Optional[Path] = typer.Option(None, help="Attach poses from this artifact (ids = the corpus' own "
                                         "sample names) instead of extracting them from the frames/videos."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Extraction worker processes "
                                          "(default: the number of CPU cores)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Read a corpus' annotations (texts, glosses, signers, splits) and its poses: extracted with MediaPipe
    (resumable, like `slp extract`) or attached from a pose release."""
    from ..data.corpora import prepare as run

    result = run(corpus, data_dir, output, poses=poses, workers=workers, progress=RichProgress())
    if as_json:
        print_json(result)
    sp = result["splits"]
    console.print(f"wrote {result['samples']} of {result['records']} annotated samples to {output} "
                  f"(train {sp['train']}, dev {sp['dev']}, test {sp['test']})", highlight=False)
    print_skipped(result["skipped"], f"`slp info {output} --json` lists them")


def register(app: typer.Typer) -> None:
    app.command("prepare", rich_help_panel=DATA)(prepare)
