"""`slp synth -o corpus.h5`: the embedded synthetic corpus (or poses for given annotations)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from .common import DATA, RichProgress, console, print_json


def synth(
    output: Path = typer.Option(..., "-o", "--output", help="Pose artifact to write (.h5, mp178 layout, 25 fps, "
                                "image coordinates: not normalized)."),
    langs: str = typer.Option("dgs,csl,asl", help="Comma-separated languages: dgs (German text), csl (Chinese "
                              "text), asl (English text); each has its own vocabulary and signers."),
    preset: str = typer.Option("demo", help="Corpus size: 'tiny' (tests: ~24 glosses, 30 sentences per language), "
                               "'demo' (~110 glosses, 360 sentences), 'benchmark' (PHOENIX-2014T scale: 1,085 "
                               "glosses, 7,096/519/642 train/dev/test sentences per language)."),
    sentences: Optional[int] = typer.Option(None, help="Sentences per language, overriding the preset's (split "
                                            "into train/dev/test in PHOENIX-2014T's proportions)."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives bit-identical poses; the signs of the "
                             "vocabulary, sentences, signers and noise all follow from it."),
    heldout_signers: int = typer.Option(0, "--heldout-signers", help="Reserve the last K of the 9 signers of each "
                                        "language for the test split (train and dev never show them)."),
    dropout: bool = typer.Option(True, "--dropout/--no-dropout", help="Add short hand-detection dropouts (a "
                                 "hand's joints NaN with confidence 0 for 2-6 frames), as MediaPipe output has."),
    annotations: Optional[Path] = typer.Option(None, help="JSONL file, one record per line (id, glosses, and "
                                               "optionally text, lang, split, signer, num_frames, labels: the gloss "
                                               "of every frame or null): sign these instead of the corpus' sentences."),
    alphabet: bool = typer.Option(False, "--alphabet", help="Write the synthetic signer's manual alphabet instead "
                                  "(one sample per letter, text = the letter; dgs and asl) for `slp dict build "
                                  "--alphabet`, with which unknown words are fingerspelled."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Generate the embedded synthetic corpus: procedurally signed sentences with text and glosses."""
    from ..artifacts import read_header
    from ..data.synth import check_langs, run

    lang_list = check_langs([x.strip() for x in langs.split(",") if x.strip()])
    start = time.perf_counter()
    run(output, langs=lang_list, preset=preset, sentences=sentences, seed=seed, annotations=annotations,
        heldout_signers=heldout_signers, dropout=dropout, progress=RichProgress(), alphabet=alphabet)
    seconds = time.perf_counter() - start
    h = read_header(output)
    counts: dict[str, dict[str, int]] = {}
    for split, lang in zip(h["split"], h["lang"]):
        counts.setdefault(lang, {}).setdefault(split, 0)
        counts[lang][split] += 1
    summary = {"output": str(output), "samples": len(h["id"]), "frames": h["num_frames"],
               "mean_frames": h["num_frames"] / max(len(h["id"]), 1), "signers": len(set(h["signer"])),
               "counts": counts, "seconds": round(seconds, 2)}
    if as_json:
        print_json(summary)
        return
    per = "; ".join(f"{lang}: " + ", ".join(f"{n} {s}" for s, n in c.items()) for lang, c in counts.items())
    console.print(f"wrote {summary['samples']} samples ({per}), {summary['frames']} frames "
                  f"(mean {summary['mean_frames']:.0f}), {summary['signers']} signers to {output} "
                  f"in {seconds:.1f} s", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("synth", rich_help_panel=DATA)(synth)
