"""Latency per sentence of SOKE's three decodings (SOKE, table 2: multi-head 1.46 s vs sequential
3.26 s vs parallel 1.39 s per How2Sign video on an RTX 3090, i.e. sequential / multi-head = 2.2x),
on CPU with the key/value cache, in one run, with the same model size for all three.

Every model is the same offline MBart (``--preset``: the soke preset whose sizes are used; by
default ``default``, d_model 256, 3 + 3 layers) built on a tiny synthetic corpus with random
weights and end-of-sentence suppressed, so that every sentence is decoded for exactly
``--steps`` token steps (``--steps`` x 4 frames): the comparison is at equal output length (the
work per step does not depend on what the weights are). Sentences are signed one at a time
(batch 1, greedy), on one thread; the median of ``--repeats`` passes over ``--sentences``
sentences is reported.

    python bench/bench_soke_latency.py [--steps 25] [--sentences 10] [--repeats 3] [--preset default] [--no-cache]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

import slp_cli  # noqa: E402
from slp_cli.data.synth import synthesize  # noqa: E402
from slp_cli.models.soke import SOKE  # noqa: E402
from slp_cli.normalize import normalize_samples  # noqa: E402
from slp_cli.training import TrainOptions, train  # noqa: E402


def build(decoding: str, preset: str, steps: int, samples: list, vq: Path) -> SOKE:
    torch.manual_seed(0)
    config = SOKE.make_config(preset, {"decoding": decoding, "retrieval": False, "max_motion_tokens": steps})
    model = SOKE.from_data(config, samples, tokenizer=vq).eval()
    with torch.no_grad():
        for head in model.separate:
            head.bias[-1] = -1e9  # no end-of-sentence: every sentence runs `steps` token steps
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=25, help="token steps per sentence (25 = 100 frames)")
    ap.add_argument("--sentences", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--no-cache", action="store_true", help="also time the decodings without the cache")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        samples = normalize_samples(synthesize(langs=["dgs"], preset="tiny", sentences=40, seed=0))
        slp_cli.save(samples, d / "c.h5", fps=25, normalized=True, normalization="neck-shoulder/frame")
        train("vqvae", TrainOptions(output=d / "vq", data=[d / "c.h5"]), preset="tiny", overrides={"max_steps": 5})
        train_s = [s for s in samples if s.split == "train"]
        texts = [s.text for s in samples][: args.sentences]
        rows = []
        for cache in ([True, False] if args.no_cache else [True]):
            for decoding in ("multihead", "sequential", "parallel"):
                model = build(decoding, args.preset, args.steps, train_s, d / "vq")
                options = model.make_options({"cache": cache})
                prepared = [model.prepare(t, "dgs") for t in texts]
                model.generate_tokens(prepared[:1], options)  # warm-up
                passes = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    for p in prepared:
                        codes, lengths = model.generate_tokens([p], options)[0]
                        assert lengths == [args.steps] * len(model.streams), lengths
                    passes.append((time.perf_counter() - t0) / len(prepared))
                rows.append((decoding, cache, statistics.median(passes), model.num_parameters()))
    print(f"machine: {machine()}, 1 torch thread; preset {args.preset} sizes, {args.steps} token steps "
          f"({args.steps * 4} frames) per sentence, {args.sentences} sentences x {args.repeats} passes (median)\n")
    print("| decoding | cache | decoder steps | ms per sentence | vs multihead | parameters |")
    print("|---|---|---:|---:|---:|---:|")
    base = {c: t for dec, c, t, _ in rows if dec == "multihead"}
    for dec, cache, t, n in rows:
        steps = args.steps * (3 if dec == "sequential" else 1)
        print(f"| {dec} | {'yes' if cache else 'no'} | {steps} | {t * 1000:.1f} | {t / base[cache]:.2f}x | {n:,} |")
    seq = next(t for dec, c, t, _ in rows if dec == "sequential" and c)
    print(f"\nsequential / multihead with the cache: {seq / base[True]:.2f}x (target >= 2.5x; the paper: 2.2x on a GPU)")


if __name__ == "__main__":
    main()
