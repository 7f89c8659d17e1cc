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


def temporary_path(path: str | Path) -> Path:
    """A hidden name beside ``path`` with its extension, unique to this process."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; rename it onto ``path`` when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
