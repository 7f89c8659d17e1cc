"""SOKE's decoupled VQ-VAE tokenizer (DETO; SOKE, section 3.2, appendices C and D, tables 3-4 and
S6): mp178 pose sequences to discrete motion tokens, one token stream per body part at a quarter
of the frame rate (arrays ``tokens_<stream>``).

* Parts (``parts``): ``decoupled`` (SOKE: upper body, left hand, right hand: three VQ-VAEs),
  ``body_hands`` (body + one VQ-VAE for both hands) and ``whole_body`` (one VQ-VAE), the ablation
  of table 4. SOKE has no face part: its upper-body part carries SMPL-X's jaw pose and expression
  coefficients, so here the 128 face points are tokenized with the 8 upper-body points by the
  body VQ-VAE, and every part decodes to real coordinates (no NaN face).
* Each VQ-VAE is T2M-GPT's (SOKE builds on MotionGPT [27], which uses it): a 1D-CNN encoder
  (conv, then ``down_t`` = 2 blocks of a stride-2 conv and a dilated residual stack of ``depth``
  3 with dilations 1, 3, 9), a codebook, and the mirror decoder (nearest upsampling). Temporal
  downsampling 2**down_t = 4; codebooks 96 / 192 / 192 codes of dimension 512 (table S6's best);
  width 512.
* Quantization (eq. 1): nearest codebook entry in L2, straight-through gradients. Loss per part
  L_rec + L_emb + L_com with L_rec the squared error (section 3.2). ``quantizer="ema"`` (default,
  as T2M-GPT / MotionGPT): the codebook is updated by exponential moving averages of the encoder
  outputs assigned to each code (decay 0.99; van den Oord et al.'s EMA form of the embedding
  loss) and the commitment loss is weighted 0.02; ``quantizer="loss"``: a learned codebook with
  the explicit embedding loss ||sg[z] - e||^2 plus the weighted commitment loss. Both initialise
  the codebook from the first batch's encoder outputs and reset dead codes: a code whose
  moving-average use falls below ``reset_fraction`` of uniform use (T2M-GPT's threshold of one
  use per batch at its batch size is 1/8 of uniform) is moved onto a random encoder output of
  the batch. Under DDP the code statistics are summed over processes, so the codebook follows
  the global batch as one process would.
* Training data: sequences cut into windows of ``window`` = 64 frames (T2M-GPT), here
  deterministically with a half-window stride (every frame in about two windows, and an exact
  resume); a sequence shorter than a window is one item, cut to a multiple of 4 frames; a
  sequence shorter than 4 frames is an error. AdamW, cosine schedule from lr 2e-4 (SOKE,
  section 4.1 "Implementation Details").

Choices the paper leaves open, stated: inputs are the mp178 coordinates (hands in the same
neck-centred frame as the body: expressing each hand relative to its body wrist, as SMPL-X's hand
parameters are, doubled the hand error on the synthetic corpus, because the wrist's error then
adds to every finger's), standardized per coordinate with the training set's mean and std
(T2M-GPT's feature normalization); missing joints (NaN) are fed as the mean and left out of the
loss; the squared error is averaged per articulator and summed, so that the 128 face points do
not drown the 8 body points of their stream and every articulator weighs the same in every
configuration.
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

# Token streams per configuration, each a list of mp178 articulators (docs/design.md, section 4).
GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "decoupled": {"body": ("body", "face"), "left_hand": ("left_hand",), "right_hand": ("right_hand",)},
    "body_hands": {"body": ("body", "face"), "hands": ("left_hand", "right_hand")},
    "whole_body": {"whole_body": ("body", "left_hand", "right_hand", "face")},
}
# Codes per token stream: SOKE's 96 / 192 / 192 (table S6); the ablations' merged streams get the
# sum of their parts' hand codes and T2M-GPT's 512 for the whole body.
CODEBOOK_SIZE = {"body": 96, "left_hand": 192, "right_hand": 192, "hands": 384, "whole_body": 512}


TOKEN_PREFIX = "tokens_"  # the artifact arrays are tokens_<stream>


@dataclass
class VQVAEConfig(TrainingConfig):
    parts: str = option("decoupled", "Token streams: 'decoupled' (SOKE: body with face, left hand, right hand), "
                        "'body_hands' or 'whole_body' (the ablations of SOKE table 4).")
    codebook_size: dict = option(help="Codes per token stream, or a comma-separated list in stream order (default "
                                 "96,192,192, SOKE table S6; 96,384 for body_hands; 512 for whole_body).",
                                 flag="codes", factory=lambda: dict(CODEBOOK_SIZE))
    code_dim: int = option(512, "Code dimension (SOKE: 512).")
    width: int = option(512, "Channels of the 1D-CNN encoder and decoder (T2M-GPT: 512).")
    depth: int = option(3, "Dilated residual blocks per resolution (T2M-GPT: 3).")
    dilation_growth: int = option(3, "Dilation growth of the residual blocks: 1, 3, 9 (T2M-GPT).")
    down_t: int = option(2, "Stride-2 downsamplings: tokens at 1 / 2**down_t of the frame rate.")
    window: int = option(64, "Training window in frames, a multiple of 2**down_t (T2M-GPT/SOKE: 64).")
    quantizer: str = option("ema", "'ema' (codebook by moving averages, as T2M-GPT and MotionGPT) or 'loss' "
                            "(learned codebook with the embedding loss).")
    ema_decay: float = option(0.99, "Decay of the codebook's moving averages.")
    commit: float = option(0.02, "Commitment loss weight (T2M-GPT: 0.02).")
    reset_fraction: float = option(0.125, "Reset a code whose moving-average use falls below this fraction of "
                                   "uniform use.")

    def __post_init__(self):
        if self.parts not in GROUPS:
            raise ValueError(f"parts must be one of {list(GROUPS)}, not {self.parts!r}")
        if isinstance(self.codebook_size, (list, tuple)):  # sizes in stream order, e.g. --codes 96,192,192
            streams = list(GROUPS[self.parts])
            if len(self.codebook_size) != len(streams):
                raise ValueError(f"codebook_size needs {len(streams)} size(s) for the streams {', '.join(streams)}; "
                                 f"got {list(self.codebook_size)}")
            self.codebook_size = {**CODEBOOK_SIZE, **dict(zip(streams, (int(x) for x in self.codebook_size)))}
        missing = [g for g in GROUPS[self.parts] if g not in self.codebook_size]
        if missing:
            raise ValueError(f"codebook_size needs an entry for {', '.join(missing)}")
        if any(int(self.codebook_size[g]) < 2 for g in GROUPS[self.parts]):
            raise ValueError("every codebook needs at least 2 codes")
        for name in ("code_dim", "width", "depth", "dilation_growth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.down_t < 0:
            raise ValueError("down_t must be >= 0")
        if self.window < self.downsample or self.window % self.downsample:
            raise ValueError(f"window ({self.window}) must be a positive multiple of the temporal "
                             f"downsampling factor {self.downsample}")
        if self.quantizer not in ("ema", "loss"):
            raise ValueError(f"quantizer must be 'ema' or 'loss', not {self.quantizer!r}")
        if not 0 < self.ema_decay < 1:
            raise ValueError("ema_decay must be in (0, 1)")
        if self.commit < 0 or self.reset_fraction < 0:
            raise ValueError("commit and reset_fraction must be >= 0")

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
        layers += [nn.Conv1d(c.width, c.width, 4, 2, 1), ResConv1D(c.width, c.depth, c.dilation_growth)]
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

    ``quantize(z) -> ids`` and ``dequantize(ids) -> codes`` are the tokenizer's two halves;
    ``forward(z)`` returns ``(z + sg[codes - z], ids, loss)`` and, in training mode, updates the
    codebook (EMA mode), its use statistics, and resets dead codes.
    """

    def __init__(self, size: int, dim: int, config: VQVAEConfig):
        super().__init__()
        self.size, self.dim = size, dim
        self.ema = config.quantizer == "ema"
        self.decay, self.commit, self.reset_fraction = config.ema_decay, config.commit, config.reset_fraction
        if self.ema:
            self.register_buffer("codebook", torch.zeros(size, dim))
            self.register_buffer("code_sum", torch.zeros(size, dim))
        else:
            self.codebook = nn.Parameter(torch.zeros(size, dim))
        self.register_buffer("code_count", torch.zeros(size))  # moving average of uses per batch
        self.register_buffer("initialized", torch.zeros(()))

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """(N, dim) -> (N,) ids of the nearest codes (L2)."""
        e = self.codebook.float()
        z = z.float()
        dist = z.pow(2).sum(-1, keepdim=True) - 2 * z @ e.t() + e.pow(2).sum(-1)
        return dist.argmin(-1)

    def dequantize(self, ids: torch.Tensor) -> torch.Tensor:
        """(...,) ids -> (..., dim) codes."""
        return F.embedding(ids, self.codebook.float())

    def forward(self, z: torch.Tensor):
        with torch.autocast(z.device.type, enabled=False):  # distances in full precision under bf16
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
        self.code_count.fill_(self._global_count(len(z), z.device) / self.size)
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
        dead = self.code_count < self.reset_fraction * n / self.size
        if dead.any():
            k = int(dead.sum())
            fresh = z[torch.randint(len(z), (k,), device=z.device)]
            fresh = self._broadcast(fresh)
            self.codebook.data[dead] = fresh
            self.code_count[dead] = n / self.size
            if self.ema:
                self.code_sum[dead] = fresh * (n / self.size)

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


# --- the model ----------------------------------------------------------------------------------

PRESETS = {
    # SOKE (section 4.1): batch 320 per GPU, 500 epochs, AdamW, cosine from 2e-4. The step count
    # depends on the corpus: 100k steps is 500 epochs of ~64k windows at 320 per step.
    "default": dict(batch_size=320, max_steps=100000, eval_every=1000, checkpoint_every=2000, patience=20),
    # A CPU-sized network for the synthetic corpus and the ablation script (bench/).
    "small": dict(width=128, code_dim=128, depth=2, window=32, batch_size=32, max_steps=3000, eval_every=250,
                  checkpoint_every=500, patience=0, lr=1e-3),
    # Tests and smoke runs: a narrow network, short windows, SOKE's codebook sizes; a faster EMA
    # (decay 0.9) so that the codebook keeps up with an encoder that changes fast in a short run.
    "tiny": dict(width=48, code_dim=32, depth=2, window=32, batch_size=8, max_steps=300, eval_every=50,
                 checkpoint_every=100, patience=0, log_every=10, lr=2e-3, ema_decay=0.9),
}


@register("vqvae")
class DecoupledVQVAE(PoseTokenizer):
    """SOKE's decoupled VQ-VAE: discrete motion tokens per body part (upper body with face, left hand, right hand) at 1/4 of the frame rate."""

    Config = VQVAEConfig
    presets = PRESETS
    shortcuts = {"whole-body": {"parts": "whole_body"}, "body-hands": {"parts": "body_hands"}}

    def __init__(self, config: VQVAEConfig, data: dict | None = None):
        super().__init__(config, data)
        self.joints = {g: np.concatenate([np.arange(skeleton.NUM_KEYPOINTS)[skeleton.ARTICULATORS[a]] for a in arts])
                       for g, arts in config.groups.items()}
        # where each articulator's coordinates sit in its stream's feature vector
        self.columns: dict[str, dict[str, slice]] = {}
        for g, arts in config.groups.items():
            bounds = np.cumsum([0] + [3 * len(range(skeleton.NUM_KEYPOINTS)[skeleton.ARTICULATORS[a]]) for a in arts])
            self.columns[g] = {a: slice(int(b0), int(b1)) for a, b0, b1 in zip(arts, bounds[:-1], bounds[1:])}
        self.vq = nn.ModuleDict({g: PartVQVAE(len(j) * 3, int(config.codebook_size[g]), config)
                                 for g, j in self.joints.items()})
        # feature statistics of the training data (set by from_data, restored from checkpoints)
        self.register_buffer("mean", torch.zeros(skeleton.NUM_KEYPOINTS, 3))
        self.register_buffer("std", torch.ones(skeleton.NUM_KEYPOINTS, 3))

    @property
    def downsample(self) -> int:
        return self.config.downsample

    @property
    def token_names(self) -> list[str]:
        """The token streams, e.g. body, left_hand, right_hand."""
        return list(self.joints)

    @property
    def array_names(self) -> list[str]:
        return [TOKEN_PREFIX + g for g in self.joints]

    @property
    def min_frames(self) -> int:
        return self.downsample

    @property
    def codebooks(self) -> dict[str, int]:
        return {TOKEN_PREFIX + g: part.quantizer.size for g, part in self.vq.items()}

    @classmethod
    def from_data(cls, config, samples, **inputs):
        cls.check_inputs(inputs)
        model = cls(config)
        total = np.zeros((skeleton.NUM_KEYPOINTS, 3))
        total_sq = np.zeros_like(total)
        count = np.zeros_like(total)
        for s in samples:  # streaming sums: a large corpus is never copied whole
            f = np.asarray(s.pose, dtype=np.float64)
            ok = np.isfinite(f)
            f = np.where(ok, f, 0.0)
            total += f.sum(0)
            total_sq += (f * f).sum(0)
            count += ok.sum(0)
        mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
        var = np.where(count > 1, total_sq / np.maximum(count, 1) - mean ** 2, 1.0)
        var = np.maximum(var, 0.0)
        # one scale per articulator (the RMS spread of its coordinates): per-coordinate scaling would
        # blow the shoulders' near-constant coordinates (fixed by normalization) up to unit noise
        std = np.empty_like(var)
        for sl in skeleton.ARTICULATORS.values():
            std[sl] = max(float(np.sqrt(var[sl].mean())), 1e-4)
        model.mean.copy_(torch.from_numpy(mean))
        model.std.copy_(torch.from_numpy(std))
        return model

    # --- features -------------------------------------------------------------------------------
    def features(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., 178, 3) poses (NaN = missing) -> standardized features (missing as the mean, 0)
        and the (..., 178) mask of joints present."""
        f = (pose - self.mean) / self.std
        valid = torch.isfinite(f).all(-1)
        return torch.where(valid[..., None], f, torch.zeros((), dtype=f.dtype, device=f.device)), valid

    def poses(self, feat: torch.Tensor) -> torch.Tensor:
        """Standardized features (..., 178, 3) -> poses."""
        return feat * self.std + self.mean

    def _split(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, T, 178, 3) -> {stream: (B, T, joints * 3)}."""
        return {g: x[:, :, j].flatten(2) for g, j in self.joints.items()}

    def _join(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """{stream: (B, T, joints * 3)} -> (B, T, 178, 3)."""
        first = next(iter(parts.values()))
        out = first.new_zeros(*first.shape[:2], skeleton.NUM_KEYPOINTS, 3)
        for g, x in parts.items():
            out[:, :, self.joints[g]] = x.unflatten(-1, (-1, 3))
        return out

    def _pad_time(self, x: torch.Tensor) -> torch.Tensor:
        """Repeat the last frame up to a multiple of the downsampling factor."""
        extra = -x.shape[1] % self.downsample
        return torch.cat([x, x[:, -1:].expand(-1, extra, *x.shape[2:])], 1) if extra else x

    # --- the tokenizer contract ------------------------------------------------------------------
    def encode(self, pose: torch.Tensor) -> dict[str, torch.Tensor]:
        """(T, 178, 3) or (B, T, 178, 3) poses -> {"tokens_<stream>": int32 ids (T / 4,) or (B, T / 4)}."""
        return {TOKEN_PREFIX + g: ids.to(torch.int32) for g, ids in self.encode_tokens(pose).items()}

    def decode(self, arrays: dict[str, torch.Tensor], num_frames: int | None = None) -> torch.Tensor:
        """{"tokens_<stream>": ids} -> poses (see :meth:`decode_tokens`)."""
        missing = [n for n in self.array_names if n not in arrays]
        if missing:
            raise SlpError(f"token array(s) {', '.join(missing)} missing; this VQ-VAE decodes "
                           f"{', '.join(self.array_names)}")
        return self.decode_tokens({g: arrays[TOKEN_PREFIX + g] for g in self.joints}, num_frames)

    # --- token streams ---------------------------------------------------------------------------
    def encode_tokens(self, pose: torch.Tensor) -> dict[str, torch.Tensor]:
        """(T, 178, 3) or (B, T, 178, 3) poses (NaN allowed) -> {stream: ids (T / 4,) or (B, T / 4)},
        T rounded up to a multiple of the downsampling factor 4 by repeating the last frame."""
        single = pose.dim() == 3
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
        """{stream: ids (T',) or (B, T')} -> poses (T' * 4, 178, 3) or (B, T' * 4, 178, 3), cut to
        ``num_frames`` when given."""
        missing = [g for g in self.joints if g not in tokens]
        if missing:
            raise SlpError(f"token stream(s) {', '.join(missing)} missing; this VQ-VAE decodes "
                           f"{', '.join(self.joints)}")
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
        """Fixed windows with a half-window stride; shorter sequences whole (cut to a multiple of 4)."""
        w, down = self.config.window, self.downsample
        items = []
        for s in samples:
            t = s.num_frames
            if t < down:
                raise SlpError(f"sample '{s.id}' has {t} frames, fewer than the VQ-VAE's temporal downsampling "
                               f"factor {down}; drop samples this short from the training data")
            if t <= w:
                items.append(s.pose[: t - t % down])
                continue
            starts = list(range(0, t - w + 1, w // 2))
            if starts[-1] != t - w:
                starts.append(t - w)  # the tail gets a window too
            items += [s.pose[a:a + w] for a in starts]
        return SequenceDataset(items, np.array([len(x) for x in items]))

    def collate(self, items):
        pose, frames = pad([np.asarray(x, dtype=np.float32) for x in items], value=np.nan)
        return {"pose": pose, "frames": frames, "num_frames": int(frames.sum()), "batch_size": len(items)}

    def _losses(self, batch) -> dict[str, torch.Tensor]:
        pose = batch["pose"]
        x, valid = self.features(pose)
        valid = valid & batch["frames"][..., None]
        masks = self._split(valid[..., None].expand(-1, -1, -1, 3).float())
        out, loss, recon = {}, 0.0, {}
        for g, xg in self._split(x).items():
            rec, ids, q_loss = self.vq[g](xg)
            rec = rec.float()
            sq = (rec - xg) ** 2 * masks[g]
            # L_rec = ||S^ - S||^2, averaged per articulator so that 128 face points do not drown
            # the 8 body points of the same stream (every articulator weighs 1 in every configuration)
            rec_loss = sum(sq[..., c].sum() / masks[g][..., c].sum().clamp(min=1) for c in self.columns[g].values())
            loss = loss + rec_loss + q_loss
            recon[g] = rec
            counts = torch.bincount(ids.flatten(), minlength=self.vq[g].quantizer.size).float()
            p = counts / counts.sum()
            out[f"rec_{g}"] = rec_loss.detach()
            out[f"perplexity_{g}"] = torch.exp(-(p * torch.log(p.clamp(min=1e-12))).sum())
        with torch.no_grad():  # per-articulator error in pose units, for the log
            dist = torch.linalg.vector_norm(self.poses(self._join(recon)) - torch.nan_to_num(pose), dim=-1)
            for art, sl in skeleton.ARTICULATORS.items():
                v = valid[..., sl].float()
                out[f"mpjpe_{art}"] = (dist[..., sl] * v).sum() / v.sum().clamp(min=1)
        out["loss"] = loss
        return out

    def training_step(self, batch):
        return self._losses(batch)

    def configure_optimizers(self):
        # AdamW (PyTorch's defaults beyond the lr) with a cosine decay over max_steps (SOKE 4.1).
        # The lambda reads max_steps at call time, so a resume with a larger --max-steps stretches it.
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.config.lr)
        cosine = lambda step: 0.5 * (1 + math.cos(math.pi * min(step / max(self.config.max_steps, 1), 1.0)))  # noqa: E731
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)
