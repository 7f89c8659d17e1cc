"""The embedded synthetic corpus (docs/design.md, section 6): sentences with a gloss sequence and a
spoken-language text, signed by procedural signers in the ``mp178`` layout at 25 fps.

Three languages with their own vocabularies: ``dgs`` (German text), ``csl`` (Chinese text, no
spaces) and ``asl`` (English text). Sentences are built from clause frames (weather forecast,
temperature, "someone does something", "someone is somewhere", states, where-questions and
context-dependent signs). The text is not a copy of the glosses: function words have no sign,
the gloss order differs (time-topic-comment, verb-final for DGS, question words last), words
are inflected (kaufte -> KAUFEN, children -> CHILD) and some words have several signs by
context (BANK-1/BANK-2). Gloss frequencies are Zipfian by construction (words are drawn by
Zipf rank within their class). The poses come from ``signer.py``: co-articulated signs,
per-signer proportions, handedness, camera, speed and jitter, a rest pose at both ends and
short hand-detection dropouts as MediaPipe output has them. The same seed gives the same
poses bit for bit.

Presets: ``tiny`` (tests: ~24 glosses and 30 sentences per language, 20-40 frames), ``demo``
(the default: ~120 glosses and 360 sentences per language, 40-90 frames) and ``benchmark``
(PHOENIX-2014T scale: 1,085 glosses, 7,096/519/642 sentences per language, 16-475 frames,
mean ~116; its long tail are pseudo-words for German and English and nouns of jieba's own
dictionary for Chinese, see vocab.py).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..artifacts import ArtifactWriter, Sample, provenance
from ..atomic import refuse_overwriting
from ..errors import SlpError
from ..progress import SILENT, Progress
from . import signer as sg
from . import vocab

LANGS = ("dgs", "csl", "asl")
SPOKEN = {"dgs": "de", "csl": "zh", "asl": "en"}
FPS = 25
# PHOENIX-2014T's split sizes: the proportions every preset follows.
PHOENIX_SPLITS = {"train": 7096, "dev": 519, "test": 642}
NUM_SIGNERS = 9


@dataclass(frozen=True)
class Preset:
    glosses: int  # vocabulary size per language
    sentences: int  # sentences per language
    clauses: float  # mean clauses per sentence
    max_clauses: int
    sign_frames: float  # frames of an average sign at speed 1
    transition: float  # frames between two signs
    rest: int  # frames of rest pose at each end
    frames: tuple[int, int]  # allowed sentence length
    senses: bool  # include context-dependent sign frames


PRESETS = {
    "tiny": Preset(24, 30, 1.0, 1, 6.0, 2.0, 2, (20, 40), False),
    "demo": Preset(110, 360, 1.3, 2, 8.0, 3.0, 4, (40, 90), True),
    "benchmark": Preset(1085, sum(PHOENIX_SPLITS.values()), 2.55, 12, 9.0, 3.0, 5, (16, 475), True),
}


# --- vocabulary -----------------------------------------------------------------------------

_CLASSES = ("time", "region", "weather", "intensity", "temp", "person", "padj", "vtr", "vintr",
            "obj", "place", "neg", "wh")


def _zipf_cdf(n: int, s: float = 1.0) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return np.cumsum(w) / w.sum()


class Lexicon:
    """The vocabulary of one language for one preset: word classes (by Zipf rank) and signs."""

    def __init__(self, lang: str, size: int, senses: bool, seed: int):
        if lang not in SPOKEN:
            raise SlpError(f"unknown language '{lang}'; known: {', '.join(LANGS)}")
        self.lang, self.sp = lang, SPOKEN[lang]
        table = vocab.TABLES[self.sp]
        total = sum(len(table[c]) for c in _CLASSES)
        frac = min(1.0, size / total)
        self.cls = {c: list(table[c][:max(1 if table[c] else 0, round(len(table[c]) * frac))])
                    for c in _CLASSES}
        self.senses = list(vocab.SENSE_CLAUSES[self.sp]) if senses else []
        # every gloss of the full embedded list, in a fixed order: signs are derived from it,
        # so a gloss is the same sign in every preset
        self.curated = _curated_glosses(self.sp)
        glosses = [e[0] for c in _CLASSES for e in self.cls[c]]
        for frame_glosses, _ in self.senses:
            glosses += [g for g in frame_glosses if g != "{S}"]
        glosses = list(dict.fromkeys(glosses))
        self.tail: list[str] = []
        if size > len(glosses):
            self.tail = _tail_words(self.sp, size - len(glosses))
            self.cls["obj"] = self.cls["obj"] + [
                (vocab.fold(w).upper() if self.sp != "zh" else w, w, None, "n" if self.sp == "de" else "mass", "thing")
                for w in self.tail]
            glosses += [e[0] for e in self.cls["obj"][-len(self.tail):]]
        self.glosses = glosses
        self.signs = vocabulary_signs(self.sp, seed, self.curated + [g for g in glosses if g not in self.curated])
        # with a long tail, a flatter Zipf law for objects so that most of the tail occurs
        # (PHOENIX-2014T's vocabulary is, by definition, seen in training)
        obj_s = 0.75 if self.tail else 1.0
        self.cdf = {c: _zipf_cdf(len(v), obj_s if c == "obj" else 1.0) for c, v in self.cls.items() if v}
        # objects a verb can take, in Zipf order
        self.objs_of = {v[0]: [o for o in self.cls["obj"] if o[4] in v[2]] for v in self.cls["vtr"]}
        self.cls["vtr"] = [v for v in self.cls["vtr"] if self.objs_of[v[0]]]
        self.cdf["vtr"] = _zipf_cdf(len(self.cls["vtr"]))
        self.obj_cdf = {k: _zipf_cdf(len(v), obj_s) for k, v in self.objs_of.items() if v}

    def pick(self, rng: np.random.Generator, cls: str):
        return self.cls[cls][int(np.searchsorted(self.cdf[cls], rng.random()))]

    def pick_obj(self, rng: np.random.Generator, verb: str):
        objs = self.objs_of[verb]
        return objs[int(np.searchsorted(self.obj_cdf[verb], rng.random()))]


def _curated_glosses(sp: str) -> list[str]:
    table = vocab.TABLES[sp]
    out = [e[0] for c in _CLASSES for e in table[c]]
    for frame_glosses, _ in vocab.SENSE_CLAUSES[sp]:
        out += [g for g in frame_glosses if g != "{S}"]
    return list(dict.fromkeys(out))


_TAIL_CACHE: dict[tuple, list[str]] = {}


def _tail_words(sp: str, n: int) -> list[str]:
    key = (sp, n)
    if key not in _TAIL_CACHE:
        table = vocab.TABLES[sp]
        known = {vocab.fold(str(x)) for c in _CLASSES for e in table[c] for x in e if isinstance(x, str)}
        if sp == "zh":
            _TAIL_CACHE[key] = vocab.jieba_nouns(n, exclude=set(_curated_glosses(sp)) | known)
        else:
            _TAIL_CACHE[key] = vocab.pseudo_words(sp, n, exclude=known)
    return _TAIL_CACHE[key]


_SIGN_CACHE: dict[tuple, dict] = {}


def vocabulary_signs(sp: str, seed: int, glosses: list[str]) -> dict[str, sg.Sign]:
    key = (sp, seed, tuple(glosses))
    if key not in _SIGN_CACHE:
        _SIGN_CACHE[key] = sg.vocabulary_signs(glosses, seed, salt=sp)
    return _SIGN_CACHE[key]


# --- sentences ------------------------------------------------------------------------------

_FRAMES = ("weather", "temp", "action", "activity", "state", "where", "sense")
_FRAME_P = np.array([0.2, 0.1, 0.32, 0.18, 0.1, 0.04, 0.06])

_DE_ART = {"m": ("der", "den", "einen"), "f": ("die", "die", "eine"), "n": ("das", "das", "ein"),
           "pl": ("die", "die", "")}


def _clause(lex: Lexicon, rng: np.random.Generator, kind: str) -> tuple[str, list[str]]:
    """One clause: (text, glosses)."""
    r = rng.random
    time = lex.pick(rng, "time") if r() < 0.6 else None
    tense = time[2] if time else "pres"
    neg = lex.cls["neg"][0] if lex.cls["neg"] and r() < 0.15 else None
    sp = lex.sp
    person = lex.pick(rng, "person")
    plural = person[2] is not None and r() < 0.3
    g_time = [time[0]] if time else []

    if kind == "weather":
        region = lex.pick(rng, "region") if r() < 0.6 else None
        w = lex.pick(rng, "weather")
        inten = lex.pick(rng, "intensity") if lex.cls["intensity"] and r() < 0.5 else None
        g = g_time + ([region[0]] if region else []) + [w[0]] + ([inten[0]] if inten else [])
        adj = inten[1][w[2]] + " " if inten else ""
        if sp == "de":
            verb = "gab es" if tense == "past" else "gibt es"
            if time:
                text = f"{time[1]} {verb} " + (f"{region[1]} " if region else "") + adj + w[1]
            elif region:
                text = f"{region[1]} {verb} {adj}{w[1]}"
            else:
                text = f"es {verb.split()[0]} {adj}{w[1]}"
        elif sp == "en":
            pl = w[2] == "pl"
            be = {"past": "were" if pl else "was", "fut": "will be"}.get(tense, "are" if pl else "is")
            text = (f"{time[1]} " if time else "") + f"there {be} {adj}{w[1]}" + (f" {region[1]}" if region else "")
        else:
            text = (time[1] if time else "") + (region[1] if region else "") + (
                f"{w[1]}了" if tense == "past" else f"会{w[1]}")
        return text, g

    if kind == "temp":
        region = lex.pick(rng, "region") if r() < 0.5 else None
        adj = lex.pick(rng, "temp")
        g = g_time + ([region[0]] if region else []) + [adj[0]]
        if sp == "de":
            verb = {"past": "war", "fut": "wird"}.get(tense, "ist")
            if time:
                text = f"{time[1]} {verb} es " + (f"{region[1]} " if region else "") + adj[1]
            elif region:
                text = f"{region[1]} {verb} es {adj[1]}"
            else:
                text = f"es {verb} {adj[1]}"
        elif sp == "en":
            be = {"past": "was", "fut": "will be"}.get(tense, "is")
            text = (f"{time[1]} " if time else "") + f"it {be} {adj[1]}" + (f" {region[1]}" if region else "")
        else:
            text = (time[1] if time else "") + (region[1] if region else "") + ("非常" if r() < 0.5 else "比较") + adj[1]
        return text, g

    if kind == "where":
        verb = lex.pick(rng, "vintr")
        wh = lex.cls["wh"][0]
        g = [person[0], verb[0], wh[0]]
        if sp == "de":
            text = f"{wh[1]} {verb[1][1 if plural else 0]} {_de_np(person, plural, 0)}"
        elif sp == "en":
            text = f"{wh[1]} {'do' if plural else 'does'} {_en_np(person, plural)} {verb[1][1]}"
        else:
            text = f"{person[1]}在{wh[1]}{verb[1]}"
        return text, g

    if kind == "sense" and lex.senses:
        frame_glosses, template = lex.senses[int(rng.integers(len(lex.senses)))]
        subj = _de_np(person, False, 0) if sp == "de" else _en_np(person, False) if sp == "en" else person[1]
        return template.replace("{s}", subj), [person[0] if x == "{S}" else x for x in frame_glosses]

    if sp == "zh" and tense == "past":
        neg = None  # Chinese negates the past with 没有, not 不: keep those clauses positive
    g_neg = [neg[0]] if neg else []

    if kind == "state":
        adj = lex.pick(rng, "padj")
        g = g_time + [person[0], adj[0]] + g_neg
        if sp == "de":
            verb = {"past": ("war", "waren"), "fut": ("wird", "werden")}.get(tense, ("ist", "sind"))[plural]
            text = f"{_de_np(person, plural, 0)} {verb} " + (f"{time[1]} " if time else "") + (
                "nicht " if neg else "") + adj[1]
        elif sp == "en":
            be = {"past": ("was", "were"), "fut": ("will be", "will be")}.get(tense, ("is", "are"))[plural]
            text = (f"{time[1]} " if time else "") + f"{_en_np(person, plural)} {be} " + (
                "not " if neg else "") + adj[1]
        else:
            if neg and not adj[3]:
                neg, g = None, g[:-1]
            text = (time[1] if time else "") + ("那个" if r() < 0.3 else "") + person[1] + (
                "不" if neg else adj[2]) + adj[1]
        return text, g

    if kind == "activity":
        verb = lex.pick(rng, "vintr")
        place = lex.pick(rng, "place")
        g = g_time + [place[0], person[0], verb[0]] + g_neg
        if sp == "de":
            v = verb[1][(2 if tense == "past" else 0) + plural]
            np_ = _de_np(person, plural, 0)
            rest = ("nicht " if neg else "") + place[1]
            text = f"{time[1]} {v} {np_} {rest}" if time else f"{np_} {v} {rest}"
        elif sp == "en":
            text = f"{_en_np(person, plural)} {_en_vp(verb[1], tense, plural, bool(neg))} {place[1]}"
            text = _en_time(text, time, rng)
        else:
            text = (time[1] if time else "") + person[1] + ("不" if neg else "") + f"在{place[1]}{verb[1]}"
        return text, g

    # action: someone does something to something
    verb = lex.pick(rng, "vtr")
    obj = lex.pick_obj(rng, verb[0])
    g = g_time + [person[0]]
    if sp == "de":
        v = verb[1][(2 if tense == "past" else 0) + plural]
        np_ = _de_np(person, plural, 0)
        ob = _de_obj(obj, rng, definite=bool(neg))
        tail = f"{ob}" + (" nicht" if neg else "")
        text = f"{time[1]} {v} {np_} {tail}" if time else f"{np_} {v} {tail}"
        g += [obj[0], verb[0]]
    elif sp == "en":
        text = f"{_en_np(person, plural)} {_en_vp(verb[1], tense, plural, bool(neg))} {_en_obj(obj, rng)}"
        text = _en_time(text, time, rng)
        # ASL: the object is often the topic, before subject and verb
        g = g_time + ([obj[0], person[0], verb[0]] if r() < 0.5 else [person[0], verb[0], obj[0]])
    else:
        # jieba reads 不买, 会卖, 喝咖啡 as one word: Chinese action clauses are perfective
        # (verb 了 object) and never negated
        text = (time[1] if time else "") + person[1] + f"{verb[1]}了{obj[1]}"
        g += [obj[0], verb[0]]
        g_neg = []
    return text, g + g_neg


def _de_np(person, plural: bool, case: int) -> str:
    if plural:
        return f"die {person[2]}"
    return f"{_DE_ART[person[3]][case]} {person[1]}"


def _de_obj(obj, rng, definite: bool) -> str:
    if obj[1] is None or (obj[2] is not None and rng.random() < 0.3):
        return f"die {obj[2]}" if definite else obj[2]
    art = _DE_ART[obj[3] if obj[3] in _DE_ART else "n"]
    return f"{art[1] if definite or rng.random() < 0.5 else art[2]} {obj[1]}"


def _en_np(person, plural: bool) -> str:
    return f"the {person[2] if plural else person[1]}"


def _en_obj(obj, rng) -> str:
    if obj[3] == "mass" or obj[1] is None:
        return obj[1] if rng.random() < 0.5 else f"the {obj[1]}"
    if obj[2] is not None and rng.random() < 0.3:
        return obj[2]
    if rng.random() < 0.5:
        return f"the {obj[1]}"
    return ("an " if obj[1][0] in "aeiou" else "a ") + obj[1]


def _en_vp(forms, tense: str, plural: bool, neg: bool) -> str:
    base = forms[1]
    if tense == "fut":
        return f"will not {base}" if neg else f"will {base}"
    if tense == "past":
        return f"did not {base}" if neg else forms[2]
    if neg:
        return f"{'do' if plural else 'does'} not {base}"
    return forms[1] if plural else forms[0]


def _en_time(text: str, time, rng) -> str:
    if not time:
        return text
    return f"{time[1]} {text}" if rng.random() < 0.5 else f"{text} {time[1]}"


def make_sentence(lex: Lexicon, rng: np.random.Generator, n_clauses: int) -> tuple[str, list[str]]:
    """A sentence of ``n_clauses`` clauses: (text, glosses)."""
    texts, glosses = [], []
    for _ in range(n_clauses):
        kind = _FRAMES[int(rng.choice(len(_FRAMES), p=_FRAME_P))]
        t, g = _clause(lex, rng, kind)
        texts.append(t)
        glosses += g
    joiner = {"de": " und ", "en": " and ", "zh": "，"}[lex.sp]
    return joiner.join(texts), glosses


def _zh_ok(text: str, glosses: list[str]) -> bool:
    """Whether jieba segments a Chinese sentence into exactly its glosses (and function words)."""
    import jieba

    jieba.setLogLevel(60)  # no "Building prefix dict" chatter on stderr
    keys = sorted(vocab.lemma_key(g) for g in glosses)
    words = [w for w in jieba.lcut(text) if w not in vocab.FUNCTION_WORDS["zh"]]
    return sorted(words) == keys


# --- timing ---------------------------------------------------------------------------------

def _fit(parts: np.ndarray, target: int, minimum: np.ndarray) -> np.ndarray:
    """Scale integer durations to sum exactly to ``target`` (largest remainder), keeping minima."""
    x = parts * (target / max(parts.sum(), 1e-9))
    out = np.maximum(np.floor(x).astype(np.int64), minimum)
    diff = target - int(out.sum())
    order = np.argsort(-(x - np.floor(x)), kind="stable")
    i = 0
    while diff != 0 and i < 10 * len(out):
        j = order[i % len(out)]
        if diff > 0:
            out[j] += 1
            diff -= 1
        elif out[j] > minimum[j]:
            out[j] -= 1
            diff += 1
        i += 1
    return out


def _timeline(signs: list[sg.Sign], preset: Preset, speed: float, rng: np.random.Generator,
              num_frames: int | None = None, bounds: tuple[int, int] | None = None):
    """Durations of rest, transitions and signs: (durations, transitions, (rest0, rest1))."""
    dur = np.array([preset.sign_frames * s.dur * sg.MOVE_DURATION[s.move] for s in signs]) / speed
    dur *= rng.uniform(0.9, 1.1, len(signs))
    trans = np.full(len(signs) + 1, preset.transition / speed) * rng.uniform(0.8, 1.25, len(signs) + 1)
    rest = np.array([preset.rest, preset.rest]) * rng.uniform(0.7, 1.5, 2)
    parts = np.concatenate([rest[:1], np.ravel(np.column_stack([trans[:-1], dur])), trans[-1:], rest[1:]])
    minimum = np.concatenate([[0], np.ravel(np.column_stack([np.ones(len(signs)), np.full(len(signs), 2)])),
                              [1], [0]]).astype(np.int64)
    total = parts.sum()
    if num_frames is None:
        target = int(round(total))
        if bounds is not None:
            target = int(np.clip(target, *bounds))
    else:
        target = int(num_frames)
        minimum = np.minimum(minimum, 1)  # a short target may squeeze everything to a frame
        if target < minimum.sum():
            minimum[:] = 0
            minimum[2:-2:2] = 1
    out = _fit(parts, max(target, int(minimum.sum())), minimum)
    inner = out[1:-2]
    return list(inner[1::2]), list(inner[0::2]) + [int(out[-2])], (int(out[0]), int(out[-1]))


# --- poses ----------------------------------------------------------------------------------

_TRAJ_CACHE: dict[sg.Sign, np.ndarray] = {}


def _traj(sign: sg.Sign) -> np.ndarray:
    t = _TRAJ_CACHE.get(sign)
    if t is None:
        t = _TRAJ_CACHE[sign] = sg.sign_trajectory(sign)
    return t


@dataclass
class _Job:
    """One sentence to sign."""

    id: str
    text: str
    glosses: list[str]
    lang: str
    split: str
    signer: sg.Signer
    states: np.ndarray
    spans: np.ndarray
    rng: np.random.Generator


_RENDER_FRAMES = 4096  # frames per vectorised render call (larger batches fall out of the CPU cache)


def _render_jobs(jobs: list[_Job], dropout: bool) -> list[Sample]:
    """Render sentences in batches of about ``_RENDER_FRAMES`` frames (one vectorised pass each)."""
    poses: list[np.ndarray] = []
    start = 0
    while start < len(jobs):
        stop, frames = start, 0
        while stop < len(jobs) and (stop == start or frames + len(jobs[stop].states) <= _RENDER_FRAMES):
            frames += len(jobs[stop].states)
            stop += 1
        batch = jobs[start:stop]
        params = sg.RenderParams.concat([sg.RenderParams.for_sentence(j.signer, len(j.states), j.rng)
                                         for j in batch])
        flat = sg.render(np.concatenate([j.states for j in batch]), params)
        poses += np.split(flat, np.cumsum([len(j.states) for j in batch])[:-1])
        start = stop
    out = []
    for j, pose in zip(jobs, poses):
        sg.add_detector_noise(pose, j.rng)
        conf = np.ones(pose.shape[:2], dtype=np.float32)
        if dropout:
            sg.drop_hands(pose, conf, j.rng)
        out.append(Sample(id=j.id, pose=pose, confidence=conf, text=j.text, glosses=list(j.glosses),
                          lang=j.lang, signer=j.signer.name, split=j.split, gloss_spans=j.spans))
    return out


def signer_names(lang: str, n: int = NUM_SIGNERS) -> list[str]:
    return [f"{lang}{i + 1:02d}" for i in range(n)]


def _signers(lang: str, seed: int) -> list[sg.Signer]:
    # two of nine are left-handed (every fourth), the rest draw their body from the seed
    return [sg.make_signer(name, seed, left_handed=(i % 4 == 3)) for i, name in enumerate(signer_names(lang))]


def _signer_named(name: str, seed: int) -> sg.Signer:
    for lang in LANGS:
        names = signer_names(lang)
        if name in names:
            return _signers(lang, seed)[names.index(name)]
    return sg.make_signer(name, seed)


def split_sizes(n: int) -> dict[str, int]:
    """Sentences per split in PHOENIX-2014T's proportions, at least one each."""
    total = sum(PHOENIX_SPLITS.values())
    dev = max(1, round(n * PHOENIX_SPLITS["dev"] / total))
    test = max(1, round(n * PHOENIX_SPLITS["test"] / total))
    return {"train": max(1, n - dev - test), "dev": dev, "test": test}


def _preset(preset: str) -> Preset:
    if preset not in PRESETS:
        raise SlpError(f"unknown preset '{preset}'; known: {', '.join(PRESETS)}")
    return PRESETS[preset]


def check_langs(langs: Iterable[str]) -> tuple[str, ...]:
    langs = tuple(langs)
    unknown = [x for x in langs if x not in SPOKEN]
    if unknown or not langs:
        raise SlpError(f"unknown language(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(LANGS)}")
    return langs


def iter_synthesize(langs: Iterable[str] = LANGS, preset: str = "demo", sentences: int | None = None,
                    seed: int = 0, heldout_signers: int = 0, dropout: bool = True,
                    chunk: int = 256) -> Iterator[list[Sample]]:
    """Like :func:`synthesize`, in chunks of up to ``chunk`` samples (bounded memory)."""
    langs = check_langs(langs)
    p = _preset(preset)
    n = p.sentences if sentences is None else int(sentences)
    if n < 1:
        raise SlpError(f"--sentences must be at least 1 (got {n})")
    if not 0 <= heldout_signers < NUM_SIGNERS:
        raise SlpError(f"--heldout-signers must be between 0 and {NUM_SIGNERS - 1} (got {heldout_signers})")
    sizes = split_sizes(n) if n >= 3 else {"train": n, "dev": 0, "test": 0}
    if preset == "benchmark" and sentences is None:
        sizes = dict(PHOENIX_SPLITS)
    splits = [s for s, k in sizes.items() for _ in range(k)]
    for lang in langs:
        lex = Lexicon(lang, p.glosses, p.senses, seed)
        check_zh = lex.sp == "zh" and bool(lex.tail)
        signers = _signers(lang, seed)
        seen_w = 1.0 / (1.0 + 0.3 * np.arange(NUM_SIGNERS))  # some signers sign more than others
        pools = {"seen": list(range(NUM_SIGNERS - heldout_signers)),
                 "held": list(range(NUM_SIGNERS - heldout_signers, NUM_SIGNERS))}
        texts: set[str] = set()
        jobs: list[_Job] = []
        for i, split in enumerate(splits):
            rng = np.random.default_rng([seed, zlib.crc32(lang.encode()), i])
            for _attempt in range(20):  # distinct sentences, like a real corpus
                k = 1 + min(int(rng.poisson(p.clauses - 1)), p.max_clauses - 1)
                text, glosses = make_sentence(lex, rng, k)
                if text not in texts and (not check_zh or _zh_ok(text, glosses)):
                    break
            texts.add(text)
            pool = pools["held"] if (heldout_signers and split == "test") else pools["seen"]
            w = seen_w[pool] / seen_w[pool].sum()
            person = signers[pool[int(rng.choice(len(pool), p=w))]]
            speed = person.speed * rng.uniform(0.9, 1.1)
            signs = [lex.signs[g] for g in glosses]
            durs, trans, rest = _timeline(signs, p, speed, rng, bounds=p.frames)
            states, spans = sg.compose([_traj(s) for s in signs], durs, trans, rest, person, rng)
            jobs.append(_Job(f"{lang}-{split}-{i:05d}", text, glosses, lang, split, person, states, spans, rng))
            if len(jobs) == chunk:
                yield _render_jobs(jobs, dropout)
                jobs = []
        if jobs:
            yield _render_jobs(jobs, dropout)


def synthesize(langs: Iterable[str] = LANGS, preset: str = "demo", sentences: int | None = None, seed: int = 0,
               heldout_signers: int = 0, dropout: bool = True) -> list[Sample]:
    """A synthetic corpus: ``sentences`` (default: the preset's) sentences per language.

    ``heldout_signers`` K > 0 reserves the last K of the 9 signers of each language for the test
    split (train and dev never see them). ``dropout`` adds short hand-detection dropouts.
    """
    return [s for chunk in iter_synthesize(langs, preset, sentences, seed, heldout_signers, dropout) for s in chunk]


# --- annotations ----------------------------------------------------------------------------

def read_annotations(path: str | Path) -> list[dict]:
    """Records of a JSONL file: one object per line with ``id``, ``glosses`` (list or
    space-separated string), optional ``text``, ``lang``, ``split``, ``signer``, ``num_frames``
    and ``labels`` (the gloss of every frame, null for transitions and rest)."""
    path = Path(path)
    if not path.is_file():
        raise SlpError(f"{path}: annotations file not found")
    records = []
    with open(path, encoding="utf-8-sig") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise SlpError(f"{where}: not valid JSON ({e.msg}); write one JSON object per line") from None
            records.append(_check_record(rec, where))
    if not records:
        raise SlpError(f"{path}: no annotation records; write one JSON object per line")
    return records


def _check_record(rec, where: str) -> dict:
    if not isinstance(rec, dict):
        raise SlpError(f"{where}: expected a JSON object with id and glosses, got {type(rec).__name__}")
    rid = rec.get("id")
    if not isinstance(rid, str) or not rid.strip():
        raise SlpError(f"{where}: missing or empty 'id'; give every record a unique string id")
    glosses = rec.get("glosses")
    if isinstance(glosses, str):
        glosses = glosses.split()
    if not isinstance(glosses, list) or not glosses or not all(isinstance(g, str) and g.strip() for g in glosses):
        raise SlpError(f"{where}: record '{rid}' has no 'glosses' (a list or a space-separated string)")
    out = {**rec, "id": rid, "glosses": [g.strip() for g in glosses], "_where": where}
    nf = rec.get("num_frames")
    if nf is not None and (not isinstance(nf, int) or isinstance(nf, bool) or nf < 1):
        raise SlpError(f"{where}: record '{rid}': 'num_frames' must be a positive integer, got {nf!r}")
    if nf is not None and nf < len(out["glosses"]):
        raise SlpError(f"{where}: record '{rid}': num_frames={nf} is fewer than its {len(out['glosses'])} glosses")
    labels = rec.get("labels")
    if labels is not None:
        if not isinstance(labels, list) or not all(x is None or isinstance(x, str) for x in labels) or not labels:
            raise SlpError(f"{where}: record '{rid}': 'labels' must be a list of gloss names or null, one per frame")
        if nf is not None and len(labels) != nf:
            raise SlpError(f"{where}: record '{rid}': {len(labels)} labels for num_frames={nf}; "
                           "give one label per frame")
        runs = _label_runs(labels)
        if [g for g, _, _ in runs] != out["glosses"]:
            raise SlpError(f"{where}: record '{rid}': the labels give the glosses {[g for g, _, _ in runs]} "
                           f"but 'glosses' is {out['glosses']}; make them agree")
    return out


def _label_runs(labels: list) -> list[tuple[str, int, int]]:
    """Runs of equal non-null labels: (gloss, start, end)."""
    runs = []
    for t, lab in enumerate(labels):
        if lab is None:
            continue
        if runs and runs[-1][0] == lab and runs[-1][2] == t:
            runs[-1] = (lab, runs[-1][1], t + 1)
        else:
            runs.append((lab, t, t + 1))
    return runs


def synthesize_annotations(records: list[dict], seed: int = 0, dropout: bool = True) -> list[Sample]:
    """Sign given records (see :func:`read_annotations`) instead of the corpus' own sentences.

    Glosses of the embedded word lists (vocab.py) of the record's language keep their sign, and
    a signer named like the corpus' own (``dgs04``) is that person; every other gloss gets a
    procedural sign from a hash of its name and the seed. Spans come from the
    per-frame ``labels`` when given; otherwise the signing is stretched to ``num_frames``.
    """
    p = PRESETS["demo"]
    jobs: list[_Job] = []
    ids: set[str] = set()
    for i, raw in enumerate(records):
        rec = _check_record(raw, raw.get("_where", f"record {i + 1}") if isinstance(raw, dict) else f"record {i + 1}")
        if rec["id"] in ids:
            raise SlpError(f"{rec['_where']}: duplicate id '{rec['id']}'")
        ids.add(rec["id"])
        lang = str(rec.get("lang", ""))
        known = (vocabulary_signs(SPOKEN[lang], seed, _curated_glosses(SPOKEN[lang]))
                 if lang in SPOKEN else {})
        signs = [known.get(g) or sg.hashed_sign(g, seed) for g in rec["glosses"]]
        name = str(rec.get("signer") or f"{lang or 'synth'}01")
        person = _signer_named(name, seed)
        rng = np.random.default_rng([seed, zlib.crc32(rec["id"].encode("utf-8")), 5])
        labels = rec.get("labels")
        if labels is not None:
            runs = _label_runs(labels)
            durs = [e - s for _, s, e in runs]
            gaps = ([runs[0][1]] + [runs[k + 1][1] - runs[k][2] for k in range(len(runs) - 1)]
                    + [len(labels) - runs[-1][2]])
            lead, tail = min(gaps[0], 4), min(gaps[-1], 4)
            trans = [lead] + gaps[1:-1] + [tail]
            rest = (gaps[0] - lead, gaps[-1] - tail)
        else:
            durs, trans, rest = _timeline(signs, p, person.speed, rng, num_frames=rec.get("num_frames"))
        states, spans = sg.compose([_traj(s) for s in signs], durs, trans, rest, person, rng)
        jobs.append(_Job(rec["id"], str(rec.get("text", "")), rec["glosses"], lang, str(rec.get("split", "train")),
                         person, states, spans, rng))
    return _render_jobs(jobs, dropout)


# --- manual alphabet -----------------------------------------------------------------------

# The synthetic signer's manual alphabet (`slp synth --alphabet`), for fingerspelling unknown
# words (`slp dict build --alphabet`): one-handed letters held in front of the dominant
# shoulder. Letter -> (gloss, handshape, orientation index, movement). A letter takes the
# handshape of its name where the procedural hand has one; the others are a distinct
# handshape/orientation/movement each, not the real DGS or ASL letters (which the procedural
# hand cannot all form). DGS adds Ä, Ö, Ü, ß and SCH to the 26 letters ASL uses.
_LATIN = {
    "a": ("A", "A", 0, "hold"), "b": ("B", "B", 0, "hold"), "c": ("C", "C", 4, "hold"),
    "d": ("D", "1", 0, "hold"), "e": ("E", "E", 0, "hold"), "f": ("F", "F", 0, "hold"),
    "g": ("G", "1", 8, "hold"), "h": ("H", "H", 8, "hold"), "i": ("I", "I", 0, "hold"),
    "j": ("J", "I", 0, "twist"), "k": ("K", "K", 0, "hold"), "l": ("L", "L", 0, "hold"),
    "m": ("M", "3", 3, "hold"), "n": ("N", "H", 3, "hold"), "o": ("O", "O", 4, "hold"),
    "p": ("P", "K", 3, "hold"), "q": ("Q", "O-baby", 3, "hold"), "r": ("R", "V-bent", 0, "hold"),
    "s": ("S", "S", 0, "hold"), "t": ("T", "X", 4, "hold"), "u": ("U", "H", 0, "hold"),
    "v": ("V", "V", 0, "hold"), "w": ("W", "W", 0, "hold"), "x": ("X", "X", 0, "hold"),
    "y": ("Y", "Y", 0, "hold"), "z": ("Z", "1", 0, "arc"),
}
ALPHABETS = {
    "dgs": {**_LATIN, "ä": ("AE", "A", 0, "twist"), "ö": ("OE", "O", 4, "twist"), "ü": ("UE", "H", 0, "twist"),
            "ß": ("SZ", "S", 0, "arc"), "sch": ("SCH", "5-claw", 0, "hold")},
    "asl": dict(_LATIN),
}
_SPELLING_PLACE = "neutral-high"


def letter_sign(shape: str, orient: int, move: str) -> sg.Sign:
    """A one-handed letter held (or briefly moved) in front of the dominant shoulder."""
    shape_i = sg.HANDSHAPES.index(shape)
    return sg.Sign(shape=shape_i, shape_end=shape_i, orient=orient, loc=sg.LOCATION_NAMES.index(_SPELLING_PLACE),
                   move=sg.MOVEMENTS.index(move), direction=3, hands=0, base_shape=sg.BASE_SHAPES[0], face=0,
                   amp=0.12, dur=0.85)


def synthesize_alphabet(langs: Iterable[str] = LANGS, seed: int = 0, dropout: bool = False) -> list[Sample]:
    """One sample per letter of each language's manual alphabet (:data:`ALPHABETS`; languages
    without one are left out), signed by the language's first signer (``dgs01``, the signer of
    annotations without one) between rests: id ``dgs-letter-a``, text the letter, glosses its
    name, gloss_spans the letter."""
    p = PRESETS["demo"]
    jobs: list[_Job] = []
    for lang in check_langs(langs):
        person = _signer_named(f"{lang}01", seed)
        for letter, (gloss, shape, orient, move) in ALPHABETS.get(lang, {}).items():
            sign = letter_sign(shape, orient, move)
            rng = np.random.default_rng([seed, zlib.crc32(f"{lang}:{letter}".encode("utf-8")), 11])
            durs, trans, rest = _timeline([sign], p, person.speed, rng)
            states, spans = sg.compose([_traj(sign)], durs, trans, rest, person, rng)
            jobs.append(_Job(f"{lang}-letter-{letter}", letter, [gloss], lang, "train", person, states, spans, rng))
    return _render_jobs(jobs, dropout)


# --- the stage ------------------------------------------------------------------------------

def run(output: Path, langs: Iterable[str] = LANGS, preset: str = "demo", sentences: int | None = None,
        seed: int = 0, annotations: Path | None = None, heldout_signers: int = 0, dropout: bool = True,
        progress: Progress = SILENT, alphabet: bool = False) -> Path:
    """Write a synthetic corpus (or the poses of ``annotations``, or with ``alphabet`` the manual
    alphabets of ``langs``) to ``output`` atomically."""
    refuse_overwriting([output], [annotations])
    output = Path(output)
    args = dict(langs=list(langs), preset=preset, sentences=sentences, seed=seed,
                annotations=annotations, heldout_signers=heldout_signers, dropout=dropout)
    if alphabet:
        if annotations is not None:
            raise SlpError("--alphabet writes the letters only; give it without --annotations")
        letters = synthesize_alphabet(langs, seed, dropout=False)
        if not letters:
            raise SlpError(f"no manual alphabet for {', '.join(langs)}; the synthetic signer spells "
                           f"{', '.join(ALPHABETS)}")
        args = dict(langs=list(langs), seed=seed, alphabet=True)
        chunks: Iterable[list[Sample]] = [letters]
    elif annotations is not None:
        chunks = [synthesize_annotations(read_annotations(annotations), seed, dropout)]
    else:
        check_langs(langs)
        _preset(preset)
        chunks = iter_synthesize(langs, preset, sentences, seed, heldout_signers, dropout)
    with ArtifactWriter(output, fps=FPS, normalized=False,
                        provenance=provenance("synth", args, [annotations] if annotations else [])) as w, \
            progress.task("signing sentences") as task:
        for chunk in chunks:
            w.extend(chunk)
            task.advance(len(chunk))
    return output
