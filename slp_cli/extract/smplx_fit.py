"""`slp fit-smplx`: per-frame SMPL-X parameters fitted to extracted keypoints.

The fit follows SOKE's pose curation (SOKE, appendix A):

* keypoint loss (S5): the model's joints through a weak-perspective camera Pi_K against the
  keypoints, robust (Charbonnier, an L1 that is smooth at 0), weighted by each keypoint's
  confidence, averaged per articulator (body, each hand, face) so that 42 face points do not
  outvote 8 body points; hips weigh 0.3 (SMPL-X's hip joints sit inside the pelvis, MediaPipe's
  on its outline). ``target='2d'`` (the default, as in the paper) compares image x, y only;
  ``target='3d'`` also compares z and is meant for artifacts whose z is a real depth in the
  units of x and y (lifted 3D poses, synthetic data) — MediaPipe's raw z is not: its hand and
  face z are relative to the wrist and the face centre;
* temporal loss (S6): ||X_f - X_(f-1)||_2 + ||J_f - J_(f-1)||_2 over a fixed sample of mesh
  vertices X and the joints J of consecutive frames of the same video;
* pose regulariser (S7): ||theta||^2 on the body and jaw rotations, plus small penalties on the
  hand poses (PCA coefficients with ``hand_pca=N``, else offsets from the mean hand),
  expression and shape.

Optimised per frame: global orientation, the 10 upper-body joints of SOKE's 133-dim layout
(section 3.1), both hands, jaw, expression and the camera translation; per video: shape (betas,
10) and camera scale. Frames of several videos are optimised in one batch on the device (CPU or
CUDA, float32) with Adam: first ``iters // 4`` steps of camera and global orientation on the
shoulders and hips, then ``iters`` steps of everything (learning rate cut by 0.3 at 70% and 90%).
The targets are first centred and scaled per video to about one shoulder width per unit, so
the loss weights do not depend on the input's units. The model is evaluated only at the vertices
the fit needs (``SparseSMPLX``, the same linear blend skinning as ``smplx.lbs`` on a subset of
vertices, tested equal to ``smplx.SMPLX``), so a step costs a fraction of a full forward pass.

The camera: image = s * (X, -Y, -Z) + (tx, ty, tz) in the input's units (pixels for extracted
artifacts): SMPL-X's y-up, z-towards-the-viewer frame seen by a camera whose image y points
down, as MediaPipe's. With a zero global orientation the body faces the camera upright.

Outputs per sample (``Sample.arrays``):

* ``smplx`` (T, 133): SOKE's layout — 0:30 body joints 12-21 of SMPL-X (neck, left collar, right
  collar, head, left shoulder, right shoulder, left elbow, right elbow, left wrist, right wrist),
  30:75 left hand, 75:120 right hand, 120:123 jaw (axis-angle), 123:133 expression. Hand poses
  are absolute (the mean hand already added: pass them to smplx with ``flat_hand_mean=True``);
* ``global_orient`` (T, 3), ``betas`` (1, 10), ``camera`` (T, 4) = (s, tx, ty, tz) in input
  units per metre / input units, ``fit_error`` (T,) = mean distance between each observed
  keypoint and its fitted point, in input units (NaN for a frame with no observed keypoint).

``Sample.pose`` holds the fitted model's points at the mp178 points SMPL-X has (body 8, both
hands 42, and 42 of the 128 face points through the iBUG-68 brows, eyes and lips that SMPL-X's
face landmarks follow), projected by the fitted camera into the input's coordinates, so the
fitted artifact overlays its input (``slp render --ref``) and scores against it. A point is kept
only where its input point was observed; the others (the other 86 face points, and any point
missing in the input) are NaN — the fit fills them with the prior, which is not data.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .. import skeleton
from ..atomic import refuse_overwriting
from ..errors import SlpError
from ..progress import SILENT, Progress

DOWNLOAD_HINT = ("SMPL-X model files are licence-gated and cannot be shipped or downloaded by slp: register at "
                 "https://smpl-x.is.tue.mpg.de, download the SMPL-X model (npz), and pass the folder that holds "
                 "SMPLX_NEUTRAL.npz with --model-dir")
GENDERS = ("neutral", "female", "male")

# SMPL-X joint indices (smplx.joint_names.JOINT_NAMES, 127 joints without the face contour).
NUM_JOINTS = 55  # the kinematic tree; then 21 vertex joints (nose ... heels, 10 finger tips), 51 face landmarks
BODY133_JOINTS = list(range(12, 22))  # neck, collars, head, shoulders, elbows, wrists
SMPLX133 = {"body": slice(0, 30), "left_hand": slice(30, 75), "right_hand": slice(75, 120),
            "jaw": slice(120, 123), "expression": slice(123, 133)}
_BODY = {skeleton.R_SHOULDER: 17, skeleton.R_ELBOW: 19, skeleton.R_WRIST: 21, skeleton.L_SHOULDER: 16,
         skeleton.L_ELBOW: 18, skeleton.L_WRIST: 20, skeleton.R_HIP: 2, skeleton.L_HIP: 1}
# MediaPipe hand order (wrist, thumb CMC/MCP/IP/tip, index MCP/PIP/DIP/tip, middle, ring, pinky).
_RIGHT_HAND = [21, 52, 53, 54, 71, 40, 41, 42, 72, 43, 44, 45, 73, 49, 50, 51, 74, 46, 47, 48, 75]
_LEFT_HAND = [20, 37, 38, 39, 66, 25, 26, 27, 67, 28, 29, 30, 68, 34, 35, 36, 69, 31, 32, 33, 70]
# MediaPipe face-mesh index -> iBUG-68 index, for the brows (17-26), eyes (36-47) and lips (48-67):
# the points of SMPL-X's 51 face landmarks (iBUG 17-67, joints 76-126) that mp178 also has.
MEDIAPIPE_TO_IBUG = {
    70: 17, 63: 18, 105: 19, 66: 20, 107: 21, 336: 22, 296: 23, 334: 24, 293: 25, 300: 26,
    33: 36, 160: 37, 158: 38, 133: 39, 153: 40, 144: 41, 362: 42, 385: 43, 387: 44, 263: 45, 373: 46, 380: 47,
    61: 48, 39: 49, 37: 50, 0: 51, 267: 52, 269: 53, 291: 54, 405: 55, 314: 56, 17: 57, 84: 58, 181: 59,
    78: 60, 82: 61, 13: 62, 312: 63, 308: 64, 317: 65, 14: 66, 87: 67,
}
_FACE = {skeleton.ARTICULATORS["face"].start + skeleton.FACE_MESH_INDICES.index(m): 76 + (i - 17)
         for m, i in MEDIAPIPE_TO_IBUG.items()}
# mp178 index -> SMPL-X joint index, for the 92 mp178 points SMPL-X has.
MP178_TO_SMPLX: dict[int, int] = {
    **_BODY,
    **{skeleton.ARTICULATORS["right_hand"].start + i: j for i, j in enumerate(_RIGHT_HAND)},
    **{skeleton.ARTICULATORS["left_hand"].start + i: j for i, j in enumerate(_LEFT_HAND)},
    **_FACE,
}
MP178_POINTS = np.array(sorted(MP178_TO_SMPLX), dtype=np.int64)
SMPLX_POINTS = np.array([MP178_TO_SMPLX[i] for i in MP178_POINTS], dtype=np.int64)
# Hip joints of SMPL-X sit inside the pelvis, MediaPipe's on its outline: trust them less.
_POINT_WEIGHT = np.array([0.3 if i in (skeleton.R_HIP, skeleton.L_HIP) else 1.0 for i in MP178_POINTS], np.float32)
SMPLX_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
                 20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
                 21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53]


@dataclass
class FitOptions:
    """Settings of the fit (defaults: SOKE appendix A's terms with weights that work on
    MediaPipe keypoints; ``iters`` is what trades time for accuracy)."""

    iters: int = 300  # Adam steps on all parameters, after iters // 4 steps on camera and orientation
    lr: float = 0.03
    hand_pca: int | None = 12  # PCA components per hand; None = all 15 x 3 rotations
    target: str = "2d"  # '2d' (x, y) or '3d' (x, y, z: only for a true depth)
    w_temporal: float = 0.01
    w_body: float = 1e-4
    w_hand: float = 1e-4
    w_expression: float = 1e-4
    w_betas: float = 1e-4
    temporal_vertices: int = 512  # mesh vertices sampled for the temporal term
    batch_frames: int = 2048  # frames (of whole videos) optimised together
    device: str = "auto"

    def __post_init__(self):
        if self.target not in ("2d", "3d"):
            raise SlpError(f"--target {self.target!r}: use 2d or 3d")
        if self.hand_pca is not None and not 1 <= self.hand_pca <= 45:
            raise SlpError(f"--hand-pca {self.hand_pca}: use 1-45 components, or --no-hand-pca")
        if self.iters < 1:
            raise SlpError(f"--iters {self.iters}: must be at least 1")


# --- the body model ---------------------------------------------------------------------------

def find_model_file(model_dir: str | Path, gender: str = "neutral") -> Path:
    """SMPLX_<GENDER>.npz|.pkl in DIR, DIR/smplx, or DIR itself when it is the file."""
    model_dir = Path(model_dir)
    if gender not in GENDERS:
        raise SlpError(f"--gender {gender!r}: use one of {', '.join(GENDERS)}")
    if model_dir.is_file():
        return model_dir
    if not model_dir.exists():
        raise SlpError(f"{model_dir}: SMPL-X model folder not found; {DOWNLOAD_HINT}")
    for folder in (model_dir, model_dir / "smplx"):
        for ext in ("npz", "pkl"):
            f = folder / f"SMPLX_{gender.upper()}.{ext}"
            if f.is_file():
                return f
    raise SlpError(f"{model_dir}: no SMPLX_{gender.upper()}.npz (or .pkl) in this folder or its smplx/ "
                   f"subfolder; {DOWNLOAD_HINT}")


def load_smplx(model_dir: str | Path, gender: str = "neutral", device="cpu", use_pca: bool = False,
               flat_hand_mean: bool = True):
    """An ``smplx.SMPLX`` module (10 betas, 10 expression coefficients, no face contour); one line
    naming the file when it is incomplete or not an SMPL-X model."""
    try:
        import smplx
    except ImportError as e:
        raise SlpError(f"the smplx package is not importable ({e}); pip install smplx") from None
    path = find_model_file(model_dir, gender)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints warnings for 2019 (v1.0) files
            model = smplx.SMPLX(str(path), ext=path.suffix[1:], gender=gender, use_pca=use_pca,
                                num_pca_comps=45, flat_hand_mean=flat_hand_mean, use_face_contour=False,
                                num_betas=10, num_expression_coeffs=10)
    except (KeyError, AttributeError, ValueError, OSError, EOFError, IndexError, RuntimeError) as e:
        raise SlpError(f"{path}: not a complete SMPL-X model file ({type(e).__name__}: {e}); "
                       f"{DOWNLOAD_HINT}") from None
    return model.to(device)


def _torch():
    import torch

    return torch


class SparseSMPLX:
    """SMPL-X joints (the 127 of ``smplx.SMPLX`` without face contour) and a fixed sample of
    vertices, computed with smplx's own blend shapes and rigid transforms but skinning only the
    vertices that define joints (finger tips, face landmarks) and the sample. Same numbers as
    the full model, at a fraction of the cost when fitting."""

    def __init__(self, model, num_sample: int = 512):
        torch = _torch()
        from smplx.lbs import batch_rodrigues

        self._rodrigues = batch_rodrigues
        dev, dt = model.v_template.device, model.v_template.dtype
        nv = model.v_template.shape[0]
        extra = model.vertex_joint_selector.extra_joints_idxs.long()
        lmk = model.faces_tensor[model.lmk_faces_idx.long()].long()  # (51, 3)
        sample = torch.linspace(0, nv - 1, max(num_sample, 2), device=dev).long()
        ids, inverse = torch.unique(torch.cat([extra, lmk.reshape(-1), sample]), return_inverse=True)
        self.extra_pos = inverse[: len(extra)]
        self.lmk_pos = inverse[len(extra): len(extra) + lmk.numel()].view(-1, 3)
        self.sample_pos = inverse[len(extra) + lmk.numel():]
        self.lmk_bary = model.lmk_bary_coords.to(dt)
        dirs = torch.cat([model.shapedirs, model.expr_dirs], dim=-1)  # (V, 3, 20)
        self.num_betas = model.shapedirs.shape[-1]
        self.v_t = model.v_template[ids]
        self.dirs = dirs[ids]
        self.posedirs = model.posedirs.view(model.posedirs.shape[0], nv, 3)[:, ids].reshape(model.posedirs.shape[0], -1)
        self.weights = model.lbs_weights[ids]
        self.j_t = model.J_regressor @ model.v_template
        self.j_dirs = torch.einsum("jv,vcd->jcd", model.J_regressor, dirs)
        self.parents = model.parents
        self.device, self.dtype = dev, dt
        # Joints grouped by depth in the kinematic tree: one batched product per level (about 11)
        # instead of smplx's one per joint (54), which is most of a step's cost on small batches.
        parents = model.parents.tolist()
        depth = [0] * len(parents)
        for j in range(1, len(parents)):
            depth[j] = depth[parents[j]] + 1
        self.levels = [(torch.tensor([j for j in range(len(parents)) if depth[j] == d], device=dev),
                        torch.tensor([parents[j] for j in range(len(parents)) if depth[j] == d], device=dev))
                       for d in range(1, max(depth) + 1)]

    def _rigid_transform(self, rot, joints):
        """World transforms of every joint: the same as ``smplx.lbs.batch_rigid_transform``."""
        torch = _torch()
        b, n = joints.shape[:2]
        rel_j = joints.clone()
        rel_j[:, 1:] = joints[:, 1:] - joints[:, self.parents[1:]]
        local = torch.cat([torch.cat([rot, rel_j.unsqueeze(-1)], -1),
                           torch.tensor([0, 0, 0, 1.0], dtype=self.dtype, device=self.device).expand(b, n, 1, 4)], -2)
        world = local.clone()
        for idx, par in self.levels:
            world = world.index_copy(1, idx, world[:, par] @ local[:, idx])
        posed = world[:, :, :3, 3]
        # Transforms relative to the rest pose: subtract the rotated rest joint positions.
        rest = (world[:, :, :3, :3] @ joints.unsqueeze(-1)).squeeze(-1)
        rel = world.clone()
        rel[:, :, :3, 3] = world[:, :, :3, 3] - rest
        return posed, rel

    def __call__(self, full_pose, shape):
        """full_pose (B, 55, 3) axis-angle, shape (B, 20) = betas and expression ->
        joints (B, 127, 3) and sampled vertices (B, num_sample, 3)."""
        torch = _torch()
        b = full_pose.shape[0]
        rot = self._rodrigues(full_pose.reshape(-1, 3)).view(b, -1, 3, 3)
        joints = self.j_t + torch.einsum("bd,jcd->bjc", shape, self.j_dirs)
        v = self.v_t + torch.einsum("bd,scd->bsc", shape, self.dirs)
        ident = torch.eye(3, dtype=self.dtype, device=self.device)
        v = v + ((rot[:, 1:] - ident).reshape(b, -1) @ self.posedirs).view(b, -1, 3)
        posed, rel = self._rigid_transform(rot, joints)
        tr = torch.einsum("sj,bjk->bsk", self.weights, rel[:, :, :3].reshape(b, -1, 12)).view(b, -1, 3, 4)
        v = torch.einsum("bsij,bsj->bsi", tr[..., :3], v) + tr[..., 3]
        lmk = torch.einsum("blfi,lf->bli", v[:, self.lmk_pos], self.lmk_bary)
        return torch.cat([posed, v[:, self.extra_pos], lmk], dim=1), v[:, self.sample_pos]


class BodyModel:
    """What the fit needs from an SMPL-X model file: the sparse evaluator and the hand PCA."""

    def __init__(self, model_dir: str | Path, gender: str = "neutral", device: str = "cpu",
                 num_sample: int = 512):
        torch = _torch()
        self.path = find_model_file(model_dir, gender)
        self.gender = gender
        model = load_smplx(model_dir, gender, device, use_pca=False, flat_hand_mean=False)
        self.sparse = SparseSMPLX(model, num_sample)
        self.hand_mean = {"left": model.left_hand_mean.detach(), "right": model.right_hand_mean.detach()}
        self.hand_components = {
            "left": torch.as_tensor(np.asarray(model.np_left_hand_components), dtype=torch.float32, device=device),
            "right": torch.as_tensor(np.asarray(model.np_right_hand_components), dtype=torch.float32, device=device)}
        self.device = torch.device(device)


# --- fitting ----------------------------------------------------------------------------------

@dataclass
class FitResult:
    """One video's fit (see the module docstring for the arrays)."""

    smplx: np.ndarray  # (T, 133)
    global_orient: np.ndarray  # (T, 3)
    betas: np.ndarray  # (1, 10)
    camera: np.ndarray  # (T, 4)
    pose: np.ndarray  # (T, 178, 3) fitted points in input coordinates, NaN where not observed
    confidence: np.ndarray  # (T, 178)
    fit_error: np.ndarray  # (T,)
    losses: list[float] = field(default_factory=list)  # total loss per step (all videos of the batch)


def _normalizer(kp: np.ndarray, conf: np.ndarray, dims: int) -> tuple[np.ndarray, float]:
    """Centre and scale bringing a video's keypoints to about one shoulder width per unit."""
    rs, ls = kp[:, skeleton.R_SHOULDER, :dims], kp[:, skeleton.L_SHOULDER, :dims]
    ok = (conf[:, skeleton.R_SHOULDER] > 0) & (conf[:, skeleton.L_SHOULDER] > 0)
    if ok.any():
        centre = np.median((rs[ok] + ls[ok]) / 2, axis=0)
        scale = float(np.median(np.linalg.norm(rs[ok] - ls[ok], axis=-1)))
    else:
        seen = kp[conf > 0][:, :dims]
        centre = (seen.max(0) + seen.min(0)) / 2
        scale = float((seen.max(0) - seen.min(0)).max()) / 2
    centre = np.concatenate([centre, np.zeros(3 - dims)])
    return centre.astype(np.float32), scale if scale > 1e-6 else 1.0


def fit_videos(body: BodyModel, videos: Sequence[tuple[np.ndarray, np.ndarray]], opts: FitOptions,
               on_step: Callable[[int, float], None] | None = None) -> list[FitResult]:
    """Fit several videos in one batch. ``videos``: (keypoints (T, 178, 3), confidence (T, 178))
    per video, mp178, NaN or confidence 0 where missing."""
    torch = _torch()
    dev = body.device
    dims = 3 if opts.target == "3d" else 2
    n_vid = len(videos)
    lengths = [len(kp) for kp, _ in videos]
    vid = torch.as_tensor(np.repeat(np.arange(n_vid), lengths), device=dev)
    frames = int(sum(lengths))

    # Targets in normalized units: (x - centre) / scale per video, about a shoulder width per unit.
    target, weight, norms = [], [], []
    for kp, conf in videos:
        kp = np.asarray(kp, np.float32)
        c = np.where(np.isfinite(kp).all(-1), np.asarray(conf, np.float32), 0.0)
        centre, scale = _normalizer(np.nan_to_num(kp), c, dims)
        norms.append((centre, scale))
        target.append(np.nan_to_num((kp[:, MP178_POINTS] - centre) / scale)[..., :dims])
        weight.append(c[:, MP178_POINTS] * _POINT_WEIGHT)
    tgt = torch.as_tensor(np.concatenate(target), device=dev)
    wgt = torch.as_tensor(np.concatenate(weight), device=dev)
    smplx_idx = torch.as_tensor(SMPLX_POINTS, device=dev)

    sparse = body.sparse
    zeros = lambda *shape: torch.zeros(*shape, device=dev, dtype=torch.float32)  # noqa: E731
    # Initial camera: the rest shoulder width maps onto the observed one, necks aligned.
    rest, _ = sparse(zeros(1, NUM_JOINTS, 3), zeros(1, sparse.dirs.shape[-1]))
    rest = rest[0]
    rest_width = float((rest[16] - rest[17]).norm())
    rest_neck = (rest[16] + rest[17]) / 2
    sh = [int(np.where(MP178_POINTS == i)[0][0]) for i in (skeleton.R_SHOULDER, skeleton.L_SHOULDER)]
    both = (wgt[:, sh[0]] > 0) & (wgt[:, sh[1]] > 0)
    # The observed neck where both shoulders are seen, else the video's centre (0 after normalizing).
    neck_obs = torch.where(both[:, None], (tgt[:, sh[0]] + tgt[:, sh[1]]) / 2, torch.zeros_like(tgt[:, 0]))
    flip = torch.tensor([1.0, -1.0, -1.0], device=dev)
    log_s = torch.full((n_vid,), math.log(1.0 / rest_width), device=dev)
    trans = zeros(frames, 3)
    trans[:, :dims] = neck_obs - (rest_neck * flip)[:dims] / rest_width
    params = {
        "log_s": log_s, "trans": trans, "global_orient": zeros(frames, 3),
        "body": zeros(frames, len(BODY133_JOINTS), 3), "jaw": zeros(frames, 3), "expression": zeros(frames, 10),
        "betas": zeros(n_vid, sparse.num_betas),
        "left": zeros(frames, opts.hand_pca or 45), "right": zeros(frames, opts.hand_pca or 45),
    }
    for p in params.values():
        p.requires_grad_(True)

    def hand(side):
        x = params[side]
        if opts.hand_pca:
            x = x @ body.hand_components[side][: opts.hand_pca]
        return body.hand_mean[side] + x  # absolute rotations (mean hand added)

    same_video = (vid[1:] == vid[:-1]).float()
    torso = torch.as_tensor(_torso_mask(), device=dev)
    parts = torch.as_tensor(_part_matrix(), device=dev)
    eps = 1e-3

    def forward():
        # Joints 1-11 (hips, spine, legs) stay at rest: the torso's lean is the global orientation.
        full = torch.cat([params["global_orient"][:, None], zeros(frames, 11, 3), params["body"],
                          params["jaw"][:, None], zeros(frames, 2, 3), hand("left").view(-1, 15, 3),
                          hand("right").view(-1, 15, 3)], 1)
        shape = torch.cat([params["betas"][vid], params["expression"]], -1)
        joints, verts = sparse(full, shape)
        s = params["log_s"].exp()[vid][:, None, None]
        proj = s * joints[:, smplx_idx] * flip + params["trans"][:, None]
        return joints, verts, proj

    def loss_terms(stage1: bool):
        joints, verts, proj = forward()
        d = proj[..., :dims] - tgt
        # Charbonnier: an L1 (robust, as S5) that is smooth within 1% of a shoulder width of 0.
        dist = torch.sqrt((d * d).sum(-1) + 1e-4) - 1e-2
        if stage1:
            w = wgt * torso
            return (w * dist).sum() / w.sum().clamp(min=1e-6)
        # Body, each hand and the face count alike, whatever their number of points.
        data = ((wgt * dist) @ parts).sum(0) / (wgt @ parts).sum(0).clamp(min=1e-6)
        data = data.sum()
        # S6 in rest-shoulder-width units, only between consecutive frames of one video.
        dj = (joints[1:, :NUM_JOINTS] - joints[:-1, :NUM_JOINTS]) / rest_width
        dv = (verts[1:] - verts[:-1]) / rest_width
        temporal = ((torch.sqrt((dj * dj).sum(-1).mean(-1) + eps ** 2)
                     + torch.sqrt((dv * dv).sum(-1).mean(-1) + eps ** 2)) * same_video).sum() / max(frames - 1, 1)
        sq = {k: (params[k] ** 2).reshape(len(params[k]), -1).sum(1).mean()
              for k in ("body", "jaw", "left", "right", "expression", "betas")}
        reg = (opts.w_body * (sq["body"] + sq["jaw"]) + opts.w_hand * (sq["left"] + sq["right"])
               + opts.w_expression * sq["expression"] + opts.w_betas * sq["betas"])
        return data + opts.w_temporal * temporal + reg

    losses: list[float] = []
    stage1_iters = max(1, opts.iters // 4)
    opt1 = torch.optim.Adam([params["log_s"], params["trans"], params["global_orient"]], lr=opts.lr)
    for i in range(stage1_iters):
        opt1.zero_grad(set_to_none=True)
        loss = loss_terms(stage1=True)
        loss.backward()
        opt1.step()
    opt = torch.optim.Adam(list(params.values()), lr=opts.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[int(opts.iters * 0.7), int(opts.iters * 0.9)],
                                                 gamma=0.3)
    for i in range(opts.iters):
        opt.zero_grad(set_to_none=True)
        loss = loss_terms(stage1=False)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(i, losses[-1])
    with torch.no_grad():
        _, _, proj = forward()
        return _results(videos, lengths, norms, params, proj, hand, dims, losses)


def _part_matrix() -> np.ndarray:
    """(92, 4) one-hot articulator (body, right hand, left hand, face) of each fitted point."""
    names = list(skeleton.ARTICULATORS)
    return np.eye(len(names), dtype=np.float32)[[names.index(skeleton.articulator_of(int(i))) for i in MP178_POINTS]]


def _torso_mask() -> np.ndarray:
    """Points used to place the camera and orient the body first: shoulders and hips."""
    torso = {skeleton.R_SHOULDER, skeleton.L_SHOULDER, skeleton.R_HIP, skeleton.L_HIP}
    return np.array([1.0 if i in torso else 0.0 for i in MP178_POINTS], np.float32)


def _results(videos, lengths, norms, params, proj, hand, dims, losses) -> list[FitResult]:
    out = []
    start = 0
    left, right = hand("left").cpu().numpy(), hand("right").cpu().numpy()
    p = {k: v.detach().cpu().numpy() for k, v in params.items()}
    proj = proj.cpu().numpy()
    for v, ((kp, conf), n, (centre, scale)) in enumerate(zip(videos, lengths, norms)):
        sl = slice(start, start + n)
        start += n
        smplx133 = np.concatenate([p["body"][sl].reshape(n, -1), left[sl], right[sl], p["jaw"][sl],
                                   p["expression"][sl]], axis=1).astype(np.float32)
        fitted = proj[sl] * scale + centre  # (n, 92, 3) in input units
        if dims == 2:
            fitted[..., 2] = proj[sl][..., 2] * scale  # the model's depth, relative to its root joint
        kp = np.asarray(kp, np.float32)
        conf = np.asarray(conf, np.float32)
        observed = np.isfinite(kp[:, MP178_POINTS]).all(-1) & (conf[:, MP178_POINTS] > 0)
        pose = np.full((n, skeleton.NUM_KEYPOINTS, 3), np.nan, np.float32)
        pose[:, MP178_POINTS] = np.where(observed[..., None], fitted, np.nan)
        confidence = np.zeros((n, skeleton.NUM_KEYPOINTS), np.float32)
        confidence[:, MP178_POINTS] = np.where(observed, conf[:, MP178_POINTS], 0.0)
        err = np.linalg.norm(fitted[..., :dims] - kp[:, MP178_POINTS, :dims], axis=-1)
        count = observed.sum(1)
        fit_error = np.where(count > 0, np.where(observed, err, 0).sum(1) / np.maximum(count, 1), np.nan)
        s = np.exp(p["log_s"][v]) * scale
        camera = np.concatenate([np.full((n, 1), s), p["trans"][sl] * scale + centre], axis=1)
        if dims == 2:
            camera[:, 3] = 0.0
        out.append(FitResult(smplx=smplx133, global_orient=p["global_orient"][sl].astype(np.float32),
                             betas=p["betas"][v:v + 1].astype(np.float32), camera=camera.astype(np.float32),
                             pose=pose, confidence=confidence, fit_error=fit_error.astype(np.float32),
                             losses=losses))
    return out


def batches(lengths: Sequence[int], batch_frames: int) -> list[list[int]]:
    """Group videos (by index, in order) into batches of at most ``batch_frames`` frames; a longer
    video is a batch of its own."""
    out, cur, total = [], [], 0
    for i, n in enumerate(lengths):
        if cur and total + n > batch_frames:
            out.append(cur)
            cur, total = [], 0
        cur.append(i)
        total += n
    if cur:
        out.append(cur)
    return out


# --- the stage --------------------------------------------------------------------------------

def run(input_path: str | Path, output: str | Path, model_dir: str | Path, *, gender: str = "neutral",
        opts: FitOptions = FitOptions(), progress: Progress = SILENT) -> dict:
    """Fit every sample of an mp178 artifact; write the fitted artifact (resumable like extract).
    ``progress`` gets a task over the samples (its ``rate`` field: frames/s and fit error)."""
    refuse_overwriting([output], [input_path])
    import dataclasses
    import json

    from ..artifacts import ArtifactWriter, load, provenance
    from ..device import resolve_device

    input_path, output = Path(input_path), Path(output)
    find_model_file(model_dir, gender)  # before importing torch: a missing model is the usual first error
    device = str(resolve_device(opts.device))
    body = BodyModel(model_dir, gender, device, opts.temporal_vertices)  # fails early on a bad model folder
    art = load(input_path)
    if art.layout != "mp178":
        raise SlpError(f"{input_path}: layout {art.layout}; fit-smplx fits mp178 keypoints")
    args = {**asdict(opts), "device": device, "gender": gender, "model": body.path.name}
    prov = provenance("fit-smplx", args, [input_path])
    prov["arrays"] = {
        "smplx": "SOKE 133: 0:30 SMPL-X body joints 12-21 (neck, l/r collar, head, l/r shoulder, l/r elbow, "
                 "l/r wrist), 30:75 left hand, 75:120 right hand (absolute, flat_hand_mean=True), 120:123 jaw, "
                 "123:133 expression; axis-angle",
        "global_orient": "(T, 3) axis-angle", "betas": "(1, 10) per video",
        "camera": "(T, 4) s, tx, ty, tz: image = s * (X, -Y, -Z) + t, input units",
        "fit_error": "(T,) mean distance of observed keypoints to the fitted ones, input units"}
    writer = ArtifactWriter(output, fps=art.fps, normalized=art.normalized, normalization=art.normalization,
                            provenance=prov, resume=True)
    before = json.loads(writer.f.attrs.get("provenance", "{}")).get("args", {})
    if writer.done_ids and any(before.get(k) != v for k, v in args.items() if k != "device"):
        writer.abort()
        raise SlpError(f"{writer.partial}: an interrupted fit with other options left this partial file; re-run "
                       f"with the same options to resume it, or delete it to start afresh")
    skipped, todo = [], []
    for s in art.samples:
        if s.id in writer.done_ids:
            continue
        c = np.where(np.isfinite(s.pose).all(-1), s.conf(), 0.0)
        if not (c[:, MP178_POINTS] > 0).any():
            skipped.append({"input": f"{input_path}#{s.id}", "reason": "no keypoint SMPL-X has (body, hands, face)"})
            continue
        todo.append(s)
    resumed = len(writer.done_ids)
    t0 = time.perf_counter()
    frames = 0
    try:
        with progress.task(f"fitting on {device}", total=len(art.samples), completed=resumed) as task:
            for entry in skipped:
                writer.log_skipped(entry["input"], entry["reason"])
                task.note(f"skipped {entry['input']}: {entry['reason']}")
                task.advance()
            for group in batches([s.num_frames for s in todo], opts.batch_frames):
                samples = [todo[i] for i in group]
                results = fit_videos(body, [(s.pose, s.conf()) for s in samples], opts)
                for s, r in zip(samples, results):
                    writer.append(dataclasses.replace(
                        s, pose=r.pose, confidence=r.confidence,
                        arrays={**s.arrays, "smplx": r.smplx, "global_orient": r.global_orient, "betas": r.betas,
                                "camera": r.camera, "fit_error": r.fit_error}))
                frames += sum(s.num_frames for s in samples)
                errors = np.concatenate([r.fit_error for r in results])
                error = float(np.nanmean(errors)) if np.isfinite(errors).any() else float("nan")
                task.advance(len(samples))
                task.update(rate=f"{frames / max(time.perf_counter() - t0, 1e-9):.1f} frames/s, fit error {error:.3g}")
    except BaseException:
        writer.abort()
        raise
    if not writer.done_ids:
        writer.abort()
        writer.partial.unlink(missing_ok=True)
        raise SlpError(f"{input_path}: no sample could be fitted ({skipped[0]['reason'] if skipped else 'empty'})")
    total = len(writer.done_ids)
    writer.commit()
    return {"output": str(output), "samples": total, "fitted": total - resumed, "resumed": resumed,
            "frames": frames, "seconds": time.perf_counter() - t0, "device": device, "skipped": skipped}


# --- a stand-in model file for tests and benchmarks -------------------------------------------

def write_synthetic_model(path: str | Path, seed: int = 0, num_vertices: int = 10475) -> Path:
    """Write an SMPLX_NEUTRAL.npz with the keys and array shapes ``smplx.SMPLX`` reads and
    made-up values (NOT a body model: a stick figure with the SMPL-X kinematic tree, joints
    placed like a person's, vertices clustered around them, random shape, expression and pose
    blend shapes). Real SMPL-X files are licence-gated; tests and benchmarks use this."""
    rng = np.random.default_rng(seed)
    path = Path(path)
    if path.suffix != ".npz":
        path = path / "SMPLX_NEUTRAL.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    joints = _stick_figure()
    nj = len(joints)
    from smplx.vertex_ids import vertex_ids

    special = vertex_ids["smplx"]
    owner = rng.integers(0, nj, num_vertices)
    owner[:nj * 40] = np.repeat(np.arange(nj), 40)  # every joint has vertices
    verts = joints[owner] + rng.normal(0, 0.02, (num_vertices, 3))
    # Finger tips beyond the last finger joint, other named vertices on their body part.
    tips = {"thumb": 39, "index": 27, "middle": 30, "ring": 36, "pinky": 33}
    for side, off in (("l", 0), ("r", 15)):
        for name, j in tips.items():
            vi = special[side + name]
            owner[vi] = j + off
            verts[vi] = joints[j + off] + (joints[j + off] - joints[SMPLX_PARENTS[j + off]]) * 0.8
    for name, j in (("nose", 15), ("reye", 24), ("leye", 23), ("rear", 15), ("lear", 15), ("LBigToe", 10),
                    ("LSmallToe", 10), ("LHeel", 7), ("RBigToe", 11), ("RSmallToe", 11), ("RHeel", 8)):
        owner[special[name]] = j
        verts[special[name]] = joints[j] + rng.normal(0, 0.02, 3)
    # 51 face landmarks: a triangle of three head (or jaw, for the lower lip) vertices each.
    head = joints[15]
    marks = _face_layout()
    free = np.setdiff1d(np.arange(nj * 40, num_vertices), list(special.values()))
    lmk_verts = rng.choice(free, size=(51, 3), replace=False)
    for k in range(51):
        j = 22 if k in _LOWER_LIP else 15
        for vi in lmk_verts[k]:
            owner[vi] = j
            verts[vi] = head + marks[k] + rng.normal(0, 0.003, 3)
    # J_regressor: each joint is the mean of its own vertices, moved so that the mean is the joint.
    j_reg = np.zeros((nj, num_vertices), np.float32)
    for j in range(nj):
        mine = np.where(owner == j)[0]
        verts[mine] += joints[j] - verts[mine].mean(0)
        j_reg[j, mine] = 1.0 / len(mine)
    weights = np.zeros((num_vertices, nj), np.float32)
    weights[np.arange(num_vertices), owner] = 1.0
    shapedirs = np.zeros((num_vertices, 3, 20), np.float32)
    for k in range(10):  # betas: each moves every joint's vertices by its own offset (bone lengths change)
        shapedirs[:, :, k] = rng.normal(0, 0.015, (nj, 3))[owner]
    face = np.isin(np.arange(num_vertices), lmk_verts.ravel())
    shapedirs[face, :, 10:] = rng.normal(0, 0.006, (face.sum(), 3, 10))  # expression moves the face
    faces = rng.integers(0, num_vertices, (20908, 3))
    faces[:51] = lmk_verts
    bary = rng.dirichlet(np.ones(3), 51)
    comps = np.linalg.qr(rng.normal(size=(45, 45)))[0].T
    kintree = np.array([[4294967295] + SMPLX_PARENTS[1:], list(range(nj))], dtype=np.int64)
    np.savez(path, v_template=verts.astype(np.float32), shapedirs=shapedirs,
             posedirs=rng.normal(0, 1e-3, (num_vertices, 3, 486)).astype(np.float32),
             J_regressor=j_reg, weights=weights, kintree_table=kintree, f=faces.astype(np.int64),
             hands_componentsl=comps.astype(np.float32), hands_componentsr=comps[:, ::-1].copy().astype(np.float32),
             hands_meanl=rng.normal(0, 0.1, 45).astype(np.float32),
             hands_meanr=rng.normal(0, 0.1, 45).astype(np.float32),
             lmk_faces_idx=np.arange(51, dtype=np.int64), lmk_bary_coords=bary.astype(np.float32))
    return path


# Landmarks of the lower lip (iBUG 55-59 and 65-67), which the jaw moves.
_LOWER_LIP = {38, 39, 40, 41, 42, 48, 49, 50}


def _stick_figure() -> np.ndarray:
    """Rest positions (55, 3) in metres of the SMPL-X joints, arms out (a T pose)."""
    j = np.zeros((55, 3))
    for i, (x, y, z) in {
        1: (0.1, -0.08, 0), 2: (-0.1, -0.08, 0), 3: (0, 0.1, 0), 4: (0.1, -0.45, 0), 5: (-0.1, -0.45, 0),
        6: (0, 0.22, 0), 7: (0.1, -0.85, 0), 8: (-0.1, -0.85, 0), 9: (0, 0.32, 0), 10: (0.1, -0.9, 0.1),
        11: (-0.1, -0.9, 0.1), 12: (0, 0.5, 0), 13: (0.07, 0.42, 0), 14: (-0.07, 0.42, 0), 15: (0, 0.6, 0.02),
        16: (0.17, 0.45, 0), 17: (-0.17, 0.45, 0), 18: (0.43, 0.45, 0), 19: (-0.43, 0.45, 0),
        20: (0.68, 0.45, 0), 21: (-0.68, 0.45, 0), 22: (0, 0.56, 0.05), 23: (0.03, 0.64, 0.08),
        24: (-0.03, 0.64, 0.08),
    }.items():
        j[i] = (x, y, z)
    for side, wrist, first in ((1, 20, 25), (-1, 21, 40)):
        # index, middle, pinky, ring (SMPL-X order), then thumb; three joints each along +-x.
        for f, dz in enumerate((0.03, 0.01, -0.03, -0.01)):
            base = j[wrist] + (side * 0.09, 0, dz)
            for k in range(3):
                j[first + 3 * f + k] = base + (side * 0.03 * k, 0, 0)
        t = first + 12
        j[t] = j[wrist] + (side * 0.03, -0.01, 0.035)
        j[t + 1] = j[t] + (side * 0.03, -0.005, 0.015)
        j[t + 2] = j[t + 1] + (side * 0.025, 0, 0.01)
    return j


def _face_layout() -> np.ndarray:
    """Offsets from the head joint of the 51 landmarks (iBUG 17-67 order), facing +z."""
    m = np.zeros((51, 3))
    m[:, 2] = 0.09
    m[0:5, :2] = np.stack([np.linspace(-0.06, -0.015, 5), np.full(5, 0.05)], 1)  # right brow
    m[5:10, :2] = np.stack([np.linspace(0.015, 0.06, 5), np.full(5, 0.05)], 1)  # left brow
    m[10:14, :2] = np.stack([np.zeros(4), np.linspace(0.03, -0.01, 4)], 1)  # nose bridge
    m[14:19, :2] = np.stack([np.linspace(-0.02, 0.02, 5), np.full(5, -0.02)], 1)  # nostrils
    ang = np.linspace(0, 2 * np.pi, 7)[:-1]
    for k, cx in ((19, -0.035), (25, 0.035)):  # eyes
        m[k:k + 6, :2] = np.stack([cx + 0.015 * np.cos(ang), 0.025 + 0.007 * np.sin(ang)], 1)
    # Lips from the right corner over the upper lip to the left corner and back below (iBUG order).
    ang = np.pi - np.arange(12) * 2 * np.pi / 12
    m[31:43, :2] = np.stack([0.03 * np.cos(ang), -0.05 + 0.015 * np.sin(ang)], 1)  # outer lips
    ang = np.pi - np.arange(8) * 2 * np.pi / 8
    m[43:51, :2] = np.stack([0.02 * np.cos(ang), -0.05 + 0.006 * np.sin(ang)], 1)  # inner lips
    return m
