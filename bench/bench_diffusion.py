"""Sampling speed against quality for Text2Sign Diffusion: DDIM with 10 / 25 / 50 steps against the
ancestral DDPM sampler over all 1,000 training steps, on one trained model, in one run. Each
sampler signs the whole test split in one batch from the same seed; the table gives the wall time
per sentence, the time relative to DDPM, test-split DTW-MJE (slp protocol, shoulder widths) and
its difference from DDPM's. Target (MLD's claim, the spec's): DDIM 50 within a few percent of
DDPM's DTW at 20x less time.

    python bench/bench_diffusion.py [--out bench-diffusion] [--sentences 300] [--steps 1500]
        [--model DIR --corpus CORPUS.norm.h5] [--threads 1]

Without --model it trains the three stages (SignVAE, aligner, diffusion, `tiny` presets) on a
synthetic corpus in --out (re-running reuses finished runs). The helpers here (corpus and stages)
are shared with bench/ablation_diffusion.py.
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
from slp_cli.metrics.dtw import dtw_mje  # noqa: E402
from slp_cli.models import load_model  # noqa: E402
from slp_cli.normalize import normalize_samples  # noqa: E402
from slp_cli.training import TrainOptions, train  # noqa: E402


def make_corpus(out: Path, sentences: int, preset: str = "tiny", langs: str = "dgs") -> Path:
    corpus = out / "corpus.h5"
    if not corpus.exists():
        out.mkdir(parents=True, exist_ok=True)
        samples = normalize_samples(synthesize(langs=langs.split(","), preset=preset, sentences=sentences, seed=0))
        slp_cli.save(samples, corpus, fps=25, normalized=True, normalization="neck-shoulder/frame")
    return corpus


def stage(name: str, run: Path, corpus: Path, preset: str = "tiny", seed: int = 0, inputs=None, **over) -> Path:
    """Train ``name`` into ``run`` unless it is finished there."""
    if not (run / "model.pt").exists():
        t = time.perf_counter()
        train(name, TrainOptions(output=run, data=[corpus], seed=seed, inputs=inputs or {}), preset=preset,
              overrides=over)
        print(f"  trained {run.name} in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    return run


def upstream(out: Path, corpus: Path, vae_steps: int = 1000, aligner_steps: int = 600) -> tuple[Path, Path]:
    """(SignVAE, aligner) run directories, trained once per corpus."""
    sv = stage("signvae", out / "signvae", corpus, max_steps=vae_steps, eval_every=max(vae_steps // 4, 1))
    al = stage("aligner", out / "aligner", corpus, inputs={"tokenizer": sv}, max_steps=aligner_steps,
               eval_every=max(aligner_steps // 6, 1))
    return sv, al


def sign_split(model, test: list, seed: int, **options) -> tuple[list[np.ndarray], float]:
    """Poses of the test split in one batch and the wall time it took."""
    t = time.perf_counter()
    out = model.sign([s.text for s in test], [s.lang for s in test], model.make_options(options),
                     torch.Generator().manual_seed(seed))
    return [o.pose for o in out], time.perf_counter() - t


def mean_dtw(poses: list[np.ndarray], test: list) -> float:
    return float(np.mean([dtw_mje(p, s.pose) for p, s in zip(poses, test)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench-diffusion"))
    ap.add_argument("--model", type=Path, default=None, help="a trained diffusion generator (else one is trained)")
    ap.add_argument("--corpus", type=Path, default=None, help="its normalized corpus (with --model)")
    ap.add_argument("--sentences", type=int, default=300)
    ap.add_argument("--steps", type=int, default=1500, help="diffusion training steps (without --model)")
    ap.add_argument("--ddim", type=int, nargs="+", default=[10, 25, 50])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.model is None:
        corpus = make_corpus(args.out, args.sentences)
        sv, al = upstream(args.out, corpus)
        model_dir = stage("diffusion", args.out / "diffusion", corpus, inputs={"tokenizer": sv, "aligner": al},
                          max_steps=args.steps, eval_every=max(args.steps // 6, 1), checkpoint_every=args.steps)
    else:
        corpus, model_dir = args.corpus, args.model
    model = load_model(model_dir, expect="diffusion")
    test = [s for s in slp_cli.load(corpus) if s.split == "test"]
    sign_split(model, test[:2], args.seed, steps=2)  # warm-up
    rows = []
    for name, options in [*((f"DDIM {k}", {"sampler": "ddim", "steps": k}) for k in args.ddim),
                          ("DDPM 1000", {"sampler": "ddpm"})]:
        poses, seconds = sign_split(model, test, args.seed, **options)
        rows.append({"sampler": name, "s_per_sentence": seconds / len(test), "dtw_mje": mean_dtw(poses, test)})
        print(f"  {name}: {rows[-1]['dtw_mje']:.4f} in {seconds:.1f} s", file=sys.stderr, flush=True)
    ddpm = rows[-1]
    lines = [f"Text2Sign Diffusion sampling: {len(test)} test sentences of a synthetic corpus, one batch, "
             f"guidance {model.guidance_of(model.make_options())}, prediction {model.config.prediction}, "
             f"model {model_dir} ({model.num_parameters():,} parameters), {torch.get_num_threads()} thread(s); "
             f"{machine()}", "",
             "| sampler | s / sentence | time vs DDPM 1000 | DTW-MJE | DTW vs DDPM |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['sampler']} | {r['s_per_sentence']:.3f} | {ddpm['s_per_sentence'] / r['s_per_sentence']:.1f}x "
                     f"faster | {r['dtw_mje']:.4f} | {100 * (r['dtw_mje'] / ddpm['dtw_mje'] - 1):+.1f} % |")
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sampling.json").write_text(json.dumps({"rows": rows, "table": lines}, indent=2))


if __name__ == "__main__":
    main()
