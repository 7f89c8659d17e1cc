"""`slp train slt`: the back-translator, in the three runs of 004's training recipe.

    slp train slt --data corpus.norm.h5 -o slt-pre  --stage pretrain
    slp train slt --data corpus.norm.h5 -o slt-head --stage finetune-head --init slt-pre
    slp train slt --data corpus.norm.h5 -o slt      --stage finetune-all  --init slt-head

Each run is one run of the shared loop (resume, DDP, logs); ``--init`` starts from the best
weights of an earlier run, and takes its architecture, tokenizer and vocabularies from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import SlpError
from .train import split_langs, train_command


@train_command("slt")
def slt(
    stage: str = typer.Option("pretrain", help="'pretrain': pseudo-gloss + contrastive alignment (no decoder); "
                              "'finetune-head': translation loss, only the mapper and the decoder train (needs "
                              "--init); 'finetune-all': translation loss, everything trains (without --init: the "
                              "no-pre-training baseline)."),
    init: Optional[Path] = typer.Option(None, help="Run directory of an earlier `slp train slt` stage to start "
                                        "from (its best weights, architecture, tokenizer and vocabularies)."),
    lm: Optional[str] = typer.Option(None, help="Pretrained encoder-decoder LM (hub id available offline, or a "
                                     "save_pretrained folder; the paper: an mBART) as sequence encoder and "
                                     "decoder, with LoRA. Default: a small encoder-decoder trained from scratch "
                                     "with a tokenizer trained on the corpus."),
    lora_r: Optional[int] = typer.Option(None, help="LoRA rank on the LM's q/v projections (paper: 16)."),
    lora_alpha: Optional[int] = typer.Option(None, help="LoRA scaling alpha (paper: 32)."),
    lora_targets: Optional[str] = typer.Option(None, help="Comma-separated names of the LM's modules that get "
                                               "LoRA (default: q_proj,v_proj, mBART's query and value "
                                               "projections; T5 calls them q,v)."),
    pg_weight: Optional[float] = typer.Option(None, "--lambda", help="Weight of the pseudo-gloss loss in "
                                              "pre-training: align + lambda * pseudo-gloss (paper: 1.0)."),
    warmup_steps: Optional[int] = typer.Option(None, help="Linear warm-up steps before the cosine decay "
                                               "(default: five epochs of PHOENIX-2014T)."),
    langs: Optional[str] = typer.Option(None, help="Comma-separated languages to train on (default: all)."),
):
    """Back-translation model (pose -> text): hierarchical pre-training, then two fine-tuning stages."""
    from ..models.slt import STAGES

    if stage not in STAGES:
        raise SlpError(f"unknown --stage {stage!r}; choose {', '.join(STAGES)}")
    if init is not None:
        given = [name for name, v in (("--lm", lm), ("--lora-r", lora_r), ("--lora-alpha", lora_alpha),
                                      ("--lora-targets", lora_targets)) if v is not None]
        if given:
            raise SlpError(f"{', '.join(given)}: the architecture comes from --init {init}; drop these options")
        if not (Path(init) / "model.pt").exists():
            raise SlpError(f"{init}: no finished SLT run here (model.pt); train the earlier stage first")
    targets = [t.strip() for t in lora_targets.split(",") if t.strip()] if lora_targets else None
    overrides = {"stage": stage, "lm": lm, "lora_r": lora_r, "lora_alpha": lora_alpha, "lora_targets": targets,
                 "pg_weight": pg_weight, "warmup_steps": warmup_steps, "langs": split_langs(langs)}
    return overrides, ({"init": init} if init is not None else {})
