import subprocess
import sys

import pytest

from slp_cli import SlpError
from slp_cli.text.lemmas import (fold, is_function_word, is_pause, lemma_key, lemmatize, match_key,
                                 split_compound, spoken_language, tokenize, tokens, word_key)


def test_sign_languages_map_to_their_spoken_language():
    assert [spoken_language(x) for x in ("dgs", "sgg", "csl", "asl", "DGS")] == ["de", "de", "zh", "en", "de"]
    assert spoken_language("fr") == "fr"  # a spoken language simplemma knows is accepted as is
    with pytest.raises(SlpError, match="unknown language 'klingon'.*dgs"):
        spoken_language("klingon")


def test_tokenize_lowercases_and_drops_punctuation():
    assert tokenize("Am Mittwoch zieht Regen heran, örtlich Gewitter!", "dgs") == [
        "am", "mittwoch", "zieht", "regen", "heran", "örtlich", "gewitter"]
    assert tokenize("It's raining; don't go.", "asl") == ["it's", "raining", "don't", "go"]
    assert tokenize(" ... ", "dgs") == []


def test_chinese_is_segmented_into_words():
    text = "明天北方有大风，天气很冷。"
    words = tokenize(text, "csl")
    assert "明天" in words and "天气" in words  # multi-character words, not single characters
    assert len(words) < len(text) - 2
    assert "".join(words) == text.replace("，", "").replace("。", "")  # segmentation loses nothing


def test_jieba_is_quiet():
    code = "from slp_cli.text.lemmas import tokenize; print(tokenize('今天下雨', 'csl'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert "下雨" in out.stdout


def test_lemmatize():
    assert lemmatize("regnet", "dgs") == "regnen"
    assert lemmatize("Wolken", "de") == "wolke"
    assert lemmatize("clouds", "asl") == "cloud"
    assert lemmatize("children", "en") == "child"
    assert lemmatize("下雨", "csl") == "下雨"  # Chinese has no inflection


def test_word_key_meets_gloss_key_spelling():
    # PHOENIX spells umlauts as ae/oe/ue in glosses; text keeps them.
    assert fold("Überschwemmung") == "ueberschwemmung"
    assert word_key("Überschwemmungen", "dgs") == lemma_key("UEBERSCHWEMMUNG") == "ueberschwemmung"
    assert word_key("größer", "dgs") == fold(lemmatize("größer", "dgs"))
    assert "ß" not in word_key("Straße", "dgs")


@pytest.mark.parametrize("gloss, key", [
    ("REGEN", "regen"),
    ("REGEN-PLUSPLUS", "regen"),
    ("loc-NORDWEST", "nordwest"),
    ("cl-KOMMEN", "kommen"),
    ("poss-SEIN", "sein"),
    ("BANK-2", "bank"),
    ("HABEN2", "haben"),
    ("S0NNE", "sonne"),
    ("WIE-AUSSEHEN", "wie-aussehen"),
    ("__ON__", ""),
    ("__OFF__", ""),
    ("__EMOTION__", ""),
    ("__PU__", ""),
    ("", ""),
    ("下雨", "下雨"),
])
def test_lemma_key(gloss, key):
    assert lemma_key(gloss) == key


def test_function_words():
    assert is_function_word("der", "dgs") and is_function_word("ist", "dgs")
    assert is_function_word("The", "asl") and is_function_word("were", "asl")
    assert is_function_word("的", "csl")
    assert not is_function_word("regen", "dgs") and not is_function_word("cloud", "asl")
    assert not is_function_word("下雨", "csl")


def test_tokens_keep_punctuation_as_pauses():
    toks = tokens("Es regnet - dann ... Sonne?! Nord-West, 明天", "dgs")
    assert toks == ["es", "regnet", "-", "dann", "...", "sonne", "?!", "nord-west", ",", "明天"]
    assert [is_pause(t) for t in toks] == [False, False, True, False, True, False, True, False, True, False]
    zh = tokens("明天北方有大风，天气很冷。", "csl")
    assert "，" in zh and zh[-1] == "。" and tokenize("明天北方有大风，天气很冷。", "csl") == [t for t in zh if not is_pause(t)]


def test_match_key_folds_case_umlauts_and_hyphens():
    assert match_key("Nord-West") == match_key("NORDWEST") == "nordwest"
    assert match_key("Süden") == "sueden" and match_key("Straße") == "strasse" and match_key("don't") == "dont"


def test_split_compound_into_known_parts():
    known = {"nord", "nordwest", "west", "regen", "schauer", "sturm", "boe", "ost", "gebiet", "weise", "sonne",
             "schein"}.__contains__
    assert split_compound("regenschauer", known, "dgs") == ["regen", "schauer"]
    assert split_compound("nordwesten", known, "dgs") == ["nordwest"]  # one part + ending beats two parts
    assert split_compound("norden", known, "dgs") == ["nord"]  # a prefix match
    assert split_compound("sonnenschein", known, "dgs") == ["sonne", "schein"]  # linking -n-
    assert split_compound("gebietsweise", known, "dgs") == ["gebiet", "weise"]  # linking -s-
    assert split_compound("sturmboeen", known, "dgs") == ["sturm", "boe"]
    assert split_compound("westwind", known, "dgs") is None  # "wind" is not known: no half matches
    assert split_compound("os", known, "dgs") is None  # parts are at least 3 letters
