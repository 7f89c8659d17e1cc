"""Corpus readers behind `slp prepare phoenix|csl|how2sign DATA_DIR -o corpus.h5`.

Each reader checks the layout it expects (and says exactly what is missing), reads the corpus'
own annotations into ``Record``s (the corpus' own id, text, glosses, signer, split, and where
its frames or video are), and ``prepare`` turns them into a corpus artifact: poses extracted
with `slp extract`'s machinery (same workers, resume and bad-input reporting) or attached from
a pose release (``poses=``, an slp artifact whose ids match the corpus ids).

Layouts, as distributed:

* PHOENIX-2014T: ``annotations/manual/PHOENIX-2014-T.{train,dev,test}.corpus.csv``
  (``|``-separated: name, video, start, end, speaker, orth, translation) and frames in
  ``features/fullFrame-210x260px/{train,dev,test}/<name>/*.png``; 25 fps; DGS/German.
* CSL-Daily: ``sentence_label/csl2020ct_v2.pkl`` (a pickle whose ``info`` lists dicts with name,
  length, label_gloss, label_char, label_word, signer), ``sentence_label/split_1.txt``
  (``name|split`` lines, split train/dev/test) and frames in ``sentence/frames_512x512/<name>/``
  (or ``sentence_frames-512x512/frames_512x512/<name>/``); 30 fps; CSL/Chinese.
* How2Sign: the re-aligned sentence CSVs ``how2sign_realigned_{train,val,test}.csv``
  (tab-separated: VIDEO_ID, VIDEO_NAME, SENTENCE_ID, SENTENCE_NAME, START_REALIGNED,
  END_REALIGNED, SENTENCE) and the sentence clips ``<split>_rgb_front_clips/raw_videos/
  <SENTENCE_NAME>.mp4`` (or ``sentence_level/<split>/rgb_front/raw_videos/``); ASL/English.

The 3D pose release of the SLRTP 2025 challenge (the data A2V-SLP used) has no public format
specification that could be checked here; it can be attached with ``poses=`` once converted to
an slp artifact (e.g. with ``slp_cli.save``), keeping the PHOENIX names as ids.
"""

from __future__ import annotations

import csv
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

from ..atomic import refuse_overwriting
from ..errors import SlpError
from ..progress import SILENT, Progress


@dataclass
class Record:
    id: str
    text: str
    glosses: list[str]
    lang: str
    split: str
    signer: str
    media: Path  # a frames folder or a video file


def _need(path: Path, what: str, corpus: str) -> Path:
    if not path.exists():
        raise SlpError(f"{path}: missing ({what}); is DATA_DIR the root of a {corpus} copy as distributed?")
    return path


# --- PHOENIX-2014T -----------------------------------------------------------------------------

PHOENIX_SPLITS = ("train", "dev", "test")
PHOENIX_FPS = 25.0


def read_phoenix(root: Path, media: bool = True) -> list[Record]:
    """The annotation files present (at least one split); the frame folders only with ``media``
    (poses from a release need none)."""
    root = Path(root)
    ann = root / "annotations" / "manual"
    frames = root / "features" / "fullFrame-210x260px"
    if media:
        _need(frames, "the frame folders features/fullFrame-210x260px/", "PHOENIX-2014T")
    files = {split: ann / f"PHOENIX-2014-T.{split}.corpus.csv" for split in PHOENIX_SPLITS}
    if not any(p.exists() for p in files.values()):
        _need(files["train"], "the annotation files annotations/manual/PHOENIX-2014-T.{train,dev,test}.corpus.csv",
              "PHOENIX-2014T")
    records = []
    for split, path in files.items():
        if not path.exists():
            continue  # a missing split is allowed (e.g. a test set kept apart)
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, delimiter="|", quoting=csv.QUOTE_NONE)
            missing = {"name", "speaker", "orth", "translation"} - set(reader.fieldnames or [])
            if missing:
                raise SlpError(f"{path}: columns {', '.join(sorted(missing))} missing; expected "
                               f"name|video|start|end|speaker|orth|translation")
            for line, row in enumerate(reader, start=2):
                if not row["name"]:
                    raise SlpError(f"{path}:{line}: empty name")
                records.append(Record(id=row["name"], text=row["translation"].strip(), glosses=row["orth"].split(),
                                      lang="dgs", split=split, signer=row["speaker"],
                                      media=frames / split / row["name"]))
    return records


# --- CSL-Daily -----------------------------------------------------------------------------------

CSL_FPS = 30.0
CSL_SPLITS = {"train": "train", "dev": "dev", "val": "dev", "test": "test"}


def read_csl_daily(root: Path, media: bool = True) -> list[Record]:
    root = Path(root)
    label = root / "sentence_label"
    pkl = _need(label / "csl2020ct_v2.pkl", "the sentence annotations sentence_label/csl2020ct_v2.pkl", "CSL-Daily")
    split_file = _need(label / "split_1.txt", "the split file sentence_label/split_1.txt", "CSL-Daily")
    frames = next((p for p in (root / "sentence" / "frames_512x512",
                               root / "sentence_frames-512x512" / "frames_512x512") if p.exists()), None)
    if frames is None and not media:
        frames = root / "sentence" / "frames_512x512"
    if frames is None:
        raise SlpError(f"{root}: missing the frame folders sentence/frames_512x512/; is DATA_DIR the root of a "
                       f"CSL-Daily copy as distributed?")
    try:
        with open(pkl, "rb") as f:
            info = pickle.load(f)["info"]
    except Exception as e:  # noqa: BLE001 - a foreign pickle fails in many ways
        raise SlpError(f"{pkl}: cannot read the annotation pickle ({type(e).__name__}: {e})") from None
    splits = {}
    with open(split_file, encoding="utf-8-sig") as f:
        for line_no, line in enumerate(f, start=1):
            parts = line.strip().split("|")
            if len(parts) != 2 or parts[0] == "name":
                continue
            if parts[1] not in CSL_SPLITS:
                raise SlpError(f"{split_file}:{line_no}: unknown split {parts[1]!r}")
            splits[parts[0]] = CSL_SPLITS[parts[1]]
    records = []
    for entry in info:
        name = entry["name"]
        if name not in splits:
            continue  # not in this split file's partition
        records.append(Record(id=name, text="".join(entry["label_char"]), glosses=list(entry["label_gloss"]),
                              lang="csl", split=splits[name], signer=str(entry.get("signer", "")),
                              media=frames / name))
    if not records:
        raise SlpError(f"{split_file}: no annotated sentence is in any split")
    return records


# --- How2Sign ------------------------------------------------------------------------------------

HOW2SIGN_SPLITS = {"train": "train", "val": "dev", "test": "test"}


def _how2sign_clips(root: Path, split: str) -> Path | None:
    for p in (root / f"{split}_rgb_front_clips" / "raw_videos", root / "sentence_level" / split / "rgb_front" / "raw_videos",
              root / split / "rgb_front" / "raw_videos", root / split / "raw_videos"):
        if p.exists():
            return p
    return None


def read_how2sign(root: Path, media: bool = True) -> list[Record]:
    root = Path(root)
    records = []
    found = False
    for split, ours in HOW2SIGN_SPLITS.items():
        csv_path = next((p for p in (root / f"how2sign_realigned_{split}.csv", root / "annotations" / f"how2sign_realigned_{split}.csv")
                         if p.exists()), None)
        if csv_path is None:
            continue
        found = True
        clips = _how2sign_clips(root, split)
        if clips is None and not media:
            clips = root / f"{split}_rgb_front_clips" / "raw_videos"
        if clips is None:
            raise SlpError(f"{root}: missing the {split} sentence clips ({split}_rgb_front_clips/raw_videos/); "
                           f"is DATA_DIR the root of a How2Sign copy as distributed?")
        with open(csv_path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            missing = {"VIDEO_ID", "SENTENCE_NAME", "SENTENCE"} - set(reader.fieldnames or [])
            if missing:
                raise SlpError(f"{csv_path}: columns {', '.join(sorted(missing))} missing; expected the re-aligned "
                               f"sentence CSV (VIDEO_ID, VIDEO_NAME, SENTENCE_ID, SENTENCE_NAME, START_REALIGNED, "
                               f"END_REALIGNED, SENTENCE)")
            for row in reader:
                records.append(Record(id=row["SENTENCE_NAME"], text=row["SENTENCE"].strip(), glosses=[], lang="asl",
                                      split=ours, signer=row.get("VIDEO_ID", ""),
                                      media=clips / f"{row['SENTENCE_NAME']}.mp4"))
    if not found:
        raise SlpError(f"{root}: missing how2sign_realigned_{{train,val,test}}.csv; is DATA_DIR the root of a "
                       f"How2Sign copy as distributed?")
    return records


READERS = {"phoenix": (read_phoenix, PHOENIX_FPS), "csl": (read_csl_daily, CSL_FPS), "how2sign": (read_how2sign, None)}


def read_corpus(corpus: str, root: Path, media: bool = True) -> tuple[list[Record], float | None]:
    if corpus not in READERS:
        raise SlpError(f"unknown corpus {corpus!r}; known: {', '.join(READERS)}")
    reader, fps = READERS[corpus]
    return reader(root, media), fps


def attach(records: list[Record], poses) -> tuple[list, list[dict]]:
    """Corpus samples: the pose of each record (by id) with the record's annotations; records
    without a pose are returned as skipped entries."""
    by_id = {s.id: s for s in poses}
    samples, skipped = [], []
    for r in records:
        s = by_id.get(r.id)
        if s is None:
            skipped.append({"input": str(r.media), "reason": f"no poses for '{r.id}'"})
            continue
        samples.append(replace(s, text=r.text, glosses=list(r.glosses), lang=r.lang, split=r.split, signer=r.signer))
    return samples, skipped


def prepare(corpus: str, root: Path, output: Path, *, poses: Path | None = None, workers: int | None = None,
            progress: Progress = SILENT) -> dict:
    """Read a corpus and write its artifact: poses extracted from its frames/videos (into
    ``<output>.poses.h5``, resumable like `slp extract`) or taken from ``poses``, with the
    corpus' texts, glosses, signers and splits attached; every sample keeps the corpus' own id."""
    refuse_overwriting([output], [poses])
    from ..artifacts import load, provenance, save

    records, fps = read_corpus(corpus, Path(root), media=poses is None)
    if poses is not None:
        art = load(poses)
    else:
        from ..extract.runner import run as extract
        from ..extract.sources import Source

        extracted = Path(output).with_name(Path(output).stem + ".poses.h5")
        if not extracted.exists():
            sources = [Source(id=r.id, path=r.media, kind="frames" if r.media.is_dir() else "video")
                       for r in records if r.media.exists()]
            extract([str(root)], extracted, sources=sources, workers=workers, fps=fps,
                    frames_fps=fps or 25.0, progress=progress)
        art = load(extracted)
    samples, skipped = attach(records, art)
    if not samples:
        raise SlpError(f"{root}: none of the {len(records)} annotated samples has poses "
                       f"({skipped[0]['reason'] if skipped else 'nothing extracted'}); nothing written")
    save(samples, output, fps=art.fps, layout=art.layout, normalized=art.normalized,
         normalization=art.normalization, stats=art.stats,
         provenance=provenance("prepare", {"corpus": corpus, "poses": poses}, [root] + ([poses] if poses else [])),
         skipped=art.skipped + skipped)
    return {"samples": len(samples), "records": len(records), "skipped": skipped, "output": str(output),
            "splits": {sp: sum(s.split == sp for s in samples) for sp in ("train", "dev", "test")}}
