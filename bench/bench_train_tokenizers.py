"""Training throughput of the two tokenizers through the shared loop (frames per second).

Run: python bench/bench_train_tokenizers.py [--sentences 120] [--steps 40] [--devices cpu,cuda] [--threads N]

Trains on the synthetic `demo` corpus (normalized), through `slp_cli.training.train` exactly as
`slp train` does (CPU: float32; CUDA: bf16 autocast), and reports the median of the loop's own
frames/s log over the run, the first logging window (start-up, first-batch codebook init) left out.
The 512-wide VQ-VAE runs a quarter of the steps on CPU (at least 6): one step takes seconds there.
Configurations: the VAE with A2V-SLP's architecture and batch (32 sequences), the VQ-VAE with
SOKE's architecture (width and codes 512, windows of 64 frames; batch 32 windows on CPU, SOKE's
320 on CUDA) and the CPU-sized `small` VQ-VAE preset. CUDA rows appear when a GPU is present.
"""

import argparse
import csv
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

import torch  # noqa: E402

import slp_cli  # noqa: E402
from slp_cli.data.synth import synthesize  # noqa: E402
from slp_cli.normalize import normalize_samples  # noqa: E402
from slp_cli.training import TrainOptions, train  # noqa: E402

LOG_EVERY = 2


def configurations(device: str, steps: int):
    cpu = device == "cpu"
    big_batch = 32 if cpu else 320
    return [
        ("vae", "default", {"max_steps": steps}, "A2V-SLP VAE, batch 32 sequences"),
        ("vae", "default", {"max_steps": steps, "entangled": True}, "A2V-SLP VAE --entangled, batch 32 sequences"),
        ("vqvae", "default", {"batch_size": big_batch, "max_steps": max(steps // 4, 6) if cpu else steps},
         f"SOKE VQ-VAE (512 wide), batch {big_batch} windows of 64"),
        ("vqvae", "small", {"max_steps": steps}, "VQ-VAE `small` preset (128 wide), batch 32 windows of 32"),
    ]


def frames_per_second(run_dir: Path) -> float:
    with open(run_dir / "metrics.csv") as f:
        rows = [(int(r["step"]), float(r["value"])) for r in csv.DictReader(f)
                if r["split"] == "train" and r["name"] == "frames_per_s"]
    values = [v for step, v in rows if step > LOG_EVERY] or [v for _, v in rows]
    return statistics.median(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sentences", type=int, default=120, help="sentences per language of the demo corpus")
    ap.add_argument("--steps", type=int, default=40, help="optimizer steps per configuration")
    ap.add_argument("--devices", default="cpu,cuda", help="devices to measure (cuda is skipped without a GPU)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [d for d in args.devices.split(",") if d != "cuda" or torch.cuda.is_available()]
    print(f"machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f"; GPU: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "; no CUDA GPU"))
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "demo.norm.h5"
        slp_cli.save(normalize_samples(synthesize(preset="demo", sentences=args.sentences)), data, fps=25,
                     normalized=True)
        print("\n| model | configuration | device | parameters | frames/s |\n|---|---|---|---:|---:|")
        for device in devices:
            for i, (name, preset, overrides, label) in enumerate(configurations(device, args.steps)):
                out = Path(d) / f"{device}-{i}"
                summary = train(name, TrainOptions(output=out, data=[data], device=device),
                                preset=preset, overrides={**overrides, "log_every": LOG_EVERY,
                                                          "eval_every": 10 ** 9, "checkpoint_every": 10 ** 9})
                precision = "bf16 autocast" if device == "cuda" else "fp32"
                print(f"| {name} | {label} | {device} ({precision}) | {summary['parameters']:,} | "
                      f"{frames_per_second(out):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
