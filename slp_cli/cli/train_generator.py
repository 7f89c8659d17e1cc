"""`slp train generator --arch a2v --tokenizer VAE_DIR --data CORPUS.h5 -o GEN_DIR`.

``--arch`` picks the registered text-to-pose model (:data:`ARCHS`); its options become config
overrides, and the frozen tokenizer directory goes to the model's ``from_data``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import SlpError
from .common import existing
from .train import split_langs, train_command

# --arch name -> registered model name (slp_cli/models). Later issues add soke, glos, diffusion.
ARCHS = {"a2v": "a2v"}


@train_command("generator")
def generator(
    arch: str = typer.Option("a2v", help=f"Generator architecture: {', '.join(ARCHS)} (A2V-SLP: non-autoregressive "
                             "Transformer over the VAE's latent distributions, with gloss attention)."),
    tokenizer: Path = typer.Option(..., help="Frozen pose tokenizer: a VAE run directory from `slp train vae` "
                                   "(its weights are copied into the generator)."),
    text_encoder: Optional[str] = typer.Option(None, help="Pretrained text encoder by Hugging Face hub id or local "
                                               "directory, kept frozen (the paper: a 768-dim German BERT). Default: "
                                               "the offline encoder (WordPiece trained on the corpus, embeddings "
                                               "trained from scratch)."),
    attention: Optional[str] = typer.Option(None, help="Decoder self-attention: local (gloss attention, the "
                                            "paper's), global, or local+global (tables 2 and 4)."),
    window: Optional[int] = typer.Option(None, help="Gloss-attention window N in frames, odd (default 3: a frame "
                                         "and its two neighbours)."),
    kl_phase_start: Optional[int] = typer.Option(None, help="Step at which phase 2 adds the KL term (eq. 4); "
                                                 "-1: no KL phase (default: the preset's)."),
    kl_weight: Optional[float] = typer.Option(None, help="Weight of the KL term in phase 2."),
    fixed_hand_weights: bool = typer.Option(False, "--fixed-hand-weights", help="Fixed hand weights (14, 10) "
                                            "instead of dynamic hand weighting (eq. 7-8)."),
    langs: Optional[str] = typer.Option(None, help="Comma-separated languages to train on (default: all)."),
):
    """Text-to-pose generator over a frozen pose tokenizer (A2V-SLP by default)."""
    if arch not in ARCHS:
        raise SlpError(f"unknown --arch {arch!r}; choose one of {', '.join(ARCHS)}")
    overrides = {"text_encoder": text_encoder, "attention": attention, "window": window,
                 "kl_phase_start": kl_phase_start, "kl_weight": kl_weight,
                 "dynamic_hands": False if fixed_hand_weights else None, "langs": split_langs(langs)}
    return overrides, {"tokenizer": existing(tokenizer, "tokenizer directory")}, ARCHS[arch]
