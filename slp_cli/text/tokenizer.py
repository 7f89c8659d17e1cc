"""The offline text tokenizer: a WordPiece vocabulary built from the corpus' own sentences and run
by the `tokenizers` library (docs/design.md, section 7), shared by the text encoders of the generators
and the text decoder of the back-translator.

The vocabulary is the corpus' characters (each also as a ``##`` continuation piece) and then its
words by frequency (ties alphabetically) up to ``vocab_size``; a rarer word is spelled by
WordPiece's longest-match pieces. Built here rather than by the library's WordPiece trainer,
whose merges break ties in hash order: two runs on the same sentences gave different vocabularies,
so a training run was not reproducible from its seed.

German and English are split into words (lower-cased, punctuation as its own token); Chinese
into characters (the SLP literature's level for CSL-Daily). Decoding writes punctuation the way
the training sentences do: corpora whose texts are pre-tokenized with a space before punctuation
(PHOENIX-2014T: "... den zwölften august .") get it back that way, so that a perfect translation
scores BLEU 100 against such references; others get it glued to the word before ("august."). Special tokens: ``[PAD]`` 0,
``[UNK]`` 1, ``[BOS]`` 2, ``[EOS]`` 3, then one language token per sign language (``<dgs>``,
``<csl>``, ``<asl>``, ...) as SOKE (section 3.3) prefixes its prompts. The tokenizer is
stored as a JSON string inside a model's config, so a checkpoint rebuilds it alone.
"""

from __future__ import annotations

import re
import unicodedata

from ..errors import SlpError
from .lemmas import spoken_language

SPECIALS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
PAD, UNK, BOS, EOS = range(4)
_CJK = re.compile(r"([\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef])")
_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]) (?=[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef])")


def _pre_tokenizer():
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])


_PRE_TOKENIZER = _pre_tokenizer()


def lang_token(lang: str) -> str:
    return f"<{lang}>"


def spaced_punctuation(texts: list[str]) -> bool:
    """Whether the texts write punctuation as its own space-separated token (pre-tokenized, as
    PHOENIX-2014T's and CSL-Daily's references are): most marks have a space or nothing before."""
    spaced = glued = 0
    for t in texts:
        for i, c in enumerate(t):
            if unicodedata.category(c).startswith("P") and not _CJK.match(c):
                if i == 0 or t[i - 1].isspace():
                    spaced += 1
                elif t[i - 1].isalnum():
                    glued += 1
    return spaced >= glued


def pre_split(text: str) -> str:
    """Lower-case and put spaces around CJK characters, so Chinese is tokenized per character."""
    return _CJK.sub(r" \1 ", text.lower()).strip()


class TextTokenizer:
    """Text <-> ids with a WordPiece vocabulary; ``to_json()`` / ``from_json()`` for checkpoints."""

    def __init__(self, tok, langs: list[str]):
        self.tok = tok
        self.langs = list(langs)
        self.vocab_size = tok.get_vocab_size()

    @classmethod
    def train(cls, texts: list[str], langs: list[str], vocab_size: int = 8000) -> "TextTokenizer":
        from collections import Counter

        from tokenizers import Tokenizer, decoders, models

        if not any(t.strip() for t in texts):
            raise SlpError("no text to train a tokenizer on: the training samples have empty texts")
        for lang in langs:
            spoken_language(lang)  # unknown language codes fail here with the known ones listed
        words = Counter(w for t in texts for w, _ in _PRE_TOKENIZER.pre_tokenize_str(pre_split(t)))
        chars = sorted({c for w in words for c in w})
        vocab = SPECIALS + [lang_token(l) for l in sorted(set(langs))] + chars + [f"##{c}" for c in chars]
        known = set(vocab)
        room = max(vocab_size - len(vocab), 0)
        vocab += [w for w, _ in sorted(words.items(), key=lambda wc: (-wc[1], wc[0])) if w not in known][:room]
        tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]",
                                         max_input_chars_per_word=100))
        tok.pre_tokenizer = _PRE_TOKENIZER
        # cleanup glues punctuation (and "n't") to the word before: only where the corpus writes it so
        tok.decoder = decoders.WordPiece(cleanup=not spaced_punctuation(texts))
        return cls(tok, sorted(set(langs)))

    def to_json(self) -> dict:
        return {"tokenizer": self.tok.to_str(), "langs": self.langs}

    @classmethod
    def from_json(cls, blob: dict) -> "TextTokenizer":
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_str(blob["tokenizer"]), blob["langs"])

    def lang_id(self, lang: str) -> int:
        if lang not in self.langs:
            raise SlpError(f"language {lang!r} was not in this model's training data (it knows {', '.join(self.langs)})")
        return self.tok.token_to_id(lang_token(lang))

    def encode(self, text: str, lang: str | None = None, bos: bool = False, eos: bool = False) -> list[int]:
        """Ids of ``text``, optionally after a language token and [BOS], before [EOS]."""
        ids = self.tok.encode(pre_split(text)).ids
        prefix = ([self.lang_id(lang)] if lang else []) + ([BOS] if bos else [])
        return prefix + ids + ([EOS] if eos else [])

    def decode(self, ids) -> str:
        """Text of ids (specials dropped; stops at [EOS]); Chinese characters re-joined."""
        ids = [int(i) for i in ids]
        if EOS in ids:
            ids = ids[:ids.index(EOS)]
        text = self.tok.decode([i for i in ids if i >= len(SPECIALS) + len(self.langs)])
        return _CJK_GAP.sub("", text)

    def unknown_fraction(self, text: str) -> float:
        ids = self.tok.encode(pre_split(text)).ids
        return sum(i == UNK for i in ids) / max(len(ids), 1)
