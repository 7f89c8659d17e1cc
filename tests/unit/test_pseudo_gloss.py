"""Pseudo-glosses (content-word lemmas) of German, English and Chinese sentences."""

import builtins

import pytest

from slp_cli import SlpError
from slp_cli.text import pseudo_gloss
from slp_cli.text.pseudo_gloss import key, keys, method, pseudo_glosses, universal_class, vocabulary


@pytest.mark.parametrize("text, expected", [
    # articles, prepositions and auxiliaries go; inflected words become lemmas; numbers stay
    ("Der Regen zieht am Mittwoch nach Norden.", ["regen", "ziehen", "mittwoch", "norden"]),
    ("Die Kinder haben gestern zwei Bücher gekauft", ["kind", "gestern", "zwei", "buch", "kaufen"]),
    ("heute kaufen die männer äpfel", ["heute", "kaufen", "mann", "apfel"]),
    # lower-cased PHOENIX-2014T sentences: nouns stay nouns (not wettern, sonnen, gewittern);
    # adverbs (kaum, sehr) are kept; negation, prepositions and determiners (nicht, wegen, dieser
    # as in "dieser gewitter") are not among the paper's classes
    ("das wetter wird nicht schön , die sonne scheint wegen dieser gewitter kaum",
     ["wetter", "schön", "sonne", "scheinen", "gewitter", "kaum"]),
    ("und nun die wettervorhersage für morgen donnerstag den zwölften august .",
     ["nun", "wettervorhersage", "morgen", "donnerstag", "zwölft", "august"]),
    # pronouns (PRON) and modal verbs are in the paper's classes, auxiliaries (AUX) are not
    ("im norden regnet es sehr stark und es kann gewitter geben",
     ["norden", "regnen", "es", "sehr", "stark", "können", "gewitter", "geben"]),
])
def test_german_uses_the_pos_tagger(text, expected):
    assert method("dgs") == "pos"
    assert pseudo_glosses(text, "dgs") == expected


def test_stts_tags_map_to_the_papers_classes():
    kept = {"NN": "NOUN", "NE": "PROPN", "ADJ(A)": "ADJ", "ADJ(D)": "ADJ", "ADV": "ADV", "CARD": "NUM",
            "PPER": "PRON", "VV(FIN)": "VERB", "VM(INF)": "VERB", "PROAV": "ADV"}
    for tag, cls in kept.items():
        assert universal_class(tag) == cls and cls in pseudo_gloss.PAPER_CLASSES
    for tag in ("ART", "APPR", "APPRART", "KON", "PTKNEG", "PTKVZ", "VA(FIN)", "PDAT", "PPOSAT", "$.", "ITJ"):
        assert universal_class(tag) not in pseudo_gloss.PAPER_CLASSES


def test_missing_tagger_is_one_clear_line(monkeypatch):
    real_import = builtins.__import__

    def no_hanta(name, *args, **kwargs):
        if name.startswith("HanTa"):
            raise ImportError("No module named 'HanTa'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_hanta)
    pseudo_gloss._hanta.cache_clear()
    pseudo_gloss._de.cache_clear()
    try:
        with pytest.raises(SlpError, match="need the HanTa POS tagger.*pip install HanTa"):
            pseudo_glosses("der regen", "dgs")
        assert pseudo_glosses("the rain", "asl") == ["rain"]  # other languages do not need it
    finally:
        pseudo_gloss._hanta.cache_clear()
        pseudo_gloss._de.cache_clear()


@pytest.mark.parametrize("text, expected", [
    ("She was reading three books in London yesterday.", ["read", "three", "book", "london", "yesterday"]),
    ("The children bought the apples, the children ate the apples", ["child", "buy", "apple", "eat"]),
])
def test_english(text, expected):
    assert pseudo_glosses(text, "asl") == expected


@pytest.mark.parametrize("text, expected", [
    # jieba's tagger: pronoun, time noun, verb, place name, noun, adverb, adjective kept; the
    # punctuation goes
    ("我们明天去北京，天气很好。", ["我们", "明天", "去", "北京", "天气", "很", "好"]),
    # the preposition 在 (p) and the aspect particle 了 (ul) go
    ("他在办公室工作", ["他", "办公室", "工作"]),
    ("今天男人买了苹果", ["今天", "男人", "买", "苹果"]),
])
def test_chinese_uses_the_pos_tagger(text, expected):
    assert method("csl") == "pos"
    assert pseudo_glosses(text, "csl") == expected


def test_keys_and_vocabulary_by_frequency():
    assert key("regen", "dgs") == "de:regen" and keys("Regen im Norden", "dgs") == ["de:regen", "de:norden"]
    pairs = [("morgen regen", "dgs"), ("heute regen", "dgs"), ("heute sonnig", "dgs"), ("rain", "asl"),
             ("die", "dgs")]
    # counted once per sentence, most frequent first, ties alphabetical; sign languages of one
    # spoken language share keys
    assert vocabulary(pairs) == ["de:heute", "de:regen", "de:morgen", "de:sonnig", "en:rain"]
    assert vocabulary(pairs, min_count=2) == ["de:heute", "de:regen"]
    assert pseudo_glosses("der die das", "dgs") == [] and pseudo_glosses("", "asl") == []


def test_unknown_language():
    with pytest.raises(SlpError, match="unknown language 'xx'"):
        pseudo_glosses("hallo", "xx")
