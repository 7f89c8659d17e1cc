"""Text-to-gloss translation (`slp train text2gloss`, `slp text2gloss`, `slp score-glosses`,
`slp generate --glosser`): learning on the synthetic language, search, ids, the scorer against
hand-computed values and sacrebleu, bad input, a pretrained LM (a tiny mBART)."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import slp_cli
from slp_cli.cli.main import app
from slp_cli.errors import SlpError
from slp_cli.generate import Request, generate
from slp_cli.metrics.text import edit_distance, edit_operations, wer_details
from slp_cli.models import load_model
from slp_cli.models.text2gloss import bleu_from_stats, ngram_stats
from slp_cli.text2gloss import load_glosser, read_sentences, run, score, score_glosses
from slp_cli.training import TrainOptions, train

from tests.conftest import normalized_corpus


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def sentence_pairs(n: int, held_out: set[str], seed: int = 1) -> list[dict]:
    """Text/gloss pairs of the synthetic corpus' German (the demo lexicon, as `slp synth` makes its
    sentences) without poses: function words unsigned, another word order, inflection."""
    from slp_cli.data.synth import PRESETS, Lexicon, make_sentence

    p = PRESETS["demo"]
    lex = Lexicon("dgs", p.glosses, p.senses, 0)
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        text, glosses = make_sentence(lex, rng, 1 + min(int(rng.poisson(p.clauses - 1)), p.max_clauses - 1))
        if text not in held_out:
            out.append({"id": f"pair-{len(out):05d}", "text": text, "glosses": glosses, "lang": "dgs",
                        "split": "train" if len(out) < 0.9 * n else "dev"})
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory, one_torch_thread):
    """The demo corpus' German (poses, for the dictionary), its dictionary, 1,500 more text/gloss
    pairs of the same language (JSON lines) and a tiny glosser trained on them."""
    from slp_cli.dictionary import run as build_dictionary

    d = tmp_path_factory.mktemp("t2g")
    corpus = normalized_corpus(d / "corpus.h5", langs=("dgs",), preset="demo")
    build_dictionary(corpus, d / "dict.h5")
    test = [s for s in slp_cli.load(corpus).samples if s.split == "test"]
    pairs = write_jsonl(d / "pairs.jsonl", sentence_pairs(1500, {s.text for s in test}))
    summary = train("text2gloss", TrainOptions(output=d / "t2g", data=[pairs]), preset="tiny",
                    overrides={"max_steps": 500, "eval_every": 250})
    return {"dir": d, "corpus": corpus, "dict": d / "dict.h5", "pairs": pairs, "test": test, "run": d / "t2g",
            "summary": summary}


def metric(run_dir, name, split="train"):
    with open(run_dir / "metrics.csv") as f:
        return [float(r["value"]) for r in csv.DictReader(f) if r["name"] == name and r["split"] == split]


def test_loss_falls_and_test_wer_far_below_word_by_word_lookup(world):
    loss = metric(world["run"], "loss")
    assert loss[-1] < 0.5 * loss[0]
    dev_bleu = metric(world["run"], "bleu4", "dev")
    assert dev_bleu[-1] > 40 and metric(world["run"], "wer", "dev")[-1] < 35
    test = world["test"]
    hyp = load_glosser(world["run"]).glosses([s.text for s in test], ["dgs"] * len(test))
    refs = [s.glosses for s in test]
    learnt = wer_details(hyp, refs)["wer"]
    # the dictionary baseline's word-by-word look-up (learnt word table, lemmas), same sentences
    lookup = generate([Request(s.id, s.text, "dgs") for s in test], "concat", dictionary=world["dict"])
    by_id = {s.id: s.glosses for s in lookup.samples}
    word_by_word = wer_details([by_id.get(s.id, []) for s in test], refs)["wer"]
    assert word_by_word > 25  # the synthetic language reorders: a look-up keeps the text's order
    assert learnt < 0.5 * word_by_word, (learnt, word_by_word)


def test_beam_one_is_greedy_and_beams_search(world):
    from slp_cli.tensors import pad
    from slp_cli.translate import beam_search

    model = load_glosser(world["run"])
    texts = [s.text for s in world["test"][:12]]
    greedy = model.glosses(texts, ["dgs"] * len(texts), beam=1)
    src = [np.array(model.source(t, "dgs")) for t in texts]
    ids, valid = pad(src, value=model.pad_id, dtype=torch.long)
    memory = model.encode(ids, valid)
    prefix = torch.tensor([model.prefix("dgs")] * len(texts))
    with torch.no_grad():
        # beam 1 without length normalisation stops exactly where greedy search does
        beam1 = beam_search(model.decoding_step(memory, valid), prefix, model.eos_id, model.max_new_tokens, 1,
                            length_penalty=0.0)
    assert [model.decode_ids(x) for x in beam1] == greedy
    beam4 = model.glosses(texts, ["dgs"] * len(texts), beam=4)
    assert len(beam4) == len(texts) and all(isinstance(g, list) and g for g in beam4)
    refs = [s.glosses for s in world["test"][:12]]
    assert wer_details(beam4, refs)["wer"] <= wer_details(greedy, refs)["wer"] + 15


def test_ids_kept_from_every_input_and_written_as_json_lines(world, tmp_path):
    test = world["test"]
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": s.id, "text": s.text, "lang": "dgs", "split": "test"}
                                              for s in test[::-1]] + [{"id": "empty", "text": " ", "lang": "dgs"}])
    out = run(world["run"], tmp_path / "out.jsonl", texts_from=src, device="cpu")
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [s.id for s in test[::-1]]
    assert set(rows[0]) == {"id", "text", "lang", "glosses"} and rows[0]["lang"] == "dgs"
    assert out["skipped"] == [{"input": "empty", "reason": "record has no text"}]
    # an artifact's ids and split filter; a text file's line ids
    from_h5 = run(world["run"], texts_from=world["corpus"], split="test", device="cpu")["records"]
    assert [r["id"] for r in from_h5] == [s.id for s in test]
    assert [r["glosses"] for r in from_h5] == [r["glosses"] for r in rows[::-1]]
    (tmp_path / "in.txt").write_text(f"{test[0].text}\n\n{test[1].text}\n", encoding="utf-8")
    sents, _ = read_sentences(texts_from=tmp_path / "in.txt", lang="dgs")
    assert [s.id for s in sents] == ["line-0001", "line-0003"]
    # scoring the written file against the corpus by id
    s = score(tmp_path / "out.jsonl", world["corpus"])
    assert s["sentences"] == len(test)
    assert s["wer"] == pytest.approx(wer_details([r["glosses"] for r in rows], [x.glosses for x in test[::-1]])["wer"])


def test_cli_prints_writes_and_scores(world, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["text2gloss", "--model", str(world["run"]), world["test"][0].text, "--lang", "dgs"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().split() == load_glosser(world["run"]).glosses([world["test"][0].text], ["dgs"])[0]
    out = tmp_path / "o.jsonl"
    res = runner.invoke(app, ["text2gloss", "--model", str(world["run"]), "--texts-from", str(world["corpus"]),
                              "--split", "test", "-o", str(out), "--beam", "2"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["score-glosses", "--hyp", str(out), "--ref", str(world["corpus"]), "--json", "-"])
    assert res.exit_code == 0, res.output
    scores = json.loads(res.stdout)
    res = runner.invoke(app, ["score-glosses", "--hyp", str(out), "--ref", str(world["corpus"]), "--json",
                              str(tmp_path / "s.json")])
    assert res.exit_code == 0 and json.loads((tmp_path / "s.json").read_text()) == scores
    assert {"wer", "substitutions", "deletions", "insertions", "bleu4", "rouge_l"} <= set(scores)
    # the dictionary baseline with the glosser: the glosses looked up, unknown ones reported
    gen = tmp_path / "g.h5"
    res = runner.invoke(app, ["generate", "--dictionary", str(world["dict"]), "--glosser", str(world["run"]),
                              "--texts-from", str(world["corpus"]), "--split", "test", "-o", str(gen)])
    assert res.exit_code == 0, res.output
    written = {r["id"]: r["glosses"] for r in map(json.loads, out.read_text().splitlines())}
    beam1 = {r["id"]: r["glosses"] for r in run(world["run"], texts_from=world["corpus"], split="test",
                                                   device="cpu")["records"]}
    for s in slp_cli.load(gen).samples:
        assert s.report["glosser_glosses"] == beam1[s.id]
        assert s.glosses == [g for g in beam1[s.id] if g not in s.report.get("unknown", [])]
    assert written.keys() == beam1.keys()


def test_the_dictionary_baseline_reports_glosses_it_lacks(world):
    from slp_cli.dictionary import load_dictionary
    from slp_cli.generate import concat

    d = load_dictionary(world["dict"])
    pose, report = concat("heute regnet es", "dgs", d, glosses=["HEUTE", "NIE-GESEHEN", "REGEN"])
    assert report.glosses == ["HEUTE", "REGEN"] and report.unknown == ["NIE-GESEHEN"] and len(report.spans) == 2
    with pytest.raises(SlpError, match="no gloss"):
        concat("heute", "dgs", d, glosses=["NIE-GESEHEN"])


# --- the scorer ----------------------------------------------------------------------------------

def test_wer_with_its_operations_equals_hand_computed():
    # ref A X C D, hyp A B C: B for X (substitution), D missing (deletion)
    assert edit_operations(["A", "B", "C"], ["A", "X", "C", "D"]) == (1, 1, 0)
    # ref A B, hyp A A B C: two insertions
    assert edit_operations(["A", "A", "B", "C"], ["A", "B"]) == (0, 0, 2)
    d = wer_details([["A", "B", "C"], ["A", "A", "B", "C"]], [["A", "X", "C", "D"], ["A", "B"]])
    assert (d["substitutions"], d["deletions"], d["insertions"], d["ref_tokens"]) == (1, 1, 2, 6)
    assert d["wer"] == pytest.approx(100 * 4 / 6) and d["del_rate"] == pytest.approx(100 / 6)
    rng = np.random.default_rng(0)
    for _ in range(50):  # the operations always add up to the edit distance
        a, b = (list(rng.integers(0, 4, rng.integers(0, 7))) for _ in range(2))
        assert sum(edit_operations(a, b)) == edit_distance(a, b)


def test_bleu_equals_sacrebleu_and_the_dev_statistics_agree():
    from sacrebleu.metrics import BLEU

    hyps = [["JETZT", "WETTER", "MORGEN", "DONNERSTAG"], ["REGEN", "KOENNEN", "GEWITTER"], ["NORD", "WIND"]]
    refs = [["JETZT", "WETTER", "MORGEN", "DONNERSTAG", "ZWOELF"], ["REGEN", "GEWITTER", "KOENNEN"],
            ["NORD", "WIND", "MAESSIG"]]
    s = score_glosses(hyps, refs)
    ref = BLEU(tokenize="none", smooth_method="floor", smooth_value=0.0, effective_order=True, lowercase=True)
    assert s["bleu4"] == pytest.approx(ref.corpus_score([" ".join(h) for h in hyps],
                                                        [[" ".join(r) for r in refs]]).score)
    assert s["bleu1"] == pytest.approx(100 * 9 / 9 * np.exp(1 - 11 / 9))  # every gloss matches; 9 of 11 long
    stats = np.sum([ngram_stats(h, r) for h, r in zip(hyps, refs)], 0)
    for n in range(1, 5):
        assert bleu_from_stats(list(stats), n) == pytest.approx(s[f"bleu{n}"])
    # ROUGE-L by hand: LCS 4/4 of 5, 2 of 3/3, 2/2 of 3, F with beta 1.2
    def f(p, r):
        return (1 + 1.44) * p * r / (r + 1.44 * p)
    assert s["rouge_l"] == pytest.approx(100 * (f(1, 4 / 5) + f(2 / 3, 2 / 3) + f(1, 2 / 3)) / 3)


# --- bad input -------------------------------------------------------------------------------------

def one_line(e: Exception) -> str:
    line = str(e)
    assert "\n" not in line and "Traceback" not in line
    return line


def test_bad_inputs_are_one_line(world, tmp_path):
    no_glosses = write_jsonl(tmp_path / "ng.jsonl", [{"id": "a", "text": "hallo", "glosses": []}])
    with pytest.raises(SlpError) as e:
        train("text2gloss", TrainOptions(output=tmp_path / "x", data=[no_glosses]), preset="tiny")
    assert "glosses" in one_line(e.value)
    corpus = tmp_path / "c.h5"
    plain = [slp_cli.Sample(id=f"s{i}", pose=np.zeros((3, 178, 3), np.float32), text="hallo welt", lang="dgs")
             for i in range(20)]
    slp_cli.save(plain, corpus, fps=25)
    with pytest.raises(SlpError) as e:
        train("text2gloss", TrainOptions(output=tmp_path / "y", data=[corpus]), preset="tiny")
    assert "no glosses" in one_line(e.value)
    with pytest.raises(SlpError) as e:  # a pose model refuses annotations without poses
        train("vae", TrainOptions(output=tmp_path / "z", data=[world["pairs"]]), preset="tiny")
    assert "poses" in one_line(e.value)
    model = load_glosser(world["run"])
    for text, lang, pattern in [("", "dgs", "empty text"), ("   ", "dgs", "empty text"),
                                ("heute regnet es", "csl", "trained on dgs"), ("heute", "xx", "trained on dgs")]:
        with pytest.raises(SlpError, match=pattern) as e:
            model.glosses([text], [lang])
        one_line(e.value)
    res = CliRunner().invoke(app, ["text2gloss", "--model", str(world["run"]), "heute", "--lang", "asl"])
    assert res.exit_code != 0 and isinstance(res.exception, SlpError) and "trained on dgs" in one_line(res.exception)
    with pytest.raises(SlpError, match="no reference") as e:
        score(write_jsonl(tmp_path / "h.jsonl", [{"id": "nope", "glosses": ["A"]}]), world["corpus"])
    one_line(e.value)
    with pytest.raises(SlpError, match="not valid JSON"):
        (tmp_path / "bad.jsonl").write_text("{oops\n")
        read_sentences(texts_from=tmp_path / "bad.jsonl", lang="dgs")


# --- multilingual, and a pretrained LM -----------------------------------------------------------

def test_multilingual_language_token_and_gloss_mask(tmp_path, one_torch_thread):
    from slp_cli.data.synth import synthesize

    samples = synthesize(langs=["dgs", "asl"], preset="tiny")
    data = write_jsonl(tmp_path / "two.jsonl", [{"id": s.id, "text": s.text, "glosses": s.glosses, "lang": s.lang,
                                                 "split": s.split} for s in samples])
    train("text2gloss", TrainOptions(output=tmp_path / "m", data=[data]), preset="tiny",
          overrides={"max_steps": 60, "eval_every": 60})
    model = load_glosser(tmp_path / "m")
    assert model.langs == ["asl", "dgs"]
    assert model.source("heute", "dgs")[0] == model.tokenizer.lang_id("dgs")
    seen = {lang: {g for s in samples if s.lang == lang and s.split == "train" for g in s.glosses}
            for lang in ("asl", "dgs")}
    for s in samples[:40]:
        (g,) = model.glosses([s.text], [s.lang], beam=2)
        assert set(g) <= seen[s.lang]


def test_pretrained_lm_trains_and_round_trips(world, tmp_path, one_torch_thread):
    from tests.unit.test_slt import tiny_mbart

    records = [json.loads(x) for x in world["pairs"].read_text().splitlines()][:200]
    for i, r in enumerate(records):
        r["split"] = "dev" if i % 10 == 0 else "train"
    data = write_jsonl(tmp_path / "p.jsonl", records)
    lm_dir = tmp_path / "mbart"
    tiny_mbart(lm_dir, [r["text"] for r in records] + [" ".join(r["glosses"]) for r in records])
    train("text2gloss", TrainOptions(output=tmp_path / "lm", data=[data]), preset="tiny",
          overrides={"lm": str(lm_dir), "max_steps": 4, "eval_every": 4, "batch_size": 8})
    assert len(metric(tmp_path / "lm", "loss")) >= 0 and metric(tmp_path / "lm", "bleu4", "dev")
    shutil.rmtree(lm_dir)  # the checkpoint holds the LM's config, weights and tokenizer
    a, b = load_model(tmp_path / "lm", expect="text2gloss"), load_glosser(tmp_path / "lm")
    for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    texts = [r["text"] for r in records[:5]]
    out = b.glosses(texts, ["dgs"] * 5, beam=2)
    assert out == a.glosses(texts, ["dgs"] * 5, beam=2) and all(isinstance(g, list) for g in out)
