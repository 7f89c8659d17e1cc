"""Ablations of the GLOS generator on the synthetic corpus, after GLOS's ablation tables: the TAC
condition vs AdaLN + FC (no local convolution) vs global cross-attention to the gloss sequence,
with vs without inter-part attention, and durations jittered by +-25 % at inference (the TAC run).
Every variant trains with the same seed, data, frozen VQ-VAE and step budget, generates the test
split from its reference glosses (the ground-truth-gloss setting: the text-to-gloss model is
another stage), and is scored by test DTW-MJE (slp protocol, shoulder widths) for all joints and
per articulator, back-translation BLEU-4 by a small SLT model trained here on the same corpus, and
the wrists' peak jerk; next to the mean pose, the VQ-VAE's reconstruction floor and the ground
truth through the same SLT.

    python bench/ablation_glos.py [--out ablation-glos] [--corpus-preset tiny] [--sentences 300]
        [--model-preset tiny] [--steps 800] [--vq-steps 1500] [--slt-steps 200] [--seeds 0 1 2]

Runs go to --out (re-running reuses finished runs); the table is printed as markdown and written
with all figures to --out/ablation.json. Gloss WER is that of the SLT's CTC gloss head (GLOS's
main metric), which trains because the synthetic corpus has glosses.
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
from slp_cli.artifacts import Sample  # noqa: E402
from slp_cli.data.synth import synthesize  # noqa: E402
from slp_cli.generate import Request, generate  # noqa: E402
from slp_cli.models import load_model  # noqa: E402
from slp_cli.normalize import normalize_samples  # noqa: E402
from slp_cli.score import backtranslate, score  # noqa: E402
from slp_cli.training import TrainOptions, train  # noqa: E402

SELECTIONS = ("all", "body", "right_hand", "left_hand", "face")
# name -> (training overrides, generation options); the first row is the paper's model.
VARIANTS = {
    "TAC + IPA (paper)": ({}, {}),
    "AdaLN + FC (no local conv)": ({"condition": "adaln-fc"}, {}),
    "global cross-attention": ({"condition": "cross-attention"}, {}),
    "TAC without IPA": ({"ipa": False}, {}),
    "TAC + IPA, durations +-25 %": ({}, {"duration_jitter": 0.25}),
}
NORM = "neck-shoulder/frame"


def scores(samples: list[Sample], corpus: Path, work: Path, slt: Path | None) -> dict:
    path = slp_cli.save(samples, work / "hyp.h5", fps=25, normalized=True, normalization=NORM)
    hyp, ref = slp_cli.load(path), slp_cli.load(corpus, split="test")
    gt_bleu = gloss_wer = gt_gloss_wer = None
    if slt is not None:
        bt = backtranslate(hyp, ref, slt, device="cpu")
        gt_bleu = bt["ground_truth"].get("bleu4")
        if "gloss_wer" in bt:
            gloss_wer, gt_gloss_wer = bt["gloss_wer"]["hyp"]["wer"], bt["gloss_wer"]["ground_truth"]["wer"]
    r = score(hyp, ref)
    out = {sel: r["pose"]["dtw_mje"][sel]["value"] for sel in SELECTIONS}
    for k in ("bleu1", "bleu4", "chrf", "rouge_l"):
        out[k] = r.get("text", {}).get(k, float("nan"))
    out["gt_bleu4"] = gt_bleu
    out["gloss_wer"], out["gt_gloss_wer"] = gloss_wer, gt_gloss_wer
    out["jerk"] = r.get("smoothness", {}).get("peak_jerk", {}).get("value", float("nan"))
    out["ref_jerk"] = r.get("smoothness", {}).get("ref_peak_jerk", {}).get("value", float("nan"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("ablation-glos"))
    ap.add_argument("--corpus-preset", default="tiny")
    ap.add_argument("--langs", default="dgs")
    ap.add_argument("--sentences", type=int, default=300)
    ap.add_argument("--model-preset", default="tiny")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--vq-steps", type=int, default=1500, help="tokenizer steps (300 leave a reconstruction floor of "
                    "BLEU-4 13 against 57 for the ground truth: back-translation then tells variants apart no more)")
    ap.add_argument("--slt-steps", type=int, default=200, help="steps of each of the SLT's three stages")
    ap.add_argument("--no-slt", action="store_true", help="skip back-translation")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--draws", type=int, default=1, help="generations per trained run (sampling seeds), averaged: "
                    "the sampler's own noise moves BLEU-4 by several points on 23 sentences")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    corpus = args.out / "corpus.h5"
    t0 = time.perf_counter()
    if not corpus.exists():
        samples = normalize_samples(synthesize(langs=args.langs.split(","), preset=args.corpus_preset,
                                               sentences=args.sentences, seed=0))
        slp_cli.save(samples, corpus, fps=25, normalized=True, normalization=NORM)
    vq = args.out / "vqvae"  # one frozen tokenizer for every variant and seed (the seeds vary the generator)
    if not (vq / "model.pt").exists():
        train("vqvae", TrainOptions(output=vq, data=[corpus]), preset="tiny",
              overrides={"max_steps": args.vq_steps, "eval_every": args.vq_steps})
    slt = None if args.no_slt else args.out / "slt"
    if slt is not None and not (slt / "model.pt").exists():
        train("slt", TrainOptions(output=slt, data=[corpus]), preset="tiny",
              overrides={"stage": "all", "max_steps": args.slt_steps, "eval_every": args.slt_steps})
    print(f"corpus, VQ-VAE and SLT ready ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    test = slp_cli.load(corpus, split="test").samples
    requests = [Request(s.id, s.text, s.lang, s.split) for s in test]
    variants = {k: v for k, v in VARIANTS.items() if not args.only or k in args.only}
    results: dict[str, list[dict]] = {k: [] for k in variants}
    for seed in args.seeds:
        for name, (over, gen_opts) in variants.items():
            slug = "".join(c if c.isalnum() else "-" for c in str(sorted(over.items())).lower()).strip("-") or "tac"
            run = args.out / f"glos-{slug}-s{seed}"
            if not (run / "model.pt").exists():
                train("glos", TrainOptions(output=run, data=[corpus], seed=seed, inputs={"tokenizer": vq}),
                      preset=args.model_preset, overrides={"max_steps": args.steps, "eval_every": args.steps // 4,
                                                           "checkpoint_every": args.steps, **over})
            draws = []
            for draw in range(args.draws):
                hyp = generate(requests, "model", model=run, device="cpu", seed=1000 * draw + seed,
                               glosses_from=str(corpus), **gen_opts).samples
                draws.append(scores(hyp, corpus, args.out, slt))
            results[name].append({k: float(np.mean([d[k] for d in draws])) if draws[0][k] is not None else None
                                  for k in draws[0]})
            print(f"seed {seed} {name}: DTW {results[name][-1]['all']:.4f} BLEU-4 {results[name][-1]['bleu4']:.2f} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    train_s = slp_cli.load(corpus, split="train").samples
    mean_pose = np.nanmean(np.concatenate([s.pose for s in train_s]), 0)
    tok = load_model(vq)
    refs = {
        "baseline: mean pose": [Sample(s.id, np.repeat(mean_pose[None], s.num_frames, 0)) for s in test],
        "VQ-VAE reconstruction floor": [Sample(s.id, tok.reconstruct(s.pose)) for s in test],
        "ground truth": [Sample(s.id, s.pose) for s in test],
    }
    base = {name: scores(samples, corpus, args.out, slt) for name, samples in refs.items()}

    def cell(values, col: str = "all") -> str:
        v = [x for x in values if x is not None and np.isfinite(x)]
        if not v:
            return "-"
        f = 4 if col in SELECTIONS else (1 if col in ("bleu4", "rouge_l", "gloss_wer") else 0)
        return f"{np.mean(v):.{f}f} +- {np.std(v):.{f}f}" if len(v) > 1 else f"{v[0]:.{f}f}"

    cols = [*SELECTIONS, "bleu4", "rouge_l", "gloss_wer", "jerk"]
    header = ("| variant | DTW-MJE " + " | ".join(SELECTIONS) + " | BLEU-4 | ROUGE-L | gloss WER | peak jerk |\n|---|"
              + "---:|" * len(cols))
    lines = [f"GLOS ablations: synthetic '{args.corpus_preset}' corpus ({args.langs}, {args.sentences} sentences, "
             f"{len(test)} test), model preset '{args.model_preset}', {args.steps} steps, one VQ-VAE ({args.vq_steps} "
             f"steps), SLT {'none' if slt is None else f'3 x {args.slt_steps} steps'}, reference glosses, "
             f"{args.draws} generation(s) per run averaged, "
             f"mean +- std over seeds {args.seeds}; {machine()}; {time.perf_counter() - t0:.0f} s", "", header]
    for name, rows in results.items():
        lines.append(f"| {name} | " + " | ".join(cell([r[c] for r in rows], c) for c in cols) + " |")
    for name, row in base.items():
        lines.append(f"| {name} | " + " | ".join(cell([row[c]], c) for c in cols) + " |")
    print("\n".join(lines))
    (args.out / "ablation.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "variants": results, "references": base,
         "table": lines}, indent=2, default=float))


if __name__ == "__main__":
    main()
