"""`slp info FILE`: what an artifact holds, without reading its poses."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer

from .common import DATA, console, print_json, print_skipped


def info(
    path: Path = typer.Argument(..., help="An slp artifact (.h5)."),
    as_json: bool = typer.Option(False, "--json", help="Print the same facts as JSON on stdout."),
) -> None:
    """Show an artifact's schema, layout, fps, normalization, provenance and counts per split and language."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from ..artifacts import read_header

    h = read_header(path)
    lengths = np.asarray(h["lengths"])
    groups: dict[tuple[str, str], list[int]] = {}
    for split, lang, n in zip(h["split"], h["lang"], lengths):
        groups.setdefault((split, lang), []).append(int(n))
    counts = [
        {"split": s, "lang": l, "samples": len(v), "frames": sum(v), "mean_frames": sum(v) / len(v),
         "hours": sum(v) / h["fps"] / 3600}
        for (s, l), v in sorted(groups.items())
    ]
    summary = {k: h[k] for k in ("path", "schema", "layout", "fps", "normalized", "normalization", "provenance")}
    summary.update(samples=len(lengths), frames=h["num_frames"], signers=len(set(h["signer"]) - {""}),
                   counts=counts, skipped=h["skipped"])
    if as_json:
        print_json(summary)
        return
    head = Table(show_header=False, title=str(path), title_justify="left")
    prov = h["provenance"]
    for key, value in [
        ("schema", h["schema"]), ("layout", h["layout"]), ("fps", f"{h['fps']:g}"),
        ("normalized", h["normalization"] if h["normalized"] else "no"),
        ("samples / frames", f"{len(lengths)} / {h['num_frames']}"),
        ("signers", str(summary["signers"])),
        ("made by", f"slp {prov.get('stage', '?')} (slp {prov.get('slp_version', '?')}, {prov.get('created', '?')})"),
        ("arguments", ", ".join(f"{k}={v}" for k, v in prov.get("args", {}).items()) or "-"),
        ("inputs", ", ".join(prov.get("inputs", [])) or "-"),
        ("skipped inputs", str(len(h["skipped"]))),
    ]:
        head.add_row(key, value)
    out = Console()  # what info shows is its output: stdout (pipe it, page it)
    out.print(head)
    table = Table("split", "lang", "samples", "frames", "mean frames", "hours")
    for c in counts:
        table.add_row(c["split"], c["lang"] or "-", str(c["samples"]), str(c["frames"]),
                      f"{c['mean_frames']:.1f}", f"{c['hours']:.2f}")
    out.print(table)
    print_skipped(h["skipped"], "see --json")
    if Counter(h["id"]).most_common(1) and Counter(h["id"]).most_common(1)[0][1] > 1:
        console.print("[yellow]warning:[/] duplicate sample ids")


def register(app: typer.Typer) -> None:
    app.command("info", rich_help_panel=DATA)(info)
