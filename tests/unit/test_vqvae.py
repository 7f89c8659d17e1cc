"""SOKE's decoupled VQ-VAE (slp_cli/models/vqvae.py) through the shared loop, on the tiny synthetic corpus."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

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


def primed(counts, **kw) -> Quantizer:
    """A training quantizer with four known codes and use counts."""
    q = quantizer(**kw)
    q.train()
    q.initialized.fill_(1)
    q.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0], [100.0, 100.0], [-10.0, -10.0]]))
    q.code_count.copy_(torch.tensor(counts))
    q.code_sum.copy_(q.codebook * q.code_count[:, None])
    return q


def test_ema_update_and_dead_code_reset_by_hand():
    q = primed([2.0, 2.0, 0.1, 2.0], ema_decay=0.9, reset_fraction=0.125, reset_uses=0.0, commit=0.02)
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
    run = slp("--parts", "body,lhand,rhand,face", "--recon", "smooth_l1", "--batching", "sequences", "--dry-run")
    assert run.returncode == 0, run.stderr
    assert '"parts": "decoupled_face"' in run.stdout and '"face": 96' in run.stdout and '"smooth_l1"' in run.stdout
    run = slp("--parts", "body,fingers", "--dry-run")
    assert run.returncode == 1 and "parts must be" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    run = slp("--whole-body", "--body-hands")
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 1 and len(lines) == 1 and "choose one" in lines[0]
    assert not (tmp_path / "x").exists()


# --- the authors' configuration (issue 18.4), the face stream (issue 15), autocast, SMPL-X input --------

def test_dead_code_reset_at_one_use_per_batch_absolute():
    q = primed([3.0, 1.0, 1.005, 3.0], ema_decay=0.99)  # defaults: reset_uses 1 (absolute), reset_fraction 0
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [9.0, 11.0], [-10.0, -12.0]])
    q(z)
    # code 1: used once, 0.99 * 1 + 0.01 * 1 = 1.0 uses per batch: alive (the code's `>= 1.0`)
    assert float(q.code_count[1]) == pytest.approx(1.0)
    np.testing.assert_allclose(q.codebook[1].numpy(), [(9.9 + 0.09) / 1.0, (9.9 + 0.11) / 1.0], atol=1e-5)
    # code 2: unused, 0.99 * 1.005 < 1 -> dead although far above 1/8 of uniform use (0.125 of 1):
    # moved onto a batch vector, restarted at one use with that vector as its sum
    assert any(torch.equal(q.codebook[2], row) for row in z)
    assert float(q.code_count[2]) == pytest.approx(1.0)
    np.testing.assert_allclose(q.code_sum[2].numpy(), q.codebook[2].numpy())
    # the earlier relative rule keeps it
    old = primed([3.0, 1.0, 1.005, 3.0], ema_decay=0.99, reset_uses=0.0, reset_fraction=0.125)
    old(z)
    np.testing.assert_allclose(old.codebook[2].numpy(), [100.0, 100.0], atol=1e-4)
    # the first batch initialises every code at one use (T2M-GPT's code_count of ones)
    fresh = quantizer()
    fresh.train()
    fresh._initialize(torch.randn(16, 2))
    assert torch.equal(fresh.code_count, torch.ones(4))


def test_optimizer_schedule_and_loop_settings_are_the_authors():
    for name, preset in DecoupledVQVAE.presets.items():
        config = DecoupledVQVAE.make_config(name)
        assert config.grad_clip == 0 and config.patience == 0, name  # no clipping, no early stopping
        assert config.encoder_dilations == "descending" and config.reset_uses == 1 and config.reset_fraction == 0
    model = DecoupledVQVAE(DecoupledVQVAE.make_config("tiny", {"max_steps": 100}))
    opt, sched = model.configure_optimizers()
    assert isinstance(opt, torch.optim.AdamW)
    group = opt.param_groups[0]
    assert group["betas"] == (0.9, 0.99) and group["weight_decay"] == 0.0
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(2e-3) and all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-6)  # cosine down to eta_min 1e-6
    assert DecoupledVQVAE.selection == ("hand_error", "min")


def test_encoder_dilations_in_soke_order():
    def dilations(seq):
        return [[b[1].dilation[0] for b in m.blocks] for m in seq if isinstance(m, torch.nn.Module)
                and hasattr(m, "blocks")]

    config = DecoupledVQVAE.make_config("tiny", {"depth": 3})
    part = DecoupledVQVAE(config).vq["body"]
    assert dilations(part.encoder) == [[9, 3, 1]] * 2 and dilations(part.decoder) == [[9, 3, 1]] * 2
    asc = DecoupledVQVAE(DecoupledVQVAE.make_config("tiny", {"depth": 3, "encoder_dilations": "ascending"}))
    assert dilations(asc.vq["body"].encoder) == [[1, 3, 9]] * 2


def test_quantize_is_autocast_safe():
    torch.manual_seed(0)
    q = Quantizer(192, 64, VQVAEConfig())
    q.codebook.copy_(torch.randn(192, 64) * 0.3 + 4.0)  # large norms, close codes: bf16 cancellation
    z = q.codebook[torch.randint(192, (2000,))] + torch.randn(2000, 64) * 0.3
    ref = q.quantize(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = q.quantize(z)
        naive = (z.pow(2).sum(-1, keepdim=True) - 2 * z @ q.codebook.t() + q.codebook.pow(2).sum(-1)).argmin(-1)
        zq, ids, _ = q.eval()(z)
        codes = q.dequantize(ref)
    assert (naive != ref).float().mean() > 0.05  # what the test guards against does happen
    assert torch.equal(got, ref) and torch.equal(ids, ref)
    assert codes.dtype == torch.float32 and zq.dtype == torch.float32
    # the tokenizer's own encode under autocast: the same codes for the same encoder outputs
    model = DecoupledVQVAE(DecoupledVQVAE.make_config("tiny")).eval()
    model.vq["body"].quantizer.codebook.copy_(torch.randn(96, 32))
    z = torch.randn(500, 32) * 0.05 + 2.0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(model.vq["body"].quantizer.quantize(z), model.vq["body"].quantizer.quantize(z.double()))


def test_selection_by_dev_hand_error(trained, corpus):
    import csv

    from slp_cli.data.loader import BucketBatchSampler
    from slp_cli.tokenize import _frame_errors

    with open(trained / "metrics.csv") as f:
        dev = {int(r["step"]): float(r["value"]) for r in csv.DictReader(f)
               if r["split"] == "dev" and r["name"] == "hand_error"}
    assert len(dev) == STEPS // 50
    model = load_model(trained, expect="vqvae").eval()
    # model.pt is the evaluation with the lowest dev hand error: recompute it as the loop does
    ds = model.make_dataset(slp_cli.load(corpus, split="dev"))
    sampler = BucketBatchSampler(ds.lengths, model.config.batch_size, shuffle=False, drop_last=False)
    total, n = 0.0, 0
    with torch.no_grad():
        for idx in sampler:
            batch = model.collate([ds[i] for i in idx])
            total += float(model.validation_step(batch)["hand_error"]) * len(idx)
            n += len(idx)
    assert total / n == pytest.approx(min(dev.values()), rel=1e-4)
    # hand_error is the hands' PA-MPJPE, the computation of `slp eval-tokenizer`
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(30, 21, 3)).astype(np.float32)
    hyp = (ref @ np.linalg.qr(rng.normal(size=(3, 3)))[0].astype(np.float32)) * 1.7 + 3 + \
        rng.normal(size=ref.shape).astype(np.float32) * 0.1
    ref[3, :5] = np.nan
    from slp_cli.models.vqvae import procrustes_errors

    e, ok = procrustes_errors(torch.from_numpy(hyp), torch.from_numpy(ref), torch.from_numpy(np.isfinite(ref).all(-1)))
    _, _, pa_sum, pa_n = _frame_errors(hyp, ref)
    assert int(ok.sum()) == pa_n and float(e.sum()) == pytest.approx(pa_sum, rel=1e-4)


def test_losses_smooth_l1_and_face_weight(corpus):
    samples = slp_cli.load(corpus, split="train")[:2]
    for recon in ("l2", "smooth_l1"):
        model = DecoupledVQVAE.from_data(DecoupledVQVAE.make_config("tiny", {"recon": recon}), samples).eval()
        batch = model.collate([s.pose[:16] for s in samples])
        out = model.training_step(batch)
        x, _ = model.features(torch.from_numpy(np.asarray(batch["pose"])))
        xs = model._split(x)
        with torch.no_grad():
            rec = {g: model.vq[g](xs[g])[0] for g in xs}
        f = F.smooth_l1_loss if recon == "smooth_l1" else F.mse_loss
        np.testing.assert_allclose(float(out["rec_left_hand"]), float(f(rec["left_hand"], xs["left_hand"])), rtol=1e-4)
        cols, w = model.columns["body"], 13 / 30
        body, face = (float(f(rec["body"][..., cols[a]], xs["body"][..., cols[a]])) for a in ("body", "face"))
        # the face's 13/30 of the body's weight: SOKE's mean over its 133 values, scaled to 2 articulators
        np.testing.assert_allclose(float(out["rec_body"]), 2 * (body + w * face) / (1 + w), rtol=1e-4)


def test_whole_sequence_batches():
    config = DecoupledVQVAE.make_config("tiny", {"batching": "sequences"})
    model = DecoupledVQVAE(config)
    samples = [slp_cli.Sample(id=f"s{t}", pose=np.arange(t, dtype=np.float32)[:, None, None] * np.ones((1, 178, 3),
                                                                                                       np.float32))
               for t in (10, 42, 103, 500)]
    ds = model.make_dataset(samples)
    assert ds.lengths.tolist() == [40, 40, 100, 400]
    np.testing.assert_array_equal(ds[0][:, 0, 0], np.linspace(0, 9, 40).astype(int))  # resampled up
    np.testing.assert_array_equal(ds[1][:, 0, 0], np.arange(1, 41))  # centre cut to a multiple of 4
    np.testing.assert_array_equal(ds[3][:, 0, 0], np.linspace(0, 499, 400).astype(int))  # resampled down


def test_face_stream_round_trip(corpus, tmp_path):
    out = tmp_path / "face"
    train("vqvae", TrainOptions(output=out, data=[corpus]), preset="tiny",
          overrides={"parts": "body,lhand,rhand,face", "max_steps": 30,
                     "batching": "sequences", "recon": "smooth_l1"})  # the code's loader and loss, through the loop
    losses = train_losses(out)
    assert losses[30] < losses[10]
    model = load_model(out, expect="vqvae").eval()
    assert model.config.parts == "decoupled_face"
    assert model.array_names == ["tokens_body", "tokens_left_hand", "tokens_right_hand", "tokens_face"]
    assert model.codebooks == {"tokens_body": 96, "tokens_left_hand": 192, "tokens_right_hand": 192, "tokens_face": 96}
    pose = torch.from_numpy(longest(corpus, "dev")[:30])
    with torch.no_grad():
        arrays = model.encode(pose)
        assert all(a.shape == (8,) and a.dtype == torch.int32 for a in arrays.values())
        rec = model.decode(arrays, num_frames=30)
        assert rec.shape == (30, 178, 3) and torch.isfinite(rec).all()
        # the face comes back from its own stream: other face tokens change the face points only,
        # other body tokens leave the face as it was
        face = ARTICULATORS["face"]
        other = dict(arrays, tokens_face=(arrays["tokens_face"] + 1) % 96)
        diff = (model.decode(other, 30) - rec).abs().amax(dim=(0, 2)).numpy()
        changed = np.flatnonzero(diff > 0)
        assert changed.min() == face.start and changed.max() == face.stop - 1
        other = dict(arrays, tokens_body=(arrays["tokens_body"] + 1) % 96)
        diff = (model.decode(other, 30) - rec).abs().amax(dim=(0, 2)).numpy()
        assert diff[face].max() == 0 and diff[ARTICULATORS["body"]].max() > 0
        # and the face points are what the face stream encodes
        moved = pose.clone()
        moved[:, face] += 0.3
        a, b = model.encode_tokens(pose), model.encode_tokens(moved)
        assert all(torch.equal(a[g], b[g]) for g in ("body", "left_hand", "right_hand"))
        assert not torch.equal(a["face"], b["face"])


def smplx_corpus(path, seed=5):
    """A synthetic fit-smplx-like artifact: every sample carries a smooth (T, 133) 'smplx' array."""
    samples = normalize_samples(synthesize(preset="tiny", seed=seed))
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(178 * 3, 133)).astype(np.float32) / 40
    out = []
    for s in samples:
        flat = np.nan_to_num(s.pose.reshape(len(s.pose), -1))
        t = s.num_frames
        camera = np.tile(np.array([[100.0, 1.0, 2.0, 0.0]], np.float32), (t, 1))
        out.append(dataclasses.replace(s, arrays={"smplx": flat @ mix, "betas": rng.normal(size=(1, 10)).astype(np.float32),
                                                  "global_orient": np.zeros((t, 3), np.float32), "camera": camera}))
    return slp_cli.save(out, path, fps=25, normalized=True)


def test_smplx_input(tmp_path):
    from slp_cli.extract import smplx_fit
    from slp_cli.tokenize import load_body_model, pose_smplx, reconstruct, tokenize

    data = smplx_corpus(tmp_path / "fit.h5")
    out = tmp_path / "smplx"
    train("vqvae", TrainOptions(output=out, data=[data]), preset="tiny", overrides={"input": "smplx", "max_steps": 60})
    losses = train_losses(out)
    assert np.mean([losses[s] for s in (50, 60)]) < 0.7 * np.mean([losses[s] for s in (10, 20)])
    model = load_model(out, expect="vqvae").eval()
    assert model.input_name == "smplx" and model.mean.shape == (133,)
    test = slp_cli.load(data, split="test")
    x = torch.from_numpy(test[0].arrays["smplx"][:29])
    with torch.no_grad():
        tokens = model.encode_tokens(x)
        assert list(tokens) == ["body", "left_hand", "right_hand"] and tokens["body"].shape == (8,)
        assert model.decode_tokens(tokens, num_frames=29).shape == (29, 133)
    with pytest.raises(SlpError, match="133"):
        model.encode_tokens(torch.zeros(16, 178, 3))
    # the stages read and write the smplx array; parameter errors beat the mean parameters
    r = evaluate_tokenizer(out, data, "test")
    assert r["input"] == "smplx" and set(r["mpjpe"]) == {"all", "body", "left_hand", "right_hand", "face"}
    assert r["mpjpe"]["all"] < 0.7 * r["mean_pose_mpjpe"]["all"], r
    tokenize(out, data, tmp_path / "tok.h5", split="test")
    reconstruct(out, tmp_path / "tok.h5", tmp_path / "rec.h5")
    rec = slp_cli.load(tmp_path / "rec.h5")
    assert rec.samples[0].arrays["smplx"].shape == (test[0].num_frames, 133)
    assert "betas" in rec.samples[0].arrays and np.isnan(rec.samples[0].pose).all()
    # with SMPL-X model files (a synthetic one here): poses, and joint errors of the posed parameters
    model_dir = smplx_fit.write_synthetic_model(tmp_path / "smplx_model", seed=0).parent
    reconstruct(out, tmp_path / "tok.h5", tmp_path / "posed.h5", smplx_model_dir=model_dir)
    posed = slp_cli.load(tmp_path / "posed.h5").samples[0].pose
    assert np.isfinite(posed[:, smplx_fit.MP178_POINTS]).all() and np.isnan(np.delete(posed, smplx_fit.MP178_POINTS, 1)).all()
    r = evaluate_tokenizer(out, data, "test", smplx_model_dir=model_dir)
    assert set(r["mpjpe"]) == {"all", *ARTICULATORS} and r["mpjpe"]["all"] < r["mean_pose_mpjpe"]["all"], r
    assert r["param_error"]["all"] < 0.7 * r["mean_param_error"]["all"]
    from typer.testing import CliRunner

    from slp_cli.cli.main import app

    res = CliRunner().invoke(app, ["eval-tokenizer", str(data), "--model", str(out), "--smplx-model-dir",
                                   str(model_dir), "--json", "-"])
    assert res.exit_code == 0, res.output
    assert '"posed": true' in res.output and "param_error" in res.output
    res = CliRunner().invoke(app, ["eval-tokenizer", str(data), "--model", str(out)])
    assert res.exit_code == 0 and "parameter error" in res.output, res.output
    # posing is SMPL-X's own forward pass (smplx.SMPLX), through the fit's camera
    import smplx as smplx_lib  # noqa: F401 - the package the fit needs

    body = load_body_model(model_dir)
    sample = test[0]
    x = sample.arrays["smplx"][:5]
    arrays = {k: v[:5] if k != "betas" else v for k, v in sample.arrays.items()}
    mine = pose_smplx(body, x, arrays)[:, smplx_fit.MP178_POINTS]
    full = smplx_fit.load_smplx(model_dir, flat_hand_mean=True)
    t = len(x)
    f = lambda a: torch.as_tensor(np.asarray(a, np.float32))  # noqa: E731
    pose21 = np.zeros((t, 21, 3), np.float32)
    pose21[:, 11:21] = x[:, :30].reshape(t, 10, 3)
    with torch.no_grad():
        ref = full(global_orient=torch.zeros(t, 3), body_pose=f(pose21.reshape(t, -1)), jaw_pose=f(x[:, 120:123]),
                   leye_pose=torch.zeros(t, 3), reye_pose=torch.zeros(t, 3), left_hand_pose=f(x[:, 30:75]),
                   right_hand_pose=f(x[:, 75:120]), expression=f(x[:, 123:]), betas=f(arrays["betas"]).expand(t, -1))
    joints = ref.joints[:, smplx_fit.SMPLX_POINTS].numpy() * np.array([1.0, -1.0, -1.0]) * 100 + np.array([1.0, 2.0, 0.0])
    np.testing.assert_allclose(mine, joints, atol=1e-3)
    # a sample without the array: one line
    with pytest.raises(SlpError, match="no 'smplx' array"):
        model.sample_input(dataclasses.replace(test[0], arrays={}))
