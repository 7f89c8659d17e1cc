"""Pseudo-glosses: the content-word lemmas of a sentence, the weak labels of SLT pre-training.

The hierarchical SLT model (HFA-SLT, section 3.2, after Sign2GPT) tags the target sentence with
parts of speech and keeps the lemmas of the words whose universal POS is NOUN, NUM, ADV, PRON,
PROPN, ADJ or VERB (:data:`PAPER_CLASSES`) as *pseudo-glosses*, and trains segment features to
detect which of them a video contains. The paper does not name its tagger (the class list is
that of spaCy's universal tags, as Sign2GPT uses them); no spaCy German model installs from PyPI
(its model names there are placeholders). What slp uses offline:

* **German**: the HanTa tagger and lemmatizer (Hanover Tagger, PyPI ``HanTa``, its German model
  ships in the wheel). It tags with STTS, mapped to the universal classes the way spaCy 2's German
  tag map does (:data:`STTS_CLASSES`: NN/NNA/NNI noun, NE proper noun, ADJA/ADJD adjective, ADV,
  PROAV and PWAV adverb, CARD numeral, VV and the modals VM verb, PPER/PRF/PDS/PIS/PPOSS/PRELS/PWS
  pronoun). So auxiliaries (sein, haben, werden), articles and attributive determiners (dieser
  Tag), prepositions (wegen), conjunctions and particles -- the negation ``nicht`` (PTKNEG ->
  PART) included, as in the paper's filter -- are not pseudo-glosses. PHOENIX-2014T sentences
  are lower-cased, so the tagger is run case-insensitively on lower-cased words (``wetter`` is
  the noun Wetter, not the verb wettern; ``sonne`` is Sonne). Lemmas are lower-cased.
* **Chinese**: jieba's own POS tagger (``jieba.posseg``, shipped with jieba) keeps the tags of
  those classes (:data:`CONTENT_TAGS_ZH`: nouns incl. time and place nouns, verbs, adjectives,
  adverbs, numerals, pronouns, proper names), and words of slp's function-word list (copulas and
  particles such as 是 / 有 / 在, which have no sign) are dropped as well. Chinese words are their
  own lemmas.
* **English and every other language**: no tagger, so *lemmatised non-stopwords*: every word
  that is not in slp's function-word list (``slp_cli.text.lemmas.FUNCTION_WORDS``: articles,
  prepositions, auxiliaries, conjunctions, particles, personal pronouns), lemmatised with
  simplemma. Unlike the paper's filter this drops personal pronouns and keeps the odd
  interjection.

:func:`method` says which a language gets. On the 7,096 training sentences of PHOENIX-2014T the
German tagger gives 2,093 pseudo-glosses where the paper reports 2,322 (section 4.2; another
tagger and lemmatizer, likely spaCy's, whose lookup lemmas merge fewer inflected forms:
bench/RESULTS.md).
A pseudo-gloss is identified across the corpus by its *key* ``"<spoken language>:<lemma>"``
(``de:regen``), so that languages with the same spelling of a lemma do not share a prototype.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from functools import lru_cache
from typing import Iterable

from ..errors import SlpError
from .lemmas import is_function_word, lemmatize, spoken_language, tokenize, tokens

# jieba.posseg tags (ICTCLAS set) of the paper's classes: n* nouns (nr person, ns place, nt
# organisation, nz other proper noun, ng noun morpheme), t time noun, s place word, f direction
# noun, v* verbs (vn verbal noun, vd adverbial verb), a* adjectives (an, ad), b distinguishing
# adjective, z descriptive, d adverb, m numeral, r pronoun, eng words in Latin letters.
CONTENT_TAGS_ZH = ("n", "t", "s", "f", "v", "a", "b", "z", "d", "m", "r", "eng")
_NOT_CONTENT_ZH = ("uv", "ud", "ul", "uj", "uz", "ug", "x", "y", "e", "o", "p", "c", "q", "h", "k")
_WORDLIKE = re.compile(r"\w")

# HFA-SLT, section 3.2: the universal POS classes whose lemmas are pseudo-glosses.
PAPER_CLASSES = frozenset({"NOUN", "NUM", "ADV", "PRON", "PROPN", "ADJ", "VERB"})
# HanTa's STTS tags (taglevel 1: "VV(FIN)", "ADJ(A)", ...) -> universal POS, as spaCy 2's German tag
# map assigns them; a tag not listed (ART, APPR, KON, PTKNEG, VA(...), PDAT, $., ...) is none of
# the paper's classes.
STTS_CLASSES = {
    "NN": "NOUN", "NNA": "NOUN", "NNI": "NOUN", "NE": "PROPN",
    "ADJ(A)": "ADJ", "ADJ(D)": "ADJ",
    "ADV": "ADV", "PROAV": "ADV", "PWAV": "ADV",
    "CARD": "NUM",
    "PPER": "PRON", "PRF": "PRON", "PDS": "PRON", "PIS": "PRON", "PPOSS": "PRON", "PRELS": "PRON",
    "PWS": "PRON",
}
_VERB_TAGS = ("VV(", "VM(")  # full verbs and modals; VA(...) auxiliaries are AUX


def universal_class(stts: str) -> str | None:
    """The universal POS class of one of HanTa's STTS tags, None if not one of the paper's."""
    if stts.startswith(_VERB_TAGS):
        return "VERB"
    return STTS_CLASSES.get(stts)


def method(lang: str) -> str:
    """How pseudo-glosses of ``lang`` are found: ``"pos"`` (a tagger) or ``"stopwords"``."""
    return "pos" if spoken_language(lang) in ("zh", "de") else "stopwords"


@lru_cache(maxsize=1)
def _hanta():
    try:
        from HanTa import HanoverTagger
    except ImportError:
        raise SlpError("German pseudo-glosses need the HanTa POS tagger, which is not installed: "
                       "pip install HanTa (it runs offline)") from None
    return HanoverTagger.HanoverTagger("morphmodel_ger.pgz")


@lru_cache(maxsize=16384)
def _de(text: str) -> tuple[str, ...]:
    words = tokens(text, "de")  # lower-cased words and punctuation (the tagger reads both)
    if not words:
        return ()
    out = []
    for word, lemma, tag in _hanta().tag_sent(words, taglevel=1, casesensitive=False):
        if universal_class(tag) in PAPER_CLASSES and _WORDLIKE.search(word):
            out.append((lemma or word).lower())
    return tuple(out)


@lru_cache(maxsize=1)
def _posseg():
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.ERROR)  # "Building prefix dict ..." is not slp's message
    logging.getLogger("jieba").setLevel(logging.ERROR)
    return jieba.posseg


def _is_content_tag(tag: str) -> bool:
    tag = tag.lower()
    return tag.startswith(CONTENT_TAGS_ZH) and not tag.startswith(_NOT_CONTENT_ZH)


@lru_cache(maxsize=16384)
def _zh(text: str) -> tuple[str, ...]:
    out = []
    for pair in _posseg().cut(text.lower()):
        word, tag = pair.word.strip(), pair.flag
        if word and _WORDLIKE.search(word) and _is_content_tag(tag) and not is_function_word(word, "zh"):
            out.append(word)
    return tuple(out)


def pseudo_glosses(text: str, lang: str) -> list[str]:
    """The pseudo-gloss lemmas of one sentence, in order of first appearance, each once.

    >>> pseudo_glosses("Gestern kaufte der Mann Äpfel", "dgs")
    ['gestern', 'kaufen', 'mann', 'apfel']
    """
    spoken = spoken_language(lang)
    if spoken == "zh":
        words = _zh(text or "")
    elif spoken == "de":
        words = _de(text or "")
    else:
        words = tuple(lemmatize(w, lang) for w in tokenize(text, lang) if not is_function_word(w, lang))
    return list(dict.fromkeys(w for w in words if w))


def key(lemma: str, lang: str) -> str:
    """Corpus-wide identity of a pseudo-gloss: ``"<spoken language>:<lemma>"``."""
    return f"{spoken_language(lang)}:{lemma}"


def keys(text: str, lang: str) -> list[str]:
    """The pseudo-gloss keys of one sentence (see :func:`key`)."""
    return [key(g, lang) for g in pseudo_glosses(text, lang)]


def vocabulary(pairs: Iterable[tuple[str, str]], min_count: int = 1) -> list[str]:
    """Pseudo-gloss keys of (text, lang) pairs seen in at least ``min_count`` sentences, most
    frequent first (ties alphabetically): the prototypes of pre-training."""
    counts = Counter(k for text, lang in pairs for k in keys(text, lang))
    return [k for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_count]
