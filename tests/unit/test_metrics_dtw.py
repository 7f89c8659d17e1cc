"""DTW scores: hand-computed cases, a plain O(NM) reference, invariances, and each protocol."""

import math

import numpy as np
import pytest

from slp_cli.metrics import dtw_mje, dtw_pa_jpe, dtw_scores
from slp_cli.metrics.dtw import (
    PROTOCOLS,
    _terms_soke2025,
    dtw_from_cost,
    dtw_path,
    dtw_terms,
    cost_matrix,
    slrtp_stride,
)
from slp_cli.skeleton import ARTICULATORS

RNG = np.random.default_rng(7)


# --- plain reference implementations (no numba, no tricks) ------------------------------------


def ref_dtw(cost):
    """O(NM) DTW with the documented tie-break: (total cost, aligned pairs on the path)."""
    t, s = cost.shape
    d = np.full((t, s), np.inf)
    n = np.zeros((t, s), dtype=int)
    for i in range(t):
        for j in range(s):
            if i == 0 and j == 0:
                d[i, j], n[i, j] = cost[0, 0], 1
                continue
            cands = []  # order = tie-break preference
            if i > 0 and j > 0:
                cands.append((d[i - 1, j - 1], n[i - 1, j - 1]))
            if i > 0:
                cands.append((d[i - 1, j], n[i - 1, j]))
            if j > 0:
                cands.append((d[i, j - 1], n[i, j - 1]))
            best = min(range(len(cands)), key=lambda k: (cands[k][0], k))
            d[i, j] = cands[best][0] + cost[i, j]
            n[i, j] = cands[best][1] + 1
    return d[-1, -1], n[-1, -1]


def drop_empty(x):
    return x[np.isfinite(x).all(-1).any(-1)]


def ref_frame_mje(a, b):
    d = np.linalg.norm(a.astype(float) - b.astype(float), axis=-1)
    d = d[np.isfinite(d)]
    return d.mean() if d.size else np.inf


def ref_frame_pa(a, b):
    """SOKE's rigid_transform_3D/rigid_align (similarity Procrustes) over the shared joints."""
    ok = np.isfinite(a).all(-1) & np.isfinite(b).all(-1)
    a, b = a[ok].astype(float), b[ok].astype(float)
    if len(a) < 3:
        return np.inf
    ca, cb = a.mean(0), b.mean(0)
    h = (a - ca).T @ (b - cb)
    u, s, vt = np.linalg.svd(h)
    r = vt.T @ u.T
    if np.linalg.det(r) < 0:
        s[-1] = -s[-1]
        vt[2] = -vt[2]
        r = vt.T @ u.T
    var = ((a - ca) ** 2).sum()
    c = s.sum() / var if var > 0 else 0.0
    aligned = c * (a - ca) @ r.T + cb
    return np.linalg.norm(aligned - b, axis=-1).mean()


def ref_score(hyp, ref, frame_cost):
    h, r = drop_empty(hyp), drop_empty(ref)
    if len(h) == 0 or len(r) == 0:
        return float("nan")
    cost = np.array([[frame_cost(x, y) for y in r] for x in h])
    total, steps = ref_dtw(cost)
    return total / steps


def line(values):
    """A 1-joint sequence moving along x: (T, 1, 3)."""
    out = np.zeros((len(values), 1, 3), dtype=np.float32)
    out[:, 0, 0] = values
    return out


def walk(t, k=178):
    return (np.cumsum(RNG.normal(size=(t, k, 3)), axis=0) * 0.05).astype(np.float32)


def random_rotation():
    q, _ = np.linalg.qr(RNG.normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


# --- DTW-MJE ----------------------------------------------------------------------------------


def test_identical_and_half_speed_score_zero():
    x = walk(40, 12)
    assert dtw_mje(x, x) == 0.0
    assert dtw_mje(np.repeat(x, 2, axis=0), x) == pytest.approx(0.0, abs=1e-7)
    assert dtw_pa_jpe(np.repeat(x, 3, axis=0), x) == pytest.approx(0.0, abs=1e-5)


def test_one_joint_by_hand():
    # |x_i - y_j| for x = 0,1,2 and y = 0,2: [[0,2],[1,1],[2,0]]; best path (0,0),(1,0),(2,1)
    # (or (1,1) in the middle): cost 0 + 1 + 0 over 3 aligned pairs.
    assert dtw_mje(line([0, 1, 2]), line([0, 2])) == pytest.approx(1 / 3)
    # One frame against three: every pair is on the path: (|0-1| + |0-2| + |0-4|) / 3.
    assert dtw_mje(line([0]), line([1, 2, 4])) == pytest.approx(7 / 3)
    # Two joints, one missing in one hyp frame: mean over the shared joint only.
    h = np.array([[[0, 0, 0], [np.nan, 0, 0]]], dtype=np.float32)
    r = np.array([[[3, 4, 0], [1, 0, 0]]], dtype=np.float32)
    assert dtw_mje(h, r) == pytest.approx(5.0)


def test_tie_break_prefers_the_diagonal():
    # Cells (0,1), (1,0) and (0,0) tie at accumulated cost 1: the diagonal wins -> 2 pairs.
    cost = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert dtw_from_cost(cost) == (2.0, 2)
    assert ref_dtw(cost) == (2.0, 2)
    assert dtw_path(cost).tolist() == [[0, 0], [1, 1]]


def test_path_is_monotone_and_matches_cost():
    c = RNG.random((9, 6))
    path = dtw_path(c)
    steps = np.diff(path, axis=0)
    assert path[0].tolist() == [0, 0] and path[-1].tolist() == [8, 5]
    assert {tuple(s) for s in steps} <= {(1, 0), (0, 1), (1, 1)}
    total, pairs = dtw_from_cost(c)
    assert c[path[:, 0], path[:, 1]].sum() == pytest.approx(total)
    assert len(path) == pairs


@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_equals_plain_reference_on_random_cases(missing):
    for _ in range(12):
        k = int(RNG.integers(1, 9))
        h = RNG.normal(size=(RNG.integers(1, 14), k, 3)).astype(np.float32)
        r = RNG.normal(size=(RNG.integers(1, 14), k, 3)).astype(np.float32)
        h[RNG.random(h.shape[:2]) < missing] = np.nan
        r[RNG.random(r.shape[:2]) < missing] = np.nan
        want = ref_score(h, r, ref_frame_mje)
        got = dtw_mje(h, r)
        assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want, rel=1e-5, abs=1e-6)
        want = ref_score(h, r, ref_frame_pa)
        got = dtw_pa_jpe(h, r)
        assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want, rel=1e-6, abs=1e-6)


def test_cost_matrix_matches_reference_with_missing_joints():
    h, r = walk(7, 10), walk(5, 10)
    h[2, 3] = np.nan
    r[:, 4] = np.nan
    want = np.array([[ref_frame_mje(x, y) for y in r] for x in h])
    np.testing.assert_allclose(cost_matrix(h, r), want, rtol=1e-5)


def test_all_missing_frames_are_dropped():
    h, r = walk(10, 6), walk(12, 6)
    padded = np.concatenate([np.full((3, 6, 3), np.nan, np.float32), h[:5],
                             np.full((2, 6, 3), np.nan, np.float32), h[5:]])
    assert dtw_mje(padded, r) == pytest.approx(dtw_mje(h, r), rel=1e-6)
    assert dtw_pa_jpe(padded, r) == pytest.approx(dtw_pa_jpe(h, r), rel=1e-6)


def test_nothing_left_is_nan_and_nothing_shared_is_inf():
    empty = np.full((4, 3, 3), np.nan, np.float32)
    assert math.isnan(dtw_mje(empty, walk(5, 3)))
    assert math.isnan(dtw_mje(walk(5, 3), empty))
    assert math.isnan(dtw_pa_jpe(empty, empty))
    a, b = walk(3, 2), walk(4, 2)
    a[:, 1] = np.nan
    b[:, 0] = np.nan
    assert dtw_mje(a, b) == math.inf


def test_symmetric():
    for _ in range(5):
        a, b = walk(int(RNG.integers(5, 30)), 9), walk(int(RNG.integers(5, 30)), 9)
        assert dtw_mje(a, b) == pytest.approx(dtw_mje(b, a), rel=1e-6)


def test_input_checks():
    with pytest.raises(ValueError):
        dtw_mje(np.zeros((3, 4)), np.zeros((3, 4, 3)))
    with pytest.raises(ValueError):
        dtw_mje(np.zeros((3, 4, 3)), np.zeros((3, 5, 3)))
    with pytest.raises(ValueError):
        dtw_scores(walk(3, 4), walk(3, 4), protocol="nope")


# --- DTW-PA-JPE -------------------------------------------------------------------------------


def test_pa_jpe_invariant_to_similarity_transforms_of_the_hyp():
    h, r = walk(15, 21), walk(18, 21)
    base = dtw_pa_jpe(h, r)
    moved = np.stack([2.5 * x @ random_rotation().T + RNG.normal(size=3) for x in h.astype(float)])
    assert dtw_pa_jpe(moved.astype(np.float32), r) == pytest.approx(base, rel=1e-4)
    # ... and an exact similarity copy of the reference scores 0, but a mirror image does not.
    copy = np.stack([0.3 * y @ random_rotation().T + 7 for y in r.astype(float)]).astype(np.float32)
    assert dtw_pa_jpe(copy, r) == pytest.approx(0.0, abs=1e-4)
    assert dtw_mje(copy, r) > 0.1
    mirror = r * np.array([-1, 1, 1], np.float32)
    assert dtw_pa_jpe(mirror, r) > 0.01


def test_pa_jpe_needs_three_shared_joints():
    h, r = walk(3, 4), walk(3, 4)
    h[:, :2] = np.nan  # 2 joints left
    assert dtw_pa_jpe(h, r) == math.inf
    assert math.isfinite(dtw_mje(h, r))


def test_pa_degenerate_frames_match_reference():
    x = RNG.normal(size=(6, 3))
    cases = [np.outer(np.arange(6), [1.0, 2.0, 3.0]),  # collinear
             np.zeros((6, 3)),  # all points coincide
             x * np.array([1, 1, -1]),  # reflection
             x[:, [0, 1]] @ RNG.normal(size=(2, 3))]  # coplanar
    for y in cases:
        for a, b in ((x, y), (y, x)):
            got = dtw_pa_jpe(a[None].astype(np.float32), b[None].astype(np.float32))
            assert got == pytest.approx(ref_frame_pa(a.astype(np.float32), b.astype(np.float32)), abs=1e-5)


# --- per articulator --------------------------------------------------------------------------


def test_dtw_scores_keys_and_slices():
    h, r = walk(12), walk(10)
    out = dtw_scores(h, r)
    assert set(out) == {"dtw_mje", "dtw_pa_jpe"}
    for m in out.values():
        assert set(m) == {"all", "body", "right_hand", "left_hand", "face"}
    for name, sl in ARTICULATORS.items():
        assert out["dtw_mje"][name] == pytest.approx(dtw_mje(h[:, sl], r[:, sl]), rel=1e-6)
        assert out["dtw_pa_jpe"][name] == pytest.approx(dtw_pa_jpe(h[:, sl], r[:, sl]), rel=1e-6)
    assert out["dtw_mje"]["all"] == pytest.approx(dtw_mje(h, r), rel=1e-6)


def test_missing_hand_is_undefined_for_that_hand_only():
    h, r = walk(8), walk(9)
    r[:, ARTICULATORS["left_hand"]] = np.nan
    out = dtw_scores(h, r)
    assert math.isnan(out["dtw_mje"]["left_hand"]) and math.isnan(out["dtw_pa_jpe"]["left_hand"])
    assert all(math.isfinite(out["dtw_mje"][k]) for k in ("all", "body", "right_hand", "face"))


# --- protocols --------------------------------------------------------------------------------


def test_pt2020_by_hand():
    # Same 1-D case as above: optimal L1 path cost 1, divided by the reference length 2.
    assert dtw_scores(line([0, 1, 2]), line([0, 2]), "pt2020")["dtw"]["all"] == pytest.approx(0.5)
    # Sum (not mean) over joints and coordinates: one frame pair, |1|+|2| + |3|+|0|.
    h = np.array([[[1, 2, 0], [3, 0, 0]]], np.float32)
    assert dtw_scores(h, np.zeros_like(h), "pt2020")["dtw"]["all"] == pytest.approx(6.0)
    # A missing joint is not free: the sum over shared joints is rescaled by K / shared.
    h2 = h.copy()
    h2[0, 1] = np.nan
    assert dtw_scores(h2, np.zeros_like(h), "pt2020")["dtw"]["all"] == pytest.approx(3.0 * 2)


def test_slrtp2025_by_hand():
    assert slrtp_stride(25) == 2 and slrtp_stride(12.5) == 1 and slrtp_stride(None) == 1
    # At 25 fps every 2nd frame is kept: hyp 0,1,2 and ref 0,2 -> path (0,0),(1,0),(2,1) with joint
    # errors 0, 1, 0: pooled terms (sum 1, count 3).
    h, r = line([0, 9, 1, 9, 2]), line([0, 9, 2])
    terms = dtw_terms(h, r, "slrtp2025", fps=25)["dtw_mje"]["all"]
    assert terms == pytest.approx((1.0, 3.0))
    assert dtw_scores(h, r, "slrtp2025", fps=25)["dtw_mje"]["all"] == pytest.approx(1 / 3)
    # Without subsampling (already 12.5 fps) the 9s are kept.
    assert dtw_terms(h, r, "slrtp2025")["dtw_mje"]["all"][1] >= 5
    # Path from the L2 of whole frames, error = mean per-joint L2 along it: one pair of 2 joints.
    h2 = np.array([[[3, 4, 0], [0, 0, 0]]], np.float32)
    assert dtw_terms(h2, np.zeros_like(h2), "slrtp2025")["dtw_mje"]["all"] == pytest.approx((5.0, 2.0))
    assert PROTOCOLS["slrtp2025"].pooled and not PROTOCOLS["slp"].pooled


def test_soke2025_by_hand():
    h = np.array([[[0, 0, 0], [1, 0, 0], [2, 0, 0]]], np.float32) + 5
    r = np.array([[[0, 0, 0], [1, 0, 0], [2, 0, 0]],
                  [[0, 0, 0], [1, 0, 0], [5, 0, 0]]], np.float32)
    # Root = joint 0: errors 0 against frame 0; 0, 0, 3 against frame 1 -> path cost 0 + 1,
    # accumulated without normalisation.
    terms = _terms_soke2025(h, r, None, root=(0,))
    assert terms["dtw_jpe"] == pytest.approx((1.0, 1.0))
    # Centroid root (no root joints given): frame 1 errors 1, 1, 2 -> 0 + 4/3.
    assert _terms_soke2025(h, r, None, root=())["dtw_jpe"][0] == pytest.approx(4 / 3)
    # Procrustes: frame 1 is not a similarity copy (1-D stretch of one point): error > 0;
    # a scaled copy of frame 0 is.
    assert _terms_soke2025(h * 3, r[:1], None)["dtw_pa_jpe"][0] == pytest.approx(0.0, abs=1e-5)


def test_soke2025_aligns_each_hand_on_its_wrist():
    r = walk(10)
    h = r.copy()
    sl = ARTICULATORS["right_hand"]
    h[:, sl] += RNG.normal(size=(10, 1, 3)).astype(np.float32)  # each frame's hand moved as a whole
    out = dtw_scores(h, r, "soke2025")
    assert out["dtw_jpe"]["right_hand"] == pytest.approx(0.0, abs=1e-4)
    assert out["dtw_jpe"]["left_hand"] == pytest.approx(0.0, abs=1e-6)
    assert out["dtw_jpe"]["all"] > 0.01
    assert set(out) == {"dtw_jpe", "dtw_pa_jpe"}
    # Unnormalised: a sequence twice as long accumulates about twice the cost.
    noisy = r + RNG.normal(scale=0.1, size=r.shape).astype(np.float32)
    one = dtw_scores(noisy, r, "soke2025")["dtw_jpe"]["body"]
    two = dtw_scores(np.concatenate([noisy, noisy]), np.concatenate([r, r]), "soke2025")["dtw_jpe"]["body"]
    assert two == pytest.approx(2 * one, rel=0.2)


def test_pt2020_matches_progressive_transformers_formulation():
    # Their dtw.py: padded accumulator D0, frame cost sum|x - y| on flattened frames, reference
    # first, result D[-1, -1] / len(reference).
    def pt_dtw(x, y):
        d0 = np.zeros((len(x) + 1, len(y) + 1))
        d0[0, 1:] = np.inf
        d0[1:, 0] = np.inf
        for i in range(len(x)):
            for j in range(len(y)):
                d0[i + 1, j + 1] = np.abs(x[i] - y[j]).sum() + min(d0[i, j], d0[i, j + 1], d0[i + 1, j])
        return d0[-1, -1] / len(x)

    for _ in range(4):
        h, r = walk(int(RNG.integers(3, 20)), 50), walk(int(RNG.integers(3, 20)), 50)
        want = pt_dtw(r.reshape(len(r), -1).astype(float), h.reshape(len(h), -1).astype(float))
        assert dtw_scores(h, r, "pt2020")["dtw"]["all"] == pytest.approx(want, rel=1e-5)
