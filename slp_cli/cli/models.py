"""`slp models [NAME]`: the registered models, their kinds, presets and options."""

from __future__ import annotations

import dataclasses
from typing import Optional

import typer

from .common import MODELS


def models(name: Optional[str] = typer.Argument(None, help="A registered model: show its presets and options.")) -> None:
    """List the registered models (tokenizers, generators, translators) and, for one, its options."""
    from rich.console import Console
    from rich.table import Table

    from ..models import LOOP_FIELDS, get_model_class, registered
    from ..models.base import field_help
    from .options import flag_of

    out = Console()  # a listing: stdout
    if name is None:
        table = Table("model", "kind", "presets", "what it is", title="registered models")
        for n, cls in registered().items():
            table.add_row(n, cls.kind, ", ".join(cls.presets), (cls.__doc__ or "").strip().splitlines()[0])
        out.print(table)
        out.print("Train one with `slp train NAME` (a generator: `slp train generator --arch NAME`); "
                  "`slp models NAME` lists its options.", highlight=False)
        return
    cls = get_model_class(name)
    out.print(f"[bold]{name}[/] ({cls.kind}): {(cls.__doc__ or '').strip()}", highlight=False)
    table = Table("option", *cls.presets, "what it sets", title="hyperparameters (per preset)")
    helps = field_help(cls.Config)
    for f in dataclasses.fields(cls.Config):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        values = [str(p.get(f.name, default)) for p in cls.presets.values()]
        loop = " (loop)" if f.name in LOOP_FIELDS else ""
        table.add_row(f"--{flag_of(f)}", *values, helps[f.name] + loop)
    out.print(table)
    for title, items in (("inputs", {f"--{k.replace('_', '-')} PATH": v for k, v in cls.inputs.items()}),
                         ("shortcuts", {f"--{k}": ", ".join(f"{a}={b}" for a, b in v.items())
                                        for k, v in cls.shortcuts.items()})):
        if items:
            t = Table("option", "meaning", title=title)
            for k, v in items.items():
                t.add_row(k, v)
            out.print(t)
    gen = getattr(cls, "GenerateOptions", None)
    if gen is not None and dataclasses.fields(gen):
        t = Table("option", "default", "meaning", title="generation options (slp generate --model DIR)")
        for f in dataclasses.fields(gen):
            t.add_row(f"--{flag_of(f)}", str(f.default), f.metadata.get("help", ""))
        out.print(t)


def register(app: typer.Typer) -> None:
    app.command("models", rich_help_panel=MODELS)(models)
