"""Text encoders for the text-to-pose generators and the back-translator (docs/design.md, section 7).

A :class:`TextEncoder` turns sentences into contextual token features of the model dimension:
token embeddings from an *embedder*, a linear projection to ``d_model``, sinusoidal positions,
a learned language embedding (one per sign language of the training data), then a Transformer
encoder (A2V-SLP, section 3.2: BERT's 768-dim
features projected to 512, 3 layers, 4 heads, FFN 1024). Two embedders:

* ``OfflineEmbedder`` (the default, needs nothing from a hub): the corpus-trained WordPiece
  :class:`~slp_cli.text.tokenizer.TextTokenizer` and an embedding table trained from scratch
  with the rest of the model. The tokenizer's JSON lives in the model's config.
* ``PretrainedEmbedder``: a Hugging Face model named by hub id or local path (``bert-base-german-
  cased`` in the paper), loaded with ``AutoTokenizer`` / ``AutoModel`` and kept frozen: its last
  hidden states are the token features ("contextualized word embeddings extracted from a
  pretrained BERT"). Its weights are not copied into the model's checkpoint (they are loaded
  again by name); being frozen, its features can be computed once per training sentence.

``load_pretrained`` is the one place that loads a pretrained text model, for every stage.

Texts are checked before use: an empty text, a language the model was not trained on, and a
text all of whose tokens are unknown are refused with one line (an all-[UNK] input carries no
information: every such sentence would get the same signing). Words that are only partly
covered by the vocabulary (WordPiece splits unseen words into known pieces) are used and
reported as unknown when all their pieces are [UNK].
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import SlpError
from .tokenizer import PAD, UNK, TextTokenizer, pre_split

OFFLINE = ""  # the text_encoder value that selects the offline default


def sinusoidal(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """(...,) positions (integer or fractional) -> (..., dim) sine/cosine features (Vaswani et
    al.), float32."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    angle = positions.float()[..., None] * freq
    out = torch.cat([angle.sin(), angle.cos()], -1)
    return nn.functional.pad(out, (0, dim - 2 * half))


def load_pretrained(name_or_path: str):
    """(tokenizer, model) of a Hugging Face model by hub id or local directory, in eval mode.

    Offline machines load only local directories or models already in the Hugging Face cache;
    anything else is refused with one line saying so.
    """
    import transformers

    transformers.logging.set_verbosity_error()
    try:
        tok = transformers.AutoTokenizer.from_pretrained(name_or_path)
        model = transformers.AutoModel.from_pretrained(name_or_path)
    except (OSError, ValueError, KeyError) as e:
        where = "directory" if Path(name_or_path).exists() else "hub id (not in the local cache, and no network?)"
        raise SlpError(f"text encoder {name_or_path!r}: cannot load this {where}: {str(e).splitlines()[0][:160]}; "
                       "give a directory saved with save_pretrained, or leave --text-encoder unset for the "
                       "offline default") from None
    model.eval()
    return tok, model


def _non_empty(text: str) -> None:
    if not (text or "").strip():
        raise SlpError("empty text: give a sentence to sign")


class OfflineEmbedder(nn.Module):
    """Corpus-trained WordPiece ids -> embeddings learned from scratch."""

    def __init__(self, tokenizer: TextTokenizer, dim: int):
        super().__init__()
        self.tokenizer = tokenizer
        self.dim = dim
        # N(0, 1) (PyTorch's default): after the projection the token signal is on the scale of
        # the positional encoding, not drowned by it
        self.embed = nn.Embedding(tokenizer.vocab_size, dim, padding_idx=PAD)

    def prepare(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids (int64) per text, checked (see :meth:`unknown_words`)."""
        out = []
        for text in texts:
            _non_empty(text)
            ids = self.tokenizer.encode(text)
            if not ids or all(i == UNK for i in ids):
                raise SlpError(f"text {text!r}: none of its tokens is in the model's vocabulary (all [UNK]); "
                               "the model has nothing to sign from it")
            out.append(np.asarray(ids, dtype=np.int64))
        return out

    def unknown_words(self, text: str) -> list[str]:
        """Words of ``text`` whose every WordPiece is [UNK]."""
        return [w for w in pre_split(text).split() if all(i == UNK for i in self.tokenizer.tok.encode(w).ids)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)


class PretrainedEmbedder(nn.Module):
    """A frozen Hugging Face encoder's last hidden states; the model is held outside the module's
    parameters (not trained, not in the state_dict) and runs on the module's device."""

    def __init__(self, name_or_path: str):
        super().__init__()
        self.source = name_or_path
        self.hf_tokenizer, model = load_pretrained(name_or_path)
        for p in model.parameters():
            p.requires_grad_(False)
        self._hf = [model]  # a list hides it from nn.Module registration
        self.dim = int(model.config.hidden_size)
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)  # follows .to(device)

    @property
    def hf_model(self):
        return self._hf[0]

    def unknown_words(self, text: str) -> list[str]:
        unk = self.hf_tokenizer.unk_token_id
        out = []
        for w in text.split():
            ids = self.hf_tokenizer(w, add_special_tokens=False)["input_ids"]
            if ids and all(i == unk for i in ids):
                out.append(w)
        return out

    @torch.no_grad()
    def prepare(self, texts: Sequence[str], batch_size: int = 32) -> list[np.ndarray]:
        """(L_i, hidden) float32 features per text (special tokens included), checked."""
        for text in texts:
            _non_empty(text)
            ids = self.hf_tokenizer(text, add_special_tokens=False)["input_ids"]
            if not ids or all(i == self.hf_tokenizer.unk_token_id for i in ids):
                raise SlpError(f"text {text!r}: none of its tokens is in {self.source}'s vocabulary (all unknown); "
                               "the model has nothing to sign from it")
        model = self.hf_model.to(self._anchor.device)
        out = []
        for i in range(0, len(texts), batch_size):
            enc = self.hf_tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True, return_tensors="pt")
            enc = {k: v.to(self._anchor.device) for k, v in enc.items()}
            hidden = model(**enc).last_hidden_state.float().cpu().numpy()
            lengths = enc["attention_mask"].sum(1).tolist()
            out.extend(hidden[j, :n].copy() for j, n in enumerate(lengths))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class TextEncoder(nn.Module):
    """Embedder -> linear projection to ``d_model`` -> + positions + language -> Transformer encoder.

    ``prepare(texts, langs)`` gives per-text inputs (ids, or frozen features) that ``collate``
    pads; ``forward(batch)`` returns ``(features (B, L, d_model), mask (B, L) True on tokens)``.
    """

    def __init__(self, embedder: nn.Module, langs: Sequence[str], d_model: int, layers: int, heads: int,
                 ffn: int, dropout: float = 0.1):
        super().__init__()
        self.embedder = embedder
        self.langs = list(langs)
        self.d_model = d_model
        self.proj = nn.Linear(embedder.dim, d_model)
        self.lang = nn.Embedding(max(len(self.langs), 1), d_model)
        nn.init.zeros_(self.lang.weight)
        layer = nn.TransformerEncoderLayer(d_model, heads, ffn, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)

    @property
    def is_pretrained(self) -> bool:
        return isinstance(self.embedder, PretrainedEmbedder)

    def lang_id(self, lang: str) -> int:
        if lang not in self.langs:
            raise SlpError(f"language {lang!r} was not in this model's training data (it knows "
                           f"{', '.join(self.langs) or 'none'}); pick another --lang or model")
        return self.langs.index(lang)

    def prepare(self, texts: Sequence[str], langs: Sequence[str]) -> list[dict]:
        """Checked inputs of each text (SlpError names the first unusable one)."""
        lang_ids = [self.lang_id(lang) for lang in langs]
        return [{"text": x, "lang": i} for x, i in zip(self.embedder.prepare(list(texts)), lang_ids)]

    def unknown_words(self, text: str) -> list[str]:
        return self.embedder.unknown_words(text)

    def collate(self, prepared: Sequence[dict]) -> dict[str, torch.Tensor]:
        from ..tensors import pad

        texts = [p["text"] for p in prepared]
        dtype = torch.long if texts[0].dtype == np.int64 else torch.float32
        x, mask = pad(texts, value=PAD, dtype=dtype)
        return {"text": x, "text_mask": mask, "lang": torch.tensor([p["lang"] for p in prepared], dtype=torch.long)}

    def forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        x, mask = batch["text"], batch["text_mask"]
        h = self.proj(self.embedder(x))
        pos = torch.arange(h.shape[1], device=h.device)
        h = h + sinusoidal(pos, self.d_model).to(h.dtype) + self.lang(batch["lang"])[:, None]
        h = self.encoder(self.dropout(h), src_key_padding_mask=~mask)
        return h, mask


def make_embedder(source: str, tokenizer_json: dict | None, dim: int) -> nn.Module:
    """The offline embedder (``source`` empty; ``tokenizer_json`` from ``TextTokenizer.to_json``)
    or a frozen pretrained one (``source`` = hub id or local path)."""
    if source == OFFLINE:
        if not tokenizer_json:
            raise SlpError("the offline text encoder needs its tokenizer (train one with TextTokenizer.train)")
        return OfflineEmbedder(TextTokenizer.from_json(tokenizer_json), dim)
    return PretrainedEmbedder(source)
