"""Text2Sign Diffusion (stage 3): a latent DDPM over the frozen SignVAE's per-frame 20-dim latents
(slp_cli/models/signvae.py), conditioned on the text, with the frozen cross-modal aligner's
time-discounted semantic supervision (slp_cli/models/aligner.py), decoded to mp178 poses.

From the paper (only its summary is available): latent DDPM, text condition (Sentence-BERT),
"Diffusion U-Net" denoiser, semantic loss weighted by (1 - t/T), non-autoregressive generation
of up to 256 frames. Gaps, filled after MLD (and MDM) as docs/diffusion.md lists:

* Schedule: 1000 training steps, scaled-linear betas 0.00085 -> 0.012 (MLD), epsilon prediction.
  ``schedule="cosine"`` is MDM's alternative.
* Denoiser: a 1D temporal U-Net over the latent sequence (the paper's "Diffusion U-Net"): levels
  of ``channels`` (halving the frame rate between levels), each a residual block of two
  kernel-3 convolutions with FiLM (scale and shift) from the timestep embedding plus the pooled
  text, then self-attention over the frames and cross-attention to the text features; a middle
  block at the lowest rate; skip connections. Padded frames are kept at zero and masked out of
  normalisation and attention, so a sentence is denoised the same alone and in a batch.
* Text: :class:`~slp_cli.text.encoders.TextEncoder` (offline default, or a frozen pretrained
  sentence encoder by hub id / path as the paper's Sentence-BERT); texts over
  ``max_text_tokens`` (Sentence-BERT's 128) are refused, not cut.
* Classifier-free guidance: the text replaced by a learned null text with p = 0.1 in training;
  eps = eps(null) + g (eps(text) - eps(null)), g = 7.5 (MLD; MDM uses 2.5).
* Latents are standardised per dim by the training corpus' statistics (LDM's scale factor, per
  dim) before diffusion and restored before decoding / the aligner.
* Semantic loss: 1 - cos(aligner_pose(x0_hat), aligner_text(text)), x0_hat the clean latent
  implied by the predicted noise, weighted per sample by w(t) and by ``semantic_weight`` (0.1;
  not in the paper). w(t) = 1 - t/T (``discounted``, the paper's formula, t = 0 the clean end),
  t/T (``reversed``: strongest at the noisy steps, which is what the summary's prose describes)
  or 0 (``none``: no aligner needed).
* Length: a predictor on the pooled text (as A2V-SLP's): sigmoid x ``max_frames`` (the longest
  training sentence, at most 256), L1 loss. Training sequences over 256 frames are cropped.
* Sampling: DDIM (eta 0, 50 steps, evenly spaced over the 1000 from t = 999 down to 0) or the
  ancestral DDPM sampler over all 1000 steps (posterior variance), both with guidance.
* AdamW, lr 1e-4, batch 64 (MLD).

The frozen SignVAE's and aligner's weights are copied into this model's state_dict (a generator
directory is self-contained; their directories are kept for provenance); both are used in the
step (never precomputed), so that a resumed run reads the loaded weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..data.loader import SequenceDataset
from ..device import to_device
from ..errors import SlpError
from ..tensors import masked_mean, pad
from ..text.encoders import OFFLINE, TextEncoder, make_embedder, sinusoidal
from . import Signed, TextToPose, config_dict, load_model, option, register
from .aligner import (MAX_FRAMES, AlignerConfig, CrossModalAligner, SentenceConfig, check_text_length, fingerprint,
                      latent_stats, load_signvae, texts_of)
from .signvae import SignVAE, SignVAEConfig

SCHEDULES = ("scaled_linear", "linear", "cosine")
WEIGHTINGS = ("discounted", "reversed", "none")
SAMPLERS = ("ddim", "ddpm")
PREDICTIONS = ("epsilon", "sample")


# --- the noise schedule ------------------------------------------------------------------------

def make_betas(schedule: str, steps: int, beta_start: float, beta_end: float) -> torch.Tensor:
    """(steps,) float64 betas: scaled-linear (MLD / Stable Diffusion: linear in sqrt(beta)), linear
    (DDPM) or cosine (Nichol & Dhariwal, MDM)."""
    if schedule == "scaled_linear":
        return torch.linspace(beta_start ** 0.5, beta_end ** 0.5, steps, dtype=torch.float64) ** 2
    if schedule == "linear":
        return torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
    s = 0.008
    t = torch.arange(steps + 1, dtype=torch.float64) / steps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=0.999)


def semantic_weight(t: torch.Tensor, steps: int, weighting: str) -> torch.Tensor:
    """w(t) of the semantic loss for timesteps t in [0, steps): 1 - t/T, t/T, or 0."""
    if weighting == "discounted":
        return 1 - t.float() / steps
    if weighting == "reversed":
        return t.float() / steps
    return torch.zeros_like(t, dtype=torch.float32)


# --- the config ----------------------------------------------------------------------------------

@dataclass
class DiffusionConfig(SentenceConfig):
    # --- text (the encoder: SentenceConfig) ---
    d_model: int = option(256, "Width of the text features the U-Net attends to.")
    enc_layers: int = option(2, "Trainable text encoder layers over the embeddings.")
    enc_heads: int = option(4, "Text encoder heads.")
    enc_ffn: int = option(1024, "Text encoder feed-forward width.")
    # --- denoiser (GAP: a 1D temporal U-Net) ---
    channels: list = option(help="U-Net channels per level (the frame rate halves between levels).",
                            factory=lambda: [256, 512, 512])
    heads: int = option(4, "U-Net attention heads.")
    dropout: float = option(0.1, "Dropout.")
    # --- diffusion (GAP: MLD's) ---
    timesteps: int = option(1000, "Diffusion training steps T (MLD: 1000).")
    prediction: str = option("epsilon", "What the U-Net predicts: epsilon (MLD, the noise) or sample (MDM, the "
                             "clean latent).")
    schedule: str = option("scaled_linear", "Beta schedule: scaled_linear (MLD), linear, cosine (MDM).")
    beta_start: float = option(0.00085, "First beta (MLD: 0.00085).")
    beta_end: float = option(0.012, "Last beta (MLD: 0.012).")
    cond_drop: float = option(0.1, "Probability of dropping the text in training (classifier-free guidance; 0.1).")
    guidance: float = option(7.5, "Default classifier-free guidance scale of `slp generate` (MLD: 7.5; MDM: 2.5).")
    # --- objective ---
    semantic_weighting: str = option("discounted", "Weight of the aligner's semantic loss over t: discounted "
                                     "(1 - t/T, the paper's), reversed (t/T), none (no semantic loss).")
    semantic_weight: float = option(0.1, "Scale of the semantic loss (not in the paper).")
    length_weight: float = option(1.0, "Weight of the length predictor's L1 loss.")
    max_frames: int = option(MAX_FRAMES, "Longest sequence generated (Text2Sign Diffusion: 256).")
    weight_decay: float = option(0.0, "AdamW weight decay.")

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {', '.join(PREDICTIONS)}, not {self.prediction!r}")
        if self.semantic_weighting not in WEIGHTINGS:
            raise ValueError(f"semantic_weighting must be one of {', '.join(WEIGHTINGS)}, "
                             f"not {self.semantic_weighting!r}")
        if not self.channels or any(int(c) < 1 for c in self.channels):
            raise ValueError("channels needs one or more positive widths")
        self.channels = [int(c) for c in self.channels]
        for c in self.channels:
            if c % self.heads or c % _groups(c):
                raise ValueError(f"U-Net width {c} must be divisible by heads {self.heads}")
        if self.d_model % self.enc_heads:
            raise ValueError(f"d_model {self.d_model} must be divisible by enc_heads {self.enc_heads}")
        if self.timesteps < 2 or not 0 < self.beta_start < self.beta_end < 1:
            raise ValueError("need timesteps >= 2 and 0 < beta_start < beta_end < 1")
        if not 0 <= self.cond_drop < 1:
            raise ValueError("cond_drop must be in [0, 1)")
        if not 1 <= self.max_frames <= MAX_FRAMES:
            raise ValueError(f"max_frames must be 1 to {MAX_FRAMES}")


PRESETS = {
    # MLD's settings; the paper gives no budget.
    "default": dict(batch_size=64, lr=1e-4, max_steps=100000, eval_every=1000, checkpoint_every=2000, patience=20),
    # Tests, smoke runs, the demo and the CPU ablations: minutes on one CPU core.
    # MDM's choices where they learn faster: the U-Net predicts the clean latent (epsilon
    # prediction does not beat the mean pose within CPU budgets: docs/diffusion.md), guidance 2.5.
    "tiny": dict(prediction="sample", guidance=2.5, channels=[32, 64], heads=4, d_model=64, embed_dim=64, enc_layers=1, enc_heads=4, enc_ffn=128,
                 dropout=0.0, vocab_size=2000, batch_size=16, lr=1e-3, max_steps=1500, eval_every=250,
                 checkpoint_every=500, patience=0, log_every=25),
}


@dataclass
class DiffusionOptions:
    sampler: str = option("ddim", "ddim (deterministic for a --seed at --eta 0) or ddpm (ancestral, every "
                          "training step: 1000).")
    steps: int = option(50, "DDIM sampling steps (MLD: 50); DDPM always takes the training steps.")
    guidance: float | None = option(None, "Classifier-free guidance scale (default: the model's --guidance, MLD's "
                                    "7.5; 1: the text-conditional model alone).")
    eta: float = option(0.0, "DDIM eta (0: deterministic; 1: as noisy as DDPM).")
    frames: int | None = option(None, "Generate exactly this many frames per sentence instead of the predicted "
                                "length (at most the model's maximum).")
    clip: bool = option(True, "Clip each step's clean-latent estimate to the range of the training latents (MLD: "
                        "no clipping; see docs/diffusion.md).")

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise ValueError(f"--sampler must be one of {', '.join(SAMPLERS)}, not {self.sampler!r}")
        if self.steps < 1:
            raise ValueError("--steps must be at least 1")
        if (self.guidance is not None and self.guidance < 0) or self.eta < 0:
            raise ValueError("--guidance and --eta must be >= 0")


# --- the U-Net ------------------------------------------------------------------------------------

def _groups(c: int) -> int:
    return math.gcd(c, 32)


class MaskedGroupNorm(nn.GroupNorm):
    """GroupNorm over the real frames only (x (B, C, T), mask (B, 1, T) float)."""

    def forward(self, x, mask):
        b, c, t = x.shape
        g = x.float().view(b, self.num_groups, -1, t)
        m = mask[:, None].float()
        n = (m.sum(-1, keepdim=True) * g.shape[2]).clamp(min=1)
        mean = (g * m).sum((2, 3), keepdim=True) / n
        var = (((g - mean) ** 2) * m).sum((2, 3), keepdim=True) / n
        out = ((g - mean) / torch.sqrt(var + self.eps)).view(b, c, t).to(x.dtype)
        return out * self.weight[None, :, None] + self.bias[None, :, None]


class ResBlock(nn.Module):
    """Two kernel-3 convolutions, FiLM from the embedding (timestep + pooled text), a residual."""

    def __init__(self, cin: int, cout: int, emb: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = MaskedGroupNorm(_groups(cin), cin), nn.Conv1d(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb, 2 * cout)
        self.norm2, self.conv2 = MaskedGroupNorm(_groups(cout), cout), nn.Conv1d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb, mask):
        # a normalised padded frame is not 0: mask before every convolution
        h = self.conv1(F.silu(self.norm1(x, mask)) * mask) * mask
        scale, shift = self.film(F.silu(emb))[..., None].chunk(2, 1)
        h = self.norm2(h, mask) * (1 + scale) + shift
        h = self.conv2(self.drop(F.silu(h)) * mask) * mask
        return (self.skip(x) + h) * mask


class AttnBlock(nn.Module):
    """Pre-norm self-attention over the frames, cross-attention to the text, feed-forward."""

    def __init__(self, c: int, d_text: int, heads: int, dropout: float):
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(c) for _ in range(3))
        self.self_attn = nn.MultiheadAttention(c, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(c, heads, dropout=dropout, kdim=d_text, vdim=d_text, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(c, 2 * c), nn.GELU(), nn.Linear(2 * c, c))

    def forward(self, x, frame_mask, memory, memory_mask):
        h = x.transpose(1, 2)
        q = self.norms[0](h)
        h = h + self.self_attn(q, q, q, key_padding_mask=~frame_mask, need_weights=False)[0]
        h = h + self.cross_attn(self.norms[1](h), memory, memory, key_padding_mask=~memory_mask,
                                need_weights=False)[0]
        h = h + self.ffn(self.norms[2](h))
        return h.transpose(1, 2) * frame_mask[:, None].to(h.dtype)


class UNet1D(nn.Module):
    """eps_theta(x_t, t, text): (B, T, latent) -> (B, T, latent); T a multiple of ``stride``."""

    def __init__(self, latent: int, channels: list[int], d_text: int, heads: int, dropout: float):
        super().__init__()
        c0 = channels[0]
        emb = 4 * c0
        self.c0 = c0
        self.time_mlp = nn.Sequential(nn.Linear(c0, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.text_emb = nn.Linear(d_text, emb)
        self.conv_in = nn.Conv1d(latent, c0, 3, padding=1)
        self.down, self.down_attn, self.downsample = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        prev = c0
        for i, c in enumerate(channels):
            self.down.append(ResBlock(prev, c, emb, dropout))
            self.down_attn.append(AttnBlock(c, d_text, heads, dropout))
            if i < len(channels) - 1:
                self.downsample.append(nn.Conv1d(c, c, 3, stride=2, padding=1))
            prev = c
        self.mid = nn.ModuleList([ResBlock(prev, prev, emb, dropout), ResBlock(prev, prev, emb, dropout)])
        self.mid_attn = AttnBlock(prev, d_text, heads, dropout)
        self.up, self.up_attn, self.upsample = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for i, c in reversed(list(enumerate(channels))):
            self.up.append(ResBlock(prev + c, c, emb, dropout))
            self.up_attn.append(AttnBlock(c, d_text, heads, dropout))
            if i > 0:
                self.upsample.append(nn.Conv1d(c, channels[i - 1], 3, padding=1))
                prev = channels[i - 1]
            else:
                prev = c
        self.norm_out = MaskedGroupNorm(_groups(c0), c0)
        self.conv_out = nn.Conv1d(c0, latent, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        self.stride = 2 ** (len(channels) - 1)

    def forward(self, x, t, frame_mask, memory, memory_mask, pooled):
        masks = [frame_mask]
        for _ in range(len(self.downsample)):  # a frame at half rate is real if either of its two is
            masks.append(F.max_pool1d(masks[-1][:, None].float(), 2, ceil_mode=True)[:, 0] > 0)
        emb = self.time_mlp(sinusoidal(t, self.c0).to(x.dtype)) + self.text_emb(pooled)
        fm = [m[:, None].to(x.dtype) for m in masks]
        h = self.conv_in(x.transpose(1, 2)) * fm[0]
        skips = []
        for i, (res, attn) in enumerate(zip(self.down, self.down_attn)):
            h = attn(res(h, emb, fm[i]), masks[i], memory, memory_mask)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h) * fm[i + 1]
        lvl = len(skips) - 1
        h = self.mid[0](h, emb, fm[lvl])
        h = self.mid_attn(h, masks[lvl], memory, memory_mask)
        h = self.mid[1](h, emb, fm[lvl])
        for j, (res, attn) in enumerate(zip(self.up, self.up_attn)):
            i = lvl - j
            h = attn(res(torch.cat([h, skips[i]], 1), emb, fm[i]), masks[i], memory, memory_mask)
            if i > 0:
                h = F.interpolate(h, scale_factor=2, mode="nearest")[..., :fm[i - 1].shape[-1]] * fm[i - 1]
                h = self.upsample[j](h) * fm[i - 1]
        h = self.conv_out(F.silu(self.norm_out(h, fm[0])) * fm[0]) * fm[0]
        return h.transpose(1, 2)


# --- the model ------------------------------------------------------------------------------------

@register("diffusion")
class Text2SignDiffusion(TextToPose):
    """Text2Sign Diffusion: latent DDPM over SignVAE latents, 1D U-Net, classifier-free guidance, aligner loss."""

    Config = DiffusionConfig
    GenerateOptions = DiffusionOptions
    presets = PRESETS
    inputs = {"tokenizer": "Frozen SignVAE run directory (`slp train signvae`; its weights are copied in).",
              "aligner": "Frozen cross-modal aligner run directory (`slp train aligner` over the same SignVAE), "
                         "for the semantic loss; not needed with --semantic-weighting none."}
    shortcuts = {"no-semantic": {"semantic_weighting": "none"}}

    def __init__(self, config: DiffusionConfig, data: dict | None = None):
        super().__init__(config, data)
        data = self.data
        if not data.get("signvae_config") or not data.get("langs") or not data.get("max_frames"):
            raise SlpError("a diffusion generator is built from data: train it with `slp train generator --arch "
                           "diffusion --tokenizer SIGNVAE_DIR --aligner ALIGNER_DIR --data ...`")
        self.signvae = SignVAE(SignVAEConfig(**data["signvae_config"]))
        self.signvae.requires_grad_(False)
        self.aligner = None
        if data.get("aligner_config"):
            self.aligner = CrossModalAligner(AlignerConfig(**data["aligner_config"]), data["aligner_data"])
            self.aligner.requires_grad_(False)
        latent, d = self.signvae.latent_dim, config.d_model
        self.register_buffer("latent_mean", torch.tensor(data.get("latent_mean") or [0.0] * latent))
        self.register_buffer("latent_std", torch.tensor(data.get("latent_std") or [1.0] * latent))
        self.text_encoder = TextEncoder(make_embedder(config.text_encoder, data.get("text_tokenizer"), config.embed_dim),
                                        data["langs"], d, config.enc_layers, config.enc_heads, config.enc_ffn,
                                        config.dropout)
        self.null_text = nn.Parameter(torch.randn(d) * 0.02)  # the "no text" of classifier-free guidance
        self.length_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))
        self.unet = UNet1D(latent, config.channels, d, config.heads, config.dropout)
        betas = make_betas(config.schedule, config.timesteps, config.beta_start, config.beta_end)
        abar = torch.cumprod(1 - betas, 0)
        for name, value in (("betas", betas), ("alphas_cumprod", abar)):
            self.register_buffer(name, value.float(), persistent=False)

    # --- building from data ------------------------------------------------------------------
    @classmethod
    def from_data(cls, config: DiffusionConfig, samples: list, **inputs) -> "Text2SignDiffusion":
        from ..text.tokenizer import TextTokenizer

        cls.check_inputs(inputs)
        signvae = load_signvae(inputs.get("tokenizer"), "the diffusion generator")
        aligner = None
        if inputs.get("aligner") is not None:
            aligner = load_model(inputs["aligner"], expect="aligner")
            if aligner.data.get("tokenizer_fingerprint") != fingerprint(signvae):
                raise SlpError(f"{inputs['aligner']}: this aligner was trained over another SignVAE than "
                               f"{inputs['tokenizer']}; give the SignVAE it was trained with, or train an aligner "
                               "over this one")
        elif config.semantic_weighting != "none":
            raise SlpError("the semantic loss needs the frozen aligner: give --aligner ALIGNER_DIR (from `slp train "
                           "aligner`), or --semantic-weighting none")
        texts_of(samples)
        langs = sorted({s.lang for s in samples})
        mean, std = latent_stats(signvae, samples)
        lo, hi = latent_range(signvae, samples, mean, std)
        data = {"tokenizer": str(inputs["tokenizer"]), "signvae_config": config_dict(signvae.config), "langs": langs,
                "latent_mean": mean, "latent_std": std, "latent_min": lo, "latent_max": hi,
                "max_frames": min(config.max_frames, max(s.num_frames for s in samples))}
        if aligner is not None:
            data.update(aligner=str(inputs["aligner"]), aligner_config=config_dict(aligner.config),
                        aligner_data=aligner.data)
        if config.text_encoder == OFFLINE:
            data["text_tokenizer"] = TextTokenizer.train([s.text for s in samples], langs, config.vocab_size).to_json()
        model = cls(config, data)
        model.signvae.load_state_dict(signvae.state_dict())
        if aligner is not None:
            model.aligner.load_state_dict(aligner.state_dict())
        return model

    def train(self, mode: bool = True):
        super().train(mode)
        self.signvae.eval()
        if self.aligner is not None:
            self.aligner.eval()
        return self

    @property
    def max_frames(self) -> int:
        return int(self.data["max_frames"])

    @property
    def stride(self) -> int:
        return self.unet.stride

    # --- data ------------------------------------------------------------------------------------
    def prepare_texts(self, texts: list[str], langs: list[str]) -> list[dict]:
        check_text_length(self.text_encoder, texts, self.config.max_text_tokens)
        return self.text_encoder.prepare(texts, langs)

    def make_dataset(self, samples):
        """Items: checked text inputs of this model and of the aligner, poses (missing joints 0)
        cropped to ``max_frames``. Latents and aligner embeddings are computed in the step."""
        try:
            prepared = self.prepare_texts([s.text for s in samples], [s.lang for s in samples])
            sem = self.aligner.prepare_texts([s.text for s in samples], [s.lang for s in samples]) \
                if self.aligner is not None else [None] * len(samples)
        except SlpError as e:
            raise SlpError(f"{_first_bad(self, samples)}: {e}") from None
        items = [{**t, "aligner": a, "pose": np.nan_to_num(s.pose[:self.max_frames])}
                 for s, t, a in zip(samples, prepared, sem)]
        return SequenceDataset(items, np.array([len(i["pose"]) for i in items]))

    def collate(self, items):
        batch = self.text_encoder.collate(items)
        if items[0]["aligner"] is not None:
            batch["aligner"] = self.aligner.text_encoder.collate([i["aligner"] for i in items])
        pose, frames = pad([i["pose"] for i in items])
        t = pose.shape[1]
        extra = -t % self.stride
        if extra:
            pose = F.pad(pose, (0, 0, 0, 0, 0, extra))
            frames = F.pad(frames, (0, extra))
        batch.update(pose=pose, frame_mask=frames, num_frames=int(frames.sum()), batch_size=len(items))
        return batch

    # --- pieces ------------------------------------------------------------------------------------
    def encode_text(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Text features (B, L, d), their mask, and the predicted normalised length (B,) in (0, 1)."""
        memory, mask = self.text_encoder(batch)
        length = torch.sigmoid(self.length_head(masked_mean(memory, mask))).squeeze(-1)
        return memory, mask, length

    def condition(self, memory, mask, drop: torch.Tensor | None):
        """(memory, mask, pooled) with the text of rows ``drop`` (B,) bool replaced by the null text."""
        pooled = masked_mean(memory, mask)
        if drop is None:
            return memory, mask, pooled
        # (in training always through torch.where, so that the null text is in every step's graph: DDP)
        null = self.null_text.to(memory.dtype)
        first = torch.zeros_like(mask)
        first[:, 0] = True
        memory = torch.where(drop[:, None, None], null.expand_as(memory), memory)
        mask = torch.where(drop[:, None], first, mask)
        pooled = torch.where(drop[:, None], null.expand_as(pooled), pooled)
        return memory, mask, pooled

    def denoise(self, x, t, frame_mask, memory, mask, drop=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted noise, predicted clean latent) (B, T, latent) of x_t, float32: the U-Net
        predicts one (``prediction``), the other follows from x_t."""
        memory, mask, pooled = self.condition(memory, mask, drop)
        out = self.unet(x, t, frame_mask, memory, mask, pooled).float()
        if self.config.prediction == "epsilon":
            return out, self.predict_x0(x, t, out)
        return self.predict_eps(x, t, out), out

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
        a = self.alphas_cumprod[t].view(-1, *[1] * (x0.dim() - 1))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def predict_x0(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The clean latent implied by the noise: (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
        a = self.alphas_cumprod[t].view(-1, *[1] * (xt.dim() - 1))
        return (xt - (1 - a).sqrt() * eps) / a.sqrt()

    def predict_eps(self, xt: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """The noise implied by the clean latent: (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)."""
        a = self.alphas_cumprod[t].view(-1, *[1] * (xt.dim() - 1))
        return (xt - a.sqrt() * x0) / (1 - a).sqrt()

    def normalise(self, z):
        return (z - self.latent_mean) / self.latent_std

    def denormalise(self, x):
        return x * self.latent_std + self.latent_mean

    @torch.no_grad()
    def clean_latents(self, pose: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """Standardised SignVAE latent means (B, T, latent) of the poses, 0 on padded frames."""
        with torch.autocast(pose.device.type, enabled=False):
            z = self.signvae.posterior(pose.float())[0]
        return self.normalise(z) * frame_mask[..., None]

    # --- loss ----------------------------------------------------------------------------------------
    def _losses(self, batch: dict, training: bool) -> dict[str, torch.Tensor]:
        cfg = self.config
        frame_mask = batch["frame_mask"]
        x0 = self.clean_latents(batch["pose"], frame_mask)
        b = len(x0)
        if training:
            t = torch.randint(0, cfg.timesteps, (b,), device=x0.device)
            noise = torch.randn_like(x0)
            drop = torch.rand(b, device=x0.device) < cfg.cond_drop
        else:  # the same timesteps and noise at every evaluation: comparable dev losses
            g = torch.Generator().manual_seed(int(frame_mask.sum()))
            t = torch.randint(0, cfg.timesteps, (b,), generator=g).to(x0.device)
            noise = torch.randn(x0.shape, generator=g).to(x0.device)
            drop = None
        m = frame_mask[..., None].float()
        xt = self.q_sample(x0, t, noise) * m
        memory, mask, length = self.encode_text(batch)
        eps, x0_hat = self.denoise(xt, t, frame_mask, memory, mask, drop)
        n = (m.sum() * x0.shape[-1]).clamp(min=1)
        err = eps - noise if cfg.prediction == "epsilon" else x0_hat - x0
        mse = ((err ** 2) * m).sum() / n
        true_len = frame_mask.sum(1).float() / self.max_frames
        length_loss = (length.float() - true_len).abs().mean()
        loss = mse + cfg.length_weight * length_loss
        out = {"mse": mse.detach(), "length": length_loss.detach()}
        if self.aligner is not None and "aligner" in batch:
            with torch.autocast(x0.device.type, enabled=False):
                pose_emb = self.aligner.embed_latents(self.denormalise(x0_hat.float()), frame_mask)
                with torch.no_grad():
                    text_emb = self.aligner.embed_text(batch["aligner"])
            sem = 1 - (pose_emb * text_emb).sum(-1)  # (B,) 1 - cosine similarity
            w = semantic_weight(t, cfg.timesteps, cfg.semantic_weighting)
            sem_loss = (w * sem).mean()
            if cfg.semantic_weighting != "none":
                loss = loss + cfg.semantic_weight * sem_loss
            out.update(semantic=sem.mean().detach(), semantic_weighted=sem_loss.detach())
        out["loss"] = loss
        return out

    def training_step(self, batch):
        return self._losses(batch, training=True)

    def validation_step(self, batch):
        return self._losses(batch, training=False)

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.config.lr, weight_decay=self.config.weight_decay), None

    # --- sampling ------------------------------------------------------------------------------------
    def guided_eps(self, x, t: int, frame_mask, memory, mask, guidance: float) -> torch.Tensor:
        """eps(null) + g (eps(text) - eps(null)), both in one batch of 2B."""
        b = len(x)
        tt = torch.full((2 * b,), t, device=x.device, dtype=torch.long)
        drop = torch.cat([torch.zeros(b, dtype=torch.bool, device=x.device), torch.ones(b, dtype=torch.bool,
                                                                                         device=x.device)])
        eps, _ = self.denoise(torch.cat([x, x]), tt, torch.cat([frame_mask, frame_mask]), torch.cat([memory, memory]),
                           torch.cat([mask, mask]), drop)
        cond, uncond = eps.chunk(2)
        return uncond + guidance * (cond - uncond)

    def sampling_timesteps(self, options: DiffusionOptions) -> list[int]:
        """Descending timesteps: every one for DDPM; ``steps`` evenly spaced from T - 1 to 0 for DDIM."""
        big_t = self.config.timesteps
        if options.sampler == "ddpm":
            return list(range(big_t - 1, -1, -1))
        steps = min(options.steps, big_t)
        return sorted({int(round(x)) for x in np.linspace(big_t - 1, 0, steps)}, reverse=True)

    @torch.no_grad()
    def sample(self, memory, mask, frame_mask, options: DiffusionOptions, generator: torch.Generator | None,
               eps_fn=None) -> torch.Tensor:
        """Standardised clean latents (B, T, latent) by DDIM or DDPM from Gaussian noise.
        ``eps_fn(x, t)`` replaces the guided denoiser (tests)."""
        shape = (*frame_mask.shape, self.signvae.latent_dim)
        dev = frame_mask.device

        def randn():
            if generator is None:
                return torch.randn(shape, device=dev)
            return torch.randn(shape, generator=generator, device=generator.device).to(dev)

        m = frame_mask[..., None].float()
        g = self.guidance_of(options)
        eps_fn = eps_fn or (lambda x, t: self.guided_eps(x, t, frame_mask, memory, mask, g))
        abar = self.alphas_cumprod.double()
        ts = self.sampling_timesteps(options)
        lo = hi = None
        if options.clip and self.data.get("latent_min"):
            lo = torch.tensor(self.data["latent_min"], device=dev)
            hi = torch.tensor(self.data["latent_max"], device=dev)
        x = randn() * m
        for i, t in enumerate(ts):
            eps = eps_fn(x, t)
            a_t = abar[t]
            a_prev = abar[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0, dtype=torch.float64, device=dev)
            x0 = (x - (1 - a_t).sqrt().float() * eps) / a_t.sqrt().float()
            if lo is not None:  # keep the clean estimate in the training latents' range, eps to match
                x0 = torch.maximum(torch.minimum(x0, hi), lo)
                eps = (x - a_t.sqrt().float() * x0) / (1 - a_t).sqrt().float()
            if options.sampler == "ddpm":  # posterior q(x_{t-1} | x_t, x0), variance beta~_t
                beta = 1 - a_t / a_prev
                c0 = (a_prev.sqrt() * beta / (1 - a_t)).float()
                ct = ((1 - beta).sqrt() * (1 - a_prev) / (1 - a_t)).float()
                x = c0 * x0 + ct * x
                if i + 1 < len(ts):
                    x = x + (beta * (1 - a_prev) / (1 - a_t)).sqrt().float() * randn()
            else:
                sigma = options.eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()
                x = a_prev.sqrt().float() * x0 + (1 - a_prev - sigma ** 2).clamp(min=0).sqrt().float() * eps
                if options.eta > 0 and i + 1 < len(ts):
                    x = x + sigma.float() * randn()
            x = x * m
        return x

    def guidance_of(self, options: DiffusionOptions) -> float:
        return float(self.config.guidance if options.guidance is None else options.guidance)

    # --- generation ----------------------------------------------------------------------------------
    def prepare(self, text: str, lang: str) -> dict:
        return {**self.prepare_texts([text], [lang])[0], "unknown": self.text_encoder.unknown_words(text)}

    def lengths(self, length: torch.Tensor, frames: int | None) -> torch.Tensor:
        if frames is not None:
            if not 1 <= frames <= self.max_frames:
                raise SlpError(f"--frames {frames}: this model generates 1 to {self.max_frames} frames per sentence")
            return torch.full_like(length, frames, dtype=torch.long)
        return (length.float() * self.max_frames).round().clamp(1, self.max_frames).long()

    @torch.no_grad()
    def sign_batch(self, prepared: list[dict], options: DiffusionOptions, generator) -> list[Signed]:
        """Poses for a batch of prepared sentences: predicted lengths, then guided sampling of the
        whole batch, then the SignVAE decoder."""
        device = self.latent_mean.device
        batch = to_device(self.text_encoder.collate(prepared), device)
        memory, mask, length = self.encode_text(batch)
        lengths = self.lengths(length, options.frames)
        t = int(lengths.max())
        t += -t % self.stride
        frame_mask = torch.arange(t, device=device)[None, :] < lengths[:, None]
        x = self.sample(memory, mask, frame_mask, options, generator)
        poses = self.signvae.decode_latent(self.denormalise(x)).float().cpu().numpy()
        steps = len(self.sampling_timesteps(options))
        return [Signed(pose=poses[i, :n], unknown=p["unknown"],
                       report={"sampler": options.sampler, "steps": steps, "guidance": self.guidance_of(options)})
                for i, (n, p) in enumerate(zip(lengths.tolist(), prepared))]


@torch.no_grad()
def latent_range(signvae: SignVAE, samples: list, mean: list, std: list) -> tuple[list[float], list[float]]:
    """Per-dim minimum and maximum of the standardised SignVAE latents of the training frames."""
    frames = torch.as_tensor(np.concatenate([s.pose[:MAX_FRAMES] for s in samples]), dtype=torch.float32)
    z = torch.cat([signvae.posterior(c)[0] for c in frames.split(8192)])
    z = (z - torch.tensor(mean)) / torch.tensor(std)
    return z.amin(0).tolist(), z.amax(0).tolist()


def _first_bad(model: Text2SignDiffusion, samples: list) -> str:
    for s in samples:
        try:
            model.prepare_texts([s.text], [s.lang])
            if model.aligner is not None:
                model.aligner.prepare_texts([s.text], [s.lang])
        except SlpError:
            return f"sample '{s.id}'"
    return "a sample"
