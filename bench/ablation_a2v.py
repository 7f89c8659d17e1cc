"""Ablations of the A2V-SLP generator on the synthetic corpus in the paper's setting (A2V-SLP,
sections 4.4.1-4.4.3, tables 1-6), scored on the dev split (the paper's ablations are dev
figures) by DTW-MJE (slp protocol, shoulder widths; all joints and the hands) and by
back-translation BLEU-4 / BLEU-1 with a tiny SLT trained here on the same corpus (the paper's
back-translator is SLRTP 2025's).

Tables 1-4 run as the paper ran them: fixed L1 weights (14, 10, 2) for right hand, left hand,
face (``dynamic_hands`` off) and no KL phase (phase 1 only). The groups (``--tables``):

* ``2``: gloss attention with learned offsets (GASLT, the default ``local``) vs the fixed band
  vs global self-attention, each with the t/T position feature on and off (it is not in the
  paper; with local attention alone a frame cannot tell where in its sentence it is);
* ``3``: window N = 5, 7 (learned offsets);
* ``4``: mean and attention queries (q = 3), weighted local+global fusion;
* ``1``: entangled VAE (one weight for all latent dims);
* ``5``: dynamic hand weighting (base (3.5, 2.5), s_max 4) against the fixed (14, 10);
* ``6``: + the KL phase (phase 2 from the dynamic run's best weights, ``--kl-steps``).

    python bench/ablation_a2v.py [--out ablation-a2v] [--tables 2] [--sentences 300] [--steps 1500]
        [--kl-steps 500] [--vae-steps 1000] [--slt-steps 300 400 400] [--seeds 0 1 2] [--full]

Runs go to --out (re-running reuses finished runs: delete a run directory to redo it; the table
covers every finished run of the seeds asked for); the table is printed as markdown and written
with all figures to --out/ablation.json. ``--full`` is the paper-sized run (default presets,
the demo-size corpus; hours on a GPU).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

import slp_cli  # noqa: E402
from slp_cli.artifacts import Sample, read_header  # noqa: E402
from slp_cli.errors import SlpError  # noqa: E402
from slp_cli.data.synth import synthesize  # noqa: E402
from slp_cli.generate import Request, generate  # noqa: E402
from slp_cli.normalize import normalize_samples  # noqa: E402
from slp_cli.score import backtranslate, score  # noqa: E402
from slp_cli.training import TrainOptions, train  # noqa: E402

FIXED = {"dynamic_hands": False}  # tables 1-4: fixed (14, 10, 2), phase 1 only
# name -> (table, generator config overrides, VAE kind, the run phase 2 starts from or None)
VARIANTS = {
    "learned offsets N=3 (paper)": ("2", {**FIXED}, "disentangled", None),
    "band N=3": ("2", {**FIXED, "attention": "band"}, "disentangled", None),
    "global self-attention": ("2", {**FIXED, "attention": "global"}, "disentangled", None),
    "learned offsets N=3, no t/T": ("2", {**FIXED, "relative_position": False}, "disentangled", None),
    "band N=3, no t/T": ("2", {**FIXED, "attention": "band", "relative_position": False}, "disentangled", None),
    "global, no t/T": ("2", {**FIXED, "attention": "global", "relative_position": False}, "disentangled", None),
    "learned offsets N=5": ("3", {**FIXED, "window": 5}, "disentangled", None),
    "learned offsets N=7": ("3", {**FIXED, "window": 7}, "disentangled", None),
    "mean query q=3": ("4", {**FIXED, "query": "mean"}, "disentangled", None),
    "attention query q=3": ("4", {**FIXED, "query": "attention"}, "disentangled", None),
    "weighted local+global": ("4", {**FIXED, "attention": "local+global"}, "disentangled", None),
    "entangled VAE": ("1", {**FIXED}, "entangled", None),
    "dynamic hands (3.5, 2.5) x s<=4": ("5", {}, "disentangled", None),
    "dynamic hands + KL phase": ("6", {"phase": "kl"}, "disentangled", "dynamic hands (3.5, 2.5) x s<=4"),
}
NEEDS = {"6": "5"}  # a table whose runs start from another table's


def slug(name: str) -> str:
    return re.sub("-+", "-", "".join(c if c.isalnum() else "-" for c in name.lower())).strip("-")


def scores(hyp: list[Sample], corpus: Path, work: Path, fps: float, slt: Path) -> dict[str, float]:
    """Dev DTW-MJE (all joints, hands) and back-translation BLEU through the `slp score` path."""
    path = slp_cli.save(hyp, work / "hyp.h5", fps=fps, normalized=True)
    h, ref = slp_cli.load(path), slp_cli.load(corpus, split="dev")
    try:
        bt = backtranslate(h, ref, slt, device="cpu")
    except SlpError as e:  # e.g. an undertrained generator's poses at another scale than the SLT's
        print(f"  no back-translation: {e}", file=sys.stderr)
        bt = None
    result = score(h, ref)
    dtw = result["pose"]["dtw_mje"]
    out = {"dtw": dtw["all"]["value"], "hands": (dtw["right_hand"]["value"] + dtw["left_hand"]["value"]) / 2}
    text = result.get("text") if bt is not None else None
    out.update({k: text[k] if text else float("nan") for k in ("bleu4", "bleu1")})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("ablation-a2v"))
    ap.add_argument("--tables", nargs="+", default=["2"], help="groups of variants: 1 2 3 4 5 6 (see above)")
    ap.add_argument("--only", nargs="*", default=None, help="run only these variants (names as in the table)")
    ap.add_argument("--corpus-preset", default="tiny")
    ap.add_argument("--langs", default="dgs")
    ap.add_argument("--sentences", type=int, default=300)
    ap.add_argument("--model-preset", default="tiny")
    ap.add_argument("--steps", type=int, default=1500, help="phase-1 steps of every variant")
    ap.add_argument("--kl-steps", type=int, default=500, help="phase-2 steps (table 6)")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--vae-steps", type=int, default=1000)
    ap.add_argument("--slt-steps", type=int, nargs=3, default=[300, 400, 400],
                    help="back-translator: pre-training, fine-tuning head, fine-tuning all")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for tiny models)")
    ap.add_argument("--full", action="store_true", help="paper-sized: default presets, demo-size corpus")
    args = ap.parse_args()
    if args.full:
        args.corpus_preset, args.sentences, args.model_preset = "demo", None, "default"
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    corpus = args.out / "corpus.h5"
    if not corpus.exists():
        samples = normalize_samples(synthesize(langs=args.langs.split(","), preset=args.corpus_preset,
                                               sentences=args.sentences, seed=0))
        slp_cli.save(samples, corpus, fps=25, normalized=True, normalization="neck-shoulder/frame")
    fps = read_header(corpus)["fps"]
    tables = set(args.tables) | {NEEDS[t] for t in args.tables if t in NEEDS}
    variants = {k: v for k, v in VARIANTS.items() if v[0] in tables and (not args.only or k in args.only)}
    common = {"eval_every": args.eval_every, "checkpoint_every": 100000, "patience": 0}
    t0 = time.perf_counter()
    slt = args.out / "slt"  # one back-translator for every variant, trained on the ground truth
    if not (slt / "model.pt").exists():
        for stage, steps in zip(("pretrain", "finetune-head", "finetune-all"), args.slt_steps):
            out = slt if stage == "finetune-all" else args.out / f"slt-{stage}"
            if not (out / "model.pt").exists():
                train("slt", TrainOptions(output=out, data=[corpus], init=prev if stage != "pretrain" else None),
                      preset="tiny", overrides={"stage": stage, "max_steps": steps, "eval_every": steps})
            prev = out
    dev = slp_cli.load(corpus, split="dev")
    gt = backtranslate(dev, slp_cli.load(corpus, split="dev"), slt, device="cpu")["ground_truth"]
    results: dict[str, list[dict]] = {k: [] for k in variants}
    for seed in args.seeds:
        vaes = {}
        for kind in sorted({v[2] for v in variants.values()}):
            vaes[kind] = args.out / f"vae-{kind}-s{seed}"
            if not (vaes[kind] / "model.pt").exists():
                train("vae", TrainOptions(output=vaes[kind], data=[corpus], seed=seed),
                      preset="tiny", overrides={"max_steps": args.vae_steps, "entangled": kind == "entangled"})
        for name, (_, over, kind, start) in variants.items():
            run = args.out / f"gen-{slug(name)}-s{seed}"
            if not (run / "model.pt").exists():
                if start is None:
                    opts = TrainOptions(output=run, data=[corpus], seed=seed, inputs={"tokenizer": vaes[kind]})
                    over = {**common, "max_steps": args.steps, **over}
                else:
                    opts = TrainOptions(output=run, data=[corpus], seed=seed,
                                        init=args.out / f"gen-{slug(start)}-s{seed}")
                    over = {**common, "max_steps": args.kl_steps, **over}
                train("a2v", opts, preset=args.model_preset, overrides=over)
            requests = [Request(s.id, s.text, s.lang, s.split) for s in slp_cli.load(corpus, split="dev")]
            hyp = generate(requests, "model", model=run, device="cpu").samples
            results[name].append(scores(hyp, corpus, args.out, fps, slt))
            r = results[name][-1]
            print(f"seed {seed} {name}: DTW {r['dtw']:.4f} BLEU-4 {r['bleu4']:.2f} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    def cell(values: list[float], digits: int) -> str:
        return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}" if len(values) > 1 \
            else f"{values[0]:.{digits}f}"

    lines = [f"A2V-SLP ablations in the paper's setting: synthetic '{args.corpus_preset}' corpus ({args.langs}, "
             f"{args.sentences} sentences), model preset '{args.model_preset}', {args.steps} phase-1 steps "
             f"({args.kl_steps} in phase 2), VAE {args.vae_steps} steps, best dev checkpoint; dev split: DTW-MJE "
             f"(shoulder widths) and back-translation BLEU by a tiny SLT ({'+'.join(map(str, args.slt_steps))} "
             f"steps; ground truth BLEU-4 / BLEU-1 {gt['bleu4']:.2f} / {gt['bleu1']:.2f}); mean ± std over seeds "
             f"{args.seeds}; {machine()}", "",
             "| table | variant | DTW-MJE all | DTW-MJE hands | BLEU-4 | BLEU-1 |", "|---|---|---:|---:|---:|---:|"]
    for name, rows in results.items():
        lines.append(f"| {VARIANTS[name][0]} | {name} | {cell([r['dtw'] for r in rows], 4)} | "
                     f"{cell([r['hands'] for r in rows], 4)} | {cell([r['bleu4'] for r in rows], 2)} | "
                     f"{cell([r['bleu1'] for r in rows], 2)} |")
    print("\n".join(lines))
    (args.out / "ablation.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "ground_truth": gt, "variants": results, "table": lines},
        indent=2))


if __name__ == "__main__":
    main()
