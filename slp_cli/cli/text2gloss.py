"""`slp text2gloss --model T2G_DIR "text" --lang dgs` (spoken text -> glosses) and
`slp score-glosses --hyp OUT.jsonl --ref CORPUS.h5` (gloss WER, BLEU, ROUGE-L)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import EVAL, MODELS, RichProgress, console, existing, print_json, print_skipped


def text2gloss(
    text: Optional[str] = typer.Argument(None, help="Sentence to translate (or use --texts-from)."),
    model: Path = typer.Option(..., "--model", help="Run directory of a text-to-gloss model (`slp train text2gloss`)."),
    lang: Optional[str] = typer.Option(None, help="Sign language, e.g. dgs. Required with TEXT or a text file; with "
                                       "an artifact or JSON lines it keeps only that language's sentences (and is "
                                       "the language of records without one)."),
    texts_from: Optional[Path] = typer.Option(None, help="Batch: a UTF-8 text file (one sentence a line, ids "
                                              "line-0001, ...), a JSON lines file (id, text, lang, split) or an slp "
                                              "artifact (its ids, texts, languages)."),
    split: Optional[str] = typer.Option(None, help="With an artifact or JSON lines: only this split (e.g. test)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="JSON lines to write, one {\"id\", \"text\", "
                                          "\"lang\", \"glosses\"} per sentence (default: print the glosses)."),
    beam: int = typer.Option(1, min=1, help="Beam size; 1 is greedy decoding."),
    batch_size: int = typer.Option(64, min=1, help="Sentences decoded together."),
    device: str = typer.Option("auto", help="auto (CUDA if available), cpu, cuda or cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print the records and the summary as JSON on stdout."),
) -> None:
    """Translate spoken text into gloss sequences with a trained text-to-gloss model."""
    from ..text2gloss import run

    existing(model, "text-to-gloss model directory")
    if texts_from is not None:
        existing(texts_from, "--texts-from file")
    result = run(model, output, text=text, lang=lang, texts_from=texts_from, split=split, beam=beam,
                 batch_size=batch_size, device=device, progress=RichProgress(hide_below=256))
    if as_json:
        print_json(result)
    elif output is None:
        for r in result["records"]:  # the glosses on stdout, one sentence a line
            print(" ".join(r["glosses"]) if text is not None else f"{r['id']}\t{' '.join(r['glosses'])}")
    if output is not None:
        console.print(f"wrote the glosses of {len(result['records'])} of {result['sentences']} sentences "
                      f"({'greedy' if beam == 1 else f'beam {beam}'}) to {output}", highlight=False)
    print_skipped(result["skipped"], "--json lists them all", shown=5)


def score_glosses(
    hyp: Path = typer.Option(..., "--hyp", help="Hypotheses: JSON lines from `slp text2gloss -o` (id, glosses), or "
                             "an slp artifact whose samples carry glosses (e.g. `slp generate`'s output)."),
    ref: Path = typer.Option(..., "--ref", help="References with the same ids: an slp artifact with glosses or JSON "
                             "lines (id, glosses)."),
    split: Optional[str] = typer.Option(None, help="Only references of this split (e.g. test)."),
    json_path: Optional[str] = typer.Option(None, "--json", help="Write the scores as JSON to this file ('-': print "
                                            "them on stdout instead of the summary), as `slp score --json`."),
) -> None:
    """Score gloss sequences: gloss WER (substitutions, deletions, insertions), BLEU-1..4, ROUGE-L."""
    from ..atomic import refuse_overwriting, write_json
    from ..text2gloss import score

    out = None if json_path in (None, "-") else Path(json_path)
    refuse_overwriting([out], [hyp, ref])
    s = score(existing(hyp, "--hyp file"), existing(ref, "--ref file"), split=split)
    if out is not None:
        write_json(out, s)
    if json_path == "-":
        print_json(s)
        return
    print(f"gloss WER {s['wer']:.2f} (substitutions {s['sub_rate']:.2f}, deletions {s['del_rate']:.2f}, "
          f"insertions {s['ins_rate']:.2f}; {s['ref_tokens']} reference glosses in {s['sentences']} sentences)")
    print(f"BLEU-1 {s['bleu1']:.2f}  BLEU-2 {s['bleu2']:.2f}  BLEU-3 {s['bleu3']:.2f}  BLEU-4 {s['bleu4']:.2f}  "
          f"ROUGE-L {s['rouge_l']:.2f}")
    console.print(f"sacrebleu: {s['bleu_signature']} (signjoey convention)", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("text2gloss", rich_help_panel=MODELS)(text2gloss)
    app.command("score-glosses", rich_help_panel=EVAL)(score_glosses)
