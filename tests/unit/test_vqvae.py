"""SOKE's decoupled VQ-VAE (slp_cli/models/vqvae.py) through the shared loop, on the tiny synthetic corpus."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import slp_cli
from slp_cli import SlpError
from slp_cli.data.synth import synthesize
from slp_cli.models import load_model
from slp_cli.models.vqvae import DecoupledVQVAE, Quantizer, VQVAEConfig
from slp_cli.normalize import normalize_samples
from slp_cli.skeleton import ARTICULATORS
from slp_cli.tokenize import evaluate_tokenizer
from slp_cli.training import TrainOptions, train

from .test_vae import corpus, train_losses  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEPS = 200


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("vqvae") / "run"
    summary = train("vqvae", TrainOptions(output=out, data=[corpus]), preset="tiny",
                    overrides={"max_steps": STEPS})
    assert summary["steps"] == STEPS
    return out


def longest(corpus, split):
    return max(slp_cli.load(corpus, split=split), key=lambda s: s.num_frames).pose


def test_loss_falls_and_reconstruction_beats_the_mean_pose(trained, corpus):
    losses = train_losses(trained)
    steps = sorted(losses)
    assert np.mean([losses[s] for s in steps[-3:]]) < 0.5 * np.mean([losses[s] for s in steps[:3]])
    r = evaluate_tokenizer(trained, corpus, "test")
    base, err = r["mean_pose_mpjpe"], r["mpjpe"]
    # hands and face: a wide margin. The body less so: normalization pins its shoulders (the mean
    # pose is already right there), and its stream, shared with the 128 face points, carries the
    # signer's proportions (hips) and the arms through 96 codes at a quarter of the frame rate.
    for art in ("right_hand", "left_hand", "face"):
        assert err[art] < 0.5 * base[art], (art, err[art], base[art])
    assert err["body"] < 0.9 * base["body"]
    assert err["all"] < 0.5 * base["all"]
    for g, book in r["codebook"].items():
        assert book["size"] == {"tokens_body": 96, "tokens_left_hand": 192, "tokens_right_hand": 192}[g]
        assert 3 <= book["used"] <= book["size"] and 2.0 < book["perplexity"] <= book["used"]


def test_token_shapes_and_round_trip(trained, corpus):
    model = load_model(trained, expect="vqvae")
    pose = longest(corpus, "test")[:29]  # 29 frames: not a multiple of 4
    tokens = model.encode_tokens(torch.from_numpy(pose))
    assert list(tokens) == ["body", "left_hand", "right_hand"]
    for g, ids in tokens.items():
        assert ids.shape == (8,) and ids.dtype == torch.int64  # ceil(29 / 4)
        assert 0 <= int(ids.min()) and int(ids.max()) < model.vq[g].quantizer.size
    with torch.no_grad():
        rec = model.decode_tokens(tokens, num_frames=29)
        assert rec.shape == (29, 178, 3) and torch.isfinite(rec).all()
        assert model.decode_tokens(tokens).shape == (32, 178, 3)
        np.testing.assert_allclose(model.reconstruct(pose), rec.numpy(), atol=1e-5)
        # batched and single sequences give the same tokens
        batch = torch.from_numpy(np.stack([pose[:24], pose[4:28]]))
        both = model.encode_tokens(batch)
        for g in tokens:
            assert both[g].shape == (2, 6)
            assert torch.equal(both[g][0], model.encode_tokens(batch[0])[g])
            assert torch.equal(both[g][1], model.encode_tokens(batch[1])[g])


def test_decoupled_streams_stay_decoupled(trained, corpus):
    model = load_model(trained, expect="vqvae")
    pose = torch.from_numpy(longest(corpus, "dev")[:32])
    moved = pose.clone()
    moved[:, ARTICULATORS["left_hand"]] += 0.5
    a, b = model.encode_tokens(pose), model.encode_tokens(moved)
    assert torch.equal(a["body"], b["body"]) and torch.equal(a["right_hand"], b["right_hand"])
    assert not torch.equal(a["left_hand"], b["left_hand"])
    with torch.no_grad():
        other = dict(a, right_hand=(a["right_hand"] + 1) % model.vq["right_hand"].quantizer.size)
        diff = (model.decode_tokens(a) - model.decode_tokens(other)).abs().amax(dim=(0, 2))
    changed = np.flatnonzero(diff.numpy() > 0)
    assert changed.min() == ARTICULATORS["right_hand"].start and changed.max() == ARTICULATORS["right_hand"].stop - 1


def test_decoding_indices_equals_decoding_quantized_latents(trained, corpus):
    model = load_model(trained, expect="vqvae")
    pose = torch.from_numpy(longest(corpus, "dev")[:32])[None]
    x, _ = model.features(pose)
    for g, xg in model._split(x).items():
        part = model.vq[g]
        with torch.no_grad():
            z = part.encoder(xg.transpose(1, 2)).transpose(1, 2).reshape(-1, model.config.code_dim)
            before = part.quantizer.codebook.clone()
            zq, ids, _ = part.quantizer(z)  # eval mode: no codebook update
            assert torch.equal(part.quantizer.codebook, before)
            # nearest neighbour, checked by brute force
            dist = torch.cdist(z, part.quantizer.codebook)
            np.testing.assert_allclose(dist.gather(1, ids[:, None])[:, 0].numpy(), dist.min(-1).values.numpy(),
                                       atol=1e-4)
            np.testing.assert_allclose(part.quantizer.dequantize(ids).numpy(), zq.numpy(), atol=1e-5)
            from_latents = part.decode_codes(zq.view(1, -1, model.config.code_dim))
            from_ids = part.decode_codes(part.quantizer.dequantize(ids.view(1, -1)))
        np.testing.assert_allclose(from_ids.numpy(), from_latents.numpy(), atol=1e-4)


def quantizer(**kw) -> Quantizer:
    config = VQVAEConfig(**{"codebook_size": {"body": 4, "left_hand": 4, "right_hand": 4}, **kw})
    return Quantizer(4, 2, config)


def test_ema_update_and_dead_code_reset_by_hand():
    q = quantizer(ema_decay=0.9, reset_fraction=0.125, reset_uses=0.0, commit=0.02)
    q.train()
    q.initialized.fill_(1)
    q.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0], [100.0, 100.0], [-10.0, -10.0]]))
    q.code_count.copy_(torch.tensor([2.0, 2.0, 0.1, 2.0]))
    q.code_sum.copy_(q.codebook * q.code_count[:, None])
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [9.0, 11.0], [-10.0, -12.0]])
    zq, ids, loss = q(z)
    assert ids.tolist() == [0, 0, 1, 3]
    # code 0: sum 0.9*(0,0) + 0.1*(2,0), count 0.9*2 + 0.1*2
    np.testing.assert_allclose(q.codebook[0].numpy(), [0.2 / 2.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(q.codebook[1].numpy(), [(18 + 0.9) / 1.9, (18 + 1.1) / 1.9], atol=1e-5)
    # code 2 was never used and its use fell below 1/8 of uniform (4 vectors / 4 codes): reset onto a batch vector
    assert any(torch.equal(q.codebook[2], row) for row in z)
    assert float(q.code_count[2]) == pytest.approx(1.0)
    np.testing.assert_allclose(zq.detach().numpy(), [[0, 0], [0, 0], [10, 10], [-10, -10]], atol=1e-6)
    np.testing.assert_allclose(float(loss), 0.02 * float(((z - zq.detach()) ** 2).mean()), rtol=1e-5)


def test_first_batch_initializes_the_codebook_and_loss_mode_learns_it():
    q = quantizer(quantizer="loss")
    assert isinstance(q.codebook, torch.nn.Parameter)
    q.train()
    z = torch.randn(3, 2, requires_grad=True)
    zq, ids, loss = q(z)
    assert bool(q.initialized)
    # 3 vectors tiled over 4 codes: every vector is (almost exactly) a code
    assert torch.cdist(z.detach(), q.codebook.detach()).min(-1).values.max() < 0.05
    zq2, ids2, loss2 = q(z.detach() + 1.0)
    (zq2.sum() + loss2).backward()
    assert q.codebook.grad is not None and q.codebook.grad.abs().sum() > 0  # the embedding loss


def _ddp_worker(rank, world, port, z, out):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    q = quantizer(reset_fraction=0.0, reset_uses=0.0)
    q.train()
    half = z.shape[1] // world
    for step in range(3):
        q(z[step, rank * half:(rank + 1) * half])
    torch.save(q.state_dict(), f"{out}.{rank}")
    dist.destroy_process_group()


def test_codebook_statistics_are_summed_across_ddp_processes(tmp_path):
    torch.manual_seed(1)
    z = torch.randn(3, 8, 2)
    out = str(tmp_path / "q")
    torch.multiprocessing.spawn(_ddp_worker, args=(2, 29700 + os.getpid() % 1000, z, out), nprocs=2)
    torch.manual_seed(0)
    single = quantizer(reset_fraction=0.0, reset_uses=0.0)
    single.train()
    single.initialized.fill_(0)
    ranks = [torch.load(f"{out}.{r}") for r in range(2)]
    # the first batch initialises from rank 0's half; replay that, then the full batches
    single._initialize(z[0, :4])
    single.code_count.fill_(8 / 4)
    single.code_sum.copy_(single.codebook * 2)
    single._update(z[0], single.quantize(z[0]))
    for step in (1, 2):
        single(z[step])
    for state in ranks:
        for name in ("codebook", "code_sum", "code_count"):
            np.testing.assert_allclose(state[name].numpy(), getattr(single, name).numpy(), atol=1e-5)


def test_resume_after_an_interruption_continues_the_same_run(corpus, tmp_path, monkeypatch):
    full, part = tmp_path / "full", tmp_path / "part"
    kw = {"max_steps": 16, "log_every": 1, "checkpoint_every": 8}
    train("vqvae", TrainOptions(output=full, data=[corpus]), preset="tiny", overrides=kw)

    def crash(self, step):
        if step == 10:
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(DecoupledVQVAE, "on_step_start", crash)
        with pytest.raises(KeyboardInterrupt):
            train("vqvae", TrainOptions(output=part, data=[corpus]), preset="tiny", overrides=kw)
    assert not (part / "model.pt").exists()
    train("vqvae", TrainOptions(output=part, data=[corpus], resume=True), preset="tiny",
          overrides=kw)
    a, b = train_losses(full), train_losses(part)
    assert sorted(b) == list(range(1, 17))  # steps 9-10 logged before the crash were dropped and redone
    # the same run, step for step: data order, EMA codebooks, dead-code resets, cosine schedule
    np.testing.assert_allclose([b[s] for s in range(9, 17)], [a[s] for s in range(9, 17)], rtol=1e-5)


@pytest.mark.parametrize("parts, streams", [("body_hands", ["body", "hands"]), ("whole_body", ["whole_body"])])
def test_ablations_build_and_train(corpus, tmp_path, parts, streams):
    out = tmp_path / parts
    train("vqvae", TrainOptions(output=out, data=[corpus]), preset="tiny",
          overrides={"parts": parts, "max_steps": 20})
    losses = train_losses(out)
    assert losses[20] < losses[10]
    model = load_model(out, expect="vqvae")
    assert model.token_names == streams
    pose = torch.from_numpy(slp_cli.load(corpus, split="dev")[0].pose)
    tokens = model.encode_tokens(pose)
    assert list(tokens) == streams and all(t.shape == (-(-len(pose) // 4),) for t in tokens.values())
    assert model.decode_tokens(tokens, num_frames=len(pose)).shape == pose.shape


def test_bad_input(corpus, tmp_path):
    with pytest.raises(SlpError, match="window"):
        DecoupledVQVAE.make_config("tiny", {"window": 30})
    with pytest.raises(SlpError, match="parts"):
        DecoupledVQVAE.make_config("tiny", {"parts": "fingers"})
    samples = normalize_samples(synthesize(preset="tiny", sentences=6, seed=4))
    samples[0] = dataclasses.replace(samples[0], pose=samples[0].pose[:3], confidence=None, gloss_spans=None)
    short = slp_cli.save(samples, tmp_path / "short.h5", fps=25, normalized=True)
    with pytest.raises(SlpError, match=f"'{samples[0].id}' has 3 frames"):
        train("vqvae", TrainOptions(output=tmp_path / "a", data=[short]), preset="tiny")
    assert not (tmp_path / "a" / "checkpoint.pt").exists()
    model = DecoupledVQVAE(DecoupledVQVAE.make_config("tiny")).eval()
    with pytest.raises(SlpError, match="shorter than"):
        model.encode_tokens(torch.zeros(3, 178, 3))
    with pytest.raises(SlpError, match="outside its codebook"):
        model.decode_tokens({"body": torch.tensor([0, 96]), "left_hand": torch.tensor([0, 0]),
                      "right_hand": torch.tensor([0, 0])})
    with pytest.raises(SlpError, match="missing"):
        model.decode_tokens({"body": torch.tensor([0, 1])})
    # missing joints (NaN) are fed as the mean: the output stays finite
    pose = torch.from_numpy(samples[1].pose[:16]).clone()
    pose[:, ARTICULATORS["left_hand"]] = float("nan")
    with torch.no_grad():
        assert torch.isfinite(model.decode(model.encode(pose))).all()


def test_cli_flags(corpus, tmp_path):
    def slp(*args):
        return subprocess.run([sys.executable, "-m", "slp_cli", "train", "vqvae", "--data", str(corpus), "-o",
                               str(tmp_path / "x"), "--preset", "tiny", *args], capture_output=True, text=True,
                              timeout=120)

    run = slp("--body-hands", "--codes", "64,256", "--dry-run")
    assert run.returncode == 0, run.stderr
    assert '"parts": "body_hands"' in run.stdout and '"hands": 256' in run.stdout and '"body": 64' in run.stdout
    run = slp("--whole-body", "--body-hands")
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 1 and len(lines) == 1 and "choose one" in lines[0]
    assert not (tmp_path / "x").exists()
