"""`slp tokenize`, `slp reconstruct` and `slp eval-tokenizer`: run a trained VAE / VQ-VAE tokenizer."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from .common import EVAL, MODELS, RichProgress, console, existing, print_json

MODEL_HELP = "Pose tokenizer run directory (e.g. `slp train vae` or `slp train vqvae` output, with model.pt)."
DEVICE_HELP = "auto (CUDA if available), cpu, cuda or cuda:N."
SMPLX_HELP = ("A VQ-VAE of SMPL-X parameters (--input smplx): the folder with SMPLX_NEUTRAL.npz, to pose them "
              "(poses are NaN without it; eval-tokenizer then reports parameter errors).")


def tokenize(
    input_path: Path = typer.Argument(..., help="Pose artifact to tokenize (normalized like the training data)."),
    model: Path = typer.Option(..., "--model", help=MODEL_HELP),
    output: Path = typer.Option(..., "-o", "--output", help="Tokens artifact to write: the poses plus, per "
                                "sample, the tokenizer's arrays: 'mu'/'logvar' (VAE, T x 80), 'tokens_<part>' "
                                "(VQ-VAE, T/4 ids)."),
    split: Optional[str] = typer.Option(None, help="Tokenize only this split (default: every sample)."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """Encode poses with a pose tokenizer: per-frame latents (VAE) or per-part motion tokens (VQ-VAE), for the generators."""
    from ..tokenize import tokenize as run

    existing(model, "tokenizer directory")
    result = run(model, existing(input_path, "pose artifact"), output, split=split, device=device,
                 progress=RichProgress())
    console.print(f"wrote {result['samples']} samples with {', '.join(result['arrays'])} ({result['kind']}) "
                  f"to {output}", highlight=False)
    for s in result["skipped"]:
        console.print(f"[yellow]skipped[/] {s['input']}: {s['reason']}", highlight=False)


def reconstruct(
    tokens_path: Path = typer.Argument(..., help="Tokens artifact written by `slp tokenize`."),
    model: Path = typer.Option(..., "--model", help=MODEL_HELP + " Must be the one that tokenized."),
    output: Path = typer.Option(..., "-o", "--output", help="Pose artifact to write (same sample ids), for "
                                "`slp score` and `slp render`."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    smplx_model_dir: Optional[Path] = typer.Option(None, "--smplx-model-dir", help=SMPLX_HELP),
) -> None:
    """Decode a tokenizer's arrays (VAE latent means, VQ-VAE motion tokens) back to poses."""
    from ..tokenize import reconstruct as run

    existing(model, "tokenizer directory")
    result = run(model, existing(tokens_path, "tokens artifact"), output, device=device,
                 smplx_model_dir=smplx_model_dir, progress=RichProgress())
    console.print(f"wrote {result['samples']} reconstructed samples ({result['kind']}) to {output}", highlight=False)


def eval_tokenizer(
    data: Path = typer.Argument(..., help="Pose artifact with reference poses (normalized like the training data)."),
    model: Path = typer.Option(..., "--model", help=MODEL_HELP),
    split: str = typer.Option("test", help="Split to evaluate; 'all' for every sample."),
    json_path: Optional[str] = typer.Option(None, "--json", help="Write the results as JSON to this file, or to "
                                            "stdout with '-'."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    smplx_model_dir: Optional[Path] = typer.Option(None, "--smplx-model-dir", help=SMPLX_HELP),
) -> None:
    """Reconstruction error of a tokenizer: MPJPE and PA-MPJPE per articulator (and codebook use for VQ-VAEs)."""
    from rich.table import Table

    from ..atomic import refuse_overwriting, write_json
    from ..tokenize import evaluate_tokenizer

    existing(model, "tokenizer directory")
    refuse_overwriting([None if json_path in (None, "-") else json_path], [data])
    result = evaluate_tokenizer(model, existing(data, "pose artifact"), None if split == "all" else split,
                                device=device, smplx_model_dir=smplx_model_dir, progress=RichProgress())
    if json_path == "-":
        print_json(result)
    elif json_path:
        write_json(json_path, result)

    def fmt(x: float) -> str:
        return "-" if not math.isfinite(x) else f"{x:.4f}"

    param = result.get("input") == "smplx" and not result.get("posed")  # SMPL-X errors without a body model
    table = Table("articulator", *(("parameter error", "-", "mean-parameter error") if param else
                                   ("MPJPE", "PA-MPJPE", "mean-pose MPJPE")),
                  title=f"{result['kind']} {model} on {data.name} ({split}: {result['samples']} samples, "
                  f"{result['frames']} frames)")
    for name in result["mpjpe"]:
        table.add_row(name.replace("_", " "), fmt(result["mpjpe"][name]), fmt(result["pa_mpjpe"][name]),
                      fmt(result["mean_pose_mpjpe"][name]))
    console.print(table)
    if result["codebook"]:
        books = Table("token array", "codes", "used", "usage", "perplexity", title="codebooks")
        for g, c in result["codebook"].items():
            books.add_row(g, str(c["size"]), str(c["used"]), f"{c['usage']:.1%}",
                          f"{c['perplexity']:.1f}")
        console.print(books)
    for s in result["skipped"]:
        console.print(f"[yellow]skipped[/] {s['input']}: {s['reason']}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("tokenize", rich_help_panel=MODELS)(tokenize)
    app.command("reconstruct", rich_help_panel=MODELS)(reconstruct)
    app.command("eval-tokenizer", rich_help_panel=EVAL)(eval_tokenizer)
