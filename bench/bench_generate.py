"""Benchmark: A2V-SLP generation latency and throughput (the `default` preset: text encoder
3 x 512 / FFN 1024, decoder 6 x 512 / 8 heads / FFN 1024, VAE decoder to mp178).

    python bench/bench_generate.py [--frames 100] [--batch 32] [--repeats 20] [--device cpu|cuda|all]
                                   [--threads N]

Weights are random (speed does not depend on training): the model is built from its registered
default config, a default-size VAE and a WordPiece tokenizer trained on synthetic German
sentences. Prints, per device:
  * latency of one ~15-word sentence decoded to ``--frames`` frames (median of ``--repeats``),
    and how much faster than real time that is at 25 fps;
  * throughput of a batch of ``--batch`` sentences in one forward pass, against the same
    sentences signed one by one (the obvious alternative);
  * the FLOPs of one sentence (counted by torch.utils.flop_counter) and the rate achieved,
    against this machine's dense matmul rate measured on the model's own shape (T x 512 x 1024).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

from slp_cli.data.synth import synthesize  # noqa: E402
from slp_cli.models import config_dict, get_model_class  # noqa: E402
from slp_cli.models.vae import VAEConfig  # noqa: E402
from slp_cli.text.tokenizer import TextTokenizer  # noqa: E402

SENTENCE = "am mittwoch zieht von der nordsee regen heran der sich am donnerstag bis in den süden ausbreitet"


def build_model(device: str):
    cls = get_model_class("a2v")
    texts = [s.text for s in synthesize(langs=["dgs"], preset="tiny", sentences=200, seed=0)] + [SENTENCE]
    config = cls.make_config("default")
    data = {"vae_config": config_dict(VAEConfig()), "langs": ["dgs"], "fps": 25.0,
            "max_frames": 475,  # PHOENIX-2014T's longest sentence
            "text_tokenizer": TextTokenizer.train(texts, ["dgs"], config.vocab_size).to_json()}
    return cls(config, data).eval().to(device)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: str, repeats: int) -> float:
    """Median seconds of ``fn()`` after two warm-up calls."""
    for _ in range(2):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def matmul_rate(device: str, t: int, d: int = 512, f: int = 1024, repeats: int = 50) -> float:
    """FLOP/s of (t x d) @ (d x f) on ``device`` (fp32), the FFN's shape."""
    a = torch.randn(t, d, device=device)
    b = torch.randn(d, f, device=device)
    n = max(repeats, int(2e9 / (2 * t * d * f)))  # ~2 GFLOP per measurement
    sec = timed(lambda: [a @ b for _ in range(n)], device, 5)
    return 2 * t * d * f * n / sec


def sign(model, prepared: list, frames: int | None = None):
    """Poses of prepared sentences in one batch (``frames`` fixed, else predicted)."""
    return model.sign_batch(prepared, model.make_options({"frames": frames}), None)


def flops(model, prepared, frames: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        sign(model, prepared, frames)
    return counter.get_total_flops()


def bench(device: str, frames: int, batch: int, repeats: int) -> None:
    torch.manual_seed(0)
    model = build_model(device)
    one = [model.prepare(SENTENCE, "dgs")]
    texts = [s.text for s in synthesize(langs=["dgs"], preset="tiny", sentences=batch, seed=1)]
    many = [model.prepare(t, "dgs") for t in texts]
    with torch.inference_mode():
        latency = timed(lambda: sign(model, one, frames), device, repeats)
        batched = timed(lambda: sign(model, many, frames), device, max(3, repeats // 4))
        sequential = timed(lambda: [sign(model, [p], frames) for p in many], device, max(3, repeats // 10))
        predicted = timed(lambda: sign(model, one), device, repeats)
        n_pred = len(sign(model, one)[0].pose)
    f1 = flops(model, one, frames)
    rate = matmul_rate(device, frames)
    threads = torch.get_num_threads() if device == "cpu" else "-"
    print(f"\n## {device} ({torch.cuda.get_device_name() if device == 'cuda' else machine()}, torch threads {threads})")
    print(f"parameters: {model.num_parameters() - model.vae.num_parameters():,} (+ VAE {model.vae.num_parameters():,})")
    print("| measure | value |\n|---|---:|")
    print(f"| one sentence, {frames} frames: latency (median of {repeats}) | {latency * 1e3:.1f} ms |")
    print(f"| ... faster than real time at 25 fps | {frames / 25 / latency:.0f}x |")
    print(f"| one sentence, predicted length ({n_pred} frames, random weights) | {predicted * 1e3:.1f} ms |")
    print(f"| batch of {batch} in one pass | {batched * 1e3:.0f} ms = {batch / batched:.1f} sentences/s "
          f"= {batch * frames / batched:,.0f} frames/s |")
    print(f"| the same {batch} one by one | {sequential * 1e3:.0f} ms (batching {sequential / batched:.1f}x faster) |")
    print(f"| FLOPs of one sentence | {f1 / 1e9:.2f} GFLOP |")
    print(f"| achieved rate (one sentence / batch) | {f1 / latency / 1e9:.1f} / "
          f"{f1 * batch / batched / 1e9:.1f} GFLOP/s |")
    print(f"| dense matmul rate ({frames}x512 @ 512x1024, fp32) | {rate / 1e9:.1f} GFLOP/s |")
    print(f"| one sentence at the matmul rate would take | {f1 / rate * 1e3:.1f} ms "
          f"({f1 / latency / rate:.0%} of the matmul rate reached) |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's, one per core)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"A2V-SLP generation, default preset; {machine()}; torch {torch.__version__}; "
          f"load average {os.getloadavg()[0]:.1f}")
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            print("\n(no CUDA GPU here: GPU figures not measured)")
            continue
        bench(device, args.frames, args.batch, args.repeats)


if __name__ == "__main__":
    main()
