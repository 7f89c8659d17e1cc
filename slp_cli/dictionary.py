"""The word-level sign dictionary: one representative clip per (language, gloss), looked up by lemma.

Built from a corpus (``slp dict build corpus.h5``) or from a spoken-to-signed lexicon folder
(``index.csv`` + ``.pose`` files, read by ``slp_cli.interop.pose_format.read_lexicon``). It is
the sign dictionary that SOKE retrieves word-level signs from (SOKE, section 3.4) and the lexicon
that dictionary-concatenation systems
(spoken-to-signed-translation; ``slp generate --method concat``) stitch sentences from.

Instances of a gloss:

* a corpus with ``gloss_spans`` gives one clip per occurrence, ``pose[start:end]``;
* a corpus without spans can only use samples whose whole sequence is one sign (exactly one gloss
  that is a sign, e.g. lexicon entries); glosses seen only inside longer unsegmented sentences are
  skipped, and the build report counts them;
* clips shorter than :data:`MIN_SECONDS` are not used (forced alignments leave one-frame glosses,
  which show no movement).

One representative per gloss, by ``criterion``:

* ``medoid`` (default): the instance with the smallest mean DTW-MJE (docs/design.md, section 8) to the
  other instances. At most ``max_instances`` (12) instances are compared, drawn at random with a
  fixed seed per gloss when there are more, so the cost per gloss stays bounded (66 DTWs);
* ``first``: the first instance in corpus order.

The dictionary is an ordinary slp artifact (``split == "dictionary"``): one sample per entry with
id ``"{lang}:{GLOSS}"``, ``glosses = [GLOSS]``, ``text`` = the lemma key, the clip as pose
(normalized if the corpus was). Per language, one extra entry ``"{lang}:__REST__"`` holds a rest
pose (the per-coordinate median of the first frames of the source sequences), used by
``generate`` to start and end a sentence; its key is empty, so no word finds it. Entries of a
language are stored most-instances-first, so when several glosses share a key (``REGEN`` and
``REGEN-PLUSPLUS``, ``BANK-1`` and ``BANK-2``) lookup returns the most frequent one.

Two more things a dictionary can hold, both used by ``generate``'s concat:

* a word -> gloss table learnt from the corpus' own text/gloss pairs (``slp_cli.text.align``,
  IBM Model 1), stored in the provenance as ``word_table`` (``{lang: {word: gloss or ""}}``,
  words folded by ``match_key``, "" for a word the corpus leaves unsigned); only glosses with an
  entry are kept;
* a manual alphabet (``alphabet=``: a lexicon folder or an artifact whose entries are letters,
  their text the letter or letter group, e.g. ``a``, ``sch``, ``ä``): one entry per letter,
  id ``"{lang}:__LETTER__:{letter}"``, glosses ``[__LETTER__]``, no lookup key, brought to the
  corpus' frame rate and normalization. Unknown words are fingerspelled with it.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .artifacts import Sample, load, provenance, save
from .atomic import refuse_overwriting
from .errors import SlpError
from .progress import SILENT, Progress, track
from .text.lemmas import lemma_key, match_key, tokenize, word_key

CRITERIA = ("medoid", "first")
DICTIONARY_SPLIT = "dictionary"
REST = "__REST__"
LETTER = "__LETTER__"
MAX_INSTANCES = 12
MIN_SECONDS = 0.08  # 2 frames at 25 fps



@dataclass
class Clip:
    """One instance of a gloss: frames [start, end) of a source sample."""

    sample: Sample
    start: int
    end: int

    @property
    def pose(self) -> np.ndarray:
        return self.sample.pose[self.start:self.end]

    def conf(self) -> np.ndarray:
        return self.sample.conf()[self.start:self.end]


@dataclass
class BuildReport:
    """What a build used and left out (filled by :func:`build` when passed in)."""

    instances: dict[str, int] = field(default_factory=dict)   # entry id -> instances found
    compared: dict[str, int] = field(default_factory=dict)    # entry id -> instances compared
    skipped_glosses: list[dict] = field(default_factory=list)  # {"input", "reason"} per gloss
    skipped_samples: list[dict] = field(default_factory=list)  # samples with unusable spans
    sources: dict[str, str] = field(default_factory=dict)     # entry id -> "sample_id[start:end]"
    letters: dict[str, int] = field(default_factory=dict)     # lang -> letters of its alphabet
    table_words: dict[str, int] = field(default_factory=dict)  # lang -> words of its learnt table

    def entries_per_lang(self) -> dict[str, int]:
        return dict(sorted(Counter(i.split(":", 1)[0] for i in self.instances).items()))


# --- collecting instances ---------------------------------------------------------------------

def _spans_problem(s: Sample) -> str:
    spans = np.asarray(s.gloss_spans)
    if spans.ndim != 2 or spans.shape[1] != 2 or len(spans) != len(s.glosses):
        return f"gloss_spans has shape {spans.shape} but the sample has {len(s.glosses)} glosses"
    if (spans[:, 0] < 0).any() or (spans[:, 1] > s.num_frames).any() or (spans[:, 1] <= spans[:, 0]).any():
        return f"gloss_spans {spans.tolist()} fall outside its {s.num_frames} frames or are empty"
    return ""


def collect_instances(samples: Sequence[Sample], min_frames: int = 2,
                      report: BuildReport | None = None) -> dict[tuple[str, str], list[Clip]]:
    """Clips of every (lang, gloss) that is a sign, in corpus order (see the module docstring)."""
    report = report if report is not None else BuildReport()
    found: dict[tuple[str, str], list[Clip]] = defaultdict(list)
    unusable: dict[tuple[str, str], str] = {}
    for s in samples:
        signs = [(i, g) for i, g in enumerate(s.glosses) if lemma_key(g)]
        if s.num_frames and not np.isfinite(s.pose).all(-1).any():
            report.skipped_samples.append({"input": s.id, "reason": "no joint is present in any frame (all NaN)"})
            for _, g in signs:
                unusable.setdefault((s.lang, g), "its instances have no joint present (all NaN)")
            continue
        if s.gloss_spans is not None:
            problem = _spans_problem(s)
            if problem:
                report.skipped_samples.append({"input": s.id, "reason": problem})
                for _, g in signs:
                    unusable.setdefault((s.lang, g), "its samples have invalid gloss_spans")
                continue
            clips = [(g, int(s.gloss_spans[i][0]), int(s.gloss_spans[i][1])) for i, g in signs]
        elif len(signs) == 1:
            clips = [(signs[0][1], 0, s.num_frames)]  # the whole sequence is the sign
        else:
            for _, g in signs:
                unusable.setdefault((s.lang, g), "seen only in sentences without gloss_spans")
            continue
        for g, a, b in clips:
            if b - a < min_frames:
                unusable.setdefault((s.lang, g), f"every instance is shorter than {min_frames} frames")
                continue
            if not np.isfinite(s.pose[a:b]).all(-1).any():  # an invisible sign would sign nothing
                unusable.setdefault((s.lang, g), "every instance has no joint present (all NaN)")
                continue
            found[(s.lang, g)].append(Clip(s, a, b))
    for (lang, g), reason in sorted(unusable.items()):
        if (lang, g) not in found:
            report.skipped_glosses.append({"input": f"{lang}:{g}", "reason": reason})
    return dict(found)


# --- choosing a representative ----------------------------------------------------------------

def medoid(poses: Sequence[np.ndarray]) -> tuple[int, np.ndarray]:
    """Index of the sequence with the smallest mean DTW-MJE to the others, and those means.

    Pairs whose DTW is undefined (NaN) or infinite (no shared joints) are left out of a mean; a
    sequence with no finite distance at all scores +inf. Ties go to the lowest index.
    """
    from .metrics.dtw import dtw_mje

    n = len(poses)
    if n == 1:
        return 0, np.zeros(1)
    d = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(i + 1, n):
            d[i, j] = d[j, i] = dtw_mje(poses[i], poses[j])
    d[~np.isfinite(d)] = np.nan
    seen = np.isfinite(d).sum(1)
    means = np.where(seen > 0, np.nansum(d, 1) / np.maximum(seen, 1), np.inf)
    return int(np.argmin(means)), means


def choose(clips: Sequence[Clip], criterion: str = "medoid", *, max_instances: int = MAX_INSTANCES,
           seed: int = 0, name: str = "") -> tuple[Clip, int]:
    """The representative clip by ``criterion`` and the number of instances compared.

    More than ``max_instances`` clips: a random subset (seed from ``seed`` and ``name``, so each
    gloss's draw does not depend on the others) keeps the medoid's cost bounded.
    """
    if criterion not in CRITERIA:
        raise SlpError(f"unknown criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    if criterion == "first" or len(clips) == 1:
        return clips[0], 1
    pool = list(clips)
    if len(pool) > max_instances:
        rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
        pool = [pool[i] for i in sorted(rng.choice(len(pool), max_instances, replace=False))]
    best, _ = medoid([c.pose for c in pool])
    return pool[best], len(pool)


def rest_pose(samples: Sequence[Sample]) -> np.ndarray | None:
    """(1, K, 3) median of the samples' first frames (NaN where a joint is never seen)."""
    firsts = np.stack([s.pose[0] for s in samples]) if samples else None
    if firsts is None or not np.isfinite(firsts).any():
        return None
    seen = np.isfinite(firsts).any(0)
    out = np.full(firsts.shape[1:], np.nan, dtype=np.float32)
    out[seen] = np.nanmedian(firsts[:, seen], axis=0)
    return out[None]


# --- building ---------------------------------------------------------------------------------

def build(samples: Sequence[Sample], fps: float, *, criterion: str = "medoid",
          max_instances: int = MAX_INSTANCES, seed: int = 0, keys: Callable[[Sample], str] | None = None,
          progress: Progress = SILENT, report: BuildReport | None = None) -> list[Sample]:
    """Dictionary entries (one per (lang, gloss) with a usable instance, plus a rest pose per
    language) from ``samples`` (already filtered to the split and languages wanted).

    ``keys(entry_clip_sample)`` gives an entry's lookup key; default :func:`lemma_key` of the
    gloss (a lexicon passes the lemmatized words instead). ``fps`` sets the shortest usable clip
    (:data:`MIN_SECONDS`). ``report`` (a :class:`BuildReport`) receives counts and skips.
    """
    if criterion not in CRITERIA:
        raise SlpError(f"unknown criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    report = report if report is not None else BuildReport()
    min_frames = max(2, round(MIN_SECONDS * fps))
    groups = collect_instances(samples, min_frames, report)
    items = sorted(groups.items(), key=lambda kv: (kv[0][0], -len(kv[1]), kv[0][1]))
    chosen: dict[str, list[Sample]] = defaultdict(list)
    for (lang, gloss), clips in track(items, progress, "choosing clips"):
        eid = f"{lang}:{gloss}"
        clip, compared = choose(clips, criterion, max_instances=max_instances, seed=seed, name=eid)
        report.instances[eid], report.compared[eid] = len(clips), compared
        src = clip.sample
        chosen[lang].append(Sample(
            id=eid, pose=np.array(clip.pose, dtype=np.float32), confidence=np.array(clip.conf(), dtype=np.float32),
            text=keys(src) if keys else lemma_key(gloss), glosses=[gloss], lang=lang, signer=src.signer,
            split=DICTIONARY_SPLIT, gloss_spans=np.array([[0, clip.end - clip.start]]),
        ))
        report.sources[eid] = f"{src.id}[{clip.start}:{clip.end}]"
    entries = []
    for lang in sorted(chosen):
        rest = rest_pose([s for s in samples if s.lang == lang])
        if rest is not None:
            entries.append(Sample(id=f"{lang}:{REST}", pose=rest, glosses=[REST], lang=lang,
                                  split=DICTIONARY_SPLIT, gloss_spans=np.array([[0, 1]])))
        entries.extend(chosen[lang])
    return entries


def _lexicon_key(s: Sample) -> str:
    return " ".join(word_key(w, s.lang) for w in tokenize(s.text, s.lang))


def _letter_key(s: Sample) -> str:
    return (s.text or "").strip().lower()


def build_alphabet(samples: Sequence[Sample], fps: float, **options) -> list[Sample]:
    """Letter entries (see the module docstring) from samples whose text is one letter or letter
    group and whose pose is its sign (or a ``gloss_spans`` cut of it); ``options`` as for
    :func:`build`. SlpError if a sample's text is not a letter."""
    bad = [s for s in samples if not _letter_key(s).isalpha() or len(_letter_key(s)) > 3]
    if bad:
        raise SlpError(f"alphabet sample '{bad[0].id}': text {bad[0].text!r} is not a letter (give each letter "
                       "sign the letter or letter group it spells, e.g. a, ä, sch)")
    entries = build(samples, fps, keys=_letter_key, **options)
    return [Sample(id=f"{e.lang}:{LETTER}:{e.text}", pose=e.pose, confidence=e.confidence, text=e.text,
                   glosses=[LETTER], lang=e.lang, signer=e.signer, split=DICTIONARY_SPLIT,
                   gloss_spans=e.gloss_spans) for e in entries if e.glosses != [REST]]


def word_tables(samples: Sequence[Sample], entries: Sequence[Sample]) -> dict[str, dict[str, str]]:
    """Per language, the word -> gloss table learnt from the samples' text/gloss pairs, keeping
    glosses that have an entry (see ``slp_cli.text.align``)."""
    from .text.align import learn_word_table

    have = {(e.lang, e.glosses[0]) for e in entries}
    out = {}
    for lang in sorted({s.lang for s in samples}):
        pairs = [([match_key(w) for w in tokenize(s.text, lang)], [g for g in s.glosses if lemma_key(g)])
                 for s in samples if s.lang == lang and s.text.strip()]
        table = {w: g for w, g in learn_word_table(pairs).items() if g == "" or (lang, g) in have}
        if table:
            out[lang] = table
    return out


def _read_alphabet(path: Path, fps: float, attrs: dict, langs) -> list[Sample]:
    """The samples of an alphabet source at ``fps``, in the normalization ``attrs`` name."""
    from .interop.pose_format import read_lexicon, resample
    from .normalize import MODES, normalize_samples

    if path.is_dir():
        samples, _ = read_lexicon(path, fps)
        normalized, normalization = False, ""
    else:
        art = load(path)
        if art.layout != "mp178":
            raise SlpError(f"{path}: layout {art.layout}; the alphabet needs mp178 poses")
        samples, normalized, normalization = art.samples, art.normalized, art.normalization
        if abs(art.fps - fps) > 1e-6:
            resampled = [resample(s.pose, s.conf(), art.fps, fps) for s in samples]
            samples = [replace(s, pose=p, confidence=c, gloss_spans=None if s.gloss_spans is None else
                               np.minimum(np.round(np.asarray(s.gloss_spans) * fps / art.fps).astype(np.int64), len(p)))
                       for s, (p, c) in zip(samples, resampled)]
    samples = [s for s in samples if langs is None or s.lang in langs]
    want = attrs.get("normalization", "") if attrs.get("normalized") else ""
    have = normalization if normalized else ""
    if want != have:
        mode = want.rpartition("/")[2]
        if have or not want.startswith("neck-shoulder/") or mode not in MODES:
            raise SlpError(f"{path}: the alphabet's normalization ({have or 'none'}) differs from the corpus' "
                           f"({want or 'none'}); bring both to the same one (`slp normalize`)")
        samples = normalize_samples(samples, mode=mode)
    if not samples:
        raise SlpError(f"{path}: no letters" + (f" for languages {','.join(langs)}" if langs else ""))
    return samples


def run(source: str | Path, output: str | Path, *, split: str = "train", criterion: str = "medoid",
        langs: Iterable[str] | None = None, max_instances: int = MAX_INSTANCES, seed: int = 0,
        alphabet: str | Path | None = None, word_table: bool = True,
        progress: Progress = SILENT, report: BuildReport | None = None) -> Path:
    """Build a dictionary from a corpus artifact (its ``split``) or a lexicon folder; write it.

    ``alphabet`` (a lexicon folder or an artifact of letter signs) adds a manual alphabet;
    ``word_table`` learns the word -> gloss table from a corpus' texts and glosses."""
    refuse_overwriting([output], [source, alphabet])
    source = Path(source)
    langs = sorted(set(langs)) if langs else None
    report = report if report is not None else BuildReport()
    if source.is_dir():
        from .interop.pose_format import read_lexicon

        samples, fps = read_lexicon(source)
        samples = [s for s in samples if langs is None or s.lang in langs]
        attrs, keys = {}, _lexicon_key
        where = f"{source} (lexicon)"
    else:
        art = load(source)
        if art.layout != "mp178":
            raise SlpError(f"{source}: layout {art.layout}; the dictionary needs mp178 poses")
        samples = art.select(split, langs)
        if not samples:
            raise SlpError(f"{source}: no samples in split {split!r}"
                           + (f" for languages {','.join(langs)}" if langs else "")
                           + f" (splits: {', '.join(sorted({s.split for s in art.samples}))}); choose another --split")
        fps, attrs, keys = art.fps, art.attrs(), None
        where = f"{source} split {split!r}"
    if not samples:
        raise SlpError(f"{where}: no entries" + (f" for languages {','.join(langs)}" if langs else ""))
    options = dict(criterion=criterion, max_instances=max_instances, seed=seed)
    entries = build(samples, fps, keys=keys, progress=progress, report=report, **options)
    if not report.instances:
        reason = report.skipped_glosses[0]["reason"] if report.skipped_glosses else "no glosses"
        raise SlpError(f"{where}: no gloss has a usable instance ({reason}); a corpus needs gloss_spans "
                       "or single-sign samples")
    letters = [] if alphabet is None else build_alphabet(
        _read_alphabet(Path(alphabet), fps, attrs, langs), fps, report=BuildReport(), **options)
    prov = provenance("dict build", {"split": split, **options, "langs": langs, "alphabet": alphabet,
                                     "word_table": word_table}, [source] + ([alphabet] if alphabet else []))
    # Per entry: how many instances it was chosen from and which clip it is.
    prov["entries"] = {e: {"instances": n, "compared": report.compared[e], "clip": report.sources[e]}
                       for e, n in report.instances.items()}
    if word_table and keys is None:
        prov["word_table"] = word_tables(samples, entries)
        report.table_words = {lang: len(t) for lang, t in prov["word_table"].items()}
    report.letters = dict(Counter(e.lang for e in letters))
    entries += letters
    attrs.pop("fps", None)
    return save(entries, output, fps=fps, provenance=prov,
                skipped=report.skipped_samples + report.skipped_glosses, **attrs)


# --- loading and lookup -----------------------------------------------------------------------

@dataclass
class Dictionary:
    """A loaded sign dictionary: entries by (language, lemma key)."""

    entries: list[Sample]
    fps: float
    normalized: bool = False
    normalization: str = ""
    path: Path | None = None
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._index: dict[tuple[str, str], Sample] = {}
        self._rest: dict[str, Sample] = {}
        self._letters: dict[str, dict[str, Sample]] = defaultdict(dict)
        self._langs: dict[str, list[Sample]] = defaultdict(list)
        self._ids = {e.id: e for e in self.entries}
        for e in self.entries:
            if e.glosses == [REST]:
                self._rest[e.lang] = e
                continue
            if e.glosses == [LETTER]:
                self._letters[e.lang][e.text] = e
                continue
            self._langs[e.lang].append(e)
            if e.text:
                self._index.setdefault((e.lang, e.text), e)  # stored most-instances-first
        for e in self.entries:  # hyphen-folded keys (nord-west -> nordwest), after the exact ones
            if e.text and e.glosses not in ([REST], [LETTER]):
                self._index.setdefault((e.lang, " ".join(match_key(w) for w in e.text.split())), e)
        self._max_words = {lang: max((len(e.text.split()) for e in es), default=1) for lang, es in self._langs.items()}
        self._tables: dict[str, dict[str, str]] = self.provenance.get("word_table", {})

    @property
    def langs(self) -> list[str]:
        return sorted(self._langs)

    def entries_for(self, lang: str) -> list[Sample]:
        """The sign entries of one language (without the rest pose)."""
        return list(self._langs.get(lang, []))

    def lookup(self, lang: str, key: str) -> Sample | None:
        return self._index.get((lang, key))

    def by_gloss(self, lang: str, gloss: str) -> Sample | None:
        return self._ids.get(f"{lang}:{gloss}")

    def rest(self, lang: str) -> np.ndarray | None:
        """(1, K, 3) rest pose of a language, if the dictionary has one."""
        e = self._rest.get(lang)
        return None if e is None else e.pose

    def max_words(self, lang: str) -> int:
        """The longest key of a language in words (lexicon entries can be phrases)."""
        return self._max_words.get(lang, 1)

    def learnt(self, lang: str, word: str) -> str | None:
        """The word -> gloss table's gloss for a :func:`match_key`-folded word: a gloss, "" for a
        word the corpus leaves unsigned, None if the table does not know it (or there is none)."""
        return self._tables.get(lang, {}).get(word)

    def letters(self, lang: str) -> dict[str, Sample]:
        """The manual alphabet of a language, letter (or letter group) -> entry; empty if none."""
        return dict(self._letters.get(lang, {}))


def load_dictionary(path: str | Path) -> Dictionary:
    """Read a dictionary artifact written by :func:`run`; SlpError if the file is something else."""
    art = load(path)
    other = sorted({s.split for s in art.samples} - {DICTIONARY_SPLIT})
    if not art.samples or other:
        raise SlpError(f"{path}: not a sign dictionary (its samples have split {', '.join(other) or 'none'}); "
                       "build one with `slp dict build CORPUS -o dictionary.h5`")
    return Dictionary(entries=art.samples, fps=art.fps, normalized=art.normalized,
                      normalization=art.normalization, path=Path(path), provenance=art.provenance)


def summary(report: BuildReport) -> dict:
    """Plain-data summary of a build (for the CLI and --json)."""
    inst = list(report.instances.values())
    return {
        "entries_per_lang": report.entries_per_lang(),
        "entries": len(inst),
        "instances": int(sum(inst)),
        "single_instance_entries": int(sum(1 for n in inst if n == 1)),
        "compared_max": max(report.compared.values(), default=0),
        "skipped_glosses": len(report.skipped_glosses),
        "skipped_samples": len(report.skipped_samples),
        "median_instances": float(np.median(inst)) if inst else math.nan,
        "letters": report.letters,
        "word_table_words": report.table_words,
    }
