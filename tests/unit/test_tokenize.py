"""`slp tokenize`, `slp reconstruct`, `slp eval-tokenizer` (slp_cli/tokenize.py) for both tokenizers."""

import dataclasses
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import slp_cli
from slp_cli import SlpError
from slp_cli.data.synth import synthesize
from slp_cli.models import load_model
from slp_cli.normalize import normalize_samples
from slp_cli.tokenize import _frame_errors, evaluate_tokenizer, reconstruct, tokenize
from slp_cli.training import TrainOptions, train

from .test_vae import corpus  # noqa: F401 - shared fixture

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    for name, steps in (("vae", 60), ("vqvae", 40)):
        train(name, TrainOptions(output=root / name, data=[corpus]), preset="tiny",
              overrides={"max_steps": steps})
    return {"vae": root / "vae", "vqvae": root / "vqvae"}


def same_pose(a, b):
    return np.array_equal(a, b, equal_nan=True)


def test_vae_tokens_round_trip(models, corpus, tmp_path):
    tokens, poses = tmp_path / "latents.h5", tmp_path / "rec.h5"
    summary = tokenize(models["vae"], corpus, tokens)
    ref = slp_cli.load(corpus)
    art = slp_cli.load(tokens)
    assert summary["samples"] == len(ref) and summary["arrays"] == ["mu", "logvar"]
    assert art.provenance["stage"] == "tokenize" and art.provenance["args"]["kind"] == "vae"
    assert art.normalized and art.fps == ref.fps
    model = load_model(models["vae"], expect="vae")
    for s, r in zip(art, ref):
        assert (s.id, s.text, s.glosses, s.lang, s.split) == (r.id, r.text, r.glosses, r.lang, r.split)
        assert same_pose(s.pose, r.pose)  # the tokens artifact stays a valid pose artifact
        assert s.arrays["mu"].shape == s.arrays["logvar"].shape == (r.num_frames, 80)
        assert s.arrays["mu"].dtype == np.float32
    with torch.no_grad():
        mu, logvar = model.posterior(torch.from_numpy(ref[0].pose))
    np.testing.assert_allclose(art[0].arrays["mu"], mu.numpy(), atol=1e-6)
    np.testing.assert_allclose(art[0].arrays["logvar"], logvar.numpy(), atol=1e-6)

    reconstruct(models["vae"], tokens, poses)
    rec = slp_cli.load(poses)
    assert rec.ids == ref.ids and rec.provenance["stage"] == "reconstruct"
    for s, r in zip(rec, ref):
        assert s.pose.shape == r.pose.shape and np.isfinite(s.pose).all() and not s.arrays
    np.testing.assert_allclose(rec[3].pose, model.reconstruct(ref[3].pose), atol=1e-5)


def test_vqvae_tokens_round_trip(models, corpus, tmp_path):
    tokens, poses = tmp_path / "tokens.h5", tmp_path / "rec.h5"
    tokenize(models["vqvae"], corpus, tokens, split="dev")
    ref = slp_cli.load(corpus, split="dev")
    art = slp_cli.load(tokens)
    assert art.ids == ref.ids and {s.split for s in art} == {"dev"}
    model = load_model(models["vqvae"], expect="vqvae")
    for s in art:
        assert sorted(s.arrays) == ["tokens_body", "tokens_left_hand", "tokens_right_hand"]
        for g, ids in s.arrays.items():
            assert ids.shape == (-(-s.num_frames // 4),) and ids.dtype == np.int32
            assert 0 <= ids.min() and ids.max() < model.vq[g.removeprefix("tokens_")].quantizer.size
    reconstruct(models["vqvae"], tokens, poses)
    rec = slp_cli.load(poses)
    assert rec.ids == ref.ids
    for s, r in zip(rec, ref):
        assert s.pose.shape == r.pose.shape
        np.testing.assert_allclose(s.pose, model.reconstruct(r.pose), atol=1e-5)


def test_eval_tokenizer_agrees_with_a_direct_computation(models, corpus, tmp_path):
    result = evaluate_tokenizer(models["vqvae"], corpus, "test")
    model = load_model(models["vqvae"], expect="vqvae")
    test = slp_cli.load(corpus, split="test")
    errors, counts = [], {name: np.zeros(size) for name, size in model.codebooks.items()}
    for s in test:
        rec = model.reconstruct(s.pose)
        d = np.linalg.norm(rec - s.pose, axis=-1)
        errors.append(d[np.isfinite(d)])
        with torch.no_grad():
            for g, ids in model.encode(torch.from_numpy(s.pose)).items():
                counts[g] += np.bincount(ids.numpy(), minlength=len(counts[g]))  # g: tokens_<stream>
    assert result["samples"] == len(test) and result["frames"] == sum(s.num_frames for s in test)
    assert result["mpjpe"]["all"] == pytest.approx(np.concatenate(errors).mean(), rel=1e-5)
    train_mean = np.nanmean(np.concatenate([s.pose for s in slp_cli.load(corpus, split="train")]), 0)
    base = np.concatenate([np.linalg.norm(train_mean - s.pose, axis=-1)[:, 8:29].ravel() for s in test])
    assert result["mean_pose_mpjpe"]["right_hand"] == pytest.approx(np.nanmean(base), rel=1e-5)
    for g, c in counts.items():
        p = c[c > 0] / c.sum()
        book = result["codebook"][g]
        assert book["used"] == (c > 0).sum() and book["perplexity"] == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    assert set(result["pa_mpjpe"]) == {"all", "body", "right_hand", "left_hand", "face"}
    vae = evaluate_tokenizer(models["vae"], corpus, "test")
    assert vae["kind"] == "vae" and vae["codebook"] == {}


def test_frame_errors_by_hand():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(4, 21, 3)).astype(np.float32)
    ref[1, 5] = np.nan  # a joint missing in the reference is left out
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    hyp = (1.5 * ref @ rot.T + np.array([0.3, -2.0, 1.0])).astype(np.float32)
    hyp[1, 5] = 0.0
    mpjpe_sum, mpjpe_n, pa_sum, pa_n = _frame_errors(hyp, ref)
    assert mpjpe_n == 4 * 21 - 1 and pa_n == 4
    expected = np.nansum(np.linalg.norm(hyp - ref, axis=-1))
    assert mpjpe_sum == pytest.approx(expected, rel=1e-5)
    assert pa_sum / pa_n < 1e-4  # a similarity transform of the reference aligns back exactly
    shifted = ref + 0.1
    assert _frame_errors(shifted, ref)[0] / (4 * 21 - 1) == pytest.approx(np.sqrt(3) * 0.1, rel=1e-4)


def test_wrong_models_and_inputs_are_refused(models, corpus, tmp_path):
    vq_tokens = tmp_path / "vq.h5"
    tokenize(models["vqvae"], corpus, vq_tokens, split="test")
    with pytest.raises(SlpError, match="holds vqvae arrays, but .* is a vae"):
        reconstruct(models["vae"], vq_tokens, tmp_path / "x.h5")
    with pytest.raises(SlpError, match="not a tokens artifact"):
        reconstruct(models["vqvae"], corpus, tmp_path / "x.h5")
    # a VQ-VAE with other weights: its codes mean something else
    other = tmp_path / "other"
    shutil.copytree(models["vqvae"], other)
    blob = torch.load(other / "model.pt", weights_only=False)
    blob["state_dict"]["vq.body.quantizer.codebook"] += 1.0
    torch.save(blob, other / "model.pt")
    with pytest.raises(SlpError, match="tokenized by another vqvae"):
        reconstruct(other, vq_tokens, tmp_path / "x.h5")
    # a checkpoint of an architecture that is no tokenizer
    blob["model"] = "a2v"
    torch.save(blob, other / "model.pt")
    with pytest.raises(SlpError, match="holds a 'a2v' model \\(text-to-pose generator\\), but a pose tokenizer is needed"):
        tokenize(other, corpus, tmp_path / "x.h5")
    with pytest.raises(SlpError, match="no trained model"):
        tokenize(tmp_path, corpus, tmp_path / "x.h5")
    with pytest.raises(SlpError, match="no samples in split 'validation'"):
        tokenize(models["vae"], corpus, tmp_path / "x.h5", split="validation")
    assert not (tmp_path / "x.h5").exists()


def test_too_short_samples_are_skipped_and_counted(models, tmp_path):
    samples = normalize_samples(synthesize(preset="tiny", sentences=3, seed=6))
    short = dataclasses.replace(samples[0], pose=samples[0].pose[:3], confidence=None, gloss_spans=None)
    path = slp_cli.save([short, *samples[1:]], tmp_path / "in.h5", fps=25, normalized=True)
    summary = tokenize(models["vqvae"], path, tmp_path / "out.h5")
    assert summary["samples"] == len(samples) - 1
    assert summary["skipped"] == [{"input": short.id, "reason": summary["skipped"][0]["reason"]}]
    assert "3 frames" in summary["skipped"][0]["reason"]
    out = slp_cli.load(tmp_path / "out.h5")
    assert short.id not in out.ids and out.skipped[0]["input"] == short.id
    only_short = slp_cli.save([short], tmp_path / "short.h5", fps=25, normalized=True)
    with pytest.raises(SlpError, match="no sample can be tokenized"):
        tokenize(models["vqvae"], only_short, tmp_path / "none.h5")
    assert not (tmp_path / "none.h5").exists() and not (tmp_path / "none.h5.partial").exists()
    # the VAE tokenizes frame by frame: a 3-frame sample is fine
    assert tokenize(models["vae"], only_short, tmp_path / "vae.h5")["samples"] == 1


def slp(*args):
    return subprocess.run([sys.executable, "-m", "slp_cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_cli(models, corpus, tmp_path):
    import json

    run = slp("eval-tokenizer", corpus, "--model", models["vqvae"], "--split", "dev", "--json", "-")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["kind"] == "vqvae" and result["split"] == "dev" and set(result["codebook"]) == {
        "tokens_body", "tokens_left_hand", "tokens_right_hand"}
    assert "PA-MPJPE" in run.stderr and "perplexity" in run.stderr
    tokens = tmp_path / "t.h5"
    run = slp("tokenize", corpus, "--model", models["vae"], "-o", tokens, "--split", "test")
    assert run.returncode == 0 and tokens.exists(), run.stderr
    run = slp("reconstruct", tokens, "--model", models["vqvae"], "-o", tmp_path / "r.h5")
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 1 and len(lines) == 1 and "holds vae arrays" in lines[0], run.stderr
    assert not (tmp_path / "r.h5").exists()
