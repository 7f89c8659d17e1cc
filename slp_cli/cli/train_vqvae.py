"""`slp train vqvae`: SOKE's decoupled VQ-VAE tokenizer (slp_cli/models/vqvae.py) through the shared loop."""

from __future__ import annotations

from typing import Optional

import typer

from ..errors import SlpError
from .train import split_langs, train_command


def _codebooks(codes: str | None, parts: str) -> dict | None:
    """'96,192,192' -> the codebook sizes of the configuration's token streams, in their order."""
    if not codes:
        return None
    from ..models.vqvae import CODEBOOK_SIZE, GROUPS

    streams = list(GROUPS[parts])
    try:
        sizes = [int(x) for x in codes.split(",")]
    except ValueError:
        raise SlpError(f"--codes {codes!r}: expected comma-separated integers, e.g. 96,192,192") from None
    if len(sizes) != len(streams):
        raise SlpError(f"--codes needs {len(streams)} size(s) for the streams {', '.join(streams)}; got {codes!r}")
    return {**CODEBOOK_SIZE, **dict(zip(streams, sizes))}


@train_command("vqvae")
def vqvae(
    whole_body: bool = typer.Option(False, "--whole-body", help="Ablation (SOKE table 4): one VQ-VAE for "
                                    "the whole body instead of body / left hand / right hand."),
    body_hands: bool = typer.Option(False, "--body-hands", help="Ablation (SOKE table 4): one VQ-VAE for the "
                                    "body (with the face) and one for both hands."),
    codes: Optional[str] = typer.Option(None, help="Codebook sizes of the token streams, comma-separated in "
                                        "stream order: body,left_hand,right_hand (default 96,192,192, SOKE "
                                        "table S6); body,hands with --body-hands (96,384); one with --whole-body "
                                        "(512)."),
    code_dim: Optional[int] = typer.Option(None, help="Code dimension (default: the preset's; SOKE 512)."),
    window: Optional[int] = typer.Option(None, help="Training window in frames, a multiple of 4 (default: the "
                                         "preset's; T2M-GPT/SOKE 64)."),
    quantizer: Optional[str] = typer.Option(None, help="'ema' (codebook by moving averages, as T2M-GPT and "
                                            "MotionGPT; default) or 'loss' (learned codebook with the "
                                            "embedding loss)."),
    commit: Optional[float] = typer.Option(None, help="Commitment loss weight (default 0.02, T2M-GPT)."),
    langs: Optional[str] = typer.Option(None, help="Comma-separated languages to train on, e.g. asl,csl,dgs "
                                        "(default: every language in the data)."),
):
    """SOKE's decoupled VQ-VAE: discrete motion tokens per body part (upper body with face, left hand, right hand) at 1/4 of the frame rate."""
    if whole_body and body_hands:
        raise SlpError("--whole-body and --body-hands are two different ablations; choose one")
    parts = "whole_body" if whole_body else "body_hands" if body_hands else None
    return {"parts": parts, "codebook_size": _codebooks(codes, parts or "decoupled"), "code_dim": code_dim,
            "window": window, "quantizer": quantizer, "commit": commit, "langs": split_langs(langs)}, {}
