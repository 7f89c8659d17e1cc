"""The GLOS generator: TAC's locality, inter-part attention's flows (also for a four-stream
tokenizer), durations that sum to the output length, the masking schedule and the samplers, a
tiny run that beats the mean pose on test DTW-MJE, generation from a glosser defined in this file,
and bad input as one line."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import slp_cli
from slp_cli import Sample, SlpError
from slp_cli.cli.main import app, run
from slp_cli.data.synth import synthesize
from slp_cli.generate import Request, generate
from slp_cli.models import REGISTRY, TextToGloss, TrainingConfig, get_model_class, load_model, register
from slp_cli.models.glos import (GLOS, TAC, alignment_durations, frame_condition, integer_shares, span_durations,
                                 step_condition)
from slp_cli.normalize import normalize_samples
from slp_cli.score import score
from slp_cli.training import TrainOptions, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    samples = normalize_samples(synthesize(langs=["dgs"], preset="tiny", sentences=120, seed=0))
    path = tmp_path_factory.mktemp("glos") / "corpus.h5"
    slp_cli.save(samples, path, fps=25, normalized=True, normalization="neck-shoulder/frame")
    return path


@pytest.fixture(scope="module")
def vq_dir(corpus):
    out = corpus.parent / "vq"
    train("vqvae", TrainOptions(output=out, data=[corpus]), preset="tiny", overrides={"max_steps": 250})
    return out


@pytest.fixture(scope="module")
def gen_dir(corpus, vq_dir):
    out = corpus.parent / "glos"
    train("glos", TrainOptions(output=out, data=[corpus], inputs={"tokenizer": vq_dir}), preset="tiny")
    return out


@pytest.fixture(scope="module")
def gen(gen_dir):
    return load_model(gen_dir, expect="glos")


# --- TAC and inter-part attention --------------------------------------------------------------

@pytest.mark.parametrize("kernel", [3, 5, None])
def test_tac_output_depends_only_on_the_gloss_under_the_step_and_its_kernel_neighbours(kernel):
    torch.manual_seed(0)
    tac = TAC(16, kernel)
    for p in tac.parameters():  # away from the zero-free init, so every path carries signal
        p.data.normal_(0, 0.3)
    x, s = torch.randn(2, 12, 16), torch.randn(2, 12, 16)
    valid = torch.ones(2, 12, dtype=torch.bool)
    before = tac(x, s, valid)
    reach = (kernel or 1) // 2
    for where in (0, 6, 11):
        s2 = s.clone()
        s2[:, where] += torch.randn(16)  # another gloss under step `where`
        changed = ((tac(x, s2, valid) - before).abs().amax(-1) > 1e-6)[0]
        expect = [t for t in range(12) if abs(t - where) <= reach]
        assert changed.nonzero().flatten().tolist() == expect
    # padded steps never reach real ones
    short = valid.clone()
    short[:, 8:] = False
    s3 = s.clone()
    s3[:, 8] += 5.0
    assert torch.allclose(tac(x, s3, short)[:, :8], tac(x, s, short)[:, :8])


def _four_stream(gen: GLOS, ipa: bool, layers: int = 1) -> GLOS:
    """The trained model's data with a fourth, face stream (as a VQ-VAE with a separate face
    stream declares it): the denoiser is built from the tokenizer's stream names alone."""
    data = copy.deepcopy(gen.data)
    data["streams"] = [*data["streams"], "tokens_face"]
    data["codebooks"] = {**data["codebooks"], "tokens_face": 16}
    config = copy.deepcopy(gen.config)
    config.ipa, config.layers = ipa, layers
    torch.manual_seed(0)
    return GLOS(config, data).eval()


def test_inter_part_attention_flows_body_and_the_other_streams_also_with_a_face_stream(gen):
    model = _four_stream(gen, ipa=True)
    names = [s.removeprefix("tokens_") for s in model.streams]
    assert names == ["body", "left_hand", "right_hand", "face"]
    pat = model.ipa_pattern.tolist()
    # body attends every other stream; hands and face attend the body only
    assert pat == [[False, True, True, True], [True, False, False, False], [True, False, False, False],
                   [True, False, False, False]]

    def outputs(m, tokens):
        b, l, _ = tokens.shape
        cond = torch.full((b, l), 3)
        with torch.no_grad():
            return m.denoise(tokens, torch.full((b,), 10), cond, torch.ones(b, l, dtype=torch.bool),
                             torch.tensor([[1, 3, 2]]), torch.ones(1, 3, dtype=torch.bool))

    gen_ = torch.Generator().manual_seed(1)
    tokens = torch.stack([torch.randint(0, n, (1, 6), generator=gen_) for n in model.sizes], -1)
    before = outputs(model, tokens)
    hit = tokens.clone()
    hit[0, 2, 1] = (hit[0, 2, 1] + 1) % model.sizes[1]  # one left-hand token
    after = outputs(model, hit)
    changed = [bool((a - b).abs().max() > 1e-6) for a, b in zip(after, before)]
    # one block: the body sees the left hand; the right hand and the face see only the body's
    # states before the exchange, so they do not
    assert changed == [True, True, False, False]
    alone = _four_stream(gen, ipa=False)
    assert alone.ipa_pattern.numel() == 0
    before, after = outputs(alone, tokens), outputs(alone, hit)
    assert [bool((a - b).abs().max() > 1e-6) for a, b in zip(after, before)] == [False, True, False, False]


# --- durations -----------------------------------------------------------------------------------

def test_durations_from_spans_and_scaled_sum_to_the_length(corpus):
    samples = slp_cli.load(corpus, split="train").samples
    for s in samples[:20]:
        d = span_durations(s.gloss_spans, len(s.glosses), s.num_frames)
        assert d is not None and d.sum() == s.num_frames and (d[1:-1] > 0).all()
        # the rest before the first sign and after the last is the <start> / <end> share
        assert d[0] == s.gloss_spans[0, 0] and d[-1] == s.num_frames - s.gloss_spans[-1, 1]
    assert span_durations(np.array([[0, 5]]), 2, 10) is None  # spans that do not fit the glosses
    ids = {k: i + 3 for i, k in enumerate(sorted({(s.lang, g) for s in samples for g in s.glosses}))}
    scaled = alignment_durations(samples, ids, "scaled")
    assert all(d.sum() == s.num_frames and len(d) == len(s.glosses) + 2 for d, s in zip(scaled, samples))
    assert integer_shares([1, 1, 1], 10).tolist() == [4, 3, 3]
    frames = frame_condition(np.array([1, 5, 6, 2]), np.array([2, 3, 4, 1]))
    assert frames.tolist() == [1, 1, 5, 5, 5, 6, 6, 6, 6, 2]
    assert step_condition(frames, 4, 3).tolist() == [5, 6, 2]  # the middle frame of each step's 4


def test_generated_length_is_the_sum_of_the_durations(gen):
    opts = gen.make_options({"glosses": "REGEN STARK", "steps": 5})
    signed = gen.sign(["es regnet"], ["dgs"], opts, torch.Generator().manual_seed(0))[0]
    dur = signed.report["durations"]
    rest = signed.report["rest_frames"]
    assert len(signed.pose) == sum(dur) + sum(rest)
    assert signed.glosses == ["REGEN", "STARK"] and np.diff(signed.gloss_spans, axis=1).ravel().tolist() == dur
    means = gen.mean_durations[[gen.gloss_ids["dgs", "REGEN"], gen.gloss_ids["dgs", "STARK"]]].round().long().tolist()
    assert dur == means  # the training-set means (GLOS v1)
    lengths = set()
    for seed in range(4):
        jit = gen.make_options({"glosses": "REGEN STARK", "steps": 2, "duration_jitter": 0.25})
        s = gen.sign(["x"], ["dgs"], jit, torch.Generator().manual_seed(seed))[0]
        assert len(s.pose) == sum(s.report["durations"]) + sum(s.report["rest_frames"])
        assert all(abs(a - m) <= 0.25 * m + 0.5 for a, m in zip(s.report["durations"], means))
        lengths.add(len(s.pose))
    assert len(lengths) > 1


# --- diffusion -----------------------------------------------------------------------------------

def test_masking_schedule_is_linear_and_the_samplers_unmask_everything(gen):
    T = gen.config.diffusion_steps
    tokens = torch.zeros(4, 200, len(gen.streams), dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    for t, rate in ((T, 1.0), (T // 2, 0.5), (T // 5, 0.2)):
        noisy, masked = gen.mask_tokens(tokens, torch.full((4,), t), g)
        assert masked.float().mean().item() == pytest.approx(rate, abs=0.03)
        ids = torch.tensor(gen.sizes)
        assert torch.equal(noisy == ids, masked)  # a masked token is its stream's mask id
    cond = torch.tensor([[3, 3, 4, 4, 5, 5], [3, 4, 5, 0, 0, 0]])
    valid = cond > 0
    seq, seq_valid = torch.tensor([[1, 3, 4, 5, 2]]).repeat(2, 1), torch.ones(2, 5, dtype=torch.bool)
    for sampler in ("random", "confidence"):
        for k in (1, 3, 10):
            opts = gen.make_options({"glosses": "REGEN", "steps": k, "sampler": sampler})
            x = gen.sample_tokens(cond, valid, seq, seq_valid, opts, torch.Generator().manual_seed(k))
            for i, n in enumerate(gen.sizes):
                assert (x[..., i] >= 0).all() and (x[..., i] < n).all()  # no mask id left


def test_confidence_sampler_follows_the_linear_share(gen, monkeypatch):
    """MoMask-style: after step k of K, floor(N (k - 1) / K) of the N real tokens stay masked."""
    seen = []
    real = gen.denoise

    def spy(x, *a):
        seen.append(int(sum((x[..., i] == n).sum() for i, n in enumerate(gen.sizes))))  # masked tokens
        return real(x, *a)

    monkeypatch.setattr(gen, "denoise", spy)
    cond = torch.tensor([[3, 3, 4, 4, 5]])
    opts = gen.make_options({"glosses": "REGEN", "steps": 4, "sampler": "confidence"})
    gen.sample_tokens(cond, cond > 0, torch.tensor([[1, 3, 2]]), torch.ones(1, 3, dtype=torch.bool), opts,
                      torch.Generator().manual_seed(0))
    n = 5 * len(gen.streams)
    assert seen == [n] + [int(np.floor(n * (k - 1) / 4)) for k in (4, 3, 2)]


# --- training and the baseline -------------------------------------------------------------------

def test_tiny_run_learns_and_beats_the_mean_pose(corpus, gen_dir, gen):
    import csv

    with open(gen_dir / "metrics.csv") as f:
        ce = [float(r["value"]) for r in csv.DictReader(f) if r["split"] == "train" and r["name"] == "token_ce"]
    assert np.mean(ce[-3:]) < 0.7 * np.mean(ce[:2])
    test = slp_cli.load(corpus, split="test").samples
    hyp = generate([Request(s.id, s.text, s.lang, s.split) for s in test], "model", model=gen_dir, device="cpu",
                   glosses_from=str(corpus)).samples
    assert [h.glosses for h in hyp] == [s.glosses for s in test]
    train_s = slp_cli.load(corpus, split="train").samples
    mean_pose = np.nanmean(np.concatenate([s.pose for s in train_s]), 0)
    mean = [Sample(s.id, np.repeat(mean_pose[None], s.num_frames, 0)) for s in test]

    def dtw(samples):
        path = slp_cli.save(samples, corpus.parent / "hyp.h5", fps=25, normalized=True,
                            normalization="neck-shoulder/frame")
        return score(slp_cli.load(path), slp_cli.load(corpus, split="test"))["pose"]["dtw_mje"]["all"]["value"]

    ours, base = dtw(hyp), dtw(mean)
    assert ours < 0.9 * base, (ours, base)


# --- a glosser defined here ------------------------------------------------------------------------

@dataclass
class LookupConfig(TrainingConfig):
    pass


class LookupGlosser(TextToGloss):
    """A toy text-to-gloss model: the glosses of a sentence by looking it up."""

    Config = LookupConfig
    presets = {"default": {}, "tiny": {}}

    def glosses(self, texts, langs, beam=1):
        return [list(self.data["table"].get(t.strip().lower(), ["NIEMALS-GESEHEN"])) for t in texts]


@pytest.fixture
def glosser_dir(tmp_path, gen):
    register("toy-glosser")(LookupGlosser)
    (_, a), (_, b) = list(gen.gloss_ids)[:2]
    model = LookupGlosser(LookupConfig(), {"langs": ["dgs"], "table": {"es regnet morgen": [a, b],
                                                                       "bald kommt quatsch": [b, "QUATSCH"]}})
    out = tmp_path / "t2g"
    out.mkdir()
    torch.save(model.blob(), out / "model.pt")
    yield out
    REGISTRY.pop("toy-glosser", None)


def test_generate_through_a_glosser(gen_dir, glosser_dir, tmp_path, gen, capsys):
    (_, a), (_, b) = list(gen.gloss_ids)[:2]
    cli = CliRunner()
    out = tmp_path / "g.h5"
    res = cli.invoke(app, ["generate", "--model", str(gen_dir), "Es regnet morgen", "--lang", "dgs", "--glosser",
                           str(glosser_dir), "--steps", "5", "-o", str(out)])
    assert res.exit_code == 0, res.output
    s = slp_cli.load(out)[0]
    assert s.glosses == [a, b] and s.report["glosses_from"].startswith("glosser")
    assert s.gloss_spans.shape == (2, 2) and s.num_frames == s.gloss_spans[-1, 1] + s.report["rest_frames"][1]
    # a gloss the generator never saw is left out and reported; nothing known -> one line
    res = cli.invoke(app, ["generate", "--model", str(gen_dir), "bald kommt quatsch", "--lang", "dgs", "--glosser",
                           str(glosser_dir), "--steps", "2", "-o", str(tmp_path / "h.h5")])
    assert res.exit_code == 0, res.output
    s = slp_cli.load(tmp_path / "h.h5")[0]
    assert s.glosses == [b] and s.report["unknown"] == ["QUATSCH"]
    msg = fails(capsys, ["generate", "--model", str(gen_dir), "ganz anders", "--lang", "dgs", "--glosser",
                         str(glosser_dir), "-o", str(tmp_path / "i.h5")])
    assert "NIEMALS-GESEHEN" in msg and not (tmp_path / "i.h5").exists()


# --- bad input -----------------------------------------------------------------------------------

def fails(capsys, argv) -> str:
    """The one `error:` line of a command line that must fail (exit 1, no traceback)."""
    capsys.readouterr()
    assert run(argv) == 1
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error:") and "Traceback" not in err, err
    return " ".join(lines)


def test_bad_input_is_one_line(corpus, vq_dir, gen_dir, tmp_path, capsys):
    gen = ["generate", "--model", str(gen_dir), "es regnet", "--lang", "dgs", "-o", str(tmp_path / "x.h5")]
    msg = fails(capsys, gen)  # no glosses, no glosser: both ways named
    assert "--glosser" in msg and "--glosses" in msg
    assert "unknown dgs gloss" in fails(capsys, [*gen, "--glosses", "REGEN GIBTSNICHT"])
    assert "GIBTSNICHT" in fails(capsys, [*gen, "--glosses", "GIBTSNICHT"])
    assert "one of" in fails(capsys, [*gen, "--glosses", "REGEN", "--glosser", str(vq_dir)])
    assert "text-to-gloss" in fails(capsys, [*gen, "--glosser", str(vq_dir)])
    assert "sampler" in fails(capsys, [*gen, "--glosses", "REGEN", "--sampler", "greedy"])
    assert "not a sentence" in fails(capsys, [*gen, "--glosses-from", str(corpus)])
    # training: a corpus without glosses, an unknown condition, no tokenizer
    bare = [Sample(s.id, s.pose, text=s.text, lang=s.lang, split=s.split) for s in slp_cli.load(corpus)]
    no_gloss = slp_cli.save(bare, tmp_path / "bare.h5", fps=25, normalized=True, normalization="neck-shoulder/frame")
    trainer = ["train", "generator", "--arch", "glos", "--preset", "tiny", "--tokenizer", str(vq_dir)]
    assert "no glosses" in fails(capsys, [*trainer, "--data", str(no_gloss), "-o", str(tmp_path / "a")])
    assert "condition" in fails(capsys, [*trainer, "--data", str(corpus), "--condition", "film",
                                 "-o", str(tmp_path / "b")])
    with pytest.raises(SlpError, match="tokenizer"):
        get_model_class("glos").from_data(get_model_class("glos").make_config("tiny"), bare)


def test_mlp_durations_and_scaled_alignment_train(corpus, vq_dir, tmp_path):
    """The revision's duration MLP learns (its L1 on log frames falls) and sets the length; the
    scaled alignment trains without the spans."""
    import csv

    out = tmp_path / "mlp"
    train("glos", TrainOptions(output=out, data=[corpus], inputs={"tokenizer": vq_dir}), preset="tiny",
          overrides={"max_steps": 60, "log_every": 10, "eval_every": 60, "duration_model": "mlp",
                     "durations": "scaled", "duration_weight": 1.0})
    with open(out / "metrics.csv") as f:
        l1 = [float(r["value"]) for r in csv.DictReader(f) if r["split"] == "train" and r["name"] == "duration_l1"]
    assert l1[-1] < 0.7 * l1[0]
    model = load_model(out, expect="glos")
    (_, a), (_, b) = list(model.gloss_ids)[:2]
    s = model.sign(["x"], ["dgs"], model.make_options({"glosses": f"{a} {b}", "steps": 2}))[0]
    seq = torch.tensor([1, model.gloss_ids["dgs", a], model.gloss_ids["dgs", b], 2])
    with torch.no_grad():
        expect = model.duration_mlp(model.gloss_embed(seq)).squeeze(-1).exp().round().clamp(min=1).long().tolist()
    assert s.report["durations"] == expect[1:-1] and len(s.pose) == sum(expect)
