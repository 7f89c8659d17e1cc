"""Finding the inputs of `slp extract`: video files, folders of videos, folders of frame images
(PHOENIX-2014T ships its videos as PNG frames), and list files; and sharding them.

Every source gets a stable id: its path relative to the input root it was found under, without
extension (``train/01April_2010_Thursday_heute_default-1`` for a frames folder, ``clips/abc``
for ``clips/abc.mp4``). Ids do not depend on the order of the inputs or on which machine runs,
so a shard, a resumed run and a merge all agree on them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import SlpError

VIDEO_EXTS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv",
                        ".flv", ".ts", ".3gp", ".ogv"})
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
LIST_EXTS = frozenset({".txt", ".lst", ".list"})


@dataclass(frozen=True)
class Source:
    """One input of extraction: a video file or a folder of frame images (kind 'frames')."""

    id: str
    path: Path
    kind: str  # "video" | "frames"


@dataclass(frozen=True)
class Problem:
    """An input that yields no source (not found, empty folder); reported, never fatal alone."""

    input: str
    reason: str


def frame_files(folder: Path) -> list[Path]:
    """The frame images of a folder in play order: natural sort, so frame2 comes before frame10."""
    import re

    def key(p: Path):
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]

    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS), key=key)


def _rel_id(path: Path, root: Path, strip_ext: bool) -> str:
    rel = path.relative_to(root)
    if strip_ext:
        rel = rel.with_suffix("")
    return rel.as_posix()


def _walk(root: Path) -> tuple[list[Source], bool]:
    """Sources under a folder: its videos (recursively) and every folder holding frame images.

    A folder of frames is one source; its own subfolders are searched too. Returns the sources
    and whether anything was found."""
    found: list[Source] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        here = Path(dirpath)
        if any(Path(f).suffix.lower() in IMAGE_EXTS for f in filenames):
            rel = _rel_id(here, root, strip_ext=False)
            found.append(Source(root.name if rel == "." else rel, here, "frames"))
        for f in sorted(filenames):
            if Path(f).suffix.lower() in VIDEO_EXTS:
                found.append(Source(_rel_id(here / f, root, strip_ext=True), here / f, "video"))
    return found, bool(found)


def _read_list(path: Path) -> list[Path]:
    """Entries of a list file: one path per line, relative to the list's folder; # comments."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SlpError(f"{path}: cannot read the list file ({e})") from None
    entries = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line).expanduser()
            entries.append(Path(os.path.normpath(p if p.is_absolute() else path.parent / p)))
    return entries


def find_sources(inputs: Iterable[str | Path]) -> tuple[list[Source], list[Problem]]:
    """Resolve the command-line inputs into sources (sorted by id) and problems.

    * a video file (any extension but a list file's) is one source, id = its file stem;
    * a folder is searched recursively for videos and frame folders, ids relative to it;
    * a folder that directly holds frame images is one source named after the folder;
    * a ``.txt``/``.lst``/``.list`` file lists paths (videos or folders), one per line, relative
      to the list's folder; their ids are relative to the list's folder.

    Raises SlpError when two inputs produce the same id (give them distinct roots).
    """
    sources: list[Source] = []
    problems: list[Problem] = []

    def add(path: Path, root: Path | None):
        if not path.exists():
            problems.append(Problem(str(path), "not found"))
        elif path.is_dir():
            found, any_found = _walk(path)
            if not any_found:
                problems.append(Problem(str(path), "no videos or frame images found in this folder"))
            base = None if root is None else _rel_id(path, root, strip_ext=False)
            if base not in (None, "."):  # a folder named in a list file: ids keep its path
                found = [Source(base if s.path == path else f"{base}/{s.id}", s.path, s.kind)
                         for s in found]
            sources.extend(found)
        elif path.suffix.lower() in LIST_EXTS:
            for entry in _read_list(path):
                try:
                    entry.relative_to(path.parent)
                    entry_root = path.parent
                except ValueError:
                    entry_root = None  # outside the list's folder: id from the name alone
                add(entry, entry_root)
        else:
            sid = path.stem if root is None else _rel_id(path, root, strip_ext=True)
            sources.append(Source(sid, path, "video"))

    for item in inputs:
        add(Path(item), None)
    seen: dict[str, Source] = {}
    for s in sources:
        if s.id in seen:
            if seen[s.id].path.resolve() == s.path.resolve():
                continue
            raise SlpError(f"two inputs give the same sample id '{s.id}': {seen[s.id].path} and {s.path}; "
                           f"pass their common parent folder instead, so that ids keep their folders")
        seen[s.id] = s
    return sorted(seen.values(), key=lambda s: s.id), problems


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """'K/N' -> (K, N) with 0 <= K < N; None stays None."""
    if spec is None:
        return None
    try:
        k, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise SlpError(f"--shard {spec!r}: expected K/N, e.g. 0/4 for the first of four shards") from None
    if n < 1 or not 0 <= k < n:
        raise SlpError(f"--shard {spec}: K must be in 0..N-1 (shards are numbered from 0, like "
                       f"SLURM_ARRAY_TASK_ID with --array=0-{max(n - 1, 0)})")
    return k, n


def shard_of(sample_id: str, n: int) -> int:
    """The shard (0..n-1) an id belongs to: from a SHA-1 of the id, so it never depends on which
    other inputs exist, their order, the machine or the Python version (CRC32 is no good here:
    it is linear, and ids differing in one digit often share their low bits)."""
    return int.from_bytes(hashlib.sha1(sample_id.encode("utf-8")).digest()[:8], "big") % n


def select_shard(sources: list[Source], shard: tuple[int, int] | None) -> list[Source]:
    if shard is None:
        return sources
    k, n = shard
    return [s for s in sources if shard_of(s.id, n) == k]
