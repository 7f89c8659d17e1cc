"""Score generated poses against reference poses: `slp score` (docs/design.md, section 8).

Samples are matched by id. Per matched sample: DTW scores under the chosen protocol for all
joints and per articulator (slp_cli.metrics.dtw), the duration ratio and the wrists'
travelled-distance ratio (DTW is blind to tempo, so these tell a slowed-down or frozen signer
apart, as the SLRTP 2025 evaluation does). Where the hypothesis samples carry a back-translation
(``Sample.translation``), BLEU-1..4 / chrF / ROUGE-L against the reference samples' ``text``.
Undefined scores (a sequence with no frame left for a selection, or no finite alignment) are
counted and reported, never averaged in. With several languages a per-language breakdown is
added.

``text_scores`` takes plain (hypothesis, reference, language) triples so that a caller that
back-translates poses itself (hyp and ground truth through the same model) can score both rows
the same way. ``run(..., backtranslate_with=SLT_DIR)`` does exactly that (:func:`backtranslate`):
the matched hypothesis and reference poses both go through a trained SLT model
(``slp_cli.translate``); the hypothesis' back-translations replace any it carried and give the
``text`` scores, and the reference poses' back-translations give the ground-truth row (the upper
bound the papers print above their methods). Where the model recognises glosses (an SLT model
with a CTC gloss head, trained on a corpus with glosses) and the reference samples have glosses,
the recognised glosses of both are scored against the reference glosses by WER (the
back-translation gloss WER that gloss-level SLP papers such as GLOS report). Decoding is beam 4
by default (``slp_cli.translate.DEFAULT_BEAM``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np

from .artifacts import Artifact, Sample, load
from .atomic import refuse_overwriting
from .errors import SlpError
from .progress import SILENT, Progress, track
from .skeleton import L_WRIST, R_WRIST


# --- per-sample measures ----------------------------------------------------------------------


def peak_derivatives(pose: np.ndarray, fps: float) -> tuple[float, float]:
    """Smoothness of the signing (GLOS reports it): the peak speed and the peak jerk of the body
    wrists, i.e. the largest norm over time and both wrists of the first and third finite
    differences of their positions, times fps and fps**3 (units per second, per second cubed).
    Differences that touch a missing frame are left out; NaN when none is left."""
    peaks = []
    for order in (1, 3):
        best = np.nan
        for w in (R_WRIST, L_WRIST):
            d = np.diff(pose[:, w].astype(np.float64), n=order, axis=0) * fps ** order
            norms = np.linalg.norm(d, axis=-1)
            norms = norms[np.isfinite(norms)]
            if norms.size:
                best = np.nanmax([best, norms.max()])
        peaks.append(float(best))
    return peaks[0], peaks[1]


def wrist_travel(pose: np.ndarray) -> tuple[float, float]:
    """Distance travelled by the right and left body wrists: sum of frame-to-frame displacements
    (steps where the wrist is missing in either frame are skipped)."""
    out = []
    for w in (R_WRIST, L_WRIST):
        d = np.linalg.norm(np.diff(pose[:, w].astype(np.float64), axis=0), axis=-1)
        out.append(float(np.nansum(d)) if d.size else 0.0)
    return out[0], out[1]


def _defined(x: float) -> bool:
    return x == x and not math.isinf(x)


def _aggregate(terms: list[tuple[float, float]], pooled: bool) -> dict:
    """Corpus value of per-sample (num, den) terms: mean of num/den, or sum(num)/sum(den)."""
    ok = [(n, d) for n, d in terms if _defined(n) and _defined(d) and d > 0]
    out = {"n": len(ok), "undefined": len(terms) - len(ok)}
    if not ok:
        out["value"] = float("nan")
    elif pooled:
        out["value"] = sum(n for n, _ in ok) / sum(d for _, d in ok)
    else:
        out["value"] = float(np.mean([n / d for n, d in ok]))
    return out


def _mean(values: list[float]) -> dict:
    ok = [v for v in values if _defined(v)]
    return {"value": float(np.mean(ok)) if ok else float("nan"), "n": len(ok),
            "undefined": len(values) - len(ok)}


# --- text -------------------------------------------------------------------------------------


def text_scores(triples: Iterable[tuple[str, str, str]], bleu_tokenize: str = "signjoey") -> dict:
    """BLEU-1..4, chrF and ROUGE-L of (hypothesis, reference, lang) triples, all languages pooled.

    Texts are normalised per language first under the signjoey convention (lower case, single
    spaces, Chinese split into characters), so mixed-language corpora pool correctly.
    """
    from .metrics.text import bleu, chrf_with_signature, is_chinese, normalize, rouge_l

    triples = list(triples)
    if not triples:
        return {"n": 0}
    if bleu_tokenize == "signjoey":
        hyps = [normalize(h, lang) for h, _, lang in triples]
        refs = [normalize(r, lang) for _, r, lang in triples]
        lang = None  # already split per language
    else:
        hyps = [h for h, _, _ in triples]
        refs = [r for _, r, _ in triples]
        langs = {lang for _, _, lang in triples}
        lang = langs.pop() if len(langs) == 1 else None
    b = bleu(hyps, refs, lang=lang, tokenize=bleu_tokenize)
    # ROUGE-L per character for Chinese: split those texts (normalize does so already).
    rh = [normalize(h, lg) if is_chinese(lg) else h for h, (_, _, lg) in zip(hyps, triples)]
    rr = [normalize(r, lg) if is_chinese(lg) else r for r, (_, _, lg) in zip(refs, triples)]
    chrf, chrf_sig = chrf_with_signature(hyps, refs)
    return {
        "n": len(triples),
        **{f"bleu{n}": b[f"bleu{n}"] for n in range(1, 5)},
        "chrf": chrf,
        "rouge_l": rouge_l(rh, rr),
        "bleu_signature": b["signature"],
        "chrf_signature": chrf_sig,
    }


# --- corpus -----------------------------------------------------------------------------------


def _match(hyp: Artifact, ref: Artifact) -> tuple[list[tuple[Sample, Sample]], list[str], list[str]]:
    by_id = {s.id: s for s in hyp.samples}
    ref_ids = {s.id for s in ref.samples}
    pairs = [(by_id[r.id], r) for r in ref.samples if r.id in by_id]
    missing = [r.id for r in ref.samples if r.id not in by_id]
    extra = [s.id for s in hyp.samples if s.id not in ref_ids]
    return pairs, missing, extra


def _summarise(rows: list[dict], protocol: str, bleu_tokenize: str) -> dict:
    """Corpus figures of per-sample rows (used for the whole corpus and for each language)."""
    from .metrics.dtw import PROTOCOLS

    proto = PROTOCOLS[protocol]
    pose = {}
    for m in proto.metrics:
        pose[m] = {sel: _aggregate([row["_terms"][m][sel] for row in rows], proto.pooled)
                   for sel in rows[0]["_terms"][m]}
    out = {"samples": len(rows), "pose": pose,
           "duration_ratio": _mean([row["duration_ratio"] for row in rows])}
    travel = [row["_travel"] for row in rows if row["_travel"] is not None]
    if travel:
        # SLRTP's definition: per wrist, mean hyp travel / mean ref travel, then the two averaged.
        t = np.asarray(travel, dtype=np.float64)  # (N, 4): hyp R, hyp L, ref R, ref L
        ratios = [t[:, 0].mean() / t[:, 2].mean() if t[:, 2].mean() > 0 else float("nan"),
                  t[:, 1].mean() / t[:, 3].mean() if t[:, 3].mean() > 0 else float("nan")]
        out["wrist_travel_ratio"] = {"value": float(np.mean(ratios)), "n": len(travel),
                                     "undefined": int(sum(not _defined(r) for r in ratios))}
    smooth = [row["_smooth"] for row in rows if row["_smooth"] is not None]
    if smooth:  # means over samples of each sequence's peaks, the reference's beside them
        hv, hj, rv, rj = zip(*smooth)
        out["smoothness"] = {"peak_velocity": _mean(list(hv)), "peak_jerk": _mean(list(hj)),
                             "ref_peak_velocity": _mean(list(rv)), "ref_peak_jerk": _mean(list(rj))}
    # once the hypothesis carries back-translations, a sample translated to nothing is an empty
    # hypothesis (it lowers BLEU and ROUGE), not a sample left out
    if any(row["translation"] for row in rows):
        texts = [(row["translation"], row["text"], row["lang"]) for row in rows if row["text"]]
        out["text"] = text_scores(texts, bleu_tokenize)
        out["text"]["without_translation"] = sum(1 for row in rows if row["text"] and not row["translation"])
    return out


def score(hyp: Artifact, ref: Artifact, protocol: str = "slp", bleu_tokenize: str = "signjoey",
          progress: Progress = SILENT) -> dict:
    """Score ``hyp`` against ``ref`` (samples matched by id); see the module docstring.

    Returns a JSON-ready dict: ``protocol``, ``samples`` (matched count and the ids missing on
    either side), corpus figures (``pose[metric][selection] = {value, n, undefined}``,
    ``duration_ratio``, ``wrist_travel_ratio``, ``text``), ``by_lang`` when several languages,
    and ``per_sample`` rows.
    """
    from .metrics.dtw import PROTOCOLS, dtw_terms

    if protocol not in PROTOCOLS:
        raise SlpError(f"unknown DTW protocol '{protocol}'; choose one of {', '.join(PROTOCOLS)}")
    if bleu_tokenize not in ("signjoey", "13a"):
        raise SlpError(f"unknown BLEU convention '{bleu_tokenize}'; choose signjoey or 13a")
    if hyp.layout != ref.layout:
        raise SlpError(f"{hyp.path}: layout {hyp.layout} differs from the reference {ref.path} "
                       f"({ref.layout}); convert one of them first")
    if hyp.normalized != ref.normalized or (hyp.normalization and ref.normalization
                                            and hyp.normalization != ref.normalization):
        def said(a):
            return f"normalized ({a.normalization or 'unknown way'})" if a.normalized else "not normalized (raw units)"
        raise SlpError(f"{hyp.path} is {said(hyp)} but {ref.path} is {said(ref)}: errors between them would be in "
                       "different units; normalize both the same way (`slp normalize`)")
    pairs, missing, extra = _match(hyp, ref)
    if not pairs:
        raise SlpError(f"{hyp.path}: none of its {len(hyp.samples)} sample ids appears in {ref.path} "
                       f"({len(ref.samples)} samples); score a generation of the same samples (check --split)")
    rows = []
    for h, r in track(pairs, progress, "scoring"):
        terms = dtw_terms(h.pose, r.pose, protocol, fps=(hyp.fps, ref.fps))
        dur = (h.num_frames / hyp.fps) / (r.num_frames / ref.fps)
        travel = smooth = None
        if hyp.layout == "mp178":
            travel = (*wrist_travel(h.pose), *wrist_travel(r.pose))
            smooth = (*peak_derivatives(h.pose, hyp.fps), *peak_derivatives(r.pose, ref.fps))
        rows.append({"id": r.id, "lang": r.lang, "text": r.text, "translation": h.translation,
                     "duration_ratio": dur, "_terms": terms, "_travel": travel, "_smooth": smooth})

    proto = PROTOCOLS[protocol]
    result = {
        "protocol": protocol,
        "protocol_label": proto.label,
        "pooled": proto.pooled,
        "bleu_tokenize": bleu_tokenize,
        "hyp": str(hyp.path),
        "ref": str(ref.path),
        "samples": {"matched": len(pairs), "missing_in_hyp": missing, "extra_in_hyp": extra},
        **{k: v for k, v in _summarise(rows, protocol, bleu_tokenize).items() if k != "samples"},
    }
    langs = sorted({row["lang"] for row in rows})
    if len(langs) > 1:
        result["by_lang"] = {lg: _summarise([row for row in rows if row["lang"] == lg], protocol, bleu_tokenize)
                             for lg in langs}
    result["per_sample"] = [_sample_row(row) for row in rows]
    return result


def _sample_row(row: dict) -> dict:
    out = {"id": row["id"], "lang": row["lang"]}
    for m, sel in row["_terms"].items():
        out[m] = {s: (n / d if _defined(d) and d > 0 else float("nan")) for s, (n, d) in sel.items()}
    out["duration_ratio"] = row["duration_ratio"]
    if row["_travel"] is not None:
        hr, hl, rr, rl = row["_travel"]
        out["wrist_travel_ratio"] = (hr + hl) / (rr + rl) if rr + rl > 0 else float("nan")
    if row["_smooth"] is not None:
        out["peak_velocity"], out["peak_jerk"] = row["_smooth"][:2]
    return out


def jsonable(obj):
    """NaN/inf are not JSON: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    return obj


def write_json(result: dict, path: str | Path) -> Path:
    """Write scores atomically; NaN -> null."""
    from .atomic import write_json as write

    return write(path, jsonable(result))


def gloss_wer(recognised: list[list[str]], references: list[list[str]]) -> dict:
    """Corpus WER (%) of recognised gloss sequences against reference ones, over the pairs whose
    reference has glosses: ``{"wer", "n", "ref_glosses"}`` (wer NaN when no pair has any)."""
    from .metrics.text import wer

    pairs = [(h, r) for h, r in zip(recognised, references) if r]
    value = wer([h for h, _ in pairs], [r for _, r in pairs]) if pairs else float("nan")
    return {"wer": value, "n": len(pairs), "ref_glosses": sum(len(r) for _, r in pairs)}


def backtranslate(hyp: Artifact, ref: Artifact, model_dir: str | Path, *, beam: int | None = None,
                  batch_size: int = 32, device: str = "auto", bleu_tokenize: str = "signjoey",
                  progress: Progress = SILENT) -> dict:
    """Back-translate the matched hypothesis and reference poses with a pose-to-text model.

    Sets ``translation`` of the matched hypothesis samples (in the reference's language) and
    returns ``{"model", "beam", "ground_truth": text scores of the reference poses' translations,
    "ground_truth_by_lang" (several languages), "skipped", "translations": {id: {"hyp", "ground_truth"}}}``,
    and where the model recognises glosses and the reference has them, ``"gloss_wer": {"hyp":
    gloss_wer(...), "ground_truth": gloss_wer(...)}`` (plus ``"gloss_wer_by_lang"``) and the
    recognised glosses in ``translations`` (``hyp_glosses``, ``ground_truth_glosses``).
    """
    from .translate import DEFAULT_BEAM, back_translate, check_scale, load_translator

    beam = DEFAULT_BEAM if beam is None else beam

    pairs, _, _ = _match(hyp, ref)
    if not pairs:
        raise SlpError(f"{hyp.path}: none of its sample ids appears in {ref.path}; nothing to back-translate")
    model = load_translator(model_dir, device)
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    check_scale(model, hyps, str(hyp.path))
    check_scale(model, refs, str(ref.path))
    langs = [r.lang for r in refs]
    kw = dict(beam=beam, batch_size=batch_size, progress=progress)
    hyp_bt = back_translate(model, hyps, langs=langs, **kw)
    gt_bt = back_translate(model, refs, **kw)
    hyp_texts, gt_texts = hyp_bt.texts, gt_bt.texts
    for h, t in zip(hyps, hyp_texts):
        h.translation = t
    triples = [(t, r.text, r.lang) for t, r in zip(gt_texts, refs) if r.text]  # "" counts as an empty hypothesis
    out = {"model": str(model_dir), "beam": beam, "ground_truth": text_scores(triples, bleu_tokenize),
           "skipped": {"hyp": hyp_bt.skipped, "ref": gt_bt.skipped},
           "translations": {r.id: {"hyp": h, "ground_truth": g} for r, h, g in zip(refs, hyp_texts, gt_texts)}}
    lgs = sorted({r.lang for r in refs})
    if len(lgs) > 1:
        out["ground_truth_by_lang"] = {lg: text_scores([x for x in triples if x[2] == lg], bleu_tokenize)
                                       for lg in lgs}
    if hyp_bt.glosses is not None and any(r.glosses for r in refs):
        # a skipped sample recognises nothing: an empty hypothesis, as for the text scores
        ref_glosses = [list(r.glosses) for r in refs]
        out["gloss_wer"] = {"hyp": gloss_wer(hyp_bt.glosses, ref_glosses),
                            "ground_truth": gloss_wer(gt_bt.glosses, ref_glosses)}
        if len(lgs) > 1:
            out["gloss_wer_by_lang"] = {lg: {name: gloss_wer([g for g, r in zip(found, refs) if r.lang == lg],
                                                             [list(r.glosses) for r in refs if r.lang == lg])
                                             for name, found in (("hyp", hyp_bt.glosses), ("ground_truth", gt_bt.glosses))}
                                        for lg in lgs}
        for r, h, g in zip(refs, hyp_bt.glosses, gt_bt.glosses):
            out["translations"][r.id].update(hyp_glosses=h, ground_truth_glosses=g)
    return out


def run(hyp_path: str | Path, ref_path: str | Path, json_path: str | Path | None = None,
        protocol: str = "slp", split: str | None = None, bleu_tokenize: str = "signjoey",
        progress: Progress = SILENT, backtranslate_with: str | Path | None = None,
        beam: int | None = None, device: str = "auto") -> dict:
    """Load both artifacts (``split`` keeps one split of each), back-translate both with an SLT
    model if ``backtranslate_with`` names one (beam 4 unless ``beam`` is given), score, write JSON if
    asked."""
    refuse_overwriting([json_path], [hyp_path, ref_path])
    hyp = load(hyp_path, split=split)
    ref = load(ref_path, split=split)
    if not ref.samples:
        raise SlpError(f"{ref_path}: no samples" + (f" in split '{split}'" if split else ""))
    bt = None
    if backtranslate_with is not None:
        bt = backtranslate(hyp, ref, backtranslate_with, beam=beam, device=device, bleu_tokenize=bleu_tokenize,
                           progress=progress)
    result = score(hyp, ref, protocol=protocol, bleu_tokenize=bleu_tokenize, progress=progress)
    result["split"] = split
    if bt is not None:
        result["backtranslation"] = bt
    if json_path is not None:
        write_json(result, json_path)
    return result
