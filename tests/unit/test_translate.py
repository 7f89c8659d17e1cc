"""Back-translation: greedy and beam search, `slp translate`, and `slp score --backtranslate`."""

import itertools
import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import slp_cli
from slp_cli import Sample, SlpError
from slp_cli.artifacts import load
from slp_cli.cli.main import app
from slp_cli.tensors import pad
from slp_cli.data.synth import synthesize
from slp_cli.normalize import normalize_samples
from slp_cli.score import run as score_run
from slp_cli.models import DecodingStep
from slp_cli.training import TrainOptions, train
from slp_cli.translate import beam_search, greedy_search, load_translator, run, translate_samples

EOS, A, B, START = 0, 1, 2, 3


def markov_step(table):
    """A toy decoder: next-token log-probabilities depend only on the last token."""
    logp = torch.log(torch.as_tensor(table, dtype=torch.float32))
    return DecodingStep(lambda ids: logp[ids[:, -1]])


# From START, A is likelier than B, but every continuation of A is poor while B ends at once.
TRAP = [[1.0, 0, 0, 0],            # after EOS: EOS
        [0.34, 0.33, 0.33, 0],     # after A
        [0.9, 0.05, 0.05, 0],      # after B
        [0.0, 0.6, 0.4, 0]]        # after START


def brute_force(table, max_new, length_penalty):
    """Best finished sequence (ending in EOS within max_new tokens) by exhaustive enumeration."""
    logp = np.log(np.asarray(table, dtype=np.float64) + 1e-300)
    best, best_ids = -math.inf, None
    for n in range(max_new):
        for body in itertools.product([A, B], repeat=n):
            ids = [START, *body, EOS]
            score = sum(logp[a, b] for a, b in zip(ids[:-1], ids[1:])) / (n + 1) ** length_penalty
            if score > best:
                best, best_ids = score, list(body)
    return best_ids


def test_greedy_falls_into_the_trap_and_beam_search_does_not():
    step, prefix = markov_step(TRAP), torch.tensor([[START], [START]])
    assert greedy_search(step, prefix, EOS, 6) == [[A], [A]]  # 0.6 * 0.34 = 0.20
    assert beam_search(step, prefix, EOS, 6, beam=2, length_penalty=0.0) == [[B], [B]]  # 0.4 * 0.9 = 0.36
    assert brute_force(TRAP, 6, 0.0) == [B]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_exhaustive_beam_equals_brute_force(seed, length_penalty):
    rng = np.random.default_rng(seed)
    table = rng.dirichlet(np.ones(3) * 0.7, size=4)
    table = np.hstack([table, np.zeros((4, 1))])  # START is never generated
    table[EOS] = [1, 0, 0, 0]
    max_new = 4
    # 2 open tokens and 4 steps: a beam of 2**4 keeps every hypothesis, so the search is exact
    got = beam_search(markov_step(table), torch.tensor([[START]]), EOS, max_new, beam=16,
                      length_penalty=length_penalty)
    assert got == [brute_force(table, max_new, length_penalty)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread is faster than two on a shared machine
    root = tmp_path_factory.mktemp("translate")
    corpus = root / "dgs.norm.h5"
    slp_cli.save(normalize_samples(synthesize(["dgs"], preset="tiny", sentences=80, seed=4)), corpus, fps=25,
                 normalized=True)
    opts = dict(data=[corpus])
    train("slt", TrainOptions(output=root / "pre", **opts), preset="tiny", overrides={"stage": "pretrain",
                                                                                     "max_steps": 2})
    train("slt", TrainOptions(output=root / "slt", **opts), preset="tiny",
          overrides={"stage": "finetune-all", "max_steps": 60, "eval_every": 60})
    yield {"corpus": corpus, "model": root / "slt", "pre": root / "pre"}
    torch.set_num_threads(before)


def test_translate_writes_translations_and_keeps_everything_else(setup, tmp_path):
    src = load(setup["corpus"], split="test")
    out = tmp_path / "bt.h5"
    summary = run(setup["model"], setup["corpus"], out, split="test", beam=2)
    art = load(out)
    assert summary["samples"] == summary["translated"] == len(src.samples) > 0
    assert art.ids == src.ids and art.fps == src.fps and art.normalized
    for a, b in zip(art.samples, src.samples):
        assert a.text == b.text and a.glosses == b.glosses and a.split == b.split and a.translation
        np.testing.assert_array_equal(a.pose, b.pose)
    assert art.provenance["stage"] == "translate" and art.provenance["args"]["beam"] == 2
    # the same poses give the same text as the library call
    texts, _ = translate_samples(load_translator(setup["model"]), src.samples, beam=2)
    assert texts == [s.translation for s in art.samples]


def test_bad_samples_are_skipped_and_reported(setup, tmp_path):
    good = load(setup["corpus"], split="test").samples[:2]
    samples = good + [Sample(id="blank", pose=np.full((6, 178, 3), np.nan, np.float32), text="x", lang="dgs")]
    path = slp_cli.save(samples, tmp_path / "in.h5", fps=25, normalized=True)
    summary = run(setup["model"], path, tmp_path / "out.h5")
    assert summary["translated"] == 2 and [s["input"] for s in summary["skipped"]] == ["blank"]
    art = load(tmp_path / "out.h5")
    assert art.ids == [s.id for s in samples]
    assert art["blank"].translation == "" and art.skipped[-1]["input"] == "blank"


def test_errors_write_nothing(setup, tmp_path):
    base = load(setup["corpus"], split="test").samples[:2]
    out = tmp_path / "out.h5"
    asl = slp_cli.save([Sample(id=s.id, pose=s.pose, text=s.text, lang="asl") for s in base], tmp_path / "asl.h5",
                       fps=25)
    with pytest.raises(SlpError, match="language 'asl' was not in this model's training data"):
        run(setup["model"], asl, out)
    pixels = slp_cli.save([Sample(id=s.id, pose=s.pose * 200 + 300, lang=s.lang) for s in base],
                          tmp_path / "px.h5", fps=25)
    with pytest.raises(SlpError, match="normalize them"):
        run(setup["model"], pixels, out)
    with pytest.raises(SlpError, match="stage pretrain"):
        run(setup["pre"], setup["corpus"], out)
    with pytest.raises(SlpError, match="no samples in split 'nope'"):
        run(setup["model"], setup["corpus"], out, split="nope")
    with pytest.raises(SlpError, match="holds a 'slt' model \\(pose-to-text translator\\), but a vae is needed"):
        slp_cli.models.load_model(setup["model"], expect="vae")
    assert not out.exists() and not list(tmp_path.glob("out.h5*"))


def test_score_backtranslate_prints_the_ground_truth_row(setup, tmp_path):
    ref = load(setup["corpus"], split="test")
    # a perfect generator: its back-translation scores exactly the ground truth's
    same = slp_cli.save(ref.samples, tmp_path / "same.h5", fps=25, normalized=True)
    res = score_run(same, setup["corpus"], split="test", backtranslate_with=setup["model"])
    bt = res["backtranslation"]
    assert bt["ground_truth"]["n"] == res["text"]["n"] == len(ref.samples)
    for k in ("bleu1", "bleu4", "chrf", "rouge_l"):
        assert res["text"][k] == pytest.approx(bt["ground_truth"][k])
    assert all(t["hyp"] == t["ground_truth"] for t in bt["translations"].values())
    # frozen poses (every frame the first one) say much less
    frozen = [Sample(id=s.id, pose=np.repeat(s.pose[:1], s.num_frames, 0), lang=s.lang, split=s.split)
              for s in ref.samples]
    frozen_path = slp_cli.save(frozen, tmp_path / "frozen.h5", fps=25, normalized=True)
    res = score_run(frozen_path, setup["corpus"], split="test", backtranslate_with=setup["model"])
    assert res["text"]["chrf"] < res["backtranslation"]["ground_truth"]["chrf"]

    r = CliRunner().invoke(app, ["score", "--hyp", str(frozen_path), "--ref", str(setup["corpus"]), "--split",
                                 "test", "--backtranslate", str(setup["model"]), "--beam", "2"])
    assert r.exit_code == 0, r.output
    assert "ground truth (upper bound)" in r.output and "frozen.h5" in r.output and "beam 2" in r.output


def test_cli_translate(setup, tmp_path):
    out = tmp_path / "bt.h5"
    r = CliRunner().invoke(app, ["translate", str(setup["corpus"]), "--model", str(setup["model"]), "-o", str(out),
                                 "--split", "test", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["translated"] == len(load(out).samples) and summary["beam"] == 4  # the default
    r = CliRunner().invoke(app, ["translate", str(setup["corpus"]), "--model", str(tmp_path / "none"), "-o", str(out)])
    assert r.exit_code != 0 and "not found" in str(r.exception)


def test_cached_greedy_step_equals_the_full_decoder(setup):
    """The key/value cache of greedy search gives the logits of recomputing the whole prefix."""
    model = load_translator(setup["model"])
    art = load(setup["corpus"], split="test")
    pose, valid = pad([s.pose for s in art.samples[:3]])
    with torch.no_grad():
        memory, mv = model.encode(pose, valid)
        ids = torch.tensor([model.prefix("dgs")] * 3)
        step = model.decoding_step(memory, mv)
        for _ in range(6):
            cached, full = step(ids), model.logits(memory, mv, ids)[:, -1]
            torch.testing.assert_close(cached, full, rtol=1e-4, atol=1e-4)
            ids = torch.cat([ids, torch.randint(4, cached.shape[-1], (3, 1))], 1)


@pytest.mark.parametrize("beam", [1, 3])
def test_cached_search_gives_the_texts_of_full_recomputation(setup, beam):
    model = load_translator(setup["model"])
    samples = load(setup["corpus"], split="test").samples
    cached, _ = translate_samples(model, samples, beam=beam)
    model.decoding_step = lambda mem, mv: DecodingStep(lambda ids: model.logits(mem, mv, ids)[:, -1])
    full, _ = translate_samples(model, samples, beam=beam)
    assert cached == full and any(cached)
