"""What every CLI module shares: one stderr console, the error line, and the sub-apps."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import typer
from rich.console import Console

from ..errors import SlpError

# Humans on stderr, data (e.g. --json) on stdout.
console = Console(stderr=True)

DATA, MODELS, EVAL = "Data", "Models", "Evaluation"


def fail(message: str, code: int = 1) -> None:
    """Print one clear error line and exit non-zero."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def print_skipped(skipped: list[dict], where: str, shown: int = 10) -> None:
    """List skipped inputs ({input, reason}), the first ``shown`` of them, and say where the rest are."""
    for s in skipped[:shown]:
        console.print(f"[yellow]skipped[/] {s['input']}: {s['reason']}", highlight=False)
    if len(skipped) > shown:
        console.print(f"[yellow]... and {len(skipped) - shown} more[/] ({where})", highlight=False)


def existing(path: Path, what: str = "input") -> Path:
    """Fail early with one line when an input path does not exist."""
    if not Path(path).exists():
        raise SlpError(f"{path}: {what} not found")
    return Path(path)


@contextmanager
def split_progress(label: str, artifact: Path, split: str | None, hide_below: int) -> Iterator[Callable[..., None]]:
    """A progress bar over the samples of ``split`` (all when None) of an artifact, hidden for
    fewer than ``hide_below``; yields ``advance(n=1)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..artifacts import read_header

    total = sum(1 for sp in read_header(artifact)["split"] if split is None or sp == split)
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                  transient=True, disable=total < hide_below) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n=1: progress.advance(task, n)
