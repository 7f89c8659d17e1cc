"""Text2Sign Diffusion: the SignVAE, the cross-modal aligner and the latent diffusion generator
(slp_cli/models/signvae.py, aligner.py, diffusion.py) through the shared loop: the noise schedule,
the samplers against an oracle denoiser, determinism, classifier-free guidance, retrieval above
chance, the mean-pose baseline, lengths, a pretrained text encoder by path, and bad input."""

import csv

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import slp_cli
from slp_cli import SlpError
from slp_cli.cli.main import app
from slp_cli.data.synth import synthesize
from slp_cli.metrics.dtw import dtw_mje
from slp_cli.models import load_model
from slp_cli.models.aligner import retrieval_accuracy
from slp_cli.models.diffusion import make_betas, semantic_weight
from slp_cli.normalize import normalize_samples
from slp_cli.training import TrainOptions, train

STEPS = 400
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    samples = normalize_samples(synthesize(langs=["dgs"], preset="tiny", sentences=120, seed=0))
    path = tmp_path_factory.mktemp("diffusion") / "corpus.h5"
    slp_cli.save(samples, path, fps=25, normalized=True, normalization="neck-shoulder/frame")
    return path


@pytest.fixture(scope="module")
def signvae_dir(corpus):
    out = corpus.parent / "signvae"
    train("signvae", TrainOptions(output=out, data=[corpus]), preset="tiny", overrides={"max_steps": 400})
    return out


@pytest.fixture(scope="module")
def aligner_dir(corpus, signvae_dir):
    out = corpus.parent / "aligner"
    train("aligner", TrainOptions(output=out, data=[corpus], inputs={"tokenizer": signvae_dir}), preset="tiny")
    return out


@pytest.fixture(scope="module")
def gen_dir(corpus, signvae_dir, aligner_dir):
    out = corpus.parent / "gen"
    train("diffusion", TrainOptions(output=out, data=[corpus], inputs={"tokenizer": signvae_dir,
                                                                      "aligner": aligner_dir}),
          preset="tiny", overrides={"max_steps": STEPS, "eval_every": 200})
    return out


@pytest.fixture(scope="module")
def gen(gen_dir):
    return load_model(gen_dir, expect="diffusion")


def metric(run_dir, name, split="train"):
    with open(run_dir / "metrics.csv") as f:
        return {int(r["step"]): float(r["value"]) for r in csv.DictReader(f)
                if r["split"] == split and r["name"] == name}


def conditioned(gen, texts, frames=None):
    """Text features, mask, predicted lengths and a frame mask (padded to the U-Net's stride)."""
    batch = gen.text_encoder.collate([gen.prepare(t, "dgs") for t in texts])
    memory, mask, length = gen.encode_text(batch)
    lengths = gen.lengths(length, frames)
    t = int(lengths.max())
    t += -t % gen.stride
    return memory, mask, lengths, torch.arange(t)[None, :] < lengths[:, None]


TEXTS = ["heute gibt es regen", "die frau arbeitet nicht in der stadt"]


# --- the schedule and the samplers ----------------------------------------------------------------

def test_noise_schedule_values(gen):
    betas = make_betas("scaled_linear", 1000, 0.00085, 0.012).numpy()
    want = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000) ** 2  # MLD / Stable Diffusion
    np.testing.assert_allclose(betas, want, rtol=1e-12)
    assert betas[0] == pytest.approx(0.00085) and betas[-1] == pytest.approx(0.012)
    np.testing.assert_allclose(gen.alphas_cumprod.numpy(), np.cumprod(1 - want), rtol=1e-5)
    assert gen.alphas_cumprod[-1].item() == pytest.approx(0.00466, abs=2e-5)  # x_T is nearly pure noise
    np.testing.assert_allclose(make_betas("linear", 10, 0.1, 0.5).numpy(), np.linspace(0.1, 0.5, 10))
    cos = make_betas("cosine", 1000, 0.00085, 0.012)
    assert (cos > 0).all() and (cos <= 0.999).all() and cos[0] < cos[500] < cos[-1]
    t = torch.tensor([0, 250, 999])
    np.testing.assert_allclose(semantic_weight(t, 1000, "discounted").numpy(), [1.0, 0.75, 0.001], atol=1e-6)
    np.testing.assert_allclose(semantic_weight(t, 1000, "reversed").numpy(), [0.0, 0.25, 0.999], atol=1e-6)
    assert semantic_weight(t, 1000, "none").abs().sum() == 0
    assert gen.sampling_timesteps(gen.make_options({"steps": 50}))[:2] == [999, 979]
    assert len(gen.sampling_timesteps(gen.make_options({"steps": 50}))) == 50
    assert gen.sampling_timesteps(gen.make_options({"sampler": "ddpm"})) == list(range(999, -1, -1))


def test_q_sample_then_the_exact_epsilon_recovers_x0(gen):
    torch.manual_seed(0)
    x0 = torch.randn(4, 16, 20)
    noise = torch.randn_like(x0)
    t = torch.tensor([0, 10, 500, 999])
    xt = gen.q_sample(x0, t, noise)
    a = gen.alphas_cumprod[t].view(-1, 1, 1)
    np.testing.assert_allclose(xt.numpy(), (a.sqrt() * x0 + (1 - a).sqrt() * noise).numpy(), rtol=1e-6)
    np.testing.assert_allclose(gen.predict_x0(xt, t, noise).numpy(), x0.numpy(), atol=1e-4)
    np.testing.assert_allclose(gen.predict_eps(xt, t, x0).numpy(), noise.numpy(), atol=1e-3)
    # both samplers, fed the exact noise of a known clean latent at every step, end on it
    memory, mask, _, frame_mask = conditioned(gen, TEXTS, frames=16)
    target = torch.randn(2, 16, 20) * frame_mask[..., None]

    def oracle(x, step):
        ab = gen.alphas_cumprod[step]
        return (x - ab.sqrt() * target) / (1 - ab).sqrt()

    for options in ({"sampler": "ddim", "steps": 10}, {"sampler": "ddpm"}, {"sampler": "ddim", "eta": 1.0}):
        out = gen.sample(memory, mask, frame_mask, gen.make_options({**options, "clip": False}),
                         torch.Generator().manual_seed(0), eps_fn=oracle)
        np.testing.assert_allclose(out.numpy(), target.numpy(), atol=1e-4, err_msg=str(options))


def test_ddim_eta_0_is_deterministic_for_a_seed(gen):
    def run(seed, **options):
        out = gen.sign(TEXTS, ["dgs"] * 2, gen.make_options({"steps": 10, **options}),
                       torch.Generator().manual_seed(seed))
        return [o.pose for o in out]

    a, b, c = run(1), run(1), run(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.allclose(a[0], c[0])
    # DDIM with eta 0 draws noise only at the start: a generator with the same seed but further
    # along would differ, a fresh one with the same seed does not
    d1, d2 = run(3, eta=1.0), run(3, eta=1.0)
    assert all(np.array_equal(x, y) for x, y in zip(d1, d2))
    assert not np.allclose(d1[0], run(3)[0])


def test_guidance_1_equals_the_conditional_model(gen):
    memory, mask, _, frame_mask = conditioned(gen, TEXTS)
    options = gen.make_options({"steps": 8, "guidance": 1.0})
    guided = gen.sample(memory, mask, frame_mask, options, torch.Generator().manual_seed(5))
    conditional = gen.sample(memory, mask, frame_mask, options, torch.Generator().manual_seed(5),
                             eps_fn=lambda x, t: gen.denoise(x, torch.full((len(x),), t), frame_mask, memory,
                                                             mask)[0])
    np.testing.assert_allclose(guided.numpy(), conditional.numpy(), atol=1e-5)
    stronger = gen.sample(memory, mask, frame_mask, gen.make_options({"steps": 8, "guidance": 7.5}),
                          torch.Generator().manual_seed(5))
    assert not torch.allclose(guided, stronger, atol=1e-3)  # the null text was learnt: guidance acts


def test_a_sentence_is_denoised_the_same_alone_and_in_a_batch(gen):
    memory, mask, lengths, frame_mask = conditioned(gen, TEXTS, frames=None)
    torch.manual_seed(0)
    x = torch.randn(*frame_mask.shape, 20) * frame_mask[..., None]
    t = torch.tensor([700, 700])
    with torch.no_grad():
        both = gen.denoise(x, t, frame_mask, memory, mask)[0]
        m1, k1, l1, f1 = conditioned(gen, TEXTS[:1])
        alone = gen.denoise(x[:1, :f1.shape[1]], t[:1], f1, m1, k1)[0]
    n = int(l1[0])
    np.testing.assert_allclose(both[0, :n].numpy(), alone[0, :n].numpy(), atol=1e-4)


# --- training -------------------------------------------------------------------------------------

def test_losses_fall_and_the_aligner_beats_chance(corpus, signvae_dir, aligner_dir, gen_dir):
    for run, name, ratio in ((signvae_dir, "loss", 0.5), (aligner_dir, "loss", 0.7), (gen_dir, "mse", 0.6)):
        values = metric(run, name)
        steps = sorted(values)
        assert np.mean([values[s] for s in steps[-3:]]) < ratio * np.mean([values[s] for s in steps[:2]]), run
    dev_r1 = metric(aligner_dir, "t2p_r1", "dev")
    assert max(dev_r1.values()) > 2 * metric(aligner_dir, "chance", "dev")[max(dev_r1)]
    aligner = load_model(aligner_dir, expect="aligner")
    held_out = [s for s in slp_cli.load(corpus) if s.split in ("dev", "test")]
    acc = retrieval_accuracy(aligner, held_out)
    assert acc["n"] == len(held_out) and acc["r@1"] > 3 * acc["chance@1"] and acc["r@5"] >= acc["r@1"]
    # the generator's semantic loss is logged (the aligner's 1 - cos of the predicted clean latent)
    assert 0 < np.mean(list(metric(gen_dir, "semantic").values())) < 2


def test_beats_the_mean_pose_and_outputs_have_the_predicted_length(corpus, gen):
    art = slp_cli.load(corpus)
    train_s = [s for s in art if s.split == "train"]
    test = [s for s in art if s.split == "test"]
    out = gen.sign([s.text for s in test], [s.lang for s in test], gen.make_options({"steps": 25}),
                   torch.Generator().manual_seed(0))
    poses = [o.pose for o in out]
    mean_pose = np.nanmean(np.concatenate([s.pose for s in train_s]), 0)
    ours = np.mean([dtw_mje(p, s.pose) for p, s in zip(poses, test)])
    base = np.mean([dtw_mje(np.repeat(mean_pose[None], s.num_frames, 0), s.pose) for s in test])
    assert ours < 0.9 * base, (ours, base)
    _, _, lengths, _ = conditioned(gen, [s.text for s in test])
    assert [len(p) for p in poses] == lengths.tolist()
    assert all(np.isfinite(p).all() and p.shape[1:] == (178, 3) for p in poses)
    assert 1 <= min(lengths) and max(lengths) <= gen.max_frames <= 256
    assert out[0].report == {"sampler": "ddim", "steps": 25, "guidance": gen.config.guidance}
    fixed = gen.sign(TEXTS, ["dgs"] * 2, gen.make_options({"steps": 4, "frames": 13}))
    assert [len(o.pose) for o in fixed] == [13, 13]


# --- text encoders and bad input ------------------------------------------------------------------

def test_bad_input_gets_one_line(corpus, signvae_dir, aligner_dir, gen_dir, tmp_path):
    run = CliRunner().invoke
    long_text = " ".join(["regen"] * 200)
    res = run(app, ["generate", long_text, "--lang", "dgs", "--model", str(gen_dir), "-o", str(tmp_path / "x.h5")])
    assert res.exit_code != 0 and "longer than the 128" in str(res.exception), res.output
    res = run(app, ["generate", "heute regen", "--lang", "dgs", "--model", str(gen_dir), "--sampler", "euler",
                    "-o", str(tmp_path / "x.h5")])
    assert res.exit_code != 0 and "--sampler must be one of ddim, ddpm" in str(res.exception), res.output
    base = ["train", "generator", "--arch", "diffusion", "--data", str(corpus), "--preset", "tiny"]
    for args, message in [
        (["--tokenizer", str(aligner_dir), "--aligner", str(aligner_dir)],
         "holds a 'aligner' model (text-pose aligner), but a signvae is needed here"),
        (["--tokenizer", str(signvae_dir), "--aligner", str(signvae_dir)], "but a aligner is needed"),
        (["--tokenizer", str(signvae_dir)], "give --aligner ALIGNER_DIR"),
        (["--aligner", str(aligner_dir)], "give --tokenizer SIGNVAE_DIR"),
        (["--tokenizer", str(signvae_dir), "--aligner", str(aligner_dir), "--semantic-weighting", "late"],
         "semantic_weighting must be one of"),
    ]:
        res = run(app, [*base, *args, "-o", str(tmp_path / "g"), "--dry-run"])
        assert res.exit_code != 0 and message in str(res.exception), (args, res.output)
    # an aligner over another SignVAE
    other = tmp_path / "other-signvae"
    train("signvae", TrainOptions(output=other, data=[corpus], seed=1), preset="tiny", overrides={"max_steps": 2})
    res = run(app, [*base, "--tokenizer", str(other), "--aligner", str(aligner_dir), "-o", str(tmp_path / "g"),
                    "--dry-run"])
    assert res.exit_code != 0 and "trained over another SignVAE" in str(res.exception), res.output
    # without the semantic loss no aligner is needed
    res = run(app, [*base, "--tokenizer", str(signvae_dir), "--no-semantic", "-o", str(tmp_path / "g"),
                    "--dry-run"])
    assert res.exit_code == 0 and '"semantic_weighting": "none"' in res.stdout, res.output


def test_cli_trains_the_three_stages_and_generates(corpus, gen_dir, tmp_path):
    run = CliRunner().invoke
    common = ["--data", str(corpus), "--preset", "tiny", "--max-steps", "20", "--eval-every", "10"]
    assert run(app, ["train", "signvae", *common, "-o", str(tmp_path / "sv")]).exit_code == 0
    res = run(app, ["train", "aligner", *common, "--tokenizer", str(tmp_path / "sv"), "-o", str(tmp_path / "al")])
    assert res.exit_code == 0, res.output
    res = run(app, ["train", "generator", "--arch", "diffusion", *common, "--max-steps", "6", "--tokenizer",
                    str(tmp_path / "sv"), "--aligner", str(tmp_path / "al"), "--semantic-weighting", "reversed",
                    "-o", str(tmp_path / "df")])
    assert res.exit_code == 0, res.output
    assert metric(tmp_path / "df", "semantic_weighted")  # the reversed weighting trained with the aligner
    out = tmp_path / "one.h5"
    res = run(app, ["generate", "heute gibt es regen", "--lang", "dgs", "--model", str(gen_dir), "--sampler", "ddim",
                    "--steps", "5", "--guidance", "2.5", "--seed", "3", "-o", str(out), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    art = slp_cli.load(out)
    assert art.fps == 25 and art.normalized and np.isfinite(art[0].pose).all()
    assert art.provenance["args"]["steps"] == 5 and art.provenance["args"]["guidance"] == 2.5


@pytest.fixture(scope="module")
def tiny_sbert(tmp_path_factory, corpus):
    """A randomly initialised 2-layer BERT (the architecture of Sentence-BERT's MiniLM) with a
    WordPiece vocabulary of the corpus' words, saved with save_pretrained and loaded by path."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("sbert")
    words = sorted({w for s in slp_cli.load(corpus) for w in s.text.lower().split()})
    letters = list("abcdefghijklmnopqrstuvwxyzäöüß")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + letters + ["##" + c for c in letters]
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(dict.fromkeys(vocab))}, do_lower_case=True,
                            strip_accents=False)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=24, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=48, max_position_embeddings=24)).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_pretrained_sentence_encoder_by_path(corpus, signvae_dir, tiny_sbert, tmp_path):
    out = tmp_path / "al"
    train("aligner", TrainOptions(output=out, data=[corpus], inputs={"tokenizer": signvae_dir}), preset="tiny",
          overrides={"text_encoder": str(tiny_sbert), "max_steps": 30, "eval_every": 30})
    aligner = load_model(out, expect="aligner")
    assert aligner.text_encoder.is_pretrained
    assert not any(k.startswith("text_encoder.embedder") for k in aligner.state_dict())  # loaded by path again
    losses = metric(out, "loss")
    assert losses[30] < losses[10]
    # the BERT takes 24 positions: a longer text is refused, not cut
    with pytest.raises(SlpError, match="longer than the 24"):
        aligner.prepare_texts([" ".join(["regen"] * 30)], ["dgs"])
    gen = tmp_path / "gen"
    train("diffusion", TrainOptions(output=gen, data=[corpus], inputs={"tokenizer": signvae_dir, "aligner": out}),
          preset="tiny", overrides={"text_encoder": str(tiny_sbert), "max_steps": 4, "eval_every": 4})
    model = load_model(gen, expect="diffusion")
    signed = model.sign(["heute gibt es regen", " ".join(["regen"] * 30)], ["dgs", "dgs"],
                        model.make_options({"steps": 3}))
    assert np.isfinite(signed[0].pose).all()
    assert isinstance(signed[1], SlpError) and "longer than the 24" in str(signed[1])
