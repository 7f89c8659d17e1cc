"""Back-translation: signing poses -> text with a trained SLT model (`slp translate`).

The SLP papers judge generated signing by translating it back to text (A2V-SLP, section 4.2;
SOKE, section 4); a translator is any :class:`~slp_cli.models.PoseToText` model, by default
slp's pose-based version of the hierarchical gloss-free SLT model (HFA-SLT;
``slp_cli.models.slt``). The text goes into ``Sample.translation``; ``Sample.text`` stays the
sentence the poses express, so ``slp score`` can compare the two.

Decoding is greedy or beam search over the model's next-token logits, in batches of similar
lengths. Beam search keeps ``beam`` hypotheses per sentence; a hypothesis ends with [EOS] and is
ranked by its summed log-probability divided by (generated tokens) ** ``length_penalty``
(the convention of fairseq and transformers' ``generate``); a sentence is done when it has
``beam`` finished hypotheses and no open one can still beat the worst of them. Beam 1 is greedy;
the default is 4 (:data:`DEFAULT_BEAM`). A model with a CTC gloss head also recognises the glosses
of the poses (greedy CTC decoding), which ``slp score --backtranslate`` scores by gloss WER.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .artifacts import Sample, load, provenance, save
from .device import resolve_device
from .atomic import refuse_overwriting
from .errors import SlpError
from .models import DecodingStep, PoseToText, load_model
from .progress import SILENT, Progress
from .tensors import pad

SCALE_TOLERANCE = 2.0  # input shoulder width may differ from training by this factor
# Beam 4, the usual setting of the gloss-free SLT work HFA-SLT compares with (HFA-SLT itself does
# not state its beam size); 1 is greedy.
DEFAULT_BEAM = 4


def load_translator(path: str | Path, device: str = "cpu") -> PoseToText:
    """A trained pose-to-text model ready to translate; refuses other kinds and unfinished ones."""
    model = load_model(path, expect=PoseToText)
    try:
        model.check_ready()
    except SlpError as e:
        raise SlpError(f"{path}: {e}") from None
    return model.to(resolve_device(device)).eval()


# --- search ---------------------------------------------------------------------------------------


@torch.no_grad()
def greedy_search(step: DecodingStep, prefix: torch.Tensor, eos: int, max_new: int) -> list[list[int]]:
    """Most likely next token at every step, for a batch sharing one prefix length; the
    generated tokens of each row (its [EOS] excluded)."""
    seqs, done = prefix, torch.zeros(len(prefix), dtype=torch.bool, device=prefix.device)
    for _ in range(max_new):
        nxt = step(seqs).argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
        seqs = torch.cat([seqs, nxt[:, None]], 1)
        done |= nxt == eos
        if done.all():
            break
    return [_strip(row[prefix.shape[1]:].tolist(), eos) for row in seqs]


def _strip(ids: list[int], eos: int) -> list[int]:
    return ids[:ids.index(eos)] if eos in ids else ids


@torch.no_grad()
def beam_search(step: DecodingStep, prefix: torch.Tensor, eos: int, max_new: int, beam: int,
                length_penalty: float = 1.0) -> list[list[int]]:
    """Beam search (see the module docstring) for a batch sharing one prefix length. ``step``
    sees ``beam`` rows per sentence (sentence-major), so its memory must be repeated to match;
    ``step.reorder(rows)`` is called when the hypotheses are re-ranked (a cache follows them).

    The search runs on the model's device; the bookkeeping of finished hypotheses on the host
    reads one packed tensor per step (a single device-to-host copy, not one per token or per
    sentence), and a host copy of the open hypotheses follows them."""
    if beam < 1:
        raise SlpError(f"beam must be >= 1, not {beam}")
    b, dev, plen = len(prefix), prefix.device, prefix.shape[1]
    seqs = prefix.repeat_interleave(beam, 0)
    host = seqs.cpu()  # the open hypotheses, as on the device
    scores = torch.zeros(b, beam, device=dev)
    scores[:, 1:] = float("-inf")  # all beams start equal: expand the first only
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
    done = [False] * b
    offsets = torch.arange(b, device=dev)[:, None] * beam
    for t in range(1, max_new + 1):
        logp = step(seqs).float().log_softmax(-1)
        vocab = logp.shape[-1]
        cand = (scores.reshape(-1, 1) + logp).view(b, beam * vocab)
        top, idx = cand.topk(2 * beam, -1)
        src, tok = idx // vocab, idx % vocab
        is_eos = tok == eos
        # open hypotheses: the best `beam` candidates that are not [EOS]
        keep = top.masked_fill(is_eos, float("-inf")).topk(beam, -1)
        pick = keep.indices
        rows = (offsets + src.gather(1, pick)).reshape(-1)
        new = tok.gather(1, pick).reshape(-1, 1)
        seqs = torch.cat([seqs[rows], new], 1)
        step.reorder(rows)
        scores = keep.values
        # one transfer: the best `beam` candidates (score, source row, is [EOS]), the rows and
        # tokens kept, and the kept scores (float64 holds token ids exactly)
        packed = torch.cat([top[:, :beam].double(), src[:, :beam].double(), is_eos[:, :beam].double(),
                            rows.view(b, beam).double(), new.view(b, beam).double(), scores.double()], 1).cpu()
        h_top, h_src, h_eos, h_rows, h_new, h_scores = packed.split(beam, 1)
        for i, j in (h_eos.bool() & torch.isfinite(h_top)).nonzero().tolist():
            if not done[i]:  # finished hypotheses: [EOS] among the best `beam` candidates
                ids = host[i * beam + int(h_src[i, j]), plen:].tolist()
                finished[i].append((float(h_top[i, j]) / t ** length_penalty, ids))
        host = torch.cat([host[h_rows.reshape(-1).long()], h_new.reshape(-1, 1).long()], 1)
        for i in range(b):
            if done[i] or len(finished[i]) < beam:
                continue
            worst = sorted(s for s, _ in finished[i])[-beam]
            # an open hypothesis ends at t + 1 tokens at the earliest (with length_penalty 0 this
            # bound is exact; above 0 it is the usual heuristic of transformers' generate)
            done[i] = float(h_scores[i].max()) / (t + 1) ** length_penalty <= worst
        if all(done):
            break
    out = []
    for i in range(b):
        hyps = finished[i]
        if not hyps:  # nothing ended within max_new: the best open hypothesis
            j = int(scores[i].argmax())
            hyps = [(0.0, host[i * beam + j, plen:].tolist())]
        out.append(max(hyps, key=lambda h: h[0])[1])
    return out


@torch.no_grad()
def decode(model, memory: torch.Tensor, memory_valid: torch.Tensor, langs: Sequence[str], beam: int = DEFAULT_BEAM,
           length_penalty: float = 1.0) -> list[list[int]]:
    """Token ids (without prefix and [EOS]) of each row's sentence in ``langs[row]``, from the
    model's memory: greedy at beam 1, beam search above; rows of one prefix length together."""
    prefixes = [model.prefix(lang) for lang in langs]
    out: list[list[int]] = [[] for _ in langs]
    for plen in sorted({len(p) for p in prefixes}):
        rows = [k for k, p in enumerate(prefixes) if len(p) == plen]
        prefix = torch.tensor([prefixes[k] for k in rows], device=memory.device)
        mem, mvalid = memory[rows], memory_valid[rows]
        if beam > 1:
            mem, mvalid = mem.repeat_interleave(beam, 0), mvalid.repeat_interleave(beam, 0)
            ids = beam_search(model.decoding_step(mem, mvalid), prefix, model.eos_id, model.max_new_tokens, beam,
                              length_penalty)
        else:
            ids = greedy_search(model.decoding_step(mem, mvalid), prefix, model.eos_id, model.max_new_tokens)
        for k, seq in zip(rows, ids):
            out[k] = seq
    return out


# --- translating samples ----------------------------------------------------------------------------


def usable(sample: Sample) -> str | None:
    """Why a sample cannot be translated, or None."""
    if sample.num_frames == 0:
        return "sample has no frames"
    if not np.isfinite(sample.pose).any():
        return "no joint is visible in any frame"
    return None


def check_scale(model, samples: Sequence[Sample], where: str) -> None:
    """Refuse poses on another scale than the training data (e.g. pixels vs normalized)."""
    from .models.slt import shoulder_width

    trained = model.shoulder_width
    seen = shoulder_width([s for s in samples if usable(s) is None])
    if trained > 0 and seen > 0 and not 1 / SCALE_TOLERANCE <= seen / trained <= SCALE_TOLERANCE:
        raise SlpError(f"{where}: poses have a shoulder width of {seen:.3g}, the model was trained on {trained:.3g}; "
                       f"normalize them the same way (`slp normalize`) before translating")


@dataclass
class BackTranslation:
    """What :func:`back_translate` returns: per sample (in order) its text ("" if skipped) and,
    from a model with a gloss head, its recognised glosses (None otherwise); the skipped samples
    (``{"input", "reason"}``)."""

    texts: list[str]
    glosses: list[list[str]] | None
    skipped: list[dict]


@torch.no_grad()
def back_translate(model, samples: Sequence[Sample], *, langs: Sequence[str] | None = None, beam: int = DEFAULT_BEAM,
                   batch_size: int = 32, length_penalty: float = 1.0, glosses: bool = True,
                   progress: Progress = SILENT) -> BackTranslation:
    """Translate ``samples`` and, where the model recognises glosses (a CTC gloss head) and
    ``glosses`` is asked, recognise their glosses from the same encoding. ``langs`` overrides
    each sample's language (e.g. the reference's, for generated poses). SlpError if a language
    is unknown to the model."""
    langs = list(langs) if langs is not None else [s.lang for s in samples]
    for s, lang in zip(samples, langs):
        try:
            model.check_lang(lang)
        except SlpError as e:
            raise SlpError(f"sample '{s.id}': {e}") from None
    with_glosses = glosses and model.recognises_glosses
    texts = [""] * len(samples)
    found: list[list[str]] | None = [[] for _ in samples] if with_glosses else None
    skipped = [{"input": s.id, "reason": r} for s in samples if (r := usable(s))]
    bad = {d["input"] for d in skipped}
    todo = sorted((i for i, s in enumerate(samples) if s.id not in bad), key=lambda i: samples[i].num_frames)
    device = next(model.parameters()).device
    model.eval()
    with progress.task("translating", total=len(samples)) as task:
        task.advance(len(samples) - len(todo))
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            pose, valid = pad([samples[i].pose for i in chunk])
            memory, mv = model.encode(pose.to(device), valid.to(device))
            for i, ids in zip(chunk, decode(model, memory, mv, [langs[i] for i in chunk], beam, length_penalty)):
                texts[i] = model.decode_ids(ids)
            if found is not None:
                for i, g in zip(chunk, model.recognise_glosses(memory, mv)):
                    found[i] = g
            task.advance(len(chunk))
    return BackTranslation(texts, found, skipped)


def translate_samples(model, samples: Sequence[Sample], *, langs: Sequence[str] | None = None,
                      beam: int = DEFAULT_BEAM, batch_size: int = 32, length_penalty: float = 1.0,
                      progress: Progress = SILENT) -> tuple[list[str], list[dict]]:
    """Translations of ``samples`` (in order) and the samples skipped (their translation is "");
    see :func:`back_translate`."""
    out = back_translate(model, samples, langs=langs, beam=beam, batch_size=batch_size,
                         length_penalty=length_penalty, glosses=False, progress=progress)
    return out.texts, out.skipped


def run(model_dir: str | Path, input_path: str | Path, output: str | Path, *, beam: int = DEFAULT_BEAM,
        split: str | None = None, batch_size: int = 32, length_penalty: float = 1.0, device: str = "auto",
        progress: Progress = SILENT) -> dict:
    """Translate every sample (of ``split``) of an artifact and write them, with their
    translations, to ``output`` (atomically; ids, poses, texts and reference glosses unchanged).
    From a model with a gloss head, each sample's recognised glosses go into its report
    (``report["recognised_glosses"]``). Returns a summary."""
    refuse_overwriting([output], [input_path])
    if beam < 1:
        raise SlpError(f"--beam must be >= 1, not {beam}")
    if batch_size < 1:
        raise SlpError(f"--batch-size must be >= 1, not {batch_size}")
    art = load(input_path, split=split)  # a bad input says so before the model is loaded
    model = load_translator(model_dir, device)
    if not art.samples:
        raise SlpError(f"{input_path}: no samples" + (f" in split {split!r}" if split else ""))
    if art.layout != "mp178":
        raise SlpError(f"{input_path}: layout {art.layout}; the translator reads mp178 poses")
    check_scale(model, art.samples, str(input_path))
    bt = back_translate(model, art.samples, beam=beam, batch_size=batch_size, length_penalty=length_penalty,
                        progress=progress)
    texts, skipped = bt.texts, bt.skipped
    if len(skipped) == len(art.samples):
        raise SlpError(f"{input_path}: no sample can be translated (first: '{skipped[0]['input']}': "
                       f"{skipped[0]['reason']}); nothing written")
    for k, (s, t) in enumerate(zip(art.samples, texts)):
        s.translation = t
        if bt.glosses is not None and t:
            s.report = {**s.report, "recognised_glosses": bt.glosses[k]}
    args = {"model": str(model_dir), "beam": beam, "split": split, "length_penalty": length_penalty}
    save(art.samples, output, provenance=provenance("translate", args, [input_path, model_dir]),
         skipped=list(art.skipped) + skipped, **art.attrs())
    return {"samples": len(art.samples), "translated": len(art.samples) - len(skipped), "skipped": skipped,
            "output": str(output), "beam": beam, "glosses": bt.glosses is not None}
