"""`slp view --model a2v=GEN_DIR --dictionary dictionary.h5 [--glosser T2G_DIR] --artifact corpus.norm.h5`: a local
browser viewer (every method signs a typed sentence side by side; artifacts browsed sample by
sample). HTTP API: docs/viewer.md."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import EVAL, console


def view(
    model: Optional[List[str]] = typer.Option(None, "--model", help="A trained generator to compare, as NAME=RUN_DIR "
                                              "(or RUN_DIR, named after its folder); repeat for several."),
    dictionary: Optional[Path] = typer.Option(None, help="Sign dictionary from `slp dict build`: adds the dictionary "
                                              "concatenation baseline (method 'concat')."),
    glosser: Optional[Path] = typer.Option(None, help="A text-to-gloss model (`slp train text2gloss`): the "
                                           "dictionary baseline looks up the glosses it translates the text into "
                                           "(instead of matching word by word), and gloss-conditioned models (GLOS) "
                                           "sign them."),
    artifact: Optional[List[str]] = typer.Option(None, "--artifact", help="An slp artifact to browse (FILE.h5 or "
                                                 "NAME=FILE.h5): a corpus gives the ground truth, generated ones "
                                                 "are shown beside it by sample id; repeat for several."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; the default answers only this machine "
                             "(0.0.0.0: every interface, without authentication)."),
    port: int = typer.Option(8765, min=0, max=65535, help="Port to listen on (0: a free one)."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in the default browser."),
    device: str = typer.Option("auto", help="Device of the --model generators: auto (CUDA if available), cpu or cuda."),
) -> None:
    """Serve a browser viewer: type a sentence, watch every method sign it in 3D side by side."""
    from ..view import Viewer, serve

    viewer = Viewer.open(model or [], dictionary, artifact or [], device=device, glosser=glosser)
    parts = [f"methods: {', '.join(viewer.methods) or 'none'}"]
    if viewer.sources:
        parts.append(f"artifacts: {', '.join(viewer.sources)}")

    def ready(url: str) -> None:
        # The URL on stdout (for scripts), the rest for humans on stderr.
        console.print(f"slp view ({'; '.join(parts)}) — Ctrl+C to stop", highlight=False)
        print(url, flush=True)

    try:
        serve(viewer, host, port, open_browser=open_browser, ready=ready)
    except KeyboardInterrupt:
        console.print("stopped")


def register(app: typer.Typer) -> None:
    app.command("view", rich_help_panel=EVAL)(view)
