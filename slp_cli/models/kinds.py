"""The kinds of model the stages use. A registered model subclasses one of them and implements its
methods; the stages (tokenize, generate, translate, score) dispatch on the kind, never on a
model's name.

* :class:`PoseTokenizer` -- poses to named per-frame arrays and back (`slp tokenize`,
  `slp reconstruct`, `slp eval-tokenizer`; the generators' frozen tokenizers).
* :class:`TextToPose` -- a text-to-pose generator (`slp train generator --arch NAME`,
  `slp generate --model DIR`).
* :class:`PoseToText` -- a back-translator from signing poses to text (`slp translate`,
  `slp score --backtranslate`).
* :class:`TextPoseAligner` -- texts and pose latents into one embedding space (Text2Sign
  Diffusion's semantic supervision).
* :class:`TextToGloss` -- a translator from spoken text to gloss sequences (`slp text2gloss`; the
  glosser of the dictionary baseline and of gloss-conditioned generators such as GLOS).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from ..errors import SlpError
from .base import SlpModel, build_dataclass


class PoseTokenizer(SlpModel):
    """(T, 178, 3) poses <-> named arrays (continuous latents or discrete token ids), each at its
    own rate (a VQ-VAE's tokens are at a quarter of the frame rate)."""

    kind = "pose tokenizer"

    @property
    def array_names(self) -> list[str]:
        """The names of the arrays ``encode`` returns (and ``decode`` reads)."""
        raise NotImplementedError

    @property
    def min_frames(self) -> int:
        """The shortest sequence that can be encoded."""
        return 1

    @property
    def codebooks(self) -> dict[str, int]:
        """Codebook size per array of a discrete tokenizer (token ids), {} for a continuous one."""
        return {}

    def encode(self, pose: torch.Tensor) -> dict[str, torch.Tensor]:
        """(T, 178, 3) or (B, T, 178, 3) poses, NaN = missing -> {name: (T', ...) or (B, T', ...)}."""
        raise NotImplementedError

    def decode(self, arrays: dict[str, torch.Tensor], num_frames: int | None = None) -> torch.Tensor:
        """Named arrays (as ``encode`` returns them) -> poses, cut to ``num_frames`` when given."""
        raise NotImplementedError

    @torch.no_grad()
    def reconstruct(self, pose: np.ndarray) -> np.ndarray:
        """Encode a (T, 178, 3) sequence and decode it back: what the tokenizer keeps."""
        self.eval()
        device = next(self.parameters()).device
        arrays = self.encode(torch.as_tensor(np.asarray(pose, dtype=np.float32), device=device))
        return self.decode(arrays, num_frames=len(pose)).float().cpu().numpy()


@dataclass
class Signed:
    """One generated sentence: the poses and what the model reports about them."""

    pose: np.ndarray  # (T, 178, 3) float32
    glosses: list[str] = field(default_factory=list)
    gloss_spans: np.ndarray | None = None  # (G, 2) frames [start, end) of each gloss
    unknown: list[str] = field(default_factory=list)  # words the model could not read
    report: dict = field(default_factory=dict)  # method-specific (retrieved keywords, durations...)


@dataclass
class NoOptions:
    """A generator without generation options."""


class TextToPose(SlpModel):
    """A text-to-pose generator. It records the frame rate and normalization of the poses it was
    trained on (``data["fps"]``, ``data["normalization"]``: the training loop fills them) and
    declares its generation options as a dataclass (``GenerateOptions``, fields made with
    :func:`~slp_cli.models.base.option`, shown as `slp generate --model DIR --help` options)."""

    kind = "text-to-pose generator"
    GenerateOptions: ClassVar[type] = NoOptions

    @property
    def max_frames(self) -> int:
        """The longest sequence this model generates."""
        raise NotImplementedError

    @property
    def langs(self) -> list[str]:
        """The sign languages the model was trained on."""
        return list(self.data.get("langs", []))

    @property
    def fps(self) -> float:
        return float(self.data.get("fps", 0.0))

    @property
    def normalization(self) -> str:
        return str(self.data.get("normalization", ""))

    @classmethod
    def make_options(cls, values: dict | None = None):
        """The generation options with ``values`` applied (None values ignored)."""
        return build_dataclass(cls.GenerateOptions, {k: v for k, v in (values or {}).items() if v is not None},
                               f"generator {cls.name}")

    def prepare(self, text: str, lang: str) -> Any:
        """The checked model input of one sentence; SlpError when it cannot be signed (empty text,
        a language the model was not trained on, no known word...)."""
        raise NotImplementedError

    def sign_batch(self, prepared: list, options, generator: torch.Generator | None) -> list[Signed]:
        """Sign a batch of prepared sentences (one forward pass where the model allows it)."""
        raise NotImplementedError

    def sign(self, texts: list[str], langs: list[str], options=None,
             generator: torch.Generator | None = None) -> list[Signed | SlpError]:
        """Sign sentences in one batch: a :class:`Signed` per sentence, or the SlpError that says
        why it could not be signed. ``generator`` seeds any sampling."""
        options = options if options is not None else self.make_options()
        out: list = [None] * len(texts)
        ready = []
        for i, (text, lang) in enumerate(zip(texts, langs)):
            try:
                ready.append((i, self.prepare(text, lang)))
            except SlpError as e:
                out[i] = e
        if ready:
            for (i, _), signed in zip(ready, self.sign_batch([p for _, p in ready], options, generator)):
                out[i] = signed
        return out


class DecodingStep:
    """The step function of greedy and beam search: decoder inputs (N, L) -> next-token logits
    (N, V) of the last position. A step that keeps a cache overrides ``reorder(rows)``, which beam
    search calls when it re-ranks its hypotheses, so that each row's cache follows its hypothesis."""

    def __init__(self, logits: Callable[[torch.Tensor], torch.Tensor]):
        self.logits = logits

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        return self.logits(ids)

    def reorder(self, rows: torch.Tensor) -> None:
        """Nothing to reorder: this step recomputes every position from ``ids``."""


class PoseToText(SlpModel):
    """A back-translator: an encoder of (B, T, 178, 3) poses and an autoregressive text decoder,
    searched greedily or by beam (slp_cli/translate.py)."""

    kind = "pose-to-text translator"

    def check_ready(self) -> None:
        """SlpError if this model cannot translate yet (e.g. only its encoder was pre-trained)."""

    def check_lang(self, lang: str) -> None:
        """SlpError if ``lang`` was not in the training data."""
        raise NotImplementedError

    @property
    def shoulder_width(self) -> float:
        """The scale of the training poses (1 after `slp normalize`; 0 if unknown)."""
        return float(self.data.get("shoulder_width", 0.0))

    def encode(self, pose: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Poses (B, T, 178, 3) and their frame mask -> the decoder's memory and its mask."""
        raise NotImplementedError

    def prefix(self, lang: str) -> list[int]:
        """The decoder's first tokens for a sentence of ``lang``."""
        raise NotImplementedError

    def decoding_step(self, memory: torch.Tensor, memory_valid: torch.Tensor) -> DecodingStep:
        """The step function of the search over this memory."""
        raise NotImplementedError

    def decode_ids(self, ids) -> str:
        raise NotImplementedError

    @property
    def eos_id(self) -> int:
        raise NotImplementedError

    @property
    def max_new_tokens(self) -> int:
        raise NotImplementedError

    @property
    def recognises_glosses(self) -> bool:
        """Whether the model also recognises glosses (a CTC gloss head): gloss WER of back-translation."""
        return False

    def recognise_glosses(self, memory: torch.Tensor, memory_valid: torch.Tensor) -> list[list[str]]:
        """The gloss sequence of each encoded sequence (only when ``recognises_glosses``)."""
        raise NotImplementedError


class TextToGloss(SlpModel):
    """Spoken text -> gloss sequences (whole glosses as tokens, as the corpus writes them)."""

    kind = "text-to-gloss translator"

    @property
    def langs(self) -> list[str]:
        """The sign languages the model was trained on."""
        return list(self.data.get("langs", []))

    def check_lang(self, lang: str) -> None:
        """SlpError if ``lang`` was not in the training data."""
        if self.langs and lang not in self.langs:
            raise SlpError(f"this glosser was trained on {', '.join(self.langs)}, not {lang!r}: "
                           "give --lang one of those")

    def glosses(self, texts: list[str], langs: list[str], beam: int = 1) -> list[list[str]]:
        """The gloss sequence of each sentence (greedy at ``beam`` 1, beam search above)."""
        raise NotImplementedError


class TextPoseAligner(SlpModel):
    """Texts and pose latents into one embedding space (unit vectors): ``prepare_texts`` ->
    ``embed_text(batch)``, ``embed_latents(z, frame_mask)``."""

    kind = "text-pose aligner"

    def prepare_texts(self, texts: list[str], langs: list[str]) -> list[dict]:
        raise NotImplementedError

    def embed_text(self, batch: dict) -> torch.Tensor:
        raise NotImplementedError

    def embed_latents(self, z: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


KINDS = {"tokenizer": PoseTokenizer, "generator": TextToPose, "translator": PoseToText,
         "glosser": TextToGloss, "aligner": TextPoseAligner}
