"""The embedded synthetic corpus (`slp synth`, docs/design.md, section 6)."""

import json
from collections import Counter

import numpy as np
import pytest

import slp_cli
from slp_cli import SlpError, skeleton
from slp_cli.data import signer as sg
from slp_cli.data import synth, vocab

RH, LH, FACE = (skeleton.ARTICULATORS[a] for a in ("right_hand", "left_hand", "face"))


@pytest.fixture(scope="module")
def tiny():
    return synth.synthesize(preset="tiny")


@pytest.fixture(scope="module")
def demo_dgs():
    """Demo-size German corpus without dropouts (for trajectory comparisons)."""
    return synth.synthesize(langs=("dgs",), preset="demo", dropout=False)


def normalized(pose):
    """Neck at the origin, shoulder width 1 (docs/design.md, section 5), per frame."""
    neck = (pose[:, skeleton.R_SHOULDER] + pose[:, skeleton.L_SHOULDER]) / 2
    width = np.linalg.norm(pose[:, skeleton.R_SHOULDER] - pose[:, skeleton.L_SHOULDER], axis=-1)
    return (pose - neck[:, None]) / width[:, None, None]


def sentences(lang, preset, n=None, seed=0):
    """Texts and glosses as the corpus makes them (without poses)."""
    p = synth.PRESETS[preset]
    lex = synth.Lexicon(lang, p.glosses, p.senses, seed)
    out = []
    for i in range(n or p.sentences):
        rng = np.random.default_rng([seed, 99, i])
        k = 1 + min(int(rng.poisson(p.clauses - 1)), p.max_clauses - 1)
        out.append(synth.make_sentence(lex, rng, k))
    return lex, out


def dtw(a, b):
    """Plain DTW (mean frame distance along the best path) between two (T, J, 3) sequences."""
    cost = np.linalg.norm(a[:, None] - b[None], axis=-1).mean(-1)
    acc = np.full((len(a) + 1, len(b) + 1), np.inf)
    steps = np.zeros_like(acc)
    acc[0, 0] = 0
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            prev = min((acc[i - 1, j - 1], steps[i - 1, j - 1]), (acc[i - 1, j], steps[i - 1, j]),
                       (acc[i, j - 1], steps[i, j - 1]))
            acc[i, j], steps[i, j] = prev[0] + cost[i - 1, j - 1], prev[1] + 1
    return acc[-1, -1] / steps[-1, -1]


# --- determinism and shapes -----------------------------------------------------------------

def test_same_seed_same_poses_bit_for_bit_other_seed_differs():
    a = synth.synthesize(langs=("dgs", "csl"), preset="tiny", sentences=5, seed=3)
    b = synth.synthesize(langs=("dgs", "csl"), preset="tiny", sentences=5, seed=3)
    c = synth.synthesize(langs=("dgs", "csl"), preset="tiny", sentences=5, seed=4)
    assert [s.id for s in a] == [s.id for s in b]
    for x, y in zip(a, b):
        assert x.pose.tobytes() == y.pose.tobytes() and x.confidence.tobytes() == y.confidence.tobytes()
        assert (x.text, x.glosses, x.signer) == (y.text, y.glosses, y.signer)
    assert any(x.pose.shape != z.pose.shape or not np.array_equal(x.pose, z.pose, equal_nan=True)
               for x, z in zip(a, c))


def test_layout_values_and_image_coordinates(tiny):
    assert {s.lang for s in tiny} == set(synth.LANGS)
    assert len({s.id for s in tiny}) == len(tiny) == 90
    for lang in synth.LANGS:
        assert Counter(s.split for s in tiny if s.lang == lang) == {"train": 26, "dev": 2, "test": 2}
    widths = []
    for s in tiny:
        p = s.pose
        assert p.dtype == np.float32 and p.shape[1:] == (178, 3) and 20 <= len(p) <= 40
        assert not np.isinf(p).any()
        missing = np.isnan(p).any(-1)
        # only whole hands go missing, and exactly where confidence is 0
        assert not missing[:, :8].any() and not missing[:, FACE].any()
        assert np.array_equal(missing, s.confidence == 0)
        body = p[:, :8]
        assert (body[..., :2] > 0).all() and (body[..., :2] < 512).all()  # inside a 512x512 frame
        # signer faces the camera: their right shoulder is on the image left; y points down
        assert (p[:, skeleton.R_SHOULDER, 0] < p[:, skeleton.L_SHOULDER, 0]).all()
        assert (p[:, skeleton.R_HIP, 1] > p[:, skeleton.R_SHOULDER, 1] + 50).all()
        assert (np.nanmax(p[:, FACE, 1], axis=1) < p[:, skeleton.R_SHOULDER, 1]).all()
        widths.append(np.linalg.norm(p[0, 0] - p[0, 3]))
    # not normalized: pixel units that differ between signers
    assert 90 < min(widths) and max(widths) < 170 and max(widths) - min(widths) > 15


def test_spans_cover_glosses_inside_the_sequence(tiny):
    for s in tiny:
        spans = s.gloss_spans
        assert spans.shape == (len(s.glosses), 2) and len(s.glosses) >= 1
        assert (spans[:, 0] < spans[:, 1]).all() and (spans[1:, 0] >= spans[:-1, 1]).all()
        assert spans[0, 0] > 0 and spans[-1, 1] < s.num_frames  # rest and transitions around the signs


def test_starts_and_ends_in_the_rest_pose(tiny):
    for s in tiny[:20]:
        for t in (0, -1):
            f = s.pose[t]
            for sh, el, wr in ((0, 1, 2), (3, 4, 5)):
                assert f[sh, 1] < f[el, 1] < f[wr, 1]  # arms hang down
            assert f[skeleton.R_WRIST, 1] > f[skeleton.R_HIP, 1] - 60


def test_dropouts_are_short_and_optional():
    with_drop = synth.synthesize(langs=("asl",), preset="tiny", sentences=30, seed=1)
    runs = []
    for s in with_drop:
        for sl in (RH, LH):
            miss = np.isnan(s.pose[:, sl]).all((1, 2)).astype(int)
            edges = np.flatnonzero(np.diff(np.concatenate([[0], miss, [0]])))
            runs += list(edges[1::2] - edges[0::2])
    assert runs and max(runs) <= 12  # 2-6 frames each (two may touch)
    none = synth.synthesize(langs=("asl",), preset="tiny", sentences=30, seed=1, dropout=False)
    assert not any(np.isnan(s.pose).any() for s in none)


def test_heldout_signers_only_in_test():
    samples = synth.synthesize(langs=("csl",), preset="tiny", sentences=60, heldout_signers=2)
    held = {"csl08", "csl09"}
    assert {s.signer for s in samples if s.split == "test"} <= held
    assert not held & {s.signer for s in samples if s.split != "test"}
    with pytest.raises(SlpError, match="heldout"):
        synth.synthesize(langs=("csl",), preset="tiny", heldout_signers=9)


def test_unknown_language_and_preset_are_refused():
    with pytest.raises(SlpError, match="known: dgs, csl, asl"):
        synth.synthesize(langs=("dgs", "bsl"), preset="tiny")
    with pytest.raises(SlpError, match="known: tiny, demo, benchmark"):
        synth.synthesize(preset="huge")


def test_benchmark_scale():
    assert synth.PHOENIX_SPLITS == {"train": 7096, "dev": 519, "test": 642}
    for lang in synth.LANGS:
        lex = synth.Lexicon(lang, 1085, True, 0)
        assert len(lex.glosses) == len(set(lex.glosses)) == 1085
    # 360 * 519 / 8257 = 22.6 and 360 * 642 / 8257 = 28.0
    assert synth.split_sizes(360) == {"train": 309, "dev": 23, "test": 28}


# --- text ------------------------------------------------------------------------------------

def _keys(text, sp):
    import jieba
    import simplemma

    jieba.setLogLevel(60)
    tokens = jieba.lcut(text) if sp == "zh" else text.split()
    content = [t for t in tokens if t not in vocab.FUNCTION_WORDS[sp]]
    function = [t for t in tokens if t in vocab.FUNCTION_WORDS[sp]]
    lem = (lambda t: t) if sp == "zh" else (lambda t: vocab.fold(simplemma.lemmatize(t, lang=sp)))
    return [lem(t) for t in content], [lem(t) for t in function]


@pytest.mark.parametrize("lang", synth.LANGS)
def test_content_words_lemmatize_to_the_gloss_keys(lang):
    """The contract with the dictionary: lemmas of the content words == lemma keys of the glosses,
    and no function word lemmatizes to a gloss key; on demo sentences and on benchmark ones
    (whose vocabulary includes the long tail)."""
    sp = synth.SPOKEN[lang]
    for preset, n in (("demo", None), ("benchmark", 1500)):
        lex, sents = sentences(lang, preset, n)
        all_keys = {vocab.lemma_key(g) for g in lex.glosses}
        for text, glosses in sents:
            content, function = _keys(text, sp)
            assert Counter(content) == Counter(vocab.lemma_key(g) for g in glosses), (text, glosses)
            assert not set(function) & all_keys, text


@pytest.mark.parametrize("sp", ["de", "en"])
def test_every_listed_form_lemmatizes_to_its_gloss(sp):
    import simplemma

    table = vocab.TABLES[sp]
    pairs = []
    for gloss, phrase, *_ in table["time"] + table["region"] + table["place"]:
        pairs.append((gloss, phrase.split()[-1]))
    for cls in ("weather", "temp", "padj", "neg", "wh"):
        pairs += [(e[0], e[1]) for e in table[cls]]
    for gloss, forms in table["intensity"]:
        pairs += [(gloss, f) for f in forms.values()]
    for e in table["person"] + table["obj"]:
        pairs += [(e[0], f) for f in e[1:3] if f]
    for e in table["vtr"] + table["vintr"]:
        pairs += [(e[0], f) for f in e[1]]
    tail = synth.Lexicon("dgs" if sp == "de" else "asl", 1085, True, 0).tail  # the benchmark's pseudo-words
    pairs += [(vocab.fold(w).upper(), w) for w in tail]
    bad = [(g, w) for g, w in pairs if vocab.fold(simplemma.lemmatize(w, lang=sp)) != vocab.lemma_key(g)]
    assert not bad and len(tail) > 900


def test_chinese_frames_keep_every_word_one_token():
    """Every Chinese clause frame with every word of its slots segments into exactly the intended
    tokens (jieba would merge e.g. 不买 or 喝咖啡, which the frames avoid)."""
    import jieba

    jieba.setLogLevel(60)
    z = vocab.ZH
    times = [t[1] for t in z["time"][:4]] + [""]
    persons = [p[1] for p in z["person"]]
    cases = []
    for t in times:
        for p in persons:
            for v, _, cats in z["vtr"]:
                cases += [(f"{t}{p}{v}了{o[1]}", [t, p, v, o[1]]) for o in z["obj"] if o[4] in cats]
            for a in z["padj"]:
                cases.append((f"{t}{p}{a[2]}{a[1]}", [t, p, a[1]]))
                if a[3]:
                    cases.append((f"{t}{p}不{a[1]}", [t, p, "不", a[1]]))
            for pl in z["place"]:
                cases += [(f"{t}{p}不在{pl[1]}{v[1]}", [t, p, "不", pl[1], v[1]]) for v in z["vintr"]]
        for r in [x[1] for x in z["region"]] + [""]:
            cases += [(f"{t}{r}会{w[1]}", [t, r, w[1]]) for w in z["weather"]]
            cases += [(f"{t}{r}比较{a[1]}", [t, r, a[1]]) for a in z["temp"]]
    bad = [text for text, words in cases
           if sorted(w for w in jieba.lcut(text) if w not in vocab.FUNCTION_WORDS["zh"]) != sorted(filter(None, words))]
    assert not bad and len(cases) > 10000


def test_agrees_with_the_dictionary_lemma_keys():
    lemmas = pytest.importorskip("slp_cli.text.lemmas")
    for lang in synth.LANGS:
        _, sents = sentences(lang, "demo", 200)
        for text, glosses in sents:
            words = {lemmas.word_key(w, lang) for w in lemmas.tokenize(text, lang)}
            assert {lemmas.lemma_key(g) for g in glosses} <= words, (text, glosses)


def test_text_is_not_a_copy_of_the_glosses():
    _, sents = sentences("dgs", "demo")
    n = len(sents)
    function_words = sum(any(w in vocab.FUNCTION_WORDS["de"] for w in t.split()) for t, _ in sents)
    inflected = sum(any(w.upper() not in g and vocab.fold(w) not in {vocab.lemma_key(x) for x in g}
                        for w in t.split() if w not in vocab.FUNCTION_WORDS["de"]) for t, g in sents)
    # DGS order: verb-final (the German verb is second)
    reordered = 0
    for text, glosses in sents:
        content, _ = _keys(text, "de")
        if content != [vocab.lemma_key(g) for g in glosses]:
            reordered += 1
    assert function_words > 0.8 * n and inflected > 0.3 * n and reordered > 0.4 * n
    # Chinese: no spaces
    _, zh = sentences("csl", "tiny")
    assert all(" " not in t for t, _ in zh)


def test_sense_markers_only_where_a_word_has_several_signs():
    for lang in synth.LANGS:
        lex, sents = sentences(lang, "demo")
        by_key = Counter(vocab.lemma_key(g) for g in set(lex.glosses))
        marked = [g for g in lex.glosses if g[-1].isdigit()]
        assert marked and all(by_key[vocab.lemma_key(g)] >= 2 for g in marked)
    _, sents = sentences("dgs", "demo", 3000)
    bank = [(t, g) for t, g in sents if "bank" in t.split()]
    money = [g for t, g in bank if "geld" in t]
    bench = [g for t, g in bank if "wald" in t]
    assert money and bench and all("BANK-1" in g for g in money) and all("BANK-2" in g for g in bench)


def test_gloss_frequencies_are_zipfian():
    lex, sents = sentences("dgs", "benchmark", 2000)
    counts = Counter(g for _, gs in sents for g in gs)
    freq = sorted(counts.values(), reverse=True)
    assert freq[0] > 20 * np.median(freq)
    assert len(counts) > 500  # the long tail shows up
    assert sum(c <= 3 for c in freq) > 0.3 * len(freq)  # many glosses are rare


# --- signs -----------------------------------------------------------------------------------

def test_many_signs_are_minimal_pairs():
    signs = sg.vocabulary_signs([f"G{i}" for i in range(300)], seed=0, salt="x")
    keys = [s.key() for s in signs.values()]
    assert len(set(keys)) == 300
    one_apart = sum(any(sum(a != b for a, b in zip(k, o)) == 1 for o in keys if o is not k) for k in keys)
    assert one_apart > 0.4 * len(keys)
    # a prefix of a gloss list gets the same signs
    assert sg.vocabulary_signs(["G0", "G1", "G2"], 0, "x") == {g: signs[g] for g in ("G0", "G1", "G2")}


def test_hands_carry_most_of_the_information(demo_dgs):
    """Per-gloss mean poses (shoulder-normalized) differ far more in the hands than in the face."""
    per_gloss: dict[str, list] = {}
    for s in demo_dgs:
        n = normalized(s.pose)
        for g, (a, b) in zip(s.glosses, s.gloss_spans):
            per_gloss.setdefault(g, []).append(n[a:b].mean(0))
    means = np.stack([np.mean(v, axis=0) for v in per_gloss.values()])  # (G, 178, 3)
    var = means.var(axis=0).sum(-1)  # per joint, across glosses
    hands = np.concatenate([var[RH], var[LH]]).mean()
    assert len(per_gloss) > 80 and hands > 20 * var[FACE].mean()


def test_same_gloss_same_signer_gives_similar_hand_paths(demo_dgs):
    dom = {}
    occ: dict[tuple, list] = {}
    for s in demo_dgs:
        n = normalized(s.pose)
        sl = LH if s.signer in ("dgs04", "dgs08") else RH  # every fourth signer is left-handed
        for g, (a, b) in zip(s.glosses, s.gloss_spans):
            occ.setdefault((s.signer, g), []).append(n[a:b, sl])
            dom[s.signer] = sl
    same, diff = [], []
    pairs = [(k, v) for k, v in occ.items() if len(v) >= 2][:40]
    for (signer, g), v in pairs:
        same.append(dtw(v[0], v[1]))
        other = next(w for (s2, g2), w in occ.items() if s2 == signer and g2 != g)
        diff.append(dtw(v[0], other[0]))
    assert len(pairs) >= 20
    assert np.mean(same) < 0.5 * np.mean(diff)


def test_left_handed_signers_sign_with_the_left_hand(demo_dgs):
    def travel(s, wrist):
        return np.linalg.norm(np.diff(s.pose[:, wrist], axis=0), axis=-1).sum()

    lefty = [s for s in demo_dgs if s.signer in ("dgs04", "dgs08")]
    righty = [s for s in demo_dgs if s.signer in ("dgs01", "dgs02")]
    assert lefty and righty
    assert np.mean([travel(s, skeleton.L_WRIST) > travel(s, skeleton.R_WRIST) for s in lefty]) > 0.7
    assert np.mean([travel(s, skeleton.R_WRIST) > travel(s, skeleton.L_WRIST) for s in righty]) > 0.7


def test_face_template_follows_mediapipe_contours():
    contours = [sg.FACE_OVAL + sg.FACE_OVAL[:1], sg.LIPS_OUTER_LOWER, sg.LIPS_OUTER_UPPER, sg.LIPS_INNER_LOWER,
                sg.LIPS_INNER_UPPER, sg.RIGHT_EYE_LOWER, sg.RIGHT_EYE_UPPER, sg.LEFT_EYE_LOWER, sg.LEFT_EYE_UPPER,
                sg.RIGHT_BROW_LOWER, sg.RIGHT_BROW_UPPER, sg.LEFT_BROW_LOWER, sg.LEFT_BROW_UPPER]
    assert {i for c in contours for i in c} == set(skeleton.FACE_MESH_INDICES)
    neighbours = {frozenset(p) for c in contours for p in zip(c, c[1:])}
    idx = skeleton.FACE_MESH_INDICES
    # skeleton.FACE_BONES (MediaPipe's contours) join neighbours of these polylines, or the two
    # rows of one eyebrow
    brows = [(set(sg.RIGHT_BROW_LOWER), set(sg.RIGHT_BROW_UPPER)), (set(sg.LEFT_BROW_LOWER), set(sg.LEFT_BROW_UPPER))]
    for a, b in skeleton.FACE_BONES:
        pair = {idx[a], idx[b]}
        assert frozenset(pair) in neighbours or any(pair & lo and pair & up for lo, up in brows), pair
    t = sg.FACE_TEMPLATE
    at = {m: t[k] for k, m in enumerate(idx)}
    assert at[10][1] < at[159][1] < at[13][1] < at[152][1]  # forehead, eye, mouth, chin (y down)
    assert at[33][0] < at[133][0] < 0 < at[362][0] < at[263][0]  # subject's right eye on the image left
    bone = [np.linalg.norm(t[a] - t[b]) for a, b in skeleton.FACE_BONES]
    assert max(bone) < 0.1 < np.ptp(t[:, 1])


# --- annotations -----------------------------------------------------------------------------

def test_annotations_mode(tmp_path):
    labels = [None] * 3 + ["REGEN"] * 6 + [None] * 2 + ["ZORP"] * 5 + [None] * 4
    records = [
        {"id": "a", "text": "regen", "glosses": "REGEN ZORP", "lang": "dgs", "split": "test",
         "num_frames": 20, "labels": labels},
        {"id": "b", "glosses": ["ZORP", "REGEN", "WIND"], "lang": "xsl", "num_frames": 57},
        {"id": "c", "glosses": ["ZORP"], "lang": "dgs"},
    ]
    path = tmp_path / "ann.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    out = synth.synthesize_annotations(synth.read_annotations(path), seed=0, dropout=False)
    a, b, c = out
    assert [s.id for s in out] == ["a", "b", "c"]
    assert a.num_frames == 20 and a.gloss_spans.tolist() == [[3, 9], [11, 16]] and a.split == "test"
    assert a.glosses == ["REGEN", "ZORP"] and a.text == "regen"
    assert b.num_frames == 57 and b.lang == "xsl" and b.split == "train" and len(b.gloss_spans) == 3
    assert b.gloss_spans[-1, 1] <= 57 and c.num_frames > 5
    # a gloss unknown to the vocabulary still gets one fixed sign: same handshape wherever it occurs
    za, zc = normalized(a.pose)[11:16, RH], normalized(c.pose)[slice(*c.gloss_spans[0]), RH]
    za_fingers, zc_fingers = za - za[:, :1], zc - zc[:, :1]
    other = normalized(a.pose)[3:9, RH]
    assert dtw(za_fingers, zc_fingers) < 0.5 * dtw(za_fingers, other - other[:, :1])
    again = synth.synthesize_annotations(synth.read_annotations(path), seed=0, dropout=False)
    assert all(np.array_equal(x.pose, y.pose) for x, y in zip(out, again))


@pytest.mark.parametrize("line, message", [
    ('{"id": "x", "glosses": "A B"', "not valid JSON"),
    ('{"glosses": "A B"}', "missing or empty 'id'"),
    ('{"id": "x"}', "has no 'glosses'"),
    ('{"id": "x", "glosses": "A B", "num_frames": 3, "labels": ["A", null]}', "2 labels for num_frames=3"),
    ('{"id": "x", "glosses": "A B", "labels": ["B", "A"]}', "make them agree"),
    ('[1, 2]', "expected a JSON object"),
])
def test_bad_annotation_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "ok", "glosses": "A"}\n' + line + "\n")
    with pytest.raises(SlpError) as e:
        synth.read_annotations(path)
    assert f"{path}:2:" in str(e.value) and message in str(e.value)


# --- the stage and the CLI --------------------------------------------------------------------

def test_cli_writes_a_loadable_artifact(tmp_path):
    from typer.testing import CliRunner

    from slp_cli.cli.main import app

    out = tmp_path / "corpus.h5"
    res = CliRunner().invoke(app, ["synth", "--preset", "tiny", "--langs", "dgs,asl", "--sentences", "6",
                                   "--seed", "2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    art = slp_cli.load(out)
    assert len(art) == 12 and {s.lang for s in art} == {"dgs", "asl"} and art.fps == 25
    assert not art.normalized and art.provenance["stage"] == "synth" and art.provenance["args"]["seed"] == 2
    ref = synth.synthesize(langs=("dgs", "asl"), preset="tiny", sentences=6, seed=2)
    assert all(np.array_equal(a.pose, r.pose, equal_nan=True) and a.gloss_spans.tolist() == r.gloss_spans.tolist()
               for a, r in zip(art, ref))
    bad = CliRunner().invoke(app, ["synth", "--langs", "dgs,foo", "-o", str(tmp_path / "x.h5")])
    assert bad.exit_code != 0 and isinstance(bad.exception, SlpError) and "foo" in str(bad.exception)
    assert not (tmp_path / "x.h5").exists()


def test_run_with_annotations(tmp_path):
    ann = tmp_path / "a.jsonl"
    ann.write_text(json.dumps({"id": "r1", "text": "hallo", "glosses": "HALLO", "lang": "dgs"}) + "\n")
    path = synth.run(tmp_path / "a.h5", annotations=ann)
    art = slp_cli.load(path)
    assert art.ids == ["r1"] and art[0].glosses == ["HALLO"] and art.provenance["inputs"] == [str(ann)]


def test_manual_alphabet(tmp_path):
    letters = synth.synthesize_alphabet(("dgs", "csl", "asl"))
    by_lang = Counter(s.lang for s in letters)
    assert by_lang == {"dgs": 31, "asl": 26}  # csl has none: Chinese is not spelled with Latin letters
    dgs = {s.text: s for s in letters if s.lang == "dgs"}
    assert {"a", "z", "ä", "ß", "sch"} <= set(dgs) and dgs["sch"].glosses == ["SCH"]
    assert all(s.signer == f"{s.lang}01" and len(s.gloss_spans) == 1 for s in letters)
    # every letter is its own sign: no two share handshape, orientation and movement
    signs = {synth.letter_sign(*v[1:]) for v in synth.ALPHABETS["dgs"].values()}
    assert len(signs) == 31
    # the hand makes the letter's shape: the fist of S is closed, the hand of B open
    def spread(s):
        a, b = s.gloss_spans[0]
        hand = normalized(s.pose[a:b])[:, RH]
        return np.linalg.norm(hand[:, [8, 12, 16, 20]] - hand[:, :1], axis=-1).mean()
    assert spread(dgs["s"]) < 0.7 * spread(dgs["b"])
    # the same seed gives the same letters; the corpus itself is untouched by the alphabet
    again = synth.synthesize_alphabet(("dgs",))
    np.testing.assert_array_equal(again[0].pose, letters[0].pose)
    out = synth.run(tmp_path / "letters.h5", langs=("dgs",), alphabet=True)
    assert slp_cli.load(out).ids[:2] == ["dgs-letter-a", "dgs-letter-b"]
    with pytest.raises(SlpError, match="no manual alphabet for csl"):
        synth.run(tmp_path / "x.h5", langs=("csl",), alphabet=True)
