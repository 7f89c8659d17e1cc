"""What every CLI module shares: one stderr console, the error line, and the sub-apps."""

from __future__ import annotations

import json
import sys
from pathlib import Path

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
