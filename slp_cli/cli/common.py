"""What every CLI module shares: one stderr console, the error line, and the sub-apps."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import typer
from rich.console import Console

from ..errors import SlpError

# Humans on stderr, data (e.g. --json) on stdout.
console = Console(stderr=True)

DATA, MODELS, EVAL = "Data", "Models", "Evaluation"
# Commands whose options depend on their arguments (e.g. `slp generate --model DIR` adds that
# model's options): name -> builder(args) returning the command, or None for the plain one.
DYNAMIC: dict = {}


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


class RichProgress:
    """The library's progress protocol (slp_cli/progress.py) drawn with rich on the console: a bar
    with the count, the task's fields (loss, speed...) and the time left; notes print above it.
    Tasks shorter than ``hide_below`` items draw no bar."""

    def __init__(self, hide_below: int = 0):
        self.hide_below = hide_below

    @contextmanager
    def task(self, label: str, total: int | None = None, completed: int = 0) -> Iterator:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        hidden = total is not None and total < self.hide_below
        columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                   TimeRemainingColumn()]
        with Progress(*columns, console=console, transient=True, disable=hidden) as bar:
            task_id = bar.add_task(label, total=total, completed=completed, info="")
            yield _RichTask(bar, task_id)


class _RichTask:
    def __init__(self, bar, task_id):
        self.bar, self.task_id, self.fields = bar, task_id, {}

    def advance(self, n: int = 1) -> None:
        self.bar.advance(self.task_id, n)

    def update(self, completed: int | None = None, **fields: str) -> None:
        self.fields.update(fields)
        info = "  ".join(str(v) for k, v in self.fields.items() if k != "last")
        self.bar.update(self.task_id, completed=completed, info=info)

    def note(self, line: str) -> None:
        self.bar.console.print(line, highlight=False, markup=False)
