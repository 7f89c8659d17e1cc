"""`slp dict build SOURCE -o dictionary.h5`: the word-level sign dictionary."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import DATA, RichProgress, console, existing, print_json

dict_app = typer.Typer(no_args_is_help=True, add_completion=False)


@dict_app.command("build")
def build(
    source: Path = typer.Argument(..., help="Corpus artifact (.h5; glosses cut by gloss_spans, or single-sign "
                                  "samples) or a spoken-to-signed lexicon folder (index.csv + .pose files)."),
    output: Path = typer.Option(..., "-o", "--output", help="Dictionary artifact to write."),
    split: str = typer.Option("train", help="Split of a corpus to take instances from (ignored for a lexicon)."),
    criterion: str = typer.Option("medoid", help="Representative clip per gloss: 'medoid' (smallest mean "
                                  "DTW-MJE to the gloss's other instances) or 'first' (first in corpus order)."),
    langs: Optional[str] = typer.Option(None, help="Comma-separated languages to keep, e.g. dgs,csl (default: all)."),
    max_instances: int = typer.Option(12, min=2, help="Medoid: compare at most this many instances per gloss "
                                      "(a fixed-seed random subset when there are more)."),
    seed: int = typer.Option(0, help="Seed of the instance subset drawn for the medoid."),
    alphabet: Optional[Path] = typer.Option(None, help="Manual alphabet to add, for fingerspelling unknown words: "
                                            "a lexicon folder or an artifact whose samples are letter signs, their "
                                            "text the letter (e.g. from `slp synth --alphabet`)."),
    word_table: bool = typer.Option(True, "--word-table/--no-word-table", help="Learn a word -> gloss table from "
                                    "the corpus' text/gloss pairs (IBM Model 1), used before the lemma rules."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Build a sign dictionary: one representative clip per (language, gloss), looked up by lemma."""
    import warnings

    from rich.table import Table

    from ..dictionary import BuildReport, run, summary

    existing(source, "corpus or lexicon")
    if alphabet is not None:
        existing(alphabet, "alphabet")
    report = BuildReport()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(source, output, split=split, criterion=criterion,
            langs=[x.strip() for x in langs.split(",") if x.strip()] if langs else None,
            max_instances=max_instances, seed=seed, alphabet=alphabet, word_table=word_table, report=report,
            progress=RichProgress())
    for w in caught:
        console.print(f"[yellow]warning:[/] {w.message}", highlight=False)
    info = summary(report)
    if as_json:
        print_json({**info, "output": str(output), "skipped": report.skipped_glosses + report.skipped_samples})
    table = Table("language", "entries", title=f"dictionary {output}")
    for lang, n in info["entries_per_lang"].items():
        table.add_row(lang, str(n))
    console.print(table)
    console.print(f"{info['entries']} entries from {info['instances']} instances ({info['single_instance_entries']} "
                  f"glosses seen once; at most {info['compared_max']} instances compared per gloss)")
    if info["word_table_words"]:
        console.print("word -> gloss table learnt from the corpus' texts: " + ", ".join(
            f"{lang} {n} words" for lang, n in info["word_table_words"].items()), highlight=False)
    if info["letters"]:
        console.print("manual alphabet (unknown words are fingerspelled): " + ", ".join(
            f"{lang} {n} letters" for lang, n in info["letters"].items()), highlight=False)
    if report.skipped_glosses or report.skipped_samples:
        console.print(f"[yellow]skipped[/] {info['skipped_glosses']} glosses, {info['skipped_samples']} samples "
                      "(listed in the artifact, see `slp info`):", highlight=False)
        for s in (report.skipped_samples + report.skipped_glosses)[:5]:
            console.print(f"  {s['input']}: {s['reason']}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(dict_app, name="dict", help="Word-level sign dictionary (for concatenation and retrieval).",
                  rich_help_panel=DATA)
