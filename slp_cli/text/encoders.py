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


def _non_empty(text: str) -> SlpError | None:
    return None if (text or "").strip() else SlpError("empty text: give a sentence to sign")


def _all_unknown(text: str, ids, unk: int, vocabulary: str, unknown: str) -> SlpError | None:
    if len(ids) and not all(i == unk for i in ids):
        return None
    return SlpError(f"text {text!r}: none of its tokens is in {vocabulary} (all {unknown}); "
                    "the model has nothing to sign from it")


def _unknown_words(texts: Sequence[str], split, unknown_piece) -> list[list[str]]:
    """Per text, its words (``split``) for which ``unknown_piece`` (one batched call over the
    distinct words) says every piece is unknown."""
    words = [split(t) for t in texts]
    distinct = sorted({w for ws in words for w in ws})
    unknown = {w for w, u in zip(distinct, unknown_piece(distinct) if distinct else []) if u}
    return [[w for w in ws if w in unknown] for ws in words]


class OfflineEmbedder(nn.Module):
    """Corpus-trained WordPiece ids -> embeddings learned from scratch."""

    def __init__(self, tokenizer: TextTokenizer, dim: int):
        super().__init__()
        self.tokenizer = tokenizer
        self.dim = dim
        # N(0, 1) (PyTorch's default): after the projection the token signal is on the scale of
        # the positional encoding, not drowned by it
        self.embed = nn.Embedding(tokenizer.vocab_size, dim, padding_idx=PAD)

    def tokenize(self, texts: Sequence[str]) -> list[np.ndarray | SlpError]:
        """Token ids (int64) per text, in one batched call of the tokenizer; an unusable text
        (empty, all [UNK]) gets its SlpError."""
        usable = [i for i, t in enumerate(texts) if _non_empty(t) is None]
        out: list = [_non_empty(t) for t in texts]
        encoded = self.tokenizer.tok.encode_batch([pre_split(texts[i]) for i in usable]) if usable else []
        for i, enc in zip(usable, encoded):
            bad = _all_unknown(texts[i], enc.ids, UNK, "the model's vocabulary", "[UNK]")
            out[i] = bad or np.asarray(enc.ids, np.int64)
        return out

    def prepare(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids (int64) per text, checked (see :meth:`unknown_words`)."""
        return [_raise(x) for x in self.tokenize(texts)]

    def unknown_each(self, texts: Sequence[str]) -> list[list[str]]:
        """Per text, its words whose every WordPiece is [UNK] (one batched tokenizer call)."""
        return _unknown_words(texts, lambda t: pre_split(t).split(), lambda words: [
            all(i == UNK for i in e.ids) for e in self.tokenizer.tok.encode_batch(words)])

    def unknown_words(self, text: str) -> list[str]:
        """Words of ``text`` whose every WordPiece is [UNK]."""
        return self.unknown_each([text])[0]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.embed(x)


class PretrainedEmbedder(nn.Module):
    """A frozen Hugging Face encoder's last hidden states; the model is held outside the module's
    parameters (not trained, not in the state_dict) and runs on the module's device.

    Its input is either the features computed once per sentence (:meth:`prepare`: training,
    where the same sentences come back every epoch) or token ids (:meth:`tokenize`: generation,
    where ``forward`` runs the encoder once per batch)."""

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
        return self._hf[0].to(self._anchor.device)

    def unknown_each(self, texts: Sequence[str]) -> list[list[str]]:
        unk = self.hf_tokenizer.unk_token_id
        return _unknown_words(texts, str.split, lambda words: [
            bool(ids) and all(i == unk for i in ids)
            for ids in self.hf_tokenizer(list(words), add_special_tokens=False)["input_ids"]])

    def unknown_words(self, text: str) -> list[str]:
        return self.unknown_each([text])[0]

    def tokenize(self, texts: Sequence[str]) -> list[np.ndarray | SlpError]:
        """Model input ids (special tokens included, truncated to the model's length) per text,
        in one batched tokenizer call; an unusable text gets its SlpError."""
        out: list = [_non_empty(t) for t in texts]
        usable = [i for i, e in enumerate(out) if e is None]
        if not usable:
            return out
        batch = [texts[i] for i in usable]
        bare = self.hf_tokenizer(batch, add_special_tokens=False)["input_ids"]
        full = self.hf_tokenizer(batch, truncation=True)["input_ids"]
        for i, b, f in zip(usable, bare, full):
            bad = _all_unknown(texts[i], b, self.hf_tokenizer.unk_token_id, f"{self.source}'s vocabulary", "unknown")
            out[i] = bad or np.asarray(f, np.int64)
        return out

    @torch.no_grad()
    def features(self, ids: Sequence[np.ndarray], batch_size: int = 32) -> list[np.ndarray]:
        """(L_i, hidden) float32 last hidden states of token ids, ``batch_size`` texts per pass."""
        from ..tensors import pad

        out = []
        for i in range(0, len(ids), batch_size):
            x, mask = pad(list(ids[i:i + batch_size]), value=0, dtype=torch.long)
            hidden = self(x.to(self._anchor.device), mask.to(self._anchor.device)).cpu().numpy()
            out.extend(hidden[j, :len(t)].copy() for j, t in enumerate(ids[i:i + batch_size]))
        return out

    def prepare(self, texts: Sequence[str], batch_size: int = 32) -> list[np.ndarray]:
        """(L_i, hidden) float32 features per text (special tokens included), checked."""
        return self.features([_raise(x) for x in self.tokenize(texts)], batch_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if x.is_floating_point():  # features computed in prepare
            return x
        with torch.no_grad():  # token ids: the frozen encoder, once for the whole batch
            mask = torch.ones_like(x) if mask is None else mask.long()
            return self.hf_model(input_ids=x, attention_mask=mask).last_hidden_state.float()


def _raise(x):
    if isinstance(x, SlpError):
        raise x
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

    def prepare_each(self, texts: Sequence[str], langs: Sequence[str], features: bool = True,
                     unknown: bool = False) -> list[dict | SlpError]:
        """Checked inputs of each text, tokenized in one batch: ``{"text", "lang"}`` (and the
        ``"unknown"`` words), or the SlpError that says why it cannot be used. ``features``:
        a pretrained encoder's features computed here (training); otherwise its token ids, and
        ``forward`` runs the encoder once per batch (generation)."""
        out: list = []
        for lang in langs:
            try:
                out.append(self.lang_id(lang))
            except SlpError as e:
                out.append(e)
        ok = [i for i, x in enumerate(out) if not isinstance(x, SlpError)]
        tokens = self.embedder.tokenize([texts[i] for i in ok])
        good = [(i, t) for i, t in zip(ok, tokens) if not isinstance(t, SlpError)]
        for i, t in zip(ok, tokens):
            if isinstance(t, SlpError):
                out[i] = t
        if features and self.is_pretrained and good:
            good = list(zip([i for i, _ in good], self.embedder.features([t for _, t in good])))
        words = self.embedder.unknown_each([texts[i] for i, _ in good]) if unknown else [None] * len(good)
        for (i, t), u in zip(good, words):
            out[i] = {"text": t, "lang": out[i], **({"unknown": u} if unknown else {})}
        return out

    def prepare(self, texts: Sequence[str], langs: Sequence[str]) -> list[dict]:
        """Checked inputs of each text (SlpError names the first unusable one)."""
        return [_raise(x) for x in self.prepare_each(texts, langs)]

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
        h = self.proj(self.embedder(x, mask))
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
