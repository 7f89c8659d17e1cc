"""`slp score --hyp generated.h5 --ref reference.h5 [--backtranslate SLT_DIR]`: DTW pose errors and
back-translation scores."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from .common import EVAL, RichProgress, console, existing, print_json

PROTOCOL_HELP = ("DTW definition: 'slp' (exact DTW, mean joint L2, path cost / aligned pairs; default), "
                 "'pt2020' (Progressive Transformers: summed |coordinate differences|, / reference length), "
                 "'slrtp2025' (SLRTP 2025 challenge: flattened-L2 path at 12.5 fps, per-joint L2 pooled over "
                 "the corpus), 'soke2025' (SOKE: root-aligned and Procrustes-aligned joint L2, path cost not "
                 "normalised). Numbers from different protocols are not comparable.")


def _fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


LABELS = {"dtw_mje": "DTW-MJE", "dtw_pa_jpe": "DTW-PA-JPE", "dtw_jpe": "DTW-JPE",
          "duration_ratio": "duration ratio", "wrist_travel_ratio": "wrist travel ratio",
          "bleu1": "BLEU-1", "bleu2": "BLEU-2", "bleu3": "BLEU-3", "bleu4": "BLEU-4", "chrf": "chrF",
          "rouge_l": "ROUGE-L"}


def _rows(result: dict) -> dict[str, tuple[float | None, int, int, int]]:
    """label -> (value, digits, samples, undefined) for one result (the corpus or one language)."""
    rows = {}
    for metric, sels in result["pose"].items():
        for sel, agg in sels.items():
            label = f"{LABELS.get(metric, metric)} {sel.replace('_', ' ')}"
            rows[label] = (agg["value"], 4, agg["n"], agg["undefined"])
    for key in ("duration_ratio", "wrist_travel_ratio"):
        if key in result:
            agg = result[key]
            rows[LABELS[key]] = (agg["value"], 3, agg["n"], agg["undefined"])
    for key, label in (("peak_velocity", "wrist peak speed /s"), ("peak_jerk", "wrist peak jerk /s³"),
                       ("ref_peak_velocity", "  (reference's peak speed)"), ("ref_peak_jerk", "  (reference's peak jerk)")):
        agg = result.get("smoothness", {}).get(key)
        if agg:
            rows[label] = (agg["value"], 2, agg["n"], agg["undefined"])
    text = result.get("text")
    if text:
        for key in ("bleu1", "bleu2", "bleu3", "bleu4", "chrf", "rouge_l"):
            rows[LABELS[key]] = (text[key], 2, text["n"], text.get("without_translation") or 0)
    return rows


def _table(result: dict, title: str):
    """One table: a row per metric, a column for the corpus and one per language."""
    from rich.table import Table

    columns = {"all": result, **result.get("by_lang", {})}
    if len(columns) == 2:  # one language: its column would repeat the corpus'
        columns = {"all": result}
    table = Table("metric", *[f"{name}\n({sub['samples']['matched'] if name == 'all' else sub['samples']})"
                              for name, sub in columns.items()], "undefined", title=title)
    rows = {name: _rows(sub) for name, sub in columns.items()}
    for label, (_, digits, _, undefined) in rows["all"].items():
        cells = [_fmt(rows[name].get(label, (None,))[0], digits) for name in columns]
        table.add_row(label, *cells, str(undefined or ""))
    return table


TEXT_KEYS = ("bleu1", "bleu2", "bleu3", "bleu4", "chrf", "rouge_l")


def _backtranslation_table(result: dict, hyp_name: str):
    """The papers' back-translation table: the ground truth (reference poses through the same
    model, the upper bound) above the hypothesis; per language too when there are several."""
    from rich.table import Table

    bt = result["backtranslation"]
    decoding = "greedy" if bt["beam"] == 1 else f"beam {bt['beam']}"
    title = f"back-translation with {bt['model']} ({decoding})"
    table = Table(title=title)
    table.add_column("poses", no_wrap=True)
    for k in TEXT_KEYS:
        table.add_column(LABELS[k])
    table.add_column("n")
    glosses = "gloss_wer" in bt  # the model recognises glosses and the reference has them
    if glosses:
        table.add_column("gloss WER")
    rows = [("ground truth (upper bound)", bt["ground_truth"], bt.get("gloss_wer", {}).get("ground_truth")),
            (hyp_name, result.get("text") or {}, bt.get("gloss_wer", {}).get("hyp"))]
    for lg, gt in bt.get("ground_truth_by_lang", {}).items():
        wers = bt.get("gloss_wer_by_lang", {}).get(lg, {})
        rows += [(f"ground truth [{lg}]", gt, wers.get("ground_truth")),
                 (f"{hyp_name} [{lg}]", result["by_lang"][lg].get("text") or {}, wers.get("hyp"))]
    for name, sc, wer in rows:
        cells = [_fmt(sc.get(k), 2) for k in TEXT_KEYS] + [str(sc.get("n", 0))]
        table.add_row(name, *cells, *([_fmt((wer or {}).get("wer"), 2)] if glosses else []))
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
    backtranslate: Optional[Path] = typer.Option(None, "--backtranslate", help="A fine-tuned `slp train slt` "
                                                 "model: back-translate the hypothesis and the reference poses "
                                                 "with it, score the hypothesis' translations against the "
                                                 "reference text and print the reference poses' row as the "
                                                 "upper bound; with a model that has a gloss head and a reference "
                                                 "with glosses, the gloss WER of both too."),
    beam: int = typer.Option(4, min=1, help="Beam size of --backtranslate decoding (1: greedy)."),
    device: str = typer.Option("auto", help="Device of --backtranslate: auto (CUDA if available), cpu, cuda or cuda:N."),
) -> None:
    """Score generated poses against references: DTW errors, tempo ratios, back-translation BLEU/chrF/ROUGE-L."""
    from ..score import jsonable, run

    existing(hyp, "hypothesis artifact")
    existing(ref, "reference artifact")
    if backtranslate is not None:
        existing(backtranslate, "SLT model directory")
    result = run(hyp, ref, None if json_path == "-" else json_path, protocol=protocol, split=split, bleu_tokenize=bleu,
                 progress=RichProgress(hide_below=20), backtranslate_with=backtranslate, beam=beam, device=device)
    if json_path == "-":
        print_json(jsonable(result))

    console.print(_table(result, f"{hyp.name} vs {ref.name} — {result['protocol_label']}"))
    if result.get("backtranslation"):
        console.print(_backtranslation_table(result, hyp.name))
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
