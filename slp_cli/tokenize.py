"""The tokenizer stages: `slp tokenize`, `slp reconstruct` and `slp eval-tokenizer`.

A tokenizer is any trained :class:`~slp_cli.models.PoseTokenizer` run directory (A2V-SLP's
disentangled VAE, slp_cli/models/vae.py; SOKE's decoupled VQ-VAE, slp_cli/models/vqvae.py).
Tokenizing writes, per sample, the tokenizer's named arrays beside the unchanged pose (so the
file stays a valid pose artifact that `slp info`, `slp render` and the generators read), e.g.:

* VAE: ``mu`` and ``logvar``, (T, 80) float32 per-frame latent means and log-variances;
* VQ-VAE: ``tokens_<stream>`` int32 ids at a quarter of the frame rate, one array per token
  stream (``body``, ``left_hand``, ``right_hand``; ``hands`` or ``whole_body`` for the ablations).

A VQ-VAE trained on SMPL-X parameters (``--input smplx``, SOKE's input: the (T, 133) ``smplx``
array `slp fit-smplx` writes) encodes that array instead of the pose; `slp reconstruct` writes
what it decodes back into the ``smplx`` array (the other arrays of the fit, ``global_orient``,
``betas``, ``camera``, kept) and, given the SMPL-X model files (``smplx_model_dir``; licence-gated,
never shipped), poses: the fitted model's mp178 points through the fit's camera, as `slp
fit-smplx` writes them (NaN poses without the model files). `slp eval-tokenizer` reports its
errors in parameter space, and with the model files also MPJPE / PA-MPJPE of the posed points
(reconstruction against the posed input parameters: SOKE's tables 3-4 score joints this way).

The provenance records the tokenizer directory, its model, a fingerprint of its weights and the
array names, so that `slp reconstruct` decodes with the model that encoded, and refuses any
other. Reconstruction decodes the arrays (a VAE decodes its latent means) back to (T, 178, 3)
poses with the same sample ids, to be scored (`slp score`) or rendered.

`slp eval-tokenizer` measures what a tokenizer keeps (SOKE tables 3-4 and S6 report PA-MPJPE;
A2V-SLP's ablation, table 1, reconstruction error): MPJPE (mean Euclidean joint error over the
joints present in the reference, frame by frame, in the artifact's units) and PA-MPJPE (the same
after a per-frame similarity Procrustes alignment of each articulator, SOKE's ``rigid_align``),
per articulator and overall, beside the mean-pose baseline (every frame predicted as the mean
pose of the artifact's training split); for a discrete tokenizer also the codebook use (share of
codes used) and perplexity (exp of the entropy of the code histogram) of each token array.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from .artifacts import ArtifactWriter, Sample, load, provenance, save
from .atomic import refuse_overwriting
from .errors import SlpError
from .progress import SILENT, Progress, track
from .skeleton import ARTICULATORS


def load_tokenizer(model_dir: str | Path, device: str = "auto"):
    """A trained pose tokenizer from its run directory, in eval mode on ``device``; any other kind
    of model is refused with one line."""
    from .device import resolve_device
    from .models import PoseTokenizer, load_model

    model = load_model(model_dir, expect=PoseTokenizer)
    return model.to(resolve_device(device)).eval()


def fingerprint(model) -> str:
    """A short hash of a model's weights and buffers: tokens decode only with the model that made them."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _too_short(model, sample: Sample) -> str | None:
    if sample.num_frames < model.min_frames:
        return f"{sample.num_frames} frames, fewer than the {model.min_frames} this tokenizer ({model.name}) needs"
    if not np.isfinite(sample.pose).all(-1).any():
        return "no joint present in any frame"
    return None


def model_input(model, sample: Sample) -> np.ndarray:
    """What ``model`` encodes of a sample: its pose, or the array its declared input names (the
    SMPL-X VQ-VAE's (T, 133) ``smplx``)."""
    return model.sample_input(sample) if hasattr(model, "sample_input") else sample.pose


def _smplx_input(model) -> bool:
    return getattr(model, "input_name", "keypoints") == "smplx"


def load_body_model(smplx_model_dir, device: str = "cpu"):
    """The SMPL-X body model that poses parameters (slp_cli/extract/smplx_fit.py), or None."""
    if smplx_model_dir is None:
        return None
    from .extract.smplx_fit import BodyModel

    return BodyModel(smplx_model_dir, device=device)


def pose_smplx(body, smplx: np.ndarray, arrays: dict[str, np.ndarray], sample_id: str = "") -> np.ndarray:
    """(T, 133) SMPL-X values -> (T, 178, 3) mp178 points: the model posed with the sample's
    ``global_orient``, ``betas`` and ``camera`` (as `slp fit-smplx` writes them) and projected by
    that camera, as the fit's own poses; NaN at the points SMPL-X does not have."""
    import torch

    from .extract.smplx_fit import MP178_POINTS, SMPLX133, SMPLX_POINTS

    missing = [k for k in ("global_orient", "betas", "camera") if k not in arrays]
    if missing:
        raise SlpError(f"sample '{sample_id}' has no {', '.join(missing)} array(s) to pose SMPL-X parameters with; "
                       f"tokenize an artifact written by `slp fit-smplx`")
    t = len(smplx)
    dev = body.device
    f = lambda x: torch.as_tensor(np.array(x, np.float32), device=dev)  # noqa: E731 - a copy: inputs may be read-only views
    x = f(smplx)
    zeros = torch.zeros(t, 1, 3, device=dev)
    # the fit's joint order: global, 11 lower joints at rest, the 10 upper-body joints, jaw, eyes, hands
    full = torch.cat([f(arrays["global_orient"]).view(t, 1, 3), zeros.expand(t, 11, 3),
                      x[:, SMPLX133["body"]].view(t, 10, 3), x[:, SMPLX133["jaw"]].view(t, 1, 3),
                      zeros.expand(t, 2, 3), x[:, SMPLX133["left_hand"]].view(t, 15, 3),
                      x[:, SMPLX133["right_hand"]].view(t, 15, 3)], 1)
    betas = f(arrays["betas"]).reshape(1, -1)[:, : body.sparse.num_betas].expand(t, -1)
    with torch.no_grad():
        joints, _ = body.sparse(full, torch.cat([betas, x[:, SMPLX133["expression"]]], -1))
        cam = f(arrays["camera"])
        flip = torch.tensor([1.0, -1.0, -1.0], device=dev)
        points = cam[:, :1, None] * joints[:, torch.as_tensor(SMPLX_POINTS, device=dev)] * flip + cam[:, None, 1:]
    pose = np.full((t, 178, 3), np.nan, np.float32)
    pose[:, MP178_POINTS] = points.cpu().numpy()
    return pose


def encode_sample(model, pose: np.ndarray) -> dict[str, np.ndarray]:
    """One (T, 178, 3) sequence -> the tokenizer's named arrays (numpy)."""
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        arrays = model.encode(torch.as_tensor(np.asarray(pose, dtype=np.float32), device=device))
    return {name: a.cpu().numpy() for name, a in arrays.items()}


def decode_sample(model, arrays: dict[str, np.ndarray], num_frames: int) -> np.ndarray:
    """Named arrays of one sample -> its (num_frames, 178, 3) reconstruction ((num_frames, 133)
    SMPL-X values for an SMPL-X tokenizer)."""
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        pose = model.decode({n: torch.as_tensor(np.asarray(arrays[n]), device=device) for n in model.array_names},
                            num_frames=num_frames)
    return pose.float().cpu().numpy()[:num_frames]


def _usable(model, art, path, split) -> tuple[list[Sample], list[dict]]:
    """The samples the tokenizer can encode, and the others as skipped records; an error if none."""
    if not art.samples:
        where = f" in split '{split}'" if split else ""
        raise SlpError(f"{path}: no samples{where} to process")
    kept, skipped = [], []
    for s in art.samples:
        reason = _too_short(model, s)
        if reason:
            skipped.append({"input": s.id, "reason": reason})
        else:
            kept.append(s)
    if not kept:
        raise SlpError(f"{path}: no sample can be tokenized (sample '{skipped[0]['input']}': {skipped[0]['reason']})")
    return kept, skipped


def tokenize(model_dir: str | Path, in_path: str | Path, out_path: str | Path, *, split: str | None = None,
             device: str = "auto", progress: Progress = SILENT) -> dict:
    """Encode every sample of ``in_path`` with the tokenizer in ``model_dir``; write ``out_path``.

    Samples that cannot be tokenized (shorter than the tokenizer's ``min_frames``, e.g. the
    VQ-VAE's downsampling factor, or without any joint) are skipped, recorded in the output's
    skipped list and counted in the summary; arrays of an earlier tokenizer are replaced.
    """
    refuse_overwriting([out_path], [in_path])
    model = load_tokenizer(model_dir, device)
    art = load(in_path, split=split)
    kept, skipped = _usable(model, art, in_path, split)
    names = model.array_names
    earlier = set(art.provenance.get("args", {}).get("arrays", [])) if art.provenance.get("stage") == "tokenize" \
        else set()
    prov = provenance("tokenize", {"model": Path(model_dir).resolve(), "kind": model.name,
                                   "fingerprint": fingerprint(model), "arrays": names, "split": split}, [in_path])
    with ArtifactWriter(out_path, fps=art.fps, layout=art.layout, normalized=art.normalized,
                        normalization=art.normalization, provenance=prov) as w:
        for s in skipped:
            w.log_skipped(s["input"], s["reason"])
        chunk = []
        for s in track(kept, progress, "tokenizing"):
            # keep other named arrays (e.g. SMPL-X parameters), replace any earlier tokenizer's
            other = {k: v for k, v in s.arrays.items() if k not in earlier and k not in names}
            chunk.append(dataclasses.replace(s, arrays={**other, **encode_sample(model, model_input(model, s))}))
            if len(chunk) == 64:
                w.extend(chunk)
                chunk = []
        w.extend(chunk)
        if art.stats:
            w.set_stats(art.stats["mean"], art.stats["std"])
    return {"samples": len(kept), "skipped": skipped, "kind": model.name, "arrays": names, "output": str(out_path)}


def reconstruct(model_dir: str | Path, tokens_path: str | Path, out_path: str | Path, *, device: str = "auto",
                smplx_model_dir: str | Path | None = None, progress: Progress = SILENT) -> dict:
    """Decode a tokens artifact (written by :func:`tokenize`) back to poses with the same ids
    (an SMPL-X tokenizer: parameters, posed with the model files in ``smplx_model_dir``)."""
    refuse_overwriting([out_path], [tokens_path])
    model = load_tokenizer(model_dir, device)
    art = load(tokens_path)
    prov = art.provenance
    args = prov.get("args", {})
    if prov.get("stage") != "tokenize":
        raise SlpError(f"{tokens_path}: not a tokens artifact (it was written by "
                       f"'{prov.get('stage', 'unknown')}'); make one with `slp tokenize`")
    if args.get("kind") != model.name:
        raise SlpError(f"{tokens_path}: holds {args.get('kind')} arrays, but {model_dir} is a {model.name}; "
                       f"decode with the tokenizer that made them ({args.get('model')})")
    if args.get("fingerprint") != fingerprint(model):
        raise SlpError(f"{tokens_path}: was tokenized by another {model.name} ({args.get('model')}) than "
                       f"{model_dir}; decode with the model that made the tokens")
    if not art.samples:
        raise SlpError(f"{tokens_path}: no samples to decode")
    names = model.array_names
    body = load_body_model(smplx_model_dir) if _smplx_input(model) else None
    out = []
    for s in track(art.samples, progress, "decoding"):
        missing = [n for n in names if n not in s.arrays]
        if missing:
            raise SlpError(f"{tokens_path}: sample '{s.id}' has no array(s) {', '.join(missing)}")
        rec = decode_sample(model, s.arrays, s.num_frames)
        if _smplx_input(model):  # decoded parameters; the fit's camera and shape kept to pose them
            kept = {k: v for k, v in s.arrays.items() if k in ("global_orient", "betas", "camera")}
            pose = pose_smplx(body, rec, s.arrays, s.id) if body is not None \
                else np.full((s.num_frames, 178, 3), np.nan, np.float32)
            arrays = {**kept, "smplx": rec}
        else:
            pose, arrays = rec, {}
        out.append(Sample(id=s.id, pose=pose, text=s.text, glosses=list(s.glosses), lang=s.lang, signer=s.signer,
                          split=s.split, gloss_spans=s.gloss_spans, arrays=arrays))
    save(out, out_path, fps=art.fps, layout=art.layout, normalized=art.normalized,
         normalization=art.normalization, stats=art.stats or None,
         provenance=provenance("reconstruct", {"model": Path(model_dir).resolve(), "kind": model.name},
                               [tokens_path]))
    return {"samples": len(out), "kind": model.name, "output": str(out_path),
            **({"posed": body is not None} if _smplx_input(model) else {})}


# --- evaluation -----------------------------------------------------------------------------------

def _frame_errors(hyp: np.ndarray, ref: np.ndarray) -> tuple[float, int, float, int]:
    """Summed joint errors and joint count (MPJPE), summed per-frame Procrustes-aligned mean errors
    and frame count (PA-MPJPE) of one articulator; joints missing in the reference are left out,
    frames with fewer than 3 present joints have no PA error."""
    from .metrics.dtw import _cost_pa, _split_missing

    present = np.isfinite(ref).all(-1)
    dist = np.linalg.norm(hyp - np.where(present[..., None], ref, 0.0), axis=-1)
    mpjpe_sum, mpjpe_n = float(dist[present].sum()), int(present.sum())
    h, mh, _, _ = _split_missing(np.ascontiguousarray(hyp, dtype=np.float32))
    r, mr, _, _ = _split_missing(np.ascontiguousarray(ref, dtype=np.float32))
    pa_sum, pa_n = 0.0, 0
    for i in np.flatnonzero(present.sum(1) >= 3):
        # SOKE's rigid_align: a similarity transform per frame, the diagonal of the DTW kernel's cost
        pa_sum += float(_cost_pa(h[i:i + 1], mh[i:i + 1], r[i:i + 1], mr[i:i + 1])[0, 0])
        pa_n += 1
    return mpjpe_sum, mpjpe_n, pa_sum, pa_n


# SMPL-X values (SOKE's 133) by articulator, as per-joint 3-vectors (axis-angle) or, for the
# expression, single coefficients: the parameter-space errors of an SMPL-X tokenizer.
SMPLX_ERROR_GROUPS = {"body": [(0, 30, 3)], "left_hand": [(30, 75, 3)], "right_hand": [(75, 120, 3)],
                      "face": [(120, 123, 3), (123, 133, 1)]}


def _smplx_errors(hyp: np.ndarray, ref: np.ndarray) -> dict[str, tuple[float, int]]:
    """Summed per-joint parameter errors and their count per articulator (and ``all``): the L2
    distance of each joint's axis-angle 3-vector, the absolute error of each expression value;
    values missing in the reference are left out."""
    out = {}
    for art, spans in SMPLX_ERROR_GROUPS.items():
        total, n = 0.0, 0
        for a, b, k in spans:
            h, r = hyp[:, a:b].reshape(len(hyp), -1, k), ref[:, a:b].reshape(len(ref), -1, k)
            ok = np.isfinite(r).all(-1)
            d = np.linalg.norm(h - np.where(ok[..., None], r, 0.0), axis=-1)
            total, n = total + float(d[ok].sum()), n + int(ok.sum())
        out[art] = (total, n)
    out["all"] = (sum(v[0] for v in out.values()), sum(v[1] for v in out.values()))
    return out


def _evaluate_smplx(model, model_dir, data_path, split, kept, skipped, train_samples, counts, progress,
                    body) -> dict:
    """:func:`evaluate_tokenizer` for a tokenizer of SMPL-X parameters: errors in parameter space
    (no body model needed), beside the training split's mean parameters; with a ``body`` model
    also joint errors of the posed parameters (input units)."""
    mean = np.nanmean(np.concatenate([model_input(model, s) for s in (train_samples or kept)]), axis=0)
    names = ["all", *SMPLX_ERROR_GROUPS]
    sums, base = {n: np.zeros(2) for n in names}, {n: np.zeros(2) for n in names}
    selections = {"all": slice(None), **ARTICULATORS}
    joint_sums = {n: np.zeros(4) for n in selections}
    joint_base = {n: np.zeros(2) for n in selections}
    for s in track(kept, progress, "evaluating"):
        ref = model_input(model, s)
        arrays = encode_sample(model, ref)
        rec = decode_sample(model, arrays, s.num_frames)
        for name in counts:
            counts[name] += np.bincount(arrays[name].ravel(), minlength=len(counts[name]))
        average = np.broadcast_to(mean, ref.shape)
        for name, v in _smplx_errors(rec, ref).items():
            sums[name] += v
        for name, v in _smplx_errors(average, ref).items():
            base[name] += v
        if body is not None:
            posed_ref = pose_smplx(body, np.nan_to_num(ref), s.arrays, s.id)
            posed_rec, posed_avg = pose_smplx(body, rec, s.arrays, s.id), pose_smplx(body, average, s.arrays, s.id)
            for name, sl in selections.items():
                joint_sums[name] += _frame_errors(posed_rec[:, sl], posed_ref[:, sl])
                present = np.isfinite(posed_ref[:, sl]).all(-1)
                d = np.linalg.norm(posed_avg[:, sl] - posed_ref[:, sl], axis=-1)
                joint_base[name] += (float(d[present].sum()), int(present.sum()))

    def ratio(num, den):
        return float(num / den) if den else float("nan")

    params = {"param_error": {n: ratio(*sums[n]) for n in names},
              "mean_param_error": {n: ratio(*base[n]) for n in names}}
    if body is not None:
        errors = {"units": "the posed points' coordinates (the fit's camera), as the keypoint tokenizers'",
                  "mpjpe": {n: ratio(v[0], v[1]) for n, v in joint_sums.items()},
                  "pa_mpjpe": {n: ratio(v[2], v[3]) for n, v in joint_sums.items()},
                  "mean_pose_mpjpe": {n: ratio(v[0], v[1]) for n, v in joint_base.items()}}
    else:  # the table's columns hold the parameter errors
        errors = {"units": "SMPL-X parameters: axis-angle distance per joint (radians), absolute error per "
                           "expression value (pass the SMPL-X model files for joint errors)",
                  "mpjpe": params["param_error"], "pa_mpjpe": {n: float("nan") for n in names},
                  "mean_pose_mpjpe": params["mean_param_error"]}
    return {
        "model": str(model_dir), "kind": model.name, "input": "smplx", "posed": body is not None,
        "data": str(data_path), "split": split, "samples": len(kept), "frames": int(sum(s.num_frames for s in kept)), "skipped": skipped,
        **errors, **params, "codebook": {g: _codebook_stats(c) for g, c in counts.items()},
    }


def _codebook_stats(counts: np.ndarray) -> dict:
    p = counts / max(counts.sum(), 1)
    nz = p[p > 0]
    return {"size": int(len(counts)), "used": int((counts > 0).sum()), "usage": float((counts > 0).mean()),
            "perplexity": float(np.exp(-(nz * np.log(nz)).sum()))}


def evaluate_tokenizer(model_dir: str | Path, data_path: str | Path, split: str | None = "test", *,
                       device: str = "auto", smplx_model_dir: str | Path | None = None,
                       progress: Progress = SILENT) -> dict:
    """Reconstruction errors of a tokenizer on ``split`` of ``data_path`` (None: every sample).

    Returns ``{"mpjpe", "pa_mpjpe", "mean_pose_mpjpe": {selection: value}}`` over the selections
    ``all`` and the mp178 articulators, ``codebook`` (discrete tokenizers: per token array size,
    used, usage, perplexity), and the counts of samples, frames and skipped samples. For a
    tokenizer of SMPL-X parameters the same keys hold parameter-space errors over ``all`` and
    body, hands and face (jaw and expression) -- ``units`` says so -- and PA-MPJPE is NaN; given
    the SMPL-X model files (``smplx_model_dir``) they hold the posed points' joint errors, and
    ``param_error`` / ``mean_param_error`` the parameter errors.
    """
    model = load_tokenizer(model_dir, device)
    art = load(data_path)
    train_samples = art.select("train")
    art.samples = art.select(split)
    kept, skipped = _usable(model, art, data_path, split)
    selections = {"all": slice(None), **ARTICULATORS}
    sums = {name: np.zeros(4) for name in selections}
    base = {name: np.zeros(2) for name in selections}
    counts = {name: np.zeros(size) for name, size in model.codebooks.items()}
    if _smplx_input(model):
        return _evaluate_smplx(model, model_dir, data_path, split, kept, skipped, train_samples, counts, progress,
                               load_body_model(smplx_model_dir))
    # the baseline predicts the training split's mean pose (what a model trained on this artifact
    # would have seen), or the evaluated samples' own when the artifact has no training split
    mean_pose = np.nanmean(np.concatenate([s.pose for s in (train_samples or kept)]), axis=0)
    for s in track(kept, progress, "evaluating"):
        arrays = encode_sample(model, s.pose)
        rec = decode_sample(model, arrays, s.num_frames)
        for name in counts:
            counts[name] += np.bincount(arrays[name].ravel(), minlength=len(counts[name]))
        for name, sl in selections.items():
            sums[name] += _frame_errors(rec[:, sl], s.pose[:, sl])
            present = np.isfinite(s.pose[:, sl]).all(-1)
            d = np.linalg.norm(mean_pose[sl] - s.pose[:, sl], axis=-1)
            base[name] += (float(d[present].sum()), int(present.sum()))

    def ratio(num, den):
        return float(num / den) if den else float("nan")

    return {
        "model": str(model_dir), "kind": model.name, "data": str(data_path), "split": split,
        "samples": len(kept), "frames": int(sum(s.num_frames for s in kept)), "skipped": skipped,
        "mpjpe": {n: ratio(v[0], v[1]) for n, v in sums.items()},
        "pa_mpjpe": {n: ratio(v[2], v[3]) for n, v in sums.items()},
        "mean_pose_mpjpe": {n: ratio(v[0], v[1]) for n, v in base.items()},
        "codebook": {g: _codebook_stats(c) for g, c in counts.items()},
    }
