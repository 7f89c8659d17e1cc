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
"""

from __future__ import annotations

import math
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .artifacts import Sample, load, provenance, save
from .errors import SlpError
from .progress import SILENT, Progress, track
from .text.lemmas import lemma_key, tokenize, word_key

CRITERIA = ("medoid", "first")
DICTIONARY_SPLIT = "dictionary"
REST = "__REST__"
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


def run(source: str | Path, output: str | Path, *, split: str = "train", criterion: str = "medoid",
        langs: Iterable[str] | None = None, max_instances: int = MAX_INSTANCES, seed: int = 0,
        progress: Progress = SILENT, report: BuildReport | None = None) -> Path:
    """Build a dictionary from a corpus artifact (its ``split``) or a lexicon folder; write it."""
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
    entries = build(samples, fps, criterion=criterion, max_instances=max_instances, seed=seed, keys=keys,
                    progress=progress, report=report)
    if not report.instances:
        reason = report.skipped_glosses[0]["reason"] if report.skipped_glosses else "no glosses"
        raise SlpError(f"{where}: no gloss has a usable instance ({reason}); a corpus needs gloss_spans "
                       "or single-sign samples")
    prov = provenance("dict build", {"split": split, "criterion": criterion, "max_instances": max_instances,
                                     "seed": seed, "langs": langs}, [source])
    # Per entry: how many instances it was chosen from and which clip it is.
    prov["entries"] = {e: {"instances": n, "compared": report.compared[e], "clip": report.sources[e]}
                       for e, n in report.instances.items()}
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
        self._langs: dict[str, list[Sample]] = defaultdict(list)
        self._ids = {e.id: e for e in self.entries}
        for e in self.entries:
            if e.glosses == [REST]:
                self._rest[e.lang] = e
                continue
            self._langs[e.lang].append(e)
            if e.text:
                self._index.setdefault((e.lang, e.text), e)  # stored most-instances-first
        self._max_words = {lang: max((len(e.text.split()) for e in es), default=1) for lang, es in self._langs.items()}

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
    }
