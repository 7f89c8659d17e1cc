"""score(): two tiny artifacts built from Sample objects, and the `slp score` command."""

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from slp_cli.artifacts import Sample, load, save
from slp_cli.cli.main import app
from slp_cli.errors import SlpError
from slp_cli.metrics import dtw_mje
from slp_cli.score import run, score, text_scores, wrist_travel
from slp_cli.skeleton import ARTICULATORS, L_WRIST, R_WRIST

RNG = np.random.default_rng(11)
SELECTIONS = {"all", "body", "right_hand", "left_hand", "face"}


def walk(t):
    return (np.cumsum(RNG.normal(size=(t, 178, 3)), axis=0) * 0.02).astype(np.float32)


@pytest.fixture()
def ref_path(tmp_path):
    samples = [
        Sample(id="a", pose=walk(14), text="am mittwoch regen", lang="dgs", split="test"),
        Sample(id="b", pose=walk(11), text="es bleibt trocken und warm", lang="dgs", split="test"),
        Sample(id="c", pose=walk(9), text="今天天气很好", lang="csl", split="test"),
        Sample(id="d", pose=walk(8), text="nur im training", lang="dgs", split="train"),
    ]
    return save(samples, tmp_path / "ref.h5", fps=25)


def copy_of(ref, ids, noise=0.0, translations=None, extra=()):
    out = []
    for s in ref.samples:
        if s.id in ids:
            pose = s.pose + RNG.normal(scale=noise, size=s.pose.shape).astype(np.float32) if noise else s.pose
            out.append(Sample(id=s.id, pose=pose, lang=s.lang, split=s.split,
                              translation=(translations or {}).get(s.id, "")))
    out += [Sample(id=i, pose=walk(5), split="test") for i in extra]
    return out


def test_exact_copy_scores_zero_and_ids_are_matched(ref_path, tmp_path):
    ref = load(ref_path)
    hyp_path = save(copy_of(ref, {"a", "c"}, extra=["zz"]), tmp_path / "hyp.h5", fps=25)
    res = score(load(hyp_path), ref)
    assert res["samples"] == {"matched": 2, "missing_in_hyp": ["b", "d"], "extra_in_hyp": ["zz"]}
    for metric in ("dtw_mje", "dtw_pa_jpe"):
        assert set(res["pose"][metric]) == SELECTIONS
        for agg in res["pose"][metric].values():
            assert agg["value"] == pytest.approx(0.0, abs=1e-4) and agg["n"] == 2 and agg["undefined"] == 0
    assert res["duration_ratio"]["value"] == pytest.approx(1.0)
    assert res["wrist_travel_ratio"]["value"] == pytest.approx(1.0)
    assert "text" not in res  # no back-translations
    assert set(res["by_lang"]) == {"dgs", "csl"}
    assert [row["id"] for row in res["per_sample"]] == ["a", "c"]


def test_perturbed_hyp_scores_worse(ref_path, tmp_path):
    ref = load(ref_path)
    hyp = load(save(copy_of(ref, {"a", "b", "c"}, noise=0.05), tmp_path / "hyp.h5", fps=25))
    res = score(hyp, ref, protocol="slp")
    for metric in ("dtw_mje", "dtw_pa_jpe"):
        for agg in res["pose"][metric].values():
            assert agg["value"] > 0.01
    # The corpus value is the mean of the per-sample scores, which are dtw_mje itself.
    rows = {row["id"]: row for row in res["per_sample"]}
    assert rows["a"]["dtw_mje"]["all"] == pytest.approx(dtw_mje(hyp["a"].pose, ref["a"].pose), rel=1e-6)
    want = np.mean([rows[i]["dtw_mje"]["right_hand"] for i in ("a", "b", "c", "d") if i in rows])
    assert res["pose"]["dtw_mje"]["right_hand"]["value"] == pytest.approx(want)


def test_undefined_scores_are_counted_not_averaged(ref_path, tmp_path):
    ref = load(ref_path)
    hyps = copy_of(ref, {"a", "b"}, noise=0.05)
    hyps[0].pose[:, ARTICULATORS["left_hand"]] = np.nan  # left hand never detected in 'a'
    res = score(load(save(hyps, tmp_path / "hyp.h5", fps=25)), ref)
    lh = res["pose"]["dtw_mje"]["left_hand"]
    assert lh["n"] == 1 and lh["undefined"] == 1
    b_only = [row for row in res["per_sample"] if row["id"] == "b"][0]["dtw_mje"]["left_hand"]
    assert lh["value"] == pytest.approx(b_only)
    assert res["pose"]["dtw_mje"]["all"]["undefined"] == 0


def test_duration_and_wrist_travel(ref_path, tmp_path):
    ref = load(ref_path)
    slow = [Sample(id=s.id, pose=np.repeat(s.pose, 2, axis=0), split=s.split, lang=s.lang)
            for s in ref.samples if s.id in ("a", "b")]
    res = score(load(save(slow, tmp_path / "slow.h5", fps=25)), ref)
    assert res["duration_ratio"]["value"] == pytest.approx(2.0)
    assert res["pose"]["dtw_mje"]["all"]["value"] == pytest.approx(0.0, abs=1e-6)  # tempo-blind
    # Frozen signer: no wrist travel at all.
    frozen = [Sample(id=s.id, pose=np.repeat(s.pose[:1], s.num_frames, axis=0), split=s.split)
              for s in ref.samples if s.id in ("a", "b")]
    assert score(load(save(frozen, tmp_path / "frozen.h5", fps=25)), ref)["wrist_travel_ratio"]["value"] == 0.0
    # By hand: right wrist moves 3-4-5 (length 5), left wrist stays; a missing step is skipped.
    pose = np.zeros((4, 178, 3), np.float32)
    pose[1, R_WRIST] = [3, 4, 0]
    pose[2, R_WRIST] = np.nan
    pose[3, L_WRIST] = [0, 0, 2]
    assert wrist_travel(pose) == pytest.approx((5.0, 2.0))
    # Different frame rates: durations compare in seconds.
    half = [Sample(id=s.id, pose=s.pose, split=s.split) for s in ref.samples if s.id == "a"]
    assert score(load(save(half, tmp_path / "half.h5", fps=12.5)), ref)["duration_ratio"]["value"] == \
        pytest.approx(2.0)


def test_peak_speed_and_jerk_of_the_wrists_by_hand():
    from slp_cli.score import peak_derivatives

    pose = np.zeros((6, 178, 3), np.float32)
    pose[:, R_WRIST, 0] = [0, 0, 0, 1, 1, 1]  # one step of 1 between frames 2 and 3
    pose[:, L_WRIST, 1] = [0, 0.5, 1, 1.5, 2, 2.5]  # constant speed 0.5 per frame: no jerk
    speed, jerk = peak_derivatives(pose, fps=10)
    assert speed == pytest.approx(10.0)  # 1 per frame at 10 fps
    # third differences of the step: 1, -2, 1 -> peak |-2| * 10**3; the left wrist adds none
    assert jerk == pytest.approx(2000.0)
    pose[3, R_WRIST] = np.nan  # differences touching a missing frame are left out
    speed, jerk = peak_derivatives(pose, fps=10)
    assert speed == pytest.approx(5.0) and np.isnan(peak_derivatives(np.full((2, 178, 3), np.nan), 10)[0])


def test_text_metrics_from_translations(ref_path, tmp_path):
    ref = load(ref_path)
    tr = {"a": "Am Mittwoch Regen", "b": "es bleibt warm", "c": "今天天气好"}
    res = score(load(save(copy_of(ref, {"a", "b", "c"}, translations=tr), tmp_path / "hyp.h5", fps=25)), ref)
    text = res["text"]
    assert text["n"] == 3 and text["without_translation"] == 0
    assert set(text) >= {"bleu1", "bleu2", "bleu3", "bleu4", "chrf", "rouge_l", "bleu_signature", "chrf_signature"}
    assert 0 < text["bleu1"] < 100
    # Per language: the dgs row sees only its two sentences; 'a' is exact after lower-casing.
    assert res["by_lang"]["dgs"]["text"]["n"] == 2
    assert res["by_lang"]["csl"]["text"]["bleu1"] == pytest.approx(100 * math.exp(1 - 6 / 5))
    # The same numbers from plain triples (what a back-translating caller passes in).
    again = text_scores([(tr[i], ref[i].text, ref[i].lang) for i in ("a", "b", "c")])
    assert again["bleu4"] == pytest.approx(text["bleu4"]) and again["rouge_l"] == pytest.approx(text["rouge_l"])
    # A sample translated to nothing is an empty hypothesis, not one left out.
    empty = dict(tr, b="")
    res = score(load(save(copy_of(ref, {"a", "b", "c"}, translations=empty), tmp_path / "e.h5", fps=25)), ref)
    assert res["text"]["n"] == 3 and res["text"]["without_translation"] == 1
    as_empty = text_scores([(empty[i], ref[i].text, ref[i].lang) for i in ("a", "b", "c")])
    assert res["text"]["rouge_l"] == pytest.approx(as_empty["rouge_l"]) and as_empty["rouge_l"] < text["rouge_l"]
    assert res["text"]["bleu1"] == pytest.approx(as_empty["bleu1"])


def test_pooled_protocol_pools_over_samples(tmp_path):
    # slrtp2025 at 12.5 fps: sample x has (error sum 1, 3 pairs), sample y is exact (0, 5 pairs).
    def line(values):
        p = np.zeros((len(values), 178, 3), np.float32)
        p[:, :, 0] = np.asarray(values, np.float32)[:, None]
        return p
    same = line([0, 1, 2, 3, 4])
    ref = save([Sample(id="x", pose=line([0, 2])), Sample(id="y", pose=same)], tmp_path / "r.h5", fps=12.5)
    hyp = save([Sample(id="x", pose=line([0, 1, 2])), Sample(id="y", pose=same)], tmp_path / "h.h5", fps=12.5)
    res = score(load(hyp), load(ref), protocol="slrtp2025")
    assert res["pose"]["dtw_mje"]["all"]["value"] == pytest.approx(1 / 8)
    assert res["pooled"] is True
    assert score(load(hyp), load(ref), protocol="slp")["pose"]["dtw_mje"]["all"]["value"] == pytest.approx(1 / 6)


def test_errors(ref_path, tmp_path):
    ref = load(ref_path)
    other = load(save([Sample(id="q", pose=walk(4))], tmp_path / "other.h5", fps=25))
    with pytest.raises(SlpError, match="none of its 1 sample ids"):
        score(other, ref)
    with pytest.raises(SlpError, match="protocol"):
        score(ref, ref, protocol="dtw2000")
    with pytest.raises(SlpError, match="BLEU"):
        score(ref, ref, bleu_tokenize="spm")


def test_run_split_and_atomic_json(ref_path, tmp_path):
    out = tmp_path / "scores" / "s.json"
    res = run(ref_path, ref_path, json_path=out, split="test")
    assert res["samples"]["matched"] == 3 and res["split"] == "test"
    data = json.loads(out.read_text())
    assert data["pose"]["dtw_mje"]["all"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert not list(out.parent.glob("*.tmp"))
    # NaN is written as null, never as the invalid JSON token NaN.
    hyp = copy_of(load(ref_path), {"a"})
    hyp[0].pose[:, ARTICULATORS["face"]] = np.nan
    run(save(hyp, tmp_path / "h.h5", fps=25), ref_path, json_path=out)
    data = json.loads(out.read_text())
    assert data["per_sample"][0]["dtw_mje"]["face"] is None
    assert data["pose"]["dtw_mje"]["face"]["value"] is None


def test_cli(ref_path, tmp_path):
    hyp = save(copy_of(load(ref_path), {"a", "b"}, noise=0.05), tmp_path / "hyp.h5", fps=25)
    runner = CliRunner()
    res = runner.invoke(app, ["score", "--hyp", str(hyp), "--ref", str(ref_path), "--json", "-",
                              "--protocol", "pt2020", "--split", "test"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["protocol"] == "pt2020" and data["samples"]["missing_in_hyp"] == ["c"]
    assert data["pose"]["dtw"]["all"]["value"] > 0
    res = runner.invoke(app, ["score", "--hyp", str(tmp_path / "missing.h5"), "--ref", str(ref_path)])
    assert res.exit_code != 0


@pytest.fixture(scope="module")
def slt_with_gloss_head(tmp_path_factory):
    """A briefly trained SLT model whose corpus has glosses (so it has a CTC gloss head)."""
    import torch

    from slp_cli.data.synth import synthesize
    from slp_cli.normalize import normalize_samples
    from slp_cli.training import TrainOptions, train

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bt")
    corpus = save(normalize_samples(synthesize(["dgs"], preset="tiny", sentences=60, seed=5)), root / "dgs.norm.h5",
                  fps=25, normalized=True)
    train("slt", TrainOptions(output=root / "slt", data=[corpus]), preset="tiny",
          overrides={"stage": "finetune-all", "max_steps": 30, "eval_every": 30})
    yield {"corpus": corpus, "model": root / "slt"}
    torch.set_num_threads(before)


def test_backtranslation_gloss_wer(slt_with_gloss_head, tmp_path):
    from slp_cli.metrics.text import wer
    from slp_cli.score import gloss_wer

    setup = slt_with_gloss_head
    ref = load(setup["corpus"], split="test")
    frozen = [Sample(id=s.id, pose=np.repeat(s.pose[:1], s.num_frames, 0), lang=s.lang, split=s.split)
              for s in ref.samples]
    hyp = save(frozen, tmp_path / "frozen.h5", fps=25, normalized=True)
    res = run(hyp, setup["corpus"], split="test", backtranslate_with=setup["model"])
    bt = res["backtranslation"]
    assert bt["beam"] == 4  # the default
    refs = [s.glosses for s in ref.samples]
    assert all(refs)
    for name, key in (("hyp", "hyp_glosses"), ("ground_truth", "ground_truth_glosses")):
        found = [bt["translations"][s.id][key] for s in ref.samples]
        assert all(isinstance(g, list) for g in found)
        # hypothesis glosses against the reference glosses, corpus WER over the samples
        assert bt["gloss_wer"][name]["wer"] == pytest.approx(wer(found, refs))
        assert bt["gloss_wer"][name]["n"] == len(refs)
        assert bt["gloss_wer"][name]["ref_glosses"] == sum(map(len, refs))
    # a reference without glosses is left out; none at all: undefined
    assert gloss_wer([["A"], ["B"]], [["A", "C"], []]) == {"wer": 50.0, "n": 1, "ref_glosses": 2}
    assert math.isnan(gloss_wer([["A"]], [[]])["wer"])
    r = CliRunner().invoke(app, ["score", "--hyp", str(hyp), "--ref", str(setup["corpus"]), "--split", "test",
                                 "--backtranslate", str(setup["model"]), "--beam", "1"])
    assert r.exit_code == 0, r.output
    assert "WER" in r.output and "greedy" in r.output  # the gloss WER column (narrow terminal: wrapped)
    # a reference without glosses: no gloss WER (the text scores stay)
    plain = save([Sample(id=s.id, pose=s.pose, text=s.text, lang=s.lang, split=s.split) for s in ref.samples],
                 tmp_path / "plain.h5", fps=25, normalized=True)
    res = run(hyp, plain, backtranslate_with=setup["model"], beam=1)
    assert "gloss_wer" not in res["backtranslation"] and res["backtranslation"]["ground_truth"]["n"] == len(refs)
