"""Exact dynamic time warping scores between pose sequences (docs/design.md, section 8).

``dtw_mje`` is slp's default: exact DTW (no window, no approximation) with steps (1,0), (0,1),
(1,1) and frame cost c(i, j) = mean Euclidean distance over the joints present (finite) in both
frames; two frames sharing no joint cost +inf. Frames in which every joint is missing are dropped
from their sequence first; a sequence with no frame left gives NaN. The score is the total cost of
the optimal path divided by the number of aligned frame pairs (cells) on that path, so it reads in
the pose units (shoulder widths after normalization); the pair count is carried through the DP with
the cost. If no alignment has a finite cost the score is +inf. (DTW-MJE is the pose score A2V-SLP
reports, section 4.2; its exact definition varies between
codebases, hence the protocols below.)

Tie-break (exact, so results are reproducible): at each cell the predecessor with the lowest
accumulated cost wins; equal costs prefer the diagonal (1,1), then (1,0) (advance the hypothesis),
then (0,1) (advance the reference).

``dtw_pa_jpe`` is the same DTW with the frame cost measured after a similarity Procrustes
alignment (rotation, uniform scale, translation) of the hypothesis frame onto the reference frame
over their shared joints (at least 3, else +inf).

Speed: frames are stored as (T, 3, K) float32 with missing joints zeroed plus a (T, K) 0/1 mask,
so the inner loop over joints is a fused, vectorisable sum. Kernels run on one thread: numba's
thread start-up costs more than a whole dictionary-clip pair (~0.08 ms serial), and corpus scoring
can parallelise over pairs instead. The DP runs over the cost matrix in float64 (frame-cost sums accumulate in float32: relative
error ~1e-6). Sequences without missing joints take a mask-free fast path for DTW-MJE. The 3x3
SVD that Procrustes needs is computed in-kernel (Jacobi on H^T H) rather than through LAPACK,
once per frame pair. Kernels are compiled once and cached on disk (``cache=True``).

The literature's protocols, :data:`PROTOCOLS` (``protocol=`` of :func:`dtw_scores`), are not
comparable with each other; each is documented on its ``_terms_*`` function below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..skeleton import ARTICULATORS, L_HIP, R_HIP

# --- preparation ------------------------------------------------------------------------------


def _as_seq(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"{name}: expected a (frames, joints, 3) array, got shape {a.shape}")
    return a


def _as_pair(hyp, ref) -> tuple[np.ndarray, np.ndarray]:
    h, r = _as_seq(hyp, "hyp"), _as_seq(ref, "ref")
    if h.shape[1] != r.shape[1]:
        raise ValueError(f"hyp has {h.shape[1]} joints but ref has {r.shape[1]}")
    return h, r


def _prepare(seq: np.ndarray):
    """Drop all-missing frames; return (data (T,3,K) float32, mask (T,K) float32, full) or None."""
    data, mask, keep, nmiss = _split_missing(np.ascontiguousarray(seq))
    if not keep.any():
        return None
    if not keep.all():
        data, mask = data[keep], mask[keep]
    return data, mask, nmiss == 0


# --- numba kernels: layout and DP -------------------------------------------------------------


@njit(cache=True)
def _split_missing(seq):
    """One pass over (T,K,3): coordinates as (T,3,K) with missing joints zeroed, the (T,K) 0/1
    mask (a joint counts only if all 3 coordinates are finite), frames with any joint, and the
    number of missing joints."""
    t, k, _ = seq.shape
    data = np.empty((t, 3, k), dtype=np.float32)
    mask = np.empty((t, k), dtype=np.float32)
    keep = np.zeros(t, dtype=np.bool_)
    nmiss = 0
    for i in range(t):
        for q in range(k):
            x, y, z = seq[i, q, 0], seq[i, q, 1], seq[i, q, 2]
            if np.isfinite(x) and np.isfinite(y) and np.isfinite(z):
                data[i, 0, q], data[i, 1, q], data[i, 2, q] = x, y, z
                mask[i, q] = 1.0
                keep[i] = True
            else:
                data[i, 0, q], data[i, 1, q], data[i, 2, q] = 0.0, 0.0, 0.0
                mask[i, q] = 0.0
                nmiss += 1
    return data, mask, keep, nmiss


@njit(cache=True)
def _dtw_accumulate(cost):
    """Accumulated cost D and path length L (aligned pairs) of the optimal path to every cell."""
    t, s = cost.shape
    d = np.empty((t, s), dtype=np.float64)
    n = np.empty((t, s), dtype=np.int64)
    for i in range(t):
        for j in range(s):
            c = cost[i, j]
            if i == 0 and j == 0:
                d[i, j] = c
                n[i, j] = 1
                continue
            # Tie-break: diagonal, then (i-1, j), then (i, j-1) -- strict '<' keeps the earlier.
            best = np.inf
            steps = 0
            found = False
            if i > 0 and j > 0:
                best = d[i - 1, j - 1]
                steps = n[i - 1, j - 1]
                found = True
            if i > 0 and (not found or d[i - 1, j] < best):
                best = d[i - 1, j]
                steps = n[i - 1, j]
                found = True
            if j > 0 and (not found or d[i, j - 1] < best):
                best = d[i, j - 1]
                steps = n[i, j - 1]
            d[i, j] = best + c
            n[i, j] = steps + 1
    return d, n


@njit(cache=True)
def _dtw_backtrack(d):
    """Optimal path from accumulated costs D as (P, 2) index pairs, with the same tie-break."""
    t, s = d.shape
    i, j = t - 1, s - 1
    out = np.empty((t + s - 1, 2), dtype=np.int64)
    m = 0
    out[m, 0], out[m, 1] = i, j
    m += 1
    while i > 0 or j > 0:
        if i > 0 and j > 0:
            bi, bj = i - 1, j - 1
            if d[i - 1, j] < d[bi, bj]:
                bi, bj = i - 1, j
            if d[i, j - 1] < d[bi, bj]:
                bi, bj = i, j - 1
        elif i > 0:
            bi, bj = i - 1, j
        else:
            bi, bj = i, j - 1
        i, j = bi, bj
        out[m, 0], out[m, 1] = i, j
        m += 1
    return out[:m][::-1].copy()


# --- numba kernels: frame costs ---------------------------------------------------------------


@njit(fastmath=True, cache=True)
def _cost_mje_full(h, r):
    """c(i,j) = mean_k ||h_ik - r_jk|| for sequences without missing joints."""
    t, _, k = h.shape
    s = r.shape[0]
    out = np.empty((t, s), dtype=np.float64)
    for i in range(t):
        hx, hy, hz = h[i, 0], h[i, 1], h[i, 2]
        for j in range(s):
            rx, ry, rz = r[j, 0], r[j, 1], r[j, 2]
            acc = np.float32(0.0)
            for q in range(k):
                dx = hx[q] - rx[q]
                dy = hy[q] - ry[q]
                dz = hz[q] - rz[q]
                acc += math.sqrt(dx * dx + dy * dy + dz * dz)
            out[i, j] = acc / k
    return out


@njit(cache=True)
def _translation(hx, hy, hz, wh, rx, ry, rz, wr, root):
    """Translation taking the hyp root onto the ref root: the mean of the ``root`` joints (all
    present in both frames, else not ok) or, with no root joints, the shared joints' centroid."""
    tx = ty = tz = 0.0
    n = 0.0
    nr = root.shape[0]
    if nr > 0:
        for a in range(nr):
            q = root[a]
            n += wh[q] * wr[q]
            tx += rx[q] - hx[q]
            ty += ry[q] - hy[q]
            tz += rz[q] - hz[q]
        ok = n == nr
    else:
        for q in range(hx.shape[0]):
            w = wh[q] * wr[q]
            tx += w * (rx[q] - hx[q])
            ty += w * (ry[q] - hy[q])
            tz += w * (rz[q] - hz[q])
            n += w
        ok = n > 0
    if not ok:
        return False, np.float32(0.0), np.float32(0.0), np.float32(0.0)
    return True, np.float32(tx / n), np.float32(ty / n), np.float32(tz / n)


# Frame-cost kinds of _cost_masked.
MEAN_L2, SUM_L1, FLAT_L2, ROOT_MEAN_L2 = 0, 1, 2, 3


@njit(fastmath=True, cache=True)
def _cost_masked(h, mh, r, mr, kind, root):
    """Frame costs over the joints present in both frames (mask product); +inf if none shared.

    kind MEAN_L2: mean Euclidean distance (DTW-MJE); SUM_L1: summed |dx|+|dy|+|dz| (pt2020);
    FLAT_L2: L2 norm of the flattened frame difference (slrtp2025); ROOT_MEAN_L2: mean Euclidean
    distance after translating the hyp frame onto the ref root (soke2025 DTW-JPE; see
    ``_translation``). The totals (SUM_L1, FLAT_L2) are rescaled by K / shared with missing joints,
    so that a frame does not get cheaper by losing joints.
    """
    t, _, k = h.shape
    s = r.shape[0]
    out = np.empty((t, s), dtype=np.float64)
    for i in range(t):
        hx, hy, hz, wh = h[i, 0], h[i, 1], h[i, 2], mh[i]
        for j in range(s):
            rx, ry, rz, wr = r[j, 0], r[j, 1], r[j, 2], mr[j]
            tx = ty = tz = np.float32(0.0)
            if kind == ROOT_MEAN_L2:
                ok, tx, ty, tz = _translation(hx, hy, hz, wh, rx, ry, rz, wr, root)
                if not ok:
                    out[i, j] = np.inf
                    continue
            acc = np.float32(0.0)
            cnt = np.float32(0.0)
            for q in range(k):
                w = wh[q] * wr[q]
                dx = hx[q] + tx - rx[q]
                dy = hy[q] + ty - ry[q]
                dz = hz[q] + tz - rz[q]
                if kind == SUM_L1:
                    acc += w * (abs(dx) + abs(dy) + abs(dz))
                elif kind == FLAT_L2:
                    acc += w * (dx * dx + dy * dy + dz * dz)
                else:
                    acc += w * math.sqrt(dx * dx + dy * dy + dz * dz)
                cnt += w
            if cnt == 0:
                out[i, j] = np.inf
            elif kind == SUM_L1:
                out[i, j] = acc * (k / cnt)
            elif kind == FLAT_L2:
                out[i, j] = math.sqrt(acc * (k / cnt))
            else:
                out[i, j] = acc / cnt
    return out


_NO_ROOT = np.zeros(0, dtype=np.int64)


@njit(cache=True)
def _jacobi_eig3(a, v):
    """Eigen-decompose the symmetric 3x3 ``a`` in place (cyclic Jacobi): the diagonal of ``a``
    ends as the eigenvalues, the columns of ``v`` as the eigenvectors."""
    for p in range(3):
        for q in range(3):
            v[p, q] = 1.0 if p == q else 0.0
    scale = a[0, 0] * a[0, 0] + a[1, 1] * a[1, 1] + a[2, 2] * a[2, 2]
    for _sweep in range(50):
        off = a[0, 1] * a[0, 1] + a[0, 2] * a[0, 2] + a[1, 2] * a[1, 2]
        if off <= 1e-30 * scale or off == 0.0:
            return
        for p, q in ((0, 1), (0, 2), (1, 2)):
            apq = a[p, q]
            if apq == 0.0:
                continue
            theta = (a[q, q] - a[p, p]) / (2.0 * apq)
            tt = 1.0 / (abs(theta) + math.sqrt(theta * theta + 1.0))
            if theta < 0:
                tt = -tt
            c = 1.0 / math.sqrt(tt * tt + 1.0)
            sn = tt * c
            for m in range(3):  # A <- A P
                amp, amq = a[m, p], a[m, q]
                a[m, p] = c * amp - sn * amq
                a[m, q] = sn * amp + c * amq
            for m in range(3):  # A <- P^T A
                apm, aqm = a[p, m], a[q, m]
                a[p, m] = c * apm - sn * aqm
                a[q, m] = sn * apm + c * aqm
            for m in range(3):  # V <- V P
                vmp, vmq = v[m, p], v[m, q]
                v[m, p] = c * vmp - sn * vmq
                v[m, q] = sn * vmp + c * vmq


@njit(cache=True)
def _procrustes_rotation(hm, rot, a, v):
    """Rotation R (into ``rot``) maximising trace(R H) for the 3x3 cross-covariance ``hm``
    (H = sum_k x_k y_k^T of centred hyp x and ref y), with reflections excluded (Kabsch/Umeyama).
    Returns trace(R H), the sum of the signed singular values of H."""
    for p in range(3):
        for q in range(3):
            a[p, q] = hm[0, p] * hm[0, q] + hm[1, p] * hm[1, q] + hm[2, p] * hm[2, q]
    _jacobi_eig3(a, v)
    # order the right singular vectors by decreasing eigenvalue of H^T H
    o0, o1, o2 = 0, 1, 2
    if a[o1, o1] > a[o0, o0]:
        o0, o1 = o1, o0
    if a[o2, o2] > a[o1, o1]:
        o1, o2 = o2, o1
    if a[o1, o1] > a[o0, o0]:
        o0, o1 = o1, o0
    v1 = (v[0, o0], v[1, o0], v[2, o0])
    v2 = (v[0, o1], v[1, o1], v[2, o1])
    # v3 = v1 x v2 makes V a proper rotation; the sign of s3 absorbs any reflection
    v3 = (v1[1] * v2[2] - v1[2] * v2[1], v1[2] * v2[0] - v1[0] * v2[2], v1[0] * v2[1] - v1[1] * v2[0])
    hv1 = (hm[0, 0] * v1[0] + hm[0, 1] * v1[1] + hm[0, 2] * v1[2],
           hm[1, 0] * v1[0] + hm[1, 1] * v1[1] + hm[1, 2] * v1[2],
           hm[2, 0] * v1[0] + hm[2, 1] * v1[1] + hm[2, 2] * v1[2])
    hv2 = (hm[0, 0] * v2[0] + hm[0, 1] * v2[1] + hm[0, 2] * v2[2],
           hm[1, 0] * v2[0] + hm[1, 1] * v2[1] + hm[1, 2] * v2[2],
           hm[2, 0] * v2[0] + hm[2, 1] * v2[1] + hm[2, 2] * v2[2])
    hv3 = (hm[0, 0] * v3[0] + hm[0, 1] * v3[1] + hm[0, 2] * v3[2],
           hm[1, 0] * v3[0] + hm[1, 1] * v3[1] + hm[1, 2] * v3[2],
           hm[2, 0] * v3[0] + hm[2, 1] * v3[1] + hm[2, 2] * v3[2])
    s1 = math.sqrt(hv1[0] * hv1[0] + hv1[1] * hv1[1] + hv1[2] * hv1[2])
    if s1 == 0.0:
        for p in range(3):
            for q in range(3):
                rot[p, q] = 1.0 if p == q else 0.0
        return 0.0
    u1 = (hv1[0] / s1, hv1[1] / s1, hv1[2] / s1)
    d = u1[0] * hv2[0] + u1[1] * hv2[1] + u1[2] * hv2[2]
    w = (hv2[0] - d * u1[0], hv2[1] - d * u1[1], hv2[2] - d * u1[2])
    nw = math.sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2])
    if nw <= 1e-12 * s1:
        # rank 1 (e.g. collinear points): any unit vector orthogonal to u1 will do
        ax = 0 if abs(u1[0]) <= abs(u1[1]) and abs(u1[0]) <= abs(u1[2]) else (1 if abs(u1[1]) <= abs(u1[2]) else 2)
        e = (1.0 if ax == 0 else 0.0, 1.0 if ax == 1 else 0.0, 1.0 if ax == 2 else 0.0)
        d = u1[ax]
        w = (e[0] - d * u1[0], e[1] - d * u1[1], e[2] - d * u1[2])
        nw = math.sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2])
    u2 = (w[0] / nw, w[1] / nw, w[2] / nw)
    u3 = (u1[1] * u2[2] - u1[2] * u2[1], u1[2] * u2[0] - u1[0] * u2[2], u1[0] * u2[1] - u1[1] * u2[0])
    s2 = u2[0] * hv2[0] + u2[1] * hv2[1] + u2[2] * hv2[2]
    s3 = u3[0] * hv3[0] + u3[1] * hv3[1] + u3[2] * hv3[2]
    # R = V U^T maps hyp directions onto ref directions
    for p in range(3):
        for q in range(3):
            rot[p, q] = v1[p] * u1[q] + v2[p] * u2[q] + v3[p] * u3[q]
    return s1 + s2 + s3


@njit(fastmath=True, cache=True)
def _cost_pa(h, mh, r, mr):
    """Mean joint error after similarity Procrustes (rotation, uniform scale, translation) of the
    hyp frame onto the ref frame over their shared joints; +inf with fewer than 3 shared.

    One fused pass gathers the raw moments (count, sums, cross sums) for the centroids and the
    cross-covariance; a second pass measures the aligned errors.
    """
    t, _, k = h.shape
    s = r.shape[0]
    out = np.empty((t, s), dtype=np.float64)
    for i in range(t):
        hm = np.empty((3, 3))
        rot = np.empty((3, 3))
        a = np.empty((3, 3))
        v = np.empty((3, 3))
        hx, hy, hz, wh = h[i, 0], h[i, 1], h[i, 2], mh[i]
        for j in range(s):
            rx, ry, rz, wr = r[j, 0], r[j, 1], r[j, 2], mr[j]
            n = 0.0
            sx0 = sx1 = sx2 = sy0 = sy1 = sy2 = sxx = 0.0
            c00 = c01 = c02 = c10 = c11 = c12 = c20 = c21 = c22 = 0.0
            for q in range(k):
                w = np.float64(wh[q] * wr[q])
                x0, x1, x2 = np.float64(hx[q]), np.float64(hy[q]), np.float64(hz[q])
                y0, y1, y2 = np.float64(rx[q]), np.float64(ry[q]), np.float64(rz[q])
                n += w
                wx0, wx1, wx2 = w * x0, w * x1, w * x2
                sx0 += wx0
                sx1 += wx1
                sx2 += wx2
                sy0 += w * y0
                sy1 += w * y1
                sy2 += w * y2
                sxx += wx0 * x0 + wx1 * x1 + wx2 * x2
                c00 += wx0 * y0
                c01 += wx0 * y1
                c02 += wx0 * y2
                c10 += wx1 * y0
                c11 += wx1 * y1
                c12 += wx1 * y2
                c20 += wx2 * y0
                c21 += wx2 * y1
                c22 += wx2 * y2
            if n < 3:
                out[i, j] = np.inf
                continue
            mx0, mx1, mx2 = sx0 / n, sx1 / n, sx2 / n
            my0, my1, my2 = sy0 / n, sy1 / n, sy2 / n
            hm[0, 0] = c00 - n * mx0 * my0
            hm[0, 1] = c01 - n * mx0 * my1
            hm[0, 2] = c02 - n * mx0 * my2
            hm[1, 0] = c10 - n * mx1 * my0
            hm[1, 1] = c11 - n * mx1 * my1
            hm[1, 2] = c12 - n * mx1 * my2
            hm[2, 0] = c20 - n * mx2 * my0
            hm[2, 1] = c21 - n * mx2 * my1
            hm[2, 2] = c22 - n * mx2 * my2
            var = sxx - n * (mx0 * mx0 + mx1 * mx1 + mx2 * mx2)
            tr = _procrustes_rotation(hm, rot, a, v)
            scale = tr / var if var > 0 else 0.0
            # aligned hyp joint = M (x - mx) + my with M = scale * R
            m00, m01, m02 = scale * rot[0, 0], scale * rot[0, 1], scale * rot[0, 2]
            m10, m11, m12 = scale * rot[1, 0], scale * rot[1, 1], scale * rot[1, 2]
            m20, m21, m22 = scale * rot[2, 0], scale * rot[2, 1], scale * rot[2, 2]
            acc = 0.0
            for q in range(k):
                x0, x1, x2 = hx[q] - mx0, hy[q] - mx1, hz[q] - mx2
                e0 = m00 * x0 + m01 * x1 + m02 * x2 + my0 - rx[q]
                e1 = m10 * x0 + m11 * x1 + m12 * x2 + my1 - ry[q]
                e2 = m20 * x0 + m21 * x1 + m22 * x2 + my2 - rz[q]
                acc += (wh[q] * wr[q]) * math.sqrt(e0 * e0 + e1 * e1 + e2 * e2)
            out[i, j] = acc / n
    return out


@njit(cache=True)
def _path_joint_errors(h, mh, r, mr, path):
    """Sum of per-joint Euclidean errors over every aligned pair of ``path`` and their count."""
    total = 0.0
    cnt = 0.0
    k = h.shape[2]
    for m in range(path.shape[0]):
        i, j = path[m, 0], path[m, 1]
        for q in range(k):
            if mh[i, q] * mr[j, q] == 0:
                continue
            dx = h[i, 0, q] - r[j, 0, q]
            dy = h[i, 1, q] - r[j, 1, q]
            dz = h[i, 2, q] - r[j, 2, q]
            total += math.sqrt(dx * dx + dy * dy + dz * dz)
            cnt += 1.0
    return total, cnt


# --- public building blocks -------------------------------------------------------------------


def dtw_from_cost(cost: np.ndarray) -> tuple[float, int]:
    """Exact DTW over a precomputed (T, S) frame-cost matrix: (optimal total cost, path pairs)."""
    d, n = _dtw_accumulate(np.ascontiguousarray(cost, dtype=np.float64))
    return float(d[-1, -1]), int(n[-1, -1])


def dtw_path(cost: np.ndarray) -> np.ndarray:
    """Exact DTW path over a (T, S) cost matrix as (P, 2) index pairs, (0,0) to (T-1,S-1)."""
    d, _ = _dtw_accumulate(np.ascontiguousarray(cost, dtype=np.float64))
    return _dtw_backtrack(d)


def cost_matrix(hyp: np.ndarray, ref: np.ndarray, kind: int = MEAN_L2) -> np.ndarray:
    """(T, S) frame-cost matrix of one of the ``_cost_masked`` kinds (default: DTW-MJE's mean
    joint L2). Frames are kept as given (all-missing ones are not dropped here); pairs sharing no
    joint cost +inf."""
    h, mh, _, nh = _split_missing(_as_seq(hyp, "hyp"))
    r, mr, _, nr = _split_missing(_as_seq(ref, "ref"))
    if kind == MEAN_L2 and nh == 0 and nr == 0:
        return _cost_mje_full(h, r)
    return _cost_masked(h, mh, r, mr, kind, _NO_ROOT)


def _mje_matrix(ph, pr) -> np.ndarray:
    if ph[2] and pr[2]:
        return _cost_mje_full(ph[0], pr[0])
    return _cost_masked(ph[0], ph[1], pr[0], pr[1], MEAN_L2, _NO_ROOT)


def dtw_mje(hyp: np.ndarray, ref: np.ndarray) -> float:
    """DTW mean joint error between hyp (T,K,3) and ref (S,K,3); NaN marks missing joints.

    Exact DTW with steps (1,0),(0,1),(1,1); frame cost = mean Euclidean distance over the joints
    present in both frames (+inf if none); frames with every joint missing are dropped first.
    Returns total optimal-path cost / number of aligned pairs on the path; NaN if either sequence
    has no frame left, +inf if no alignment has a finite cost. docs/design.md, section 8. Symmetric.
    """
    h, r = _as_pair(hyp, ref)
    ph, pr = _prepare(h), _prepare(r)
    if ph is None or pr is None:
        return float("nan")
    total, steps = dtw_from_cost(_mje_matrix(ph, pr))
    return total / steps


def dtw_pa_jpe(hyp: np.ndarray, ref: np.ndarray) -> float:
    """DTW Procrustes-aligned joint position error between hyp (T,K,3) and ref (S,K,3).

    As :func:`dtw_mje`, with frame cost = mean joint error after a similarity Procrustes
    alignment (rotation, uniform scale, translation) of the hyp frame onto the ref frame over
    their shared joints (+inf with fewer than 3). Invariant to rotating, scaling or translating
    each hypothesis frame. docs/design.md, section 8; the alignment is SOKE's DTW-PA-JPE one.
    """
    h, r = _as_pair(hyp, ref)
    ph, pr = _prepare(h), _prepare(r)
    if ph is None or pr is None:
        return float("nan")
    total, steps = dtw_from_cost(_cost_pa(ph[0], ph[1], pr[0], pr[1]))
    return total / steps


# --- protocols --------------------------------------------------------------------------------
#
# Each protocol turns one (hyp, ref) pair, for one joint selection, into per-metric terms
# (numerator, denominator). The sample's score is num / den; a corpus score is either the mean
# of the sample scores (pooled=False) or sum(num) / sum(den) over samples (pooled=True). NaN
# numerators mark an undefined score (a sequence with no frame left).

_NAN = (float("nan"), float("nan"))


def _terms_slp(h, r, fps):
    """slp (default, docs/design.md, section 8): DTW-MJE and DTW-PA-JPE, path cost / aligned pairs."""
    ph, pr = _prepare(h), _prepare(r)
    if ph is None or pr is None:
        return {"dtw_mje": _NAN, "dtw_pa_jpe": _NAN}
    mje = dtw_from_cost(_mje_matrix(ph, pr))
    pa = dtw_from_cost(_cost_pa(ph[0], ph[1], pr[0], pr[1]))
    return {"dtw_mje": (mje[0], float(mje[1])), "dtw_pa_jpe": (pa[0], float(pa[1]))}


def _terms_pt2020(h, r, fps):
    """pt2020, Progressive Transformers (Saunders et al. 2020, ``helpers.calculate_dtw`` and
    ``dtw.py`` of BenSaunders27/ProgressiveTransformersSLP; copied by Sign-IDD and others).

    Matched: frame cost = sum of absolute coordinate differences over all joints
    (``np.sum(np.abs(x - y))`` on flattened frames), exact DTW with the same three steps, the
    optimal total cost divided by the number of reference frames (``acc_cost_matrix.shape[0]``
    with the reference passed first); sample scores averaged. Not matched: their data-specific
    trimming (the counter channel, the reference cut at its max counter index, a dropped BOS
    frame) -- give slp the frames to score. With missing joints (their data has none) the sum
    runs over the shared joints rescaled by K / shared, and all-missing frames are dropped.
    """
    ph, pr = _prepare(h), _prepare(r)
    if ph is None or pr is None:
        return {"dtw": _NAN}
    total, _ = dtw_from_cost(_cost_masked(ph[0], ph[1], pr[0], pr[1], SUM_L1, _NO_ROOT))
    return {"dtw": (total, float(pr[0].shape[0]))}


def slrtp_stride(fps: float | None) -> int:
    """Subsampling stride that brings ``fps`` to the SLRTP 2025 evaluation rate (12.5 fps)."""
    if not fps:
        return 1
    return max(1, int(round(fps / 12.5)))


def _terms_slrtp2025(h, r, fps):
    """slrtp2025, the SLRTP 2025 challenge evaluation (walsharry/SLRTP-Sign-Production-Evaluation,
    ``metrics.pose_dtw_mje`` and ``main.py``).

    Matched: both sides brought to 12.5 fps by taking every 2nd frame of 25 fps data
    (``v[::2]``); the alignment path from DTW with the L2 distance of whole flattened frames; the
    hypothesis and reference frames gathered along the path and concatenated over the corpus;
    the score is the mean per-joint Euclidean error over all of them (pooled, so long sequences
    weigh more). Not matched: the challenge uses fastdtw (radius 1, approximate); slp uses exact
    DTW on the same frame cost, so scores can be lower where fastdtw missed the optimum. Missing
    joints: the frame L2 runs over shared joints rescaled by K / shared, errors are pooled over the
    shared joints, all-missing frames are dropped.
    """
    sh, sr = (fps if isinstance(fps, tuple) else (fps, fps))
    h, r = h[:: slrtp_stride(sh)], r[:: slrtp_stride(sr)]
    ph, pr = _prepare(h), _prepare(r)
    if ph is None or pr is None:
        return {"dtw_mje": _NAN}
    path = dtw_path(_cost_masked(ph[0], ph[1], pr[0], pr[1], FLAT_L2, _NO_ROOT))
    total, cnt = _path_joint_errors(ph[0], ph[1], pr[0], pr[1], path)
    return {"dtw_mje": (total, cnt) if cnt > 0 else (float("inf"), 1.0)}


# Roots for SOKE's translation alignment, as indices into each selection: SOKE aligns the body on
# the SMPL-X pelvis (joint 0) and each hand on its wrist (hand joint 0); mp178 has no pelvis, so
# the body uses the mid-hip, and the face (which SOKE does not score) its shared-joint centroid.
SOKE_ROOTS: dict[str, tuple[int, ...]] = {
    "all": (R_HIP, L_HIP),
    "body": (R_HIP - ARTICULATORS["body"].start, L_HIP - ARTICULATORS["body"].start),
    "right_hand": (0,),
    "left_hand": (0,),
    "face": (),
}


def _terms_soke2025(h, r, fps, root=()):
    """soke2025, SOKE's released code (``mGPT/metrics/dtw.py`` and ``TM2TMetrics`` of Zuo et al.,
    SOKE section 4).

    Matched: per body part, frame cost = mean joint L2 error after aligning the hypothesis frame
    to the reference one -- by the root translation (``l2_dist_align(align_idx=0)``: DTW-JPE) or
    by a per-frame similarity Procrustes (``rigid_align``: DTW-PA-JPE); exact DTW with the three
    steps; the optimal path cost accumulated WITHOUT normalisation (``dtw(...)[0]``), averaged
    over sequences. Not matched: SOKE scores SMPL-X joints (body part = upper body after a
    Procrustes over all joints; hands regressed from the mesh); slp scores the mp178 articulators
    and aligns each on its own joints (roots in :data:`SOKE_ROOTS`). Missing joints: errors over
    shared joints, all-missing frames dropped.
    """
    ph, pr = _prepare(h), _prepare(r)
    if ph is None or pr is None:
        return {"dtw_jpe": _NAN, "dtw_pa_jpe": _NAN}
    roots = np.asarray(root, dtype=np.int64)
    jpe, _ = dtw_from_cost(_cost_masked(ph[0], ph[1], pr[0], pr[1], ROOT_MEAN_L2, roots))
    pa, _ = dtw_from_cost(_cost_pa(ph[0], ph[1], pr[0], pr[1]))
    return {"dtw_jpe": (jpe, 1.0), "dtw_pa_jpe": (pa, 1.0)}


@dataclass(frozen=True)
class Protocol:
    name: str
    metrics: tuple[str, ...]
    pooled: bool  # corpus score = sum(num)/sum(den) instead of the mean of sample scores
    label: str


PROTOCOLS: dict[str, Protocol] = {
    "slp": Protocol("slp", ("dtw_mje", "dtw_pa_jpe"), False,
                    "slp: exact DTW, mean joint L2 frame cost, path cost / aligned pairs"),
    "pt2020": Protocol("pt2020", ("dtw",), False,
                       "Progressive Transformers: sum |coord diff| frame cost, path cost / reference length"),
    "slrtp2025": Protocol("slrtp2025", ("dtw_mje",), True,
                          "SLRTP 2025: flattened-L2 DTW path at 12.5 fps, per-joint L2 pooled over the corpus"),
    "soke2025": Protocol("soke2025", ("dtw_jpe", "dtw_pa_jpe"), False,
                         "SOKE: root-aligned / Procrustes-aligned joint L2, path cost not normalised"),
}
_TERMS = {"slp": _terms_slp, "pt2020": _terms_pt2020, "slrtp2025": _terms_slrtp2025,
          "soke2025": _terms_soke2025}


def selections(num_joints: int) -> dict[str, slice]:
    """Joint selections scored: ``all`` plus the mp178 articulators when the layout is mp178."""
    sel = {"all": slice(0, num_joints)}
    if num_joints == 178:
        sel.update(ARTICULATORS)
    return sel


def dtw_terms(hyp: np.ndarray, ref: np.ndarray, protocol: str = "slp",
              fps: float | tuple[float, float] | None = None) -> dict[str, dict[str, tuple[float, float]]]:
    """Per-metric, per-selection (numerator, denominator) terms of one pair, for corpus pooling.

    ``fps`` (one rate, or (hyp_fps, ref_fps)) is used by ``slrtp2025`` only, to subsample to
    12.5 fps; leave it None for sequences already at that rate.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown DTW protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    h, r = _as_pair(hyp, ref)
    out: dict[str, dict[str, tuple[float, float]]] = {m: {} for m in PROTOCOLS[protocol].metrics}
    for name, sl in selections(h.shape[1]).items():
        if protocol == "soke2025":
            terms = _terms_soke2025(h[:, sl], r[:, sl], fps, SOKE_ROOTS.get(name, ()) if h.shape[1] == 178 else ())
        else:
            terms = _TERMS[protocol](h[:, sl], r[:, sl], fps)
        for m, t in terms.items():
            out[m][name] = (float(t[0]), float(t[1]))
    return out


def dtw_scores(hyp: np.ndarray, ref: np.ndarray, protocol: str = "slp",
               fps: float | tuple[float, float] | None = None) -> dict[str, dict[str, float]]:
    """All DTW scores of one pair under ``protocol``: ``{metric: {selection: value}}``.

    Selections are ``all`` and, for the mp178 layout, ``body``, ``right_hand``, ``left_hand``,
    ``face`` (skeleton.ARTICULATORS). Metrics per protocol are in :data:`PROTOCOLS`, e.g. slp
    gives ``dtw_mje`` and ``dtw_pa_jpe``. NaN marks an undefined score.
    """
    terms = dtw_terms(hyp, ref, protocol, fps)
    return {m: {s: (n / d if d == d and d != 0 else float("nan")) for s, (n, d) in sel.items()}
            for m, sel in terms.items()}
