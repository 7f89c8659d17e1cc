"""Words to dictionary keys: tokenizing, lemmatizing and gloss keys for word-level sign lookup.

A sign dictionary (``slp_cli.dictionary``) is keyed by the *lemma key* of a gloss; a sentence is
looked up word by word through the *word key* of each token. Both keys are lower-case and spell
the German umlauts and sharp s the way PHOENIX-2014T glosses do (ä -> ae, ö -> oe, ü -> ue,
ß -> ss), so that ``überschwemmungen`` meets the gloss ``UEBERSCHWEMMUNG``.

* Sign-language codes name the spoken language of their texts (:data:`SPOKEN`, a small table:
  dgs/gsg and the Swiss and Austrian sign languages -> de, asl/ase/bfi -> en, csl -> zh, ...);
  a spoken-language code that simplemma knows is accepted as is.
* German, English and every other simplemma language are lemmatized with simplemma (a lookup
  table per language); Chinese is segmented with jieba and used as is (no inflection).
* :func:`lemma_key` applies the simplifications of the PHOENIX-2014 evaluation script (its
  ``preprocess.sh``: prefixes ``loc-``, ``cl-``, ``qu-``, ``poss-``, ``lh-`` and ``-PLUSPLUS``
  dropped, ``__ON__``/``__OFF__``/``__EMOTION__``... are not signs), and strips sense markers
  (``BANK-2``, ``HABEN2``).
* :func:`match_key` folds case, umlauts and hyphens (``Nord-West`` -> ``nordwest``), the form
  word and gloss keys are compared in; :func:`split_compound` splits a word into known parts
  (``regenschauer`` -> regen + schauer, ``nordwesten`` -> nordwest + the ending -en);
  :func:`tokens` keeps punctuation as pause marks (:func:`is_pause`).
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from ..errors import SlpError

# Sign language (or lexicon code) -> spoken language of its texts. ISO 639-3 codes as used by
# the spoken-to-signed lexicons, plus the short names slp's corpora use (dgs, csl, asl).
SPOKEN: dict[str, str] = {
    "dgs": "de", "gsg": "de",            # German Sign Language (PHOENIX-2014T)
    "sgg": "de", "asq": "de",            # Swiss German, Austrian Sign Language
    "asl": "en", "ase": "en",            # American Sign Language (How2Sign)
    "bfi": "en",                         # British Sign Language
    "csl": "zh", "csl-daily": "zh",      # Chinese Sign Language (CSL-Daily)
    "fsl": "fr", "ssr": "fr",            # French, Swiss French Sign Language
    "ise": "it", "slf": "it",            # Italian, Swiss Italian Sign Language
    "ssp": "es", "dse": "nl", "psr": "pt",
}

# Words with no sign of their own (articles, prepositions, auxiliaries, particles, pronoun-like
# fillers). Used only for words the dictionary does not know: a function word that *does* have an
# entry (PHOENIX glosses UND) is still signed.
FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "de": frozenset("""
        der die das den dem des ein eine einer eines einem einen
        am an auf aus bei beim im in ins mit nach von vom zu zum zur für über unter vor durch
        gegen um bis ab seit ohne hinter neben zwischen
        und oder aber doch sondern dass ob wenn als wie denn so
        sein ist sind war waren bin bist seid sei wäre wären wird werden wurde wurden worden wirst
        hat habe hast haben hatte hatten gewesen gibt gab kein keine
        es sich man er sie wir ihr ich du uns euch ihm ihn ihnen
        auch noch schon nur ja eben mal zwar dabei dort da dann hier nun
    """.split()),
    "en": frozenset("""
        a an the
        at in on of to for from by with into onto over under about as than
        and or but that if so
        is are was were be been being am do does did has have had will would shall can could
        may might must should
        it its it's there this these those they them he she we you i me my your his her our their
        just very too also then
    """.split()),
    "zh": frozenset("""
        的 了 着 过 地 得 吗 呢 吧 啊 呀 嘛 是 在 和 与 及 或 把 被 给 对 向 从 于 将 也 都 就 还 又 而 所 这 那 个
        会 那个 这个 非常 比较 没有 有 里
    """.split()),
}

# Gloss markers that are not signs in PHOENIX-style annotations: __ON__, __OFF__, __PU__, ...
_NON_SIGN = re.compile(r"^__\w+__$")
# Prefixes and suffixes the PHOENIX-2014 evaluation drops before scoring (preprocess.sh).
_PREFIXES = ("loc-", "cl-", "qu-", "poss-", "lh-")
_PLUSPLUS = re.compile(r"-PLUSPLUS$", re.IGNORECASE)
# A sense marker: digits (optionally after a dash) at the end of a word, e.g. BANK-2, HABEN2.
_SENSE = re.compile(r"(?<=[^\W\d_])-?\d+$")
_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_JOINERS = str.maketrans("", "", "-'’")
# A word: letters/digits, possibly joined by an apostrophe or a hyphen (don't, nord-west).
_WORD = re.compile(r"\w+(?:['’-]\w+)*")
# Punctuation that marks a pause: clause and sentence ends (Latin and CJK), dashes, and a hyphen
# standing alone. A run of marks ("?!", "...") is one pause.
_PAUSE = r"(?:[.,;:!?…。，、！？；：–—]|(?<![\w-])-+(?![\w-]))+"
_TOKEN = re.compile(rf"{_WORD.pattern}|{_PAUSE}")

# Inflection endings a word may add to a dictionary key, and the linking elements between the
# parts of a compound (German Fugenelemente: Sturm|böen, Gebiet|s|weise, Sonne|n|schein).
ENDINGS: dict[str, frozenset[str]] = {
    "de": frozenset("e n en er ern es s em et t st est ens".split()),
    "en": frozenset("s es ed ing er est ly".split()),
}
LINKERS: dict[str, tuple[str, ...]] = {"de": ("", "s", "es", "n", "en", "e", "er"), "en": ("",)}
MIN_PART = 3  # the shortest key a compound part or a prefix match may be (OST, TAG)


def fold(word: str) -> str:
    """Lower-case and spell umlauts and ß as PHOENIX glosses do (ä -> ae, ..., ß -> ss)."""
    return word.lower().translate(_FOLD)


def match_key(word: str) -> str:
    """:func:`fold` without hyphens and apostrophes: ``Nord-West`` and ``NORDWEST`` -> ``nordwest``."""
    return fold(word).translate(_JOINERS)


def split_compound(word: str, known, lang: str) -> list[str] | None:
    """The fewest known parts a :func:`match_key`-folded word is made of, or None.

    ``known(part)`` says whether a part has a sign. Parts are at least :data:`MIN_PART` long and
    may be joined by a linking element (:data:`LINKERS`); the last may carry an inflection ending
    (:data:`ENDINGS`), so a single part plus an ending is a prefix match (``norden`` -> nord).
    Among splits with as few parts, the one with the longest first part wins.
    """
    spoken = spoken_language(lang)
    endings, linkers = ENDINGS.get(spoken, frozenset()), LINKERS.get(spoken, ("",))
    memo: dict[int, list[str] | None] = {}

    def best(i: int) -> list[str] | None:
        if i not in memo:
            found = None
            for j in range(len(word), i + MIN_PART - 1, -1):
                part = word[i:j]
                if not known(part):
                    continue
                rest = word[j:]
                if not rest or rest in endings:
                    found = [part]
                    break
                for link in linkers:
                    if rest.startswith(link) and len(rest) > len(link):
                        tail = best(j + len(link))
                        if tail is not None and (found is None or 1 + len(tail) < len(found)):
                            found = [part] + tail
            memo[i] = found
        return memo[i]

    return best(0)


@lru_cache(maxsize=None)
def _simplemma_languages() -> frozenset[str]:
    from simplemma.strategies.dictionaries.dictionary_factory import SUPPORTED_LANGUAGES

    return frozenset(SUPPORTED_LANGUAGES)


def spoken_language(lang: str) -> str:
    """The spoken language of a sign-language (or spoken-language) code; SlpError if unknown."""
    code = (lang or "").strip().lower()
    if code in SPOKEN:
        return SPOKEN[code]
    if code == "zh" or code in _simplemma_languages():
        return code
    raise SlpError(
        f"unknown language {lang!r}: use a sign language ({', '.join(sorted(SPOKEN))}) or a spoken "
        f"language simplemma knows (e.g. de, en, fr) or zh"
    )


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    # jieba logs "Building prefix dict ..." on first use: keep stderr for slp's own messages.
    jieba.setLogLevel(logging.ERROR)
    logging.getLogger("jieba").setLevel(logging.ERROR)
    return jieba


@lru_cache(maxsize=4096)
def _segment_zh(text: str) -> tuple[str, ...]:
    return tuple(_jieba().lcut(text))


def tokens(text: str, lang: str) -> list[str]:
    """Lower-cased words and pause marks (runs of punctuation, see :func:`is_pause`) of ``text``
    in order; Chinese is segmented with jieba."""
    spoken = spoken_language(lang)
    text = (text or "").lower()
    if spoken == "zh":
        return [t for piece in _segment_zh(text) for t in _TOKEN.findall(piece)]
    return _TOKEN.findall(text)


def is_pause(token: str) -> bool:
    """Whether a token of :func:`tokens` is punctuation (a pause) rather than a word."""
    return _WORD.fullmatch(token) is None


def tokenize(text: str, lang: str) -> list[str]:
    """Lower-cased words of ``text`` without punctuation; Chinese is segmented with jieba."""
    return [t for t in tokens(text, lang) if not is_pause(t)]


@lru_cache(maxsize=65536)
def lemmatize(word: str, lang: str) -> str:
    """The lower-cased lemma of one word (simplemma; Chinese words are returned unchanged)."""
    spoken = spoken_language(lang)
    word = word.lower()
    if spoken == "zh":
        return word
    import simplemma

    return simplemma.lemmatize(word, lang=spoken).lower()


def word_key(word: str, lang: str) -> str:
    """Dictionary key of a text word: its lemma, folded like a gloss (see :func:`fold`)."""
    return fold(lemmatize(word, lang))


def lemma_key(gloss: str) -> str:
    """Dictionary key of a gloss, or "" for annotation markers that are not signs.

    ``REGEN-PLUSPLUS`` -> ``regen``, ``loc-NORDWEST`` -> ``nordwest``, ``BANK-2`` -> ``bank``,
    ``__ON__`` -> ``""``. Compound glosses (``WIE-AUSSEHEN``) keep their hyphen.
    """
    g = (gloss or "").strip()
    if not g or _NON_SIGN.match(g):
        return ""
    low = g.lower()
    for p in _PREFIXES:
        if low.startswith(p) and len(g) > len(p):
            g = g[len(p):]
            break
    g = _PLUSPLUS.sub("", g)
    g = _SENSE.sub("", g)
    if g == "S0NNE":  # a known typo in PHOENIX's annotation, fixed by its evaluation script
        g = "SONNE"
    return fold(g)


def is_function_word(word: str, lang: str) -> bool:
    """Whether a word normally has no sign of its own (article, preposition, auxiliary, particle)."""
    words = FUNCTION_WORDS.get(spoken_language(lang), frozenset())
    w = word.lower()
    return w in words or lemmatize(w, lang) in words
