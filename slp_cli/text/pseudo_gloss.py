"""Pseudo-glosses: the content-word lemmas of a sentence, the weak labels of SLT pre-training.

The hierarchical SLT model (HFA-SLT, section 3.2, after
Sign2GPT) keeps the lemmas of the words whose part of speech is NOUN, NUM, ADV, PRON, PROPN, ADJ
or VERB as *pseudo-glosses*, and trains segment features to detect which of them a video
contains. What slp can do offline (no spaCy-style POS tagger for German or English installs from
PyPI):

* **Chinese**: jieba's own POS tagger (``jieba.posseg``, shipped with jieba) keeps the tags of
  those classes (:data:`CONTENT_TAGS_ZH`: nouns incl. time and place nouns, verbs, adjectives,
  adverbs, numerals, pronouns, proper names), and words of slp's function-word list (copulas and
  particles such as 是 / 有 / 在, which have no sign) are dropped as well. Chinese words are their
  own lemmas.
* **German, English and every other language**: no tagger, so *lemmatised non-stopwords*: every
  word that is not in slp's function-word list (``slp_cli.text.lemmas.FUNCTION_WORDS``: articles,
  prepositions, auxiliaries, conjunctions, particles, personal pronouns), lemmatised with
  simplemma. Unlike the paper's filter this drops personal pronouns (they are in the lists, as
  words with no sign of their own) and keeps the odd interjection.

:func:`method` says which of the two a language gets. A pseudo-gloss is identified across the
corpus by its *key* ``"<spoken language>:<lemma>"`` (``de:regen``), so that languages with the
same spelling of a lemma do not share a prototype.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from functools import lru_cache
from typing import Iterable

from .lemmas import is_function_word, lemmatize, spoken_language, tokenize

# jieba.posseg tags (ICTCLAS set) of the paper's classes: n* nouns (nr person, ns place, nt
# organisation, nz other proper noun, ng noun morpheme), t time noun, s place word, f direction
# noun, v* verbs (vn verbal noun, vd adverbial verb), a* adjectives (an, ad), b distinguishing
# adjective, z descriptive, d adverb, m numeral, r pronoun, eng words in Latin letters.
CONTENT_TAGS_ZH = ("n", "t", "s", "f", "v", "a", "b", "z", "d", "m", "r", "eng")
_NOT_CONTENT_ZH = ("uv", "ud", "ul", "uj", "uz", "ug", "x", "y", "e", "o", "p", "c", "q", "h", "k")
_WORDLIKE = re.compile(r"\w")


def method(lang: str) -> str:
    """How pseudo-glosses of ``lang`` are found: ``"pos"`` (a tagger) or ``"stopwords"``."""
    return "pos" if spoken_language(lang) == "zh" else "stopwords"


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
    if spoken_language(lang) == "zh":
        words = _zh(text or "")
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
