"""A2V-SLP text-to-pose generator (A2V-SLP, sections 3.2, 3.3
and 4.4): a non-autoregressive Transformer that predicts, for every frame, the mean and
log-variance of the frozen disentangled VAE's 80-dim latent (slp_cli/models/vae.py), decoded to
mp178 poses by the VAE decoder.

* Text: :class:`slp_cli.text.encoders.TextEncoder` -- the offline default (corpus-trained
  WordPiece + embeddings learned from scratch) or a frozen pretrained encoder by hub id / path
  (BERT's 768-dim features in the paper), projected to ``d_model``, positions, 3 layers / 4 heads
  / FFN 1024.
* Length predictor on the mean-pooled encoder output: sigmoid of a small MLP = target length /
  ``max_frames`` (the longest training sentence); L1 loss, part of the objective.
* Decoder: ``dec_layers`` pre-norm layers of (gloss attention, global cross-attention to the
  text, FFN) over learned time queries.
* Gloss attention (section 3.2, 4.4.2, after GASLT's design): ``local`` (the default) is GASLT's
  learned-offset attention: every query predicts, per head, N fractional offsets (a linear layer
  of the query) around its own position, reference points -(N//2)..N//2, and attends to keys and
  values linearly interpolated at those N positions (softmax over the N samples only). The
  offset layer starts at zero (as Deformable DETR's sampling offsets do; GASLT uses PyTorch's
  default init), so that training starts from the fixed window; positions are clamped to the
  sentence (its first / last frame is read beyond it: GASLT wraps around the sentence, which
  puts the end of a sentence next to its start) and never reach padded frames; positions are
  computed in float32 (bf16 cannot tell frame 300 from 301). ``band`` is a fixed hard window
  |t - s| <= N // 2; ``global`` plain self-attention (table 2); ``local+global`` GASLT's
  weighted fusion LayerNorm(x + w * global + (1 - w) * local) with a learned scalar w from 0.5
  (table 4). Query construction (table 4): ``none`` (frame-wise), ``mean`` (the mean of the
  projected queries of the q frames around each frame) or ``attention`` (their softmax-weighted
  mean, one learned score per frame), over real frames only (GASLT's average pooling counts
  zero padding at the edges and, in a batch, the padded frames).
* Time queries: the rest pose (hands down) -- the VAE latent mean of the training corpus' mean
  first frame -- projected into ``d_model`` by a learned linear layer and replicated over time,
  plus a learned per-step offset (zero at start), sinusoidal absolute positions and, since
  local attention alone cannot tell a frame how long its sentence is, a projected sinusoid of
  the relative position t / T (scaled to ``max_frames``; ``relative_position``, not in the paper).
* Output: per frame mu and log-variance (80 + 80), split into the VAE's articulator slices,
  computed in float32 also under bf16 autocast (bf16 rounds log-variances near -10 to steps of
  0.0625); the output layer's bias starts at the training targets' mean (the log-variances sit
  near -10, a long way from a zero-initialised output).
* Loss (eq. 3): masked L1 on mu and on log-variance per articulator, summed over that
  articulator's latent dims (eq. 3's L1 norms) and averaged over its valid frames; weights body
  1, face 2 and hands b * s with base (b_RH, b_LH) = (3.5, 2.5) and the shared boost s of eq.
  7-8, updated once per epoch (section 4.4.3's "during training"; the paper trains with
  PyTorch Lightning, whose schedules are per epoch): s <- clip(s * (EMA(L_hand) / (EMA(L_other)
  + eps)) ** alpha, 1, s_max), s_max 4, where L_hand / L_other are the mean unweighted hand /
  non-hand L1 terms of the training steps, EMA decay ``boost_ema`` 0.99 per step, ``alpha``
  0.01 per epoch (the paper gives neither; s reaches s_max after log(4) / (alpha log r) epochs
  for a loss ratio r). ``dynamic_hands=False`` uses the fixed weights b * s_max = (14, 10) of
  the gloss-attention ablations. With an entangled VAE (table 1) the latent dims belong to no
  articulator: one weight for all 80 dims, the dims-weighted mean of the fixed weights (8.9).
* Two phases (section 3.3, 4.4), each its own run of the shared loop: ``--phase l1`` regresses
  the latent parameters (eq. 3) plus the length; ``--phase kl --init L1_RUN`` starts from phase
  1's best weights with a fresh optimizer and scheduler and adds ``kl_weight`` * eq. 4,
  KL(N(mu^, s^2) || N(mu, s^2)) summed over the latent dims of each articulator and over
  articulators, averaged over valid frames (``kl_lr``: its own learning rate if set);
  ``--phase all`` trains the two one after the other (phase 1 in OUTPUT/stages/1-l1), so early
  stopping in phase 1 never skips phase 2.
  ``kl_weight`` is not in the paper; the VAE posteriors are narrow (log-variance about -10 on
  the synthetic corpus), so the KL is a precision-weighted squared error of order 1e6-1e9 per
  frame; the default 1e-6 (the VAE's beta, section 4.3) makes it about 0.5 % of the summed L1
  at the end of phase 1 on the synthetic corpus (bench/ablation_a2v.py).
* Dev criterion (best checkpoint, ReduceLROnPlateau, early stopping): the phase's objective with
  the fixed hand weights (14, 10): no KL term in phase 1.
* Adam, lr 2e-4, weight decay 1e-4, ReduceLROnPlateau(factor 0.9, patience 40) on the dev loss
  (section 4.4), stepped per evaluation: the default preset evaluates once per epoch of
  PHOENIX-2014T (7,096 sentences / 32 = 222 steps; set ``--eval-every`` to one epoch of another
  corpus) and stops early after 60 epochs without a better dev loss, so the plateau can fire
  before early stopping. No gradient clipping in the default preset (none in the paper; the
  tiny preset keeps the loop's 1.0 for its 10x learning rate).

Targets: the frozen VAE encodes each batch's ground-truth poses in the training step (cheap
next to the Transformer, and always from the loaded weights, also on resume). Missing joints:
an articulator with a missing joint in a frame gives no target there (the VAE reads NaN as 0,
so its latent would be wrong); with an entangled VAE any missing joint masks the frame. The
frozen VAE's weights are copied into this model's state_dict: a generator directory is
self-contained (``vae_dir`` is kept for provenance only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import skeleton
from ..data.loader import SequenceDataset
from ..errors import SlpError
from ..device import to_device
from ..tensors import pad
from ..text.encoders import OFFLINE, TextEncoder, make_embedder, sinusoidal
from . import Signed, TextToPose, TrainingConfig, config_dict, load_model, option, register
from .vae import PARTS, DisentangledVAE, VAEConfig

ATTENTION = ("local", "band", "global", "local+global")
QUERIES = ("none", "mean", "attention")
PHASES = ("l1", "kl", "all")
HANDS = skeleton.HANDS
OTHERS = tuple(p for p in PARTS if p not in HANDS)


@dataclass
class A2VConfig(TrainingConfig):
    # --- text encoder ---
    text_encoder: str = option(OFFLINE, "Pretrained text encoder by Hugging Face hub id or local directory, kept "
                               "frozen (the paper: a 768-dim German BERT). Default: the offline encoder (WordPiece "
                               "trained on the corpus, embeddings trained from scratch).")
    vocab_size: int = option(8000, "WordPiece vocabulary of the offline text encoder.")
    # --- architecture (section 3.2) ---
    d_model: int = option(512, "Model width (section 3.2: 512).")
    embed_dim: int = option(256, "Offline token embedding size (a pretrained encoder brings its own).")
    enc_layers: int = option(3, "Text encoder layers (3).")
    enc_heads: int = option(4, "Text encoder heads (4).")
    enc_ffn: int = option(1024, "Text encoder feed-forward width (1024).")
    dec_layers: int = option(6, "Pose decoder layers (6).")
    dec_heads: int = option(8, "Pose decoder heads (8).")
    dec_ffn: int = option(1024, "Pose decoder feed-forward width (1024).")
    dropout: float = option(0.1, "Dropout.")
    attention: str = option("local", "Decoder self-attention: local (gloss attention with learned offsets, the "
                            "paper's), band (a fixed window), global, or local+global (tables 2 and 4).")
    window: int = option(3, "Gloss-attention window N, odd: keys sampled per query (local) or frames |t - s| <= "
                         "N // 2 (band) (3).")
    query: str = option("none", "Gloss-attention query: none (frame-wise, the paper's), mean or attention over "
                        "--query-span frames (table 4).")
    query_span: int = option(3, "Frames q a mean or attention query aggregates, odd (table 4: 3 or 5).")
    relative_position: bool = option(True, "Add the relative position t/T to the time queries (not in the paper).")
    # --- objective (section 3.3, 4.4.3) ---
    phase: str = option("l1", "Training phase (section 3.3): l1 (latent L1 regression), kl (adds the KL term; "
                        "needs --init L1_RUN), all (the two runs, phase 1 into OUTPUT/stages/).")
    weights: dict = option(help="Base loss weight per articulator; the hands' are multiplied by the boost s (eq. 7).",
                           factory=lambda: {"body": 1.0, "right_hand": 3.5, "left_hand": 2.5, "face": 2.0})
    dynamic_hands: bool = option(True, "Dynamic hand weighting (eq. 7-8); off: the fixed weights base x s_max.")
    s_max: float = option(4.0, "Largest hand boost s (eq. 8).")
    boost_alpha: float = option(0.01, "Exponent alpha of the boost update, once per epoch (eq. 8; not in the paper).")
    boost_ema: float = option(0.99, "Per-step EMA decay of the hand / non-hand losses (eq. 8; not in the paper).")
    length_weight: float = option(1.0, "Weight of the length predictor's L1 loss.")
    kl_lr: float = option(0.0, "Learning rate of phase 2 (0: --lr; the tiny preset's 2e-4 is the paper's, 10x below "
                          "its phase-1 rate).")
    kl_weight: float = option(1e-6, "Weight of the KL term in phase 2 (not in the paper; the VAE's beta).")
    weight_decay: float = option(1e-4, "Adam weight decay (section 4.4).")
    plateau_factor: float = option(0.9, "ReduceLROnPlateau factor (section 4.4).")
    plateau_patience: int = option(40, "ReduceLROnPlateau patience in evaluations (section 4.4: 40 epochs); keep "
                                   "--patience (early stopping) above it, or the plateau never fires.")

    def __post_init__(self):
        if self.attention not in ATTENTION:
            raise ValueError(f"attention must be one of {', '.join(ATTENTION)}, not {self.attention!r}")
        if self.query not in QUERIES:
            raise ValueError(f"query must be one of {', '.join(QUERIES)}, not {self.query!r}")
        if self.phase not in PHASES:
            raise ValueError(f"phase must be one of {', '.join(PHASES)}, not {self.phase!r}")
        for name, n in (("window", self.window), ("query_span", self.query_span)):
            if n < 1 or n % 2 == 0:
                raise ValueError(f"{name} must be an odd number of frames >= 1 (centred on the frame), not {n}")
        for name, d, h in (("encoder", self.d_model, self.enc_heads), ("decoder", self.d_model, self.dec_heads)):
            if h < 1 or d % h:
                raise ValueError(f"d_model {d} must be divisible by the {name} heads {h}")
        if set(self.weights) != set(PARTS):
            raise ValueError(f"weights need exactly the articulators {', '.join(PARTS)}")
        if self.s_max < 1:
            raise ValueError("s_max must be >= 1")
        if self.kl_weight < 0 or self.length_weight < 0:
            raise ValueError("kl_weight and length_weight must be >= 0")
        if not 0 <= self.boost_ema < 1:
            raise ValueError("boost_ema must be in [0, 1)")

    def part_weights(self, boost: float) -> dict[str, float]:
        return {p: w * (boost if p in HANDS else 1.0) for p, w in self.weights.items()}


PRESETS = {
    # Section 3.2 / 4.4: one evaluation (plateau step) per epoch of PHOENIX-2014T (7,096 / 32);
    # the paper gives no step budget (early stopping on dev) nor its patience.
    "default": dict(batch_size=32, max_steps=100000, eval_every=222, checkpoint_every=2220, patience=60,
                    grad_clip=0.0),
    # Tests, smoke runs and the CPU ablations (bench/ablation_a2v.py): seconds to minutes on one
    # CPU core. (A d_model 128 / 3-layer variant learned less in the same number of steps on
    # the synthetic corpus, at three times the cost.) A larger alpha: a few dozen epochs only.
    # Phase 2 at the paper's 2e-4: restarting Adam at 2e-3 undid part of phase 1 (test DTW-MJE
    # 0.088 after phase 1, 0.092 after 500 KL steps at 2e-3, 0.084 at 2e-4).
    "tiny": dict(d_model=64, embed_dim=64, enc_layers=1, enc_heads=2, enc_ffn=128, dec_layers=2, dec_heads=4,
                 dec_ffn=128, dropout=0.0, vocab_size=2000, batch_size=8, max_steps=300, lr=2e-3, eval_every=50,
                 checkpoint_every=100, patience=0, log_every=10, plateau_patience=5, boost_alpha=0.05, kl_lr=2e-4),
}


# --- attention ---------------------------------------------------------------------------------

def gloss_attention_mask(frame_mask: torch.Tensor, window: int | None) -> torch.Tensor:
    """(B, T) bool real frames -> (B, 1, T, T) bool, True where query frame t may attend key s.

    Band attention: |t - s| <= window // 2; ``window=None``: global. Padded keys are never
    attended, except that every frame may attend itself, so that no row is empty (a padded
    query then only sees itself and stays finite; real frames never see padding)."""
    t = frame_mask.shape[1]
    idx = torch.arange(t, device=frame_mask.device)
    allowed = frame_mask[:, None, :].expand(-1, t, -1)
    if window is not None:
        allowed = allowed & ((idx[:, None] - idx[None, :]).abs() <= window // 2)
    return (allowed | torch.eye(t, dtype=torch.bool, device=frame_mask.device))[:, None]


def _fp32(x: torch.Tensor):
    """No autocast inside (positions, offsets and the output head stay float32 under bf16)."""
    return torch.autocast(x.device.type, enabled=False)


def interpolation_weights(pos: torch.Tensor, frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Linear interpolation at fractional frame positions ``pos`` (already inside the sentence):
    the frames below and above (long) and the weight of the one above (its gradient reaches
    the offsets)."""
    lo = pos.detach().floor().clamp(0, frames - 1)
    frac = pos - lo
    lo = lo.long()
    return lo, (lo + 1).clamp(max=frames - 1), frac


class FrameAttention(nn.Module):
    """Decoder self-attention over frames (gloss attention, section 3.2): queries aggregated as
    ``query`` says, then ``band`` / ``global`` (dense attention under a mask) or ``local``
    (GASLT's learned offsets: N interpolated keys per query and head)."""

    def __init__(self, d: int, heads: int, dropout: float, kind: str, window: int, query: str, span: int):
        super().__init__()
        self.heads, self.p, self.kind, self.window, self.query, self.span = heads, dropout, kind, window, query, span
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)
        self.query_score = nn.Linear(d, 1) if query == "attention" else None
        if kind == "local":
            self.offsets = nn.Linear(d, heads * window)
            nn.init.zeros_(self.offsets.weight)  # start on the fixed window (see the module docstring)
            nn.init.zeros_(self.offsets.bias)
            self.register_buffer("reference", torch.arange(window, dtype=torch.float32) - window // 2,
                                 persistent=False)

    def aggregate(self, q: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """Queries (B, T, d) -> mean / attention-weighted queries over the ``span`` real frames
        around each frame (``none``: unchanged)."""
        if self.query == "none":
            return q
        allowed = gloss_attention_mask(frame_mask, self.span)[:, 0]  # (B, T, T), never padding
        with _fp32(q):
            if self.query == "mean":
                w = allowed.float() / allowed.sum(-1, keepdim=True)
            else:  # one learned score per key frame, softmax over each query's window
                score = self.query_score(q.float()).squeeze(-1)[:, None, :].expand_as(allowed)
                w = torch.softmax(score.masked_fill(~allowed, float("-inf")), -1)
            return (w @ q.float()).to(q.dtype)

    def forward(self, x: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.heads
        q = self.aggregate(self.q(x), frame_mask)
        k, v = self.kv(x).view(b, t, 2, h, -1).permute(2, 0, 3, 1, 4)  # (B, H, T, dh) each
        heads_q = q.view(b, t, h, -1).transpose(1, 2)
        p = self.p if self.training else 0.0
        if self.kind != "local":
            mask = gloss_attention_mask(frame_mask, self.window if self.kind == "band" else None)
            o = F.scaled_dot_product_attention(heads_q, k, v, attn_mask=mask, dropout_p=p)
        else:
            with _fp32(x):
                offsets = self.offsets(q.float()).view(b, t, h, self.window).transpose(1, 2)  # (B, H, T, N)
                pos = torch.arange(t, device=x.device, dtype=torch.float32)[:, None] + self.reference + offsets
                last = (frame_mask.sum(1) - 1).clamp(min=0).float()[:, None, None, None]
                pos = torch.minimum(pos.clamp(min=0), last)  # inside the sentence: never a padded frame
                lo, hi, frac = interpolation_weights(pos, t)
                # q . k(interpolated) = the interpolated dot products: gather them from the full
                # score matrix, and scatter the attention back onto frames for the values (two
                # matrix products: faster than gathering N interpolated keys and values per query)
                full = heads_q.float() @ k.float().transpose(-1, -2) / math.sqrt(k.shape[-1])  # (B, H, T, T)
                scores = full.gather(-1, lo) * (1 - frac) + full.gather(-1, hi) * frac
                attn = F.dropout(torch.softmax(scores, -1), p, self.training)
                weights = torch.zeros_like(full).scatter_add(-1, lo, attn * (1 - frac)).scatter_add(-1, hi, attn * frac)
                o = (weights @ v.float()).to(v.dtype)
        return self.out(o.transpose(1, 2).reshape(b, t, d))


class Attention(nn.Module):
    """Multi-head cross-attention on scaled_dot_product_attention with a boolean mask (True = attend)."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.p = heads, dropout
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q = self.q(x).view(b, t, self.heads, -1).transpose(1, 2)
        k, v = self.kv(memory).view(b, memory.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.p if self.training else 0.0)
        return self.out(o.transpose(1, 2).reshape(b, t, d))


class DecoderLayer(nn.Module):
    """Pre-norm: gloss (self) attention over frames, global cross-attention to the text, FFN.
    ``local+global``: GASLT's weighted fusion of a local and a global self-attention."""

    def __init__(self, config: A2VConfig):
        super().__init__()
        d, heads, dropout = config.d_model, config.dec_heads, config.dropout
        kinds = ("local", "global") if config.attention == "local+global" else (config.attention,)
        self.self_attn = nn.ModuleList(FrameAttention(d, heads, dropout, k, config.window, config.query,
                                                      config.query_span) for k in kinds)
        if len(kinds) == 2:
            self.fusion = nn.Parameter(torch.tensor(0.5))  # weight w of the global branch
            self.fusion_norm = nn.LayerNorm(d)
        self.cross_attn = Attention(d, heads, dropout)
        self.ffn = nn.Sequential(nn.Linear(d, config.dec_ffn), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(config.dec_ffn, d))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(3))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, frame_mask, memory, memory_mask):
        h = self.norms[0](x)
        if len(self.self_attn) == 1:
            x = x + self.drop(self.self_attn[0](h, frame_mask))
        else:
            local, glob = (self.drop(a(h, frame_mask)) for a in self.self_attn)
            x = self.fusion_norm(x + self.fusion * glob + (1 - self.fusion) * local)
        x = x + self.drop(self.cross_attn(self.norms[1](x), memory, memory_mask))
        return x + self.drop(self.ffn(self.norms[2](x)))


# --- the model ---------------------------------------------------------------------------------

@dataclass
class A2VOptions:
    sample: bool = option(False, "Draw the latents from the predicted distributions (seeded by --seed) instead "
                          "of decoding their means.")
    frames: int | None = option(None, "Generate exactly this many frames per sentence instead of the predicted "
                                "length (at most the longest training sentence).")


@register("a2v")
class A2VGenerator(TextToPose):
    """A2V-SLP: non-autoregressive Transformer over the frozen VAE's latent distributions, with gloss attention."""

    Config = A2VConfig
    GenerateOptions = A2VOptions
    presets = PRESETS
    inputs = {"tokenizer": "Frozen pose tokenizer: a VAE run directory from `slp train vae` (its weights are "
                           "copied into the generator)."}
    shortcuts = {"fixed-hand-weights": {"dynamic_hands": False}}
    scheduler_interval = "eval"
    # phase 2 (`--phase kl --init L1_RUN`) sets these anew; the architecture comes from phase 1
    run_fields = frozenset({"phase", "kl_weight", "kl_lr", "weight_decay", "plateau_factor", "plateau_patience",
                            "boost_alpha", "boost_ema", "length_weight"})
    run_sequences = {"phase": {"all": [{"phase": "l1"}, {"phase": "kl"}]}}

    def __init__(self, config: A2VConfig, data: dict | None = None):
        """``data`` (from_data): ``vae_config``, ``langs``, ``max_frames``, ``rest_latent``,
        ``target_mean`` (mean VAE mu and log-variance of the training frames), ``epoch_steps``
        (optimizer steps per epoch: the boost's schedule), ``text_tokenizer`` (the offline
        WordPiece), ``tokenizer`` (the VAE directory, for provenance), fps and normalization."""
        super().__init__(config, data)
        data = self.data
        if not data.get("vae_config") or not data.get("max_frames") or not data.get("langs"):
            raise SlpError("an a2v generator is built from data: train it with `slp train generator --arch a2v "
                           "--tokenizer VAE_DIR` (its data lacks the VAE, languages or maximum length)")
        self.vae = DisentangledVAE(VAEConfig(**data["vae_config"]))
        self.vae.requires_grad_(False)
        self.latent_slices = dict(self.vae.latent_slices)
        latent = self.vae.config.latent_dim
        d = config.d_model
        self.text_encoder = TextEncoder(make_embedder(config.text_encoder, data.get("text_tokenizer"), config.embed_dim),
                                        data["langs"], d, config.enc_layers, config.enc_heads, config.enc_ffn,
                                        config.dropout)
        self.length_head = nn.Sequential(nn.Linear(d, d // 2), nn.GELU(), nn.Linear(d // 2, 1))
        rest = data.get("rest_latent") or [0.0] * latent
        self.register_buffer("rest_latent", torch.tensor(rest, dtype=torch.float32))
        self.rest_proj = nn.Linear(latent, d)
        self.time_query = nn.Parameter(torch.zeros(self.max_frames, d))
        self.rel_proj = nn.Linear(d, d, bias=False) if config.relative_position else None
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.dec_layers))
        self.out_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 2 * latent)
        if data.get("target_mean"):  # start from the mean target (log-variances sit near -10, far from 0)
            with torch.no_grad():
                self.head.bias.copy_(torch.tensor(data["target_mean"]))
        # boost s, per-step EMA of the hand and non-hand L1, steps seen (eq. 8); saved, so resume is exact
        self.register_buffer("boost", torch.tensor([1.0, 0.0, 0.0, 0.0]))

    # --- building from data ------------------------------------------------------------------
    @classmethod
    def from_data(cls, config: A2VConfig, samples: list, **inputs) -> "A2VGenerator":
        """The data state (VAE, languages, maximum length, rest latent, offline text tokenizer)
        and the frozen VAE's weights. ``tokenizer`` is the VAE run directory."""
        from ..text.tokenizer import TextTokenizer

        cls.check_inputs(inputs)
        if config.phase == "kl":
            raise SlpError("--phase kl continues a phase-1 run (A2V-SLP, section 3.3): give --init L1_RUN (from "
                           "--phase l1), or --phase all to train both")
        if config.phase == "all":
            raise SlpError("--phase all is a sequence of two runs: give it as an option (`--phase all`), not in "
                           "a preset or config")
        tokenizer = inputs.get("tokenizer")
        if tokenizer is None:
            raise SlpError("a2v needs its frozen VAE: give --tokenizer VAE_DIR (from `slp train vae`)")
        vae = load_model(tokenizer, expect="vae")
        empty = [s.id for s in samples if not s.text.strip()]
        if empty:
            raise SlpError(f"training sample '{empty[0]}' has no text ({len(empty)} such); a text-to-pose model "
                           "needs the sentence of every training sample")
        langs = sorted({s.lang for s in samples})
        data = {"tokenizer": str(tokenizer), "vae_config": config_dict(vae.config), "langs": langs,
                "max_frames": max(s.num_frames for s in samples),
                "epoch_steps": max(len(samples) // config.batch_size, 1)}
        if config.text_encoder == OFFLINE:
            data["text_tokenizer"] = TextTokenizer.train([s.text for s in samples], langs, config.vocab_size).to_json()
        data["rest_latent"] = rest_latent(vae, samples).tolist()
        with torch.no_grad():
            frames = torch.as_tensor(np.concatenate([s.pose for s in samples]), dtype=torch.float32)
            data["target_mean"] = torch.cat(vae.posterior(frames), -1).mean(0).tolist()
        model = cls(config, data)
        model.vae.load_state_dict(vae.state_dict())
        return model

    def on_init(self, samples: list, init) -> None:
        """Phase 2 (or any run from an earlier one): the boost's epoch follows this run's batches."""
        if self.config.phase == "all":
            raise SlpError("--phase all is a sequence of two runs: give it as an option (`--phase all`)")
        self.data["epoch_steps"] = max(len(samples) // self.config.batch_size, 1)

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()  # frozen: always in inference mode
        return self

    # --- data ----------------------------------------------------------------------------------
    def articulator_mask(self, pose: np.ndarray) -> np.ndarray:
        """(T, 4) bool: frames whose articulator (in PARTS order) is fully present, i.e. where the
        VAE latent of that articulator is a valid target (any joint for an entangled VAE)."""
        seen = np.isfinite(pose).all(-1)
        if self.vae.config.entangled:
            return np.repeat(seen.all(-1, keepdims=True), len(PARTS), 1)
        return np.stack([seen[:, skeleton.ARTICULATORS[p]].all(-1) for p in PARTS], -1)

    @torch.no_grad()
    def vae_targets(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen-VAE latent mean and log-variance (..., 80) of (..., 178, 3) poses, in float32."""
        with _fp32(pose):
            return self.vae.posterior(pose.float())

    def make_dataset(self, samples):
        """Items: checked text inputs (frozen features for a pretrained encoder), poses (missing
        joints 0) and articulator masks. The VAE targets are computed per batch in the step, so
        that they come from the loaded weights on resume too. Sequences longer than the trained
        maximum (dev sentences) are cropped to it."""
        prepared = self.text_encoder.prepare_each([s.text for s in samples], [s.lang for s in samples])
        bad = next((i for i, p in enumerate(prepared) if isinstance(p, SlpError)), None)
        if bad is not None:
            raise SlpError(f"sample '{samples[bad].id}': {prepared[bad]}")
        items = []
        for s, text in zip(samples, prepared):
            pose = s.pose[:self.max_frames]
            items.append({**text, "pose": np.nan_to_num(pose), "mask": self.articulator_mask(pose)})
        return SequenceDataset(items, np.array([len(i["pose"]) for i in items]))

    def collate(self, items):
        batch = self.text_encoder.collate(items)
        pose, frames = pad([i["pose"] for i in items])
        batch.update(pose=pose, frame_mask=frames,
                     part_mask=pad([i["mask"] for i in items], dtype=torch.bool)[0] & frames[..., None],
                     num_frames=int(frames.sum()), batch_size=len(items))
        return batch

    # --- forward -------------------------------------------------------------------------------
    def time_queries(self, lengths: torch.Tensor, t: int) -> torch.Tensor:
        """(B, t, d) decoder queries for sentences of ``lengths`` frames (padded to ``t``)."""
        if t > self.max_frames:
            raise SlpError(f"{t} frames asked for, but this model was trained for at most "
                           f"{self.max_frames} frames per sentence")
        d = self.config.d_model
        pos = torch.arange(t, device=lengths.device)
        q = self.rest_proj(self.rest_latent) + self.time_query[:t] + sinusoidal(pos, d)
        q = q.expand(len(lengths), -1, -1)
        if self.rel_proj is not None:
            rel = pos[None, :] * (self.max_frames / lengths.clamp(min=1).float()[:, None])
            q = q + self.rel_proj(sinusoidal(rel, d))
        return q

    def encode_text(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Text features (B, L, d), their mask, and the predicted normalised length (B,) in (0, 1)."""
        memory, mask = self.text_encoder(batch)
        m = mask[..., None].to(memory.dtype)
        pooled = (memory * m).sum(1) / m.sum(1).clamp(min=1)
        return memory, mask, torch.sigmoid(self.length_head(pooled)).squeeze(-1)

    def decode_latents(self, memory, memory_mask, frame_mask) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted latent mean and log-variance (B, T, 80), float32, for frames ``frame_mask`` (B, T)."""
        x = self.time_queries(frame_mask.sum(1), frame_mask.shape[1])
        mem_mask = memory_mask[:, None, None, :]
        for layer in self.layers:
            x = layer(x, frame_mask, memory, mem_mask)
        with _fp32(x):  # bf16 would round log-variances near -10 to steps of 0.0625
            mu, logvar = self.head(self.out_norm(x.float())).chunk(2, -1)
        return mu, logvar

    # --- loss ----------------------------------------------------------------------------------
    def entangled_weight(self) -> float:
        """An entangled VAE's latent dims belong to no articulator: one weight for all of them,
        the dims-weighted mean of the fixed articulator weights."""
        fixed = self.config.part_weights(self.config.s_max)
        sizes = {p: sl.stop - sl.start for p, sl in self.latent_slices.items()}
        return sum(fixed[p] * sizes[p] for p in PARTS) / sum(sizes.values())

    def _losses(self, batch: dict, training: bool) -> dict[str, torch.Tensor]:
        cfg = self.config
        memory, memory_mask, length = self.encode_text(batch)
        mu, logvar = self.decode_latents(memory, memory_mask, batch["frame_mask"])
        tmu, tlv = self.vae_targets(batch["pose"])
        pmask = batch["part_mask"].float()
        err = (mu - tmu).abs() + (logvar - tlv).abs()
        lv_hat = logvar.clamp(-30, 20)
        kl_elem = 0.5 * (tlv - lv_hat + (lv_hat.exp() + (mu - tmu) ** 2) / tlv.exp() - 1)
        l1, kl = {}, 0.0
        for i, p in enumerate(PARTS):  # eq. 3 and 4: summed over the articulator's dims, mean over frames
            sl, m = self.latent_slices[p], pmask[..., i]
            n = m.sum().clamp(min=1)
            l1[p] = (err[..., sl].sum(-1) * m).sum() / n
            kl = kl + (kl_elem[..., sl].sum(-1) * m).sum() / n
        true_len = batch["frame_mask"].sum(1).float() / self.max_frames
        length_loss = (length.float() - true_len).abs().mean()
        dynamic = training and cfg.dynamic_hands and not self.vae.config.entangled
        boost = self.boost[0].clone() if dynamic else torch.tensor(cfg.s_max, device=mu.device)
        if self.vae.config.entangled:  # (every articulator has the same frame mask here)
            latent = self.entangled_weight() * sum(l1.values())
        else:
            latent = sum(cfg.weights[p] * (boost if p in HANDS else 1.0) * l1[p] for p in PARTS)
        loss = latent + cfg.length_weight * length_loss + (cfg.kl_weight * kl if cfg.phase == "kl" else 0.0)
        if dynamic:
            self._track_losses(l1)
        out = {"loss": loss, "latent": latent.detach(), "length": length_loss.detach(), "kl": kl.detach(),
               "boost": boost.detach().clone()}
        out.update({f"l1_{p}": l1[p].detach() for p in PARTS})
        return out

    @torch.no_grad()
    def _track_losses(self, l1: dict[str, torch.Tensor]) -> None:
        """Eq. 8's moving averages of the unweighted hand and non-hand L1, on the device (no host
        transfer per step)."""
        b = self.boost
        hand = sum(l1[p] for p in HANDS).float() / len(HANDS)
        other = sum(l1[p] for p in OTHERS).float() / len(OTHERS)
        a = torch.where(b[3] > 0, self.config.boost_ema, 0.0)
        b[1], b[2], b[3] = a * b[1] + (1 - a) * hand, a * b[2] + (1 - a) * other, b[3] + 1

    @torch.no_grad()
    def update_boost(self) -> None:
        """Eq. 8, once per epoch: s <- clip(s * (EMA hand / (EMA other + eps)) ** alpha, 1, s_max)."""
        b = self.boost
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            ema = b[1:3].clone()
            torch.distributed.all_reduce(ema)  # every rank keeps the same boost
            b[1:3] = ema / torch.distributed.get_world_size()
        if b[3] > 0:
            b[0] = (b[0] * (b[1] / (b[2] + 1e-8)) ** self.config.boost_alpha).clamp(1.0, self.config.s_max)

    def on_step_start(self, step: int) -> None:
        if self.config.dynamic_hands and step and step % int(self.data.get("epoch_steps", 1)) == 0:
            self.update_boost()

    def training_step(self, batch):
        return self._losses(batch, training=True)

    def validation_step(self, batch):
        return self._losses(batch, training=False)

    def configure_optimizers(self):
        cfg = self.config
        params = [p for p in self.parameters() if p.requires_grad]
        lr = cfg.kl_lr if cfg.phase == "kl" and cfg.kl_lr else cfg.lr
        opt = torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.plateau_factor,
                                                           patience=cfg.plateau_patience)
        return opt, sched

    # --- generation ----------------------------------------------------------------------------
    @property
    def max_frames(self) -> int:
        """The longest sentence (frames) this model generates: the longest training sentence."""
        return int(self.data["max_frames"])

    def prepare(self, text: str, lang: str) -> dict:
        """Checked model input of one sentence; SlpError for an empty or unusable text or an
        unknown language."""
        prepared = self.text_encoder.prepare_each([text], [lang], features=False, unknown=True)[0]
        if isinstance(prepared, SlpError):
            raise prepared
        return prepared

    def sign(self, texts: list[str], langs: list[str], options=None,
             generator: torch.Generator | None = None) -> list[Signed | SlpError]:
        """As :meth:`TextToPose.sign`, with the batch's texts checked and tokenized at once (a
        pretrained encoder then runs once for the batch, in :meth:`sign_batch`)."""
        options = options if options is not None else self.make_options()
        out = self.text_encoder.prepare_each(texts, langs, features=False, unknown=True)
        ready = [i for i, p in enumerate(out) if not isinstance(p, SlpError)]
        if ready:
            for i, signed in zip(ready, self.sign_batch([out[i] for i in ready], options, generator)):
                out[i] = signed
        return out

    @torch.no_grad()
    def sign_batch(self, prepared: list[dict], options: A2VOptions, generator: torch.Generator | None) -> list[Signed]:
        """Poses (T_i, 178, 3) for a batch of prepared sentences, in one forward pass.

        The length is predicted (``max_frames`` x the predictor's output in (0, 1), rounded, at
        least 1 frame, so never beyond the trained maximum) unless ``options.frames`` asks for
        one; asking for more than ``max_frames`` is an error (the time queries end there). Latents
        are the predicted means, or with ``options.sample`` drawn from N(mu, sigma^2)
        (``generator`` seeds it).
        """
        frames = options.frames
        if frames is not None and not 1 <= frames <= self.max_frames:
            raise SlpError(f"--frames {frames}: this model generates 1 to {self.max_frames} frames per "
                           "sentence (the longest training sentence)")
        device = self.rest_latent.device
        batch = to_device(self.text_encoder.collate(prepared), device)
        memory, memory_mask, length = self.encode_text(batch)
        if frames is None:
            lengths = (length.float() * self.max_frames).round().clamp(1, self.max_frames).long()
        else:
            lengths = torch.full((len(prepared),), frames, dtype=torch.long, device=device)
        frame_mask = torch.arange(int(lengths.max()), device=device)[None, :] < lengths[:, None]
        mu, logvar = self.decode_latents(memory, memory_mask, frame_mask)
        z = mu
        if options.sample:
            noise = torch.randn(mu.shape, generator=generator, device=mu.device) if generator is not None \
                else torch.randn_like(mu)
            z = mu + torch.exp(0.5 * logvar) * noise
        poses = self.vae.decode_latent(z).float().cpu().numpy()
        return [Signed(pose=poses[i, :n], unknown=p.get("unknown", [])) for i, (n, p) in
                enumerate(zip(lengths.tolist(), prepared))]


@torch.no_grad()
def rest_latent(vae: DisentangledVAE, samples: list) -> np.ndarray:
    """The VAE latent mean of the corpus' mean first frame (signing starts from rest, hands down);
    joints never seen in a first frame count as 0 (the VAE's own reading of a missing joint)."""
    firsts = np.stack([s.pose[0] for s in samples]).astype(np.float64)
    seen = np.isfinite(firsts).any(0)
    mean = np.zeros(firsts.shape[1:], np.float32)
    mean[seen] = np.nanmean(firsts[:, seen], axis=0)
    vae.eval()
    mu, _ = vae.posterior(torch.as_tensor(mean, dtype=torch.float32, device=next(vae.parameters()).device))
    return mu.cpu().numpy()
