"""The shared training loop, exercised through the VAE's registered tiny preset."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import slp_cli
from slp_cli import SlpError
from slp_cli.data.loader import BucketBatchSampler
from slp_cli.data.synth import synthesize
from slp_cli.models import load_model
from slp_cli.normalize import normalize_samples
from slp_cli.training import TrainOptions, train


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny.norm.h5"
    slp_cli.save(normalize_samples(synthesize(preset="tiny", seed=3)), path, fps=25, normalized=True)
    return path


def train_losses(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return {int(r["step"]): float(r["value"]) for r in csv.DictReader(f)
                if r["split"] == "train" and r["name"] == "loss"}


def options(corpus, out, **kw):
    return TrainOptions(output=out, data=[corpus], **kw)


def test_bucket_sampler_shares_global_batches_across_ranks():
    lengths = np.random.default_rng(0).integers(10, 100, 37)
    single = BucketBatchSampler(lengths, 4, seed=1)
    ranks = [BucketBatchSampler(lengths, 4, seed=1, rank=r, world_size=2) for r in range(2)]
    for s in [single, *ranks]:
        s.set_epoch(2)
    for whole, a, b in zip(single, *ranks):
        assert sorted(whole) == sorted(a + b) and len(a) == len(b) == 2
    assert len(single) == 37 // 4
    resumed = BucketBatchSampler(lengths, 4, seed=1)
    resumed.set_epoch(2, start_batch=3)
    assert list(resumed) == list(single)[3:]


def test_vae_trains_resumes_and_guards_its_directory(corpus, tmp_path):
    full = tmp_path / "full"
    summary = train("vae", options(corpus, full), preset="tiny", overrides={"max_steps": 60, "log_every": 1})
    assert summary["steps"] == 60
    losses = train_losses(full)
    assert np.mean([losses[s] for s in range(51, 61)]) < 0.5 * np.mean([losses[s] for s in range(1, 11)])
    for name in ("model.pt", "checkpoint.pt", "config.json", "loss.png", "metrics.csv"):
        assert (full / name).exists(), name

    # interrupted at step 30, then resumed to 60: the same run, step for step
    part = tmp_path / "part"
    train("vae", options(corpus, part), preset="tiny", overrides={"max_steps": 30, "log_every": 1})
    train("vae", options(corpus, part, resume=True), preset="tiny", overrides={"max_steps": 60, "log_every": 1})
    resumed = train_losses(part)
    assert sorted(resumed) == list(range(1, 61))
    np.testing.assert_allclose([resumed[s] for s in range(31, 61)], [losses[s] for s in range(31, 61)], rtol=1e-5)

    with pytest.raises(SlpError, match="already holds a training run"):
        train("vae", options(corpus, full), preset="tiny")
    with pytest.raises(SlpError, match="holds a 'vae' run"):
        train("vqvae", options(corpus, full, resume=True), preset="tiny")
    with pytest.raises(SlpError, match="is needed here"):
        load_model(full, expect="vqvae")
    assert isinstance(load_model(full, expect="vae"), torch.nn.Module)


def test_bad_training_input(corpus, tmp_path):
    with pytest.raises(SlpError, match="too few"):
        train("vae", options(corpus, tmp_path / "a"), preset="tiny", overrides={"batch_size": 1000})
    with pytest.raises(SlpError, match="no samples of language"):
        train("vae", options(corpus, tmp_path / "b", langs=["bsl"]), preset="tiny")
    with pytest.raises(SlpError, match="no preset"):
        train("vae", options(corpus, tmp_path / "c"), preset="huge")
    with pytest.raises(SlpError, match="nothing to resume"):
        train("vae", options(corpus, tmp_path / "d", resume=True), preset="tiny")
    assert not any((tmp_path / d / "checkpoint.pt").exists() for d in "abcd")


def ddp(corpus, out, nproc: int, *args: str) -> dict:
    """`slp train vae` (tiny) under torchrun with ``nproc`` gloo processes; its train losses."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port",
           str(29500 + nproc + os.getpid() % 1000), "-m", "slp_cli", "train", "vae", "--data", str(corpus),
           "-o", str(out), "--preset", "tiny", "--device", "cpu", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return train_losses(out)


def test_ddp_with_two_gloo_processes_matches_one_process(corpus, tmp_path):
    one, two = ddp(corpus, tmp_path / "one", 1, "--max-steps", "20"), ddp(corpus, tmp_path / "two", 2, "--max-steps", "20")
    assert sorted(one) == sorted(two) == [10, 20]
    # same global batches; per-rank means of pooled frames weigh frames slightly differently
    np.testing.assert_allclose([two[s] for s in (10, 20)], [one[s] for s in (10, 20)], rtol=0.05)


def test_ddp_resume_is_exact_and_survives_another_world_size(corpus, tmp_path):
    # every process restores its own RNG state: 2 processes, 12 steps then 12 more = 24 at once
    args = ("--log-every", "1", "--eval-every", "6", "--checkpoint-every", "6")
    full = ddp(corpus, tmp_path / "full", 2, "--max-steps", "24", *args)
    ddp(corpus, tmp_path / "part", 2, "--max-steps", "12", *args)
    part = ddp(corpus, tmp_path / "part", 2, "--max-steps", "24", "--resume", *args)
    assert sorted(part) == list(range(1, 25))
    np.testing.assert_allclose([part[s] for s in range(13, 25)], [full[s] for s in range(13, 25)], rtol=1e-5)
    # one process resuming a two-process run: fresh seeds, no crash
    one = ddp(corpus, tmp_path / "part", 1, "--max-steps", "30", "--resume", *args)
    assert sorted(one) == list(range(1, 31))
