"""A word -> gloss table learnt from parallel sentences (text, glosses), for dictionary look-up.

A sign corpus pairs every sentence with its glosses but not word by word, and its glosses are
not the words' lemmas: PHOENIX-2014T glosses ``regnet`` as REGEN and ``nordwesten`` as
NORDWEST, and leaves most function words unsigned. The table is read off IBM Model 1 (Brown et
al. 1993, "The mathematics of statistical machine translation", section 4.1) trained in the
direction glosses given text, with an empty word NULL in every sentence:

* t(g | w) is estimated by EM from uniform; in each E-step every gloss token is shared among
  NULL and the words of its sentence in proportion to t(g | w);
* after the last iteration, E(w, g), the expected number of times word type w produced gloss g,
  is summed over the corpus; a word's entry is its likeliest gloss when that gloss's share,
  max_g E(w, g) / count(w), is at least ``min_share`` (at least that often an occurrence of w
  produced it), and "" (no sign of its own) otherwise.

Only words seen at least ``min_count`` times get an entry (a word seen once is aligned by its
sentence alone); the look-up rules handle the rest. On the PHOENIX-2014T training sentences,
content words have shares of 0.5-1 (regnet 0.55 REGEN, nordwesten 0.69 NORDWEST, sonne 0.69),
function words below 0.1 (und 0.03, ist 0.04). ``min_share`` 0.4 and ``min_count`` 2 were
chosen on a development slice of the training sentences (the last 500 of those
bench/dictionary_real_text.py builds from): gloss WER 58.7, against 59.4 for 0.3, 61.1 for 0.5
and 69.8 for 0.6 (and 60.1 when the words below the share that account for at least half a
gloss per occurrence are left to the look-up rules instead); ``min_count`` 1 to 5 changes it
by less than 0.5.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np

ITERATIONS = 10
MIN_COUNT = 2
MIN_SHARE = 0.4


def learn_word_table(pairs: Iterable[tuple[list[str], list[str]]], *, iterations: int = ITERATIONS,
                     min_count: int = MIN_COUNT, min_share: float = MIN_SHARE) -> dict[str, str]:
    """``{word: gloss or ""}`` from (words, glosses) sentence pairs (see the module docstring)."""
    pairs = [(w, g) for w, g in pairs if w and g]
    if not pairs:
        return {}
    counts = Counter(w for words, _ in pairs for w in words)
    words = sorted(counts)
    word_ids = {w: i + 1 for i, w in enumerate(words)}  # 0 = NULL
    glosses = sorted({g for _, gs in pairs for g in gs})
    gloss_ids = {g: i for i, g in enumerate(glosses)}
    # One row per (gloss token, candidate source word): token index, source id, gloss id.
    tok, src, tgt = [], [], []
    n_tok = 0
    for ws, gs in pairs:
        sources = [0] + sorted({word_ids[w] for w in ws})
        for g in gs:
            tok += [n_tok] * len(sources)
            src += sources
            tgt += [gloss_ids[g]] * len(sources)
            n_tok += 1
    tok, src, tgt = (np.asarray(x, dtype=np.int64) for x in (tok, src, tgt))
    n_src, n_g = len(words) + 1, len(glosses)
    cell = src * n_g + tgt
    t = np.full(n_src * n_g, 1.0 / n_g)  # t(g | w), uniform
    for _ in range(iterations):
        p = t[cell]
        post = p / np.bincount(tok, p, minlength=n_tok)[tok]  # E-step: each source's share
        expected = np.bincount(cell, post, minlength=n_src * n_g).reshape(n_src, n_g)
        t = (expected / np.maximum(expected.sum(1, keepdims=True), 1e-300)).ravel()  # M-step
    table = {}
    for w in words:
        i, n = word_ids[w], counts[w]
        if n < min_count:
            continue
        best = int(expected[i].argmax())
        table[w] = glosses[best] if expected[i, best] / n >= min_share else ""
    return table
