"""A2V-SLP's articulator-disentangled VAE (slp_cli/models/vae.py) through the shared loop.

The ``corpus`` fixture and ``train_losses`` are shared with test_vqvae.py and test_tokenize.py
(imported there)."""

import csv
import subprocess
import sys

import numpy as np
import pytest
import torch

import slp_cli
from slp_cli import SlpError
from slp_cli.data.synth import synthesize
from slp_cli.models import load_model
from slp_cli.models.vae import DisentangledVAE
from slp_cli.normalize import normalize_samples
from slp_cli.skeleton import ARTICULATORS
from slp_cli.tokenize import evaluate_tokenizer
from slp_cli.training import TrainOptions, train


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny.norm.h5"
    slp_cli.save(normalize_samples(synthesize(preset="tiny", seed=3)), path, fps=25, normalized=True)
    return path


def run(corpus, out, **overrides):
    summary = train("vae", TrainOptions(output=out, data=[corpus]), preset="tiny",
                    overrides=overrides)
    assert summary["steps"] == overrides.get("max_steps", 300)
    return out


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    # the tiny preset's architecture, trained longer than its 300 steps so that the body (weight 1
    # beside the hands' 10 and 14) is learned too
    return run(corpus, tmp_path_factory.mktemp("vae") / "run", max_steps=800)


def train_losses(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return {int(r["step"]): float(r["value"]) for r in csv.DictReader(f)
                if r["split"] == "train" and r["name"] == "loss"}


def test_loss_falls_and_reconstruction_beats_the_mean_pose(trained, corpus):
    losses = train_losses(trained)
    steps = sorted(losses)
    assert np.mean([losses[s] for s in steps[-5:]]) < 0.3 * np.mean([losses[s] for s in steps[:5]])
    r = evaluate_tokenizer(trained, corpus, "test")
    err, base = r["mpjpe"], r["mean_pose_mpjpe"]
    for art in ("right_hand", "left_hand"):
        assert err[art] < 0.3 * base[art], (art, err[art], base[art])
    for art in ("body", "face", "all"):
        assert err[art] < 0.65 * base[art], (art, err[art], base[art])
    assert all(r["pa_mpjpe"][a] < base[a] for a in ARTICULATORS)


def test_latent_shapes_and_disentanglement(trained, corpus):
    model = load_model(trained, expect="vae")
    assert {p: (s.start, s.stop) for p, s in model.latent_slices.items()} == {
        "body": (0, 8), "right_hand": (8, 36), "left_hand": (36, 64), "face": (64, 80)}
    pose = torch.from_numpy(slp_cli.load(corpus, split="dev")[0].pose)
    with torch.no_grad():
        mu, logvar = model.posterior(pose)
        assert mu.shape == logvar.shape == (len(pose), 80)
        assert model.decode_latent(mu).shape == pose.shape
        # moving the left hand changes only the left hand's latent dims
        moved = pose.clone()
        moved[:, ARTICULATORS["left_hand"]] += 0.3
        changed = (model.posterior(moved)[0] - mu).abs().amax(0) > 0
        assert changed[36:64].all() and not changed[:36].any() and not changed[64:].any()
        # the right hand's latent dims decode to the right hand only
        z = mu.clone()
        z[:, model.latent_slices["right_hand"]] += 1.0
        joints = np.flatnonzero(((model.decode_latent(z) - model.decode_latent(mu)).abs().amax(dim=(0, 2)) > 0).numpy())
        assert joints.min() == ARTICULATORS["right_hand"].start and joints.max() == ARTICULATORS["right_hand"].stop - 1
        # missing joints (NaN) are encoded as zeros: finite latents
        pose[:, ARTICULATORS["face"]] = float("nan")
        assert torch.isfinite(model.posterior(pose)[0]).all()


def test_entangled_and_large_variants_build_and_train(corpus, tmp_path):
    ent = load_model(run(corpus, tmp_path / "ent", max_steps=60, entangled=True), expect="vae")
    large = load_model(run(corpus, tmp_path / "large", max_steps=60, capacity="large"), expect="vae")
    for out in ("ent", "large"):
        losses = train_losses(tmp_path / out)
        assert losses[60] < 0.7 * losses[10], out
    assert list(ent.branches) == ["all"] and ent.branches["all"].mu.out_features == 80
    assert [layer.out_features for layer in large.branches["right_hand"].encoder.layers] == [84, 56]
    base = DisentangledVAE(DisentangledVAE.make_config("tiny"))
    assert large.num_parameters() > base.num_parameters()
    # the entangled ablation mixes articulators: moving one hand moves every latent dim
    pose = torch.from_numpy(slp_cli.load(corpus, split="dev")[0].pose)
    moved = pose.clone()
    moved[:, ARTICULATORS["left_hand"]] += 0.3
    with torch.no_grad():
        assert ((ent.posterior(moved)[0] - ent.posterior(pose)[0]).abs().amax(0) > 0).all()


def test_bad_input(corpus, tmp_path):
    with pytest.raises(SlpError, match="capacity"):
        DisentangledVAE.make_config("tiny", {"capacity": "huge"})
    with pytest.raises(SlpError, match="beta"):
        DisentangledVAE.make_config("tiny", {"beta": -1.0})
    with pytest.raises(SlpError, match="no option"):
        DisentangledVAE.make_config("tiny", {"parts": "whole_body"})
    cli = subprocess.run([sys.executable, "-m", "slp_cli", "train", "vae", "--data", str(corpus), "-o",
                          str(tmp_path / "x"), "--capacity", "huge", "--dry-run"], capture_output=True, text=True,
                         timeout=120)
    lines = [line for line in cli.stderr.splitlines() if line.strip()]
    assert cli.returncode == 1 and len(lines) == 1 and "capacity" in lines[0], cli.stderr
    assert not (tmp_path / "x").exists()
