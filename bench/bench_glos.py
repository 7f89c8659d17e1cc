"""Benchmark: GLOS sampling latency at 10 / 25 / 50 diffusion steps (GLOS: 50 steps).

    python bench/bench_glos.py [--preset default|tiny] [--glosses 12] [--batch 16] [--repeats 5]
                               [--threads N] [--device cpu|cuda]

Weights are random (speed does not depend on training): the model is built from its registered
preset over a VQ-VAE of SOKE's default size (3 streams 96/192/192, width 512, downsampling 4),
with a 40-gloss vocabulary and 6-frame glosses. Prints, per step count, the latency of one
sentence of ``--glosses`` glosses (median of ``--repeats``; the VQ-VAE decoding included, and its
share), the real-time factor at 25 fps, and the throughput of a batch of ``--batch`` sentences
against the same sentences one by one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

from slp_cli.models import config_dict, get_model_class  # noqa: E402


def build(preset: str, device: str):
    vq_cls, glos_cls = get_model_class("vqvae"), get_model_class("glos")
    vq = vq_cls(vq_cls.make_config("default"))
    glosses = [["dgs", f"G{i:02d}"] for i in range(40)]
    data = {"tokenizer_model": "vqvae", "tokenizer_config": config_dict(vq.config), "tokenizer_data": {},
            "streams": vq.array_names, "codebooks": vq.codebooks, "downsample": vq.downsample, "glosses": glosses,
            "mean_durations": [4.0, 4.0, 4.0] + [6.0] * len(glosses), "max_frames": 2000, "langs": ["dgs"],
            "fps": 25.0}
    return glos_cls(glos_cls.make_config(preset), data).to(device).eval()


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--glosses", type=int, default=12)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build(args.preset, args.device)
    glosses = " ".join(f"G{i % 40:02d}" for i in range(args.glosses))
    frames = 8 + 6 * args.glosses
    denoiser = model.num_parameters() - model.tokenizer.num_parameters()
    print(f"GLOS sampling latency, preset {args.preset!r} (denoiser {denoiser / 1e6:.1f} M parameters; the "
          f"VQ-VAE's decoding included in the times), {args.glosses} glosses = {frames} frames ({frames / 25:.1f} s at 25 fps), "
          f"{args.device}, {torch.get_num_threads()} threads; {machine()}\n")
    print("| steps | one sentence (s) | real-time factor | of which VQ-VAE decoding | batch of "
          f"{args.batch}: s/sentence | one by one: s/sentence | batching speed-up |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    g = torch.Generator(device=args.device).manual_seed(0)
    with torch.no_grad():
        tokens = {n: torch.zeros(1, -(-frames // 4), dtype=torch.long, device=args.device) for n in model.streams}
        decode = timed(lambda: model.tokenizer.decode(tokens), args.repeats)
    for steps in (10, 25, 50):
        opts = model.make_options({"glosses": glosses, "steps": steps})
        one = timed(lambda: model.sign(["x"], ["dgs"], opts, g), args.repeats)
        batch = timed(lambda: model.sign(["x"] * args.batch, ["dgs"], opts, g), max(1, args.repeats // 2))
        print(f"| {steps} | {one:.3f} | {frames / 25 / one:.1f}x | {decode / one:.0%} | {batch / args.batch:.3f} | "
              f"{one:.3f} | {one / (batch / args.batch):.1f}x |", flush=True)


if __name__ == "__main__":
    main()
