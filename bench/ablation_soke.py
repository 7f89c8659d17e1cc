"""Ablations of the SOKE generator on the synthetic corpus, after SOKE's table 2 (decoding x
retrieval), table S7 (lambda 0.2 / 1/3 / 0.4) and table 3 (multilingual vs one language).

One multilingual synthetic corpus (``--langs``), one tiny VQ-VAE and one sign dictionary
(`slp dict build` of the training split) shared by every variant; every variant is trained with
the same seeds, data and step budget, and scored on the test split by DTW-MJE (slp protocol,
shoulder widths) for all joints and per articulator, and by back-translation BLEU-4 with a tiny
SLT model trained here on the ground-truth poses (its BLEU-4 on the ground truth is printed: it
bounds what a generated sequence can score). The one-language row is trained on the first
language only and compared on that language's test sentences with the multilingual model.

    python bench/ablation_soke.py [--out ablation-soke] [--langs dgs,asl,csl] [--sentences 120]
        [--steps 600] [--vq-steps 300] [--slt-steps 300] [--seeds 0 1 2] [--full]

``--full`` is the larger run (demo-sized corpus, 3,000 steps, the demo preset): hours on a CPU.
Runs go to --out (re-running reuses finished runs); the tables are printed as markdown and
written with all figures to --out/ablation.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

import slp_cli  # noqa: E402
from slp_cli.data.synth import synthesize  # noqa: E402
from slp_cli.dictionary import run as build_dictionary  # noqa: E402
from slp_cli.metrics.dtw import dtw_scores  # noqa: E402
from slp_cli.models import load_model  # noqa: E402
from slp_cli.normalize import normalize_samples  # noqa: E402
from slp_cli.score import text_scores  # noqa: E402
from slp_cli.training import TrainOptions, train  # noqa: E402
from slp_cli.translate import translate_samples  # noqa: E402

SELECTIONS = ("all", "body", "left_hand", "right_hand", "face")
# name -> (config overrides, one language only). The first row is the paper's final model.
VARIANTS = {
    "multihead + retrieval (paper)": ({}, False),
    "multihead": ({"retrieval": False}, False),
    "sequential + retrieval": ({"decoding": "sequential"}, False),
    "sequential": ({"decoding": "sequential", "retrieval": False}, False),
    "parallel + retrieval": ({"decoding": "parallel"}, False),
    "parallel": ({"decoding": "parallel", "retrieval": False}, False),
    "lambda 0.2": ({"mix": 0.2}, False),
    "lambda 0.4 (released code)": ({"mix": 0.4}, False),
    "one language": ({}, True),
}


def scores(model, test: list, slt) -> dict:
    """Mean DTW-MJE per selection and back-translation BLEU-4 of ``model`` on ``test``."""
    signed = model.sign([s.text for s in test], [s.lang for s in test])
    poses = [x.pose for x in signed]
    dtw = {sel: float(np.nanmean([dtw_scores(p, s.pose)["dtw_mje"][sel] for p, s in zip(poses, test)]))
           for sel in SELECTIONS}
    out = {"dtw": dtw}
    if slt is not None:
        hyp = [slp_cli.Sample(id=s.id, pose=p, text=s.text, lang=s.lang) for p, s in zip(poses, test)]
        texts, _ = translate_samples(slt, hyp)
        out["bleu4"] = text_scores([(t, s.text, s.lang) for t, s in zip(texts, test)])["bleu4"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("ablation-soke"))
    ap.add_argument("--langs", default="dgs,asl,csl")
    ap.add_argument("--sentences", type=int, default=120, help="per language (tiny corpus preset)")
    ap.add_argument("--corpus-preset", default="tiny")
    ap.add_argument("--model-preset", default="tiny")
    ap.add_argument("--steps", type=int, default=600, help="generator steps (200: the first, smaller run of RESULTS.md)")
    ap.add_argument("--vq-steps", type=int, default=300)
    ap.add_argument("--slt-steps", type=int, default=300, help="0: no back-translation")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants", nargs="*", help="names of VARIANTS to run (default all)")
    ap.add_argument("--full", action="store_true", help="demo-sized corpus and model, 3,000 steps (hours on CPU)")
    args = ap.parse_args()
    if args.full:
        args.corpus_preset, args.model_preset, args.sentences, args.steps = "demo", "demo", 360, 3000
        args.vq_steps, args.slt_steps = 3000, 2000
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    langs = args.langs.split(",")
    corpus = out / "corpus.h5"
    if not corpus.exists():
        samples = normalize_samples(synthesize(langs=langs, preset=args.corpus_preset, sentences=args.sentences,
                                               seed=0))
        slp_cli.save(samples, corpus, fps=25, normalized=True, normalization="neck-shoulder/frame")
    one = out / f"corpus-{langs[0]}.h5"
    if not one.exists():
        slp_cli.save([s for s in slp_cli.load(corpus).samples if s.lang == langs[0]], one, fps=25, normalized=True,
                     normalization="neck-shoulder/frame")
    vq = out / "vq"
    if not (vq / "model.pt").exists():
        train("vqvae", TrainOptions(output=vq, data=[corpus]), preset="tiny", overrides={"max_steps": args.vq_steps})
    dictionary = out / "dict.h5"
    if not dictionary.exists():
        build_dictionary(corpus, dictionary)
    slt = None
    if args.slt_steps:
        if not (out / "slt" / "model.pt").exists():
            train("slt", TrainOptions(output=out / "slt", data=[corpus]), preset="tiny",
                  overrides={"stage": "finetune-all", "max_steps": args.slt_steps})
        slt = load_model(out / "slt")
    test = slp_cli.load(corpus, split="test").samples
    test_one = [s for s in test if s.lang == langs[0]]
    results: dict = {}
    gt = {}
    if slt is not None:
        texts, _ = translate_samples(slt, test)
        gt["bleu4"] = text_scores([(t, s.text, s.lang) for t, s in zip(texts, test)])["bleu4"]
        texts, _ = translate_samples(slt, test_one)
        gt["bleu4_one"] = text_scores([(t, s.text, s.lang) for t, s in zip(texts, test_one)])["bleu4"]
    train_s = [s for s in slp_cli.load(corpus).samples if s.split == "train"]
    mean = np.nanmean(np.concatenate([s.pose for s in train_s]), 0)
    base = {sel: float(np.nanmean([dtw_scores(np.repeat(mean[None], s.num_frames, 0), s.pose)["dtw_mje"][sel]
                                   for s in test])) for sel in SELECTIONS}
    names = args.variants or list(VARIANTS)
    for name in names:
        over, single = VARIANTS[name]
        for seed in args.seeds:
            run = out / "runs" / f"{name.split(' (')[0].replace(' + ', '+').replace(' ', '_')}-seed{seed}"
            if not (run / "model.pt").exists():
                train("soke", TrainOptions(output=run, data=[one if single else corpus], seed=seed,
                                           inputs={"tokenizer": vq, "dictionary": dictionary}),
                      preset=args.model_preset, overrides={"max_steps": args.steps, **over})
            model = load_model(run)
            res = {"test": scores(model, test_one if single else test, slt)}
            if name == names[0] and "one language" in names:
                res["test_one"] = scores(model, test_one, slt)
            results.setdefault(name, []).append(res)
    summary = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}, "mean_pose": base,
               "ground_truth_bleu4": gt, "results": results, "seconds": time.perf_counter() - t_start}
    (out / "ablation.json").write_text(json.dumps(summary, indent=1))

    def cell(runs, key, sel=None):
        vals = [r[key]["dtw"][sel] if sel else r[key].get("bleu4", float("nan")) for r in runs]
        return f"{np.mean(vals):.3f} ± {np.std(vals):.3f}" if sel else f"{np.mean(vals):.2f} ± {np.std(vals):.2f}"

    print(f"machine: {machine()}; corpus {args.corpus_preset} x {args.sentences} sentences x {len(langs)} languages "
          f"({len(test)} test); model preset {args.model_preset}, {args.steps} steps; seeds {args.seeds}; "
          f"{summary['seconds']:.0f} s\n")
    print("| variant | DTW-MJE all | body | left hand | right hand | face | B-T BLEU-4 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("| mean pose | " + " | ".join(f"{base[s]:.3f}" for s in SELECTIONS) + " | |")
    if gt:
        print(f"| ground truth | | | | | | {gt['bleu4']:.2f} |")
    for name in names:
        if VARIANTS[name][1]:
            continue
        runs = results[name]
        print(f"| {name} | " + " | ".join(cell(runs, "test", s) for s in SELECTIONS) + f" | {cell(runs, 'test')} |")
    if "one language" in names and names[0] != "one language":
        print(f"\n{langs[0]} test sentences only:\n")
        print("| training data | DTW-MJE all | body | left hand | right hand | face | B-T BLEU-4 |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        print(f"| {langs[0]} only | " + " | ".join(cell(results['one language'], 'test', s) for s in SELECTIONS)
              + f" | {cell(results['one language'], 'test')} |")
        print(f"| {'+'.join(langs)} (multilingual) | "
              + " | ".join(cell(results[names[0]], 'test_one', s) for s in SELECTIONS)
              + f" | {cell(results[names[0]], 'test_one')} |")
        if gt:
            print(f"| ground truth | | | | | | {gt['bleu4_one']:.2f} |")


if __name__ == "__main__":
    main()
