"""Spoken text -> glosses with a trained text-to-gloss model (`slp text2gloss`), and the scores of
gloss sequences against references (`slp score-glosses`).

A glosser is any :class:`~slp_cli.models.TextToGloss` model (`slp train text2gloss`). Sentences
come from one TEXT, a text file (one sentence a line, ids ``line-0001``...), a JSON lines file
(records with ``id``, ``text`` and optionally ``lang`` and ``split``, as `slp synth
--annotations` reads them) or an slp artifact (its samples' ids, texts and languages). The
output is JSON lines, one record per sentence in input order: ``{"id", "text", "lang",
"glosses": [...]}``; a sentence that cannot be translated (empty text, a language the model does
not know) is skipped and reported.

Scores (docs/design.md, section 8): gloss WER with its substitutions, deletions and insertions;
BLEU-1..4 on the space-joined gloss strings in signjoey's convention (as the text-to-gloss
literature reports it: Progressive Transformers' text-to-gloss BLEU-4); ROUGE-L F1 (beta 1.2).
Hypotheses and references meet by sample id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .atomic import refuse_overwriting, write_text
from .errors import SlpError
from .progress import SILENT, Progress


@dataclass
class Sentence:
    id: str
    text: str
    lang: str
    split: str = ""


def load_glosser(path: str | Path, device: str = "cpu"):
    """A trained text-to-gloss model on ``device``, in eval mode; refuses other kinds of model."""
    from .device import resolve_device
    from .models import TextToGloss, load_model

    return load_model(path, expect=TextToGloss).to(resolve_device(device)).eval()


def _json_lines(path: Path) -> list[tuple[str, dict]]:
    """(where, record) of every non-empty line of a JSON lines file."""
    out = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise SlpError(f"{path}: not UTF-8 text") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise SlpError(f"{path}:{n}: not valid JSON ({e.msg}); write one JSON object per line") from None
        if not isinstance(rec, dict):
            raise SlpError(f"{path}:{n}: expected a JSON object, got {type(rec).__name__}")
        out.append((f"{path}:{n}", rec))
    if not out:
        raise SlpError(f"{path}: no records (the file is empty)")
    return out


def read_sentences(*, text: str | None = None, lang: str | None = None, texts_from: str | Path | None = None,
                   split: str | None = None) -> tuple[list[Sentence], list[dict]]:
    """The sentences to translate (see the module docstring) and the inputs left out
    (``{"input", "reason"}``). ``lang`` is the language of a TEXT or text file, and the default
    (or filter, for an artifact) of the other inputs; ``split`` filters artifacts and JSON lines."""
    from .generate import read_requests

    path = Path(texts_from) if texts_from is not None else None
    if path is None or path.suffix.lower() not in (".jsonl", ".json"):
        requests, empty = read_requests(text=text, lang=lang, texts_from=texts_from, split=split)
        return [Sentence(r.id, r.text, r.lang, "" if r.split == "generated" else r.split) for r in requests], empty
    if text is not None:
        raise SlpError("give either a TEXT or --texts-from FILE (not both)")
    if not path.is_file():
        raise SlpError(f"{path}: --texts-from file not found")
    out, skipped, seen = [], [], set()
    for i, (where, rec) in enumerate(_json_lines(path), 1):
        rid = str(rec.get("id") or f"line-{i:04d}")
        if rid in seen:
            raise SlpError(f"{where}: duplicate id '{rid}'; give every record a unique id")
        seen.add(rid)
        rlang = str(rec.get("lang") or lang or "")
        if not rlang:
            raise SlpError(f"{where}: record '{rid}' has no 'lang'; add one or give --lang")
        if split is not None and rec.get("split", "train") != split:
            continue
        if lang is not None and rec.get("lang") and rec["lang"] != lang:
            continue
        t = rec.get("text")
        if not isinstance(t, str) or not t.strip():
            skipped.append({"input": rid, "reason": "record has no text"})
            continue
        out.append(Sentence(rid, t, rlang, str(rec.get("split") or "")))
    if not out and not skipped:
        raise SlpError(f"{path}: no records" + (f" in split {split!r}" if split else "")
                       + (f" for language {lang!r}" if lang else ""))
    return out, skipped


def gloss_each(model, texts: list[str], langs: list[str], beam: int = 1) -> list:
    """The glosses of each sentence, or the SlpError saying why it has none, with any
    :class:`~slp_cli.models.TextToGloss` (only its ``check_lang`` and ``glosses``): one batch,
    and sentence by sentence when the batch fails, so that one bad sentence fails alone."""
    out: list = []
    for text, lang in zip(texts, langs):
        try:
            model.check_lang(lang)
            out.append(None if (text or "").strip() else SlpError("empty text: give a sentence to translate"))
        except SlpError as e:
            out.append(e)
    todo = [i for i, x in enumerate(out) if x is None]
    try:
        found = model.glosses([texts[i] for i in todo], [langs[i] for i in todo], beam=beam) if todo else []
    except SlpError:
        found = []
        for i in todo:
            try:
                found += model.glosses([texts[i]], [langs[i]], beam=beam)
            except SlpError as e:
                found.append(e)
    for i, g in zip(todo, found):
        out[i] = g
    return out


def translate(model, sentences: list[Sentence], *, beam: int = 1, batch_size: int = 64,
              progress: Progress = SILENT) -> tuple[list[dict], list[dict]]:
    """``({"id", "text", "lang", "glosses"} per translated sentence, in order; skipped inputs)``."""
    if beam < 1:
        raise SlpError(f"--beam must be >= 1, not {beam}")
    if batch_size < 1:
        raise SlpError(f"--batch-size must be >= 1, not {batch_size}")
    records, skipped = [], []
    with progress.task("text2gloss", total=len(sentences)) as task:
        for start in range(0, len(sentences), batch_size):
            chunk = sentences[start:start + batch_size]
            for s, g in zip(chunk, gloss_each(model, [s.text for s in chunk], [s.lang for s in chunk], beam)):
                if isinstance(g, SlpError):
                    skipped.append({"input": s.id, "reason": str(g)})
                else:
                    records.append({"id": s.id, "text": s.text, "lang": s.lang, "glosses": g})
            task.advance(len(chunk))
    return records, skipped


def run(model_dir: str | Path, output: str | Path | None = None, *, text: str | None = None,
        lang: str | None = None, texts_from: str | Path | None = None, split: str | None = None, beam: int = 1,
        batch_size: int = 64, device: str = "auto", progress: Progress = SILENT) -> dict:
    """Translate the sentences and (with ``output``) write them as JSON lines, atomically.
    Returns ``{"records", "skipped", "sentences", "output"}``; SlpError if none could be translated."""
    refuse_overwriting([output], [texts_from])
    sentences, empty = read_sentences(text=text, lang=lang, texts_from=texts_from, split=split)
    model = load_glosser(model_dir, device)
    records, skipped = translate(model, sentences, beam=beam, batch_size=batch_size, progress=progress)
    skipped = empty + skipped
    if not records:
        raise SlpError(skipped[0]["reason"] if len(skipped) == 1 else
                       f"none of {len(skipped)} sentences could be translated (first: {skipped[0]['input']}: "
                       f"{skipped[0]['reason']})")
    if output is not None:
        write_text(output, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return {"records": records, "skipped": skipped, "sentences": len(records) + len(skipped),
            "output": str(output) if output is not None else None, "beam": beam}


# --- scoring ----------------------------------------------------------------------------------

def read_glosses(path: str | Path, split: str | None = None) -> dict[str, tuple[list[str], str]]:
    """id -> (glosses, lang) of an slp artifact or a JSON lines file (``glosses`` a list or a
    space-separated string)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise SlpError(f"{path}: file not found")
    if h5py.is_hdf5(path):
        from .artifacts import load

        return {s.id: (list(s.glosses), s.lang) for s in load(path, split=split).samples}
    out = {}
    for where, rec in _json_lines(path):
        rid, g = rec.get("id"), rec.get("glosses")
        if not isinstance(rid, str) or not rid:
            raise SlpError(f"{where}: record without an 'id'; hypotheses and references meet by id")
        if isinstance(g, str):
            g = g.split()
        if not isinstance(g, list) or not all(isinstance(x, str) for x in g):
            raise SlpError(f"{where}: record '{rid}' has no 'glosses' list")
        if split is None or rec.get("split", "train") == split:
            out[rid] = (g, str(rec.get("lang") or ""))
    return out


def score_glosses(hyps: list[list[str]], refs: list[list[str]]) -> dict:
    """Gloss WER (with substitutions, deletions, insertions), BLEU-1..4 (signjoey convention, on
    the space-joined gloss strings) and ROUGE-L of parallel gloss sequences."""
    from .metrics.text import bleu, rouge_l, wer_details

    if not refs:
        raise SlpError("no sentences to score")
    hs, rs = [" ".join(h) for h in hyps], [" ".join(r) for r in refs]
    out = wer_details(hyps, refs)
    b = bleu(hs, rs)
    out.update({k: b[k] for k in ("bleu1", "bleu2", "bleu3", "bleu4", "bp")}, bleu_signature=b["signature"],
               rouge_l=rouge_l([h.lower() for h in hs], [r.lower() for r in rs]), sentences=len(refs))
    return out


def score(hyp: str | Path, ref: str | Path, split: str | None = None) -> dict:
    """Scores of the hypotheses in ``hyp`` (JSON lines from `slp text2gloss`, or any file
    :func:`read_glosses` reads) against the references with the same ids in ``ref``."""
    h, r = read_glosses(hyp), read_glosses(ref, split)
    if not h:
        raise SlpError(f"{hyp}: no hypotheses")
    missing = [i for i in h if i not in r]
    if missing:
        raise SlpError(f"{ref}: no reference for {len(missing)} of {len(h)} hypothesis ids (first: '{missing[0]}')"
                       + (f" in split {split!r}" if split else "") + "; score against the file the texts came from")
    ids = list(h)
    no_ref = [i for i in ids if not r[i][0]]
    if len(no_ref) == len(ids):
        raise SlpError(f"{ref}: the references have no glosses")
    ids = [i for i in ids if r[i][0]]
    out = score_glosses([h[i][0] for i in ids], [r[i][0] for i in ids])
    out.update(hypotheses=str(hyp), references=str(ref), without_reference_glosses=len(no_ref))
    return out
