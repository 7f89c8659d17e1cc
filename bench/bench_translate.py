"""Back-translation: decoding throughput (greedy vs beam), and optionally the quality table.

    python bench/bench_translate.py [--model SLT_DIR --data CORPUS.h5] [--beams 1,4] [--batch-size 32]
    python bench/bench_translate.py --quality [--preset demo] [--sentences 1200] [--steps 600,300,900] [--beam 4]
    python bench/bench_translate.py --pseudo-glosses PHOENIX.jsonl

Throughput: sequences per second of `slp_cli.translate.translate_samples` on CPU over the
synthetic corpus' dev and test poses, for each beam size, with the mean output length (a model
that stops early decodes faster, so lengths are printed beside the speed). Without --model a
SLT (--model-preset, `tiny` by default) is trained on the synthetic corpus first (--steps, last
value).

--quality trains, on a synthetic corpus (one language), the paper's recipe (pre-training with
lambda 1 and with lambda 0, then the two fine-tuning stages) and the no-pre-training baseline
(finetune-all from scratch for as many steps as the two fine-tuning stages together), and prints
back-translation BLEU-1..4 / chrF / ROUGE-L on the test split (beam 4 by default, --beam) for:
ground-truth poses, the dictionary-concatenation baseline (`slp dict build` on the train split +
`slp generate --method concat`), shuffled ground truth (another sentence's poses) and noise, and
the gloss WER of the CTC gloss head (the synthetic corpus has glosses); the dev BLEU-4 the
fine-tuning runs selected their weights by is printed with each run.

--pseudo-glosses reads sentences (a JSON-lines file with "text" and "lang", e.g. PHOENIX-2014T's
train split) and prints the pseudo-gloss vocabulary size of slp's tagger (HanTa for German)
against the lemmatised non-stopwords used before, and the paper's figure (HFA-SLT, 4.2: 2,322).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

import slp_cli  # noqa: E402
from common import machine  # noqa: E402
from slp_cli.artifacts import load  # noqa: E402
from slp_cli.data.synth import synthesize  # noqa: E402
from slp_cli.normalize import normalize_samples  # noqa: E402
from slp_cli.score import text_scores  # noqa: E402
from slp_cli.training import TrainOptions, train  # noqa: E402
from slp_cli.metrics.text import wer  # noqa: E402
from slp_cli.models import DecodingStep  # noqa: E402
from slp_cli.translate import back_translate, load_translator, translate_samples  # noqa: E402

KEYS = ("bleu1", "bleu2", "bleu3", "bleu4", "chrf", "rouge_l")


def make_corpus(folder: Path, lang: str, preset: str, sentences: int) -> Path:
    path = folder / f"{lang}.norm.h5"
    slp_cli.save(normalize_samples(synthesize([lang], preset=preset, sentences=sentences, seed=1)), path, fps=25,
                 normalized=True)
    return path


def run_stage(corpus: Path, out: Path, stage: str, steps: int, init: Path | None = None, preset: str = "tiny",
              **over) -> Path:
    t = time.perf_counter()
    train("slt", TrainOptions(output=out, data=[corpus], init=init), preset=preset,
          overrides={"stage": stage, "max_steps": steps, "eval_every": max(steps // 6, 1), **over})
    dev = dev_metrics(out)
    chosen = (f"best dev loss {min(dev['loss']):.3f}" if stage == "pretrain" else
              f"dev BLEU-4 per evaluation {', '.join(f'{b:.1f}' for b in dev['bleu4'])} (kept the best)")
    print(f"  {out.name}: {stage} {steps} steps, {chosen}, {time.perf_counter() - t:.0f} s", flush=True)
    return out


def dev_metrics(run_dir: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    with open(run_dir / "metrics.csv") as f:
        for r in csv.DictReader(f):
            if r["split"] == "dev":
                out.setdefault(r["name"], []).append(float(r["value"]))
    return out


def throughput(model_dir: Path, samples: list, beams: list[int], batch_size: int) -> None:
    model = load_translator(model_dir, "cpu")
    translate_samples(model, samples[:batch_size], beam=1, batch_size=batch_size)  # warm-up
    print(f"\n{len(samples)} sequences, {np.mean([s.num_frames for s in samples]):.0f} frames on average, "
          f"{model.num_parameters():,} parameters, batch {batch_size}, {torch.get_num_threads()} thread(s)")
    print("| decoding | sequences/s | mean output words | time relative to cached greedy |\n|---|---:|---:|---:|")
    base = None
    for beam in beams:
        name = "greedy" if beam == 1 else f"beam {beam}"
        t = time.perf_counter()
        texts, _ = translate_samples(model, samples, beam=beam, batch_size=batch_size)
        rate = len(samples) / (time.perf_counter() - t)
        base = base or rate
        words = np.mean([len(x.split()) for x in texts])
        print(f"| {name}, key/value cache | {rate:.1f} | {words:.1f} | {base / rate:.2f}x |")
        # the obvious alternative: recompute the whole prefix at every step
        model.decoding_step = lambda mem, mv: DecodingStep(lambda ids: model.logits(mem, mv, ids)[:, -1])
        t = time.perf_counter()
        again, _ = translate_samples(model, samples, beam=beam, batch_size=batch_size)
        slow = len(samples) / (time.perf_counter() - t)
        del model.decoding_step
        same = sum(a == b for a, b in zip(again, texts))
        print(f"| {name}, prefix recomputed | {slow:.1f} | {words:.1f} | {base / slow:.2f}x "
              f"(same text for {same}/{len(texts)}) |")


def scores_of(model_dir: Path, test: list, poses: list, beam: int = 4) -> dict:
    model = load_translator(model_dir, "cpu")
    samples = [slp_cli.Sample(id=s.id, pose=p, lang=s.lang) for s, p in zip(test, poses)]
    bt = back_translate(model, samples, beam=beam)
    out = text_scores([(h, s.text, s.lang) for h, s in zip(bt.texts, test)])
    out["gloss_wer"] = wer(bt.glosses, [s.glosses for s in test]) if bt.glosses is not None else float("nan")
    return out


def quality(args, root: Path) -> None:
    from slp_cli import dictionary, generate

    corpus = make_corpus(root, args.lang, args.preset, args.sentences)
    pre_steps, head_steps, all_steps = args.steps
    runs = {}
    print("training", flush=True)
    for lam in (1.0, 0.0):
        tag = f"lambda{lam:g}"
        pre = run_stage(corpus, root / f"pre-{tag}", "pretrain", pre_steps, pg_weight=lam)
        head = run_stage(corpus, root / f"head-{tag}", "finetune-head", head_steps, init=pre)
        runs[f"pre-training, lambda {lam:g}"] = run_stage(corpus, root / f"all-{tag}", "finetune-all", all_steps,
                                                          init=head)
    runs["no pre-training"] = run_stage(corpus, root / "scratch", "finetune-all", head_steps + all_steps)

    test = load(corpus, split="test").samples
    rng = np.random.default_rng(0)
    dict_path = dictionary.run(corpus, root / "dictionary.h5", split="train")
    gen_path = root / "concat.h5"
    generate.run(gen_path, texts_from=corpus, split="test", method="concat", dictionary=dict_path)
    concat = {s.id: s.pose for s in load(gen_path).samples}
    missing = [s.id for s in test if s.id not in concat]
    variants = {
        "ground truth": [s.pose for s in test],
        "dictionary concatenation": [concat.get(s.id, np.full((1, 178, 3), np.nan, np.float32)) for s in test],
        "shuffled ground truth": [test[i].pose for i in np.roll(np.arange(len(test)), 1)],
        "noise": [rng.normal(scale=0.3, size=s.pose.shape).astype(np.float32) for s in test],
    }
    print(f"\ntest split: {len(test)} sentences ({args.lang}, synthetic preset {args.preset!r}, "
          f"{args.sentences} sentences); concat could not sign {len(missing)}; beam {args.beam}")
    print("| SLT model | poses | BLEU-1 | BLEU-2 | BLEU-3 | BLEU-4 | chrF | ROUGE-L | gloss WER |")
    print("|---|---|" + "---:|" * (len(KEYS) + 1))
    for run_name, model_dir in runs.items():
        for name, poses in variants.items():
            if run_name != "pre-training, lambda 1" and name not in ("ground truth",):
                continue
            sc = scores_of(model_dir, test, poses, args.beam)
            print(f"| {run_name} | {name} | " + " | ".join(f"{sc[k]:.2f}" for k in (*KEYS, "gloss_wer")) + " |",
                  flush=True)


def pseudo_gloss_vocabulary(path: Path) -> None:
    """Pseudo-gloss vocabulary of real sentences: slp's tagger vs the stopword filter used before."""
    from slp_cli.text import pseudo_gloss as pg
    from slp_cli.text.lemmas import is_function_word, lemmatize, tokenize

    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    pairs = [(r["text"], r.get("lang", "dgs")) for r in rows]
    t = time.process_time()  # CPU time: the machine may be shared
    tagged = pg.vocabulary(pairs)
    seconds = time.process_time() - t
    before = {lemmatize(w, lang) for text, lang in pairs for w in tokenize(text, lang) if not is_function_word(w, lang)}
    words = {w for text, lang in pairs for w in tokenize(text, lang)}
    print(f"\n{len(pairs)} sentences of {path.name}, {len(words):,} distinct words")
    print("| pseudo-glosses | vocabulary |\n|---|---:|")
    print("| HFA-SLT, section 4.2 (its POS filter, PHOENIX-2014T train) | 2,322 |")
    print(f"| slp: {pg.method(pairs[0][1])} ({'HanTa' if pg.method(pairs[0][1]) == 'pos' else 'stopwords'}), "
          f"paper's classes | {len(tagged):,} |")
    print(f"| before: lemmatised non-stopwords (simplemma) | {len(before):,} |")
    print(f"tagging took {seconds:.1f} s of CPU ({1000 * seconds / len(pairs):.2f} ms per sentence)")
    for text in ("das wetter wird nicht schön , die sonne scheint wegen dieser gewitter kaum",):
        old = [lemmatize(w, "dgs") for w in tokenize(text, "dgs") if not is_function_word(w, "dgs")]
        print(f"'{text}'\n  slp: {pg.pseudo_glosses(text, 'dgs')}\n  before: {old}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="A fine-tuned SLT run (default: train a tiny one first).")
    ap.add_argument("--data", type=Path, help="Normalized artifact whose dev and test poses are translated "
                    "(default: a synthetic corpus, --lang, --preset, --sentences).")
    ap.add_argument("--beams", default="1,4", help="Comma-separated beam sizes (1 = greedy).")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads.")
    ap.add_argument("--quality", action="store_true", help="Train the recipe and baselines; print BLEU table.")
    ap.add_argument("--model-preset", default="tiny", help="SLT preset of the model trained for the throughput "
                    "figures (tiny, or default: the paper's sizes).")
    ap.add_argument("--lang", default="dgs")
    ap.add_argument("--preset", default="tiny", help="Synthetic corpus preset (tiny, demo).")
    ap.add_argument("--sentences", type=int, default=300)
    ap.add_argument("--steps", default="100,60,120", help="Steps of pretrain, finetune-head, finetune-all.")
    ap.add_argument("--beam", type=int, default=4, help="Beam of the --quality table (slp's default 4).")
    ap.add_argument("--pseudo-glosses", type=Path, help="JSON-lines sentences: print their pseudo-gloss vocabulary.")
    args = ap.parse_args()
    args.steps = [int(x) for x in args.steps.split(",")]
    torch.set_num_threads(args.threads)
    print(f"# bench_translate — {machine()}, torch {torch.__version__}")
    if args.pseudo_glosses:
        pseudo_gloss_vocabulary(args.pseudo_glosses)
        return
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        if args.quality:
            quality(args, root)
            return
        corpus = args.data or make_corpus(root, args.lang, args.preset, args.sentences)
        model = args.model
        if model is None:
            print(f"training an SLT ({args.model_preset} preset)", flush=True)
            model = run_stage(corpus, root / "slt", "finetune-all", args.steps[-1], preset=args.model_preset,
                              warmup_steps=min(args.steps[-1] // 10, 100))
        samples = [s for s in load(corpus).samples if s.split in ("dev", "test")]
        throughput(model, samples, [int(b) for b in args.beams.split(",")], args.batch_size)


if __name__ == "__main__":
    main()
