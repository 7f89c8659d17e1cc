"""Benchmark: text-to-gloss translation on real German text (`slp train text2gloss`, default preset).

    python bench/text2gloss_real.py SENTENCES.jsonl [--dev 642] [--run DIR] [--max-steps N] [--beam 4]
                                    [--no-dictionary] [--work DIR]

SENTENCES.jsonl holds PHOENIX-2014T training sentences as `slp synth --annotations` records (id,
text, glosses, split); the data is non-commercial and is not in this repository. The last
``--dev`` records (default 642, the size of PHOENIX-2014T's test split) are held out as the dev
split; the glosser trains on the others with the default preset (early stopping on the held-out
BLEU-4, so the figures are those of the selected weights: a development figure, not a test one).
Printed: training wall and CPU time, and on the held-out sentences the gloss WER (with
substitutions, deletions, insertions), BLEU-1..4 (signjoey convention) and ROUGE-L, greedy and
with ``--beam``.

Then the dictionary baseline (unless ``--no-dictionary``), as bench/dictionary_real_text.py runs
it: poses synthesized for the real glosses of the training records, normalized, made into a
dictionary; it signs the held-out texts with its word-by-word look-up (the learnt word table and
lemmas) and with the glosser (`slp generate --glosser`): the gloss WER of both. Needs about 5 GB
in ``--work`` for a while (a dictionary already in ``--work`` is reused). ``--run DIR`` evaluates
an existing run instead of training one (its training time is then the run's own).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine  # noqa: E402
from dictionary_real_text import evaluate, slp  # noqa: E402

from slp_cli.text2gloss import load_glosser, score_glosses  # noqa: E402
from slp_cli.training import TrainOptions, train  # noqa: E402


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def row(name: str, s: dict) -> str:
    return (f"| {name} | {s['wer']:.1f} | {s['sub_rate']:.1f} / {s['del_rate']:.1f} / {s['ins_rate']:.1f} | "
            f"{s['bleu1']:.2f} | {s['bleu4']:.2f} | {s['rouge_l']:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("jsonl", type=Path)
    ap.add_argument("--dev", type=int, default=642, help="records held out at the end (default 642)")
    ap.add_argument("--lang", default="dgs")
    ap.add_argument("--run", type=Path, default=None, help="evaluate this finished run instead of training one")
    ap.add_argument("--max-steps", type=int, default=None, help="shorter run than the default preset's")
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--no-dictionary", action="store_true", help="skip the dictionary baseline")
    ap.add_argument("--work", type=Path, default=None, help="folder for the run and artifacts (default: temporary)")
    args = ap.parse_args()
    records = [json.loads(line) for line in args.jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = [{**r, "lang": args.lang, "split": "train"} for r in records]
    for r in records[-args.dev:]:
        r["split"] = "dev"
    train_recs, dev = records[:-args.dev], records[-args.dev:]
    work = args.work or Path(tempfile.mkdtemp(prefix="slp-t2g-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(f"{len(train_recs)} training sentences, the last {len(dev)} held out as dev")
    data = work / "t2g.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    run = args.run
    if run is None:
        run = work / "text2gloss"
        t0, c0 = time.perf_counter(), cpu_seconds()
        summary = train("text2gloss", TrainOptions(output=run, data=[data], seed=0), preset="default",
                        overrides={"max_steps": args.max_steps})
        print(f"trained {summary['steps']} steps ({summary['parameters']:,} parameters) in "
              f"{time.perf_counter() - t0:.0f} s wall, {cpu_seconds() - c0:.0f} s CPU")
    model = load_glosser(run)
    texts, refs = [r["text"] for r in dev], [r["glosses"] for r in dev]
    results = {}
    for beam in sorted({1, args.beam}):
        t0 = time.perf_counter()
        hyps = model.glosses(texts, [args.lang] * len(texts), beam=beam)
        results[beam] = score_glosses(hyps, refs)
        results[beam]["seconds"] = time.perf_counter() - t0
    print(f"\n{len(dev)} held-out sentences, {results[1]['ref_tokens']} reference glosses; "
          f"{results[1]['bleu_signature']}\n")
    print("| glosser | gloss WER | sub / del / ins | BLEU-1 | BLEU-4 | ROUGE-L |")
    print("|---|---:|---:|---:|---:|---:|")
    for beam, s in results.items():
        print(row("greedy" if beam == 1 else f"beam {beam}", s) + f" ({s['seconds']:.1f} s)")
    if args.no_dictionary:
        return
    t0 = time.perf_counter()
    if not (work / "dict.h5").exists():  # (a --work folder of an earlier run keeps its dictionary)
        poses = work / "train.jsonl"
        poses.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in train_recs), encoding="utf-8")
        slp("synth", "--annotations", poses, "-o", work / "raw.h5")
        slp("normalize", work / "raw.h5", "-o", work / "corpus.h5")
        (work / "raw.h5").unlink()
        slp("dict", "build", work / "corpus.h5", "-o", work / "dict.h5")
        (work / "corpus.h5").unlink()
    lookup = evaluate(dev, work / "dict.h5", args.lang)
    glossed = evaluate(dev, work / "dict.h5", args.lang, glosser=run, beam=args.beam)
    print(f"\ndictionary baseline (dictionary from the {len(train_recs)} training sentences, "
          f"{time.perf_counter() - t0:.0f} s):\n")
    print("| dictionary baseline | sentences signed | gloss WER | sub / del / ins | BLEU-1 | BLEU-4 | ROUGE-L |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in [("word-by-word look-up (learnt table + lemmas)", lookup),
                    (f"glosses from the glosser (`--glosser`, beam {args.beam})", glossed)]:
        s = score_glosses(r["hyps"], refs)  # (a sentence with nothing signed: an empty hypothesis)
        print(row(name, s).replace(f"| {name} |", f"| {name} | {r['written']}/{r['sentences']} |"))


if __name__ == "__main__":
    main()
