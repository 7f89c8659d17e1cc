"""GLOS: gloss-level conditioning aligned in time (TAC) over part-aware masked discrete diffusion
(GLOS; its revision, SIGNER, calls TAC "LTF"; no code is public). Text -> glosses (a text-to-gloss
model, or glosses given) -> a duration per gloss -> motion tokens of the frozen VQ-VAE, one stream
per body part, denoised together -> poses.

* Gloss-level condition S (GLOS): each gloss embedded (a table learnt from scratch: the paper
  uses mBART's embeddings, which no offline machine has), repeated for its duration, projected
  to the model width. The sequence is framed by two pseudo-glosses, ``<start>`` and ``<end>``,
  for the rest pose before the first and after the last sign, so that the durations sum to the
  output length. S is taken at the token rate: the condition of token step j is the gloss under
  the middle frame of the step's ``downsample`` frames.
* Durations. Training alignment (**GAP**: the paper does not say): ``durations="spans"`` uses the
  corpus' gloss spans where a sample has them (the synthetic corpus has; a gap between two signs,
  the transition, is split at its middle), the others as ``scaled``; ``"scaled"`` starts from
  equal shares and rescales the per-gloss mean durations to each sentence's true length (two
  rounds). Inference (``duration_model``): ``mean`` -- each gloss's mean training duration (GLOS
  v1) -- or ``mlp`` -- a 2-layer MLP on the gloss embedding predicting the log duration (the
  revision), trained jointly with an L1 loss in log frames.
* Tokens: any discrete :class:`~slp_cli.models.PoseTokenizer` (``codebooks`` non-empty), read
  generically by its ``array_names``: SOKE's decoupled VQ-VAE gives body (with face), left hand,
  right hand; a tokenizer with a separate ``tokens_face`` stream gives the paper's four parts. Its
  weights are copied into this model (a generator directory is self-contained).
* Denoiser (GLOS): ``layers`` blocks, width ``d_model``, ``heads`` heads, over all streams at
  once (weights shared by the streams, a learned stream embedding and per-stream token
  embeddings and output heads: **GAP**, the paper does not say whether parts share weights).
  Each block: self-attention within a stream with AdaLN on the diffusion step; inter-part
  attention (IPA: the body stream attends to every other stream, every other stream attends to
  the body: hands <-> body and face <-> body); the condition layer; a feed-forward layer with
  AdaLN on the step (the paper lists no FFN; a Transformer block has one). Condition layers
  (``condition``): ``tac`` -- ``X + Conv1D_k3(LN(X) * (1 + u(S)) + v(S))``, a per-step AdaLN by
  the gloss under that step then a local convolution (the paper writes the update without the
  residual; with it the block stays an identity at initialisation and the receptive field is
  the same); ``adaln-fc`` -- the same with a pointwise linear layer instead of the convolution
  (the paper's "AdaLN + FC" ablation); ``cross-attention`` -- global cross-attention from every
  token to the whole gloss sequence (positions, no durations; the sentence-level baseline of the
  ablation). No cross-attention to the text in the first two.
* Diffusion (**GAP**: the transition schedule): the absorbing-state special case of VQ-Diffusion
  with a linear schedule over ``diffusion_steps`` = 50: at step t each token is masked with
  probability t / T. The model predicts x0 (every stream's codes) from x_t, t and S; the loss is
  the cross-entropy of the masked tokens (the VLB of the absorbing process is this, weighted by
  1/t; unweighted, as MaskGIT and MDLM train it, it is stabler). Sampling (``sampler``):
  ``random`` -- the reverse process: from all masked, at each of K steps every masked token is
  unmasked with probability 1 / k and drawn from the predicted distribution; ``confidence`` --
  MoMask-style, the most confident predictions are kept so that a linear share stays masked.
  Both end with every token unmasked.
* Training (GLOS, implementation details): AdamW lr 1e-4, weight decay 4.5e-2, batch 56, 30k iterations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..data.loader import SequenceDataset
from ..errors import SlpError
from ..tensors import pad
from ..text.encoders import sinusoidal
from . import Signed, TextToGloss, TextToPose, TrainingConfig, config_dict, load_discrete_tokenizer, load_model, option, register
from . import get_model_class

CONDITIONS = ("tac", "adaln-fc", "cross-attention")
PAD, START, END = 0, 1, 2  # gloss ids of padding and the two rest pseudo-glosses
SPECIAL = ["<pad>", "<start>", "<end>"]
BODY = "body"  # the stream every other stream attends to (and that attends to all of them)


@dataclass
class GLOSConfig(TrainingConfig):
    d_model: int = option(512, "Denoiser width (GLOS: 512).")
    layers: int = option(14, "Denoiser blocks (14).")
    heads: int = option(16, "Attention heads (16).")
    ffn: int = option(2048, "Feed-forward width (4 x d_model; not in the paper).")
    gloss_dim: int = option(512, "Gloss embedding size before the projection to d_model.")
    dropout: float = option(0.1, "Dropout.")
    condition: str = option("tac", "Gloss condition: tac (AdaLN by the gloss under each step + kernel-3 conv, the "
                            "paper's), adaln-fc (no local conv) or cross-attention (global, to the gloss sequence).")
    kernel: int = option(3, "TAC convolution kernel (3).")
    ipa: bool = option(True, "Inter-part attention (body <-> other streams).")
    diffusion_steps: int = option(50, "Diffusion steps T (50).")
    durations: str = option("spans", "Training alignment of glosses to frames: spans (the corpus' gloss spans where "
                            "a sample has them, the others scaled) or scaled (mean durations rescaled to the length).")
    duration_model: str = option("mean", "Durations at inference: mean (training-set mean per gloss, GLOS v1) or "
                                 "mlp (2-layer MLP on the gloss embedding, the revision).")
    duration_weight: float = option(0.1, "Weight of the duration MLP's L1 loss on log frames.")
    weight_decay: float = option(4.5e-2, "AdamW weight decay (4.5e-2).")

    def __post_init__(self):
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {', '.join(CONDITIONS)}, not {self.condition!r}")
        if self.durations not in ("spans", "scaled"):
            raise ValueError(f"durations must be spans or scaled, not {self.durations!r}")
        if self.duration_model not in ("mean", "mlp"):
            raise ValueError(f"duration_model must be mean or mlp, not {self.duration_model!r}")
        if self.heads < 1 or self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} must be divisible by heads {self.heads}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd and >= 1, not {self.kernel}")
        if self.diffusion_steps < 1 or self.layers < 1:
            raise ValueError("diffusion_steps and layers must be >= 1")


PRESETS = {
    # GLOS: batch 56, 30k iterations, AdamW lr 1e-4, weight decay 4.5e-2.
    "default": dict(batch_size=56, max_steps=30000, lr=1e-4, eval_every=500, checkpoint_every=2000, patience=30),
    # Tests, the demo and the CPU ablations: seconds to minutes on one core.
    "tiny": dict(d_model=64, layers=2, heads=4, ffn=128, gloss_dim=32, dropout=0.0, batch_size=8, max_steps=400,
                 lr=2e-3, weight_decay=0.0, eval_every=100, checkpoint_every=200, patience=0, log_every=20),
}


# --- durations ---------------------------------------------------------------------------------

def integer_shares(weights, total: int) -> np.ndarray:
    """Non-negative integers proportional to ``weights`` summing to ``total`` (largest remainder)."""
    w = np.maximum(np.asarray(weights, dtype=np.float64), 1e-9)
    raw = w / w.sum() * total
    out = np.floor(raw).astype(np.int64)
    rest = int(total - out.sum())
    if rest > 0:
        out[np.argsort(-(raw - out), kind="stable")[:rest]] += 1
    return out


def span_durations(spans, num_glosses: int, num_frames: int) -> np.ndarray | None:
    """Frames of [<start>, g_1..g_G, <end>] from gloss spans [start, end): the gap between two
    signs split at its middle; None if the spans do not fit the glosses and frames."""
    if spans is None:
        return None
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    if len(spans) != num_glosses or not num_glosses:
        return None
    spans = np.clip(spans, 0, num_frames)
    if (spans[:, 1] < spans[:, 0]).any() or (spans[1:, 0] < spans[:-1, 1]).any():
        return None
    bounds = [int(spans[0, 0])]
    for i in range(1, num_glosses):
        bounds.append((int(spans[i - 1, 1]) + int(spans[i, 0])) // 2)
    bounds.append(int(spans[-1, 1]))
    inner = np.diff(bounds)
    return np.concatenate([[bounds[0]], inner, [num_frames - bounds[-1]]]).astype(np.int64)


def frame_condition(ids: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """Gloss id of every frame: each id repeated for its duration."""
    return np.repeat(np.asarray(ids, dtype=np.int64), np.asarray(durations, dtype=np.int64))


def step_condition(frames: np.ndarray, down: int, steps: int) -> np.ndarray:
    """Gloss id under each of ``steps`` token steps: the id of the step's middle frame."""
    idx = np.minimum(np.arange(steps) * down + down // 2, len(frames) - 1)
    return frames[idx]


# --- layers ------------------------------------------------------------------------------------

class AdaLN(nn.Module):
    """LayerNorm without affine, scaled and shifted per position by a condition: LN(x) * (1 + u) + v."""

    def __init__(self, d: int, cond: int):
        super().__init__()
        self.norm = nn.LayerNorm(d, elementwise_affine=False)
        self.mod = nn.Linear(cond, 2 * d)
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)

    def forward(self, x, c):
        u, v = self.mod(c).chunk(2, -1)
        return self.norm(x) * (1 + u) + v


class TAC(nn.Module):
    """Temporal alignment conditioning (GLOS, the TAC equation): X + Conv1D_k(LN(X) * (1 + u) + v)
    with u = MLP_u(S), v = MLP_v(S) per step; ``kernel=None`` replaces the convolution by a
    pointwise linear layer (the "AdaLN + FC" ablation). Padded steps are zeroed before the
    convolution, so they never leak into real ones."""

    def __init__(self, d: int, kernel: int | None):
        super().__init__()
        self.norm = nn.LayerNorm(d, elementwise_affine=False)
        self.mlp_u = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.mlp_v = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.mix = nn.Conv1d(d, d, kernel, padding=kernel // 2) if kernel else nn.Linear(d, d)

    def forward(self, x, s, valid):
        """x, s: (N, L, d); valid (N, L) bool."""
        h = self.norm(x) * (1 + self.mlp_u(s)) + self.mlp_v(s)
        h = h * valid[..., None].to(h.dtype)
        if isinstance(self.mix, nn.Conv1d):
            h = self.mix(h.transpose(1, 2)).transpose(1, 2)
        else:
            h = self.mix(h)
        return x + h


def attention(q_in, kv_in, q, kv, heads, mask, p):
    b, lq, d = q_in.shape
    qh = q(q_in).view(b, lq, heads, -1).transpose(1, 2)
    k, v = kv(kv_in).view(b, kv_in.shape[1], 2, heads, -1).permute(2, 0, 3, 1, 4)
    o = F.scaled_dot_product_attention(qh, k, v, attn_mask=mask, dropout_p=p)
    return o.transpose(1, 2).reshape(b, lq, d)


class Attn(nn.Module):
    def __init__(self, d, heads, dropout):
        super().__init__()
        self.heads, self.p = heads, dropout
        self.q, self.kv, self.out = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)

    def forward(self, x, memory, mask):
        return self.out(attention(x, memory, self.q, self.kv, self.heads, mask, self.p if self.training else 0.0))


class Block(nn.Module):
    """Self-attention (AdaLN on the step), inter-part attention, the gloss condition, FFN (AdaLN on the step)."""

    def __init__(self, c: GLOSConfig, streams: int):
        super().__init__()
        d = c.d_model
        self.streams = streams
        self.ada1, self.ada2 = AdaLN(d, d), AdaLN(d, d)
        self.self_attn = Attn(d, c.heads, c.dropout)
        self.ipa = Attn(d, c.heads, c.dropout) if c.ipa else None
        self.ipa_norm = nn.LayerNorm(d) if c.ipa else None
        if c.condition == "cross-attention":
            self.cond = None
            self.cross, self.cross_norm = Attn(d, c.heads, c.dropout), nn.LayerNorm(d)
        else:
            self.cond = TAC(d, c.kernel if c.condition == "tac" else None)
        self.ffn = nn.Sequential(nn.Linear(d, c.ffn), nn.GELU(), nn.Dropout(c.dropout), nn.Linear(c.ffn, d))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, step, s, valid, self_mask, ipa_mask, memory, memory_mask):
        """x: (B, P, L, d); step: (B, d); s: (B, L, d) aligned condition; valid (B, L)."""
        b, p, l, d = x.shape
        flat = x.reshape(b * p, l, d)
        step_p = step.repeat_interleave(p, 0)[:, None]
        h = self.ada1(flat, step_p)
        flat = flat + self.drop(self.self_attn(h, h, self_mask))
        x = flat.view(b, p, l, d)
        if self.ipa is not None and ipa_mask is not None:
            h = self.ipa_norm(x.reshape(b, p * l, d))
            x = x + self.drop(self.ipa(h, h, ipa_mask)).view(b, p, l, d)
        flat = x.reshape(b * p, l, d)
        valid_p = valid.repeat_interleave(p, 0)
        if self.cond is not None:
            flat = self.cond(flat, s.repeat_interleave(p, 0), valid_p)
        else:
            mem = memory.repeat_interleave(p, 0)
            flat = flat + self.drop(self.cross(self.cross_norm(flat), mem, memory_mask.repeat_interleave(p, 0)))
        flat = flat + self.drop(self.ffn(self.ada2(flat, step_p)))
        return flat.view(b, p, l, d)


# --- the model ---------------------------------------------------------------------------------

@dataclass
class GLOSOptions:
    glosser: Path | None = option(None, "Text-to-gloss model directory (`slp train text2gloss`): text -> glosses.")
    glosses: str | None = option(None, "Sign these glosses (space-separated, e.g. \"MORGEN REGEN\") instead of "
                                 "glossing the text: every sentence gets them.")
    glosses_from: Path | None = option(None, "An slp artifact whose samples give each sentence's glosses by its text "
                                       "and language (the ground-truth-gloss setting, e.g. the corpus itself).")
    glosser_beam: int = option(1, "Beam width of the glosser (1: greedy).")
    steps: int | None = option(None, "Sampling steps (default: the trained diffusion steps, 50).")
    sampler: str = option("random", "random (the reverse process: each masked token unmasked with probability 1/k) "
                          "or confidence (MoMask-style: the most confident first).")
    temperature: float = option(1.0, "Sampling temperature of the token distributions (0: argmax).")
    duration_jitter: float = option(0.0, "Multiply each gloss's duration by a uniform factor in [1 - j, 1 + j] "
                                    "(robustness test; seeded by --seed).")

    def __post_init__(self):
        if self.sampler not in ("random", "confidence"):
            raise ValueError(f"sampler must be random or confidence, not {self.sampler!r}")
        if self.steps is not None and self.steps < 1:
            raise ValueError("steps must be >= 1")
        if not 0 <= self.duration_jitter < 1:
            raise ValueError("duration_jitter must be in [0, 1)")
        if self.temperature < 0 or self.glosser_beam < 1:
            raise ValueError("temperature must be >= 0 and glosser_beam >= 1")


@register("glos")
class GLOS(TextToPose):
    """GLOS: masked discrete diffusion over part token streams, conditioned on glosses aligned in time (TAC)."""

    Config = GLOSConfig
    GenerateOptions = GLOSOptions
    presets = PRESETS
    inputs = {"tokenizer": "Frozen discrete pose tokenizer: a VQ-VAE run directory from `slp train vqvae` (its "
                           "weights are copied into the generator)."}

    def __init__(self, config: GLOSConfig, data: dict | None = None):
        """``data`` (from_data): ``tokenizer_model``/``tokenizer_config``/``tokenizer_data`` (to rebuild
        the frozen tokenizer), ``streams`` (its arrays), ``codebooks``, ``downsample``, ``glosses``
        (vocabulary after the special ids), ``mean_durations`` (frames per id), ``max_frames``,
        ``langs``, fps and normalization."""
        super().__init__(config, data)
        data = self.data
        if not data.get("streams") or not data.get("glosses"):
            raise SlpError("a glos generator is built from data: train it with `slp train generator --arch glos "
                           "--tokenizer VQ_DIR --data CORPUS.norm.h5`")
        tcls = get_model_class(data["tokenizer_model"])
        self.tokenizer = tcls(tcls.Config(**data["tokenizer_config"]), data.get("tokenizer_data"))
        self.tokenizer.requires_grad_(False)
        self.streams = list(data["streams"])
        self.sizes = [int(data["codebooks"][s]) for s in self.streams]
        # keyed by (language, gloss): two sign languages' glosses never share an embedding
        self.gloss_ids = {(lang, g): i + len(SPECIAL) for i, (lang, g) in enumerate(data["glosses"])}
        d = config.d_model
        self.token_embed = nn.ModuleList(nn.Embedding(n + 1, d) for n in self.sizes)  # + the mask token
        self.stream_embed = nn.Parameter(torch.zeros(len(self.streams), d))
        self.gloss_embed = nn.Embedding(len(SPECIAL) + len(self.gloss_ids), config.gloss_dim, padding_idx=PAD)
        self.gloss_proj = nn.Linear(config.gloss_dim, d)
        self.step_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(Block(config, len(self.streams)) for _ in range(config.layers))
        self.out_norm = nn.LayerNorm(d)
        self.heads = nn.ModuleList(nn.Linear(d, n) for n in self.sizes)
        # (only when used: DDP refuses parameters that get no gradient)
        self.duration_mlp = nn.Sequential(nn.Linear(config.gloss_dim, config.gloss_dim), nn.GELU(),
                                          nn.Linear(config.gloss_dim, 1)) if config.duration_model == "mlp" else None
        means = data.get("mean_durations") or [1.0] * (len(SPECIAL) + len(self.gloss_ids))
        self.register_buffer("mean_durations", torch.tensor(means, dtype=torch.float32))
        ipa = self._ipa_pattern()
        self.register_buffer("ipa_pattern", ipa if ipa is not None else torch.zeros(0, 0, dtype=torch.bool))

    # --- building from data ------------------------------------------------------------------
    @classmethod
    def from_data(cls, config: GLOSConfig, samples: list, **inputs) -> "GLOS":
        cls.check_inputs(inputs)
        path = inputs.get("tokenizer")
        tok = load_discrete_tokenizer(path, "glos")
        no_gloss = [s.id for s in samples if not s.glosses]
        if no_gloss:
            raise SlpError(f"training sample '{no_gloss[0]}' has no glosses ({len(no_gloss)} such); GLOS is conditioned "
                           "on glosses: train it on a corpus with a gloss sequence per sentence")
        vocab = sorted({(s.lang, g) for s in samples for g in s.glosses})
        ids = {g: i + len(SPECIAL) for i, g in enumerate(vocab)}
        durs = alignment_durations(samples, ids, config.durations)
        total = np.zeros(len(SPECIAL) + len(vocab))
        count = np.zeros_like(total)
        for s, dur in zip(samples, durs):
            seq = [START, *(ids[s.lang, g] for g in s.glosses), END]
            np.add.at(total, seq, dur)
            np.add.at(count, seq, 1)
        glob = total[len(SPECIAL):].sum() / max(count[len(SPECIAL):].sum(), 1)
        means = np.where(count > 0, total / np.maximum(count, 1), glob)
        data = {"tokenizer": str(path), "tokenizer_model": tok.name, "tokenizer_config": config_dict(tok.config),
                "tokenizer_data": tok.data, "streams": list(tok.array_names),
                "codebooks": {k: int(v) for k, v in tok.codebooks.items()},
                "downsample": int(getattr(tok, "downsample", tok.min_frames)), "glosses": [list(k) for k in vocab],
                "mean_durations": means.tolist(), "max_frames": 2 * max(s.num_frames for s in samples),
                "langs": sorted({s.lang for s in samples})}
        model = cls(config, data)
        model.tokenizer.load_state_dict(tok.state_dict())
        return model

    def train(self, mode: bool = True):
        super().train(mode)
        self.tokenizer.eval()  # frozen
        return self

    def _ipa_pattern(self) -> torch.Tensor | None:
        """(P, P) bool: stream i attends stream j (body <-> every other stream), None without IPA."""
        names = [s.removeprefix("tokens_") for s in self.streams]
        if not self.config.ipa or BODY not in names or len(names) < 2:
            return None
        b = names.index(BODY)
        pat = torch.zeros(len(names), len(names), dtype=torch.bool)
        pat[b, :] = True
        pat[:, b] = True
        pat[b, b] = False
        return pat

    # --- data ----------------------------------------------------------------------------------
    @property
    def downsample(self) -> int:
        return int(self.data["downsample"])

    @property
    def max_frames(self) -> int:
        return int(self.data["max_frames"])

    def gloss_sequence(self, glosses: list[str], lang: str) -> np.ndarray:
        """Gloss ids framed by <start> and <end>; a gloss not seen in training is <pad> (no condition)."""
        return np.array([START, *(self.gloss_ids.get((lang, g), PAD) for g in glosses), END], dtype=np.int64)

    @torch.no_grad()
    def make_dataset(self, samples):
        """Items: token ids per stream (the frozen tokenizer's), the gloss id under each token
        step, the gloss sequence and its durations (frames)."""
        down = self.downsample
        short = [s.id for s in samples if s.num_frames < down]
        if short:
            raise SlpError(f"sample '{short[0]}' has fewer frames than the tokenizer's downsampling factor {down}; "
                           "drop samples this short")
        no_gloss = [s.id for s in samples if not s.glosses]
        if no_gloss:
            raise SlpError(f"sample '{no_gloss[0]}' has no glosses; GLOS needs a gloss sequence per sentence")
        durs = alignment_durations(samples, self.gloss_ids, self.config.durations, self.mean_durations.cpu().numpy())
        items = []
        device = next(self.tokenizer.parameters()).device
        for s, dur in zip(samples, durs):
            seq = self.gloss_sequence(s.glosses, s.lang)  # (a dev gloss unseen in training: <pad>)
            arrays = self.tokenizer.encode(torch.as_tensor(np.asarray(s.pose, dtype=np.float32), device=device))
            tokens = np.stack([arrays[n].long().cpu().numpy() for n in self.streams], -1)  # (L, P)
            cond = step_condition(frame_condition(seq, dur), down, len(tokens))
            items.append({"tokens": tokens, "cond": cond, "gloss_seq": seq, "durations": dur.astype(np.float32)})
        return SequenceDataset(items, np.array([len(i["tokens"]) for i in items]))

    def collate(self, items):
        tokens, valid = pad([i["tokens"] for i in items], dtype=torch.long)
        cond, _ = pad([i["cond"] for i in items], dtype=torch.long)
        seq, seq_valid = pad([i["gloss_seq"] for i in items], dtype=torch.long)
        dur, _ = pad([i["durations"] for i in items], value=1.0)
        return {"tokens": tokens, "valid": valid, "cond": cond, "gloss_seq": seq, "gloss_valid": seq_valid,
                "durations": dur, "batch_size": len(items), "num_frames": int(valid.sum()) * self.downsample}

    # --- the denoiser --------------------------------------------------------------------------
    def denoise(self, tokens: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, valid: torch.Tensor,
                gloss_seq: torch.Tensor, gloss_valid: torch.Tensor) -> list[torch.Tensor]:
        """x0 logits per stream (B, L, K_p) from noisy tokens (B, L, P) (mask id = K_p), step t (B,)
        in [1, T], the gloss id under each step (B, L) and the gloss sequence (B, G)."""
        b, l, p = tokens.shape
        d = self.config.d_model
        pos = sinusoidal(torch.arange(l, device=tokens.device), d)
        x = torch.stack([self.token_embed[i](tokens[..., i]) for i in range(p)], 1)  # (B, P, L, d)
        x = x + self.stream_embed[None, :, None] + pos[None, None]
        step = self.step_mlp(sinusoidal(t.float() * (1000.0 / self.config.diffusion_steps), d))
        s = self.gloss_proj(self.gloss_embed(cond))  # (B, L, d): S, aligned with the steps
        memory = self.gloss_proj(self.gloss_embed(gloss_seq)) + sinusoidal(
            torch.arange(gloss_seq.shape[1], device=tokens.device), d)
        eye = torch.eye(l, dtype=torch.bool, device=tokens.device)
        self_mask = (valid[:, None, :] | eye).repeat_interleave(p, 0)[:, None]  # (B*P, 1, L, L)
        ipa_mask = None
        if self.ipa_pattern.numel():
            key_ok = valid.repeat(1, p)  # (B, P*L), stream-major like the flattened x
            pat = self.ipa_pattern.repeat_interleave(l, 0).repeat_interleave(l, 1)  # (P*L, P*L)
            ipa_mask = (pat[None] & key_ok[:, None, :])
            ipa_mask = (ipa_mask | ~ipa_mask.any(-1, keepdim=True))[:, None]  # padded rows: all (no NaN)
        memory_mask = gloss_valid[:, None, None, :]
        for block in self.blocks:
            x = block(x, step, s, valid, self_mask, ipa_mask, memory, memory_mask)
        h = self.out_norm(x)
        return [self.heads[i](h[:, i]).float() for i in range(p)]

    def mask_tokens(self, tokens: torch.Tensor, t: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward process q(x_t | x_0) of the absorbing schedule: each token masked with
        probability t / T. Returns (noisy tokens, masked positions (B, L, P))."""
        prob = (t.float() / self.config.diffusion_steps)[:, None, None]
        r = torch.rand(tokens.shape, device=tokens.device, generator=generator)
        masked = r < prob
        mask_ids = torch.tensor(self.sizes, device=tokens.device)
        return torch.where(masked, mask_ids, tokens), masked

    # --- loss ----------------------------------------------------------------------------------
    def _losses(self, batch, generator=None) -> dict[str, torch.Tensor]:
        tokens, valid = batch["tokens"], batch["valid"]
        b = tokens.shape[0]
        t = torch.randint(1, self.config.diffusion_steps + 1, (b,), device=tokens.device, generator=generator)
        noisy, masked = self.mask_tokens(tokens, t, generator)
        logits = self.denoise(noisy, t, batch["cond"], valid, batch["gloss_seq"], batch["gloss_valid"])
        out, total, n_total = {}, 0.0, 0.0
        for i, name in enumerate(self.streams):
            m = masked[..., i] & valid
            ce = F.cross_entropy(logits[i].transpose(1, 2), tokens[..., i], reduction="none")
            n = m.sum()
            total = total + (ce * m).sum()
            n_total = n_total + n
            out[f"ce_{name.removeprefix('tokens_')}"] = ((ce * m).sum() / n.clamp(min=1)).detach()
        loss = total / n_total.clamp(min=1)
        out["token_ce"] = loss.detach()
        with torch.no_grad():
            acc = sum(((lg.argmax(-1) == tokens[..., i]) & masked[..., i] & valid).sum() for i, lg in enumerate(logits))
            out["masked_accuracy"] = acc.float() / n_total.clamp(min=1)
        if self.config.duration_model == "mlp":
            seq, sv = batch["gloss_seq"], batch["gloss_valid"]
            pred = self.duration_mlp(self.gloss_embed(seq)).squeeze(-1).float()
            err = (pred - torch.log(batch["durations"].clamp(min=1.0))).abs() * sv
            dl = err.sum() / sv.sum().clamp(min=1)
            out["duration_l1"] = dl.detach()
            loss = loss + self.config.duration_weight * dl
        out["loss"] = loss
        return out

    def training_step(self, batch):
        return self._losses(batch)

    def validation_step(self, batch):
        # the same masks and steps at every evaluation: dev losses comparable across evaluations
        g = torch.Generator(device=batch["tokens"].device).manual_seed(0)
        return self._losses(batch, g)

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.config.lr, weight_decay=self.config.weight_decay), None

    # --- durations at inference ----------------------------------------------------------------
    @torch.no_grad()
    def predict_durations(self, seq: np.ndarray, jitter: float = 0.0, generator=None) -> np.ndarray:
        """Frames per id of a gloss sequence (with <start>/<end>): training means or the MLP, each
        times a uniform factor in [1 - jitter, 1 + jitter]; at least 1 frame per gloss."""
        ids = torch.as_tensor(seq, device=self.mean_durations.device)
        if self.config.duration_model == "mlp":
            dur = self.duration_mlp(self.gloss_embed(ids)).squeeze(-1).float().exp()
        else:
            dur = self.mean_durations[ids]
        if jitter:
            r = torch.rand(len(seq), generator=generator, device=generator.device if generator is not None else None)
            dur = dur * (1 + jitter * (2 * r.to(dur.device) - 1))
        return dur.round().clamp(min=1).long().cpu().numpy()

    # --- generation ----------------------------------------------------------------------------
    def prepare(self, text: str, lang: str) -> dict:
        if lang not in self.langs:
            raise SlpError(f"this glos model was trained on {', '.join(self.langs)}, not {lang!r}: give --lang one of those")
        return {"text": text, "lang": lang}

    def _glosser(self, path) -> TextToGloss:
        key = str(path)
        cache = self.__dict__.setdefault("_glossers", {})
        if key not in cache:
            cache[key] = load_model(path, expect=TextToGloss)
        return cache[key]

    def _corpus_glosses(self, path) -> dict:
        key = str(path)
        cache = self.__dict__.setdefault("_corpora", {})
        if key not in cache:
            from ..artifacts import load

            cache[key] = {(s.text.strip(), s.lang): list(s.glosses) for s in load(path) if s.glosses}
        return cache[key]

    def resolve_glosses(self, prepared: list[dict], options: GLOSOptions) -> list[tuple[list[str], list[str], str] | SlpError]:
        """(glosses, unknown glosses dropped, where they came from) per sentence, or its SlpError."""
        given = [o for o in ("glosser", "glosses", "glosses_from") if getattr(options, o) is not None]
        if len(given) > 1:
            raise SlpError("give one of --glosser, --glosses and --glosses-from")
        if not given:
            raise SlpError("glos signs glosses: give --glosser T2G_DIR (a text-to-gloss model from `slp train "
                           "text2gloss`) or --glosses \"GLOSS GLOSS ...\" (the glosses to sign; --glosses-from "
                           "CORPUS.h5 takes a corpus' own)")
        out: list = []
        if options.glosses is not None:
            gl = options.glosses.split()
            for p in prepared:
                bad = [g for g in gl if (p["lang"], g) not in self.gloss_ids]
                if not gl:
                    out.append(SlpError("--glosses is empty: give the glosses to sign, e.g. --glosses \"MORGEN REGEN\""))
                elif bad:
                    mine = [g for lang, g in self.gloss_ids if lang == p["lang"]]
                    out.append(SlpError(f"unknown {p['lang']} gloss(es) {', '.join(bad)}: this model knows {len(mine)} "
                                        f"{p['lang']} glosses from its training data (e.g. {', '.join(mine[:5])})"))
                else:
                    out.append((gl, [], "given"))
            return out
        if options.glosses_from is not None:
            table = self._corpus_glosses(options.glosses_from)
            found = [table.get((p["text"].strip(), p["lang"])) for p in prepared]
            source = f"corpus {options.glosses_from}"
        else:
            glosser = self._glosser(options.glosser)
            for lang in sorted({p["lang"] for p in prepared}):
                glosser.check_lang(lang)
            found = glosser.glosses([p["text"] for p in prepared], [p["lang"] for p in prepared],
                                    beam=options.glosser_beam)
            source = f"glosser {options.glosser}"
        for p, gl in zip(prepared, found):
            if gl is None:
                out.append(SlpError(f"'{p['text']}' ({p['lang']}) is not a sentence of {options.glosses_from}: "
                                    "--glosses-from takes the glosses of the corpus' own sentences"))
                continue
            known = [g for g in gl if (p["lang"], g) in self.gloss_ids]
            unknown = [g for g in gl if (p["lang"], g) not in self.gloss_ids]
            if not known:
                why = f"gave unknown glosses {', '.join(unknown)}" if unknown else "gave no glosses"
                out.append(SlpError(f"'{p['text']}': the {source.split()[0]} {why}; nothing to sign"))
            else:
                out.append((known, unknown, source))
        return out

    @torch.no_grad()
    def sign_batch(self, prepared: list[dict], options: GLOSOptions, generator: torch.Generator | None) -> list:
        """Glosses -> durations -> token streams (the reverse diffusion, all sentences in one batch)
        -> poses. A sentence that cannot be signed gets its SlpError."""
        resolved = self.resolve_glosses(prepared, options)
        ok = [i for i, r in enumerate(resolved) if not isinstance(r, SlpError)]
        out: list = list(resolved)
        if not ok:
            return out
        device = self.mean_durations.device
        down = self.downsample
        jobs = []
        for i in ok:
            glosses, unknown, source = resolved[i]
            seq = self.gloss_sequence(glosses, prepared[i]["lang"])
            dur = self.predict_durations(seq, options.duration_jitter, generator)
            frames = int(dur.sum())
            if frames > self.max_frames:
                out[i] = SlpError(f"{len(glosses)} glosses last {frames} frames, more than this model generates "
                                  f"({self.max_frames}); sign a shorter sentence")
                continue
            steps = -(-frames // down)
            cond = step_condition(frame_condition(seq, dur), down, steps)
            jobs.append((i, glosses, unknown, source, seq, dur, frames, cond))
        if not jobs:
            return out
        cond, valid = pad([j[7] for j in jobs], dtype=torch.long)
        seq, seq_valid = pad([j[4] for j in jobs], dtype=torch.long)
        tokens = self.sample_tokens(cond.to(device), valid.to(device), seq.to(device), seq_valid.to(device),
                                    options, generator)
        arrays = {n: tokens[..., k] for k, n in enumerate(self.streams)}
        poses = self.tokenizer.decode(arrays).float().cpu().numpy()
        for row, (i, glosses, unknown, source, _, dur, frames, _) in enumerate(jobs):
            ends = np.cumsum(dur)
            spans = np.stack([ends[:-2], ends[1:-1]], -1)  # the real glosses, between <start> and <end>
            out[i] = Signed(pose=poses[row, :frames], glosses=list(glosses), gloss_spans=spans, unknown=list(unknown),
                            report={"glosses_from": source, "durations": dur[1:-1].tolist(),
                                    "rest_frames": [int(dur[0]), int(dur[-1])], "sampling_steps":
                                    options.steps or self.config.diffusion_steps, "sampler": options.sampler,
                                    "duration_jitter": options.duration_jitter})
        return out

    @torch.no_grad()
    def sample_tokens(self, cond, valid, seq, seq_valid, options: GLOSOptions, generator=None) -> torch.Tensor:
        """Reverse process from all masked to all unmasked in K steps: (B, L, P) token ids."""
        T = self.config.diffusion_steps
        k_steps = options.steps or T
        b, l = cond.shape
        p = len(self.streams)
        mask_ids = torch.tensor(self.sizes, device=cond.device)
        x = mask_ids.expand(b, l, p).clone()
        masked = torch.ones(b, l, p, dtype=torch.bool, device=cond.device)
        total = valid.sum(1)[:, None, None] * p  # real tokens per sentence
        for k in range(k_steps, 0, -1):
            t = torch.full((b,), max(1, round(k * T / k_steps)), device=cond.device)
            logits = self.denoise(x, t, cond, valid, seq, seq_valid)
            draws, conf = [], []
            for i, lg in enumerate(logits):
                if options.temperature == 0:
                    ids = lg.argmax(-1)
                else:
                    probs = torch.softmax(lg / options.temperature, -1)
                    ids = torch.multinomial(probs.view(-1, probs.shape[-1]), 1, generator=generator).view(b, l)
                draws.append(ids)
                conf.append(torch.softmax(lg, -1).gather(-1, ids[..., None]).squeeze(-1))
            draws, conf = torch.stack(draws, -1), torch.stack(conf, -1)
            if options.sampler == "random":
                r = torch.rand(masked.shape, device=cond.device, generator=generator)
                reveal = masked & (r < 1.0 / k)
            else:  # keep the (k - 1) / K share of the least confident masked
                keep = torch.floor(total.float() * (k - 1) / k_steps).long()
                score = torch.where(masked & valid[..., None], conf, torch.full_like(conf, 2.0))
                order = score.view(b, -1).argsort(-1)  # least confident masked first
                rank = torch.empty_like(order).scatter_(-1, order, torch.arange(l * p, device=cond.device).expand(b, -1))
                reveal = masked & ~(rank.view(b, l, p) < keep.view(b, 1, 1))
            x = torch.where(reveal, draws, x)
            masked = masked & ~reveal
        return x


def alignment_durations(samples, ids: dict, mode: str, means: np.ndarray | None = None) -> list[np.ndarray]:
    """Training durations of [<start>, glosses, <end>] per sample (sum = its frames): from gloss
    spans (``mode="spans"``, where they fit) or scaled; ``ids``: (lang, gloss) -> id. Scaled: the given ``means`` (a model's
    training means) rescaled to the length; without means, two rounds of (equal shares -> per-id
    means -> rescaled means)."""
    out: list[np.ndarray | None] = []
    for s in samples:
        d = span_durations(s.gloss_spans, len(s.glosses), s.num_frames) if mode == "spans" else None
        out.append(d)
    todo = [i for i, d in enumerate(out) if d is None]
    if not todo:
        return out
    def seq(s):
        return [START, *(ids.get((s.lang, g), PAD) for g in s.glosses), END]

    if means is None:
        n = len(SPECIAL) + len(ids)
        cur = {i: integer_shares(np.ones(len(samples[i].glosses) + 2), samples[i].num_frames) for i in todo}
        for _ in range(2):
            total, count = np.zeros(n), np.zeros(n)
            for i, d in enumerate(out):
                dd = d if d is not None else cur[i]
                np.add.at(total, seq(samples[i]), dd)
                np.add.at(count, seq(samples[i]), 1)
            means = np.where(count > 0, total / np.maximum(count, 1), 1.0)
            cur = {i: integer_shares(means[seq(samples[i])], samples[i].num_frames) for i in todo}
    else:
        cur = {i: integer_shares(np.asarray(means)[seq(samples[i])], samples[i].num_frames) for i in todo}
    for i in todo:
        out[i] = cur[i]
    return out
