"""Atomic writes: every output appears whole or not at all.

A file is written under a temporary name in the target's folder (same file system, so the final
rename is atomic; same extension, because OpenCV, Pillow and matplotlib pick the format by it)
and renamed onto the target only when complete. An interruption or an error leaves the previous
output untouched and removes the temporary file. (Artifacts have their own resumable
``<target>.partial`` in slp_cli/artifacts.py, committed the same way.)
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import SlpError


def writable_folder(path: str | Path) -> Path:
    """Create the folder of ``path``; SlpError (one line) when it cannot be created or written."""
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SlpError(f"{path}: cannot create the folder {folder} ({e.strerror or e})") from None
    if not os.access(folder, os.W_OK):
        raise SlpError(f"{path}: cannot write into {folder} (permission denied); choose another output path")
    return folder


def temporary_path(path: str | Path) -> Path:
    """A hidden name beside ``path`` with its extension, unique to this process."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; rename it onto ``path`` when the block ends without error."""
    path = Path(path)
    writable_folder(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_write_all(paths) -> Iterator[list[Path]]:
    """Several files that belong together (e.g. the four files of a Progressive Transformers
    split): yield a temporary path for each; all are renamed onto their targets only once every
    one is written."""
    paths = [Path(p) for p in paths]
    for p in paths:
        writable_folder(p)
    temps = [temporary_path(p) for p in paths]
    try:
        yield temps
        for tmp, path in zip(temps, paths):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | Path, payload: bytes) -> Path:
    with atomic_write(path) as tmp:
        tmp.write_bytes(payload)
    return Path(path)


def write_json(path: str | Path, obj, **kw) -> Path:
    """JSON (indented, UTF-8 kept readable) written atomically."""
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, **kw) + "\n")


def refuse_overwriting(outputs, inputs) -> None:
    """One SlpError line, before any work, when an output is one of the inputs (the same file after
    resolving links): writing it would destroy the input. ``outputs`` and ``inputs`` are paths
    (None entries are ignored)."""
    def same(a: Path, b: Path) -> bool:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()

    ins = [Path(p) for p in inputs if p is not None]
    for out in (Path(p) for p in outputs if p is not None):
        for inp in ins:
            if same(out, inp):
                raise SlpError(f"{out}: is also an input of this stage ({inp}); writing it would destroy the "
                               "input: choose another output path")
