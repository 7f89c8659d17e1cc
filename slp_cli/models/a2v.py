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
  text, FFN) over learned time queries. Gloss attention (section 3.2, after Yin et al. 2023)
  lets frame t attend only to frames |t - s| <= N // 2 (window N, default 3); ``global`` is plain
  self-attention (table 2) and ``local+global`` mixes the two with a learned gate (table 4).
* Time queries: the rest pose (hands down) -- the VAE latent mean of the training corpus' mean
  first frame -- projected into ``d_model`` by a learned linear layer and replicated over time,
  plus a learned per-step offset (zero at start), sinusoidal absolute positions and, since
  local attention alone cannot tell a frame how long its sentence is, a projected sinusoid of
  the relative position t / T (scaled to ``max_frames``; ``relative_position``).
* Output: per frame mu and log-variance (80 + 80), split into the VAE's articulator slices; the
  output layer's bias starts at the training targets' mean (the log-variances sit near -10, a
  long way from a zero-initialised output).
* Loss (eq. 3): masked L1 on mu and on log-variance per articulator (mean over that
  articulator's dims and valid frames), weights body 1, face 2 and hands b * s with base
  (b_RH, b_LH) = (3.5, 2.5) and the shared boost s of eq. 7-8: after every step
  s <- clip(s * (EMA(L_hand) / (EMA(L_other) + eps)) ** alpha, 1, s_max), s_max 4, where
  L_hand / L_other are the unweighted mean hand / non-hand L1 terms (EMA decay ``boost_ema``
  0.99 and ``alpha`` 0.01: the paper gives neither). ``dynamic_hands=False`` uses the fixed
  weights b * s_max = (14, 10) of the gloss-attention ablations. Phase 2 (from
  ``kl_phase_start``) adds ``kl_weight`` * eq. 4, KL(N(mu^, s^2) || N(mu, s^2)) summed over the
  latent dims of each articulator and over articulators, averaged over valid frames.
  ``kl_weight`` is not in the paper; the VAE posteriors are narrow (log-variance about -10 on
  the synthetic corpus), so the KL is a precision-weighted squared error of order 1e6-1e9 per
  frame. The default 1e-7 was the best of {0 (no phase 2), 1e-7, 1e-6} in
  bench/ablation_a2v.py (test DTW-MJE 0.095 / 0.099 / 0.102 over 3 seeds, within their spread).
* Dev criterion (best checkpoint, ReduceLROnPlateau, early stopping): the same terms with the
  fixed weights (14, 10) and, when a KL phase is configured, the KL term at every evaluation,
  so that the criterion means the same thing before and after the phase switch.
* Adam, lr 2e-4, weight decay 1e-4, ReduceLROnPlateau(factor 0.9, patience 40) on the dev loss
  (section 4.4).

Targets: the frozen VAE encodes each batch's ground-truth poses in the training step (cheap
next to the Transformer, and always from the loaded weights, also on resume). Missing joints:
an articulator with a missing joint in a frame gives no target there (the VAE reads NaN as 0,
so its latent would be wrong); with an entangled VAE any missing joint masks the frame. The
frozen VAE's weights are copied into this model's state_dict: a generator directory is
self-contained (``vae_dir`` is kept for provenance only).
"""

from __future__ import annotations

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

ATTENTION = ("local", "global", "local+global")
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
    attention: str = option("local", "Decoder self-attention: local (gloss attention, the paper's), global, or "
                            "local+global (tables 2 and 4).")
    window: int = option(3, "Gloss-attention window N in frames, odd (3: a frame and its two neighbours).")
    relative_position: bool = option(True, "Add the relative position t/T to the time queries.")
    # --- objective (section 3.3, 4.4.3) ---
    weights: dict = option(help="Base loss weight per articulator; the hands' are multiplied by the boost s (eq. 7).",
                           factory=lambda: {"body": 1.0, "right_hand": 3.5, "left_hand": 2.5, "face": 2.0})
    dynamic_hands: bool = option(True, "Dynamic hand weighting (eq. 7-8); off: the fixed weights base x s_max.")
    s_max: float = option(4.0, "Largest hand boost s (eq. 8).")
    boost_alpha: float = option(0.01, "Exponent alpha of the boost update (eq. 8; not in the paper).")
    boost_ema: float = option(0.99, "EMA decay of the hand / non-hand losses (eq. 8; not in the paper).")
    length_weight: float = option(1.0, "Weight of the length predictor's L1 loss.")
    kl_phase_start: int = option(-1, "Step at which phase 2 adds the KL term (eq. 4); -1: no KL phase.")
    kl_weight: float = option(1e-7, "Weight of the KL term in phase 2 (not in the paper).")
    weight_decay: float = option(1e-4, "Adam weight decay (section 4.4).")
    plateau_factor: float = option(0.9, "ReduceLROnPlateau factor (section 4.4).")
    plateau_patience: int = option(40, "ReduceLROnPlateau patience in evaluations (section 4.4).")

    def __post_init__(self):
        if self.attention not in ATTENTION:
            raise ValueError(f"attention must be one of {', '.join(ATTENTION)}, not {self.attention!r}")
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"window must be an odd number of frames >= 1 (centred on the frame), not {self.window}")
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
    # Section 3.2 / 4.4. The paper gives no step budget (early stopping on dev) nor when phase 2
    # starts: here after 30k steps (early stopping before then leaves the KL phase out).
    "default": dict(batch_size=32, max_steps=100000, eval_every=500, checkpoint_every=2000, patience=30,
                    kl_phase_start=30000),
    # Tests, smoke runs and the CPU ablations (bench/ablation_a2v.py): seconds to minutes on one
    # CPU core. (A d_model 128 / 3-layer variant learned less in the same number of steps on
    # the synthetic corpus, at three times the cost.)
    "tiny": dict(d_model=64, embed_dim=64, enc_layers=1, enc_heads=2, enc_ffn=128, dec_layers=2, dec_heads=4,
                 dec_ffn=128, dropout=0.0, vocab_size=2000, batch_size=8, max_steps=300, lr=2e-3, eval_every=50,
                 checkpoint_every=100, patience=0, log_every=10, kl_phase_start=200, plateau_patience=5),
}


# --- attention ---------------------------------------------------------------------------------

def gloss_attention_mask(frame_mask: torch.Tensor, window: int | None) -> torch.Tensor:
    """(B, T) bool real frames -> (B, 1, T, T) bool, True where query frame t may attend key s.

    Local (gloss) attention: |t - s| <= window // 2; ``window=None``: global. Padded keys are
    never attended, except that every frame may attend itself, so that no row is empty (a
    padded query then only sees itself and stays finite; real frames never see padding)."""
    t = frame_mask.shape[1]
    idx = torch.arange(t, device=frame_mask.device)
    allowed = frame_mask[:, None, :].expand(-1, t, -1)
    if window is not None:
        allowed = allowed & ((idx[:, None] - idx[None, :]).abs() <= window // 2)
    return (allowed | torch.eye(t, dtype=torch.bool, device=frame_mask.device))[:, None]


class Attention(nn.Module):
    """Multi-head attention on scaled_dot_product_attention with a boolean mask (True = attend).
    Given two masks it attends under both and mixes the results with a learned gate."""

    def __init__(self, d: int, heads: int, dropout: float, mixed: bool = False):
        super().__init__()
        self.heads, self.p = heads, dropout
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)
        self.gate = nn.Parameter(torch.zeros(1)) if mixed else None  # sigmoid(0) = equal mix at start

    def forward(self, x: torch.Tensor, memory: torch.Tensor, masks: tuple[torch.Tensor, ...]) -> torch.Tensor:
        b, t, d = x.shape
        q = self.q(x).view(b, t, self.heads, -1).transpose(1, 2)
        k, v = self.kv(memory).view(b, memory.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        p = self.p if self.training else 0.0
        outs = [F.scaled_dot_product_attention(q, k, v, attn_mask=m, dropout_p=p) for m in masks]
        o = outs[0] if len(outs) == 1 else torch.sigmoid(self.gate) * outs[0] + (1 - torch.sigmoid(self.gate)) * outs[1]
        return self.out(o.transpose(1, 2).reshape(b, t, d))


class DecoderLayer(nn.Module):
    """Pre-norm: gloss (self) attention over frames, global cross-attention to the text, FFN."""

    def __init__(self, d: int, heads: int, ffn: int, dropout: float, mixed: bool):
        super().__init__()
        self.self_attn = Attention(d, heads, dropout, mixed)
        self.cross_attn = Attention(d, heads, dropout)
        self.ffn = nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, d))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(3))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, self_masks, memory, memory_mask):
        h = self.norms[0](x)
        x = x + self.drop(self.self_attn(h, h, self_masks))
        x = x + self.drop(self.cross_attn(self.norms[1](x), memory, (memory_mask,)))
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

    def __init__(self, config: A2VConfig, data: dict | None = None):
        """``data`` (from_data): ``vae_config``, ``langs``, ``max_frames``, ``rest_latent``,
        ``target_mean`` (mean VAE mu and log-variance of the training frames), ``text_tokenizer``
        (the offline WordPiece), ``tokenizer`` (the VAE directory, for provenance), fps and
        normalization."""
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
        mixed = config.attention == "local+global"
        self.layers = nn.ModuleList(DecoderLayer(d, config.dec_heads, config.dec_ffn, config.dropout, mixed)
                                    for _ in range(config.dec_layers))
        self.out_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 2 * latent)
        if data.get("target_mean"):  # start from the mean target (log-variances sit near -10, far from 0)
            with torch.no_grad():
                self.head.bias.copy_(torch.tensor(data["target_mean"]))
        # boost s, EMA of the hand and non-hand L1, steps seen (eq. 8); saved, so resume is exact
        self.register_buffer("boost", torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self._kl_on = False

    # --- building from data ------------------------------------------------------------------
    @classmethod
    def from_data(cls, config: A2VConfig, samples: list, **inputs) -> "A2VGenerator":
        """The data state (VAE, languages, maximum length, rest latent, offline text tokenizer)
        and the frozen VAE's weights. ``tokenizer`` is the VAE run directory."""
        from ..text.tokenizer import TextTokenizer

        cls.check_inputs(inputs)
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
                "max_frames": max(s.num_frames for s in samples)}
        if config.text_encoder == OFFLINE:
            data["text_tokenizer"] = TextTokenizer.train([s.text for s in samples], langs, config.vocab_size).to_json()
        data["rest_latent"] = rest_latent(vae, samples).tolist()
        with torch.no_grad():
            frames = torch.as_tensor(np.concatenate([s.pose for s in samples]), dtype=torch.float32)
            data["target_mean"] = torch.cat(vae.posterior(frames), -1).mean(0).tolist()
        model = cls(config, data)
        model.vae.load_state_dict(vae.state_dict())
        return model

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
        with torch.autocast(pose.device.type, enabled=False):
            return self.vae.posterior(pose.float())

    def make_dataset(self, samples):
        """Items: checked text inputs (frozen features for a pretrained encoder), poses (missing
        joints 0) and articulator masks. The VAE targets are computed per batch in the step, so
        that they come from the loaded weights on resume too. Sequences longer than the trained
        maximum (dev sentences) are cropped to it."""
        try:
            prepared = self.text_encoder.prepare([s.text for s in samples], [s.lang for s in samples])
        except SlpError as e:
            bad = next(s.id for s in samples if _unusable(self, s))
            raise SlpError(f"sample '{bad}': {e}") from None
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
        """Predicted latent mean and log-variance (B, T, 80) for frames ``frame_mask`` (B, T)."""
        lengths = frame_mask.sum(1)
        x = self.time_queries(lengths, frame_mask.shape[1])
        if self.config.attention == "local":
            masks = (gloss_attention_mask(frame_mask, self.config.window),)
        elif self.config.attention == "global":
            masks = (gloss_attention_mask(frame_mask, None),)
        else:
            masks = (gloss_attention_mask(frame_mask, self.config.window), gloss_attention_mask(frame_mask, None))
        mem_mask = memory_mask[:, None, None, :]
        for layer in self.layers:
            x = layer(x, masks, memory, mem_mask)
        mu, logvar = self.head(self.out_norm(x)).float().chunk(2, -1)
        return mu, logvar

    # --- loss ----------------------------------------------------------------------------------
    def on_step_start(self, step: int) -> None:
        self._kl_on = 0 <= self.config.kl_phase_start <= step

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
        for i, p in enumerate(PARTS):
            sl, m = self.latent_slices[p], pmask[..., i]
            n = m.sum().clamp(min=1)
            l1[p] = (err[..., sl].mean(-1) * m).sum() / n
            kl = kl + (kl_elem[..., sl].sum(-1) * m).sum() / n
        true_len = batch["frame_mask"].sum(1).float() / self.max_frames
        length_loss = (length.float() - true_len).abs().mean()
        boost = float(self.boost[0]) if (training and cfg.dynamic_hands) else cfg.s_max
        weights = cfg.part_weights(boost)
        latent = sum(weights[p] * l1[p] for p in PARTS)
        use_kl = self._kl_on if training else cfg.kl_phase_start >= 0
        loss = latent + cfg.length_weight * length_loss + (cfg.kl_weight * kl if use_kl else 0.0)
        if training and cfg.dynamic_hands:
            self._update_boost(l1)
        out = {"loss": loss, "latent": latent.detach(), "length": length_loss.detach(), "kl": kl.detach(),
               "boost": torch.tensor(boost)}
        out.update({f"l1_{p}": l1[p].detach() for p in PARTS})
        return out

    @torch.no_grad()
    def _update_boost(self, l1: dict[str, torch.Tensor]) -> None:
        """Eq. 8: s <- clip(s * (EMA hand / (EMA other + eps)) ** alpha, 1, s_max)."""
        cfg = self.config
        stats = torch.stack([sum(l1[p] for p in HANDS) / len(HANDS), sum(l1[p] for p in OTHERS) / len(OTHERS)])
        stats = stats.detach().float().to(self.boost.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(stats)  # every rank keeps the same boost
            stats /= torch.distributed.get_world_size()
        s, ema_hand, ema_other, n = self.boost.tolist()
        a = cfg.boost_ema if n else 0.0
        ema_hand, ema_other = a * ema_hand + (1 - a) * float(stats[0]), a * ema_other + (1 - a) * float(stats[1])
        s = min(max(s * (ema_hand / (ema_other + 1e-8)) ** cfg.boost_alpha, 1.0), cfg.s_max)
        self.boost.copy_(torch.tensor([s, ema_hand, ema_other, n + 1]))

    def training_step(self, batch):
        return self._losses(batch, training=True)

    def validation_step(self, batch):
        return self._losses(batch, training=False)

    def configure_optimizers(self):
        cfg = self.config
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
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
        return {**self.text_encoder.prepare([text], [lang])[0], "unknown": self.text_encoder.unknown_words(text)}

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
        return [Signed(pose=poses[i, :n], unknown=p["unknown"]) for i, (n, p) in enumerate(zip(lengths.tolist(), prepared))]


def _unusable(model: A2VGenerator, sample) -> bool:
    try:
        model.text_encoder.prepare([sample.text], [sample.lang])
        return False
    except SlpError:
        return True


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
