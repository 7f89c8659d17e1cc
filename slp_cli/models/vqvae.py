"""SOKE's decoupled VQ-VAE tokenizer (DETO; SOKE, section 3.2, appendices C and D, tables 3-4 and
S6): pose sequences to discrete motion tokens, one token stream per body part at a quarter of the
frame rate (arrays ``tokens_<stream>``).

* Input (``input``): ``smplx`` is the paper's: the 133 SMPL-X values per frame that `slp
  fit-smplx` writes as the ``smplx`` array (SOKE, section 3.1: 10 upper-body joints and the jaw,
  2 x 15 hand joints, axis-angle, and 10 expression coefficients), standardized per value with the
  training set's mean and std, as the authors' code does. ``keypoints`` (the default, because the
  rest of slp -- generators, scores, rendering -- works on mp178 points and SMPL-X model files
  cannot be shipped) tokenizes the (T, 178, 3) mp178 coordinates instead: a DEVIATION from the
  paper, not a choice it leaves open. A keypoint tokenizer encodes and decodes poses; an SMPL-X
  tokenizer encodes and decodes (T, 133) parameters.
* Parts (``parts``, also written as a list of streams): ``body,lhand,rhand`` (``decoupled``, SOKE:
  upper body, left hand, right hand: three VQ-VAEs), ``body,lhand,rhand,face`` (``decoupled_face``:
  a fourth VQ-VAE for the face, with its own codebook of 96 codes, for GLOS's four-part token
  stream), ``body,hands`` (``body_hands``) and ``whole_body``, the ablations of table 4. SOKE has no
  face part: its upper-body part carries SMPL-X's jaw pose and expression coefficients, so in the
  three-part layouts the face (128 points; jaw and expression for SMPL-X input) is tokenized by the
  body VQ-VAE, and every part decodes to real values (no NaN face). Decoding merges the streams back
  into the input layout (mp178 or the 133 values).
* Each VQ-VAE is T2M-GPT's as SOKE's code builds it (configs/vq/*.yaml, mGPT/archs/mgpt_vq.py): a
  1D-CNN encoder (conv, then ``down_t`` = 2 blocks of a stride-2 conv and a dilated residual stack
  of ``depth`` 3), a codebook, and the mirror decoder (nearest upsampling). The residual stacks run
  their dilations 9, 3, 1 in the encoder as well as the decoder (``encoder_dilations="descending"``:
  the code's Resnet1D reverses by default and the encoder does not override it; T2M-GPT's paper
  describes 1, 3, 9, kept as ``ascending``). Temporal downsampling 2**down_t = 4; codebooks 96 /
  192 / 192 codes of dimension 512 (table S6's best); width 512.
* Quantization (eq. 1): nearest codebook entry in L2, straight-through gradients, always computed
  in fp32 whatever the autocast state (bf16 distances pick wrong codes). Loss per part L_rec + L_emb
  + L_com with L_rec the squared error (section 3.2; ``recon="smooth_l1"`` is the authors' code,
  LOSS.ABLATION.RECONS_LOSS ``l1_smooth``). ``quantizer="ema"`` (default, as the code's
  ``ema_reset``): the codebook follows exponential moving averages of the encoder outputs assigned
  to each code (decay 0.99; van den Oord et al.'s EMA form of the embedding loss) and the
  commitment loss is weighted 0.02; ``quantizer="loss"``: a learned codebook with the explicit
  embedding loss ||sg[z] - e||^2 plus the weighted commitment loss. Both initialise the codebook
  from the first batch's encoder outputs and reset dead codes: a code whose moving-average use
  falls below ``reset_uses`` = 1 use per batch (absolute, the code's ``code_count >= 1.0``) is moved
  onto a random encoder output of the batch, with its statistics restarted at that one use (the
  authors' code moves dead code i onto the batch's i-th output, re-draws it every step until its
  count passes 1 and keeps its stale sum; ``reset_fraction`` is slp's earlier rule, a fraction of
  uniform use, T2M-GPT's threshold of one use at its batch size being 1/8 of uniform). Under DDP the code statistics are summed over
  processes, so the codebook follows the global batch as one process would.
* Reconstruction loss per stream: the error averaged per articulator, then a weighted mean of the
  articulators of the stream (scaled by their number). SOKE's loss is one mean over its 133 values,
  so the face (jaw + 10 expression coefficients, 13 values) weighs 13/43 ~ 0.3 of the body stream
  beside 30 upper-body values: ``face_weight`` = 13/30 relative to the body gives the face the same
  share here, whatever the number of face points.
* Training data: ``batching="windows"`` (default, T2M-GPT's 64-frame windows) cuts sequences into
  windows of ``window`` frames, deterministically with a half-window stride (every frame in about
  two windows, an exact resume); a sequence shorter than a window is one item, cut to a multiple of
  4 frames. ``batching="sequences"`` is the authors' data loader (H2SMotionDatasetVQ): every
  sequence whole, resampled (np.linspace) up to ``seq_min`` = 40 or down to ``seq_max`` = 400
  frames, else centre-cut to a multiple of 4. A sequence shorter than 4 frames is an error.
* Optimisation (SOKE, section 4.1; the code's configs/deto.yaml where the paper is silent): AdamW,
  betas (0.9, 0.99), no weight decay, no gradient clipping, cosine from lr 2e-4 to 1e-6, no early
  stopping; the kept weights are those with the lowest dev hand reconstruction error
  (``hand_error``: PA-MPJPE of the two hands, each aligned per frame, for keypoint input -- the
  code's checkpoint monitor ``MPJPE_PA_hand``; the mean axis-angle error of the 30 hand joints for
  SMPL-X input, which needs no body model).

Choices the paper leaves open, stated: keypoint coordinates keep the hands in the same neck-centred
frame as the body (expressing each hand relative to its body wrist, as SMPL-X's hand parameters
are, doubled the hand error on the synthetic corpus, because the wrist's error then adds to every
finger's), standardized with the training set's mean and one std per articulator (T2M-GPT's feature
normalization; per coordinate would blow the shoulders' near-constant normalized coordinates up to
unit noise); missing values (NaN) are fed as the mean and left out of the loss (the code multiplies
padding by 0 and averages over it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import skeleton
from ..data.loader import SequenceDataset
from ..errors import SlpError
from ..tensors import pad
from . import PoseTokenizer, TrainingConfig, option, register

# Token streams per configuration, each a list of articulators (docs/design.md, section 4).
GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "decoupled": {"body": ("body", "face"), "left_hand": ("left_hand",), "right_hand": ("right_hand",)},
    "decoupled_face": {"body": ("body",), "left_hand": ("left_hand",), "right_hand": ("right_hand",),
                       "face": ("face",)},
    "body_hands": {"body": ("body", "face"), "hands": ("left_hand", "right_hand")},
    "whole_body": {"whole_body": ("body", "left_hand", "right_hand", "face")},
}
# --parts may name the streams: body,lhand,rhand[,face], body,hands, whole_body
STREAM_ALIASES = {"lhand": "left_hand", "rhand": "right_hand", "left": "left_hand", "right": "right_hand",
                  "whole": "whole_body", "wholebody": "whole_body"}
# Codes per token stream: SOKE's 96 / 192 / 192 (table S6); the face stream (not in SOKE) gets the
# body's 96 (GLOS gives no size); the ablations' merged streams get the sum of their parts' hand
# codes and T2M-GPT's 512 for the whole body.
CODEBOOK_SIZE = {"body": 96, "left_hand": 192, "right_hand": 192, "face": 96, "hands": 384, "whole_body": 512}
INPUTS = ("keypoints", "smplx")
SMPLX_DIM = 133
# The 133 SMPL-X values by articulator (slp_cli/extract/smplx_fit.py SMPLX133; SOKE section 3.1);
# the face is the jaw pose and the expression.
SMPLX_ARTICULATORS = {"body": slice(0, 30), "left_hand": slice(30, 75), "right_hand": slice(75, 120),
                      "face": slice(120, 133)}
# SOKE's loss is one mean over the 133 values: the face's 13 weigh 13/30 of the body's 30.
FACE_WEIGHT = 13 / 30

TOKEN_PREFIX = "tokens_"  # the artifact arrays are tokens_<stream>


def parse_parts(value: str) -> str:
    """A configuration name (``decoupled``...) or a comma-separated list of streams -> its name."""
    value = str(value).strip()
    if value in GROUPS:
        return value
    streams = [STREAM_ALIASES.get(p.strip().lower(), p.strip().lower()) for p in value.split(",") if p.strip()]
    for name, groups in GROUPS.items():
        if streams == list(groups):
            return name
    lists = ", ".join(",".join(g) for g in GROUPS.values())
    raise ValueError(f"parts must be one of {list(GROUPS)} or a list of streams ({lists}; lhand/rhand for "
                     f"left_hand/right_hand), not {value!r}")


@dataclass
class VQVAEConfig(TrainingConfig):
    parts: str = option("decoupled", "Token streams: 'body,lhand,rhand' (= decoupled, SOKE: body with face, left "
                        "hand, right hand), 'body,lhand,rhand,face' (= decoupled_face: a face stream of its own, "
                        "GLOS), 'body,hands' or 'whole_body' (the ablations of SOKE table 4).")
    input: str = option("keypoints", "'keypoints' (mp178 coordinates: a deviation from SOKE) or 'smplx' (the 133 "
                        "SMPL-X values of `slp fit-smplx`, the paper's input).")
    codebook_size: dict = option(help="Codes per token stream, or a comma-separated list in stream order (default "
                                 "96,192,192, SOKE table S6; face 96; 96,384 for body_hands; 512 for whole_body).",
                                 flag="codes", factory=lambda: dict(CODEBOOK_SIZE))
    code_dim: int = option(512, "Code dimension (SOKE: 512).")
    width: int = option(512, "Channels of the 1D-CNN encoder and decoder (T2M-GPT: 512).")
    depth: int = option(3, "Dilated residual blocks per resolution (T2M-GPT: 3).")
    dilation_growth: int = option(3, "Dilation growth of the residual blocks: 1, 3, 9 (T2M-GPT).")
    # every preset sets 'descending'; the field's own default keeps a checkpoint written before it
    # existed (its config has no such field) decoding as it was trained
    encoder_dilations: str = option("ascending", "Order of the encoder's dilations: 'descending' 9, 3, 1 (SOKE's "
                                    "and T2M-GPT's code; every preset) or 'ascending' 1, 3, 9 (T2M-GPT's paper).")
    down_t: int = option(2, "Stride-2 downsamplings: tokens at 1 / 2**down_t of the frame rate.")
    batching: str = option("windows", "'windows' (fixed windows, T2M-GPT) or 'sequences' (whole sequences "
                           "resampled into [seq_min, seq_max] frames, SOKE's code).")
    window: int = option(64, "Training window in frames, a multiple of 2**down_t (T2M-GPT/SOKE: 64).")
    seq_min: int = option(40, "batching=sequences: shorter sequences are resampled up to this many frames (SOKE: 40).")
    seq_max: int = option(400, "batching=sequences: longer sequences are resampled down to this many frames "
                          "(SOKE: 400).")
    recon: str = option("l2", "Reconstruction loss: 'l2' (SOKE, section 3.2) or 'smooth_l1' (the authors' code).")
    face_weight: float = option(FACE_WEIGHT, "Weight of the face's error beside the body's in a shared stream "
                                "(13/30: the face's share of SOKE's loss over the 133 values).")
    quantizer: str = option("ema", "'ema' (codebook by moving averages, as T2M-GPT and MotionGPT) or 'loss' "
                            "(learned codebook with the embedding loss).")
    ema_decay: float = option(0.99, "Decay of the codebook's moving averages.")
    commit: float = option(0.02, "Commitment loss weight (T2M-GPT: 0.02).")
    reset_uses: float = option(1.0, "Reset a code whose moving-average use per batch falls below this many uses "
                               "(SOKE/T2M-GPT code: 1).")
    reset_fraction: float = option(0.0, "Also reset a code whose use falls below this fraction of uniform use "
                                   "(slp's earlier rule: 0.125; 0: off).")
    adam_betas: tuple = option((0.9, 0.99), "AdamW's betas (SOKE's code: 0.9, 0.99).")
    weight_decay: float = option(0.0, "AdamW weight decay (SOKE's code: 0).")
    min_lr: float = option(1e-6, "Learning rate at the end of the cosine schedule (SOKE's code: 1e-6).")

    def __post_init__(self):
        self.parts = parse_parts(self.parts)
        if self.input not in INPUTS:
            raise ValueError(f"input must be one of {', '.join(INPUTS)}, not {self.input!r}")
        if isinstance(self.codebook_size, (list, tuple)):  # sizes in stream order, e.g. --codes 96,192,192
            streams = list(GROUPS[self.parts])
            if len(self.codebook_size) != len(streams):
                raise ValueError(f"codebook_size needs {len(streams)} size(s) for the streams {', '.join(streams)}; "
                                 f"got {list(self.codebook_size)}")
            self.codebook_size = {**CODEBOOK_SIZE, **dict(zip(streams, (int(x) for x in self.codebook_size)))}
        self.codebook_size = {**{k: v for k, v in CODEBOOK_SIZE.items() if k not in self.codebook_size},
                              **self.codebook_size}  # a checkpoint from before the face stream lacks 'face'
        if any(int(self.codebook_size[g]) < 2 for g in GROUPS[self.parts]):
            raise ValueError("every codebook needs at least 2 codes")
        for name in ("code_dim", "width", "depth", "dilation_growth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.down_t < 0:
            raise ValueError("down_t must be >= 0")
        if self.encoder_dilations not in ("descending", "ascending"):
            raise ValueError(f"encoder_dilations must be 'descending' or 'ascending', not {self.encoder_dilations!r}")
        if self.window < self.downsample or self.window % self.downsample:
            raise ValueError(f"window ({self.window}) must be a positive multiple of the temporal "
                             f"downsampling factor {self.downsample}")
        if self.batching not in ("windows", "sequences"):
            raise ValueError(f"batching must be 'windows' or 'sequences', not {self.batching!r}")
        if not self.downsample <= self.seq_min <= self.seq_max:
            raise ValueError(f"need {self.downsample} <= seq_min <= seq_max (got {self.seq_min}, {self.seq_max})")
        if self.recon not in ("l2", "smooth_l1"):
            raise ValueError(f"recon must be 'l2' or 'smooth_l1', not {self.recon!r}")
        if self.quantizer not in ("ema", "loss"):
            raise ValueError(f"quantizer must be 'ema' or 'loss', not {self.quantizer!r}")
        if not 0 < self.ema_decay < 1:
            raise ValueError("ema_decay must be in (0, 1)")
        if min(self.commit, self.reset_uses, self.reset_fraction, self.weight_decay, self.min_lr) < 0:
            raise ValueError("commit, reset_uses, reset_fraction, weight_decay and min_lr must be >= 0")
        if self.face_weight <= 0:
            raise ValueError("face_weight must be > 0")
        self.adam_betas = tuple(float(b) for b in self.adam_betas)
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            raise ValueError(f"adam_betas must be two values in [0, 1), not {self.adam_betas}")

    @property
    def downsample(self) -> int:
        return 2 ** self.down_t

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        return GROUPS[self.parts]


# --- networks (T2M-GPT's encoder / decoder) -------------------------------------------------

class ResConv1D(nn.Module):
    """Dilated residual stack: (ReLU, conv k3 dilation d, ReLU, conv k1) + skip, d = growth**i."""

    def __init__(self, width: int, depth: int, growth: int, reverse: bool = False):
        super().__init__()
        dilations = [growth ** i for i in range(depth)]
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReLU(), nn.Conv1d(width, width, 3, 1, d, dilation=d), nn.ReLU(), nn.Conv1d(width, width, 1))
            for d in (dilations[::-1] if reverse else dilations))

    def forward(self, x):
        for block in self.blocks:
            x = x + block(x)
        return x


def encoder(in_dim: int, c: VQVAEConfig) -> nn.Sequential:
    """(B, in_dim, T) -> (B, code_dim, T / 2**down_t)."""
    layers = [nn.Conv1d(in_dim, c.width, 3, 1, 1), nn.ReLU()]
    for _ in range(c.down_t):
        layers += [nn.Conv1d(c.width, c.width, 4, 2, 1),
                   ResConv1D(c.width, c.depth, c.dilation_growth, reverse=c.encoder_dilations == "descending")]
    return nn.Sequential(*layers, nn.Conv1d(c.width, c.code_dim, 3, 1, 1))


def decoder(out_dim: int, c: VQVAEConfig) -> nn.Sequential:
    """(B, code_dim, T') -> (B, out_dim, T' * 2**down_t)."""
    layers = [nn.Conv1d(c.code_dim, c.width, 3, 1, 1), nn.ReLU()]
    for _ in range(c.down_t):
        layers += [ResConv1D(c.width, c.depth, c.dilation_growth, reverse=True),
                   nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv1d(c.width, c.width, 3, 1, 1)]
    return nn.Sequential(*layers, nn.Conv1d(c.width, c.width, 3, 1, 1), nn.ReLU(),
                         nn.Conv1d(c.width, out_dim, 3, 1, 1))


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized() \
        and torch.distributed.get_world_size() > 1


class Quantizer(nn.Module):
    """Nearest-neighbour vector quantizer with straight-through gradients (SOKE eq. 1).

    ``quantize(z) -> ids`` and ``dequantize(ids) -> codes`` are the tokenizer's two halves, both in
    fp32 under any autocast; ``forward(z)`` returns ``(z + sg[codes - z], ids, loss)`` and, in
    training mode, updates the codebook (EMA mode), its use statistics, and resets dead codes.
    """

    def __init__(self, size: int, dim: int, config: VQVAEConfig):
        super().__init__()
        self.size, self.dim = size, dim
        self.ema = config.quantizer == "ema"
        self.decay, self.commit = config.ema_decay, config.commit
        self.reset_uses, self.reset_fraction = config.reset_uses, config.reset_fraction
        if self.ema:
            self.register_buffer("codebook", torch.zeros(size, dim))
            self.register_buffer("code_sum", torch.zeros(size, dim))
        else:
            self.codebook = nn.Parameter(torch.zeros(size, dim))
        self.register_buffer("code_count", torch.zeros(size))  # moving average of uses per batch
        self.register_buffer("initialized", torch.zeros(()))

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """(N, dim) -> (N,) ids of the nearest codes (L2), in fp32 whatever the autocast state: in
        bf16 the distances of near codes tie or swap (28 % of ids changed in a CPU test)."""
        with torch.autocast(z.device.type, enabled=False):
            e = self.codebook.detach().float()
            z = z.detach().float()
            dist = z.pow(2).sum(-1, keepdim=True) - 2 * z @ e.t() + e.pow(2).sum(-1)
            return dist.argmin(-1)

    def dequantize(self, ids: torch.Tensor) -> torch.Tensor:
        """(...,) ids -> (..., dim) fp32 codes."""
        with torch.autocast(ids.device.type, enabled=False):
            return F.embedding(ids, self.codebook.float())

    def _restart(self, n: float) -> float:
        """The use count a fresh (or first) code starts from: the absolute rule's threshold (one use,
        as T2M-GPT's code_count of ones), else uniform use (slp's earlier fraction rule)."""
        return self.reset_uses if self.reset_uses > 0 and not self.reset_fraction else n / self.size

    def forward(self, z: torch.Tensor):
        with torch.autocast(z.device.type, enabled=False):  # distances and losses in full precision under bf16
            z = z.float()
            if self.training and not bool(self.initialized):
                self._initialize(z)
            ids = self.quantize(z)
            codes = self.dequantize(ids)
            if self.training:
                self._update(z.detach(), ids)
            loss = self.commit * F.mse_loss(z, codes.detach())
            if not self.ema:
                loss = loss + F.mse_loss(codes, z.detach())
            return z + (codes - z).detach(), ids, loss

    @torch.no_grad()
    def _initialize(self, z):
        # T2M-GPT: the first batch's encoder outputs, tiled with a little noise if too few
        reps = -(-self.size // len(z))
        init = z.repeat(reps, 1)[: self.size]
        if reps > 1:
            init = init + torch.randn_like(init) * (0.01 / math.sqrt(self.dim))
        self._broadcast(init)
        self.codebook.data.copy_(init)
        self.code_count.fill_(self._restart(self._global_count(len(z), z.device)))
        if self.ema:
            self.code_sum.copy_(init * self.code_count[:, None])
        self.initialized.fill_(1)

    @torch.no_grad()
    def _update(self, z, ids):
        counts = torch.bincount(ids, minlength=self.size).float()
        sums = torch.zeros(self.size, self.dim, device=z.device).index_add_(0, ids, z) if self.ema else None
        if _distributed():
            torch.distributed.all_reduce(counts)
            if sums is not None:
                torch.distributed.all_reduce(sums)
        n = float(counts.sum())
        self.code_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        if self.ema:
            self.code_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            self.codebook.copy_(self.code_sum / self.code_count.clamp(min=1e-6)[:, None])
        dead = (self.code_count < self.reset_uses) | (self.code_count < self.reset_fraction * n / self.size)
        if dead.any():
            k = int(dead.sum())
            fresh = z[torch.randint(len(z), (k,), device=z.device)]
            fresh = self._broadcast(fresh)
            restart = self._restart(n)
            self.codebook.data[dead] = fresh
            self.code_count[dead] = restart
            if self.ema:
                self.code_sum[dead] = fresh * restart

    @staticmethod
    def _broadcast(x):
        if _distributed():  # every process takes rank 0's random choice
            torch.distributed.broadcast(x, 0)
        return x

    @staticmethod
    def _global_count(n: int, device) -> float:
        if not _distributed():
            return float(n)
        t = torch.tensor([float(n)], device=device)
        torch.distributed.all_reduce(t)
        return float(t)


class PartVQVAE(nn.Module):
    """Encoder, quantizer and decoder of one token stream."""

    def __init__(self, dim: int, codes: int, config: VQVAEConfig):
        super().__init__()
        self.encoder = encoder(dim, config)
        self.quantizer = Quantizer(codes, config.code_dim, config)
        self.decoder = decoder(dim, config)

    def forward(self, x):
        """(B, T, dim) -> reconstruction (B, T, dim), ids (B, T'), quantizer loss."""
        z = self.encoder(x.transpose(1, 2)).transpose(1, 2)  # (B, T', C)
        zq, ids, loss = self.quantizer(z.reshape(-1, z.shape[-1]))
        return self.decode_codes(zq.view(z.shape)), ids.view(z.shape[:2]), loss

    def decode_codes(self, codes):
        """(B, T', C) quantized latents -> (B, T' * down, dim)."""
        return self.decoder(codes.transpose(1, 2)).transpose(1, 2)


def procrustes_errors(hyp: torch.Tensor, ref: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame mean joint error after a similarity Procrustes alignment (rotation, uniform scale,
    translation) of ``hyp`` onto ``ref`` over the joints ``present`` (SOKE's ``rigid_align``, as
    `slp eval-tokenizer`'s PA-MPJPE): (N, J, 3), (N, J, 3), (N, J) -> errors (N,) and a mask of the
    frames with at least 3 present joints. fp32."""
    w = present.float()[..., None]
    ref = torch.where(present[..., None], ref, torch.zeros((), dtype=ref.dtype, device=ref.device)).float()
    hyp = hyp.float()
    n = w.sum(1, keepdim=True).clamp(min=1)
    hc = (hyp - (hyp * w).sum(1, keepdim=True) / n) * w
    rc = (ref - (ref * w).sum(1, keepdim=True) / n) * w
    u, s, vt = torch.linalg.svd(hc.transpose(1, 2) @ rc)  # H = hc^T rc = U S V^T; R = V diag(1, 1, d) U^T
    d = torch.sign(torch.linalg.det(vt.transpose(1, 2) @ u.transpose(1, 2)))
    d = torch.where(d == 0, torch.ones_like(d), d)
    z = torch.ones_like(s)
    z[:, 2] = d
    rot = vt.transpose(1, 2) @ torch.diag_embed(z) @ u.transpose(1, 2)
    scale = (s * z).sum(-1) / hc.pow(2).sum((1, 2)).clamp(min=1e-12)
    aligned = scale[:, None, None] * hc @ rot.transpose(1, 2)
    dist = torch.linalg.vector_norm(aligned - rc, dim=-1) * w[..., 0]
    ok = present.sum(1) >= 3
    return dist.sum(1) / n[:, 0, 0], ok


# --- the model ----------------------------------------------------------------------------------

PRESETS = {
    # SOKE (section 4.1): batch 320 per GPU, 500 epochs, AdamW, cosine from 2e-4; no early stopping
    # and no gradient clipping (the code's configs/deto.yaml). The step count depends on the corpus:
    # 100k steps is 500 epochs of ~64k windows at 320 per step.
    "default": dict(batch_size=320, max_steps=100000, eval_every=1000, checkpoint_every=2000, patience=0,
                    grad_clip=0.0, encoder_dilations="descending"),
    # A CPU-sized network for the synthetic corpus and the ablation script (bench/).
    "small": dict(width=128, code_dim=128, depth=2, window=32, batch_size=32, max_steps=3000, eval_every=250,
                  checkpoint_every=500, patience=0, grad_clip=0.0, lr=1e-3, encoder_dilations="descending"),
    # Tests and smoke runs: a narrow network, short windows, SOKE's codebook sizes; a faster EMA
    # (decay 0.9) so that the codebook keeps up with an encoder that changes fast in a short run.
    "tiny": dict(width=48, code_dim=32, depth=2, window=32, batch_size=8, max_steps=300, eval_every=50,
                 checkpoint_every=100, patience=0, grad_clip=0.0, log_every=10, lr=2e-3, ema_decay=0.9,
                 encoder_dilations="descending"),
}


@register("vqvae")
class DecoupledVQVAE(PoseTokenizer):
    """SOKE's decoupled VQ-VAE: discrete motion tokens per body part (upper body with face, left hand, right hand; optionally a face stream) at 1/4 of the frame rate."""

    Config = VQVAEConfig
    presets = PRESETS
    shortcuts = {"whole-body": {"parts": "whole_body"}, "body-hands": {"parts": "body_hands"},
                 "face-stream": {"parts": "decoupled_face"}}
    # SOKE's code keeps the checkpoint with the lowest dev hand PA-MPJPE (mGPT/callback.py)
    selection = ("hand_error", "min")

    def __init__(self, config: VQVAEConfig, data: dict | None = None):
        super().__init__(config, data)
        self.smplx = config.input == "smplx"
        # SMPL-X parameters do not depend on how the poses beside them were normalized (the loop
        # reads the class attribute before it builds a model, so a raw fit artifact needs `slp normalize`)
        self.needs_normalized_poses = not self.smplx
        # the flat feature vector per frame: 178 x 3 coordinates, or the 133 SMPL-X values
        self.dim = SMPLX_DIM if self.smplx else skeleton.NUM_KEYPOINTS * 3
        self.articulator_columns = {
            a: (np.arange(SMPLX_DIM)[sl] if self.smplx else
                (np.arange(skeleton.NUM_KEYPOINTS)[skeleton.ARTICULATORS[a]][:, None] * 3 + np.arange(3)).ravel())
            for a, sl in (SMPLX_ARTICULATORS if self.smplx else skeleton.ARTICULATORS).items()}
        self.stream_columns = {g: np.concatenate([self.articulator_columns[a] for a in arts])
                               for g, arts in config.groups.items()}
        # where each articulator's values sit in its stream's feature vector
        self.columns: dict[str, dict[str, slice]] = {}
        for g, arts in config.groups.items():
            bounds = np.cumsum([0] + [len(self.articulator_columns[a]) for a in arts])
            self.columns[g] = {a: slice(int(b0), int(b1)) for a, b0, b1 in zip(arts, bounds[:-1], bounds[1:])}
        if not self.smplx:  # the mp178 points of each stream (tests and callers index poses with them)
            self.joints = {g: np.concatenate([np.arange(skeleton.NUM_KEYPOINTS)[skeleton.ARTICULATORS[a]] for a in arts])
                           for g, arts in config.groups.items()}
        self.vq = nn.ModuleDict({g: PartVQVAE(len(c), int(config.codebook_size[g]), config)
                                 for g, c in self.stream_columns.items()})
        # feature statistics of the training data (set by from_data, restored from checkpoints)
        shape = (SMPLX_DIM,) if self.smplx else (skeleton.NUM_KEYPOINTS, 3)
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))

    @property
    def downsample(self) -> int:
        return self.config.downsample

    @property
    def token_names(self) -> list[str]:
        """The token streams, e.g. body, left_hand, right_hand (and face)."""
        return list(self.stream_columns)

    @property
    def array_names(self) -> list[str]:
        return [TOKEN_PREFIX + g for g in self.stream_columns]

    @property
    def min_frames(self) -> int:
        return self.downsample

    @property
    def codebooks(self) -> dict[str, int]:
        return {TOKEN_PREFIX + g: part.quantizer.size for g, part in self.vq.items()}

    @property
    def input_name(self) -> str:
        """What the tokenizer encodes: 'keypoints' (Sample.pose) or 'smplx' (Sample.arrays['smplx'])."""
        return self.config.input

    def sample_input(self, sample) -> np.ndarray:
        """The array of a sample this tokenizer encodes: its (T, 178, 3) pose, or its (T, 133) SMPL-X
        parameters (one line if it has none)."""
        if not self.smplx:
            return sample.pose
        x = sample.arrays.get("smplx")
        if x is None:
            raise SlpError(f"sample '{sample.id}' has no 'smplx' array; this VQ-VAE tokenizes SMPL-X parameters: "
                           f"fit them with `slp fit-smplx`")
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != SMPLX_DIM or len(x) != sample.num_frames:
            raise SlpError(f"sample '{sample.id}': its 'smplx' array is {tuple(x.shape)}, not ({sample.num_frames}, "
                           f"{SMPLX_DIM}) (SOKE's layout, written by `slp fit-smplx`)")
        return x

    @classmethod
    def from_data(cls, config, samples, **inputs):
        cls.check_inputs(inputs)
        model = cls(config)
        total = torch.zeros(model.mean.shape, dtype=torch.float64).numpy()
        total_sq = np.zeros_like(total)
        count = np.zeros_like(total)
        for s in samples:  # streaming sums: a large corpus is never copied whole
            f = np.asarray(model.sample_input(s), dtype=np.float64)
            ok = np.isfinite(f)
            f = np.where(ok, f, 0.0)
            total += f.sum(0)
            total_sq += (f * f).sum(0)
            count += ok.sum(0)
        mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
        var = np.where(count > 1, total_sq / np.maximum(count, 1) - mean ** 2, 1.0)
        var = np.maximum(var, 0.0)
        if model.smplx:  # one std per value, as the authors' mean.pt / std.pt
            std = np.maximum(np.sqrt(var), 1e-4)
        else:
            # one scale per articulator (the RMS spread of its coordinates): per-coordinate scaling would
            # blow the shoulders' near-constant coordinates (fixed by normalization) up to unit noise
            std = np.empty_like(var)
            for sl in skeleton.ARTICULATORS.values():
                std[sl] = max(float(np.sqrt(var[sl].mean())), 1e-4)
        model.mean.copy_(torch.from_numpy(mean))
        model.std.copy_(torch.from_numpy(std))
        return model

    # --- features -------------------------------------------------------------------------------
    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., 178, 3) poses or (..., 133) SMPL-X values (NaN = missing) -> standardized flat
        features (..., D) (missing as the mean, 0) and the (..., D) mask of values present (a joint's
        three coordinates together)."""
        f = (x - self.mean) / self.std
        valid = torch.isfinite(f)
        if not self.smplx:
            valid = valid.all(-1, keepdim=True).expand_as(f)
            f, valid = f.flatten(-2), valid.flatten(-2)
        return torch.where(valid, f, torch.zeros((), dtype=f.dtype, device=f.device)), valid

    def poses(self, feat: torch.Tensor) -> torch.Tensor:
        """Standardized flat features (..., D) -> poses (..., 178, 3) or SMPL-X values (..., 133)."""
        return feat.unflatten(-1, self.mean.shape) * self.std + self.mean

    def _split(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, T, D) -> {stream: (B, T, its values)}."""
        return {g: x[..., c] for g, c in self.stream_columns.items()}

    def _join(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """{stream: (B, T, its values)} -> (B, T, D): every stream back in its place."""
        first = next(iter(parts.values()))
        out = first.new_zeros(*first.shape[:2], self.dim)
        for g, x in parts.items():
            out[..., self.stream_columns[g]] = x
        return out

    def _pad_time(self, x: torch.Tensor) -> torch.Tensor:
        """Repeat the last frame up to a multiple of the downsampling factor."""
        extra = -x.shape[1] % self.downsample
        return torch.cat([x, x[:, -1:].expand(-1, extra, *x.shape[2:])], 1) if extra else x

    # --- the tokenizer contract ------------------------------------------------------------------
    def encode(self, pose: torch.Tensor) -> dict[str, torch.Tensor]:
        """(T, 178, 3) or (B, T, 178, 3) poses -- (T, 133) or (B, T, 133) for SMPL-X input --
        -> {"tokens_<stream>": int32 ids (T / 4,) or (B, T / 4)}."""
        return {TOKEN_PREFIX + g: ids.to(torch.int32) for g, ids in self.encode_tokens(pose).items()}

    def decode(self, arrays: dict[str, torch.Tensor], num_frames: int | None = None) -> torch.Tensor:
        """{"tokens_<stream>": ids} -> poses (see :meth:`decode_tokens`)."""
        missing = [n for n in self.array_names if n not in arrays]
        if missing:
            raise SlpError(f"token array(s) {', '.join(missing)} missing; this VQ-VAE decodes "
                           f"{', '.join(self.array_names)}")
        return self.decode_tokens({g: arrays[TOKEN_PREFIX + g] for g in self.stream_columns}, num_frames)

    # --- token streams ---------------------------------------------------------------------------
    def encode_tokens(self, pose: torch.Tensor) -> dict[str, torch.Tensor]:
        """(T, 178, 3) or (B, T, 178, 3) poses (NaN allowed; (T, 133) or (B, T, 133) SMPL-X values
        for SMPL-X input) -> {stream: ids (T / 4,) or (B, T / 4)}, T rounded up to a multiple of the
        downsampling factor 4 by repeating the last frame."""
        frame_dims = 1 if self.smplx else 2
        if pose.dim() not in (frame_dims + 1, frame_dims + 2) or tuple(pose.shape[-frame_dims:]) != tuple(self.mean.shape):
            raise SlpError(f"this VQ-VAE encodes (T, {', '.join(map(str, self.mean.shape))}) "
                           f"{'SMPL-X values' if self.smplx else 'poses'}, not {tuple(pose.shape)}")
        single = pose.dim() == frame_dims + 1
        pose = pose[None] if single else pose
        if pose.shape[1] < self.downsample:
            raise SlpError(f"a sequence of {pose.shape[1]} frames is shorter than the VQ-VAE's temporal "
                           f"downsampling factor {self.downsample}; it cannot be tokenized")
        x, _ = self.features(pose.float())
        out = {}
        for g, xg in self._split(self._pad_time(x)).items():
            part = self.vq[g]
            z = part.encoder(xg.transpose(1, 2)).transpose(1, 2)
            out[g] = part.quantizer.quantize(z.reshape(-1, z.shape[-1])).view(z.shape[:2])
        return {g: v[0] for g, v in out.items()} if single else out

    def decode_tokens(self, tokens: dict[str, torch.Tensor], num_frames: int | None = None) -> torch.Tensor:
        """{stream: ids (T',) or (B, T')} -> poses (T' * 4, 178, 3) or (B, T' * 4, 178, 3) (SMPL-X
        values (..., 133) for SMPL-X input), cut to ``num_frames`` when given."""
        missing = [g for g in self.stream_columns if g not in tokens]
        if missing:
            raise SlpError(f"token stream(s) {', '.join(missing)} missing; this VQ-VAE decodes "
                           f"{', '.join(self.stream_columns)}")
        single = next(iter(tokens.values())).dim() == 1
        parts = {}
        for g, part in self.vq.items():
            ids = tokens[g][None] if single else tokens[g]
            if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= part.quantizer.size):
                raise SlpError(f"token ids of '{g}' fall outside its codebook of {part.quantizer.size} codes")
            parts[g] = part.decode_codes(part.quantizer.dequantize(ids.long()))
        pose = self.poses(self._join(parts))
        if num_frames is not None:
            pose = pose[:, :num_frames]
        return pose[0] if single else pose

    # --- training --------------------------------------------------------------------------------
    def make_dataset(self, samples):
        """Windows (fixed length, half-window stride; shorter sequences whole, cut to a multiple of
        4) or whole sequences (SOKE's loader: resampled into [seq_min, seq_max], centre-cut)."""
        c, down = self.config, self.downsample
        items = []
        for s in samples:
            x = self.sample_input(s)
            t = len(x)
            if t < down:
                raise SlpError(f"sample '{s.id}' has {t} frames, fewer than the VQ-VAE's temporal downsampling "
                               f"factor {down}; drop samples this short from the training data")
            if c.batching == "sequences":
                if t < c.seq_min or t > c.seq_max:  # np.linspace resampling, as H2SMotionDatasetVQ
                    x = x[np.linspace(0, t - 1, num=min(max(t, c.seq_min), c.seq_max)).astype(int)]
                n = len(x) - len(x) % down
                a = (len(x) - n) // 2
                items.append(x[a:a + n])
                continue
            w = c.window
            if t <= w:
                items.append(x[: t - t % down])
                continue
            starts = list(range(0, t - w + 1, w // 2))
            if starts[-1] != t - w:
                starts.append(t - w)  # the tail gets a window too
            items += [x[a:a + w] for a in starts]
        return SequenceDataset(items, np.array([len(x) for x in items]))

    def collate(self, items):
        pose, frames = pad([np.asarray(x, dtype=np.float32) for x in items], value=np.nan)
        return {"pose": pose, "frames": frames, "num_frames": int(frames.sum()), "batch_size": len(items)}

    def _weights(self, g: str) -> dict[str, float]:
        """The articulators' weights in stream ``g``, scaled to sum to their number."""
        w = {a: (self.config.face_weight if a == "face" else 1.0) for a in self.columns[g]}
        total = sum(w.values())
        return {a: v * len(w) / total for a, v in w.items()}

    def _losses(self, batch, evaluate: bool = False) -> dict[str, torch.Tensor]:
        pose = batch["pose"]
        x, valid = self.features(pose)
        valid = valid & batch["frames"][..., None]
        masks = self._split(valid.float())
        out, loss, recon = {}, 0.0, {}
        for g, xg in self._split(x).items():
            rec, ids, q_loss = self.vq[g](xg)
            rec = rec.float()
            if self.config.recon == "smooth_l1":
                err = F.smooth_l1_loss(rec, xg, reduction="none") * masks[g]
            else:
                err = (rec - xg) ** 2 * masks[g]
            # L_rec averaged per articulator, then weighted (the face 13/30 of the body, as in SOKE's
            # mean over its 133 values), so that 128 face points do not drown the 8 body points
            weights = self._weights(g)
            rec_loss = sum(weights[a] * err[..., c].sum() / masks[g][..., c].sum().clamp(min=1)
                           for a, c in self.columns[g].items())
            loss = loss + rec_loss + q_loss
            recon[g] = rec
            counts = torch.bincount(ids.flatten(), minlength=self.vq[g].quantizer.size).float()
            p = counts / counts.sum()
            out[f"rec_{g}"] = rec_loss.detach()
            out[f"perplexity_{g}"] = torch.exp(-(p * torch.log(p.clamp(min=1e-12))).sum())
        with torch.no_grad(), torch.autocast(pose.device.type, enabled=False):
            out.update(self._errors(self.poses(self._join(recon)), pose, valid, evaluate))
        out["loss"] = loss
        return out

    def _errors(self, rec: torch.Tensor, ref: torch.Tensor, valid: torch.Tensor,
                evaluate: bool) -> dict[str, torch.Tensor]:
        """Per-articulator errors in the input's units, for the log, and (on dev, ``evaluate``)
        ``hand_error``, the selection value: keypoints: MPJPE per articulator and the hands' PA-MPJPE (mean of the
        two); SMPL-X: the mean absolute error per articulator and the mean axis-angle distance of
        the hand joints."""
        out = {}
        ref = torch.nan_to_num(ref.float())
        if self.smplx:
            err = (rec.float() - ref).abs()
            for art, sl in SMPLX_ARTICULATORS.items():
                v = valid[..., sl].float()
                out[f"abs_err_{art}"] = (err[..., sl] * v).sum() / v.sum().clamp(min=1)
            hands = slice(SMPLX_ARTICULATORS["left_hand"].start, SMPLX_ARTICULATORS["right_hand"].stop)
            d = torch.linalg.vector_norm((rec.float() - ref)[..., hands].unflatten(-1, (-1, 3)), dim=-1)
            v = valid[..., hands].unflatten(-1, (-1, 3)).all(-1).float()
            out["hand_error"] = (d * v).sum() / v.sum().clamp(min=1)
            return out
        present = valid.unflatten(-1, (-1, 3)).all(-1)  # (B, T, 178)
        dist = torch.linalg.vector_norm(rec.float() - ref, dim=-1)
        for art, sl in skeleton.ARTICULATORS.items():
            v = present[..., sl].float()
            out[f"mpjpe_{art}"] = (dist[..., sl] * v).sum() / v.sum().clamp(min=1)
        if not evaluate:  # the Procrustes fits only where the best weights are chosen
            return out
        hand = []
        for art in skeleton.HANDS:
            sl = skeleton.ARTICULATORS[art]
            e, ok = procrustes_errors(rec[..., sl, :].flatten(0, 1), ref[..., sl, :].flatten(0, 1),
                                      present[..., sl].flatten(0, 1))
            out[f"pa_mpjpe_{art}"] = (e * ok).sum() / ok.sum().clamp(min=1)
            hand.append(out[f"pa_mpjpe_{art}"])
        out["hand_error"] = sum(hand) / len(hand)
        return out

    def training_step(self, batch):
        return self._losses(batch)

    def validation_step(self, batch):
        return self._losses(batch, evaluate=True)

    def configure_optimizers(self):
        # AdamW with SOKE's betas (0.9, 0.99) and no weight decay, cosine from lr to min_lr over
        # max_steps (SOKE 4.1; the code's CosineAnnealingLR, eta_min 1e-6, stepped per epoch, here
        # per step). The lambda reads max_steps at call time: a resume with a larger --max-steps stretches it.
        c = self.config
        optimizer = torch.optim.AdamW(self.parameters(), lr=c.lr, betas=c.adam_betas, weight_decay=c.weight_decay)
        floor = min(c.min_lr / c.lr, 1.0) if c.lr > 0 else 0.0

        def cosine(step):
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step / max(c.max_steps, 1), 1.0)))

        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)
