"""Text -> signing poses: one entry point over registered generation methods.

``generate(requests, method=...)`` dispatches to a method registered with :func:`register_method`
(a factory taking the method's options and returning a :class:`Generator`). There are ``concat``,
the dictionary-concatenation baseline, and ``model``, any trained text-to-pose generator
(:class:`~slp_cli.models.TextToPose`, `slp train generator --arch NAME`) that signs
``batch_size`` sentences per forward pass on its device; batch reading, skipping, unknown-word
reports and artifact writing are shared. Every generator signs a chunk of ``batch_size``
requests at a time (:meth:`Generator.sign`).

``concat`` is what spoken-to-signed-translation does (text -> lemmas -> lexicon clips -> joined
poses). Each word of the text is matched against the dictionary of ``slp dict build``, the
first rule that finds something winning (``Report.matched_by`` counts them):

1. a phrase of the dictionary (lexicon entries can be phrases), longest first;
2. the dictionary's word -> gloss table, learnt from the text/gloss pairs of its corpus (it also
   knows which words the corpus leaves unsigned; a function word takes only its own sign there);
3. the word itself, folded like a gloss key (case, umlauts as ae/oe/ue, ß as ss, hyphens:
   ``Überschwemmung`` meets UEBERSCHWEMMUNG, ``Nord-West`` NORDWEST);
4. a function word (article, preposition, auxiliary... see ``slp_cli.text.lemmas``) with no
   entry of its own is skipped, before any rule that could misread it (``ist`` -> sein);
5. its lemma (simplemma);
6. a prefix or compound of known keys that are not function words (``norden`` -> NORD + an
   ending, ``regenschauer`` -> REGEN SCHAUER, with German linking elements);
7. where the dictionary has a manual alphabet, the word is fingerspelled letter by letter (the
   last letter held twice as long, as spoken-to-signed-translation does) and glossed
   ``fs-WORD``; otherwise it is reported as unknown, never silently dropped.

Punctuation is a pause: the last frame before it is held ``pause_frames`` frames (0.2 s by
default), outside any gloss span. Clips are joined by transitions that interpolate from each
joint's last seen position in one clip to its first seen position in the next with a cosine
ease-in-out over ``transition_frames`` frames; a joint missing at either end stays missing
(NaN) through the transition. The sentence starts and ends with the language's rest pose held
``rest_frames`` frames (and a transition to and from it), when the dictionary has one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol

import numpy as np

from .artifacts import Sample, load, provenance, save
from .atomic import refuse_overwriting
from .dictionary import Dictionary, load_dictionary
from .errors import SlpError
from .interop.pose_format import resample
from .progress import SILENT, Progress
from .text.lemmas import (fold, is_function_word, is_pause, lemma_key, match_key, spoken_language,
                          split_compound, tokenize, tokens, word_key)

# Defaults, in seconds so they hold at any frame rate: short co-articulation transitions, and a
# brief rest at both ends (real and synthetic recordings start and end with the hands down).
# Measured on the synthetic `demo` corpus (test split, DTW-MJE): rest 0.16 s lowers the error
# from 0.165 to 0.118; transitions of 0.12 s keep the duration ratio near 1 (0.97).
TRANSITION_SECONDS = 0.12
REST_SECONDS = 0.16
# A pause at punctuation: a short hold, a prosodic boundary (our choice; no paper fixes it).
PAUSE_SECONDS = 0.2
FINGERSPELLED = "fs-"  # gloss prefix of a fingerspelled word (fs-NORA), as ASL glossing writes it
GENERATED_SPLIT = "generated"  # split of sentences typed or read from a text file


@dataclass
class Request:
    """One sentence to sign."""

    id: str
    text: str
    lang: str
    split: str = GENERATED_SPLIT


@dataclass
class Report:
    """What a method made of one sentence."""

    words: list[str] = field(default_factory=list)           # the tokens of the text
    signed: list[tuple[str, str]] = field(default_factory=list)  # (word or phrase, gloss) in order
    function_words: list[str] = field(default_factory=list)  # skipped: no sign of their own
    unknown: list[str] = field(default_factory=list)         # no sign: not signed at all
    fingerspelled: list[str] = field(default_factory=list)   # no entry: spelled with the alphabet
    matched_by: dict[str, int] = field(default_factory=dict)  # rule -> words it found (concat)
    spans: list[tuple[int, int]] = field(default_factory=list)  # output frames [start, end) per gloss
    pauses: list[tuple[int, int]] = field(default_factory=list)  # output frames of each pause
    # concat's plan, in order: ("sign", gloss), ("spell", word, letters), ("pause", mark)
    steps: list[tuple] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # what a model reports besides (keywords, durations...)

    @property
    def glosses(self) -> list[str]:
        return [g for _, g in self.signed]

    def to_json(self) -> dict:
        """What goes into the generated sample's ``report`` (the glosses and spans have fields
        of their own)."""
        # (a model's glosses come without the words they sign: those are in the sample's glosses)
        out = {"signed": [list(x) for x in self.signed if x[0]], "function_words": self.function_words,
               "unknown": self.unknown, "fingerspelled": self.fingerspelled, "matched_by": self.matched_by,
               "pauses": [list(x) for x in self.pauses], **self.extra}
        return {k: v for k, v in out.items() if v}


class Generator(Protocol):
    """A generation method, ready to sign sentences (see :func:`register_method`)."""

    fps: float
    normalized: bool
    normalization: str
    langs: list[str]  # the sign languages it can sign
    batch_size: int  # requests per call of sign
    method: str  # the registered method's name
    label: str  # what to call it in a table (e.g. the model's architecture)

    def sign(self, requests: list[Request]) -> list[tuple[np.ndarray, Report] | SlpError]:
        """(poses, report) per request, or the SlpError saying why it could not be signed."""
        ...

    def describe(self) -> dict: ...  # options and inputs, for provenance


METHODS: dict[str, Callable[..., Generator]] = {}


def register_method(name: str):
    """Register a factory ``f(**options) -> Generator`` under ``name`` (``slp generate --method``)."""
    def deco(factory):
        METHODS[name] = factory
        return factory
    return deco


# --- joining clips ----------------------------------------------------------------------------

def ease(t: np.ndarray) -> np.ndarray:
    """Cosine ease-in-out on [0, 1]: zero velocity at both ends."""
    return 0.5 - 0.5 * np.cos(np.pi * np.asarray(t, dtype=np.float64))


def _edge(pose: np.ndarray, last: bool) -> np.ndarray:
    """(K, 3): each joint's last (or first) finite position in the clip, NaN if never seen."""
    seq = pose[::-1] if last else pose
    ok = np.isfinite(seq).all(-1)
    out = seq[ok.argmax(0), np.arange(seq.shape[1])].astype(np.float32)
    out[~ok.any(0)] = np.nan
    return out


def transition(a: np.ndarray, b: np.ndarray, frames: int) -> np.ndarray:
    """``frames`` in-between frames from clip ``a``'s end to clip ``b``'s start (ends excluded)."""
    start, end = _edge(a, last=True), _edge(b, last=False)
    w = ease(np.arange(1, frames + 1) / (frames + 1))[:, None, None]
    return (start + (end - start) * w).astype(np.float32)


def join(clips: list[np.ndarray], transition_frames: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Concatenate clips with transitions between them; also each clip's [start, end) frames."""
    parts, spans, t = [], [], 0
    for i, c in enumerate(clips):
        if i and transition_frames > 0:
            parts.append(transition(clips[i - 1], c, transition_frames))
            t += transition_frames
        parts.append(np.asarray(c, dtype=np.float32))
        spans.append((t, t + len(c)))
        t += len(c)
    return np.concatenate(parts), spans


# --- the concat method ------------------------------------------------------------------------

def _word_glosses(word: str, lang: str, dictionary: Dictionary) -> tuple[str, list[str]] | None:
    """(rule, glosses) for one word by rules 2-6 of the module docstring; no glosses for a word
    without a sign of its own; None when nothing matches."""
    key = match_key(word)
    learnt = dictionary.learnt(lang, key)
    if learnt and is_function_word(word, lang) and match_key(lemma_key(learnt)) not in (key, word_key(word, lang)):
        learnt = ""  # a function word stands for no other word's sign (war -> GESTERN, seen beside gestern)
    if learnt is not None:
        return "table", [learnt] if learnt else []
    entry = dictionary.lookup(lang, key)
    if entry is not None:
        return "surface", [entry.glosses[0]]
    if is_function_word(word, lang):
        return "function word", []
    entry = dictionary.lookup(lang, word_key(word, lang))
    if entry is not None:
        return "lemma", [entry.glosses[0]]

    def gloss_of(part: str) -> str | None:  # a part that is a function word (mit|unter, sch|ein) is no sign
        entry = None if is_function_word(part, lang) else dictionary.lookup(lang, part)
        return dictionary.learnt(lang, part) or (entry.glosses[0] if entry is not None else None)

    parts = split_compound(key, gloss_of, lang)
    if parts:
        return ("prefix" if len(parts) == 1 else "compound"), [gloss_of(p) for p in parts]
    return None


def spell(word: str, letters: dict) -> list[str] | None:
    """The letters (keys of ``letters``) that spell ``word``, longest letter groups first (sch
    before s); a letter the alphabet lacks is spelt as it folds (ä -> ae), hyphens and
    apostrophes are not spelt. None if a character cannot be spelt."""
    word = word.lower()
    longest = max((len(k) for k in letters), default=0)
    out, i = [], 0
    while i < len(word):
        n = next((n for n in range(min(longest, len(word) - i), 0, -1) if word[i:i + n] in letters), 0)
        if n:
            out.append(word[i:i + n])
        elif word[i].isalnum():
            folded = fold(word[i])
            if folded == word[i] or not all(c in letters for c in folded):
                return None
            out += list(folded)
        i += max(n, 1)
    return out or None


def match_words(toks: list[str], lang: str, dictionary: Dictionary, *, fingerspell: bool = True) -> Report:
    """Match the words and pause marks of :func:`~slp_cli.text.lemmas.tokens` to dictionary
    entries (the rules of the module docstring); ``fingerspell`` uses the dictionary's manual
    alphabet, if it has one, for the words nothing else finds."""
    words = [t for t in toks if not is_pause(t)]
    report = Report(words=words)
    longest = dictionary.max_words(lang)
    keys = [None if is_pause(t) else word_key(t, lang) for t in toks] if longest > 1 else []
    letters = dictionary.letters(lang) if fingerspell else {}
    rules: Counter = Counter()
    i = 0
    while i < len(toks):
        word = toks[i]
        if is_pause(word):
            if report.steps and report.steps[-1][0] != "pause":
                report.steps.append(("pause", word))
            i += 1
            continue
        for n in range(min(longest, len(toks) - i), 1, -1):  # 1. phrases
            if any(k is None for k in keys[i:i + n]):
                continue
            phrase = toks[i:i + n]
            entry = (dictionary.lookup(lang, " ".join(keys[i:i + n]))
                     or dictionary.lookup(lang, " ".join(match_key(w) for w in phrase)))
            if entry is not None:
                report.signed.append((" ".join(phrase), entry.glosses[0]))
                report.steps.append(("sign", entry.glosses[0]))
                rules["phrase"] += 1
                i += n
                break
        else:
            found = _word_glosses(word, lang, dictionary)
            letters_of = spell(word, letters) if found is None and letters else None
            if found is not None:
                rule, glosses = found
                rules[rule] += 1
                if not glosses:
                    report.function_words.append(word)
                for g in glosses:
                    report.signed.append((word, g))
                    report.steps.append(("sign", g))
            elif letters_of:
                rules["fingerspelled"] += 1
                report.fingerspelled.append(word)
                report.signed.append((word, FINGERSPELLED + match_key(word).upper()))
                report.steps.append(("spell", word, letters_of))
            else:
                report.unknown.append(word)
            i += 1
    report.matched_by = dict(rules)
    return report


def _clips(report: Report, lang: str, dictionary: Dictionary, pause_frames: int
           ) -> tuple[list[np.ndarray], list[int], list[int]]:
    """The clips of a report's plan, each with the number of its frames that are a pause hold
    appended to it, and the gloss it belongs to (a fingerspelled word's letters share one)."""
    clips: list[np.ndarray] = []
    holds: list[int] = []
    owner: list[int] = []
    letters = dictionary.letters(lang)
    gloss = -1
    for step in report.steps:
        if step[0] == "pause":
            if clips and pause_frames > 0:
                clips[-1] = np.concatenate([clips[-1], np.repeat(_edge(clips[-1], last=True)[None], pause_frames, 0)])
                holds[-1] += pause_frames
            continue
        gloss += 1
        if step[0] == "sign":
            parts = [dictionary.by_gloss(lang, step[1]).pose]
        else:  # spell: the letters, the last one held twice as long
            parts = [letters[x].pose for x in step[2]]
            parts[-1] = resample(parts[-1], np.isfinite(parts[-1]).all(-1).astype(np.float32), 1.0, 2.0)[0]
        for part in parts:
            clips.append(np.asarray(part, dtype=np.float32))
            holds.append(0)
            owner.append(gloss)
    return clips, holds, owner


def gloss_plan(words: list[str], glosses: list[str], lang: str, dictionary: Dictionary) -> Report:
    """The plan of a gloss sequence from a text-to-gloss model: every gloss the dictionary has is
    signed in order, the others are reported as unknown (glosses, not words, then)."""
    report = Report(words=words)
    for g in glosses:
        if dictionary.by_gloss(lang, g) is not None:
            report.signed.append(("", g))
            report.steps.append(("sign", g))
        else:
            report.unknown.append(g)
    report.matched_by = {"glosser": len(report.signed)} if report.signed else {}
    report.extra["glosser_glosses"] = list(glosses)
    return report


def concat(text: str, lang: str, dictionary: Dictionary, *, transition_frames: int | None = None,
           fps: float | None = None, rest_frames: int | None = None, pause_frames: int | None = None,
           fingerspell: bool = True, glosses: list[str] | None = None) -> tuple[np.ndarray, Report]:
    """Sign ``text`` by concatenating dictionary clips: (pose (T, K, 3), report).

    ``glosses`` (the text's glosses from a text-to-gloss model) replaces the word-by-word matching:
    those glosses are looked up (:func:`gloss_plan`), the ones the dictionary lacks reported as
    unknown.

    ``transition_frames``, ``rest_frames`` and ``pause_frames`` default to
    :data:`TRANSITION_SECONDS`, :data:`REST_SECONDS` and :data:`PAUSE_SECONDS` at ``fps`` (the
    dictionary's frame rate by default); 0 turns them off. T = sum of clip lengths + transitions
    between them + pauses (+ 2 x (rest_frames + transition_frames) when a rest pose is used).
    ``fingerspell`` spells unknown words where the dictionary has an alphabet. SlpError for empty
    text, an unknown language, a language the dictionary lacks, or a text none of whose words
    has a sign.
    """
    spoken_language(lang)  # unknown language -> SlpError
    if not (text or "").strip():
        raise SlpError("empty text: give a sentence to sign")
    if lang not in dictionary.langs:
        raise SlpError(f"{dictionary.path or 'dictionary'}: no entries for language {lang!r} "
                       f"(it has {', '.join(dictionary.langs) or 'none'}); pick --lang or another dictionary")
    toks = tokens(text, lang)
    if not any(not is_pause(t) for t in toks):
        raise SlpError(f"text {text!r} has no words (only punctuation or spaces)")
    if glosses is not None:
        report = gloss_plan([t for t in toks if not is_pause(t)], glosses, lang, dictionary)
        if not report.signed:
            raise SlpError(f"no gloss the glosser gives for {text!r} is in the dictionary (glosses: "
                           f"{' '.join(glosses) or 'none'})")
    else:
        report = match_words(toks, lang, dictionary, fingerspell=fingerspell)
    if not report.signed:
        raise SlpError(f"no word of {text!r} is in the dictionary (unknown: {', '.join(report.unknown) or 'none'}; "
                       f"function words: {', '.join(report.function_words) or 'none'})")
    fps = fps or dictionary.fps
    m = round(TRANSITION_SECONDS * fps) if transition_frames is None else int(transition_frames)
    rest_frames = round(REST_SECONDS * fps) if rest_frames is None else int(rest_frames)
    pause_frames = round(PAUSE_SECONDS * fps) if pause_frames is None else int(pause_frames)
    clips, holds, owner = _clips(report, lang, dictionary, pause_frames)
    rest = dictionary.rest(lang) if rest_frames > 0 else None
    if rest is not None:
        held = np.repeat(rest, rest_frames, axis=0)
        clips, holds = [held] + clips + [held], [0] + holds + [0]
    pose, spans = join(clips, m)
    if rest is not None:
        spans = spans[1:-1]
        holds = holds[1:-1]
    report.spans = [(min(a for (a, _), o in zip(spans, owner) if o == g),
                     max(b - h for (_, b), h, o in zip(spans, holds, owner) if o == g))
                    for g in range(owner[-1] + 1)]
    report.pauses = [(b - h, b) for (_, b), h in zip(spans, holds) if h]
    return pose, report


@register_method("concat")
class ConcatGenerator:
    """The dictionary-concatenation baseline as a registered method. With ``glosser`` (a
    text-to-gloss model's run directory, `slp train text2gloss`) the text is first translated
    into glosses (``batch_size`` sentences at a time, ``beam`` search), which are then looked up;
    without it, each word is matched by the rules of the module docstring."""

    batch_size = 1
    method, label = "concat", "dictionary concatenation"

    def __init__(self, dictionary: str | Path | Dictionary, transition_frames: int | None = None,
                 rest_frames: int | None = None, pause_frames: int | None = None, fingerspell: bool = True,
                 glosser: str | Path | None = None, beam: int = 1, device: str = "cpu"):
        self.dictionary = dictionary if isinstance(dictionary, Dictionary) else load_dictionary(dictionary)
        self.fps = self.dictionary.fps
        self.langs = list(self.dictionary.langs)
        self.glosser_path, self.glosser, self.beam = glosser, None, beam
        if glosser is not None:
            from .text2gloss import load_glosser

            self.glosser = load_glosser(glosser, device)
            self.langs = [lang for lang in self.langs if not self.glosser.langs or lang in self.glosser.langs]
            if not self.langs:
                raise SlpError(f"{glosser}: the glosser knows {', '.join(self.glosser.langs)}, the dictionary "
                               f"{', '.join(self.dictionary.langs)}: no language in common")
            self.batch_size = 32
            self.label = "dictionary concatenation + glosser"
        self.normalized = self.dictionary.normalized
        self.normalization = self.dictionary.normalization
        self.transition_frames = transition_frames
        self.rest_frames = rest_frames
        self.pause_frames = pause_frames
        self.fingerspell = fingerspell

    def __call__(self, request: Request, glosses: list[str] | None = None) -> tuple[np.ndarray, Report]:
        pose, report = concat(request.text, request.lang, self.dictionary, transition_frames=self.transition_frames,
                              rest_frames=self.rest_frames, pause_frames=self.pause_frames,
                              fingerspell=self.fingerspell, glosses=glosses)
        if glosses is not None:
            report.extra["glosser"] = str(self.glosser_path)
        return pose, report

    def _glosses(self, requests: list[Request]) -> list[list[str] | SlpError | None]:
        """The glosser's glosses of each request (one batch), or the SlpError saying why not;
        None for every request without a glosser."""
        if self.glosser is None:
            return [None] * len(requests)
        from .text2gloss import gloss_each

        out: list = [None] * len(requests)
        for i, req in enumerate(requests):
            try:
                spoken_language(req.lang)
                if req.lang not in self.langs:
                    raise SlpError(f"no glosser and dictionary entries for language {req.lang!r} (they share "
                                   f"{', '.join(self.langs)})")
            except SlpError as e:
                out[i] = e
        todo = [i for i, x in enumerate(out) if x is None]
        for i, g in zip(todo, gloss_each(self.glosser, [requests[i].text for i in todo],
                                         [requests[i].lang for i in todo], self.beam)):
            out[i] = g
        return out

    def sign(self, requests: list[Request]) -> list:
        out = []
        for req, glosses in zip(requests, self._glosses(requests)):
            if isinstance(glosses, SlpError):
                out.append(glosses)
                continue
            try:
                out.append(self(req, glosses))
            except SlpError as e:
                out.append(e)
        return out

    def describe(self) -> dict:
        out = {"dictionary": str(self.dictionary.path or ""), "transition_frames": self.transition_frames,
               "rest_frames": self.rest_frames, "pause_frames": self.pause_frames, "fingerspell": self.fingerspell}
        if self.glosser is not None:
            out.update(glosser=str(self.glosser_path), beam=self.beam)
        return out


# --- trained models ---------------------------------------------------------------------------

@register_method("model")
class ModelGenerator:
    """A trained text-to-pose generator (:class:`~slp_cli.models.TextToPose`, from `slp train
    generator --arch NAME`), loaded from its run directory; ``options`` are the model's own
    generation options (its ``GenerateOptions``, e.g. A2V-SLP's ``sample`` and ``frames``), and
    ``seed`` seeds any sampling."""

    method = "model"

    def __init__(self, model: str | Path, device: str = "auto", batch_size: int = 32, seed: int = 0, **options):
        import torch

        from .device import resolve_device
        from .models import TextToPose, load_model

        if batch_size < 1:
            raise SlpError(f"--batch-size must be at least 1 (got {batch_size})")
        self.path = Path(model)
        self.model = load_model(self.path, expect=TextToPose)
        self.options = self.model.make_options(options)
        self.device = resolve_device(device)
        self.model.to(self.device)
        self.batch_size, self.seed = batch_size, seed
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.fps, self.normalization, self.langs = self.model.fps, self.model.normalization, self.model.langs
        self.label = self.model.name
        self.normalized = bool(self.model.data.get("normalized", bool(self.normalization)))
        if not self.fps:
            raise SlpError(f"{model}: the frame rate of this model's poses is unknown; train it again")

    def sign(self, requests: list[Request]) -> list[tuple[np.ndarray, Report] | SlpError]:
        """Sign the usable requests in one batch; an unusable one gets its SlpError."""
        texts, langs, out = [], [], {}
        for i, req in enumerate(requests):
            try:
                spoken_language(req.lang)
                texts.append(req.text)
                langs.append(req.lang)
                out[i] = None
            except SlpError as e:
                out[i] = e
        todo = [i for i, v in out.items() if v is None]
        for i, signed in zip(todo, self.model.sign(texts, langs, self.options, self.generator)):
            if isinstance(signed, SlpError):
                out[i] = signed
                continue
            req = requests[i]
            spans = [] if signed.gloss_spans is None else [tuple(map(int, x)) for x in signed.gloss_spans]
            out[i] = (signed.pose, Report(words=tokenize(req.text, req.lang), signed=[("", g) for g in signed.glosses],
                                          unknown=list(signed.unknown), spans=spans, extra=dict(signed.report)))
        return [out[i] for i in range(len(requests))]

    def describe(self) -> dict:
        import dataclasses

        return {"model": str(self.path), "architecture": self.model.name, "device": str(self.device),
                "seed": self.seed, **dataclasses.asdict(self.options)}


# --- batch ------------------------------------------------------------------------------------

@dataclass
class Result:
    """Output of :func:`generate`: samples in request order, their reports, skipped requests."""

    samples: list[Sample]
    reports: dict[str, Report]
    skipped: list[dict]
    generator: Generator

    def summary(self, top: int = 10) -> dict:
        unknown = Counter(w for r in self.reports.values() for w in r.unknown)
        spelled = Counter(w for r in self.reports.values() for w in r.fingerspelled)
        return {
            "sentences": len(self.samples) + len(self.skipped),
            "written": len(self.samples),
            "skipped": len(self.skipped),
            "frames": int(sum(s.num_frames for s in self.samples)),
            "words": int(sum(len(r.words) for r in self.reports.values())),
            "signed": int(sum(len(r.signed) for r in self.reports.values())),
            "function_words": int(sum(len(r.function_words) for r in self.reports.values())),
            "unknown_words": int(sum(unknown.values())),
            "sentences_with_unknown": int(sum(1 for r in self.reports.values() if r.unknown)),
            "most_frequent_unknown": unknown.most_common(top),
            "unknown": dict(unknown.most_common()),  # every unknown word with its count
            "fingerspelled": dict(spelled.most_common()),
        }


def make_generator(method: str, **options) -> Generator:
    if method not in METHODS:
        raise SlpError(f"unknown method {method!r}; available: {', '.join(sorted(METHODS))}")
    return METHODS[method](**options)


def generate(requests: Iterable[Request], method: str | Generator = "concat", *, strict: bool = False,
             progress: Progress = SILENT, **options) -> Result:
    """Sign every request with ``method`` (a registered name, built with ``options``, or a ready
    :class:`Generator`). A sentence that fails (SlpError) is skipped and reported; ``strict`` turns
    any unknown word into an error. Raises SlpError when no sentence could be signed."""
    requests = list(requests)
    gen = make_generator(method, **options) if isinstance(method, str) else method
    samples, reports, skipped = [], {}, []
    for req, out in _sign_all(gen, requests, progress):
        if isinstance(out, SlpError):
            skipped.append({"input": req.id, "reason": str(out)})
            continue
        pose, rep = out
        if strict and rep.unknown:
            raise SlpError(f"sentence {req.id}: unknown words {', '.join(rep.unknown)} (--strict fails on "
                           "unknown words; drop --strict to skip them)")
        reports[req.id] = rep
        samples.append(Sample(id=req.id, pose=pose, text=req.text, glosses=rep.glosses, lang=req.lang,
                              split=req.split, gloss_spans=np.array(rep.spans, dtype=np.int64).reshape(-1, 2),
                              report=rep.to_json()))
    if not samples:
        if len(requests) == 1:
            raise SlpError(skipped[0]["reason"])
        first = f" (first: {skipped[0]['input']}: {skipped[0]['reason']})" if skipped else ""
        raise SlpError(f"none of {len(requests)} sentences could be signed{first}")
    return Result(samples, reports, skipped, gen)


def _sign_all(gen: Generator, requests: list[Request], progress: Progress):
    """(request, (pose, report) or SlpError) in order, signed in chunks of the generator's batch size."""
    size = max(int(gen.batch_size), 1)
    with progress.task("signing", total=len(requests)) as task:
        for start in range(0, len(requests), size):
            chunk = requests[start:start + size]
            yield from zip(chunk, gen.sign(chunk))
            task.advance(len(chunk))


def read_requests(*, text: str | None = None, lang: str | None = None, texts_from: str | Path | None = None,
                  split: str | None = None) -> tuple[list[Request], list[dict]]:
    """Requests from one TEXT, a text file (one sentence a line, ids ``line-0001``...) or an slp
    artifact (its samples' ids, texts, languages and splits; ``split``/``lang`` filter). Also the
    inputs left out (empty artifact texts)."""
    if (text is None) == (texts_from is None):
        raise SlpError("give either a TEXT to sign or --texts-from FILE (not both)")
    if lang is not None:
        spoken_language(lang)
    if text is not None:
        if lang is None:
            raise SlpError("--lang is required with a TEXT (e.g. --lang dgs)")
        return [Request("line-0001", text, lang)], []
    path = Path(texts_from)
    if not path.is_file():
        raise SlpError(f"{path}: --texts-from file not found")
    import h5py

    if h5py.is_hdf5(path):
        samples = load(path, split=split, langs=[lang] if lang else None).samples
        if not samples:
            raise SlpError(f"{path}: no samples" + (f" in split {split!r}" if split else "")
                           + (f" for language {lang!r}" if lang else ""))
        empty = [{"input": s.id, "reason": "sample has no text"} for s in samples if not s.text.strip()]
        return [Request(s.id, s.text, s.lang, s.split) for s in samples if s.text.strip()], empty
    if split is not None:
        raise SlpError(f"{path}: --split filters an slp artifact's samples; this is a text file")
    if lang is None:
        raise SlpError(f"{path}: --lang is required with a text file (one sentence a line)")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise SlpError(f"{path}: not UTF-8 text; give a UTF-8 text file or an slp artifact (.h5)") from None
    reqs = [Request(f"line-{i:04d}", line.strip(), lang) for i, line in enumerate(lines, 1) if line.strip()]
    if not reqs:
        raise SlpError(f"{path}: no sentences (the file is empty)")
    return reqs, []


def run(output: str | Path, *, text: str | None = None, lang: str | None = None,
        texts_from: str | Path | None = None, split: str | None = None, method: str = "concat",
        strict: bool = False, progress: Progress = SILENT, **options) -> dict:
    """Read the sentences, sign them with ``method`` and write one artifact; returns a summary."""
    refuse_overwriting([output], [texts_from, options.get("dictionary"), options.get("model"),
                                  options.get("glosser")])
    requests, empty = read_requests(text=text, lang=lang, texts_from=texts_from, split=split)
    result = generate(requests, method, strict=strict, progress=progress, **options)
    gen = result.generator
    args = {"method": method, "lang": lang, "split": split, "strict": strict, "text": text, **gen.describe()}
    inputs = [p for p in (gen.describe().get("dictionary") or gen.describe().get("model"), texts_from) if p]
    skipped = empty + result.skipped
    save(result.samples, output, fps=gen.fps, normalized=gen.normalized, normalization=gen.normalization,
         provenance=provenance("generate", args, inputs), skipped=skipped)
    out = result.summary()
    out.update(sentences=out["sentences"] + len(empty), skipped=len(skipped), skipped_inputs=skipped,
               output=str(output))
    return out
