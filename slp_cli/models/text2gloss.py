"""Text-to-gloss translation: spoken text -> a sequence of glosses (`slp train text2gloss`,
`slp text2gloss`), the first step of gloss-based production (Progressive Transformers' text ->
gloss -> pose; the glosser of the dictionary baseline and of GLOS).

Architecture: an encoder-decoder transformer, as Progressive Transformers' text-to-gloss
translator (a small transformer trained from scratch on PHOENIX-2014T), with 2 encoder and 2
decoder layers, 4 heads, dropout 0.2, and a width of 128 (the text-to-gloss systems of the
literature use 256-512; 128 is what trains to convergence on PHOENIX-2014T's 7,096 sentences in
minutes on CPU, bench/RESULTS.md; ``--d-model 256 --ffn 1024`` for the wider one):

* text side: slp's offline WordPiece (:class:`~slp_cli.text.tokenizer.TextTokenizer`) learnt on
  the training sentences, preceded by the sign language's token when the data has several
  languages (``<dgs> mancherorts regnet es ...``);
* gloss side: whole glosses as tokens, as the corpus writes them (``[PAD] [UNK] [BOS] [EOS]``,
  then the training glosses by frequency); the decoder starts with ``[BOS]`` and, in a
  multilingual model, may only write glosses seen in the sentence's language (and ``[EOS]``);
* encoder and decoder are the back-translator's building blocks (pre-norm layers, rotary
  positions in the encoder, a key/value-cached decoder with tied embeddings:
  ``slp_cli.models.slt``), searched greedily or by beam with slp_cli/translate.py.

``lm`` swaps in a pretrained encoder-decoder (an mBART, loaded by hub id or save_pretrained
folder with transformers' ``AutoModelForSeq2SeqLM``), fine-tuned whole; there the glosses are
written as the space-separated gloss string in the LM's own sub-word vocabulary (how published
mBART text-to-gloss systems treat them) and split on spaces when read back. The LM's config and
tokenizer files are kept in the checkpoint, so a trained model loads without the hub.

Training: cross-entropy with label smoothing (0.1), AdamW with linear warm-up then cosine decay.
The dev evaluation decodes every dev sentence greedily and selects the weights by corpus BLEU-4
on the gloss strings (signjoey's convention, docs/design.md section 8), reporting gloss WER too.

Deviations, stated: Progressive Transformers uses absolute sinusoidal positions in the encoder
(here rotary ones, shared with the back-translator) and does not restrict glosses by language
(it is monolingual).
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.loader import SequenceDataset
from ..errors import SlpError
from ..tensors import pad
from ..text.lemmas import spoken_language
from ..text.tokenizer import BOS, EOS, PAD, SPECIALS, UNK, TextTokenizer
from . import DecodingStep, TextToGloss, TrainingConfig, option, register
from .slt import (IGNORE, Encoder, PackedFiles, TextDecoder, _embedding, _quiet_transformers, _start_id,
                  lm_from_data, load_pretrained_lm, warmup_cosine)

BLEU_ORDER = 4


@dataclass
class Text2GlossConfig(TrainingConfig):
    d_model: int = option(128, "Width of encoder and decoder (128: trains to convergence on CPU in minutes).")
    heads: int = option(4, "Attention heads (4).")
    ffn: int = option(512, "Feed-forward width (4 x width).")
    enc_layers: int = option(2, "Encoder layers (2).")
    dec_layers: int = option(2, "Decoder layers (2).")
    dropout: float = option(0.2, "Dropout.")
    vocab_size: int = option(8000, "WordPiece vocabulary of the text side (PHOENIX-2014T's 2,888 words fit whole).")
    label_smoothing: float = option(0.1, "Label smoothing of the gloss cross-entropy.")
    weight_decay: float = option(1e-2, "AdamW weight decay.")
    warmup_steps: int = option(400, "Linear warm-up steps before the cosine decay.")
    lm: str = option("", "Pretrained encoder-decoder LM (hub id available offline, or a save_pretrained folder; "
                     "e.g. an mBART), fine-tuned whole, writing the gloss string in its own vocabulary. Default: "
                     "a small transformer trained from scratch, with whole glosses as tokens.")

    def __post_init__(self):
        for name in ("d_model", "heads", "ffn", "enc_layers", "dec_layers", "vocab_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.d_model % self.heads or (self.d_model // self.heads) % 2:
            raise ValueError("d_model must divide by heads, into an even head size (rotary positions)")
        if not 0 <= self.dropout < 1 or not 0 <= self.label_smoothing < 1:
            raise ValueError("dropout and label_smoothing must be in [0, 1)")
        if self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError("weight_decay and warmup_steps must be >= 0")


PRESETS = {
    # Sized for PHOENIX-2014T's 7,096 training sentences on CPU: 222 steps an epoch at batch 32,
    # 27 epochs at most, early stopping on dev BLEU-4 (evaluated every two epochs). Measured
    # (bench/text2gloss_real.py): ~8 minutes of one CPU core for the 6,000 steps, dev BLEU-4 18.6.
    "default": dict(batch_size=32, lr=1e-3, max_steps=6000, warmup_steps=400, eval_every=444, checkpoint_every=500,
                    patience=5, log_every=50),
    # Tests and smoke runs on the synthetic corpus: seconds on one core.
    "tiny": dict(d_model=64, heads=4, ffn=128, enc_layers=2, dec_layers=2, dropout=0.1, vocab_size=2000,
                 batch_size=16, lr=3e-3, max_steps=400, warmup_steps=20, eval_every=100, checkpoint_every=200,
                 patience=0, log_every=10),
}


# --- n-gram statistics of BLEU (corpus BLEU from sums over batches and processes) -------------

def ngram_stats(hyp: list[str], ref: list[str], order: int = BLEU_ORDER) -> list[float]:
    """[matches_1..n, totals_1..n, hyp length, ref length] of one sentence pair: clipped n-gram
    matches as sacrebleu counts them (one reference, tokens as given)."""
    out_m, out_t = [], []
    for n in range(1, order + 1):
        h = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
        r = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
        out_m.append(float(sum(min(c, r[g]) for g, c in h.items())))
        out_t.append(float(max(len(hyp) - n + 1, 0)))
    return out_m + out_t + [float(len(hyp)), float(len(ref))]


def bleu_from_stats(stats: list[float], order: int = BLEU_ORDER) -> float:
    """Corpus BLEU-``order`` (0-100) from summed :func:`ngram_stats`: brevity penalty times the
    geometric mean of the precisions, 0 when one is 0 (signjoey's convention)."""
    matches, totals, sys_len, ref_len = stats[:order], stats[BLEU_ORDER:BLEU_ORDER + order], stats[-2], stats[-1]
    if sys_len <= 0 or min(matches) <= 0:
        return 0.0
    bp = 1.0 if sys_len >= ref_len else math.exp(1 - ref_len / sys_len)
    return 100.0 * bp * math.exp(sum(math.log(m / t) for m, t in zip(matches, totals)) / order)


class MaskedStep(DecodingStep):
    """A decoding step whose logits get a per-row bias (-inf on the glosses a row's language never
    uses); beam search re-ranks rows only within a sentence, so the bias rows stay put."""

    def __init__(self, inner: DecodingStep, bias: torch.Tensor):
        super().__init__(inner)
        self.inner, self.bias = inner, bias

    def __call__(self, ids):
        return self.inner(ids).float() + self.bias

    def reorder(self, rows):
        self.inner.reorder(rows)


def _check_samples(samples: list) -> None:
    """Every training sample needs its sentence and its glosses; one line naming the first bad one."""
    if not samples:
        raise SlpError("no training samples")
    no_gloss = [s for s in samples if not s.glosses]
    if len(no_gloss) == len(samples):
        raise SlpError("the data has no glosses: text-to-gloss training needs the gloss sequence of every sample "
                       "(a corpus with glosses, or annotations with a 'glosses' field)")
    for s in samples:
        if not s.glosses:
            raise SlpError(f"sample '{s.id}' has no glosses ({len(no_gloss)} of {len(samples)} training samples lack "
                           "them); remove them or give their glosses")
        if not s.text.strip():
            raise SlpError(f"sample '{s.id}' has no text; text-to-gloss training needs the sentence of every sample")
        try:
            spoken_language(s.lang)
        except SlpError as e:
            raise SlpError(f"sample '{s.id}': {e}") from None


@register("text2gloss")
class Text2Gloss(TextToGloss):
    """Text-to-gloss translator (spoken text -> gloss sequence): an encoder-decoder transformer."""

    Config = Text2GlossConfig
    presets = PRESETS
    run_fields = frozenset({"weight_decay", "warmup_steps", "label_smoothing"})
    needs_normalized_poses = False
    reads_poses = False
    selection = ("bleu4", "max")

    def __init__(self, config: Text2GlossConfig, data: dict | None = None, lm=None, lm_tokenizer=None):
        """``data`` (from_data): ``langs``, ``max_gloss_len``, and ``tokenizer`` + ``glosses`` +
        ``lang_glosses`` (offline) or ``lm_config`` + ``lm_start`` (a pretrained LM)."""
        super().__init__(config, data)
        c, data = config, self.data
        self._hf_tokenizer = lm_tokenizer
        if c.lm:
            self.lm = lm if lm is not None else lm_from_data(
                self.data, f"text2gloss config names the language model {self.config.lm!r}")
            self.lm_files = PackedFiles()
            if lm_tokenizer is not None:
                with tempfile.TemporaryDirectory() as d:
                    lm_tokenizer.save_pretrained(d)
                    self.lm_files.blob = PackedFiles.pack(Path(d))
            return
        self.tokenizer = TextTokenizer.from_json(data["tokenizer"]) if data.get("tokenizer") else None
        text_vocab = self.tokenizer.vocab_size if self.tokenizer else c.vocab_size
        self.vocab = list(data.get("glosses") or SPECIALS)
        self.index = {g: i for i, g in enumerate(self.vocab)}
        self.embed = _embedding(text_vocab, c.d_model)
        self.encoder = Encoder(c.d_model, c.heads, c.ffn, c.enc_layers, c.dropout)
        self.decoder = TextDecoder(len(self.vocab), c.d_model, c.heads, c.ffn, c.dec_layers, c.dropout)
        # -inf on the glosses a language never uses (and on the specials that are never written)
        bias = torch.full((max(len(self.langs), 1), len(self.vocab)), float("-inf"))
        for i, lang in enumerate(self.langs):
            allowed = data.get("lang_glosses", {}).get(lang, range(len(SPECIALS), len(self.vocab)))
            bias[i, list(allowed)] = 0.0
        bias[:, EOS] = 0.0
        self.register_buffer("gloss_bias", bias, persistent=False)

    @classmethod
    def from_data(cls, config: Text2GlossConfig, samples: list, **inputs) -> "Text2Gloss":
        """Tokenizers (or the LM) and the gloss vocabulary from the training samples."""
        cls.check_inputs(inputs)
        _check_samples(samples)
        langs = sorted({s.lang for s in samples})
        data: dict = {"langs": langs, "max_gloss_len": max(len(s.glosses) for s in samples)}
        lm = tok = None
        if config.lm:
            lm, tok = load_pretrained_lm(config.lm)
            data["lm_config"] = lm.config.to_dict()
            data["lm_start"] = {lang: _start_id(lm, tok, lang) for lang in langs}
        else:
            data["tokenizer"] = TextTokenizer.train([s.text for s in samples], langs, config.vocab_size).to_json()
            counts = Counter(g for s in samples for g in s.glosses)
            vocab = SPECIALS + sorted(counts, key=lambda g: (-counts[g], g))
            index = {g: i for i, g in enumerate(vocab)}
            data["glosses"] = vocab
            data["lang_glosses"] = {lang: sorted({index[g] for s in samples if s.lang == lang for g in s.glosses})
                                    for lang in langs}
        model = cls(config, data, lm=lm, lm_tokenizer=tok)
        if config.lm:  # the longest target in the LM's sub-words bounds the search
            model.data["max_gloss_len"] = max(len(model.target(s.glosses, s.lang)[0]) for s in samples)
        return model

    def on_init(self, samples: list, init) -> None:
        _check_samples(samples)
        for s in samples:
            self.check_lang(s.lang)

    # --- text and glosses ------------------------------------------------------------------
    @property
    def hf_tokenizer(self):
        if self._hf_tokenizer is None:
            if not self.lm_files.blob:
                raise SlpError("this text2gloss model holds no tokenizer of its language model")
            transformers = _quiet_transformers()
            with tempfile.TemporaryDirectory() as d:
                self._hf_tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.lm_files.unpack(Path(d))))
        return self._hf_tokenizer

    @property
    def pad_id(self) -> int:
        return int(self.hf_tokenizer.pad_token_id) if self.config.lm else PAD

    @property
    def eos_id(self) -> int:
        if not self.config.lm:
            return EOS
        eos = self.hf_tokenizer.eos_token_id
        return int(eos if eos is not None else self.lm.config.eos_token_id)

    @property
    def max_new_tokens(self) -> int:
        return int(1.5 * self.data.get("max_gloss_len", 30)) + 5

    def source(self, text: str, lang: str) -> list[int]:
        """Encoder input ids of a sentence; SlpError for empty text or an unknown language."""
        self.check_lang(lang)
        if not (text or "").strip():
            raise SlpError("empty text: give a sentence to translate into glosses")
        if self.config.lm:
            ids = list(self.hf_tokenizer(text)["input_ids"])
        else:
            ids = self.tokenizer.encode(text, lang if len(self.langs) > 1 else None)
        if not ids or (not self.config.lm and all(i == UNK for i in ids)):
            raise SlpError(f"text {text!r} has no token this glosser knows")
        return ids

    def prefix(self, lang: str) -> list[int]:
        return [int(self.data["lm_start"][lang])] if self.config.lm else [BOS]

    def target(self, glosses: list[str], lang: str) -> tuple[list[int], list[int]]:
        """Decoder input and labels of a gloss sequence: prefix + ids -> ids + [EOS]."""
        if self.config.lm:
            ids = list(self.hf_tokenizer(" ".join(glosses), add_special_tokens=False)["input_ids"])
        else:
            ids = [self.index.get(g, UNK) for g in glosses]
        return self.prefix(lang) + ids, ids + [self.eos_id]

    def decode_ids(self, ids) -> list[str]:
        ids = [int(i) for i in ids]
        if self.eos_id in ids:
            ids = ids[:ids.index(self.eos_id)]
        if self.config.lm:
            return self.hf_tokenizer.decode(ids, skip_special_tokens=True).split()
        return [self.vocab[i] for i in ids if i >= len(SPECIALS)]

    # --- the network ------------------------------------------------------------------------
    def encode(self, ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        if self.config.lm:
            return self.lm.get_encoder()(input_ids=ids, attention_mask=valid.long()).last_hidden_state
        return self.encoder(self.embed(ids) * math.sqrt(self.config.d_model), valid)

    def logits(self, memory, valid, dec_in) -> torch.Tensor:
        if self.config.lm:
            return self.lm(encoder_outputs=(memory,), attention_mask=valid.long(), decoder_input_ids=dec_in).logits
        return self.decoder(dec_in, memory, valid)

    def decoding_step(self, memory, valid, lang_rows: torch.Tensor | None = None) -> DecodingStep:
        """Next-gloss logits of decoder inputs (cached for the offline decoder); ``lang_rows``
        (N,) indexes each row's language in ``self.langs`` for the per-language gloss mask."""
        if self.config.lm:
            return DecodingStep(lambda ids: self.logits(memory, valid, ids)[:, -1])
        step = self.decoder.incremental(memory, valid)
        return step if lang_rows is None else MaskedStep(step, self.gloss_bias[lang_rows])

    # --- data --------------------------------------------------------------------------------
    def make_dataset(self, samples):
        _check_samples(samples)
        items = []
        for s in samples:
            try:
                src = self.source(s.text, s.lang)
            except SlpError as e:
                raise SlpError(f"sample '{s.id}': {e}") from None
            dec_in, labels = self.target(s.glosses, s.lang)
            items.append({"src": np.array(src), "dec_in": np.array(dec_in), "labels": np.array(labels),
                          "lang": self.langs.index(s.lang), "glosses": list(s.glosses)})
        return SequenceDataset(items, np.array([len(it["src"]) for it in items]))

    def collate(self, items):
        src, valid = pad([it["src"] for it in items], value=self.pad_id, dtype=torch.long)
        dec_in, _ = pad([it["dec_in"] for it in items], value=self.pad_id, dtype=torch.long)
        labels, _ = pad([it["labels"] for it in items], value=IGNORE, dtype=torch.long)
        return {"src": src.long(), "valid": valid, "dec_in": dec_in.long(), "labels": labels.long(),
                "lang": torch.tensor([it["lang"] for it in items]), "glosses": [it["glosses"] for it in items],
                "batch_size": len(items), "num_frames": int(valid.sum())}

    # --- steps -------------------------------------------------------------------------------
    def training_step(self, batch):
        memory = self.encode(batch["src"], batch["valid"])
        logits = self.logits(memory, batch["valid"], batch["dec_in"]).float()
        labels = batch["labels"]
        ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE,
                             label_smoothing=self.config.label_smoothing)
        real = labels != IGNORE
        acc = ((logits.argmax(-1) == labels) & real).sum() / real.sum().clamp(min=1)
        return {"loss": ce, "accuracy": acc.detach()}

    @torch.no_grad()
    def validation_step(self, batch):
        """Teacher-forced loss, and the greedy translations' gloss edits and BLEU statistics (per
        sentence means: the loop's batch-size-weighted means are then corpus sums / count)."""
        from ..metrics.text import edit_distance

        out = self.training_step(batch)
        hyps = self.search(batch["src"], batch["valid"], batch["lang"], beam=1)
        n = len(hyps)
        stats = np.sum([ngram_stats(h, r) for h, r in zip(hyps, batch["glosses"])], 0) / n
        edits = sum(edit_distance(h, r) for h, r in zip(hyps, batch["glosses"])) / n
        dev = batch["src"].device
        out.update({"edits": torch.tensor(edits, device=dev)},
                   **{f"stat{i}": torch.tensor(v, device=dev) for i, v in enumerate(stats)})
        return out

    def finish_evaluation(self, values):
        """Corpus gloss WER and BLEU-1..4 from the mean statistics."""
        k = 2 * BLEU_ORDER + 2
        stats = [values.pop(f"stat{i}") for i in range(k)]
        edits = values.pop("edits")
        values["wer"] = 100.0 * edits / stats[-1] if stats[-1] else float("nan")
        for n in range(1, BLEU_ORDER + 1):
            values[f"bleu{n}"] = bleu_from_stats(stats, n)
        return values

    def configure_optimizers(self):
        c = self.config
        opt = torch.optim.AdamW(self.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine(step, c.warmup_steps, c.max_steps))
        return opt, sched

    # --- translating -------------------------------------------------------------------------
    @torch.no_grad()
    def search(self, src: torch.Tensor, valid: torch.Tensor, lang_rows: torch.Tensor, beam: int = 1,
               length_penalty: float = 1.0) -> list[list[str]]:
        """Glosses of a padded batch of encoder inputs (greedy at ``beam`` 1)."""
        from ..translate import beam_search, greedy_search

        memory = self.encode(src, valid)
        prefix = torch.tensor([self.prefix(self.langs[int(i)]) for i in lang_rows], device=src.device)
        rows = None if self.config.lm or len(self.langs) < 2 else lang_rows
        if beam > 1:
            memory, valid = memory.repeat_interleave(beam, 0), valid.repeat_interleave(beam, 0)
            rows = None if rows is None else rows.repeat_interleave(beam, 0)
            ids = beam_search(self.decoding_step(memory, valid, rows), prefix, self.eos_id, self.max_new_tokens,
                              beam, length_penalty)
        else:
            ids = greedy_search(self.decoding_step(memory, valid, rows), prefix, self.eos_id, self.max_new_tokens)
        return [self.decode_ids(x) for x in ids]

    @torch.no_grad()
    def glosses(self, texts: list[str], langs: list[str], beam: int = 1, batch_size: int = 64,
                length_penalty: float = 1.0) -> list[list[str]]:
        """The gloss sequence of each sentence (in order); SlpError (one line) for an empty text or
        a language the model was not trained on."""
        if beam < 1:
            raise SlpError(f"beam must be >= 1, not {beam}")
        if len(texts) != len(langs):
            raise SlpError(f"{len(texts)} texts but {len(langs)} languages")
        sources = [self.source(t, lang) for t, lang in zip(texts, langs)]
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        out: list = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(sources[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            src, valid = pad([np.array(sources[i]) for i in chunk], value=self.pad_id, dtype=torch.long)
            rows = torch.tensor([self.langs.index(langs[i]) for i in chunk], device=device)
            for i, g in zip(chunk, self.search(src.long().to(device), valid.to(device), rows, beam, length_penalty)):
                out[i] = g
        self.train(was_training)
        return out
