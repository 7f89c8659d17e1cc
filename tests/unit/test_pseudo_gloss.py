"""Pseudo-glosses (content-word lemmas) of German, English and Chinese sentences."""

import pytest

from slp_cli import SlpError
from slp_cli.text.pseudo_gloss import key, keys, method, pseudo_glosses, vocabulary


@pytest.mark.parametrize("text, expected", [
    # articles, prepositions and auxiliaries go; inflected words become lemmas; numbers stay
    ("Der Regen zieht am Mittwoch nach Norden.", ["regen", "ziehen", "mittwoch", "norden"]),
    ("Die Kinder haben gestern zwei Bücher gekauft", ["kind", "gestern", "zwei", "buch", "kaufen"]),
    ("heute kaufen die männer äpfel", ["heute", "kaufen", "mann", "apfel"]),
])
def test_german(text, expected):
    assert method("dgs") == "stopwords"
    assert pseudo_glosses(text, "dgs") == expected


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
