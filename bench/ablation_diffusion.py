"""Ablations of Text2Sign Diffusion on the synthetic corpus, after the paper's ablation directions:
with / without the aligner's semantic loss, the time-discounted weighting 1 - t/T against the
reversed t/T, and classifier-free guidance scales 1 / 2.5 / 7.5. Every variant is trained with the
same data, step budget and seeds, sampled with DDIM and scored on the test split by DTW-MJE (slp
protocol, shoulder widths), diversity (DTW-MJE between the samples of two seeds for the same
sentences) and back-translation BLEU-1 / BLEU-4 (signjoey convention) and chrF with a tiny SLT
back-translator (slp_cli/models/slt.py) trained here on the same corpus.

    python bench/ablation_diffusion.py [--out ablation-diffusion] [--sentences 300] [--steps 400]
        [--seeds 0 1 2] [--slt-steps 200] [--sampling-steps 50] [--prediction sample|epsilon]

The SignVAE, the aligner and the SLT are trained once (seed 0) and shared by every variant and
seed; the seeds vary the diffusion model's initialisation, data order and sampling noise. Runs go
to --out and are reused when re-run (several invocations with one seed each build up the table);
the table is printed as markdown and written with all figures to --out/ablation.json.
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

from bench_diffusion import make_corpus, mean_dtw, sign_split, stage, upstream  # noqa: E402
from common import machine  # noqa: E402

import slp_cli  # noqa: E402
from slp_cli.artifacts import Sample  # noqa: E402
from slp_cli.metrics.dtw import dtw_mje  # noqa: E402
from slp_cli.models import load_model  # noqa: E402
from slp_cli.score import backtranslate, score  # noqa: E402

# trained variants: name -> config overrides (the first is the paper's model)
TRAINED = {
    "semantic loss, discounted 1 - t/T (paper)": {},
    "semantic loss, reversed t/T": {"semantic_weighting": "reversed"},
    "no semantic loss": {"semantic_weighting": "none"},
}
GUIDANCE = (1.0, 2.5, 7.5)


TEXT = ("bleu1", "bleu4", "chrf")


def back_translation(poses: list[np.ndarray], test: list, corpus: Path, slt: Path, work: Path) -> tuple[dict, dict]:
    """(BLEU-1, BLEU-4 and chrF of the back-translated hypothesis, the same of the ground truth)."""
    hyp = [Sample(s.id, p, text=s.text, lang=s.lang, split="test") for p, s in zip(poses, test)]
    path = slp_cli.save(hyp, work / "hyp.h5", fps=25, normalized=True, normalization="neck-shoulder/frame")
    hyp_art, ref_art = slp_cli.load(path), slp_cli.load(corpus, split="test")
    bt = backtranslate(hyp_art, ref_art, slt, device="cpu")
    result = score(hyp_art, ref_art)
    return ({k: float(result["text"][k]) for k in TEXT}, {k: float(bt["ground_truth"][k]) for k in TEXT})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("ablation-diffusion"))
    ap.add_argument("--sentences", type=int, default=300)
    ap.add_argument("--steps", type=int, default=400, help="diffusion training steps per variant")
    ap.add_argument("--prediction", default=None, help="override the tiny preset's prediction (sample)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--slt-steps", type=int, default=200, help="steps of each of the SLT's three stages")
    ap.add_argument("--sampling-steps", type=int, default=50, help="DDIM steps")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    corpus = make_corpus(args.out, args.sentences)
    sv, al = upstream(args.out, corpus)
    slt = stage("slt", args.out / "slt", corpus, stage="all", max_steps=args.slt_steps,
                eval_every=args.slt_steps, checkpoint_every=args.slt_steps)
    test = [s for s in slp_cli.load(corpus) if s.split == "test"]
    results: dict[str, list[dict]] = {}
    gt_text = None
    for seed in args.seeds:
        for name, over in TRAINED.items():
            slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
            run = stage("diffusion", args.out / f"{slug}-s{seed}", corpus, seed=seed,
                        inputs={"tokenizer": sv, "aligner": al}, max_steps=args.steps,
                        eval_every=max(args.steps // 4, 1), checkpoint_every=args.steps, prediction=args.prediction,
                        **over)
            model = load_model(run, expect="diffusion")
            scales = GUIDANCE if not over else (None,)  # guidance scales on the paper's model
            for g in scales:
                poses, _ = sign_split(model, test, seed, steps=args.sampling_steps, guidance=g)
                label = name if g is None else f"{name}, guidance {g:g}"
                text, gt_text = back_translation(poses, test, corpus, slt, args.out)
                other, _ = sign_split(model, test, seed + 1000, steps=args.sampling_steps, guidance=g)
                spread = float(np.mean([dtw_mje(a, b) for a, b in zip(poses, other)]))
                results.setdefault(label, []).append({"seed": seed, "dtw_mje": mean_dtw(poses, test),
                                                      "diversity": spread, **text})
                print(f"seed {seed} {label}: DTW {results[label][-1]['dtw_mje']:.4f} BLEU-4 {text['bleu4']:.2f} "
                      f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    def cell(values: list[float], digits: int) -> str:
        return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}" if len(values) > 1 \
            else f"{values[0]:.{digits}f}"

    train_s = [s for s in slp_cli.load(corpus) if s.split == "train"]
    mean_pose = np.nanmean(np.concatenate([s.pose for s in train_s]), 0)
    base = mean_dtw([np.repeat(mean_pose[None], s.num_frames, 0) for s in test], test)
    lines = [f"Text2Sign Diffusion ablations: synthetic 'tiny' corpus ({args.sentences} DGS sentences, "
             f"{len(test)} test), `tiny` presets, {args.steps} diffusion steps per variant, DDIM "
             f"{args.sampling_steps}, mean ± std over seeds {args.seeds}; back-translation by a tiny SLT "
             f"({args.slt_steps} steps per stage); {machine()}", "",
             "| variant | DTW-MJE | diversity | BLEU-1 | BLEU-4 | chrF |", "|---|---:|---:|---:|---:|---:|"]
    for label, rows in results.items():
        lines.append(f"| {label} | {cell([r['dtw_mje'] for r in rows], 4)} | {cell([r['diversity'] for r in rows], 4)} | "
                     + " | ".join(cell([r[k] for r in rows], 2) for k in TEXT) + " |")
    lines.append("| ground-truth poses, back-translated | | | " + " | ".join(f"{gt_text[k]:.2f}" for k in TEXT) + " |")
    lines.append(f"| baseline: mean pose | {base:.4f} | | | | |")
    print("\n".join(lines))
    print(f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    (args.out / "ablation.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "variants": results, "ground_truth": gt_text,
         "mean_pose_dtw": base, "table": lines}, indent=2))


if __name__ == "__main__":
    main()
