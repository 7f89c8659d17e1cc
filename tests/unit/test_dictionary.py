import numpy as np
import pytest

import slp_cli
from slp_cli import Sample, SlpError
from slp_cli.dictionary import (REST, BuildReport, build, choose, collect_instances, load_dictionary, medoid,
                                run)
from slp_cli.metrics.dtw import dtw_mje
from tests.conftest import random_pose


def flat(value: float, frames: int) -> np.ndarray:
    """A still pose: every joint at (value, 0, 0); DTW-MJE between two of them is |a - b|."""
    pose = np.zeros((frames, 178, 3), np.float32)
    pose[..., 0] = value
    return pose


def sentence(sid, parts, lang="dgs", split="train", spans=True, signer="p1"):
    """A sample made of (gloss, value, frames) parts, with gloss_spans."""
    pose = np.concatenate([flat(v, n) for _, v, n in parts])
    ends = np.cumsum([n for _, _, n in parts])
    return Sample(id=sid, pose=pose, text="", glosses=[g for g, _, _ in parts], lang=lang, split=split,
                  signer=signer, gloss_spans=np.stack([ends - [n for *_, n in parts], ends], 1) if spans else None)


def test_medoid_is_the_central_instance():
    # Distances: |0-1| = 1, |0-3| = 3, |1-3| = 2 -> mean 2, 1.5, 2.5: the instance at 1 is central.
    poses = [flat(3, 6), flat(0, 5), flat(1, 7)]
    best, means = medoid(poses)
    assert best == 2
    np.testing.assert_allclose(means, [2.5, 2.0, 1.5], atol=1e-5)


def test_medoid_agrees_with_brute_force_on_random_clips():
    poses = [random_pose(8 + i, seed=i) for i in range(5)]
    d = np.array([[dtw_mje(a, b) if i != j else 0 for j, b in enumerate(poses)] for i, a in enumerate(poses)])
    assert medoid(poses)[0] == int(np.argmin(d.sum(1)))


def test_collect_instances_cuts_spans_and_skips_what_it_cannot_use():
    samples = [
        sentence("a", [("__ON__", 9, 2), ("REGEN", 1, 5), ("SONNE", 2, 4)]),
        sentence("b", [("REGEN-PLUSPLUS", 3, 6)], spans=False),          # one sign: the whole sample
        sentence("c", [("WIND", 4, 3), ("SONNE", 5, 3)], spans=False),   # unsegmented sentence
        sentence("d", [("NEBEL", 6, 1), ("SONNE", 7, 4)]),                # a one-frame clip
    ]
    bad = sentence("e", [("SCHNEE", 1, 4)])
    bad.gloss_spans = np.array([[0, 9]])                                  # past the end
    report = BuildReport()
    found = collect_instances(samples + [bad], min_frames=2, report=report)
    assert sorted(found) == [("dgs", "REGEN"), ("dgs", "REGEN-PLUSPLUS"), ("dgs", "SONNE")]
    rain = found[("dgs", "REGEN")][0]
    assert (rain.start, rain.end) == (2, 7) and np.all(rain.pose[..., 0] == 1)
    assert [c.sample.id for c in found[("dgs", "SONNE")]] == ["a", "d"]
    assert found[("dgs", "REGEN-PLUSPLUS")][0].pose.shape[0] == 6
    skipped = {s["input"]: s["reason"] for s in report.skipped_glosses}
    assert set(skipped) == {"dgs:WIND", "dgs:NEBEL", "dgs:SCHNEE"}
    assert "without gloss_spans" in skipped["dgs:WIND"] and "shorter" in skipped["dgs:NEBEL"]
    assert [s["input"] for s in report.skipped_samples] == ["e"]


def test_choose_first_and_capped_medoid():
    samples = [sentence(f"s{i}", [("A", float(v), 4)]) for i, v in enumerate([5, 0, 2, 9, 1, 3])]
    clips = collect_instances(samples)[("dgs", "A")]
    assert choose(clips, "first")[0].sample.id == "s0"
    clip, compared = choose(clips, "medoid")
    assert compared == 6 and clip.sample.id == "s2"  # values 0,1,2,3,5,9: 2 has the smallest mean distance
    many = collect_instances([sentence(f"m{i}", [("A", float(i), 3)]) for i in range(30)])[("dgs", "A")]
    a, n = choose(many, "medoid", max_instances=5, name="dgs:A")
    b, _ = choose(many, "medoid", max_instances=5, name="dgs:A")
    assert n == 5 and a is b  # the subset is drawn with a fixed seed
    with pytest.raises(SlpError, match="unknown criterion"):
        choose(many, "longest")


def corpus():
    return [
        sentence("t1", [("__ON__", 0, 2), ("REGEN", 1, 5), ("SONNE", 2, 4)], signer="p1"),
        sentence("t2", [("REGEN", 1.2, 5), ("REGEN-PLUSPLUS", 1.5, 6), ("REGEN", 3, 5)], signer="p2"),
        sentence("t3", [("SONNE", 2, 4), ("WOLKE", 4, 6)], lang="asl"),
        sentence("d1", [("GEWITTER", 5, 4)], split="test"),
    ]


def test_build_entries(tmp_path):
    report = BuildReport()
    entries = build(corpus()[:3], fps=25, report=report)
    ids = [e.id for e in entries]
    assert ids == ["asl:__REST__", "asl:SONNE", "asl:WOLKE",
                   "dgs:__REST__", "dgs:REGEN", "dgs:REGEN-PLUSPLUS", "dgs:SONNE"]  # most instances first
    by_id = {e.id: e for e in entries}
    rain = by_id["dgs:REGEN"]
    assert rain.text == "regen" and rain.glosses == ["REGEN"] and rain.split == "dictionary"
    assert np.all(rain.pose[..., 0] == np.float32(1.2))  # medoid of 1, 1.2, 3
    assert by_id["dgs:REGEN-PLUSPLUS"].text == "regen"
    assert by_id["dgs:__REST__"].glosses == [REST] and by_id["dgs:__REST__"].text == ""
    np.testing.assert_allclose(by_id["dgs:__REST__"].pose[0, :, 0], 0.6)  # median of first frames 0 and 1.2
    assert report.instances == {"asl:SONNE": 1, "asl:WOLKE": 1, "dgs:REGEN": 3, "dgs:REGEN-PLUSPLUS": 1,
                                "dgs:SONNE": 1}
    assert report.sources["dgs:REGEN"] == "t2[0:5]"


def test_run_writes_a_dictionary_artifact_and_lookup(tmp_path):
    src = slp_cli.save(corpus(), tmp_path / "corpus.h5", fps=25, normalized=True)
    out = run(src, tmp_path / "dict.h5", criterion="first", langs=["dgs"])
    d = load_dictionary(out)
    assert d.langs == ["dgs"] and d.fps == 25 and d.normalized
    assert d.lookup("dgs", "regen").id == "dgs:REGEN"  # REGEN (3 instances) before REGEN-PLUSPLUS (1)
    assert np.all(d.lookup("dgs", "regen").pose[..., 0] == 1)  # 'first' criterion: t1's instance
    assert d.lookup("dgs", "gewitter") is None  # only in the test split
    assert d.lookup("asl", "wolke") is None  # language filtered out
    assert d.rest("dgs").shape == (1, 178, 3)
    assert [e.id for e in d.entries_for("dgs")] == ["dgs:REGEN", "dgs:REGEN-PLUSPLUS", "dgs:SONNE"]
    prov = d.provenance
    assert prov["stage"] == "dict build" and prov["args"]["criterion"] == "first"
    assert prov["entries"]["dgs:REGEN"]["instances"] == 3
    test_dict = load_dictionary(run(src, tmp_path / "d2.h5", split="test"))
    assert test_dict.lookup("dgs", "gewitter").glosses == ["GEWITTER"]


def test_bad_inputs(tmp_path):
    src = slp_cli.save(corpus(), tmp_path / "corpus.h5", fps=25)
    with pytest.raises(SlpError, match="not a sign dictionary"):
        load_dictionary(src)
    with pytest.raises(SlpError, match="no samples in split 'dev'"):
        run(src, tmp_path / "x.h5", split="dev")
    unsegmented = [sentence("u", [("A", 1, 3), ("B", 2, 3)], spans=False)]
    with pytest.raises(SlpError, match="no gloss has a usable instance"):
        run(slp_cli.save(unsegmented, tmp_path / "u.h5", fps=25), tmp_path / "y.h5")
    assert not (tmp_path / "y.h5").exists()


def test_lexicon_folder(tmp_path):
    write_pose = pytest.importorskip("slp_cli.interop.pose_format").write_pose
    rows = ["path,spoken_language,signed_language,start,end,words,glosses,priority"]
    for i, (words, gloss) in enumerate([("kinder", "KINDER"), ("guten morgen", "GUTEN-MORGEN")]):
        write_pose(Sample(id=gloss, pose=random_pose(6 + i, seed=i)), tmp_path / f"{gloss}.pose", fps=25)
        rows.append(f"{gloss}.pose,de,sgg,0,0,{words},{gloss},0")
    (tmp_path / "index.csv").write_text("\n".join(rows) + "\n")
    d = load_dictionary(run(tmp_path, tmp_path / "lex.h5"))
    assert d.langs == ["sgg"] and d.fps == 25
    assert d.lookup("sgg", "kind").id == "sgg:KINDER"  # keyed by the lemmatized words
    assert d.lookup("sgg", "gut morgen").id == "sgg:GUTEN-MORGEN" and d.max_words("sgg") == 2


def test_synthetic_corpus_train_glosses_are_covered(tmp_path):
    synth = pytest.importorskip("slp_cli.data.synth")
    samples = synth.synthesize(langs=("dgs", "csl"), preset="tiny", seed=0)
    art = slp_cli.save(samples, tmp_path / "synth.h5", fps=25)
    report = BuildReport()
    d = load_dictionary(run(art, tmp_path / "dict.h5", report=report))
    train = {(s.lang, g) for s in samples if s.split == "train" for g in s.glosses}
    assert not report.skipped_glosses
    for lang, g in train:
        assert d.by_gloss(lang, g) is not None, (lang, g)
    assert {e.id for e in d.entries if e.glosses != [REST]} == {f"{lang}:{g}" for lang, g in train}


def test_cli_build(tmp_path):
    from typer.testing import CliRunner

    from slp_cli.cli.main import app

    src = slp_cli.save(corpus(), tmp_path / "corpus.h5", fps=25)
    res = CliRunner().invoke(app, ["dict", "build", str(src), "-o", str(tmp_path / "d.h5"), "--langs", "asl",
                                   "--json"])
    assert res.exit_code == 0, res.output
    assert load_dictionary(tmp_path / "d.h5").langs == ["asl"]
    res = CliRunner().invoke(app, ["dict", "build", str(src), "-o", str(tmp_path / "e.h5"), "--criterion", "x"])
    assert isinstance(res.exception, SlpError)
