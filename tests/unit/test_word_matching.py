"""Real German text through the dictionary baseline: how `slp generate --method concat` matches
words to glosses (transliteration, hyphens, compounds, the learnt word -> gloss table),
fingerspells unknown words and reports every unknown word."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import slp_cli
from slp_cli import Sample, SlpError
from slp_cli.cli.main import app
from slp_cli.dictionary import LETTER, REST, Dictionary, load_dictionary
from slp_cli.dictionary import run as build_dictionary
from slp_cli.generate import concat, generate, Request, spell
from slp_cli.metrics.text import wer
from slp_cli.text.align import learn_word_table


def still(value, frames):
    pose = np.zeros((frames, 178, 3), np.float32)
    pose[..., 0] = value
    return pose


def entry(gloss, key, value, frames=4, lang="dgs"):
    return Sample(id=f"{lang}:{gloss}", pose=still(value, frames), text=key, glosses=[gloss], lang=lang,
                  split="dictionary")


def letter(ch, value, frames=3, lang="dgs"):
    return Sample(id=f"{lang}:{LETTER}:{ch}", pose=still(value, frames), text=ch, glosses=[LETTER], lang=lang,
                  split="dictionary")


@pytest.fixture
def dictionary():
    return Dictionary(entries=[
        entry(REST, "", 0, 1), entry("REGEN", "regen", 1), entry("SUED", "sued", 2), entry("NORD", "nord", 3),
        entry("NORDWEST", "nordwest", 4), entry("SCHAUER", "schauer", 5), entry("WIE-AUSSEHEN", "wie-aussehen", 6),
        entry("poss-SEIN", "sein", 7), entry("UEBERSCHWEMMUNG", "ueberschwemmung", 8), entry("WOLKE", "wolke", 9),
    ], fps=25)


def glosses(text, d, **kw):
    return concat(text, "dgs", d, transition_frames=0, rest_frames=0, pause_frames=0, **kw)[1]


def test_umlauts_case_and_hyphens_meet_the_gloss_spelling(dictionary):
    rep = glosses("ÜBERSCHWEMMUNG im Süden", dictionary)
    assert rep.glosses == ["UEBERSCHWEMMUNG", "SUED"]  # ü -> ue, and süden = SUED + the ending -en
    assert rep.matched_by == {"surface": 1, "function word": 1, "prefix": 1}
    assert glosses("Nord-West und wie-aussehen", dictionary).glosses == ["NORDWEST", "WIE-AUSSEHEN"]
    assert glosses("nordwest wieaussehen", dictionary).glosses == ["NORDWEST", "WIE-AUSSEHEN"]


def test_compounds_and_prefixes(dictionary):
    pose, rep = concat("Regenschauer im Nordwesten", "dgs", dictionary, transition_frames=0, rest_frames=0)
    assert rep.signed == [("regenschauer", "REGEN"), ("regenschauer", "SCHAUER"), ("nordwesten", "NORDWEST")]
    assert rep.matched_by == {"compound": 1, "function word": 1, "prefix": 1}
    assert rep.spans == [(0, 4), (4, 8), (8, 12)] and pose[4, 0, 0] == 5
    assert glosses("Norden", dictionary).glosses == ["NORD"]  # nordwest does not swallow norden


def test_function_words_are_not_read_through_their_lemma(dictionary):
    # "ist" lemmatizes to "sein", the key of poss-SEIN ("his"); a function word is never looked up by lemma
    rep = glosses("es ist Regen", dictionary)
    assert rep.glosses == ["REGEN"] and rep.function_words == ["es", "ist"]
    assert glosses("viele Wolken", dictionary).glosses == ["WOLKE"]  # a content word still is
    # a learnt table may pair a function word with its neighbour's sign ("war" is always seen beside
    # "gestern"): a function word takes only its own sign from the table
    table = {"war": "GESTERN", "gestern": "GESTERN", "nur": "NUR"}
    d = Dictionary(entries=dictionary.entries + [entry("GESTERN", "gestern", 10), entry("NUR", "nur", 11)], fps=25,
                   provenance={"word_table": {"dgs": table}})
    rep = glosses("gestern war nur Regen", d)
    assert rep.glosses == ["GESTERN", "NUR", "REGEN"] and rep.function_words == ["war"]


def flat_sentence(sid, text, gloss_list, split="train"):
    """A sample whose every gloss is a still clip of 4 frames (value = its index in VALUES)."""
    pose = np.concatenate([still(VALUES.index(g), 4) for g in gloss_list])
    spans = np.array([[4 * i, 4 * i + 4] for i in range(len(gloss_list))])
    return Sample(id=sid, pose=pose, text=text, glosses=list(gloss_list), lang="dgs", split=split, gloss_spans=spans)


VALUES = ["MONTAG", "DIENSTAG", "REGEN", "STARK", "KALT", "NORD", "WOLKE", "UND", "WIND", "NASS"]
PARALLEL = [
    ("am montag regnet es", ["MONTAG", "REGEN"]),
    ("am dienstag regnet es stark", ["DIENSTAG", "REGEN", "STARK"]),
    ("im norden regnet es", ["NORD", "REGEN"]),
    ("es ist kalt", ["KALT"]),
    ("es ist nass", ["NASS"]),
    ("es ist kalt und nass", ["KALT", "NASS"]),
    ("im norden ist es kalt", ["NORD", "KALT"]),
    ("am montag ist es stark bewölkt", ["MONTAG", "STARK", "WOLKE"]),
    ("dienstag wolken im norden", ["DIENSTAG", "WOLKE", "NORD"]),
    ("regen und wind", ["REGEN", "UND", "WIND"]),
    ("viel wind", ["WIND"]),
    ("viel regen", ["REGEN"]),
    ("wind und kälte", ["WIND", "KALT"]),
    ("im winter ist es kalt", ["KALT"]),
    ("im sommer ist es nass", ["NASS"]),
]
HELD_OUT = [("am montag regnet es und im norden ist es kalt", ["MONTAG", "REGEN", "NORD", "KALT"]),
            ("dienstag regnet es stark und wind", ["DIENSTAG", "REGEN", "STARK", "WIND"])]


def test_learnt_table_beats_the_lemma_rules_on_a_parallel_corpus(tmp_path):
    corpus = slp_cli.save([flat_sentence(f"t{i}", t, g) for i, (t, g) in enumerate(PARALLEL)],
                          tmp_path / "corpus.h5", fps=25, normalized=True)
    learnt = load_dictionary(build_dictionary(corpus, tmp_path / "d.h5"))
    rules = load_dictionary(build_dictionary(corpus, tmp_path / "rules.h5", word_table=False))
    # "regnet" is REGEN (simplemma reads it as the verb "regnen", no gloss); "und" is signed once in
    # three sentences: the corpus leaves it unsigned, though an UND entry exists
    assert learnt.learnt("dgs", "regnet") == "REGEN" and learnt.learnt("dgs", "und") == ""
    assert learnt.learnt("dgs", "norden") == "NORD" and learnt.learnt("dgs", "es") == ""
    assert rules.learnt("dgs", "regnet") is None
    requests = [Request(f"h{i}", t, "dgs", "test") for i, (t, _) in enumerate(HELD_OUT)]
    refs = [g for _, g in HELD_OUT]

    def score(d):
        out = {s.id: s.glosses for s in generate(requests, "concat", dictionary=d).samples}
        return wer([out[r.id] for r in requests], refs), out

    with_table, out = score(learnt)
    without, old = score(rules)
    assert out["h0"] == ["MONTAG", "REGEN", "NORD", "KALT"] and with_table == 0
    assert old["h0"] == ["MONTAG", "UND", "NORD", "KALT"] and without > with_table


def test_word_table_alone():
    pairs = [(t.split(), g) for t, g in PARALLEL]
    table = learn_word_table(pairs)
    assert table["regnet"] == "REGEN" and table["kalt"] == "KALT" and table["und"] == ""
    assert "bewölkt" not in table  # seen once: left to the rules
    assert learn_word_table([]) == {}


@pytest.fixture
def speller(dictionary):
    letters = [letter(ch, 10 + i) for i, ch in enumerate(["a", "e", "f", "l", "n", "o", "r", "t", "sch", "s", "c"])]
    return Dictionary(entries=dictionary.entries + letters, fps=25)


def test_unknown_words_are_fingerspelled_with_the_alphabet(speller):
    pose, rep = concat("Nora schläft, Regen", "dgs", speller, transition_frames=0, rest_frames=0, pause_frames=2)
    assert rep.fingerspelled == ["nora", "schläft"] and rep.unknown == []
    assert rep.glosses == ["fs-NORA", "fs-SCHLAEFT", "REGEN"]
    # letter groups first (sch, not s-c-h); ä, which the alphabet lacks, as a + e
    assert [s[2] for s in rep.steps if s[0] == "spell"] == [["n", "o", "r", "a"], ["sch", "l", "a", "e", "f", "t"]]
    # 3 frames a letter, the last held twice as long; the comma holds 2 frames outside the spans
    assert rep.spans == [(0, 15), (15, 36), (38, 42)] and rep.pauses == [(36, 38)]
    np.testing.assert_array_equal(pose[:15, 0, 0], [14] * 3 + [15] * 3 + [16] * 3 + [10] * 6)
    assert pose.shape[0] == 42 and rep.matched_by == {"fingerspelled": 2, "surface": 1}
    assert spell("x2", speller.letters("dgs")) is None  # no x: it stays unknown
    rep = glosses("Xaver schläft im Regen", speller, fingerspell=False)
    assert rep.unknown == ["xaver", "schläft"] and rep.fingerspelled == []
    rep = glosses("Xaver im Regen", speller)
    assert rep.unknown == ["xaver"] and rep.fingerspelled == []
    # function words are skipped, not spelled
    assert glosses("der Regen", speller).function_words == ["der"]


def test_alphabet_from_synth_letters(tmp_path):
    synth = pytest.importorskip("slp_cli.data.synth")
    from slp_cli.normalize import normalize_samples

    runner = CliRunner()
    corpus = slp_cli.save(normalize_samples(synth.synthesize(langs=("dgs",), preset="tiny")),
                          tmp_path / "c.h5", fps=25, normalized=True, normalization="neck-shoulder/frame")
    r = runner.invoke(app, ["synth", "--alphabet", "--langs", "dgs", "-o", str(tmp_path / "letters.h5")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["dict", "build", str(corpus), "--alphabet", str(tmp_path / "letters.h5"),
                            "-o", str(tmp_path / "d.h5"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["letters"] == {"dgs": 31}
    d = load_dictionary(tmp_path / "d.h5")
    a = d.letters("dgs")["a"]
    assert a.id == f"dgs:{LETTER}:a" and d.lookup("dgs", "a") is None  # letters are not words
    # the raw letters were normalized like the corpus: shoulders' midpoint at the origin, width 1
    np.testing.assert_allclose((a.pose[:, 0] + a.pose[:, 3]) / 2, 0, atol=1e-5)
    _, rep = concat("Zoe", "dgs", d)
    assert rep.fingerspelled == ["zoe"] and rep.glosses == ["fs-ZOE"]
    # an alphabet in another normalization than the corpus: one line
    other = slp_cli.save(slp_cli.load(tmp_path / "letters.h5").samples, tmp_path / "seq.h5", fps=25,
                         normalized=True, normalization="neck-shoulder/sequence")
    with pytest.raises(SlpError, match="seq.h5: the alphabet's normalization .* differs"):
        build_dictionary(corpus, tmp_path / "x.h5", alphabet=other)


def test_every_unknown_word_is_reported(tmp_path, dictionary):
    dict_file = slp_cli.save(dictionary.entries, tmp_path / "dict.h5", fps=25)
    words = [f"wort{chr(97 + i)}" for i in range(12)]
    lines = [f"Regen {w} {w}" for w in words] + ["Süden und Xylophon"]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["generate", "--texts-from", str(tmp_path / "in.txt"), "--lang", "dgs",
                                 "--dictionary", str(dict_file), "-o", str(tmp_path / "g.h5"), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["unknown"] == {**{w: 2 for w in words}, "xylophon": 1}  # all 13, not the 10 most frequent
    assert summary["unknown_words"] == 25 and "and 3 more" in r.stderr
    art = slp_cli.load(tmp_path / "g.h5")
    assert art["line-0001"].report["unknown"] == ["worta", "worta"]
    assert art["line-0013"].report == {"signed": [["süden", "SUED"]], "function_words": ["und"],
                                       "unknown": ["xylophon"], "matched_by": {"prefix": 1, "function word": 1}}
