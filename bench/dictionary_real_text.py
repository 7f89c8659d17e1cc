"""Benchmark: real German text through the dictionary baseline (`slp generate --method concat`).

    python bench/dictionary_real_text.py SENTENCES.jsonl [--test 642] [--dev] [--work DIR]

SENTENCES.jsonl holds PHOENIX-2014T training sentences as `slp synth --annotations` records
(id, text, glosses, num_frames, split); the data is non-commercial and is not in this
repository. The last ``--test`` records are held out; poses for the others are synthesized for
their real glosses (`slp synth --annotations`), normalized (`slp normalize`) and made into
dictionaries (`slp dict build`): rules only (`--no-word-table`), with the learnt word -> gloss
table, and with it and the synthetic signer's manual alphabet (`slp synth --alphabet`). Each
signs the held-out texts; printed per dictionary:

* the share of the held-out words with no sign in the dictionary (unknown, and fingerspelled
  where there is an alphabet), of words skipped as unsigned (function words, and the words the
  table says the corpus leaves unsigned), and of words signed;
* the gloss WER of the produced glosses against the reference glosses (a sentence with no
  signable word counts as an empty hypothesis), and which rule matched how many words.

``--dev`` holds out the last 500 records before the test slice instead (the slice the table's
thresholds were chosen on) and never touches the test slice. Needs about 5 GB in ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine  # noqa: E402

from slp_cli.dictionary import load_dictionary  # noqa: E402
from slp_cli.generate import Request, generate, match_words  # noqa: E402
from slp_cli.metrics.text import wer  # noqa: E402
from slp_cli.text.lemmas import tokens  # noqa: E402


def slp(*args) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "slp_cli", *map(str, args)], env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"slp {' '.join(map(str, args))} failed:\n{done.stderr}")


def evaluate(test: list[dict], dictionary: Path, lang: str, **options) -> dict:
    """The baseline on the held-out records; ``options`` go to the concat method (e.g. glosser)."""
    requests = [Request(r["id"], r["text"], lang, "test") for r in test]
    res = generate(requests, "concat", dictionary=dictionary, **options)
    hyp = {s.id: s.glosses for s in res.samples}
    # a sentence none of whose words is signed is skipped by generate: its report still counts
    d = load_dictionary(dictionary)
    reports = [res.reports.get(r["id"]) or match_words(tokens(r["text"], lang), lang, d) for r in test]
    words = sum(len(r.words) for r in reports)
    count = {k: sum(len(getattr(r, k)) for r in reports) for k in ("unknown", "fingerspelled", "function_words")}
    rules = Counter()
    for r in reports:
        rules.update(r.matched_by)
    return {"sentences": len(test), "written": len(res.samples), "words": words,
            "no_sign": 100 * (count["unknown"] + count["fingerspelled"]) / words,
            "unknown": 100 * count["unknown"] / words, "fingerspelled": 100 * count["fingerspelled"] / words,
            "unsigned": 100 * count["function_words"] / words,
            "wer": wer([hyp.get(r["id"], []) for r in test], [r["glosses"] for r in test]),
            "hyps": [hyp.get(r["id"], []) for r in test],
            "matched_by": dict(rules.most_common())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("jsonl", type=Path)
    ap.add_argument("--test", type=int, default=642, help="records held out at the end (default 642)")
    ap.add_argument("--dev", action="store_true", help="hold out the 500 records before the test slice instead")
    ap.add_argument("--lang", default="dgs")
    ap.add_argument("--work", type=Path, default=None, help="folder for the artifacts (default: a temporary one)")
    args = ap.parse_args()
    records = [json.loads(line) for line in args.jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
    pool, test = records[:-args.test], records[-args.test:]
    if args.dev:
        pool, test = pool[:-500], pool[-500:]
    work = args.work or Path(tempfile.mkdtemp(prefix="slp-dict-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(f"{len(pool)} sentences for the dictionary, {len(test)} held out ({'dev' if args.dev else 'test'})")
    start = time.perf_counter()
    train = work / "train.jsonl"
    train.write_text("".join(json.dumps({**r, "lang": args.lang}, ensure_ascii=False) + "\n" for r in pool),
                     encoding="utf-8")
    slp("synth", "--annotations", train, "-o", work / "raw.h5")
    slp("normalize", work / "raw.h5", "-o", work / "corpus.h5")
    (work / "raw.h5").unlink()
    slp("synth", "--alphabet", "--langs", args.lang, "-o", work / "letters.h5")
    dictionaries = {
        "rules only (--no-word-table)": ("--no-word-table",),
        "learnt table + rules": (),
        "learnt table + rules + manual alphabet": ("--alphabet", work / "letters.h5"),
    }
    rows = {}
    for i, (name, extra) in enumerate(dictionaries.items()):
        out = work / f"dict{i}.h5"
        slp("dict", "build", work / "corpus.h5", "-o", out, *extra)
        rows[name] = evaluate(test, out, args.lang)
    print(f"pipeline {time.perf_counter() - start:.0f} s; {rows[name]['words']} held-out words in "
          f"{len(test)} sentences\n")
    print("| dictionary | no sign | of which fingerspelled | skipped as unsigned | sentences signed | gloss WER |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['no_sign']:.1f} % | {r['fingerspelled']:.1f} % | {r['unsigned']:.1f} % | "
              f"{r['written']}/{r['sentences']} | {r['wer']:.1f} |")
    print()
    for name, r in rows.items():
        print(f"{name}: words matched by {r['matched_by']}")
    if args.work is None:
        for f in work.iterdir():
            f.unlink()
        work.rmdir()


if __name__ == "__main__":
    main()
