"""The SOKE generator (slp_cli/models/soke.py): part masks, the lambda mixing, per-sample stopping,
the retrieval prompt, cache = no cache, an overfit run, a tiny run against the mean pose, a
pretrained (save_pretrained) MBart, the CLI and bad input -- on the tiny synthetic corpus with a
tiny VQ-VAE trained here."""

import copy

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import slp_cli
from slp_cli import SlpError
from slp_cli.cli.main import app
from slp_cli.data.synth import synthesize
from slp_cli.dictionary import run as build_dictionary
from slp_cli.metrics.dtw import dtw_mje
from slp_cli.models import load_model
from slp_cli.models.soke import SOKE, keyword_prefix, stream_weights
from slp_cli.normalize import normalize_samples
from slp_cli.training import TrainOptions, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")
STEPS = 400


def save_corpus(path, samples):
    slp_cli.save(samples, path, fps=25, normalized=True, normalization="neck-shoulder/frame")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    samples = normalize_samples(synthesize(langs=["dgs"], preset="tiny", sentences=160, seed=0))
    return save_corpus(tmp_path_factory.mktemp("soke") / "corpus.h5", samples)


@pytest.fixture(scope="module")
def vq_dir(corpus):
    out = corpus.parent / "vq"
    train("vqvae", TrainOptions(output=out, data=[corpus]), preset="tiny", overrides={"max_steps": 300})
    return out


@pytest.fixture(scope="module")
def dictionary(corpus):
    return build_dictionary(corpus, corpus.parent / "dict.h5")


@pytest.fixture(scope="module")
def gen_dir(corpus, vq_dir, dictionary):
    out = corpus.parent / "gen"
    train("soke", TrainOptions(output=out, data=[corpus], inputs={"tokenizer": vq_dir, "dictionary": dictionary}),
          preset="tiny", overrides={"max_steps": STEPS, "eval_every": 200})
    return out


@pytest.fixture(scope="module")
def gen(gen_dir):
    return load_model(gen_dir, expect="soke")


def fresh(corpus, vq_dir, dictionary, **over):
    """An untrained model (random weights) built from the corpus."""
    samples = slp_cli.load(corpus, split="train").samples
    torch.manual_seed(0)
    model = SOKE.from_data(SOKE.make_config("tiny", over), samples, tokenizer=vq_dir, dictionary=dictionary)
    model.data.update(fps=25.0, normalized=True, normalization="neck-shoulder/frame")
    return model.eval()


def test_part_masks_forbid_cross_part_codes(gen, corpus, vq_dir, dictionary):
    streams = gen.streams
    assert [s.removeprefix("tokens_") for s in streams] == ["body", "left_hand", "right_hand"]
    masks = {s: gen.part_mask(s) for s in streams}
    for s in streams:
        codes = {gen.token_ids[gen.code_token(s, i)] for i in range(gen.codebooks[s])}
        assert set(masks[s].nonzero().flatten().tolist()) == codes | {gen.eos_id}
    assert not (masks[streams[0]] & masks[streams[1]]).clone().index_fill_(0, torch.tensor([gen.eos_id]), False).any()
    # the shared LM head made to prefer the left hand's codes everywhere: the body head still
    # emits only body codes, in every decoding
    for decoding in ("multihead", "sequential", "parallel"):
        model = fresh(corpus, vq_dir, dictionary, decoding=decoding, heads="shared", retrieval=False)
        with torch.no_grad():
            lh = model.allowed(1)[:-1]
            model.lm.final_logits_bias[0, lh] += 50.0
        prepared = [model.prepare("heute regen", "dgs")]
        codes, lengths = model.generate_tokens(prepared, model.make_options({}))[0]
        for s in range(3):
            col = np.asarray(codes)[: lengths[s], s]
            assert ((0 <= col) & (col < model.codebooks[streams[s]])).all()
    # the step function of sequential decoding puts -inf outside the mask of the position's stream
    from slp_cli.models.soke import _Step

    model = fresh(corpus, vq_dir, dictionary, decoding="sequential", retrieval=False)
    src = torch.as_tensor(model.prepare("heute regen", "dgs")["src"])[None]
    memory = model.encode(src, torch.ones_like(src, dtype=torch.bool))
    step = _Step(model, memory, torch.ones_like(src, dtype=torch.bool), parallel=False, use_cache=True)
    ids = torch.tensor([[model.token_ids[model.sign_token("dgs")]]])
    for k in range(6):
        logits = step(ids)[0]
        finite = torch.isfinite(logits)
        allowed = model.part_mask(streams[k % 3])
        if k < 3 or k % 3:
            allowed[model.eos_id] = False  # no end before a whole step, nor mid-step
        assert torch.equal(finite, allowed)
        ids = torch.cat([ids, logits.argmax()[None, None]], 1)


def test_lambda_mixing(gen):
    ids = torch.tensor([[[gen.token_ids[gen.code_token(s, 3)] for s in gen.streams]]])  # (1, 1, 3)
    table = gen.lm.get_input_embeddings()
    lam = gen.config.mix
    by_hand = (1 - 2 * lam) * table(ids[..., 0]) + lam * table(ids[..., 1]) + lam * table(ids[..., 2])
    assert lam == pytest.approx(1 / 3)
    torch.testing.assert_close(gen.embed(ids), by_hand)
    assert stream_weights(["body", "left_hand", "right_hand"], 0.4) == pytest.approx([0.2, 0.4, 0.4])
    assert stream_weights(["body", "left_hand", "right_hand", "face"], 0.3) == pytest.approx([0.2, 0.3, 0.3, 0.2])
    assert stream_weights(["body", "hands"], 0.25) == pytest.approx([0.75, 0.25])


def test_per_sample_stopping(gen):
    """Heads scripted to end sample 0 at step 2 (by the left hand) and sample 1 at step 4 (by the
    body): any head stops a sample (lengths 2 and 4 in one batch); the body-only rule ignores the
    left hand's end, whose stream then holds its last frame."""
    model = copy.deepcopy(gen)
    real_head, calls = model.head, {"n": 0}
    ends = {0: (1, 2), 1: (0, 4)}  # sample -> (stream that ends, step)

    def head(h, s):
        logits = real_head(h, s)
        step = calls["n"] // 3
        calls["n"] += 1
        scripted = torch.full_like(logits, -10.0)
        scripted[:, 5] = 10.0  # code 5
        for row, (stream, at) in ends.items():
            if row < len(h) and s == stream and step >= at:
                scripted[row, -1] = 20.0
        return scripted

    model.head = head
    prepared = [model.prepare(t, "dgs") for t in ("heute regen", "morgen sonne")]
    out = model.generate_tokens(prepared, model.make_options({}))
    assert [x[1] for x in out] == [[2, 2, 2], [4, 4, 4]]
    calls["n"] = 0
    signed = model.sign_batch(prepared, model.make_options({}), None)
    assert [len(s.pose) for s in signed] == [2 * model.frames_per_token, 4 * model.frames_per_token]
    calls["n"] = 0
    body = model.generate_tokens(prepared, model.make_options({"stop": "body"}))
    assert body[0][1] == [model.config.max_motion_tokens, 2, model.config.max_motion_tokens]
    assert body[1][1] == [4, 4, 4]
    pose = model.decode_codes(np.asarray(body[0][0])[: body[0][1][0]], body[0][1])
    left = model.tokenizer.joints["left_hand"]
    f = model.frames_per_token
    assert np.allclose(pose[2 * f:, left], pose[2 * f - 1, left])  # the left hand holds its last frame


def test_retrieval_prompt_holds_the_keyword_triplets(gen, corpus, vq_dir, dictionary):
    text = "heute gibt es starken regen"
    found = gen.keywords(text, "dgs")
    assert [w for w, _ in found] and all(e["gloss"] for _, e in found)
    src, _ = gen.source(text, "dgs")
    pos = len(gen.text_ids(text))
    assert src[:pos] == gen.text_ids(text) and src[-2:] == [gen.eos_id, gen.spoken_id("dgs")]
    for i, (_, entry) in enumerate(found, 1):
        prefix = gen.text_ids(keyword_prefix("dgs", i))
        assert src[pos:pos + len(prefix)] == prefix
        pos += len(prefix)
        steps = len(entry["tokens"][gen.streams[0]])
        for t in range(steps):
            assert src[pos:pos + 3] == [gen.token_ids[gen.code_token(s, entry["tokens"][s][t])] for s in gen.streams]
            pos += 3
    assert pos == len(src) - 2
    # the released code's limits: 3 keywords of at most 10 steps (here 1 keyword of 2 steps)
    small = fresh(corpus, vq_dir, dictionary, max_keywords=1, keyword_steps=2)
    src1, found1 = small.source(text, "dgs")
    assert len(found1) == 1 and len(src1) == len(small.text_ids(text)) + len(small.text_ids(keyword_prefix("dgs", 1))) + 6 + 2
    # the report names the retrieved words; the token dictionary kept the lowest reconstruction error
    signed = gen.sign([text], ["dgs"])[0]
    assert signed.report["keywords"] == [w for w, _ in found]
    assert all(e["error"] >= 0 for e in gen.data["token_dictionary"]["dgs"].values())
    # a sentence no dictionary entry matches is signed from its text alone (the paper retrieves what it finds)
    nohit = gen.sign(["es gibt"], ["dgs"])[0]
    assert nohit.report["keywords"] == [] and len(nohit.pose) >= gen.frames_per_token


def test_cache_equals_no_cache(gen, corpus, vq_dir, dictionary):
    texts = ["heute gibt es regen", "morgen scheint die sonne im norden", "der wind ist stark"]
    models = [gen] + [fresh(corpus, vq_dir, dictionary, decoding=d) for d in ("sequential", "parallel")]
    for model in models:
        prepared = [model.prepare(t, "dgs") for t in texts]
        for beam in (1, 3):
            with_cache = model.generate_tokens(prepared, model.make_options({"beam": beam, "cache": True}))
            without = model.generate_tokens(prepared, model.make_options({"beam": beam, "cache": False}))
            for (a, la), (b, lb) in zip(with_cache, without):
                assert la == lb and np.array_equal(np.asarray(a)[: max(la)], np.asarray(b)[: max(lb)])


def test_trained_model_signs_batches_like_single_sentences(gen, corpus):
    texts = [s.text for s in slp_cli.load(corpus, split="test")][:4]
    batch = gen.sign(texts, ["dgs"] * len(texts))
    alone = [gen.sign([t], ["dgs"])[0] for t in texts]
    assert len({len(b.pose) for b in batch}) > 1  # members end at different steps
    for b, a in zip(batch, alone):
        assert b.pose.shape == a.pose.shape and b.pose.shape[1:] == (178, 3)
        np.testing.assert_allclose(b.pose, a.pose, atol=1e-4)


def test_overfit_reproduces_eight_token_streams(corpus, vq_dir, tmp_path):
    samples = [s for s in slp_cli.load(corpus, split="train").samples][:8]
    small = save_corpus(tmp_path / "eight.h5", samples)
    train("soke", TrainOptions(output=tmp_path / "g", data=[small], inputs={"tokenizer": vq_dir}), preset="tiny",
          overrides={"max_steps": 250, "retrieval": False, "lr": 3e-3})
    model = load_model(tmp_path / "g")
    out = model.generate_tokens([model.prepare(s.text, s.lang) for s in samples], model.make_options({}))
    exact = 0
    for s, (codes, lengths) in zip(samples, out):
        want = model.motion_tokens(s.pose)
        exact += lengths == [len(want)] * 3 and np.array_equal(np.asarray(codes)[: len(want)], want)
    assert exact == 8


def test_beats_the_mean_pose(gen, corpus):
    """Test-split DTW-MJE of the 400-step tiny model against the training mean pose."""
    samples = slp_cli.load(corpus).samples
    test = [s for s in samples if s.split == "test"]
    mean = np.nanmean(np.concatenate([s.pose for s in samples if s.split == "train"]), 0)
    ours = [o.pose for o in gen.sign([s.text for s in test], [s.lang for s in test])]
    mje = np.mean([dtw_mje(p, s.pose) for p, s in zip(ours, test)])
    base = np.mean([dtw_mje(np.repeat(mean[None], s.num_frames, 0), s.pose) for s in test])
    assert mje < 0.8 * base, (mje, base)


def test_pretrained_mbart_by_path(corpus, vq_dir, tmp_path):
    import shutil

    from .test_slt import tiny_mbart

    lm_dir = tmp_path / "mbart"
    tok = tiny_mbart(lm_dir, [s.text for s in slp_cli.load(corpus).samples])
    train("soke", TrainOptions(output=tmp_path / "g", data=[corpus], inputs={"tokenizer": vq_dir}), preset="tiny",
          overrides={"max_steps": 4, "eval_every": 4, "retrieval": False, "lm": str(lm_dir)})
    shutil.rmtree(lm_dir)  # the checkpoint holds the LM's weights, config and tokenizer
    model = load_model(tmp_path / "g")
    assert model.lm.config.d_model == 32 and model.data["base_vocab"] == len(tok)
    assert model.spoken_id("dgs") == tok.convert_tokens_to_ids("de_DE")
    src = model.prepare("es gibt regen", "dgs")["src"].tolist()
    assert src == tok("es gibt regen", add_special_tokens=False)["input_ids"] + [tok.eos_token_id,
                                                                                 tok.convert_tokens_to_ids("de_DE")]
    assert model.sign(["es gibt regen"], ["dgs"])[0].pose.shape[1:] == (178, 3)


def test_cli_and_bad_input(corpus, vq_dir, dictionary, gen_dir, tmp_path):
    run = CliRunner().invoke
    res = run(app, ["generate", "am mittwoch gibt es regen", "--lang", "dgs", "--model", str(gen_dir), "-o",
                    str(tmp_path / "one.h5"), "--beam", "2"])
    assert res.exit_code == 0, res.output
    one = slp_cli.load(tmp_path / "one.h5")[0]
    assert one.pose.shape[1:] == (178, 3) and one.report["keywords"] == ["regen"]
    res = run(app, ["generate", "--model", str(gen_dir), "--texts-from", str(corpus), "--split", "test", "-o",
                    str(tmp_path / "test.h5")])
    assert res.exit_code == 0, res.output
    assert slp_cli.load(tmp_path / "test.h5").ids == slp_cli.load(corpus, split="test").ids
    for args, message in [(["heute regen", "--lang", "asl"], "not in this model's training data"),
                          (["☃☃", "--lang", "dgs"], "all [UNK]")]:
        res = run(app, ["generate", *args, "--model", str(gen_dir), "-o", str(tmp_path / "bad.h5")])
        assert res.exit_code != 0 and message in str(res.exception), res.output
    base = ["train", "generator", "--arch", "soke", "--data", str(corpus), "--preset", "tiny", "-o", str(tmp_path / "x")]
    vae = tmp_path / "vae"
    train("vae", TrainOptions(output=vae, data=[corpus]), preset="tiny", overrides={"max_steps": 2, "eval_every": 2})
    asl = save_corpus(tmp_path / "asl.h5", normalize_samples(synthesize(langs=["asl"], preset="tiny", sentences=20)))
    for extra, message in [(["--tokenizer", str(vae), "--no-retrieval"], "continuous latents"),
                           (["--tokenizer", str(vq_dir)], "give --dictionary"),
                           (["--tokenizer", str(vq_dir), "--dictionary", str(build_dictionary(asl, tmp_path / "a.h5"))],
                            "no usable sign entry"),
                           (["--tokenizer", str(vq_dir), "--no-retrieval", "--lambda", "0.6"], "lambda must be in"),
                           (["--tokenizer", str(vq_dir), "--no-retrieval", "--decoding", "nope"], "decoding must be")]:
        res = run(app, [*base, *extra])
        assert res.exit_code != 0 and message in str(res.exception), (extra, res.output)
    res = run(app, [*base, "--tokenizer", str(vq_dir), "--dictionary", str(dictionary), "--dry-run",
                    "--decoding", "sequential", "--released-code"])
    assert res.exit_code == 0, res.output
    assert '"decoding": "sequential"' in res.stdout and '"mix": 0.4' in res.stdout


def test_resume_is_exact(corpus, vq_dir, tmp_path):
    """The motion tokens come from the loaded tokenizer: on resume the dataset is made before the
    checkpoint is loaded (tokens computed there came out all zero before this was fixed)."""
    import csv

    def losses(run):
        with open(run / "metrics.csv") as f:
            return {int(r["step"]): float(r["value"]) for r in csv.DictReader(f)
                    if r["split"] == "train" and r["name"] == "loss"}

    opts = dict(data=[corpus], inputs={"tokenizer": vq_dir})
    over = {"max_steps": 10, "log_every": 1, "eval_every": 100, "retrieval": False, "min_lr": 2e-3}
    train("soke", TrainOptions(output=tmp_path / "full", **opts), preset="tiny", overrides=over)
    train("soke", TrainOptions(output=tmp_path / "part", **opts), preset="tiny",
          overrides={**over, "max_steps": 5, "checkpoint_every": 5})
    train("soke", TrainOptions(output=tmp_path / "part", resume=True, **opts), preset="tiny", overrides=over)
    full, part = losses(tmp_path / "full"), losses(tmp_path / "part")
    assert sorted(part) == list(range(1, 11))
    np.testing.assert_allclose([part[s] for s in range(6, 11)], [full[s] for s in range(6, 11)], rtol=1e-5)
