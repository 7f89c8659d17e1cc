"""Tokenizer ablations on the synthetic corpus: reconstruction error per articulator of
A2V-SLP's disentangled VAE vs its entangled ablation (table 1 of
A2V-SLP), and of SOKE's decoupled VQ-VAE vs its body+hands and
whole-body ablations (table 4 of SOKE).

Run: python bench/ablation_tokenizers.py [--work DIR] [--vae-steps 3000] [--vq-steps 600]
     python bench/ablation_tokenizers.py --deto [--vq-steps 300] [--variants before,after,...]

``--deto`` compares the decoupled VQ-VAE (`small` preset, same steps) before and after it took
the authors' configuration (issue 18.4): ``before`` is slp's earlier one (dead codes below 1/8 of
uniform use, AdamW (0.9, 0.999) with weight decay 0.01, gradient clipping 1.0, encoder dilations
1-3-9, the face weighted like the body, cosine to 0); ``after`` the present defaults (one use per
batch, AdamW (0.9, 0.99) without decay or clipping, 9-3-1, face 13/30, cosine to 1e-6, the best
dev hand PA-MPJPE kept); then ``smooth-l1`` (the code's reconstruction loss), ``face-stream``
(body, left hand, right hand, face: GLOS's four streams) and ``sequences`` (whole sequences per
batch, as the code's loader; more frames per step).

Every model of a family gets the same budget (optimizer steps x batch): the VAEs A2V-SLP's
architecture and batch of 32 sequences; the VQ-VAEs the CPU-sized `small` preset (SOKE's
structure, 128 wide, windows of 32 frames, 32 windows per batch). All train on the train split
of the normalized `demo` corpus (three languages) and are scored on its test split with
`slp eval-tokenizer` (MPJPE / PA-MPJPE in shoulder widths). Runs are kept in --work, and a finished
run (model.pt present) is not retrained, so the table can be re-printed cheaply.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

import torch  # noqa: E402

import slp_cli  # noqa: E402
from slp_cli.data.synth import synthesize  # noqa: E402
from slp_cli.normalize import normalize_samples  # noqa: E402
from slp_cli.tokenize import evaluate_tokenizer  # noqa: E402
from slp_cli.training import TrainOptions, train  # noqa: E402

ARTS = ("body", "right_hand", "left_hand", "face", "all")


def runs(vae_steps: int, vq_steps: int):
    return [
        ("vae-disentangled", "vae", "default", {"max_steps": vae_steps}),
        ("vae-entangled", "vae", "default", {"max_steps": vae_steps, "entangled": True}),
        ("vqvae-decoupled", "vqvae", "small", {"max_steps": vq_steps}),
        ("vqvae-body-hands", "vqvae", "small", {"max_steps": vq_steps, "parts": "body_hands"}),
        ("vqvae-whole-body", "vqvae", "small", {"max_steps": vq_steps, "parts": "whole_body"}),
    ]


BEFORE = {"reset_uses": 0.0, "reset_fraction": 0.125, "adam_betas": (0.9, 0.999), "weight_decay": 0.01,
          "grad_clip": 1.0, "encoder_dilations": "ascending", "face_weight": 1.0, "min_lr": 0.0}
DETO_VARIANTS = {
    "before": BEFORE,
    "after": {},
    "smooth-l1": {"recon": "smooth_l1"},
    "face-stream": {"parts": "decoupled_face"},
    "sequences": {"batching": "sequences"},
}


def deto_runs(vq_steps: int, variants: list[str]):
    return [(f"deto-{v}", "vqvae", "small", {"max_steps": vq_steps, **DETO_VARIANTS[v]}) for v in variants]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "slp_ablation_tokenizers",
                    help="where the corpus and the runs are kept")
    ap.add_argument("--sentences", type=int, default=None, help="sentences per language (default: the demo preset's)")
    ap.add_argument("--vae-steps", type=int, default=3000)
    ap.add_argument("--vq-steps", type=int, default=600)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is faster on a shared machine)")
    ap.add_argument("--deto", action="store_true", help="DETO before/after the authors' configuration instead")
    ap.add_argument("--seed", type=int, default=0, help="training seed (--deto runs are kept per seed)")
    ap.add_argument("--variants", default="before,after,smooth-l1,face-stream",
                    help=f"--deto variants, of {','.join(DETO_VARIANTS)}")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / "demo.norm.h5"
    if not data.exists():
        slp_cli.save(normalize_samples(synthesize(preset="demo", sentences=args.sentences)), data, fps=25,
                     normalized=True)
    print(f"machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads; data {data}")
    results = {}
    todo = deto_runs(args.vq_steps, args.variants.split(",")) if args.deto else runs(args.vae_steps, args.vq_steps)
    for label, model, preset, overrides in todo:
        out = args.work / (f"{label}-seed{args.seed}" if args.deto and args.seed else label)
        if not (out / "model.pt").exists():
            t0 = time.perf_counter()
            train(model, TrainOptions(output=out, data=[data], resume=(out / "checkpoint.pt").exists(), seed=args.seed),
                  preset=preset, overrides=overrides)
            print(f"trained {label} in {time.perf_counter() - t0:.0f} s", flush=True)
        results[label] = evaluate_tokenizer(out, data, "test")
    name = f"deto-seed{args.seed}.json" if args.deto else "results.json"
    (args.work / name).write_text(json.dumps(results, indent=2))

    first = next(iter(results.values()))
    print(f"\ntest split: {first['samples']} samples, {first['frames']} frames; MPJPE (PA-MPJPE) in shoulder widths\n")
    print("| tokenizer | " + " | ".join(a.replace("_", " ") for a in ARTS) + " | codebook perplexity |")
    print("|---|" + "---:|" * (len(ARTS) + 1))
    print("| mean pose (baseline) | " + " | ".join(f"{first['mean_pose_mpjpe'][a]:.4f}" for a in ARTS) + " | |")
    for label, r in results.items():
        cells = [f"{r['mpjpe'][a]:.4f} ({r['pa_mpjpe'][a]:.4f})" for a in ARTS]
        books = ", ".join(f"{g} {b['perplexity']:.0f}/{b['size']}" for g, b in r["codebook"].items())
        print(f"| {label} | " + " | ".join(cells) + f" | {books} |")
    if args.deto and "deto-before" in results:
        ref = results["deto-before"]["mpjpe"]
        print("\nMPJPE after / before: " + ", ".join(
            f"{label[5:]} " + " ".join(f"{a.replace('_hand', '')} {r['mpjpe'][a] / ref[a]:.2f}" for a in ARTS)
            for label, r in results.items() if label != "deto-before"))


if __name__ == "__main__":
    main()
