"""The SignVAE of Text2Sign Diffusion (section "Method", stage 1): a pose tokenizer from mp178
poses to a 20-dim Gaussian latent per frame (arrays ``mu`` and ``logvar``), the space the latent
diffusion model (slp_cli/models/diffusion.py) and the cross-modal aligner (aligner.py) work in.

The paper gives only the latent size (20) and the 256-frame cap. Its gaps, filled as
docs/diffusion.md says:

* Per-frame latents (not downsampled in time), from one residual MLP over all 178 joints with
  linear mean / log-variance heads and a symmetric decoder: the building blocks of A2V-SLP's VAE
  (slp_cli/models/vae.py, ``Branch``), entangled, since 20 dims are too few to split by
  articulator. Each frame's latent is encoded alone, so a sequence of any length is encoded.
* Loss: A2V-SLP's articulator-weighted L1 (eq. 5: right hand 10, left hand 14, face 2, body 1)
  + beta KL with beta 1e-4 (MLD's VAE KL weight; the A2V-SLP value 1e-6 leaves the latents at an
  arbitrary scale, which the diffusion model would have to undo). Missing joints (NaN) are fed as
  zeros and left out of the loss; the KL is summed over the 20 dims and averaged over frames.
* AdamW, lr 1e-4 (MLD) in the default preset.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import skeleton
from . import PoseTokenizer, TrainingConfig, option, register
from .vae import PARTS, Branch, DisentangledVAE



@dataclass
class SignVAEConfig(TrainingConfig):
    latent_dim: int = option(20, "Latent dims per frame (Text2Sign Diffusion: 20).")
    hidden: list = option(help="Hidden sizes of the encoder MLP (the decoder mirrors them; not in the paper).",
                          factory=lambda: [512, 256])
    beta: float = option(1e-4, "KL weight (not in the paper; MLD's 1e-4).")
    weights: dict = option(help="L1 weight per articulator (A2V-SLP eq. 5; not in Text2Sign Diffusion).",
                           factory=lambda: {"right_hand": 10.0, "left_hand": 14.0, "face": 2.0, "body": 1.0})
    weight_decay: float = option(0.0, "AdamW weight decay.")

    def __post_init__(self):
        if self.latent_dim < 1:
            raise ValueError("latent_dim must be >= 1")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError("hidden needs one or more positive sizes")
        self.hidden = [int(h) for h in self.hidden]
        if self.beta < 0:
            raise ValueError("beta must be >= 0")
        if set(self.weights) != set(PARTS):
            raise ValueError(f"weights need exactly the articulators {PARTS}")


PRESETS = {
    # Not in the paper: MLD's optimizer settings, a PHOENIX-2014T-sized budget.
    "default": dict(batch_size=32, lr=1e-4, max_steps=60000, eval_every=1000, checkpoint_every=2000, patience=20),
    # Tests, smoke runs and the demo: seconds on one CPU core.
    "tiny": dict(hidden=[128, 64], batch_size=4, lr=2e-3, max_steps=300, eval_every=50, checkpoint_every=100,
                 patience=0, log_every=10),
}


@register("signvae")
class SignVAE(DisentangledVAE):
    """Text2Sign Diffusion's SignVAE: per-frame 20-dim Gaussian latents of the whole pose."""

    # One entangled branch in place of A2V-SLP's four; the loss (articulator-weighted L1 + beta KL),
    # the dataset and the tokenizer contract are the A2V-SLP VAE's.
    Config = SignVAEConfig
    presets = PRESETS

    def __init__(self, config: SignVAEConfig, data: dict | None = None):
        PoseTokenizer.__init__(self, config, data)
        self.branch = Branch(178 * 3, config.hidden, config.latent_dim)
        self.parts = {p: skeleton.ARTICULATORS[p] for p in PARTS}

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def posterior(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., 178, 3) poses (NaN allowed) -> latent mean and log-variance (..., latent_dim)."""
        return self.branch.encode(torch.nan_to_num(pose, nan=0.0).flatten(-2))

    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        """(..., latent_dim) -> (..., 178, 3) poses."""
        return self.branch.decoder(z).unflatten(-1, (178, 3))

    def configure_optimizers(self):
        cfg = self.config
        return torch.optim.AdamW(self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay), None
