"""SOKE's autoregressive multilingual generator (AMG; SOKE, sections 3.3-3.4 and 4): an
encoder-decoder language model (transformers' MBart classes) over the discrete motion tokens of a
frozen decoupled VQ-VAE (``slp train vqvae``), with multi-head decoding and dictionary retrieval.

* Backbone: mBART-large-cc25 in the paper, loaded by hub id or local path with ``--lm`` where the
  user has it (its tokenizer and configuration are stored in the checkpoint; the vocabulary is
  resized for the new tokens). Offline default (``lm = ""``): a small ``MBartConfig`` with random
  weights and slp's corpus-trained WordPiece tokenizer (slp_cli/text/tokenizer.py).
* Vocabulary (section 3.3): text tokens, then the sign-language tokens (``<DGS>``, ``<ASL>``,
  ``<CSL>``), the part-wise start tokens of parallel decoding (``<DGS_body>``...), one token per
  motion code per token stream (``<body_i>``, ``<left_hand_i>``, ``<right_hand_i>``; streams are
  read from the tokenizer's ``codebooks``, so a 4th face stream simply adds its tokens), and,
  offline, a spoken-language code per language (mBART brings its own: ``de_DE``...). Embeddings
  are tied with the LM head. The source is ``text [keywords] </s> <spoken code>`` (mBART's
  convention); every target stream starts with the sign-language token.
* Decoding (``decoding``; table 2): ``multihead`` (the method): at step k the decoder input is
  ``(1 - 2 lambda) E[y_B] + lambda E[y_LH] + lambda E[y_RH]`` of the previous step's tokens and one
  head per stream predicts that stream's token of step k. With other streams than the three:
  every hand stream weighs lambda and the others share ``1 - n_hands * lambda`` equally (a 4th face
  stream splits the body's weight with it). ``sequential``: one stream of interleaved tokens
  (3K steps). ``parallel``: the streams decoded independently by the shared decoder, each from
  its part-wise start token, no cross-part information.
* Heads (``heads``): ``separate`` (the paper: one fully connected layer per stream) or ``shared``
  (the released code: the tied LM head restricted by a vocabulary mask). Either way a stream's
  head can only emit its own codes and end-of-sentence (the part mask, :meth:`SOKE.part_mask`);
  the released code also lets it emit specials and language tokens, which sign nothing.
* Loss: the cross-entropy of each stream (mean over its positions), summed with weight 1.
  Padding is ignored (the released code's -100 mask targets id 0 while mBART's pad is id 1, so
  it trains on padding: fixed here).
* Inference: greedy (the paper) or beam search (an extra), at most ``max_motion_tokens`` = 100
  token steps (400 frames), with a key/value cache (the released code has none). A sample stops
  when ANY head emits end-of-sentence (the paper); ``stop="body"`` is the released code's rule
  (only the body head), but here per sample (the released code reduces over the batch, so one
  finished sample truncated the others). No stream may end at the first step. A stream that ends
  before the others (body rule, parallel decoding) is padded by repeating its last frame. Beam
  search scores a multi-head step as the product of the heads' probabilities, ending with
  probability 1 - prod(1 - p_eos) (any head) or p_eos of the body head.
* Retrieval (section 3.4; ``retrieval``): a token dictionary built at training from a sign
  dictionary of ``slp dict build`` (``--dictionary DICT.h5``): every entry tokenized by the frozen
  VQ-VAE and, per lemma key, the entry with the lowest reconstruction error kept. It is stored in
  the model's data state, so generation needs no extra file. A sentence is looked up word by
  word with slp's lemmatizers (simplemma; jieba for Chinese) by its surface key, then its lemma
  key; per word found, in order and without repeats, the source gets the prefix
  "Schlüsselwort i," / "Key word i," / "关键词 i," (the released code's) and the word's token
  triplets. ``max_keywords`` / ``keyword_steps`` 0 = every word and every step (the paper); the
  released code uses 3 and 10 (steps subsampled by np.linspace).
* Optimizer (section 4): AdamW lr 2e-4, betas (0.9, 0.99), weight decay 0, cosine to 1e-6 over
  the run.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.loader import SequenceDataset
from ..errors import SlpError
from ..tensors import pad
from . import PoseTokenizer, Signed, TextToPose, TrainingConfig, config_dict, get_model_class, load_discrete_tokenizer, option, register

DECODINGS = ("multihead", "sequential", "parallel")
HEADS = ("separate", "shared")
STOPS = ("any", "body")
TOKEN_PREFIX = "tokens_"
# The released code's keyword prefixes (one per spoken language; English for the others).
KEYWORD_PREFIX = {"de": "Schlüsselwort {i},", "zh": "关键词 {i},", "en": "Key word {i},"}
MAX_PREFIXES = 32  # keyword numbers known to the offline tokenizer


@dataclass
class SOKEConfig(TrainingConfig):
    # --- language model ---
    lm: str = option("", "Pretrained encoder-decoder LM by hub id (available offline) or save_pretrained folder "
                     "(the paper: facebook/mbart-large-cc25). Default: a small MBart trained from scratch with "
                     "slp's offline tokenizer.")
    vocab_size: int = option(8000, "WordPiece vocabulary of the offline text tokenizer.")
    d_model: int = option(256, "Offline MBart width (mBART-large: 1024).")
    layers: int = option(3, "Offline MBart encoder and decoder layers each (mBART-large: 12).")
    attention_heads: int = option(4, "Offline MBart attention heads (mBART-large: 16).")
    ffn: int = option(1024, "Offline MBart feed-forward width (mBART-large: 4096).")
    dropout: float = option(0.1, "Dropout.")
    # --- decoding (section 3.3) ---
    decoding: str = option("multihead", "multihead (the method), sequential or parallel (table 2).")
    mix: float = option(1 / 3, "Multi-head decoding: weight lambda of each hand's embedding in the decoder input "
                        "(section 3.3: 1/3; the released code: 0.4).", flag="lambda")
    heads: str = option("separate", "Multi-head heads: separate fully connected layers (the paper) or the shared "
                        "tied LM head with part masks (the released code).")
    max_motion_tokens: int = option(100, "Longest generated sequence in token steps (100 = 400 frames).")
    # --- retrieval (section 3.4) ---
    retrieval: bool = option(True, "Append retrieved dictionary signs' tokens to the source (needs --dictionary).")
    max_keywords: int = option(0, "Keywords per sentence, 0 = every word found (the paper; the released code: 3).")
    keyword_steps: int = option(0, "Token steps per keyword, 0 = all (the paper; the released code: 10, "
                                "subsampled).")
    # --- optimizer (section 4) ---
    min_lr: float = option(1e-6, "End of the cosine learning-rate schedule.")
    beta2: float = option(0.99, "AdamW beta2 (0.99).")
    weight_decay: float = option(0.0, "AdamW weight decay (0).")

    def __post_init__(self):
        if self.decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {', '.join(DECODINGS)}, not {self.decoding!r}")
        if self.heads not in HEADS:
            raise ValueError(f"heads must be one of {', '.join(HEADS)}, not {self.heads!r}")
        if not 0 < self.mix < 0.5:
            raise ValueError(f"lambda must be in (0, 0.5) (section 3.3), not {self.mix}")
        if self.d_model % self.attention_heads:
            raise ValueError(f"d_model {self.d_model} must be divisible by attention_heads {self.attention_heads}")
        if self.max_motion_tokens < 1 or self.max_keywords < 0 or self.keyword_steps < 0:
            raise ValueError("max_motion_tokens must be >= 1, max_keywords and keyword_steps >= 0")


PRESETS = {
    # Section 4: batch 32 per GPU (x 6), 150 epochs of the merged corpus; the step count depends on
    # the corpus: 100k steps of 32 is ~50 epochs of PHOENIX + CSL-Daily + How2Sign at 6 x 32.
    "default": dict(batch_size=32, max_steps=100000, eval_every=1000, checkpoint_every=2000, patience=20),
    # The demo recipe: ~70 s of one CPU core on the synthetic demo corpus (1,080 sentences).
    "demo": dict(d_model=128, layers=2, attention_heads=4, ffn=256, dropout=0.1, vocab_size=2000, batch_size=16,
                 max_steps=600, lr=1e-3, eval_every=200, checkpoint_every=600, patience=0, max_motion_tokens=40),
    # Tests: seconds on one CPU core.
    "tiny": dict(d_model=64, layers=1, attention_heads=2, ffn=128, dropout=0.0, vocab_size=1000, batch_size=8,
                 max_steps=300, lr=2e-3, eval_every=100, checkpoint_every=100, patience=0, log_every=10,
                 max_motion_tokens=30),
}


def _quiet_transformers():
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def keyword_prefix(lang: str, i: int) -> str:
    from ..text.lemmas import spoken_language

    return KEYWORD_PREFIX.get(spoken_language(lang), KEYWORD_PREFIX["en"]).format(i=i)


def stream_weights(streams: list[str], mix: float) -> list[float]:
    """Multi-head mixing weights: lambda per hand stream, the rest shared by the others (section 3.3)."""
    hands = [s for s in streams if "hand" in s]
    others = len(streams) - len(hands)
    if not hands or not others:
        return [1.0 / len(streams)] * len(streams)
    rest = (1.0 - mix * len(hands)) / others
    return [mix if s in hands else rest for s in streams]


def subsample(ids: np.ndarray, steps: int) -> np.ndarray:
    """At most ``steps`` token steps of a keyword, evenly spaced (the released code's np.linspace)."""
    if steps <= 0 or len(ids) <= steps:
        return ids
    return ids[np.linspace(0, len(ids) - 1, steps).round().astype(int)]


# --- building the token dictionary ----------------------------------------------------------------

@torch.no_grad()
def token_dictionary(tokenizer: PoseTokenizer, dictionary, langs: list[str]) -> dict:
    """{lang: {key: {"gloss", "tokens": {array: [ids]}, "error"}}}: every sign entry of ``dictionary``
    (slp_cli.dictionary.Dictionary) tokenized; per lemma key the entry with the lowest
    reconstruction error (SOKE, section 3.4). Clips shorter than the tokenizer's minimum are left out."""
    from ..text.lemmas import match_key

    tokenizer.eval()
    device = next(tokenizer.parameters()).device
    out: dict[str, dict] = {}
    for lang in langs:
        best: dict[str, dict] = {}
        for e in dictionary.entries_for(lang):
            if not e.text or e.num_frames < tokenizer.min_frames:
                continue
            pose = torch.as_tensor(np.asarray(e.pose, dtype=np.float32), device=device)
            arrays = tokenizer.encode(pose)
            rec = tokenizer.decode(arrays, num_frames=len(pose)).float()
            err = torch.linalg.vector_norm(torch.nan_to_num(rec - pose, nan=0.0), dim=-1)
            seen = torch.isfinite(pose).all(-1)
            error = float((err * seen).sum() / seen.sum().clamp(min=1))
            tokens = {k: v.long().cpu().tolist() for k, v in arrays.items()}
            for key in {e.text, " ".join(match_key(w) for w in e.text.split())}:
                if key not in best or error < best[key]["error"]:
                    best[key] = {"gloss": e.glosses[0], "tokens": tokens, "error": error}
        if best:
            out[lang] = best
    return out


# --- the model -------------------------------------------------------------------------------------

@dataclass
class SOKEOptions:
    beam: int = option(1, "Beam size (1: greedy decoding, the paper's).")
    stop: str = option("any", "Stop a sentence when any head emits end-of-sentence (the paper) or only the body "
                       "head (the released code's rule, per sentence).")
    cache: bool = option(True, "Key/value cache in the decoder (same tokens, faster).")
    length_penalty: float = option(1.0, "Beam search: scores divided by length ** this.")

    def __post_init__(self):
        if self.beam < 1:
            raise ValueError("beam must be >= 1")
        if self.stop not in STOPS:
            raise ValueError(f"stop must be one of {', '.join(STOPS)}, not {self.stop!r}")


@register("soke")
class SOKE(TextToPose):
    """SOKE: multilingual autoregressive LM over decoupled VQ-VAE tokens, multi-head decoding, dictionary retrieval."""

    Config = SOKEConfig
    GenerateOptions = SOKEOptions
    presets = PRESETS
    inputs = {"tokenizer": "Frozen discrete pose tokenizer: a VQ-VAE run directory from `slp train vqvae` (its "
                           "weights are copied into the generator).",
              "dictionary": "Sign dictionary from `slp dict build` for retrieval (section 3.4); tokenized at "
                            "training and stored in the model."}
    shortcuts = {"released-code": {"mix": 0.4, "heads": "shared", "max_keywords": 3, "keyword_steps": 10}}

    def __init__(self, config: SOKEConfig, data: dict | None = None, lm=None, lm_tokenizer=None):
        """``data`` (from_data): ``tokenizer_model`` / ``tokenizer_config`` / ``tokenizer_data`` (the
        frozen VQ-VAE), ``streams`` and ``codebooks``, ``frames_per_token``, ``langs``,
        ``text_tokenizer`` (offline) or ``lm_config`` (pretrained), ``base_vocab``, ``extra_tokens``,
        ``spoken_ids``, ``token_dictionary``, ``max_source``."""
        super().__init__(config, data)
        data = self.data
        if not data.get("tokenizer_model") or not data.get("streams") or not data.get("langs"):
            raise SlpError("a soke generator is built from data: train it with `slp train generator --arch soke "
                           "--tokenizer VQ_DIR` (its data lacks the tokenizer, streams or languages)")
        cls = get_model_class(data["tokenizer_model"])
        self.tokenizer = cls(cls.Config(**data["tokenizer_config"]), data.get("tokenizer_data"))
        self.tokenizer.requires_grad_(False)
        self.streams: list[str] = list(data["streams"])
        self.weights = stream_weights([s[len(TOKEN_PREFIX):] if s.startswith(TOKEN_PREFIX) else s
                                       for s in self.streams], config.mix)
        self._text = None
        self._hf_tokenizer = lm_tokenizer
        from .slt import PackedFiles

        self.lm_files = PackedFiles()
        vocab = data["base_vocab"] + len(data["extra_tokens"])
        if config.lm:
            transformers = _quiet_transformers()
            if lm is None:
                lm = transformers.MBartForConditionalGeneration(transformers.MBartConfig(**data["lm_config"]))
            lm.resize_token_embeddings(vocab)
            if lm_tokenizer is not None:
                with tempfile.TemporaryDirectory() as d:
                    lm_tokenizer.save_pretrained(d)
                    self.lm_files.blob = PackedFiles.pack(Path(d))
            self.pad_id, self.eos_id = int(lm.config.pad_token_id), int(lm.config.eos_token_id)
        else:
            from ..text.tokenizer import EOS, PAD

            transformers = _quiet_transformers()
            self.pad_id, self.eos_id = PAD, EOS
            positions = max(1024, 3 * config.max_motion_tokens + 8)  # mBART's 1024, or a sequential target
            lm = transformers.MBartForConditionalGeneration(transformers.MBartConfig(
                vocab_size=vocab, d_model=config.d_model, encoder_layers=config.layers, decoder_layers=config.layers,
                encoder_attention_heads=config.attention_heads, decoder_attention_heads=config.attention_heads,
                encoder_ffn_dim=config.ffn, decoder_ffn_dim=config.ffn, dropout=config.dropout,
                attention_dropout=0.0, activation_dropout=0.0, max_position_embeddings=positions,
                pad_token_id=PAD, bos_token_id=2, eos_token_id=EOS, decoder_start_token_id=EOS,
                scale_embedding=True, tie_word_embeddings=True))
        self.lm = lm
        d = lm.config.d_model
        ids = {t: data["base_vocab"] + i for i, t in enumerate(data["extra_tokens"])}
        self.token_ids = ids
        # per stream: the ids its head may emit (its codes, then end-of-sentence) -- the part mask
        for s in self.streams:
            self.register_buffer(f"allowed_{s}", torch.tensor(
                [ids[self.code_token(s, i)] for i in range(self.codebooks[s])] + [self.eos_id]), persistent=False)
        self.separate = nn.ModuleList(nn.Linear(d, self.codebooks[s] + 1) for s in self.streams) \
            if config.heads == "separate" else None

    # --- names and sizes ------------------------------------------------------------------------
    @property
    def codebooks(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.data["codebooks"].items()}

    @staticmethod
    def code_token(stream: str, i: int) -> str:
        name = stream[len(TOKEN_PREFIX):] if stream.startswith(TOKEN_PREFIX) else stream
        return f"<{name}_{i}>"

    @staticmethod
    def sign_token(lang: str, stream: str | None = None) -> str:
        if stream is None:
            return f"<{lang.upper()}>"
        return f"<{lang.upper()}_{stream[len(TOKEN_PREFIX):] if stream.startswith(TOKEN_PREFIX) else stream}>"

    def allowed(self, s: int) -> torch.Tensor:
        return getattr(self, f"allowed_{self.streams[s]}")

    def part_mask(self, stream: str) -> torch.Tensor:
        """(V,) bool: the vocabulary ids the head of ``stream`` may emit."""
        mask = torch.zeros(self.lm.config.vocab_size, dtype=torch.bool)
        mask[self.allowed(self.streams.index(stream)).cpu()] = True
        return mask

    @property
    def frames_per_token(self) -> int:
        return int(self.data["frames_per_token"])

    @property
    def max_frames(self) -> int:
        return self.config.max_motion_tokens * self.frames_per_token

    # --- building from data ------------------------------------------------------------------------
    @classmethod
    def from_data(cls, config: SOKEConfig, samples: list, **inputs) -> "SOKE":
        from ..text.lemmas import spoken_language
        from ..text.tokenizer import TextTokenizer

        cls.check_inputs(inputs)
        path = inputs.get("tokenizer")
        tokenizer = load_discrete_tokenizer(path, "soke")
        if config.retrieval and inputs.get("dictionary") is None:
            raise SlpError("soke retrieves dictionary signs (SOKE, section 3.4): give --dictionary DICT.h5 (from "
                           "`slp dict build`), or train without retrieval (--no-retrieval)")
        empty = [s.id for s in samples if not s.text.strip()]
        if empty:
            raise SlpError(f"training sample '{empty[0]}' has no text ({len(empty)} such); a text-to-pose model "
                           "needs the sentence of every training sample")
        short = [s.id for s in samples if s.num_frames < tokenizer.min_frames]
        if short:
            raise SlpError(f"training sample '{short[0]}' has fewer frames than the tokenizer's minimum "
                           f"{tokenizer.min_frames}; drop samples this short")
        langs = sorted({s.lang for s in samples})
        for s in samples:
            try:
                spoken_language(s.lang)
            except SlpError as e:
                raise SlpError(f"sample '{s.id}': {e}") from None
        streams = list(tokenizer.array_names)
        probe = tokenizer.encode(torch.as_tensor(np.nan_to_num(samples[0].pose[:tokenizer.min_frames * 4]),
                                                 dtype=torch.float32))
        data = {"tokenizer": str(path), "tokenizer_model": tokenizer.name,
                "tokenizer_config": config_dict(tokenizer.config), "tokenizer_data": dict(tokenizer.data),
                "streams": streams, "codebooks": {s: int(tokenizer.codebooks[s]) for s in streams},
                "frames_per_token": int(getattr(tokenizer, "downsample", 0)
                                        or round(tokenizer.min_frames * 4 / len(probe[streams[0]]))),
                "langs": langs}
        if config.retrieval:
            from ..dictionary import load_dictionary

            tdict = token_dictionary(tokenizer, load_dictionary(inputs["dictionary"]), langs)
            if not tdict:
                raise SlpError(f"{inputs['dictionary']}: no usable sign entry for the training languages "
                               f"{', '.join(langs)}; build the dictionary from the same languages (slp dict build)")
            data["dictionary"] = str(inputs["dictionary"])
            data["token_dictionary"] = tdict
        lm = lm_tok = None
        extra = []
        if config.lm:
            from .slt import MBART_CODES, load_pretrained_lm

            lm, lm_tok = load_pretrained_lm(config.lm)
            if lm.config.model_type != "mbart":
                raise SlpError(f"{config.lm}: a '{lm.config.model_type}' model; soke's decoder inputs are mBART's "
                               "(give an mBART, e.g. facebook/mbart-large-cc25)")
            data["lm_config"] = lm.config.to_dict()
            data["base_vocab"] = len(lm_tok)
            spoken = {}
            for lang in langs:
                code = MBART_CODES.get(spoken_language(lang))
                tid = lm_tok.convert_tokens_to_ids(code) if code else None
                if isinstance(tid, int) and tid != lm_tok.unk_token_id:
                    spoken[lang] = ["id", int(tid)]
                else:
                    spoken[lang] = ["token", f"<{spoken_language(lang)}>"]
        else:
            prefixes = [keyword_prefix(l, i) for l in langs for i in range(1, MAX_PREFIXES + 1)] if config.retrieval \
                else []
            text = TextTokenizer.train([s.text for s in samples] + prefixes, langs, config.vocab_size)
            data["text_tokenizer"] = text.to_json()
            data["base_vocab"] = text.vocab_size
            spoken = {lang: ["token", f"<{spoken_language(lang)}>"] for lang in langs}
        extra += sorted({v for k, v in spoken.values() if k == "token"})
        extra += [cls.sign_token(l) for l in langs] + [cls.sign_token(l, s) for l in langs for s in streams]
        extra += [cls.code_token(s, i) for s in streams for i in range(data["codebooks"][s])]
        data["extra_tokens"] = extra
        data["spoken"] = spoken
        model = cls(config, data, lm=lm, lm_tokenizer=lm_tok)
        model.tokenizer.load_state_dict(tokenizer.state_dict())
        model.data["max_source"] = max(len(model.source(s.text, s.lang)[0]) for s in samples)
        return model

    def train(self, mode: bool = True):
        super().train(mode)
        self.tokenizer.eval()  # frozen
        return self

    # --- text and retrieval ----------------------------------------------------------------------
    @property
    def text_tokenizer(self):
        if self._text is None and self.data.get("text_tokenizer"):
            from ..text.tokenizer import TextTokenizer

            self._text = TextTokenizer.from_json(self.data["text_tokenizer"])
        return self._text

    @property
    def hf_tokenizer(self):
        if self._hf_tokenizer is None:
            if not self.lm_files.blob:
                raise SlpError("this soke model holds no tokenizer of its language model")
            transformers = _quiet_transformers()
            with tempfile.TemporaryDirectory() as d:
                self._hf_tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.lm_files.unpack(Path(d))))
        return self._hf_tokenizer

    def text_ids(self, text: str) -> list[int]:
        if self.text_tokenizer is not None:
            return self.text_tokenizer.encode(text)
        return list(self.hf_tokenizer(text, add_special_tokens=False)["input_ids"])

    def unk_id(self) -> int:
        from ..text.tokenizer import UNK

        return UNK if self.text_tokenizer is not None else int(self.hf_tokenizer.unk_token_id)

    def spoken_id(self, lang: str) -> int:
        kind, value = self.data["spoken"][lang]
        return int(value) if kind == "id" else self.token_ids[value]

    def keywords(self, text: str, lang: str) -> list[tuple[str, dict]]:
        """(word, entry) of the words of ``text`` found in the token dictionary, in order, without
        repeats, at most ``max_keywords`` (0: all): the surface key first, then the lemma key."""
        from ..text.lemmas import match_key, tokenize, word_key

        table = self.data.get("token_dictionary", {}).get(lang, {})
        found, seen = [], set()
        for w in tokenize(text, lang):
            entry = table.get(match_key(w)) or table.get(word_key(w, lang))
            if entry is None or entry["gloss"] in seen:
                continue
            seen.add(entry["gloss"])
            found.append((w, entry))
            if self.config.max_keywords and len(found) >= self.config.max_keywords:
                break
        return found

    def source(self, text: str, lang: str) -> tuple[list[int], list[tuple[str, dict]]]:
        """Encoder ids ``text [keyword i, triplets...] </s> <spoken>`` and the keywords used."""
        # the LM's positions bound the source: keywords that no longer fit are left out, then text
        room = int(self.lm.config.max_position_embeddings) - 2
        ids = self.text_ids(text)[:room]
        found = self.keywords(text, lang) if self.config.retrieval else []
        used = []
        for i, (word, entry) in enumerate(found, 1):
            block = self.text_ids(keyword_prefix(lang, i))
            steps = [subsample(np.asarray(entry["tokens"][s]), self.config.keyword_steps) for s in self.streams]
            for t in range(min(len(x) for x in steps)):
                block += [self.token_ids[self.code_token(s, int(x[t]))] for s, x in zip(self.streams, steps)]
            if len(ids) + len(block) > room:
                break
            ids += block
            used.append((word, entry))
        return ids + [self.eos_id, self.spoken_id(lang)], used

    def check_lang(self, lang: str) -> None:
        if lang not in self.langs:
            raise SlpError(f"language {lang!r} was not in this model's training data (it knows "
                           f"{', '.join(self.langs)}): give --lang one of those")

    # --- data ------------------------------------------------------------------------------------
    @torch.no_grad()
    def stream_tokens(self, pose: torch.Tensor) -> torch.Tensor:
        """(K, S) token ids of one (T, 178, 3) sequence by the frozen tokenizer (full precision)."""
        with torch.autocast(pose.device.type, enabled=False):
            arrays = self.tokenizer.encode(pose.float())
        return torch.stack([arrays[s].long() for s in self.streams], -1)

    def motion_tokens(self, pose: np.ndarray) -> np.ndarray:
        """(K, S) token ids of one (T, 178, 3) numpy sequence."""
        device = next(self.tokenizer.parameters()).device
        return self.stream_tokens(torch.as_tensor(np.asarray(pose, dtype=np.float32), device=device)).cpu().numpy()

    def make_dataset(self, samples):
        """Items: source ids and the poses (cut to ``max_frames``). The motion tokens are computed
        in the step, so that they come from the loaded tokenizer weights (also on resume, where
        the dataset is made before the checkpoint is loaded) and on the training device."""
        items = []
        for s in samples:
            self.check_lang(s.lang)
            if s.num_frames < self.tokenizer.min_frames:
                raise SlpError(f"sample '{s.id}' has {s.num_frames} frames, fewer than the tokenizer's minimum "
                               f"{self.tokenizer.min_frames}; drop samples this short")
            src, _ = self.source(s.text, s.lang)
            items.append({"src": np.asarray(src), "pose": np.asarray(s.pose[: self.max_frames], dtype=np.float32),
                          "lang": s.lang})
        return SequenceDataset(items, np.array([len(i["pose"]) for i in items]))

    def collate(self, items):
        src, src_mask = pad([i["src"] for i in items], self.pad_id, torch.long)
        pose, frames = pad([i["pose"] for i in items], value=np.nan)
        starts = [[self.token_ids[self.sign_token(i["lang"])]] + [self.token_ids[self.sign_token(i["lang"], s)]
                                                                   for s in self.streams] for i in items]
        return {"src": src, "src_mask": src_mask, "pose": pose, "lengths": frames.sum(1), "starts": torch.tensor(starts),
                "batch_size": len(items), "num_frames": int(frames.sum())}

    def targets(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder inputs (vocabulary ids) and targets (each stream's local ids: its codes, then
        end-of-sentence at the codebook size; -100 for padding) of the batch's decoding."""
        from torch.nn.utils.rnn import pad_sequence

        n, dev = len(self.streams), batch["pose"].device
        codes = [self.stream_tokens(batch["pose"][i, :t])[: self.config.max_motion_tokens]
                 for i, t in enumerate(batch["lengths"].tolist())]
        offsets = torch.tensor([self.token_ids[self.code_token(s, 0)] for s in self.streams], device=dev)
        ends = torch.tensor([self.codebooks[s] for s in self.streams], device=dev)
        starts = batch["starts"]
        if self.config.decoding == "multihead":
            dec = [torch.cat([starts[i, :1].expand(1, n), c + offsets]) for i, c in enumerate(codes)]
            tgt = [torch.cat([c, ends[None]]) for c in codes]
        elif self.config.decoding == "sequential":  # one stream: B1 LH1 RH1 B2 ...
            dec = [torch.cat([starts[i, :1], (c + offsets).reshape(-1)]) for i, c in enumerate(codes)]
            tgt = [torch.cat([c.reshape(-1), ends[:1]]) for c in codes]
        else:  # parallel: one row per (sample, stream), sample-major
            dec = [torch.cat([starts[i, 1 + j:2 + j], c[:, j] + offsets[j]]) for i, c in enumerate(codes)
                   for j in range(n)]
            tgt = [torch.cat([c[:, j], ends[j:j + 1]]) for c in codes for j in range(n)]
        return (pad_sequence(dec, batch_first=True, padding_value=self.pad_id),
                pad_sequence(tgt, batch_first=True, padding_value=-100))

    # --- forward ---------------------------------------------------------------------------------
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Decoder input embeddings: (N, L) ids, or (N, L, S) ids mixed with the stream weights."""
        e = self.lm.get_input_embeddings()(ids)
        if ids.dim() == 3:
            w = torch.tensor(self.weights, dtype=e.dtype, device=e.device)
            e = (e * w[:, None]).sum(-2)
        return e

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        return self.lm.model.encoder(input_ids=src, attention_mask=src_mask.long()).last_hidden_state

    def decode_hidden(self, embeds, memory, src_mask, cache=None, use_cache=False):
        out = self.lm.model.decoder(inputs_embeds=embeds, encoder_hidden_states=memory,
                                    encoder_attention_mask=src_mask.long(), cache=cache, use_cache=use_cache)
        return out.last_hidden_state, (out.past_key_values if use_cache else None)

    def head(self, h: torch.Tensor, s: int) -> torch.Tensor:
        """Logits (..., codes_s + 1) of stream ``s``'s head: its codes, then end-of-sentence."""
        if self.separate is not None:
            return self.separate[s](h)
        allowed = self.allowed(s)
        return F.linear(h, self.lm.get_output_embeddings().weight[allowed]) + self.lm.final_logits_bias[0, allowed]

    def _losses(self, batch) -> dict[str, torch.Tensor]:
        memory = self.encode(batch["src"], batch["src_mask"])
        src_mask = batch["src_mask"]
        n = len(self.streams)
        if self.config.decoding == "parallel":
            memory, src_mask = memory.repeat_interleave(n, 0), src_mask.repeat_interleave(n, 0)
        dec, tgt = self.targets(batch)
        h, _ = self.decode_hidden(self.embed(dec), memory, src_mask)
        losses = {}
        for s, name in enumerate(self.streams):
            if self.config.decoding == "multihead":
                hs, ts = h, tgt[..., s]
            elif self.config.decoding == "sequential":  # positions s, s + S, ... predict stream s
                hs, ts = h[:, s::n], tgt[:, s::n]
            else:
                hs, ts = h[s::n], tgt[s::n]
            logits = self.head(hs, s).float()
            losses[name] = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ts.reshape(-1), ignore_index=-100)
        loss = sum(losses.values())
        return {"loss": loss, **{f"ce_{k[len(TOKEN_PREFIX):] if k.startswith(TOKEN_PREFIX) else k}": v.detach()
                                 for k, v in losses.items()}}

    def training_step(self, batch):
        return self._losses(batch)

    def configure_optimizers(self):
        cfg = self.config
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, cfg.beta2), weight_decay=cfg.weight_decay)
        floor = cfg.min_lr / cfg.lr

        def cosine(step):  # reads max_steps at call time: a resume with more steps stretches it
            t = min(step / max(self.config.max_steps, 1), 1.0)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

        return opt, torch.optim.lr_scheduler.LambdaLR(opt, cosine)

    # --- generation ------------------------------------------------------------------------------
    def prepare(self, text: str, lang: str) -> dict:
        if not text or not text.strip():
            raise SlpError("empty text: nothing to sign")
        self.check_lang(lang)
        ids = self.text_ids(text)
        unk = self.unk_id()
        if not ids or all(i == unk for i in ids):
            raise SlpError(f"{text!r}: every token is unknown to this model's vocabulary (all [UNK]); write the "
                           "sentence in the language of the training texts")
        src, found = self.source(text, lang)
        from ..text.lemmas import tokenize

        unknown = [w for w in tokenize(text, lang) if all(i == unk for i in self.text_ids(w))]
        return {"src": np.asarray(src), "lang": lang, "keywords": found, "unknown": unknown}

    @torch.no_grad()
    def generate_tokens(self, prepared: list[dict], options: SOKEOptions) -> list[np.ndarray]:
        """Per sentence the (K, S) motion token ids (lengths per stream in ``lengths``)."""
        self.eval()
        device = self.lm.device
        src, src_mask = pad([p["src"] for p in prepared], self.pad_id, torch.long)
        src, src_mask = src.to(device), src_mask.to(device)
        memory = self.encode(src, src_mask)
        if self.config.decoding == "multihead":
            starts = torch.tensor([self.token_ids[self.sign_token(p["lang"])] for p in prepared], device=device)
            if options.beam > 1:
                return self._multihead_beam(memory, src_mask, starts, options)
            return self._multihead_greedy(memory, src_mask, starts, options)
        return self._search(prepared, memory, src_mask, options)

    def _multihead_greedy(self, memory, src_mask, starts, options) -> list[tuple[np.ndarray, list[int]]]:
        b, n, k_max = len(starts), len(self.streams), self.config.max_motion_tokens
        cur = starts[:, None].expand(b, n)
        done = torch.zeros(b, dtype=torch.bool, device=memory.device)
        lengths = torch.full((b, n), k_max, dtype=torch.long, device=memory.device)
        ended = torch.zeros(b, n, dtype=torch.bool, device=memory.device)
        out, decoder = [], _Decoder(self, memory, src_mask, options.cache)
        for k in range(k_max):
            h = decoder(self.embed(cur[:, None]))
            preds = []
            for s in range(n):
                logits = self.head(h, s).float()
                if k == 0:
                    logits[:, -1] = float("-inf")  # at least one token step
                preds.append(logits.argmax(-1))
            pred = torch.stack(preds, -1)  # local ids; codebook size = end-of-sentence
            eos = pred == torch.tensor([self.codebooks[s] for s in self.streams], device=pred.device)
            new_end = eos & ~ended & ~done[:, None]
            lengths = torch.where(new_end, torch.full_like(lengths, k), lengths)
            ended |= eos
            stop = eos.any(-1) if options.stop == "any" else eos[:, 0]
            stopping = stop & ~done
            if options.stop == "any":  # every stream ends with the first head that ends
                lengths = torch.where(stopping[:, None], torch.full_like(lengths, k), lengths)
            else:
                lengths[:, 0] = torch.where(stopping, torch.full_like(lengths[:, 0], k), lengths[:, 0])
            out.append(pred)
            done |= stop
            if done.all():
                break
            cur = torch.stack([self.allowed(s)[pred[:, s]] for s in range(n)], -1)
        codes = torch.stack(out, 1).cpu().numpy()  # (B, steps, S)
        lengths = torch.minimum(lengths, lengths[:, :1]).cpu().numpy()  # no stream outlasts the body
        return [(codes[i], lengths[i].tolist()) for i in range(b)]

    def _multihead_beam(self, memory, src_mask, starts, options) -> list[tuple[np.ndarray, list[int]]]:
        """Beam search over joint steps (module docstring): ``beam`` hypotheses per sentence."""
        b, n, k_max, beam = len(starts), len(self.streams), self.config.max_motion_tokens, options.beam
        dev = memory.device
        memory, src_mask = memory.repeat_interleave(beam, 0), src_mask.repeat_interleave(beam, 0)
        seqs = torch.zeros(b * beam, 0, n, dtype=torch.long, device=dev)
        cur = starts.repeat_interleave(beam)[:, None].expand(-1, n)
        scores = torch.zeros(b, beam, device=dev)
        scores[:, 1:] = float("-inf")
        finished: list[list[tuple[float, np.ndarray]]] = [[] for _ in range(b)]
        done = [False] * b
        decoder = _Decoder(self, memory, src_mask, options.cache)
        for k in range(k_max):
            h = decoder(self.embed(cur[:, None]))
            logp = [self.head(h, s).float().log_softmax(-1) for s in range(n)]
            if options.stop == "any":
                p_end = 1 - torch.stack([(1 - lp[:, -1].exp()) for lp in logp], -1).prod(-1)
                cont = [lp[:, :-1] for lp in logp]
            else:
                p_end = logp[0][:, -1].exp()
                cont = [logp[0][:, :-1]] + [lp[:, :-1].log_softmax(-1) for lp in logp[1:]]
            end_score = torch.log(p_end.clamp(min=1e-30)) if k > 0 else torch.full_like(p_end, float("-inf"))
            # joint continuations: top `beam` codes per stream, every combination
            tops = [c.topk(min(beam, c.shape[-1]), -1) for c in cont]
            joint = tops[0].values
            idx = tops[0].indices[..., None]
            for t in tops[1:]:
                joint = (joint[..., None] + t.values[:, None]).flatten(1)
                idx = torch.cat([idx.repeat_interleave(t.values.shape[1], 1),
                                 t.indices.repeat(1, idx.shape[1])[..., None]], -1)
            cand = (scores.reshape(-1, 1) + joint).view(b, -1)  # (b, beam * combos)
            combos = joint.shape[1]
            ends = (scores.reshape(-1) + end_score).view(b, beam)
            for i in range(b):
                if done[i]:
                    continue
                for j in range(beam):
                    if torch.isfinite(ends[i, j]):
                        finished[i].append((ends[i, j].item() / max(k, 1) ** options.length_penalty,
                                            seqs[i * beam + j].cpu().numpy()))
            top = cand.topk(beam, -1)
            src_row = top.indices // combos
            rows = (torch.arange(b, device=dev)[:, None] * beam + src_row).reshape(-1)
            picked = idx.view(b, beam * combos, n).gather(1, top.indices[..., None].expand(-1, -1, n)).reshape(-1, n)
            seqs = torch.cat([seqs[rows], picked[:, None]], 1)
            scores = top.values
            decoder.reorder(rows)
            cur = torch.stack([self.allowed(s)[picked[:, s]] for s in range(n)], -1)
            for i in range(b):
                if done[i] or len(finished[i]) < beam:
                    continue
                worst = sorted(s for s, _ in finished[i])[-beam]
                done[i] = scores[i].max().item() / (k + 1) ** options.length_penalty <= worst
            if all(done):
                break
        out = []
        for i in range(b):
            hyps = finished[i] or [(0.0, seqs[i * beam + int(scores[i].argmax())].cpu().numpy())]
            codes = max(hyps, key=lambda x: x[0])[1]
            out.append((codes, [len(codes)] * n))
        return out

    def _search(self, prepared, memory, src_mask, options) -> list[tuple[np.ndarray, list[int]]]:
        """Sequential and parallel decoding through slp's greedy / beam search (slp_cli/translate.py)."""
        from ..translate import beam_search, greedy_search

        n, b = len(self.streams), len(prepared)
        parallel = self.config.decoding == "parallel"
        if parallel:
            prefix = torch.tensor([[self.token_ids[self.sign_token(p["lang"], s)]] for p in prepared
                                   for s in self.streams], device=memory.device)
            memory, src_mask = memory.repeat_interleave(n, 0), src_mask.repeat_interleave(n, 0)
            max_new = self.config.max_motion_tokens + 1
        else:
            prefix = torch.tensor([[self.token_ids[self.sign_token(p["lang"])]] for p in prepared],
                                  device=memory.device)
            max_new = n * self.config.max_motion_tokens + 1
        step = _Step(self, memory, src_mask, parallel, options.cache)
        if options.beam > 1:
            step.beam(options.beam)
            rows = beam_search(step, prefix, self.eos_id, max_new, options.beam, options.length_penalty)
        else:
            rows = greedy_search(step, prefix, self.eos_id, max_new)
        to_code = {}
        for s, name in enumerate(self.streams):
            for i, tid in enumerate(self.allowed(s)[:-1].tolist()):
                to_code[tid] = (s, i)
        out = []
        for i in range(b):
            if parallel:
                streams = [[to_code[t][1] for t in rows[i * n + s] if t in to_code][: self.config.max_motion_tokens]
                           for s in range(n)]
                lengths = [len(x) for x in streams]
                if options.stop == "any":
                    lengths = [min(lengths)] * n
                else:
                    lengths = [min(x, lengths[0]) for x in lengths]
                k = max(max(lengths), 1)
                codes = np.zeros((k, n), dtype=np.int64)
                for s, x in enumerate(streams):
                    x = x[:lengths[s]] or [0]
                    codes[:, s] = (x + [x[-1]] * k)[:k]
                out.append((codes, lengths))
            else:
                flat = [to_code[t][1] for t in rows[i] if t in to_code]
                k = len(flat) // n
                codes = np.asarray(flat[: k * n], dtype=np.int64).reshape(k, n)
                out.append((codes, [k] * n))
        return out

    @torch.no_grad()
    def sign_batch(self, prepared: list[dict], options: SOKEOptions, generator=None) -> list[Signed]:
        """Greedy (or beam) decoding of a batch, each part decoded by the tokenizer's decoder; a
        stream shorter than the longest is padded by repeating its last frame."""
        results = self.generate_tokens(prepared, options)
        out = []
        for p, (codes, lengths) in zip(prepared, results):
            k = max(max(lengths), 1)
            codes = np.asarray(codes)[:k]
            if len(codes) == 0:
                codes = np.zeros((1, len(self.streams)), dtype=np.int64)
                lengths, k = [1] * len(self.streams), 1
            out.append(Signed(pose=self.decode_codes(codes, lengths), unknown=p["unknown"],
                              report={"keywords": [w for w, _ in p["keywords"]],
                                      "keyword_glosses": [e["gloss"] for _, e in p["keywords"]],
                                      "token_steps": [int(x) for x in lengths]}))
        return out

    @torch.no_grad()
    def decode_codes(self, codes: np.ndarray, lengths: list[int]) -> np.ndarray:
        """(K, S) token ids -> (K * frames_per_token, 178, 3) poses; a stream of fewer valid steps
        (``lengths``) holds its last frame (its joints, where the tokenizer says which they are)."""
        k = len(codes)
        codes = codes.copy()
        for s, n in enumerate(lengths):  # steps after a stream's end repeat its last code meanwhile
            if 0 < n < k:
                codes[n:, s] = codes[n - 1, s]
        device = next(self.tokenizer.parameters()).device
        arrays = {s: torch.as_tensor(codes[:, i], dtype=torch.long, device=device)
                  for i, s in enumerate(self.streams)}
        pose = self.tokenizer.decode(arrays).float().cpu().numpy()
        joints = getattr(self.tokenizer, "joints", None)
        f = self.frames_per_token
        for s, n in enumerate(lengths):
            name = self.streams[s][len(TOKEN_PREFIX):]
            if 0 < n < k and joints is not None and name in joints:
                idx = np.asarray(joints[name])
                pose[n * f:, idx] = pose[n * f - 1, idx]
        return pose.astype(np.float32)


class _Decoder:
    """The decoder fed step by step: with the key/value cache (only the new positions are
    computed) or without (every position recomputed from the inputs so far)."""

    def __init__(self, model: SOKE, memory, src_mask, use_cache: bool):
        self.m, self.memory, self.src_mask, self.use_cache = model, memory, src_mask, use_cache
        self.cache, self.inputs = None, None

    def __call__(self, embeds: torch.Tensor) -> torch.Tensor:
        """(N, L_new, d) new input embeddings -> (N, d) hidden state of the last position."""
        if self.use_cache:
            h, self.cache = self.m.decode_hidden(embeds, self.memory, self.src_mask, self.cache, use_cache=True)
        else:
            self.inputs = embeds if self.inputs is None else torch.cat([self.inputs, embeds], 1)
            h, _ = self.m.decode_hidden(self.inputs, self.memory, self.src_mask)
        return h[:, -1]

    def reorder(self, rows: torch.Tensor) -> None:
        """Each row follows the hypothesis it continues (beam search)."""
        if self.cache is not None:
            self.cache.reorder_cache(rows)
        if self.inputs is not None:
            self.inputs = self.inputs[rows]
        self.memory, self.src_mask = self.memory[rows], self.src_mask[rows]


class _Step:
    """The step function of slp's greedy / beam search (slp_cli/translate.py) for sequential and
    parallel decoding: full-vocabulary logits of the next token with every id outside the part
    mask of the stream it belongs to at -inf."""

    def __init__(self, model: SOKE, memory, src_mask, parallel: bool, use_cache: bool):
        self.m, self.parallel, self.use_cache = model, parallel, use_cache
        self.decoder = _Decoder(model, memory, src_mask, use_cache)
        self.seen = 0  # positions fed to the decoder so far
        self.start = None
        n = len(model.streams)
        self.row_stream = torch.arange(len(memory), device=memory.device) % n if parallel else None

    def beam(self, beam: int) -> None:
        d = self.decoder
        d.memory, d.src_mask = d.memory.repeat_interleave(beam, 0), d.src_mask.repeat_interleave(beam, 0)
        if self.row_stream is not None:
            self.row_stream = self.row_stream.repeat_interleave(beam, 0)

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        m, n = self.m, len(self.m.streams)
        if self.start is None:
            self.start = ids.shape[1]
        h = self.decoder(m.embed(ids[:, self.seen:]))
        self.seen = ids.shape[1]
        logits = torch.full((len(ids), m.lm.config.vocab_size), float("-inf"), device=h.device)
        produced = ids.shape[1] - self.start
        for s in range(n):
            rows = (self.row_stream == s).nonzero().flatten() if self.parallel else (
                torch.arange(len(ids), device=h.device) if produced % n == s else None)
            if rows is None or not len(rows):
                continue
            local = m.head(h[rows], s).float()
            if s != 0 and not self.parallel:
                local[:, -1] = float("-inf")  # sequential: only a whole step ends (at a body position)
            if produced < (1 if self.parallel else n):
                local[:, -1] = float("-inf")  # at least one token step
            logits[rows[:, None], m.allowed(s)[None, :]] = local
        return logits

    def reorder(self, rows: torch.Tensor) -> None:
        self.decoder.reorder(rows)
        if self.row_stream is not None:
            self.row_stream = self.row_stream[rows]
