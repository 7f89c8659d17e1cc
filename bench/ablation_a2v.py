"""Ablations of the A2V-SLP generator on the synthetic corpus, after A2V-SLP's tables 1-4
and 6: gloss attention N=3 vs global self-attention vs
N=7 vs local+global; with vs without the KL phase; disentangled vs entangled VAE. Every variant
is trained with the same seeds, data and step budget, and scored by test-split DTW-MJE (slp
protocol, shoulder widths) for all joints and per articulator, next to the baselines (mean pose,
nearest-neighbour retrieval, dictionary concatenation) and the VAE's own reconstruction floor.

    python bench/ablation_a2v.py [--out ablation-a2v] [--corpus-preset tiny] [--sentences 300] [--langs dgs]
        [--model-preset tiny] [--steps 4000] [--kl-phase-start 3000] [--vae-steps 2000] [--seeds 0 1 2]

Runs go to --out (re-running reuses finished runs: delete a run directory to redo it); the table
is printed as markdown and written with all figures to --out/ablation.json.
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
from slp_cli.artifacts import Sample, read_header  # noqa: E402
from slp_cli.data.synth import synthesize  # noqa: E402
from slp_cli.dictionary import Dictionary, build  # noqa: E402
from slp_cli.generate import Request, generate  # noqa: E402
from slp_cli.models import load_model  # noqa: E402
from slp_cli.normalize import normalize_samples  # noqa: E402
from slp_cli.score import score  # noqa: E402
from slp_cli.text.lemmas import tokenize  # noqa: E402
from slp_cli.training import TrainOptions, train  # noqa: E402

SELECTIONS = ("all", "body", "right_hand", "left_hand", "face")
# name -> (generator config overrides, VAE kind). The first row is the paper's final model.
VARIANTS = {
    "gloss attention N=3 + KL (paper)": ({}, "disentangled"),
    "global self-attention": ({"attention": "global"}, "disentangled"),
    "gloss attention N=7": ({"window": 7}, "disentangled"),
    "local+global (N=3)": ({"attention": "local+global"}, "disentangled"),
    "no KL phase": ({"kl_phase_start": -1}, "disentangled"),
    "entangled VAE": ({}, "entangled"),
}


def dtw_table(hyp: list[Sample], ref_path: Path, work: Path, fps: float) -> dict[str, float]:
    """Test-split DTW-MJE per selection, through the same artifact + score path as `slp score`."""
    path = slp_cli.save(hyp, work / "hyp.h5", fps=fps, normalized=True)
    result = score(slp_cli.load(path), slp_cli.load(ref_path, split="test"))
    return {sel: result["pose"]["dtw_mje"][sel]["value"] for sel in SELECTIONS}


def baselines(corpus: Path, work: Path) -> dict[str, dict[str, float]]:
    art = slp_cli.load(corpus)
    train_s = [s for s in art if s.split == "train"]
    test = [s for s in art if s.split == "test"]
    mean_pose = np.nanmean(np.concatenate([s.pose for s in train_s]), 0)

    def words(s):
        return set(tokenize(s.text, s.lang))

    def nearest(s):
        return max(train_s, key=lambda t: (len(words(s) & words(t)) / len(words(s) | words(t)),
                                           -abs(t.num_frames - s.num_frames)))

    dictionary = Dictionary(entries=build(train_s, art.fps), fps=art.fps)
    out = {
        "mean pose": [Sample(s.id, np.repeat(mean_pose[None], s.num_frames, 0)) for s in test],
        "nearest-neighbour retrieval": [Sample(s.id, nearest(s).pose) for s in test],
        "dictionary concatenation": generate([Request(s.id, s.text, s.lang, s.split) for s in test], "concat",
                                             dictionary=dictionary).samples,
    }
    return {name: dtw_table(samples, corpus, work, art.fps) for name, samples in out.items()}


def vae_floor(vae_dir: Path, corpus: Path, work: Path) -> dict[str, float]:
    vae = load_model(vae_dir, expect="vae")
    art = slp_cli.load(corpus, split="test")
    return dtw_table([Sample(s.id, vae.reconstruct(s.pose), text=s.text, lang=s.lang) for s in art], corpus, work,
                     art.fps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("ablation-a2v"))
    ap.add_argument("--corpus-preset", default="tiny")
    ap.add_argument("--langs", default="dgs")
    ap.add_argument("--sentences", type=int, default=300)
    ap.add_argument("--model-preset", default="tiny")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--kl-phase-start", type=int, default=3000)
    ap.add_argument("--kl-weight", type=float, default=None, help="KL weight in phase 2 (default: the preset's)")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--vae-steps", type=int, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for tiny models)")
    ap.add_argument("--only", nargs="*", default=None, help="run only these variants (names as in the table)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    corpus = args.out / "corpus.h5"
    if not corpus.exists():
        samples = normalize_samples(synthesize(langs=args.langs.split(","), preset=args.corpus_preset,
                                               sentences=args.sentences, seed=0))
        slp_cli.save(samples, corpus, fps=25, normalized=True, normalization="neck-shoulder/frame")
    fps = read_header(corpus)["fps"]
    variants = {k: v for k, v in VARIANTS.items() if not args.only or k in args.only}
    common = {"max_steps": args.steps, "eval_every": args.eval_every, "kl_phase_start": args.kl_phase_start,
              "checkpoint_every": args.steps, "patience": 0, "kl_weight": args.kl_weight}
    results: dict[str, list[dict]] = {k: [] for k in variants}
    floors: dict[str, list[dict]] = {"disentangled": [], "entangled": []}
    t0 = time.perf_counter()
    for seed in args.seeds:
        vaes = {}
        for kind in {v[1] for v in variants.values()}:
            vaes[kind] = args.out / f"vae-{kind}-s{seed}"
            if not (vaes[kind] / "model.pt").exists():
                train("vae", TrainOptions(output=vaes[kind], data=[corpus], seed=seed),
                      preset="tiny", overrides={"max_steps": args.vae_steps, "entangled": kind == "entangled"})
            floors[kind].append(vae_floor(vaes[kind], corpus, args.out))
        for name, (over, kind) in variants.items():
            slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
            run = args.out / f"gen-{slug}-s{seed}"
            if not (run / "model.pt").exists():
                over = {**common, **over}
                train("a2v", TrainOptions(output=run, data=[corpus], seed=seed,
                                          inputs={"tokenizer": vaes[kind]}), preset=args.model_preset, overrides=over)
            requests = [Request(s.id, s.text, s.lang, s.split) for s in slp_cli.load(corpus, split="test")]
            hyp = generate(requests, "model", model=run, device="cpu").samples
            results[name].append(dtw_table(hyp, corpus, args.out, fps))
            print(f"seed {seed} {name}: {results[name][-1]['all']:.4f} ({time.perf_counter() - t0:.0f} s)",
                  file=sys.stderr, flush=True)
    base = baselines(corpus, args.out)

    def cell(values: list[float]) -> str:
        return f"{np.mean(values):.4f} ± {np.std(values):.4f}" if len(values) > 1 else f"{values[0]:.4f}"

    header = ("| model | " + " | ".join(SELECTIONS) + " |\n|---|" + "---:|" * len(SELECTIONS))
    lines = [f"A2V-SLP ablations: synthetic '{args.corpus_preset}' corpus ({args.langs}), test-split DTW-MJE "
             f"(shoulder widths), model preset '{args.model_preset}', {args.steps} steps (KL from "
             f"{args.kl_phase_start}), best dev checkpoint, mean ± std over seeds {args.seeds}; {machine()}", "",
             header]
    for name, rows in results.items():
        lines.append(f"| {name} | " + " | ".join(cell([r[s] for r in rows]) for s in SELECTIONS) + " |")
    for kind, rows in floors.items():
        if rows:
            lines.append(f"| VAE reconstruction floor ({kind}) | " + " | ".join(cell([r[s] for r in rows])
                                                                                for s in SELECTIONS) + " |")
    for name, row in base.items():
        lines.append(f"| baseline: {name} | " + " | ".join(f"{row[s]:.4f}" for s in SELECTIONS) + " |")
    print("\n".join(lines))
    (args.out / "ablation.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "variants": results, "vae_floor": floors,
         "baselines": base, "table": lines}, indent=2))


if __name__ == "__main__":
    main()
