"""`slp import-pose` and `slp export-pose`: .pose files (pose-format) and Progressive Transformers'
skeleton files (.skels + .text/.gloss/.files) to and from artifacts."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import List, Optional

import typer

from .common import DATA, console
from ..errors import SlpError

FORMATS = ("pose", "pt")


def _import_skels(inputs: List[Path], output: Path, fps: Optional[float], lang: str, split: Optional[str]) -> None:
    from ..interop import progressive as pt

    out = pt.import_skels(inputs, output, fps=fps, lang=lang, split=split)
    per = ", ".join(f"{n} {sp}" for sp, n in out["counts"].items())
    console.print(f"wrote {sum(out['counts'].values())} samples ({per}; lang {out['lang']}) at {out['fps']:g} fps "
                  f"to {output}, normalized as the release is ({pt.NORMALIZATION}); PT's nose and neck are not kept",
                  highlight=False)


def import_pose(
    inputs: List[Path] = typer.Argument(..., help="MediaPipe Holistic .pose files (full or reduced to "
                                        "178 points) and/or spoken-to-signed lexicon folders (index.csv "
                                        "+ .pose files); or Progressive Transformers' PREFIX.skels files "
                                        "(with PREFIX.text, .gloss and .files beside them)."),
    output: Path = typer.Option(..., "-o", "--output", help="Artifact (.h5) to write, mp178 layout."),
    fps: Optional[float] = typer.Option(None, help="Frame rate of the artifact; inputs at another rate "
                                        "are resampled linearly (default: the most common input rate; "
                                        "25 for .skels)."),
    lang: str = typer.Option("", help="Sign language code stored with the samples (lexicon rows carry "
                             "their own; .skels default to dgs, PHOENIX-2014T's)."),
    split: Optional[str] = typer.Option(None, help="Split stored with every sample (default: train; for "
                                        ".skels the folder of each .files line, e.g. dev/...)."),
) -> None:
    """Import .pose files and lexicons, or Progressive Transformers' skeleton files, into one artifact; nothing is written if any input fails."""
    from ..artifacts import provenance, save
    from ..atomic import refuse_overwriting
    from ..interop.pose_format import import_poses

    refuse_overwriting([output], inputs)
    skels = [p for p in inputs if p.suffix == ".skels"]
    if skels:
        if len(skels) != len(inputs):
            raise SlpError("give .skels files alone (Progressive Transformers' format), not mixed with .pose "
                           "files or lexicons; import them separately and `slp merge` the artifacts")
        return _import_skels(inputs, output, fps, lang, split)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples, rate = import_poses(inputs, fps=fps, lang=lang)
    for w in caught:
        console.print(f"[yellow]note:[/] {w.message}", highlight=False)
    for s in samples:
        s.split = split or "train"
    save(samples, output, fps=rate,
         provenance=provenance("import-pose", {"fps": fps, "lang": lang, "split": split}, inputs))
    console.print(f"wrote {len(samples)} samples ({sum(s.num_frames for s in samples)} frames at "
                  f"{rate:g} fps) to {output}", highlight=False)


def export_pose(
    input_path: Path = typer.Argument(..., help="Pose artifact (mp178 layout)."),
    sample_id: Optional[str] = typer.Option(None, "--id", help="Sample to export (needed for a .pose file "
                                            "when the artifact holds several; --format pt writes all by "
                                            "default)."),
    output: Path = typer.Option(..., "-o", "--output", help=".pose file to write (pose-format's reduced "
                                "holistic order, 178 points), or with --format pt the PREFIX (or "
                                "PREFIX.skels) of the four Progressive Transformers files."),
    fmt: Optional[str] = typer.Option(None, "--format", help="'pose' (pose-format) or 'pt' (Progressive "
                                      "Transformers: PREFIX.skels, .text, .gloss, .files); default: pt "
                                      "for an output ending in .skels, else pose."),
    split: Optional[str] = typer.Option(None, help="With --format pt: write only this split."),
) -> None:
    """Export one sample as a .pose file (pose-format, spoken-to-signed), or samples as Progressive Transformers' skeleton files."""
    from ..artifacts import load
    from ..atomic import refuse_overwriting
    from ..interop import progressive as pt
    from ..interop.pose_format import write_pose

    fmt = fmt or ("pt" if output.suffix == ".skels" else "pose")
    if fmt not in FORMATS:
        raise SlpError(f"unknown --format {fmt!r}; use one of {', '.join(FORMATS)}")
    refuse_overwriting(pt.output_files(output) if fmt == "pt" else [output], [input_path])
    art = load(input_path)
    if art.layout != "mp178":
        raise SlpError(f"{input_path}: layout {art.layout}; only mp178 samples can be exported")
    few = ", ".join(art.ids[:5]) + (", ..." if len(art) > 5 else "")
    if sample_id is not None and sample_id not in set(art.ids):
        raise SlpError(f"{input_path}: no sample with id '{sample_id}'; ids there include: {few}")
    if fmt == "pt":
        return _export_skels(art, output, sample_id, split)
    if split is not None:
        raise SlpError("--split is for --format pt; a .pose file holds one sample (choose it with --id)")
    if sample_id is None:
        if len(art.samples) != 1:
            raise SlpError(f"{input_path}: {len(art)} samples; choose one with --id (e.g. {few})")
        sample = art.samples[0]
    else:
        sample = art[sample_id]
    write_pose(sample, output, art.fps)
    note = " (normalized coordinates: pose-format viewers expect pixels)" if art.normalized else ""
    console.print(f"wrote {output}: '{sample.id}', {sample.num_frames} frames at {art.fps:g} fps{note}",
                  highlight=False)


def _export_skels(art, output: Path, sample_id: Optional[str], split: Optional[str]) -> None:
    from ..interop import progressive as pt

    samples = [art[sample_id]] if sample_id is not None else art.select(split)
    if not samples:
        raise SlpError(f"{art.path}: no samples in split {split!r} (splits: "
                       f"{', '.join(sorted({s.split for s in art.samples}))})")
    if abs(art.fps - pt.FPS) > 1e-6:
        console.print(f"[yellow]note:[/] {art.path} is at {art.fps:g} fps; Progressive Transformers' tools "
                      f"expect {pt.FPS:g} (files have no frame rate of their own)", highlight=False)
    out = pt.write_skels(samples, output, normalization=art.normalization)
    missing = f"; {out['missing_joints']} missing joints written as 0" if out["missing_joints"] else ""
    console.print(f"wrote {out['samples']} samples ({out['frames']} frames) to {pt.stem(output)}"
                  f".{{skels,text,gloss,files}}; nose written as 0 (mp178 has none){missing}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("import-pose", rich_help_panel=DATA)(import_pose)
    app.command("export-pose", rich_help_panel=DATA)(export_pose)
