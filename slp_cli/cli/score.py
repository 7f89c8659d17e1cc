"""`slp score --hyp generated.h5 --ref reference.h5`: DTW pose errors and back-translation scores."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from .common import EVAL, console, existing, print_json

PROTOCOL_HELP = ("DTW definition: 'slp' (exact DTW, mean joint L2, path cost / aligned pairs; default), "
                 "'pt2020' (Progressive Transformers: summed |coordinate differences|, / reference length), "
                 "'slrtp2025' (SLRTP 2025 challenge: flattened-L2 path at 12.5 fps, per-joint L2 pooled over "
                 "the corpus), 'soke2025' (SOKE: root-aligned and Procrustes-aligned joint L2, path cost not "
                 "normalised). Numbers from different protocols are not comparable.")


def _fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def _table(result: dict, title: str):
    from rich.table import Table

    table = Table("metric", "value", "samples", "undefined", title=title)
    for metric, sels in result["pose"].items():
        for sel, agg in sels.items():
            table.add_row(f"{metric} {sel}", _fmt(agg["value"]), str(agg["n"]), str(agg["undefined"] or ""))
    for key in ("duration_ratio", "wrist_travel_ratio"):
        if key in result:
            agg = result[key]
            table.add_row(key, _fmt(agg["value"], 3), str(agg["n"]), str(agg["undefined"] or ""))
    text = result.get("text")
    if text:
        for key in ("bleu1", "bleu2", "bleu3", "bleu4", "chrf", "rouge_l"):
            table.add_row(key, _fmt(text[key], 2), str(text["n"]), str(text.get("without_translation") or ""))
    return table


def score(
    hyp: Path = typer.Option(..., "--hyp", help="Generated poses (.h5 artifact); back-translations, if any, "
                             "in its samples' translation field."),
    ref: Path = typer.Option(..., "--ref", help="Reference poses (.h5 artifact) with the reference text."),
    json_path: Optional[str] = typer.Option(None, "--json", help="Write all scores (corpus, per language, per "
                                            "sample) as JSON to this file, or to stdout with '-'."),
    protocol: str = typer.Option("slp", help=PROTOCOL_HELP),
    bleu: str = typer.Option("signjoey", "--bleu", help="BLEU convention: 'signjoey' (lower-cased, "
                             "space-tokenised, tokenize none, floor smoothing 0, Chinese per character; the SLP "
                             "literature's) or '13a' (sacrebleu's default)."),
    split: Optional[str] = typer.Option(None, help="Score only this split of both artifacts (e.g. test)."),
) -> None:
    """Score generated poses against references: DTW errors, tempo ratios, back-translation BLEU/chrF/ROUGE-L."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..artifacts import read_header
    from ..score import jsonable, run, write_json

    existing(hyp, "hypothesis artifact")
    existing(ref, "reference artifact")
    header = read_header(ref)
    total = sum(1 for sp in header["split"] if split is None or sp == split)
    with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True, disable=total < 20) as progress:
        task = progress.add_task("scoring", total=total)
        result = run(hyp, ref, protocol=protocol, split=split, bleu_tokenize=bleu,
                     on_sample=lambda _id: progress.advance(task))
    if json_path == "-":
        print_json(jsonable(result))
    elif json_path:
        write_json(result, json_path)

    console.print(_table(result, f"{hyp.name} vs {ref.name} — {result['protocol_label']}"))
    for lang, sub in result.get("by_lang", {}).items():
        console.print(_table(sub, f"language {lang} ({sub['samples']} samples)"))
    if result.get("text"):
        console.print(f"BLEU signature: {result['text']['bleu_signature']}", highlight=False)
        console.print(f"chrF signature: {result['text']['chrf_signature']}", highlight=False)
    else:
        console.print("no back-translations in the hypothesis (Sample.translation): text metrics skipped",
                      highlight=False)
    s = result["samples"]
    console.print(f"{s['matched']} samples matched", highlight=False)
    for key, what in (("missing_in_hyp", "reference ids missing from the hypothesis"),
                      ("extra_in_hyp", "hypothesis ids not in the reference")):
        if s[key]:
            shown = ", ".join(s[key][:5]) + (" ..." if len(s[key]) > 5 else "")
            console.print(f"[yellow]{len(s[key])} {what}[/]: {shown}", highlight=False)
    if json_path and json_path != "-":
        console.print(f"scores written to {json_path}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("score", rich_help_panel=EVAL)(score)
