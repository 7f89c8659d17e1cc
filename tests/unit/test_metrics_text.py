"""Text metrics: hand-computed BLEU / ROUGE-L / WER, and agreement with sacrebleu."""

import itertools
import math
import random

import pytest
import sacrebleu
from sacrebleu.metrics import BLEU

from slp_cli.metrics import bleu, chrf, rouge_l, wer
from slp_cli.metrics.text import edit_distance, lcs_length, normalize

HYPS = ["the cat sat on the mat today", "Am Mittwoch zieht Regen heran",
        "im norden regnet es morgen stark", "es bleibt trocken und warm"]
REFS = ["the cat is on the mat today", "am mittwoch zieht regen auf",
        "morgen regnet es im norden", "es bleibt meist trocken"]


def test_bleu_by_hand():
    # p1 = 5/6, p2 = 3/5, p3 = 1/4, p4 = 0/3, equal lengths (BP = 1).
    out = bleu(["the cat sat on the mat"], ["the cat is on the mat"])
    assert out["bleu1"] == pytest.approx(100 * 5 / 6)
    assert out["bleu2"] == pytest.approx(100 * math.sqrt(5 / 6 * 3 / 5))
    assert out["bleu3"] == pytest.approx(100 * (5 / 6 * 3 / 5 * 1 / 4) ** (1 / 3))
    assert out["bleu4"] == 0.0  # floor smoothing with value 0: a zero precision gives 0
    assert "tok:none" in out["signature"] and "smooth:floor[0.00]" in out["signature"]
    # Brevity penalty: hyp 2 words, ref 4 -> exp(1 - 4/2).
    assert bleu(["a b"], ["a b c d"])["bleu1"] == pytest.approx(100 * math.exp(-1))


def test_bleu_signjoey_equals_sacrebleu_per_order():
    out = bleu(HYPS, REFS)
    hyps = [normalize(h) for h in HYPS]
    refs = [normalize(r) for r in REFS]
    for n in range(1, 5):
        want = BLEU(tokenize="none", smooth_method="floor", smooth_value=0.0, effective_order=True,
                    max_ngram_order=n).corpus_score(hyps, [refs]).score
        assert out[f"bleu{n}"] == pytest.approx(want, abs=1e-9)


def test_bleu_signjoey_lowercases_and_differs_from_effective_order_without_ngrams():
    assert bleu(["The CAT  sat"], ["the cat sat"])["bleu3"] == pytest.approx(100.0)
    # No hypothesis has 4 words: signjoey's BLEU-4 is 0, sacrebleu's effective order gives 100.
    assert bleu(["a b c"], ["a b c"])["bleu4"] == 0.0
    assert BLEU(tokenize="none", smooth_method="floor", smooth_value=0.0,
                effective_order=True).corpus_score(["a b c"], [["a b c"]]).score == pytest.approx(100.0)


def test_bleu_13a_is_sacrebleu_default():
    out = bleu(HYPS, REFS, tokenize="13a")
    assert out["bleu4"] == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score)
    assert "tok:13a" in out["signature"]
    with pytest.raises(ValueError):
        bleu(HYPS, REFS, tokenize="spm")
    with pytest.raises(ValueError):
        bleu(HYPS, REFS[:2])


def test_bleu_chinese_by_character():
    # hyp chars 今天天气好 (5), ref 今天天气很好 (6): p1 = 5/5, BP = exp(1 - 6/5).
    out = bleu(["今天天气好"], ["今天 天气 很好"], lang="csl")
    assert out["bleu1"] == pytest.approx(100 * math.exp(1 - 6 / 5))
    # bigrams 今天 天天 天气 气好: 3 of 4 are in the reference.
    assert out["bleu2"] == pytest.approx(100 * math.exp(1 - 6 / 5) * math.sqrt(1 * 3 / 4))
    assert normalize("今天 天气", "csl") == "今 天 天 气"


def test_chrf_is_sacrebleu():
    assert chrf(HYPS, REFS) == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS]).score)
    assert chrf(["abc"], ["abc"]) == pytest.approx(100.0)


def test_rouge_l_by_hand():
    # LCS "the cat on the mat" = 5 of 6 and 6 words: P = R = 5/6 -> F = 5/6.
    assert rouge_l(["the cat sat on the mat"], ["the cat is on the mat"]) == pytest.approx(100 * 5 / 6)
    # LCS "a c" = 2: P = 2/3, R = 2/4, F = (1 + 1.2^2) P R / (R + 1.2^2 P); averaged with the above.
    p, r = 2 / 3, 2 / 4
    f = (1 + 1.44) * p * r / (r + 1.44 * p)
    got = rouge_l(["the cat sat on the mat", "a b c"], ["the cat is on the mat", "a c d e"])
    assert got == pytest.approx(100 * (5 / 6 + f) / 2)
    assert rouge_l([""], ["a b"]) == 0.0
    assert rouge_l(["x y"], ["a b"]) == 0.0
    # Chinese per character: LCS 今天天气好 = 5, P = 5/5, R = 5/6.
    p, r = 1.0, 5 / 6
    assert rouge_l(["今天天气好"], ["今天天气很好"], lang="csl") == pytest.approx(
        100 * (1 + 1.44) * p * r / (r + 1.44 * p))


def test_lcs_against_brute_force():
    rnd = random.Random(3)
    for _ in range(30):
        a = [rnd.choice("abc") for _ in range(rnd.randint(0, 6))]
        b = [rnd.choice("abc") for _ in range(rnd.randint(0, 6))]
        best = 0
        for k in range(len(a), 0, -1):
            subs = {c for c in itertools.combinations(a, k)}
            if any(_is_subsequence(s, b) for s in subs):
                best = k
                break
        assert lcs_length(a, b) == best


def _is_subsequence(s, b):
    it = iter(b)
    return all(x in it for x in s)


def test_wer_by_hand():
    # "a b c" vs "a x c d": substitute b->x, insert d: 2 edits over 4 reference words.
    assert wer(["a b c"], ["a x c d"]) == pytest.approx(50.0)
    # Corpus level: (2 + 0) / (4 + 2).
    assert wer(["a b c", ["P", "Q"]], ["a x c d", ["P", "Q"]]) == pytest.approx(100 * 2 / 6)
    assert edit_distance(list("kitten"), list("sitting")) == 3
    assert wer(["a"], [""]) != wer(["a"], [""])  # no reference words: NaN
