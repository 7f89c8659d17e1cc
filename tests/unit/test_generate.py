import numpy as np
import pytest

import slp_cli
from slp_cli import Sample, SlpError
from slp_cli.dictionary import REST, Dictionary, load_dictionary
from slp_cli.generate import METHODS, Request, concat, ease, generate, join, read_requests, run, transition
from slp_cli.text.lemmas import fold, word_key
from tests.conftest import random_pose


def entry(lang, gloss, key, pose):
    return Sample(id=f"{lang}:{gloss}", pose=pose.astype(np.float32), text=key, glosses=[gloss], lang=lang,
                  split="dictionary")


def still(value, frames):
    pose = np.zeros((frames, 178, 3), np.float32)
    pose[..., 0] = value
    return pose


@pytest.fixture
def dictionary():
    return Dictionary(entries=[
        entry("dgs", REST, "", still(0, 1)),
        entry("dgs", "REGEN", "regen", random_pose(5, seed=1)),
        entry("dgs", "WOLKE", "wolke", random_pose(7, seed=2)),
        entry("dgs", "GEWITTER", "gewitter", random_pose(4, seed=3)),
        entry("dgs", "GUTEN-MORGEN", "gut morgen", random_pose(6, seed=4)),
        entry("dgs", "MORGEN", "morgen", random_pose(3, seed=5)),
        entry("asl", "RAIN", "rain", random_pose(6, seed=6)),
    ], fps=25)


def test_concat_length_unknown_and_function_words(dictionary):
    pose, rep = concat("Dann kommt der Regen, später Wolken!", "dgs", dictionary, transition_frames=4,
                       rest_frames=0)
    assert rep.glosses == ["REGEN", "WOLKE"]
    assert rep.function_words == ["dann", "der"]
    assert rep.unknown == ["kommt", "später"]  # reported, not dropped
    # the comma and the "!" are pauses: REGEN's last frame, then WOLKE's, held 0.2 s = 5 frames
    assert pose.shape == (5 + 5 + 4 + 7 + 5, 178, 3)
    assert rep.spans == [(0, 5), (14, 21)] and rep.pauses == [(5, 10), (21, 26)]
    np.testing.assert_array_equal(pose[0:5], dictionary.by_gloss("dgs", "REGEN").pose)
    np.testing.assert_array_equal(pose[5:10], np.repeat(pose[4:5], 5, 0))
    np.testing.assert_array_equal(pose[14:21], dictionary.by_gloss("dgs", "WOLKE").pose)
    np.testing.assert_array_equal(pose[21:], np.repeat(pose[20:21], 5, 0))
    pose, rep = concat("Dann kommt der Regen, später Wolken!", "dgs", dictionary, transition_frames=4,
                       rest_frames=0, pause_frames=0)
    assert pose.shape == (5 + 4 + 7, 178, 3) and rep.spans == [(0, 5), (9, 16)] and rep.pauses == []
    # defaults at the dictionary's 25 fps: rest 0.16 s = 4 frames, transitions 0.12 s = 3 frames
    pose, rep = concat("regen wolke", "dgs", dictionary)
    assert pose.shape[0] == 4 + 3 + 5 + 3 + 7 + 3 + 4 and rep.spans == [(7, 12), (15, 22)]


def test_longest_phrase_and_surface_form(dictionary):
    _, rep = concat("Guten Morgen und Gewitter am Morgen", "dgs", dictionary, transition_frames=0)
    # "guten morgen" (a two-word entry) wins over MORGEN alone; the lone "morgen" gets MORGEN.
    assert rep.signed[0] == ("guten morgen", "GUTEN-MORGEN") and rep.glosses[-1] == "MORGEN"
    # simplemma reads "Gewitter" as a form of the verb "gewittern"; the surface form finds the gloss.
    if word_key("Gewitter", "dgs") != fold("Gewitter"):
        assert "GEWITTER" in rep.glosses
    assert rep.glosses == ["GUTEN-MORGEN", "GEWITTER", "MORGEN"]


def test_transition_is_eased_and_bounded():
    a, b = random_pose(6, seed=7), random_pose(8, seed=8) + 40
    m = 6
    pose, spans = join([a, b], m)
    start, end = a[-1], b[0]
    between = pose[6:6 + m]
    # Every in-between frame lies between the two ends, moving monotonically from one to the other.
    lo, hi = np.minimum(start, end), np.maximum(start, end)
    assert np.all(between >= lo - 1e-4) and np.all(between <= hi + 1e-4)
    path = np.concatenate([start[None], between, end[None]])
    steps = np.linalg.norm(np.diff(path, axis=0), axis=-1)  # (m+1, K) per-joint step lengths
    jump = np.linalg.norm(end - start, axis=-1)
    # No step is larger than the cosine ease's steepest slope allows, and all are far below the
    # jump a plain concatenation would make; it starts and ends slowly (ease-in-out).
    assert np.all(steps <= jump * np.pi / (2 * (m + 1)) + 1e-4)
    assert np.all(steps.max(0) < 0.5 * jump)
    assert np.all(steps[0] < steps[m // 2]) and np.all(steps[-1] < steps[m // 2])
    assert spans == [(0, 6), (12, 20)]
    np.testing.assert_allclose(ease(np.array([0, 0.5, 1])), [0, 0.5, 1], atol=1e-12)


def test_transition_with_missing_joints():
    a, b = random_pose(5, seed=1), random_pose(5, seed=2)
    a[-1, 10] = np.nan   # missing in the last frame only: start from its last seen position
    a[:, 20] = np.nan    # never seen in the first clip: stays missing
    t = transition(a, b, 3)
    assert np.isfinite(t[:, 10]).all() and np.isnan(t[:, 20]).all()
    w = ease(np.array([0.25]))[0]
    np.testing.assert_allclose(t[0, 10], a[-2, 10] + (b[0, 10] - a[-2, 10]) * w, rtol=1e-5)
    assert np.isfinite(np.delete(t, 20, axis=1)).all()


def test_rest_pose_at_both_ends(dictionary):
    pose, rep = concat("regen", "dgs", dictionary, transition_frames=2, rest_frames=3)
    assert pose.shape[0] == 3 + 2 + 5 + 2 + 3
    np.testing.assert_array_equal(pose[:3], still(0, 3))
    np.testing.assert_array_equal(pose[-3:], still(0, 3))
    assert rep.spans == [(5, 10)]


def test_concat_errors(dictionary):
    with pytest.raises(SlpError, match="empty text"):
        concat("  ", "dgs", dictionary)
    with pytest.raises(SlpError, match="unknown language 'xx'"):
        concat("regen", "xx", dictionary)
    with pytest.raises(SlpError, match="no entries for language 'csl'"):
        concat("下雨", "csl", dictionary)
    with pytest.raises(SlpError, match="unknown: sonne, scheint"):
        concat("Die Sonne scheint", "dgs", dictionary)
    with pytest.raises(SlpError, match="no words"):
        concat("?!", "dgs", dictionary)


def test_registry_dispatch(dictionary):
    assert "concat" in METHODS
    res = generate(read_requests(text="Regen", lang="dgs")[0], "concat", dictionary=dictionary)
    assert [s.id for s in res.samples] == ["line-0001"] and res.samples[0].glosses == ["REGEN"]
    assert "model" in METHODS  # a trained generator directory (`slp generate --model`)
    with pytest.raises(SlpError, match="unknown method 'nope'.*concat"):
        generate([], "nope")


@pytest.fixture
def dict_file(tmp_path, dictionary):
    return slp_cli.save(dictionary.entries, tmp_path / "dict.h5", fps=25, normalized=True)


def test_batch_from_artifact_keeps_ids_and_filters_split(tmp_path, dict_file):
    refs = [Sample(id=f"ref-{i}", pose=random_pose(4, seed=i), text=t, lang="dgs", split=sp)
            for i, (t, sp) in enumerate([("regen morgen", "test"), ("wolken", "train"), ("sonne", "test"),
                                         ("viel regen", "test")])]
    src = slp_cli.save(refs, tmp_path / "refs.h5", fps=25)
    out = run(tmp_path / "gen.h5", texts_from=src, split="test", dictionary=dict_file)
    art = slp_cli.load(tmp_path / "gen.h5")
    assert art.ids == ["ref-0", "ref-3"] and {s.split for s in art} == {"test"}
    assert art.fps == 25 and art.normalized  # from the dictionary
    assert art["ref-0"].text == "regen morgen" and art["ref-0"].glosses == ["REGEN", "MORGEN"]
    assert art.provenance["stage"] == "generate" and art.provenance["args"]["method"] == "concat"
    assert out["skipped"] == 1 and art.skipped[0]["input"] == "ref-2"  # no known word: reported
    assert out["most_frequent_unknown"] == [("viel", 1)] and out["sentences_with_unknown"] == 1
    # each sentence's own report is in the artifact
    assert art["ref-3"].report["unknown"] == ["viel"] and art["ref-3"].report["signed"] == [["regen", "REGEN"]]
    with pytest.raises(SlpError, match="ref-3: unknown words viel"):
        run(tmp_path / "strict.h5", texts_from=src, split="test", dictionary=dict_file, strict=True)
    assert not (tmp_path / "strict.h5").exists()


def test_batch_from_text_file(tmp_path, dict_file):
    f = tmp_path / "sentences.txt"
    f.write_text("Regen\n\nWolken und Regen\n", encoding="utf-8")
    run(tmp_path / "gen.h5", texts_from=f, lang="dgs", dictionary=dict_file, transition_frames=1, rest_frames=0)
    art = slp_cli.load(tmp_path / "gen.h5")
    assert art.ids == ["line-0001", "line-0003"]  # ids follow the line numbers
    assert art["line-0003"].num_frames == 7 + 1 + 5
    np.testing.assert_array_equal(art["line-0003"].gloss_spans, [[0, 7], [8, 13]])
    with pytest.raises(SlpError, match="--split filters"):
        read_requests(texts_from=f, lang="dgs", split="test")
    with pytest.raises(SlpError, match="--lang is required"):
        read_requests(texts_from=f)


def test_cli_generate(tmp_path, dict_file):
    from typer.testing import CliRunner

    from slp_cli.cli.main import app

    out = tmp_path / "one.h5"
    res = CliRunner().invoke(app, ["generate", "Regen am Morgen", "--lang", "dgs", "--dictionary",
                                   str(dict_file), "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert slp_cli.load(out)[0].glosses == ["REGEN", "MORGEN"]
    res = CliRunner().invoke(app, ["generate", "Regen", "--lang", "dgs", "-o", str(out)])
    assert isinstance(res.exception, SlpError) and "--dictionary" in str(res.exception)


def test_concat_beats_trivial_baselines_on_synthetic_corpus(tmp_path):
    """On the synthetic corpus, concatenating dictionary signs must be closer (DTW-MJE) to the
    reference test sentences than the mean pose held for the reference's length, and than the
    poses of another test sentence."""
    synth = pytest.importorskip("slp_cli.data.synth")
    from slp_cli.dictionary import run as build_dictionary
    from slp_cli.metrics.dtw import dtw_mje

    from slp_cli.normalize import normalize_samples

    samples = normalize_samples(synth.synthesize(langs=("dgs", "csl", "asl"), preset="tiny", seed=0))
    corpus = slp_cli.save(samples, tmp_path / "synth.h5", fps=25, normalized=True)
    d = load_dictionary(build_dictionary(corpus, tmp_path / "dict.h5"))
    refs = [s for s in samples if s.split == "test"]
    assert refs
    requests = [Request(s.id, s.text, s.lang, s.split) for s in refs]
    gen = {s.id: s for s in generate(requests, "concat", dictionary=d).samples}
    train = np.concatenate([s.pose for s in samples if s.split == "train"])
    mean_pose = np.nanmean(train, axis=0)
    ours, mean_base, other_base = [], [], []
    for i, ref in enumerate(refs):
        if ref.id not in gen:
            continue
        ours.append(dtw_mje(gen[ref.id].pose, ref.pose))
        mean_base.append(dtw_mje(np.repeat(mean_pose[None], ref.num_frames, 0), ref.pose))
        other = refs[(i + 1) % len(refs)]
        other_base.append(dtw_mje(other.pose, ref.pose))
    assert len(ours) >= 0.8 * len(refs)  # most test sentences have known words
    # measured: concat 0.09, mean pose 0.19, another sentence 0.15 (shoulder widths)
    assert np.mean(ours) < np.mean(mean_base)
    assert np.mean(ours) < np.mean(other_base)
