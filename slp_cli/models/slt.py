"""The back-translator: hierarchical feature alignment for gloss-free sign language translation
(HFA-SLT), adapted from video frames to mp178 poses.

Architecture (section 3.1, sizes of section 4.2):

* **Frame level** — instead of DINOv2 on images, a per-articulator pose embedding: for each of
  body (8 joints), right hand, left hand (21 each) and face (128), the joints' coordinates
  relative to the articulator's centroid, the centroid itself and a per-joint presence flag (NaN
  joints are fed as 0 with presence 0), standardized with training-set statistics, each through
  Linear + LayerNorm + GELU, then concatenated and fused by a linear layer with LayerNorm (the
  paper's "linear + batch norm"; LayerNorm does not mix padded frames into the statistics).
* **Segment level** — a pre-norm transformer with rotary position embeddings (RoPE) and local
  self-attention (each position sees +-``window // 2`` neighbours; window 7), with temporal
  downsampling (masked average pooling by 2) after its 2nd layer: 4 layers, 512 wide, 8 heads,
  FFN 2048. Output: segment features Z at half the frame rate.
* **Sequence level** — a linear *mapper* into the language model's width, the LM encoder
  (video-level features M) and the LM decoder that writes the sentence:
  - offline default (``lm = ""``): a transformer encoder (RoPE, full attention) and a
    transformer decoder trained from scratch, with the corpus-trained
    :class:`~slp_cli.text.tokenizer.TextTokenizer`; the target starts with the sign language's
    token and [BOS] (``<dgs> [BOS] ... [EOS]``);
  - ``lm = <hub id or path>``: a pretrained encoder-decoder LM (the paper: mBART) loaded with
    ``transformers``, with LoRA (``peft``; r 16, alpha 32, dropout 0.1 on ``q_proj``/``v_proj``
    of encoder and decoder). The decoder starts with the mBART language code of the sentence's
    spoken language where the tokenizer has one (``de_DE``, ``en_XX``, ``zh_CN``...). The LM's
    weights, its HF config and its tokenizer files are stored in the checkpoint, so a trained
    model loads without the hub.

Training (sections 3.2, 3.3 and 4.2) — three runs of the shared loop, chosen by ``stage``:

* ``pretrain``: L = L_align + lambda * L_psp (eq. 5, lambda 1.0). L_psp: segment features are
  projected to the prototype space, compared by cosine similarity with the pseudo-gloss
  prototypes plus a zero vector for non-sign segments (eq. 1), softmax over time (tau_T) and
  over prototypes (tau_U), both temperatures learnable and initialised to 0.1 (eq. 2); their
  product summed over time gives each pseudo-gloss' presence score (eq. 3), trained with BCE
  against the pseudo-glosses of the sentence (``slp_cli.text.pseudo_gloss``). L_align: the
  symmetric InfoNCE between the mean-pooled video features M and mean-pooled sentence features
  with a learnable temperature (eq. 4). The decoder is not used.
* ``finetune-head``: cross-entropy of the sentence (eq. 6), training only the mapper and the
  decoder (the paper's first fine-tuning stage, 100 epochs; the LM decoder's LoRA weights with
  ``lm``).
* ``finetune-all``: cross-entropy, every parameter used for translation trainable (second
  stage, 200 epochs: preset ``finetune-all``; from scratch when no ``--init`` is given: the
  no-pre-training baseline).

Pre-training keeps the weights with the lowest dev loss (section 4.2); the fine-tuning runs keep
the weights with the best dev BLEU-4 (greedy decoding of the dev split at every evaluation, the
corpus BLEU of signjoey's convention, as slp_cli.metrics.text computes it), the metric the paper
reports, rather than the lowest cross-entropy. Each run's kept weights are what the next run
starts from (``--init``).

**Gloss head (not in HFA-SLT, which is gloss-free).** When the training corpus has gloss
annotations, the model also gets a CTC gloss-recognition head on its video-level features M (a
linear layer to the gloss vocabulary plus the CTC blank), trained jointly with the translation
loss in both fine-tuning stages, as in joint recognition and translation (Sign Language
Transformers, section 3; its code, signjoey): loss = CE + ``ctc_weight`` * CTC, with the
recognition loss weight 1.0 of signjoey's published configuration as the default (here both
terms are per-token means; signjoey sums its translation loss over each sentence). Greedy CTC
decoding (signjoey decodes with a CTC beam search).
Samples without glosses add no CTC term. ``slp translate`` then also writes the recognised
glosses (greedy CTC decoding) and ``slp score --backtranslate`` reports gloss WER, the metric of
gloss-level SLP papers (GLOS).

Choices the paper does not fix, or that differ because of the offline setting, stated:

* Prototypes are learned vectors (``prototype_dim`` 300, fastText's size), randomly initialised:
  no German or Chinese word vectors can be installed offline (no PyPI package ships them).
* Sentence features for L_align come from a frozen pretrained text encoder in the paper (the
  mBART encoder). With ``lm`` that is what slp uses (the LM encoder with its LoRA adapters
  switched off). Offline nothing pretrained exists, so a small text transformer is trained
  jointly during pre-training (CLIP-style two towers), and the alignment temperature starts at
  CLIP's 0.07 (clamped to >= 0.01).
* The mapper is present in pre-training too, as the projection from the segment width into the
  LM's width (512 -> 1024 for mBART-large); the paper does not say how the widths meet there.
* Data augmentation as section 4.2 (rotation, resizing, translation of every frame of a
  sequence with probability 0.5), on poses: rotation in the image plane within +-10 degrees,
  scale 0.9-1.1, shift within +-0.1 shoulder widths.
* AdamW (lr 3e-4, weight decay 1e-3), gradient clipping 1.0, linear warm-up (5 epochs) then
  cosine decay to 0 ("one-cycle cosine with a five-epoch warmup").
* Pre-training batches are drawn at random, not bucketed by length (the loop's sampler sorts
  within buckets; this model gives it equal lengths in pre-training), so that the negatives of
  the contrastive loss are not all sentences of one length.
* Under DDP the contrastive loss gathers the video and sentence features of every process, with
  their gradients (:func:`gather_with_grad`), so its value and gradients equal one process' on
  the same global batch; during evaluation each process scores its own share (a process may
  have no share of the last dev batch, so no collective may run there). The contrastive and
  pseudo-gloss logits and the CTC log-probabilities are computed in fp32 with autocast off.
"""

from __future__ import annotations

import io
import math
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import skeleton
from ..data.loader import SequenceDataset
from ..tensors import masked_mean, pad
from ..errors import SlpError
from ..text import pseudo_gloss as pg
from ..text.lemmas import spoken_language
from ..text.tokenizer import BOS, EOS, PAD, TextTokenizer
from . import DecodingStep, PoseToText, TrainingConfig, option, register

BLANK = 0  # the CTC blank of the gloss head; gloss i of data["glosses"] is class i + 1

PARTS = ("body", "right_hand", "left_hand", "face")
STAGES = ("pretrain", "finetune-head", "finetune-all")
# What each stage trains (section 4.2): groups of parameters, see SLT._group.
STAGE_GROUPS = {
    "pretrain": frozenset({"visual", "mapper", "encoder", "alignment"}),
    "finetune-head": frozenset({"mapper", "decoder", "gloss_head"}),
    "finetune-all": frozenset({"visual", "mapper", "encoder", "decoder", "gloss_head"}),
}
# mBART language codes of the spoken languages (mBART-cc25 has de_DE, en_XX, zh_CN, ...).
MBART_CODES = {"de": "de_DE", "en": "en_XX", "zh": "zh_CN", "fr": "fr_XX", "it": "it_IT", "es": "es_XX",
               "nl": "nl_XX", "pt": "pt_XX", "ja": "ja_XX", "ko": "ko_KR", "ru": "ru_RU", "tr": "tr_TR"}
IGNORE = -100  # label of positions without a loss
AUGMENT_ROTATION, AUGMENT_SCALE, AUGMENT_SHIFT = math.radians(10), 0.1, 0.1


@dataclass
class SLTConfig(TrainingConfig):
    stage: str = option("pretrain", "'pretrain': pseudo-gloss + contrastive alignment (no decoder); "
                        "'finetune-head': translation loss, only the mapper and the decoder train (needs --init); "
                        "'finetune-all': translation loss, everything trains (without --init: the no-pre-training "
                        "baseline); 'all': the three runs one after the other (the first two into OUTPUT/stages/), "
                        "resumable.")
    # frame level
    part_dim: int = option(128, "Width of each articulator's frame embedding.")
    # segment level (section 4.2)
    d_model: int = option(512, "Width of the segment-level transformer (512).")
    heads: int = option(8, "Attention heads (8).")
    ffn: int = option(2048, "Feed-forward width (2048).")
    layers: int = option(4, "Segment-level layers (4).")
    window: int = option(7, "Local attention window, odd (7).")
    downsample_after: int = option(2, "Temporal downsampling after this many layers (2).")
    downsample: int = option(2, "Temporal downsampling factor (2).")
    dropout: float = option(0.1, "Dropout.")
    # sequence level: offline encoder / decoder / sentence encoder, or a pretrained LM
    lm: str = option("", "Pretrained encoder-decoder LM (hub id available offline, or a save_pretrained folder; the "
                     "paper: an mBART) as sequence encoder and decoder, with LoRA. Default: a small encoder-decoder "
                     "trained from scratch with a tokenizer trained on the corpus.")
    lm_width: int = option(512, "Width of the offline encoder-decoder.")
    enc_layers: int = option(2, "Offline sequence encoder layers.")
    dec_layers: int = option(3, "Offline text decoder layers.")
    text_layers: int = option(2, "Offline sentence encoder layers (pre-training's text tower).")
    vocab_size: int = option(8000, "WordPiece vocabulary of the offline decoder.")
    lora_r: int = option(16, "LoRA rank on the LM's q/v projections (paper: 16).")
    lora_alpha: int = option(32, "LoRA scaling alpha (paper: 32).")
    lora_dropout: float = option(0.1, "LoRA dropout.")
    lora_targets: list = option(help="The LM's modules that get LoRA (mBART's q_proj,v_proj; T5 calls them q,v).",
                                factory=lambda: ["q_proj", "v_proj"])
    # pre-training (section 3.2)
    prototype_dim: int = option(300, "Pseudo-gloss prototype size (fastText's 300).")
    tau_time: float = option(0.1, "Initial temperature of the softmax over time (eq. 2).")
    tau_proto: float = option(0.1, "Initial temperature of the softmax over prototypes (eq. 2).")
    tau_align: float = option(0.07, "Initial temperature of the alignment loss (eq. 4).")
    pg_weight: float = option(1.0, "Weight of the pseudo-gloss loss in pre-training: align + lambda * pseudo-gloss "
                              "(paper: 1.0).", flag="lambda")
    pg_min_count: int = option(1, "Pseudo-glosses seen fewer times in training are left out.")
    # optimisation (section 4.2)
    weight_decay: float = option(1e-3, "AdamW weight decay (1e-3).")
    warmup_steps: int = option(2220, "Linear warm-up steps before the cosine decay (five epochs of PHOENIX-2014T).")
    label_smoothing: float = option(0.0, "Label smoothing of the translation loss.")
    ctc_weight: float = option(1.0, "Weight of the CTC gloss-recognition loss added to the translation loss in "
                               "fine-tuning when the corpus has glosses (signjoey's recognition weight 1.0; 0: the "
                               "gloss head is not trained).")
    augment: float = option(0.5, "Probability of the rotation / scale / shift augmentation per sequence.")

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, not {self.stage!r}")
        for name in ("part_dim", "d_model", "heads", "ffn", "layers", "lm_width", "enc_layers", "dec_layers",
                     "text_layers", "vocab_size", "lora_r", "prototype_dim", "downsample", "pg_min_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.d_model % self.heads or self.lm_width % self.heads or (self.d_model // self.heads) % 2:
            raise ValueError("d_model and lm_width must divide by heads, into an even head size (RoPE)")
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError("window must be odd and >= 1 (a position and window // 2 neighbours each side)")
        if not 0 <= self.downsample_after <= self.layers:
            raise ValueError(f"downsample_after must be between 0 and layers ({self.layers})")
        if min(self.tau_time, self.tau_proto, self.tau_align) <= 0:
            raise ValueError("temperatures must be > 0")
        if not 0 <= self.augment <= 1 or not 0 <= self.dropout < 1 or not 0 <= self.label_smoothing < 1:
            raise ValueError("augment is a probability in [0, 1]; dropout and label_smoothing in [0, 1)")
        if self.pg_weight < 0 or self.weight_decay < 0 or self.warmup_steps < 0 or self.ctc_weight < 0:
            raise ValueError("pg_weight, ctc_weight, weight_decay and warmup_steps must be >= 0")
        self.lora_targets = list(self.lora_targets)


# PHOENIX-2014T: 7,096 sentences, batch 16 -> 444 steps per epoch.
_EPOCH = 444
_DEFAULT = dict(batch_size=16, lr=3e-4, max_steps=100 * _EPOCH, warmup_steps=5 * _EPOCH, eval_every=_EPOCH,
                checkpoint_every=2 * _EPOCH, patience=0, log_every=20)
PRESETS = {
    # Section 4.2: batch 16, AdamW 3e-4, 100 epochs of pre-training and of the first fine-tuning
    # stage, five warm-up epochs.
    "default": _DEFAULT,
    # The second fine-tuning stage: "another 200 epochs" (section 4.2).
    "finetune-all": {**_DEFAULT, "stage": "finetune-all", "max_steps": 200 * _EPOCH},
    # Small and quick: tests and smoke runs on the synthetic corpus.
    "tiny": dict(part_dim=32, d_model=64, heads=4, ffn=128, layers=4, lm_width=64, enc_layers=1, dec_layers=2,
                 text_layers=1, prototype_dim=64, vocab_size=2000, dropout=0.1, batch_size=16, lr=2e-3,
                 max_steps=300, warmup_steps=30, eval_every=100, checkpoint_every=100, patience=0,
                 log_every=10),
}


# --- building blocks -----------------------------------------------------------------------------


def _part_slices() -> dict[str, slice]:
    return {p: skeleton.ARTICULATORS[p] for p in PARTS}


def part_feature_sizes() -> dict[str, int]:
    """Per articulator of n joints: 3n relative coordinates + 3 centroid + n presence flags."""
    return {p: 4 * (sl.stop - sl.start) + 3 for p, sl in _part_slices().items()}


def frame_features(pose: torch.Tensor) -> torch.Tensor:
    """(..., 178, 3) poses with NaN for missing joints -> (..., F) frame features (see module doc)."""
    out = []
    for sl in _part_slices().values():
        x = pose[..., sl, :]
        present = torch.isfinite(x).all(-1)
        x0 = torch.where(present[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        root = x0.sum(-2) / present.sum(-1, keepdim=True).clamp(min=1)
        rel = torch.where(present[..., None], x0 - root[..., None, :], torch.zeros((), dtype=x.dtype, device=x.device))
        out += [rel.flatten(-2), root, present.to(x.dtype)]
    return torch.cat(out, -1)


def rope(x: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding (RoFormer) of (B, H, T, d) queries or keys at positions 0..T-1."""
    t, d = x.shape[-2], x.shape[-1]
    half = d // 2
    freqs = 1.0 / (10000 ** (torch.arange(half, device=x.device, dtype=torch.float32) / half))
    angles = torch.arange(t, device=x.device, dtype=torch.float32)[:, None] * freqs
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)


def attention_mask(valid: torch.Tensor, window: int | None) -> torch.Tensor:
    """(B, 1, T, T) bool: keys that are real frames within the local window (a position always
    sees itself, so padded queries never attend to nothing)."""
    t = valid.shape[1]
    allowed = valid[:, None, None, :].expand(-1, 1, t, -1)
    idx = torch.arange(t, device=valid.device)
    if window is not None:
        allowed = allowed & ((idx[:, None] - idx[None, :]).abs() <= window // 2)
    return allowed | torch.eye(t, dtype=torch.bool, device=valid.device)


class Block(nn.Module):
    """Pre-norm transformer layer with RoPE self-attention, optionally local."""

    def __init__(self, d: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.heads, self.p = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor, window: int | None = None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(rope(q), rope(k), v, attn_mask=attention_mask(valid, window),
                                           dropout_p=self.p if self.training else 0.0)
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.ff(self.norm2(x)))


def downsample(x: torch.Tensor, valid: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked average pooling over time by ``factor``; a pooled step is real if any frame was."""
    b, t, d = x.shape
    extra = -t % factor
    if extra:
        x = F.pad(x, (0, 0, 0, extra))
        valid = F.pad(valid, (0, extra))
    w = valid.to(x.dtype)[..., None]
    total = (x * w).view(b, -1, factor, d).sum(2)
    count = w.view(b, -1, factor, 1).sum(2)
    return total / count.clamp(min=1), count[..., 0] > 0


class FrameEncoder(nn.Module):
    """Per-articulator pose embeddings fused into one feature per frame."""

    def __init__(self, part_dim: int, d_model: int, dropout: float):
        super().__init__()
        self.sizes = part_feature_sizes()
        total = sum(self.sizes.values())
        self.register_buffer("mean", torch.zeros(total))
        self.register_buffer("std", torch.ones(total))
        self.embed = nn.ModuleDict({p: nn.Sequential(nn.Linear(n, part_dim), nn.LayerNorm(part_dim), nn.GELU())
                                    for p, n in self.sizes.items()})
        self.fuse = nn.Sequential(nn.Linear(len(PARTS) * part_dim, d_model), nn.LayerNorm(d_model), nn.Dropout(dropout))

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        f = (frame_features(pose.float()) - self.mean) / self.std
        parts = torch.split(f, list(self.sizes.values()), -1)
        return self.fuse(torch.cat([self.embed[p](x) for p, x in zip(self.sizes, parts)], -1))


class TemporalEncoder(nn.Module):
    """Local-attention RoPE transformer with temporal downsampling after ``downsample_after`` layers."""

    def __init__(self, c: SLTConfig):
        super().__init__()
        self.blocks = nn.ModuleList(Block(c.d_model, c.heads, c.ffn, c.dropout) for _ in range(c.layers))
        self.norm = nn.LayerNorm(c.d_model)
        self.window, self.after, self.factor = c.window, c.downsample_after, c.downsample

    def forward(self, x, valid):
        for i, block in enumerate(self.blocks):
            if i == self.after and self.factor > 1:
                x, valid = downsample(x, valid, self.factor)
            x = block(x, valid, self.window)
        if self.after == len(self.blocks) and self.factor > 1:
            x, valid = downsample(x, valid, self.factor)
        return self.norm(x), valid


class Encoder(nn.Module):
    """Full-attention RoPE transformer: the offline sequence encoder, and (with an embedding) the
    offline sentence encoder of pre-training."""

    def __init__(self, d: int, heads: int, ffn: int, layers: int, dropout: float, vocab: int = 0):
        super().__init__()
        self.embed = _embedding(vocab, d) if vocab else None
        self.blocks = nn.ModuleList(Block(d, heads, ffn, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d)

    def forward(self, x, valid):
        if self.embed is not None:
            x = self.embed(x) * math.sqrt(self.embed.embedding_dim)
        for block in self.blocks:
            x = block(x, valid)
        return self.norm(x)


def _embedding(vocab: int, d: int) -> nn.Embedding:
    """Token embeddings with std d^-1/2: scaled by sqrt(d) on input they have unit size, and as
    tied output weights they give logits of unit size at initialisation."""
    emb = nn.Embedding(vocab, d, padding_idx=PAD)
    nn.init.normal_(emb.weight, std=d ** -0.5)
    with torch.no_grad():
        emb.weight[PAD].zero_()
    return emb


def sinusoids(length: int, d: int, device) -> torch.Tensor:
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d))
    out = torch.zeros(length, d, device=device)
    out[:, 0::2], out[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
    return out


class TextDecoder(nn.Module):
    """The offline decoder: a pre-norm transformer decoder with tied input/output embeddings."""

    def __init__(self, vocab: int, d: int, heads: int, ffn: int, layers: int, dropout: float):
        super().__init__()
        self.embed = _embedding(vocab, d)
        layer = nn.TransformerDecoderLayer(d, heads, ffn, dropout, activation="gelu", batch_first=True, norm_first=True)
        self.layers = nn.TransformerDecoder(layer, layers, norm=nn.LayerNorm(d))
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, ids, memory, memory_valid):
        n = ids.shape[1]
        x = self.embed(ids) * math.sqrt(self.embed.embedding_dim) + sinusoids(n, self.embed.embedding_dim, ids.device)
        causal = torch.triu(torch.ones(n, n, dtype=torch.bool, device=ids.device), 1)
        h = self.layers(x, memory, tgt_mask=causal, memory_key_padding_mask=~memory_valid, tgt_is_causal=True)
        return self.head(h)

    @torch.no_grad()
    def incremental(self, memory, memory_valid) -> "CachedStep":
        """A decoding step with a key/value cache: ``step(ids)`` -> next-token logits (B, V) of
        the last position, where each call's ``ids`` extend the previous call's rows (after
        ``step.reorder(rows)`` where beam search re-ranks them). Each token then passes through
        the layers once, instead of once per later token; the cross-attention keys and values of
        the memory are computed once. Same weights and maths as ``forward`` in eval mode."""
        return CachedStep(self, memory, memory_valid)


class CachedStep(DecodingStep):
    """:meth:`TextDecoder.incremental`'s step: self-attention keys and values of every token seen
    so far, and the cross-attention keys and values of the memory, kept per row."""

    def __init__(self, decoder: TextDecoder, memory: torch.Tensor, memory_valid: torch.Tensor):
        super().__init__(self._step)
        self.decoder, self.layers = decoder, decoder.layers.layers
        self.d = d = decoder.embed.embedding_dim
        self.attend_memory = memory_valid[:, None, None, :]
        self.cross = []
        for layer in self.layers:
            ca = layer.multihead_attn
            k, v = F.linear(memory, ca.in_proj_weight[d:], ca.in_proj_bias[d:]).chunk(2, -1)
            self.cross.append((_split_heads(k, ca.num_heads), _split_heads(v, ca.num_heads)))
        self.cache: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(self.layers)
        self.seen = 0

    @torch.no_grad()
    def _step(self, ids: torch.Tensor) -> torch.Tensor:
        seen, d, dec = self.seen, self.d, self.decoder
        new = ids[:, seen:]
        n = new.shape[1]
        x = dec.embed(new) * math.sqrt(d) + sinusoids(seen + n, d, ids.device)[seen:]
        # new token j sees every cached token and the new tokens up to itself
        causal = torch.ones(n, seen + n, dtype=torch.bool, device=ids.device).tril(seen)
        for i, layer in enumerate(self.layers):
            sa, ca, heads = layer.self_attn, layer.multihead_attn, layer.self_attn.num_heads
            q, k, v = (_split_heads(t, heads) for t in F.linear(layer.norm1(x), sa.in_proj_weight,
                                                                  sa.in_proj_bias).chunk(3, -1))
            if self.cache[i] is not None:
                k, v = torch.cat([self.cache[i][0], k], 2), torch.cat([self.cache[i][1], v], 2)
            self.cache[i] = (k, v)
            x = x + sa.out_proj(_merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=causal)))
            q = _split_heads(F.linear(layer.norm2(x), ca.in_proj_weight[:d], ca.in_proj_bias[:d]), heads)
            o = F.scaled_dot_product_attention(q, *self.cross[i], attn_mask=self.attend_memory)
            x = x + ca.out_proj(_merge_heads(o))
            x = x + layer.linear2(layer.activation(layer.linear1(layer.norm3(x))))
        self.seen += n
        return dec.head(dec.layers.norm(x[:, -1]))

    def reorder(self, rows: torch.Tensor) -> None:
        self.cache = [(k[rows], v[rows]) for k, v in self.cache]
        self.cross = [(k[rows], v[rows]) for k, v in self.cross]
        self.attend_memory = self.attend_memory[rows]


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, d = x.shape
    return x.view(b, n, heads, d // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    b, h, n, dh = x.shape
    return x.transpose(1, 2).reshape(b, n, h * dh)


class PackedFiles(nn.Module):
    """A folder of small files (a pretrained LM's tokenizer) kept in the model's state_dict as a
    uint8 tensor (PyTorch's "extra state"), so a checkpoint needs no hub to rebuild its tokenizer."""

    def __init__(self):
        super().__init__()
        self.blob = b""

    @staticmethod
    def pack(folder: Path) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(Path(folder).iterdir()):
                if f.is_file():
                    z.write(f, f.name)
        return buf.getvalue()

    def unpack(self, folder: Path) -> Path:
        with zipfile.ZipFile(io.BytesIO(self.blob)) as z:
            z.extractall(folder)
        return Path(folder)

    def get_extra_state(self):
        if not self.blob:
            return torch.zeros(0, dtype=torch.uint8)
        return torch.frombuffer(bytearray(self.blob), dtype=torch.uint8)

    def set_extra_state(self, state):
        self.blob = bytes(state.cpu().numpy().tobytes())


# --- losses --------------------------------------------------------------------------------------


def fp32(x: torch.Tensor):
    """A region where autocast is off (on ``x``'s device type): logits and losses in fp32."""
    return torch.autocast(device_type=x.device.type, enabled=False)


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized() \
        and torch.distributed.get_world_size() > 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather along dim 0 whose backward returns, to each process, the gradient of its own
    rows summed over every process' loss (all-reduce, then this process' slice): with every
    process computing the loss of the whole gathered batch, DDP's gradient average then equals
    the gradient one process would compute on that batch. Every process must give as many rows."""

    @staticmethod
    def forward(ctx, x):
        world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
        parts = [torch.empty_like(x) for _ in range(world)]
        torch.distributed.all_gather(parts, x.contiguous())
        ctx.rank, ctx.rows = rank, x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        torch.distributed.all_reduce(grad)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """``x`` (N, ...) of every DDP process concatenated in rank order, with gradients (the
    tensor itself when not distributed)."""
    return _GatherWithGrad.apply(x) if _distributed() else x


def contrastive_loss(video: torch.Tensor, text: torch.Tensor, temperature: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE (HFA-SLT, eq. 4): cosine similarities / temperature, cross-entropy towards
    the matching pair along both axes, averaged: -1/(2B) (sum_j log softmax_k(s_jk)_j + sum_j
    log softmax_k(s_kj)_j). In fp32 with autocast off."""
    with fp32(video):
        v, t = F.normalize(video.float(), dim=-1), F.normalize(text.float(), dim=-1)
        logits = v @ t.T / (temperature.float() if torch.is_tensor(temperature) else temperature)
        target = torch.arange(len(v), device=v.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def pseudo_gloss_scores(z: torch.Tensor, valid: torch.Tensor, prototypes: torch.Tensor,
                        tau_time: torch.Tensor | float, tau_proto: torch.Tensor | float) -> torch.Tensor:
    """Presence score E^_j of each prototype (HFA-SLT, eq. 1-3): cosine similarity of each segment
    with the prototypes and a zero "non-sign" vector, softmax over time (tau_T, real segments
    only) times softmax over prototypes (tau_U), summed over time. (B, T, D'), (B, T), (U, D') ->
    (B, U) in [0, 1]. In fp32 with autocast off."""
    with fp32(z):
        z = F.normalize(z.float(), dim=-1)
        protos = torch.cat([prototypes.float(), prototypes.new_zeros(1, prototypes.shape[1]).float()])
        s = z @ F.normalize(protos, dim=-1).T  # the zero vector's similarity is 0
        over_time = (s / tau_time).masked_fill(~valid[..., None], float("-inf")).softmax(1)
        over_protos = (s / tau_proto).softmax(2)
        return (over_time * over_protos).sum(1)[:, :-1]


def ctc_gloss_loss(log_probs: torch.Tensor, valid: torch.Tensor, targets: torch.Tensor,
                   target_lengths: torch.Tensor) -> torch.Tensor:
    """CTC loss of (B, T, C) log-probabilities against padded gloss ids (B, G), each sequence's
    loss divided by its number of glosses (torch's "mean"), averaged over the sequences that
    have glosses (0 without any); infeasible alignments count 0 (zero_infinity)."""
    has = target_lengths > 0
    if not bool(has.any()):
        return log_probs.sum() * 0.0
    with fp32(log_probs):
        per = F.ctc_loss(log_probs.float().transpose(0, 1), targets, valid.sum(1), target_lengths, blank=BLANK,
                         reduction="none", zero_infinity=True)
        return (per[has] / target_lengths[has].float()).mean()


def ctc_greedy(log_probs: torch.Tensor, valid: torch.Tensor) -> list[list[int]]:
    """Greedy CTC decoding: the best class per step, repeats merged, blanks dropped (class ids)."""
    best = log_probs.argmax(-1).masked_fill(~valid, BLANK).cpu()
    out = []
    for row in best.tolist():
        ids, prev = [], BLANK
        for c in row:
            if c != prev and c != BLANK:
                ids.append(c)
            prev = c
        out.append(ids)
    return out


def bleu_statistics(hyps: list[str], refs: list[str]) -> list[float]:
    """sacrebleu's corpus statistics under signjoey's convention (slp_cli.metrics.text.bleu):
    [sys_len, ref_len, matches 1..4, totals 1..4]; they add up over batches."""
    from sacrebleu.metrics import BLEU

    st = BLEU(lowercase=True, force=True, tokenize="none", smooth_method="floor", smooth_value=0.0,
              effective_order=True).corpus_score(hyps, [refs])
    return [float(st.sys_len), float(st.ref_len), *map(float, st.counts), *map(float, st.totals)]


def bleu4_from_statistics(stats: list[float]) -> float:
    """BLEU-4 (0-100) of summed :func:`bleu_statistics` as slp_cli.metrics.text.bleu computes it:
    brevity penalty times the geometric mean of the four precisions, 0 if any is 0."""
    sys_len, ref_len, counts, totals = stats[0], stats[1], stats[2:6], stats[6:10]
    if sys_len <= 0 or min(counts) <= 0 or min(totals) <= 0:
        return 0.0
    bp = 1.0 if sys_len >= ref_len else math.exp(1 - ref_len / sys_len)
    return 100.0 * bp * math.exp(sum(math.log(c / t) for c, t in zip(counts, totals)) / 4)


def binary_cross_entropy(p: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean BCE of probabilities (written out: torch's version refuses autocast regions)."""
    p = p.float().clamp(eps, 1 - eps)
    return -(target * p.log() + (1 - target) * (1 - p).log()).mean()


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor: linear warm-up to 1, then cosine decay to 0 at ``total`` steps."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1 + math.cos(math.pi * progress))


def augment(pose: torch.Tensor, p: float) -> torch.Tensor:
    """Random rotation (image plane), scale and shift of whole sequences with probability p."""
    b = pose.shape[0]
    on = (torch.rand(b, device=pose.device) < p).to(pose.dtype)
    angle = (torch.rand(b, device=pose.device) * 2 - 1) * AUGMENT_ROTATION * on
    scale = 1 + (torch.rand(b, device=pose.device) * 2 - 1) * AUGMENT_SCALE * on
    shift = (torch.rand(b, 2, device=pose.device) * 2 - 1) * AUGMENT_SHIFT * on[:, None]
    cos, sin = angle.cos(), angle.sin()
    x, y, z = pose.unbind(-1)
    c, s, k = (v[:, None, None] for v in (cos, sin, scale))
    x2 = k * (c * x - s * y) + shift[:, 0, None, None]
    y2 = k * (s * x + c * y) + shift[:, 1, None, None]
    return torch.stack([x2, y2, k * z], -1)


# --- the model -----------------------------------------------------------------------------------


def _quiet_transformers():
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def load_pretrained_lm(name: str):
    """A pretrained encoder-decoder LM and its tokenizer by hub id or local path."""
    transformers = _quiet_transformers()
    try:
        tok = transformers.AutoTokenizer.from_pretrained(name)
        lm = transformers.AutoModelForSeq2SeqLM.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise SlpError(f"cannot load the language model {name!r} ({str(e).splitlines()[0]}); give a hub id "
                       f"available offline (in the local cache) or a folder written by save_pretrained") from None
    if not lm.config.is_encoder_decoder:
        raise SlpError(f"{name}: not an encoder-decoder language model (e.g. mBART, T5)")
    return lm, tok


def lm_from_data(data: dict, said: str):
    """A pretrained LM's architecture, rebuilt from the ``lm_config`` of a model's data state (the
    weights come from the checkpoint next), so a finished run needs no hub or local LM files."""
    if not data.get("lm_config"):
        raise SlpError(f"{said} but its data holds no lm_config; build the model with from_data")
    transformers = _quiet_transformers()
    return transformers.AutoModelForSeq2SeqLM.from_config(transformers.AutoConfig.for_model(**data["lm_config"]))


def _check_training_samples(samples: list) -> None:
    """Every sample needs frames and its sentence; one line naming the first bad one."""
    for s in samples:
        if s.num_frames == 0:
            raise SlpError(f"sample '{s.id}' has no frames; remove it from the training data")
        if not s.text.strip():
            n = sum(1 for x in samples if not x.text.strip())
            raise SlpError(f"sample '{s.id}' has no text ({n} of {len(samples)} training samples lack one): SLT "
                           f"training needs the spoken sentence of every sample")
        if not np.isfinite(s.pose).any():
            raise SlpError(f"sample '{s.id}' has no visible joint in any frame; remove it from the training data")
        try:
            spoken_language(s.lang)
        except SlpError as e:
            raise SlpError(f"sample '{s.id}': {e}") from None


@register("slt")
class SLT(PoseToText):
    """Back-translation model (pose -> text): hierarchical pre-training, then two fine-tuning stages."""

    Config = SLTConfig
    presets = PRESETS
    run_fields = frozenset({"stage", "weight_decay", "warmup_steps", "label_smoothing", "pg_weight", "augment",
                            "ctc_weight"})
    # `slp train slt --stage all`: the paper's three runs (section 4.2), one after the other
    run_sequences = {"stage": {"all": [{"stage": "pretrain"}, {"stage": "finetune-head"},
                                       {"stage": "finetune-all", "preset": "finetune-all"}]}}

    def __init__(self, config: SLTConfig, data: dict | None = None, lm=None, lm_tokenizer=None):
        """``data`` (from_data): ``langs``, ``pseudo_glosses``, ``shoulder_width``, ``max_text_len``,
        ``glosses`` (the gloss vocabulary of the CTC head; absent or empty: no head), and
        ``tokenizer`` (the offline WordPiece) or ``lm_config`` / ``lm_start`` (a pretrained LM's
        configuration and first decoder token per language)."""
        super().__init__(config, data)
        c, data = config, self.data
        self.frame = FrameEncoder(c.part_dim, c.d_model, c.dropout)
        self.temporal = TemporalEncoder(c)
        self._hf_tokenizer = lm_tokenizer
        self._text_tokenizer = TextTokenizer.from_json(data["tokenizer"]) if data.get("tokenizer") else None
        if c.lm:
            self.lm, self.lm_files = self._wrap_lm(lm), PackedFiles()
            if lm_tokenizer is not None:
                with tempfile.TemporaryDirectory() as d:
                    lm_tokenizer.save_pretrained(d)
                    self.lm_files.blob = PackedFiles.pack(Path(d))
            width = self.lm.get_base_model().config.d_model
        else:
            width = c.lm_width
            vocab = self._text_tokenizer.vocab_size if self._text_tokenizer else c.vocab_size
            self.seq_encoder = Encoder(width, c.heads, c.ffn, c.enc_layers, c.dropout)
            self.decoder = TextDecoder(vocab, width, c.heads, c.ffn, c.dec_layers, c.dropout)
            self.text_encoder = Encoder(width, c.heads, c.ffn, c.text_layers, c.dropout, vocab=vocab)
        self.width = width
        self.mapper = nn.Linear(c.d_model, width)
        self.pg_proj = nn.Linear(c.d_model, c.prototype_dim)
        self.prototypes = nn.Parameter(torch.randn(max(len(self.pseudo_glosses), 1), c.prototype_dim) * 0.02)
        self.log_tau_time = nn.Parameter(torch.tensor(math.log(c.tau_time)))
        self.log_tau_proto = nn.Parameter(torch.tensor(math.log(c.tau_proto)))
        self.log_tau_align = nn.Parameter(torch.tensor(math.log(c.tau_align)))
        if self.gloss_vocabulary:
            self.gloss_head = nn.Linear(width, len(self.gloss_vocabulary) + 1)  # + the CTC blank
        self._set_trainable()

    # --- construction ----------------------------------------------------------------------
    def _wrap_lm(self, lm):
        """The LM (given, or rebuilt from its stored HF config) with LoRA adapters on q/v."""
        from peft import LoraConfig, get_peft_model

        _quiet_transformers()  # peft prints through transformers' logger
        c = self.config
        if lm is None:
            lm = lm_from_data(self.data, f"SLT config names the language model {c.lm!r}")
        lora = LoraConfig(r=c.lora_r, lora_alpha=c.lora_alpha, lora_dropout=c.lora_dropout,
                          target_modules=list(c.lora_targets))
        try:
            with warnings.catch_warnings():  # peft asks transformers for a deprecated attribute
                warnings.simplefilter("ignore", FutureWarning)
                return get_peft_model(lm, lora)
        except ValueError as e:
            raise SlpError(f"{c.lm}: cannot put LoRA on {', '.join(c.lora_targets)} ({str(e).splitlines()[0]}); "
                           f"set --lora-targets to the attention projections of this model") from None

    @classmethod
    def from_data(cls, config: SLTConfig, samples: list, **inputs) -> "SLT":
        """Build the model from the training samples: tokenizer, pseudo-gloss vocabulary and scale
        into its data state, feature statistics into its buffers. (A later stage starts from an
        earlier run with `slp train slt --init RUN`, which the training loop handles.)"""
        cls.check_inputs(inputs)
        _check_training_samples(samples)
        if config.stage == "finetune-head":
            raise SlpError("--stage finetune-head trains only the mapper and the decoder of a pre-trained model: "
                           "give --init PRETRAIN_DIR (or --stage finetune-all to train everything from scratch)")
        langs = sorted({s.lang for s in samples})
        data = {"langs": langs, "pseudo_glosses": pg.vocabulary(((s.text, s.lang) for s in samples),
                                                                config.pg_min_count),
                "glosses": gloss_vocabulary(samples)}
        if config.stage == "pretrain" and not data["pseudo_glosses"]:
            raise SlpError("no pseudo-gloss (content word) in the training sentences: nothing to pre-train on")
        data["shoulder_width"] = shoulder_width(samples)
        lm = tok = None
        if config.lm:
            lm, tok = load_pretrained_lm(config.lm)
            data["lm_config"] = lm.config.to_dict()
            data["lm_start"] = {lang: _start_id(lm, tok, lang) for lang in langs}
        else:
            data["tokenizer"] = TextTokenizer.train([s.text for s in samples], langs, config.vocab_size).to_json()
        model = cls(config, data, lm=lm, lm_tokenizer=tok)
        model.data["max_text_len"] = max(len(model.target(s.text, s.lang)[0]) + 1 for s in samples)
        mean, std = feature_stats(samples)
        model.frame.mean.copy_(torch.from_numpy(mean))
        model.frame.std.copy_(torch.from_numpy(std))
        return model

    def on_init(self, samples: list, init) -> None:
        """Checks of a run that starts from the trained run ``init`` (--init)."""
        _check_training_samples(samples)
        self.check_langs(samples, f"the model in {init}")
        if self.config.stage == "pretrain" and not self.pseudo_glosses:
            raise SlpError(f"{init}: the model has no pseudo-gloss vocabulary to pre-train with")

    @property
    def pseudo_glosses(self) -> list[str]:
        return list(self.data.get("pseudo_glosses", []))

    @property
    def gloss_vocabulary(self) -> list[str]:
        """The glosses the CTC head recognises (class i + 1; 0 is the blank); [] without a head."""
        return list(self.data.get("glosses", []))

    @property
    def recognises_glosses(self) -> bool:
        return bool(self.gloss_vocabulary)

    @property
    def selection(self) -> tuple[str, str]:
        """Pre-training keeps the lowest dev loss (section 4.2); fine-tuning the best dev BLEU-4."""
        return ("loss", "min") if self.config.stage == "pretrain" else ("bleu4", "max")

    def _group(self, name: str) -> str | None:
        """Which stage group a parameter belongs to (None: never trained, e.g. a frozen LM weight)."""
        top = name.split(".")[0]
        if top == "lm":
            if "lora_" not in name:
                return None
            return "decoder" if ".decoder." in name else "encoder"
        return {"frame": "visual", "temporal": "visual", "mapper": "mapper", "seq_encoder": "encoder",
                "decoder": "decoder", "gloss_head": "gloss_head"}.get(top, "alignment")

    def _set_trainable(self) -> None:
        groups = STAGE_GROUPS[self.config.stage]
        for name, p in self.named_parameters():
            p.requires_grad_(self._group(name) in groups)

    # --- text ------------------------------------------------------------------------------
    @property
    def hf_tokenizer(self):
        if self._hf_tokenizer is None:
            if not self.lm_files.blob:
                raise SlpError("this SLT model holds no tokenizer of its language model")
            transformers = _quiet_transformers()
            with tempfile.TemporaryDirectory() as d:
                self._hf_tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.lm_files.unpack(Path(d))))
        return self._hf_tokenizer

    def check_ready(self) -> None:
        if self.config.stage == "pretrain":
            raise SlpError("this SLT model is a pre-trained encoder (stage pretrain) whose decoder was never trained; "
                           "fine-tune it first: slp train slt --stage finetune-head --init RUN ...")

    def check_lang(self, lang: str) -> None:
        if lang not in self.data["langs"]:
            known = ", ".join(self.data["langs"]) or "none"
            raise SlpError(f"language {lang!r} was not in this model's training data (it knows {known})")

    def check_langs(self, samples: list, what: str = "this model") -> None:
        known = set(self.data["langs"])
        for s in samples:
            if s.lang not in known:
                raise SlpError(f"sample '{s.id}': language {s.lang!r} was not in the training data of {what} "
                               f"(it knows {', '.join(sorted(known)) or 'none'})")

    @property
    def pad_id(self) -> int:
        return PAD if self._text_tokenizer else int(self.hf_tokenizer.pad_token_id)

    @property
    def eos_id(self) -> int:
        if self._text_tokenizer:
            return EOS
        eos = self.hf_tokenizer.eos_token_id
        return int(eos if eos is not None else self.lm.get_base_model().config.eos_token_id)

    def prefix(self, lang: str) -> list[int]:
        """The decoder's first tokens for a sentence of ``lang``."""
        self.check_lang(lang)
        if self._text_tokenizer:
            return [self._text_tokenizer.lang_id(lang), BOS]
        return [int(self.data["lm_start"][lang])]

    def sentence_ids(self, text: str, lang: str) -> list[int]:
        """Token ids of a sentence as the sentence encoder reads it (pre-training's L_align): the
        offline tokenizer's, or the LM tokenizer's with its special tokens, where an mBART-style
        tokenizer (one with ``src_lang``) tags the sentence with the language code of ``lang``
        (``de_DE`` for dgs), not with its default ``en_XX``."""
        if self._text_tokenizer:
            return self._text_tokenizer.encode(text)
        tok = self.hf_tokenizer
        code = MBART_CODES.get(spoken_language(lang))
        if code is None or not hasattr(tok, "src_lang") or code not in tok.get_vocab():
            return list(tok(text)["input_ids"])
        before = tok.src_lang
        try:
            tok.src_lang = code  # mBART's setter moves the language code into the special tokens
            return list(tok(text)["input_ids"])
        finally:
            tok.src_lang = before

    def text_ids(self, text: str) -> list[int]:
        """Token ids of the sentence alone (no special tokens)."""
        if self._text_tokenizer:
            return self._text_tokenizer.encode(text)
        return list(self.hf_tokenizer(text, add_special_tokens=False)["input_ids"])

    def target(self, text: str, lang: str) -> tuple[list[int], list[int]]:
        """Decoder input and labels of a sentence: prefix + ids -> ids + [EOS] (no loss on the
        prefix's own tokens)."""
        ids = self.text_ids(text)
        if not ids:
            raise SlpError(f"text {text!r} has no tokens")
        prefix = self.prefix(lang)
        return prefix + ids, [IGNORE] * (len(prefix) - 1) + ids + [self.eos_id]

    def decode_ids(self, ids) -> str:
        ids = [int(i) for i in ids]
        if self._text_tokenizer:
            return self._text_tokenizer.decode(ids)
        if self.eos_id in ids:
            ids = ids[:ids.index(self.eos_id)]
        return self.hf_tokenizer.decode(ids, skip_special_tokens=True).strip()

    @property
    def max_new_tokens(self) -> int:
        return int(1.5 * self.data["max_text_len"]) + 5

    # --- data ------------------------------------------------------------------------------
    def make_dataset(self, samples):
        """Items of the samples. Their lengths, which the loop's sampler buckets batches by, are
        all 1 in pre-training: its batches are then random draws (see the module docstring)."""
        _check_training_samples(samples)
        self.check_langs(samples)
        index = {k: i for i, k in enumerate(self.pseudo_glosses)}
        gloss_ids = {g: i + 1 for i, g in enumerate(self.gloss_vocabulary)}
        items = []
        for s in samples:
            try:
                dec_in, labels = self.target(s.text, s.lang)
            except SlpError as e:
                raise SlpError(f"sample '{s.id}': {e}") from None
            # unknown glosses (not in the training vocabulary) cannot be targets: such a sample
            # adds no CTC term, its gloss WER still counts them
            known = [gloss_ids.get(g) for g in s.glosses]
            items.append({"pose": s.pose, "dec_in": np.array(dec_in), "labels": np.array(labels),
                          "text": np.array(self.sentence_ids(s.text, s.lang)), "ref": s.text, "lang": s.lang,
                          "pg": [index[k] for k in pg.keys(s.text, s.lang) if k in index],
                          "glosses": list(s.glosses),
                          "gloss_ids": np.array(known if None not in known else [], dtype=np.int64)})
        lengths = np.array([s.num_frames for s in samples])
        if self.config.stage == "pretrain":
            lengths = np.ones_like(lengths)
        return SequenceDataset(items, lengths)

    def collate(self, items):
        pose, valid = pad([it["pose"] for it in items])
        dec_in, _ = pad([it["dec_in"] for it in items], value=self.pad_id, dtype=torch.long)
        labels, _ = pad([it["labels"] for it in items], value=IGNORE, dtype=torch.long)
        text, text_valid = pad([it["text"] for it in items], value=self.pad_id, dtype=torch.long)
        presence = torch.zeros(len(items), len(self.pseudo_glosses))
        for i, it in enumerate(items):
            presence[i, it["pg"]] = 1.0
        gloss_ids, _ = pad([it["gloss_ids"] for it in items], value=BLANK, dtype=torch.long)
        return {"pose": pose, "valid": valid, "dec_in": dec_in, "labels": labels, "text": text,
                "text_valid": text_valid, "pseudo_glosses": presence, "gloss_ids": gloss_ids,
                "gloss_lengths": torch.tensor([len(it["gloss_ids"]) for it in items], dtype=torch.long),
                "refs": [it["ref"] for it in items], "langs": [it["lang"] for it in items],
                "glosses": [it["glosses"] for it in items],
                "num_frames": int(valid.sum()), "batch_size": len(items)}

    # --- forward pieces --------------------------------------------------------------------
    def segments(self, pose: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame and segment levels: (B, T, 178, 3) poses -> segment features Z (B, T', d_model)."""
        return self.temporal(self.frame(pose), valid)

    def sequence(self, z: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Mapper and LM encoder: segment features -> video-level features M (B, T', width)."""
        x = self.mapper(z)
        if self.config.lm:
            enc = self.lm.get_base_model().get_encoder()
            return enc(inputs_embeds=x, attention_mask=valid.long()).last_hidden_state
        return self.seq_encoder(x, valid)

    def encode(self, pose: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Poses -> (video features M, their mask): the decoder's memory."""
        z, zv = self.segments(pose, valid)
        return self.sequence(z, zv), zv

    def logits(self, memory: torch.Tensor, memory_valid: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits (B, L, V) of decoder inputs ``ids`` given the memory."""
        if self.config.lm:
            out = self.lm.get_base_model()(encoder_outputs=(memory,), attention_mask=memory_valid.long(),
                                           decoder_input_ids=ids)
            return out.logits
        return self.decoder(ids, memory, memory_valid)

    def decoding_step(self, memory: torch.Tensor, memory_valid: torch.Tensor):
        """The step function of greedy and beam search: ids (B, L) -> next-token logits (B, V);
        cached (each token decoded once) for the offline decoder, recomputed for a pretrained LM."""
        if self.config.lm:
            return DecodingStep(lambda ids: self.logits(memory, memory_valid, ids)[:, -1])
        return self.decoder.incremental(memory, memory_valid)

    def sentence_features(self, ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Pooled sentence features for the alignment loss (frozen LM encoder, or the offline
        sentence encoder)."""
        if self.config.lm:
            with torch.no_grad(), self.lm.disable_adapter():
                enc = self.lm.get_base_model().get_encoder()
                h = enc(input_ids=ids, attention_mask=valid.long()).last_hidden_state
        else:
            h = self.text_encoder(ids, valid)
        return masked_mean(h, valid)

    # --- steps -----------------------------------------------------------------------------
    def _inputs(self, batch):
        pose = batch["pose"]
        if self.training and self.config.augment > 0:
            pose = augment(pose, self.config.augment)
        return pose, batch["valid"]

    def pretrain_losses(self, batch) -> dict[str, torch.Tensor]:
        pose, valid = self._inputs(batch)
        z, zv = self.segments(pose, valid)
        with fp32(z):
            scores = pseudo_gloss_scores(self.pg_proj(z.float()), zv, self.prototypes[:len(self.pseudo_glosses)],
                                         self.log_tau_time.exp(), self.log_tau_proto.exp())
            l_pg = binary_cross_entropy(scores, batch["pseudo_glosses"])
        video = masked_mean(self.sequence(z, zv), zv)
        text = self.sentence_features(batch["text"], batch["text_valid"])
        if self.training:  # every process' negatives (evaluation: each its own share, see the docstring)
            video, text = gather_with_grad(video.float()), gather_with_grad(text.float())
        tau = self.log_tau_align.exp().clamp(min=0.01)
        l_align = contrastive_loss(video, text, tau)
        return {"loss": l_align + self.config.pg_weight * l_pg, "align": l_align.detach(),
                "pseudo_gloss": l_pg.detach(), "tau_align": tau.detach()}

    def gloss_log_probs(self, memory: torch.Tensor) -> torch.Tensor:
        """(B, T', classes) log-probabilities of the CTC gloss head (fp32, autocast off)."""
        with fp32(memory):
            return self.gloss_head(memory.float()).log_softmax(-1)

    @torch.no_grad()
    def recognise_glosses(self, memory: torch.Tensor, memory_valid: torch.Tensor) -> list[list[str]]:
        """The glosses of each row of an encoding (greedy CTC decoding); SlpError without a head."""
        if not self.recognises_glosses:
            raise SlpError("this SLT model has no gloss head (its training corpus had no glosses)")
        vocab = self.gloss_vocabulary
        return [[vocab[c - 1] for c in ids] for ids in ctc_greedy(self.gloss_log_probs(memory), memory_valid)]

    def translation_losses(self, batch, memory=None, mv=None) -> dict[str, torch.Tensor]:
        if memory is None:
            pose, valid = self._inputs(batch)
            memory, mv = self.encode(pose, valid)
        logits = self.logits(memory, mv, batch["dec_in"])  # the decoder runs under autocast
        with fp32(logits):
            logits, labels = logits.float(), batch["labels"]
            ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE,
                                 label_smoothing=self.config.label_smoothing)
        real = labels != IGNORE
        acc = ((logits.argmax(-1) == labels) & real).sum() / real.sum().clamp(min=1)
        out = {"loss": ce, "accuracy": acc.detach()}
        if self.recognises_glosses:
            ctc = ctc_gloss_loss(self.gloss_log_probs(memory), mv, batch["gloss_ids"], batch["gloss_lengths"])
            out.update(loss=ce + self.config.ctc_weight * ctc, translation=ce.detach(), ctc=ctc.detach())
        return out

    def training_step(self, batch):
        if self.config.stage == "pretrain":
            return self.pretrain_losses(batch)
        return self.translation_losses(batch)

    def validation_step(self, batch):
        """Pre-training: its losses. Fine-tuning: the losses, and the statistics of corpus BLEU
        (greedy decoding of the batch) and of gloss WER (a gloss head and reference glosses), per
        sentence so that the loop's batch-size-weighted means add them up over the dev split."""
        if self.config.stage == "pretrain":
            return self.pretrain_losses(batch)
        from ..metrics.text import edit_distance, normalize
        from ..translate import decode

        pose, valid = self._inputs(batch)
        memory, mv = self.encode(pose, valid)
        out = self.translation_losses(batch, memory, mv)
        n = len(batch["refs"])
        hyps = [normalize(self.decode_ids(ids), lang) for ids, lang in
                zip(decode(self, memory, mv, batch["langs"], beam=1), batch["langs"])]
        refs = [normalize(r, lang) for r, lang in zip(batch["refs"], batch["langs"])]
        stats = bleu_statistics(hyps, refs)
        if self.recognises_glosses and any(batch["glosses"]):
            pairs = [(h, r) for h, r in zip(self.recognise_glosses(memory, mv), batch["glosses"]) if r]
            stats += [sum(edit_distance(h, r) for h, r in pairs), sum(len(r) for _, r in pairs)]
        else:
            stats += [0.0, 0.0]
        # the loop sums scalars only: one value per statistic
        out.update({f"_stats.{i}": torch.tensor(v / n, dtype=torch.float64, device=memory.device)
                    for i, v in enumerate(stats)})
        return out

    def finish_evaluation(self, values: dict) -> dict:
        """Dev BLEU-4 (the selection metric of fine-tuning) and gloss WER from the summed
        statistics of :meth:`validation_step`."""
        values = dict(values)
        stats = [values.pop(f"_stats.{i}") for i in range(12) if f"_stats.{i}" in values]
        if stats:
            values["bleu4"] = bleu4_from_statistics(stats[:10])
            if stats[11] > 0:
                values["gloss_wer"] = 100.0 * stats[10] / stats[11]
        return values

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.config.lr, weight_decay=self.config.weight_decay)
        c = self.config
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine(step, c.warmup_steps, c.max_steps))
        return opt, sched


def _start_id(lm, tok, lang: str) -> int:
    """First decoder token for ``lang``: its mBART language code where the tokenizer has one,
    else the model's decoder start token."""
    code = MBART_CODES.get(spoken_language(lang))
    if code:
        tid = tok.convert_tokens_to_ids(code)
        if isinstance(tid, int) and tid != tok.unk_token_id:
            return tid
    start = lm.config.decoder_start_token_id
    return int(start if start is not None else lm.config.eos_token_id)


def gloss_vocabulary(samples: list) -> list[str]:
    """The glosses of the training samples, most frequent first (ties alphabetically): the classes
    of the CTC gloss head; [] when no sample has glosses (no head)."""
    from collections import Counter

    counts = Counter(g for s in samples for g in s.glosses)
    return [g for g, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def shoulder_width(samples: list) -> float:
    """Median distance between the shoulders over the samples' frames: the scale of the poses
    (1 after slp's normalization), checked when translating."""
    widths = []
    for s in samples:
        d = np.linalg.norm(s.pose[:, skeleton.R_SHOULDER] - s.pose[:, skeleton.L_SHOULDER], axis=-1)
        widths.append(d[np.isfinite(d)])
    w = np.concatenate(widths) if widths else np.zeros(0)
    return float(np.median(w)) if w.size else 0.0


def feature_stats(samples: list) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the frame features over every training frame (float64 sums,
    one sample at a time); a constant feature gets std 1."""
    total, sq, n = 0.0, 0.0, 0
    for s in samples:
        f = frame_features(torch.from_numpy(np.asarray(s.pose, dtype=np.float32))).double()
        total = total + f.sum(0)
        sq = sq + (f * f).sum(0)
        n += len(f)
    mean = total / n
    std = (sq / n - mean * mean).clamp(min=0).sqrt()
    std = torch.where(std < 1e-4, torch.ones_like(std), std)
    return mean.float().numpy(), std.float().numpy()
