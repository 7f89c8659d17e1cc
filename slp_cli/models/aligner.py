"""The cross-modal signing aligner of Text2Sign Diffusion (stage 2): a pose aligner over the
frozen SignVAE's per-frame latents and a text aligner, each pooled and projected into one shared
512-dim space, trained with the symmetric InfoNCE loss and a learned temperature, then frozen and
used by the latent diffusion model's semantic loss (slp_cli/models/diffusion.py).

* Text aligner: :class:`slp_cli.text.encoders.TextEncoder` -- the offline default (corpus-trained
  WordPiece, embeddings trained from scratch) or a frozen pretrained sentence encoder by hub id or
  local path (Sentence-BERT in the paper, e.g. ``sentence-transformers/all-MiniLM-L6-v2``), then
  a small trainable Transformer, mean pooling over the tokens and a linear map to 512 dims.
* Pose aligner: the SignVAE latent means (normalised per dim by the training corpus' mean and
  standard deviation), a linear map to ``d_model``, sinusoidal positions, a Transformer encoder
  over time, mean pooling over the frames and a linear map to 512 dims.
* Loss: CLIP's symmetric InfoNCE, logits = exp(s) cos(text, pose), s learned, starting at
  log(1 / 0.07) and capped at log 100 (CLIP; the paper gives no temperature).
* Dev: the loss and text -> pose / pose -> text top-1 retrieval within each dev batch (chance
  1 / batch); the best weights are those with the highest text -> pose accuracy.
  :func:`retrieval_accuracy` scores a whole split (chance 1 / N).

Gaps (the paper names only the 512-dim space and InfoNCE): sizes, pooling, optimizer (AdamW,
lr 1e-4 as the diffusion stage), the pose side reading latents rather than poses (so that the
diffusion model's predicted clean latent is scored without decoding it). Texts longer than
``max_text_tokens`` tokens (Sentence-BERT's default max_seq_length, 128) are refused, not cut.

The frozen SignVAE's weights are copied into this model's state_dict (it encodes each batch's
poses in the step, also after a resume); ``data["tokenizer_fingerprint"]`` lets the diffusion
model check that it reads the same SignVAE.
"""

from __future__ import annotations

import hashlib
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
from ..text.encoders import OFFLINE, PretrainedEmbedder, TextEncoder, make_embedder, sinusoidal
from . import TextPoseAligner, TrainingConfig, config_dict, load_model, option, register
from .signvae import SignVAE, SignVAEConfig

MAX_FRAMES = 256  # Text2Sign Diffusion: sequences up to 256 frames


@dataclass
class SentenceConfig(TrainingConfig):
    """The text side shared by the aligner and the diffusion generator."""

    text_encoder: str = option(OFFLINE, "Frozen pretrained sentence encoder by Hugging Face hub id or local "
                               "directory (the paper: Sentence-BERT). Default: the offline encoder (WordPiece "
                               "trained on the corpus, embeddings trained from scratch).")
    vocab_size: int = option(8000, "WordPiece vocabulary of the offline text encoder.")
    embed_dim: int = option(256, "Offline token embedding size (a pretrained encoder brings its own).")
    max_text_tokens: int = option(128, "Longest text in tokens (Sentence-BERT's max_seq_length 128); longer "
                                  "texts are refused, not cut.")


@dataclass
class AlignerConfig(SentenceConfig):
    d_model: int = option(256, "Width of both aligners (not in the paper).")
    text_layers: int = option(2, "Transformer layers of the text aligner (not in the paper).")
    pose_layers: int = option(2, "Transformer layers of the pose aligner (not in the paper).")
    heads: int = option(4, "Attention heads.")
    ffn: int = option(1024, "Feed-forward width.")
    dropout: float = option(0.1, "Dropout.")
    shared_dim: int = option(512, "Shared embedding space (Text2Sign Diffusion: 512).")
    temperature: float = option(0.07, "Initial InfoNCE temperature, learned (CLIP's 0.07).")
    weight_decay: float = option(0.01, "AdamW weight decay.")

    def __post_init__(self):
        if self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} must be divisible by heads {self.heads}")
        if not 0 < self.temperature < 1:
            raise ValueError("temperature must be in (0, 1)")
        if self.max_text_tokens < 1 or self.shared_dim < 1:
            raise ValueError("max_text_tokens and shared_dim must be >= 1")


PRESETS = {
    # Not in the paper: MLD's optimizer settings and a PHOENIX-2014T-sized budget.
    "default": dict(batch_size=64, lr=1e-4, max_steps=20000, eval_every=500, checkpoint_every=2000, patience=20),
    # Tests, smoke runs and the demo: seconds on one CPU core.
    "tiny": dict(d_model=64, embed_dim=64, text_layers=1, pose_layers=1, heads=4, ffn=128, dropout=0.0,
                 vocab_size=2000, batch_size=16, lr=2e-3, max_steps=300, eval_every=50, checkpoint_every=100,
                 patience=0, log_every=10),
}


def fingerprint(model: nn.Module) -> str:
    """A short hash of a model's weights: which SignVAE an aligner or generator was built over."""
    h = hashlib.sha1()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()[:16]


def check_text_length(encoder: TextEncoder, texts: list[str], limit: int) -> None:
    """SlpError for the first text longer than ``limit`` tokens (or than a pretrained encoder's own
    maximum): the pretrained tokenizers would cut it silently."""
    emb = encoder.embedder
    if isinstance(emb, PretrainedEmbedder):
        own = int(getattr(emb.hf_model.config, "max_position_embeddings", 0) or 0)
        cap = min(limit, own) if own else limit
        lengths = [len(emb.hf_tokenizer(t)["input_ids"]) for t in texts]
    else:
        cap = limit
        lengths = [len(emb.tokenizer.encode(t)) for t in texts]
    for text, n in zip(texts, lengths):
        if n > cap:
            raise SlpError(f"text {text[:40]!r}...: {n} tokens, longer than the {cap} this model's text encoder "
                           "takes; split it into shorter sentences")


def latent_stats(signvae: SignVAE, samples: list) -> tuple[list[float], list[float]]:
    """Per-dim mean and standard deviation of the SignVAE latent means of the training frames."""
    with torch.no_grad():
        frames = torch.as_tensor(np.concatenate([s.pose[:MAX_FRAMES] for s in samples]), dtype=torch.float32)
        mu = torch.cat([signvae.posterior(c)[0] for c in frames.split(8192)])
    return mu.mean(0).tolist(), mu.std(0).clamp(min=1e-4).tolist()


def load_signvae(path, what: str) -> SignVAE:
    if path is None:
        raise SlpError(f"{what} needs its frozen SignVAE: give --tokenizer SIGNVAE_DIR (from `slp train signvae`)")
    return load_model(path, expect="signvae")


def texts_of(samples: list) -> None:
    empty = [s.id for s in samples if not s.text.strip()]
    if empty:
        raise SlpError(f"training sample '{empty[0]}' has no text ({len(empty)} such); this model needs the "
                       "sentence of every training sample")


@register("aligner")
class CrossModalAligner(TextPoseAligner):
    """Text2Sign Diffusion's cross-modal aligner: text and SignVAE latents into a shared 512-dim space (InfoNCE)."""

    Config = AlignerConfig
    presets = PRESETS
    inputs = {"tokenizer": "Frozen SignVAE run directory (`slp train signvae`; its weights are copied in)."}
    selection = ("t2p_r1", "max")

    def __init__(self, config: AlignerConfig, data: dict | None = None):
        super().__init__(config, data)
        data = self.data
        if not data.get("signvae_config") or not data.get("langs"):
            raise SlpError("an aligner is built from data: train it with `slp train aligner --tokenizer SIGNVAE_DIR "
                           "--data ...`")
        self.signvae = SignVAE(SignVAEConfig(**data["signvae_config"]))
        self.signvae.requires_grad_(False)
        latent, d = self.signvae.latent_dim, config.d_model
        self.register_buffer("latent_mean", torch.tensor(data.get("latent_mean") or [0.0] * latent))
        self.register_buffer("latent_std", torch.tensor(data.get("latent_std") or [1.0] * latent))
        self.text_encoder = TextEncoder(make_embedder(config.text_encoder, data.get("text_tokenizer"), config.embed_dim),
                                        data["langs"], d, config.text_layers, config.heads, config.ffn, config.dropout)
        self.text_head = nn.Linear(d, config.shared_dim)
        self.pose_in = nn.Linear(latent, d)
        layer = nn.TransformerEncoderLayer(d, config.heads, config.ffn, config.dropout, batch_first=True,
                                           norm_first=True)
        self.pose_encoder = nn.TransformerEncoder(layer, config.pose_layers, norm=nn.LayerNorm(d),
                                                  enable_nested_tensor=False)
        self.pose_head = nn.Linear(d, config.shared_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / config.temperature)))

    @classmethod
    def from_data(cls, config: AlignerConfig, samples: list, **inputs) -> "CrossModalAligner":
        from ..text.tokenizer import TextTokenizer

        cls.check_inputs(inputs)
        signvae = load_signvae(inputs.get("tokenizer"), "the aligner")
        texts_of(samples)
        langs = sorted({s.lang for s in samples})
        mean, std = latent_stats(signvae, samples)
        data = {"tokenizer": str(inputs["tokenizer"]), "signvae_config": config_dict(signvae.config), "langs": langs,
                "latent_mean": mean, "latent_std": std, "tokenizer_fingerprint": fingerprint(signvae)}
        if config.text_encoder == OFFLINE:
            data["text_tokenizer"] = TextTokenizer.train([s.text for s in samples], langs, config.vocab_size).to_json()
        model = cls(config, data)
        model.signvae.load_state_dict(signvae.state_dict())
        return model

    def train(self, mode: bool = True):
        super().train(mode)
        self.signvae.eval()
        return self

    # --- the two aligners ---------------------------------------------------------------------
    def prepare_texts(self, texts: list[str], langs: list[str]) -> list[dict]:
        check_text_length(self.text_encoder, texts, self.config.max_text_tokens)
        return self.text_encoder.prepare(texts, langs)

    def embed_text(self, batch: dict) -> torch.Tensor:
        """Collated text inputs -> (B, shared_dim) unit vectors."""
        h, mask = self.text_encoder(batch)
        return F.normalize(self.text_head(masked_mean(h, mask)).float(), dim=-1)

    def embed_latents(self, z: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """SignVAE latents (B, T, latent) of frames ``frame_mask`` (B, T) -> (B, shared_dim) unit vectors.
        Differentiable in ``z`` (the diffusion model's semantic loss)."""
        x = self.pose_in((z - self.latent_mean) / self.latent_std)
        x = x + sinusoidal(torch.arange(x.shape[1], device=x.device), x.shape[-1]).to(x.dtype)
        h = self.pose_encoder(x, src_key_padding_mask=~frame_mask)
        return F.normalize(self.pose_head(masked_mean(h, frame_mask)).float(), dim=-1)

    @torch.no_grad()
    def latents(self, pose: torch.Tensor) -> torch.Tensor:
        """Frozen SignVAE latent means (..., latent) of (..., 178, 3) poses (missing joints 0), float32."""
        with torch.autocast(pose.device.type, enabled=False):
            return self.signvae.posterior(pose.float())[0]

    # --- training -----------------------------------------------------------------------------
    def make_dataset(self, samples):
        try:
            prepared = self.prepare_texts([s.text for s in samples], [s.lang for s in samples])
        except SlpError as e:
            raise SlpError(f"{_first_bad(self, samples)}: {e}") from None
        items = [{**t, "pose": np.nan_to_num(s.pose[:MAX_FRAMES])} for s, t in zip(samples, prepared)]
        return SequenceDataset(items, np.array([len(i["pose"]) for i in items]))

    def collate(self, items):
        batch = self.text_encoder.collate(items)
        pose, frames = pad([i["pose"] for i in items])
        batch.update(pose=pose, frame_mask=frames, num_frames=int(frames.sum()), batch_size=len(items))
        return batch

    def _losses(self, batch) -> dict[str, torch.Tensor]:
        t = self.embed_text(batch)
        p = self.embed_latents(self.latents(batch["pose"]), batch["frame_mask"])
        with torch.autocast(t.device.type, enabled=False):  # the softmax's logits in float32
            scale = self.logit_scale.float().clamp(max=math.log(100)).exp()
            logits = scale * t.float() @ p.float().T  # (texts, poses)
        target = torch.arange(len(t), device=t.device)
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        return {"loss": loss, "t2p_r1": (logits.argmax(1) == target).float().mean().detach(),
                "p2t_r1": (logits.argmax(0) == target).float().mean().detach(),
                "chance": torch.tensor(1.0 / len(t)), "temperature": (1 / scale).detach()}

    def training_step(self, batch):
        return self._losses(batch)

    def validation_step(self, batch):
        return self._losses(batch)

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.config.lr, weight_decay=self.config.weight_decay), None


def _first_bad(model: CrossModalAligner, samples: list) -> str:
    for s in samples:
        try:
            model.prepare_texts([s.text], [s.lang])
        except SlpError:
            return f"sample '{s.id}'"
    return "a sample"


@torch.no_grad()
def retrieval_accuracy(aligner: CrossModalAligner, samples: list, batch_size: int = 64, topk=(1, 5)) -> dict:
    """Text -> pose retrieval over a whole split: for each sentence, is its own signing among the
    k nearest of all the split's signings? {"r@1", "r@5", "chance@1", "n"}."""
    aligner.eval()
    device = aligner.latent_mean.device
    texts, poses = [], []
    for i in range(0, len(samples), batch_size):
        chunk = samples[i:i + batch_size]
        prepared = aligner.prepare_texts([s.text for s in chunk], [s.lang for s in chunk])
        texts.append(aligner.embed_text(to_device(aligner.text_encoder.collate(prepared), device)))
        pose, mask = pad([np.nan_to_num(s.pose[:MAX_FRAMES]) for s in chunk])
        pose, mask = pose.to(device), mask.to(device)
        poses.append(aligner.embed_latents(aligner.latents(pose), mask))
    sim = torch.cat(texts) @ torch.cat(poses).T
    rank = (sim > sim.diag()[:, None]).sum(1)  # how many signings score above the right one
    n = len(samples)
    return {**{f"r@{k}": float((rank < k).float().mean()) for k in topk}, "chance@1": 1.0 / n, "n": n}
