"""The articulator-disentangled VAE of A2V-SLP (sections 3.1 and 4.3): a per-frame pose
tokenizer from mp178 poses to an 80-dim Gaussian latent (arrays ``mu`` and ``logvar``).

* Four branches (upper body 8x3, right hand 21x3, left hand 21x3, face 128x3), each a residual
  MLP with linear heads for the latent mean and log-variance; latent sizes 8 / 28 / 28 / 16
  (concatenated in mp178 order: body, right hand, left hand, face). Hidden sizes are twice the
  latent size in the base configuration; ``capacity="large"`` is the 3-layer variant used on
  CSL-Daily (hands 84, 56; face 48, 32; body 24).
* Symmetric, disentangled decoders map each articulator's latent back to its coordinates.
* Loss (eq. 5-6): articulator-weighted L1 (w_RH 10, w_LH 14, w_F 2, w_B 1) + beta KL with beta
  1e-6 (PHOENIX-2014T; 1e-7 for CSL-Daily). Adam, lr 2e-4, betas (0.5, 0.9), 300 epochs, no
  gradient clipping and no early stopping in the paper presets (the paper mentions neither; the
  tiny preset keeps the loop's clipping for its 10x learning rate).
* The hand weights as section 4.3 gives them, right 10 / left 14. The paper contradicts itself:
  the generator's hand weights are right 14 / left 10 (sections 4.4.2, 4.4.3 and table 5, where
  the right-heavy ratio scores better), so 4.3 may have swapped them; kept as written (``--weights
  '{"right_hand": 14, "left_hand": 10, "face": 2, "body": 1}'`` gives the other reading).
* ``entangled=True`` is the single-branch ablation of table 1 (one MLP over all 178 joints to
  the same 80 dims), trained with the same weighted loss.

Choices the paper leaves open, stated: LeakyReLU(0.2) activations; missing joints (NaN) are fed
as zeros and left out of the loss; the KL term is summed over latent dims and averaged over
frames; a batch is ``batch_size`` whole sequences (their frames pooled).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import skeleton
from ..data.loader import SequenceDataset
from . import PoseTokenizer, TrainingConfig, option, register

PARTS = ("body", "right_hand", "left_hand", "face")
LATENT = {"body": 8, "right_hand": 28, "left_hand": 28, "face": 16}
HIDDEN = {
    "base": {"body": [16, 16], "right_hand": [56, 56], "left_hand": [56, 56], "face": [32, 32]},
    "large": {"body": [24, 24], "right_hand": [84, 56], "left_hand": [84, 56], "face": [48, 32]},
}


@dataclass
class VAEConfig(TrainingConfig):
    capacity: str = option("base", "'base' (2-layer branches) or 'large' (3-layer hands and face, as on CSL-Daily).")
    entangled: bool = option(False, "Single-branch ablation (A2V-SLP table 1): one MLP over all 178 joints.")
    beta: float = option(1e-6, "KL weight (paper: 1e-6 PHOENIX-2014T, 1e-7 CSL-Daily).")
    weights: dict = option(help="L1 weight per articulator (section 4.3: right hand 10, left hand 14, face 2, body "
                                "1; the generator's are right 14 / left 10: see the module docstring).",
                           factory=lambda: {"right_hand": 10.0, "left_hand": 14.0, "face": 2.0, "body": 1.0})
    latent: dict = option(help="Latent dims per articulator (body 8, hands 28 + 28, face 16).",
                          factory=lambda: dict(LATENT))
    adam_betas: tuple = option((0.5, 0.9), "Adam's betas (section 4.3).")

    def __post_init__(self):
        if self.capacity not in HIDDEN:
            raise ValueError(f"capacity must be one of {list(HIDDEN)}, not {self.capacity!r}")
        if self.beta < 0:
            raise ValueError("beta must be >= 0")
        if set(self.weights) != set(PARTS) or set(self.latent) != set(PARTS):
            raise ValueError(f"weights and latent need exactly the articulators {PARTS}")
        self.adam_betas = tuple(self.adam_betas)

    @property
    def latent_dim(self) -> int:
        return sum(self.latent.values())


class ResidualMLP(nn.Module):
    """Linear layers through ``sizes``; a layer whose input and output sizes match is residual."""

    def __init__(self, sizes: list[int]):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x):
        for layer in self.layers:
            y = self.act(layer(x))
            x = x + y if y.shape == x.shape else y
        return x


class Branch(nn.Module):
    """Encoder (MLP + mean / log-variance heads) and symmetric decoder of one articulator."""

    def __init__(self, in_dim: int, hidden: list[int], latent: int):
        super().__init__()
        self.encoder = ResidualMLP([in_dim, *hidden])
        self.mu = nn.Linear(hidden[-1], latent)
        self.logvar = nn.Linear(hidden[-1], latent)
        self.decoder = nn.Sequential(ResidualMLP([latent, *hidden[::-1]]), nn.Linear(hidden[0], in_dim))

    def encode(self, x):
        h = self.encoder(x)
        with torch.autocast(h.device.type, enabled=False):  # bf16 rounds log-variances near -10 to 0.0625
            return self.mu(h.float()), self.logvar(h.float())


PRESETS = {
    # PHOENIX-2014T (section 4.3): 300 epochs of 7,096 sentences at 32 sequences per batch.
    "default": dict(batch_size=32, max_steps=66000, eval_every=1000, checkpoint_every=2000, patience=0,
                    grad_clip=0.0),
    # CSL-Daily: larger branches, beta 1e-7 (section 4.3).
    "csl": dict(capacity="large", beta=1e-7, batch_size=32, max_steps=120000, eval_every=1000,
                checkpoint_every=2000, patience=0, grad_clip=0.0),
    # The default architecture, trained briefly: tests and smoke runs.
    "tiny": dict(batch_size=4, max_steps=300, eval_every=50, checkpoint_every=100, patience=0, log_every=10,
                 lr=2e-3),
}


@register("vae")
class DisentangledVAE(PoseTokenizer):
    """Articulator-disentangled VAE of A2V-SLP: per-frame 80-dim Gaussian latents (body 8, hands 28+28, face 16)."""

    Config = VAEConfig
    presets = PRESETS

    def __init__(self, config: VAEConfig, data: dict | None = None):
        super().__init__(config, data)
        self.parts = {p: skeleton.ARTICULATORS[p] for p in PARTS}
        if config.entangled:
            dim = config.latent_dim
            self.branches = nn.ModuleDict({"all": Branch(178 * 3, [2 * dim, 2 * dim], dim)})
        else:
            hidden = HIDDEN[config.capacity]
            self.branches = nn.ModuleDict({
                p: Branch((sl.stop - sl.start) * 3, hidden[p], config.latent[p]) for p, sl in self.parts.items()
            })
        # where each articulator's dims sit in the 80-dim latent (body, right hand, left hand, face)
        bounds = np.cumsum([0] + [config.latent[p] for p in PARTS])
        self.latent_slices = {p: slice(int(a), int(b)) for p, a, b in zip(PARTS, bounds[:-1], bounds[1:])}

    # --- the tokenizer contract ------------------------------------------------------------
    @property
    def array_names(self) -> list[str]:
        return ["mu", "logvar"]

    def encode(self, pose: torch.Tensor) -> dict[str, torch.Tensor]:
        """(..., 178, 3) poses (NaN allowed) -> {"mu", "logvar"}: (..., 80) per frame, float32."""
        mu, logvar = self.posterior(pose.float())
        return {"mu": mu.float(), "logvar": logvar.float()}

    def decode(self, arrays: dict[str, torch.Tensor], num_frames: int | None = None) -> torch.Tensor:
        """Poses (..., 178, 3) of the latent means ``arrays["mu"]``."""
        pose = self.decode_latent(arrays["mu"].float())
        return pose if num_frames is None else pose[..., :num_frames, :, :]

    # --- the Gaussian latent ---------------------------------------------------------------
    def posterior(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., 178, 3) poses (NaN allowed) -> latent mean and log-variance (..., 80)."""
        pose = torch.nan_to_num(pose, nan=0.0)
        if self.config.entangled:
            return self.branches["all"].encode(pose.flatten(-2))
        outs = [self.branches[p].encode(pose[..., sl, :].flatten(-2)) for p, sl in self.parts.items()]
        return torch.cat([m for m, _ in outs], -1), torch.cat([v for _, v in outs], -1)

    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        """(..., 80) latents -> (..., 178, 3) poses."""
        if self.config.entangled:
            return self.branches["all"].decoder(z).unflatten(-1, (178, 3))
        parts = [self.branches[p].decoder(z[..., self.latent_slices[p]]).unflatten(-1, (-1, 3)) for p in PARTS]
        return torch.cat(parts, -2)

    # --- training --------------------------------------------------------------------------
    def make_dataset(self, samples):
        return SequenceDataset([s.pose for s in samples], np.array([s.num_frames for s in samples]))

    def collate(self, items):
        frames = np.concatenate(items)
        valid = np.isfinite(frames).all(-1)
        return {"pose": torch.from_numpy(np.nan_to_num(frames)), "valid": torch.from_numpy(valid),
                "num_frames": len(frames), "batch_size": len(items)}

    def _losses(self, batch, sample: bool) -> dict[str, torch.Tensor]:
        pose, valid = batch["pose"], batch["valid"]
        mu, logvar = self.posterior(pose)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
        recon = self.decode_latent(z).float()
        err = (recon - pose).abs().mean(-1)  # (N, 178) L1 per joint
        dist = torch.linalg.vector_norm(recon - pose, dim=-1)
        out, rec = {}, 0.0
        for p, sl in self.parts.items():
            v = valid[:, sl].float()
            n = v.sum().clamp(min=1)
            part_l1 = (err[:, sl] * v).sum() / n
            rec = rec + self.config.weights[p] * part_l1
            out[f"mpjpe_{p}"] = ((dist[:, sl] * v).sum() / n).detach()
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)).mean()
        out.update(loss=rec + self.config.beta * kl, rec=rec.detach(), kl=kl.detach())
        return out

    def training_step(self, batch):
        return self._losses(batch, sample=True)

    def validation_step(self, batch):
        return self._losses(batch, sample=False)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.config.lr, betas=self.config.adam_betas), None
