"""`slp fit-smplx` on a synthetic SMPL-X-format model file (the real files are licence-gated):
the fast evaluator equals smplx's, the point maps follow smplx's joint names, and fitting
recovers known parameters from keypoints the same model produced."""

import subprocess
import sys

import numpy as np
import pytest

from slp_cli import skeleton
from slp_cli.artifacts import Sample, load, save
from slp_cli.errors import SlpError

torch = pytest.importorskip("torch")
pytest.importorskip("smplx")
from slp_cli.extract import smplx_fit as F  # noqa: E402

S, T0 = 400.0, np.array([256.0, 220.0, 30.0])  # the true camera: pixels per metre, offset


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("smplx")
    F.write_synthetic_model(d, seed=0)
    return d


def smplx_forward(model, go, body10, left, right, jaw, expr, betas):
    """Joints (T, 127, 3) of smplx.SMPLX itself (flat_hand_mean=True: absolute hand poses)."""
    t = len(go)
    body = np.zeros((t, 21, 3), np.float32)
    body[:, 11:21] = body10.reshape(t, 10, 3)
    f = lambda x: torch.as_tensor(np.asarray(x, np.float32))  # noqa: E731
    with torch.no_grad():
        out = model(global_orient=f(go), body_pose=f(body.reshape(t, -1)), jaw_pose=f(jaw),
                    leye_pose=torch.zeros(t, 3), reye_pose=torch.zeros(t, 3), left_hand_pose=f(left),
                    right_hand_pose=f(right), betas=f(np.repeat(betas, t, axis=0)),
                    expression=f(expr))
    return out.joints.numpy()


@pytest.fixture(scope="module")
def truth(model_dir):
    """Smooth random motion of 4 frames and its mp178 keypoints through the true camera."""
    rng = np.random.default_rng(1)
    t = 4

    def smooth(shape, std):
        a, b = rng.normal(0, std, shape), rng.normal(0, std, shape)
        w = np.linspace(0, 1, t).reshape(-1, *[1] * len(shape))
        return (a * (1 - w) + b * w).astype(np.float32)

    body = F.BodyModel(model_dir)
    mean = {k: v.numpy() for k, v in body.hand_mean.items()}
    comps = {k: v.numpy()[:12] for k, v in body.hand_components.items()}
    p = {"go": smooth((3,), 0.15), "body": smooth((30,), 0.3), "jaw": smooth((3,), 0.1),
         "expr": smooth((10,), 1.0), "betas": rng.normal(0, 1.0, (1, 10)).astype(np.float32),
         "left": mean["left"] + smooth((12,), 0.8) @ comps["left"],
         "right": mean["right"] + smooth((12,), 0.8) @ comps["right"]}
    model = F.load_smplx(model_dir)
    joints = smplx_forward(model, p["go"], p["body"], p["left"], p["right"], p["jaw"], p["expr"], p["betas"])
    kp = np.full((t, 178, 3), np.nan, np.float32)
    kp[:, F.MP178_POINTS] = S * joints[:, F.SMPLX_POINTS] * [1, -1, -1] + T0
    p.update(kp=kp, conf=np.isfinite(kp).all(-1).astype(np.float32), joints=joints, model=model, body_model=body,
             mean=mean)
    return p


def test_sparse_evaluator_equals_smplx(model_dir):
    model = F.load_smplx(model_dir)
    sparse = F.SparseSMPLX(model, num_sample=300)
    g = torch.Generator().manual_seed(0)
    full = torch.randn(3, 55, 3, generator=g) * 0.4
    shape = torch.randn(3, 20, generator=g)
    with torch.no_grad():
        out = model(global_orient=full[:, 0], body_pose=full[:, 1:22].reshape(3, -1), jaw_pose=full[:, 22],
                    leye_pose=full[:, 23], reye_pose=full[:, 24], left_hand_pose=full[:, 25:40].reshape(3, -1),
                    right_hand_pose=full[:, 40:].reshape(3, -1), betas=shape[:, :10], expression=shape[:, 10:])
        joints, verts = sparse(full, shape)
    assert joints.shape == out.joints.shape == (3, 127, 3)
    assert torch.allclose(joints, out.joints, atol=1e-5)
    sample = torch.linspace(0, out.vertices.shape[1] - 1, 300).long()
    assert torch.allclose(verts, out.vertices[:, sample], atol=1e-5)


def test_point_maps_follow_smplx_joint_names():
    from smplx.joint_names import JOINT_NAMES

    def name(mp178_index):
        return JOINT_NAMES[F.MP178_TO_SMPLX[mp178_index]]

    assert [name(i) for i in range(8)] == ["right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
                                           "left_elbow", "left_wrist", "right_hip", "left_hip"]
    finger = {"THUMB": "thumb", "INDEX_FINGER": "index", "MIDDLE_FINGER": "middle", "RING_FINGER": "ring",
              "PINKY": "pinky"}
    for side in ("right", "left"):
        start = skeleton.ARTICULATORS[f"{side}_hand"].start
        assert name(start) == f"{side}_wrist"
        for k, hand_name in enumerate(skeleton.HAND_NAMES[1:], start=1):
            f, joint = hand_name.rsplit("_", 1)
            order = ("CMC", "MCP", "IP") if f == "THUMB" else ("MCP", "PIP", "DIP")
            want = f"{side}_{finger[f]}" + ("" if joint == "TIP" else str(order.index(joint) + 1))
            assert name(start + k) == want, hand_name
    face = {m: JOINT_NAMES[F.MP178_TO_SMPLX[skeleton.ARTICULATORS["face"].start + skeleton.FACE_MESH_INDICES.index(m)]]
            for m in (61, 291, 0, 17, 13, 14, 33, 263, 70, 300)}
    assert face == {61: "right_mouth_1", 291: "left_mouth_1", 0: "mouth_top", 17: "mouth_bottom", 13: "lip_top",
                    14: "lip_bottom", 33: "right_eye1", 263: "left_eye1", 70: "right_eye_brow1",
                    300: "left_eye_brow1"}
    assert len(F.MP178_TO_SMPLX) == 8 + 42 + 42


def errors(result, truth):
    init = {"left_hand": truth["mean"]["left"], "right_hand": truth["mean"]["right"]}
    got = {name: result.smplx[:, sl] for name, sl in F.SMPLX133.items()}
    want = {"body": truth["body"], "left_hand": truth["left"], "right_hand": truth["right"], "jaw": truth["jaw"],
            "expression": truth["expr"]}
    return {k: (np.abs(got[k] - want[k]).mean(), np.abs(init.get(k, 0) - want[k]).mean()) for k in want}


def test_fit_3d_recovers_known_parameters(truth):
    opts = F.FitOptions(iters=150, target="3d", device="cpu")
    r = F.fit_videos(truth["body_model"], [(truth["kp"], truth["conf"])], opts)[0]
    width = S * np.linalg.norm(truth["joints"][0, 16] - truth["joints"][0, 17])
    assert r.losses[0] / r.losses[-1] > 30  # the loss falls by a wide margin
    assert np.nanmean(r.fit_error) < 0.01 * width  # under 1% of a shoulder width
    err = errors(r, truth)
    for part, factor in (("left_hand", 0.25), ("right_hand", 0.25), ("expression", 0.1), ("jaw", 0.7)):
        assert err[part][0] < factor * err[part][1], (part, err[part])  # vs the rest pose's error
    # Body rotations split a motion between joints (collar or shoulder, elbow or wrist twist) that
    # keypoints cannot tell apart; they still come closer than the rest pose.
    assert err["body"][0] < 0.8 * err["body"][1]
    assert np.abs(r.betas - truth["betas"]).mean() < 0.1 * np.abs(truth["betas"]).mean()
    assert abs(r.camera[0, 0] / S - 1) < 0.02 and np.abs(r.global_orient - truth["go"]).mean() < 0.1
    # The fitted parameters through smplx itself and the fitted camera give the true 3D points.
    joints = smplx_forward(truth["model"], r.global_orient, r.smplx[:, :30], r.smplx[:, 30:75], r.smplx[:, 75:120],
                           r.smplx[:, 120:123], r.smplx[:, 123:], r.betas)
    cam = r.camera[:, None]
    points = cam[..., :1] * joints[:, F.SMPLX_POINTS] * [1, -1, -1] + cam[..., 1:]
    d = np.linalg.norm(points - truth["kp"][:, F.MP178_POINTS], axis=-1) / S  # metres
    hips = np.isin(F.MP178_POINTS, [skeleton.R_HIP, skeleton.L_HIP])  # weighted low on purpose
    assert d[:, ~hips].max() < 0.01 and d.mean() < 0.003 and d[:, hips].max() < 0.05
    assert np.allclose(r.pose[:, F.MP178_POINTS], points, atol=1e-3)


def test_fit_2d_reprojects_the_keypoints(truth):
    opts = F.FitOptions(iters=150, target="2d", device="cpu")
    r = F.fit_videos(truth["body_model"], [(truth["kp"], truth["conf"])], opts)[0]
    width = S * np.linalg.norm(truth["joints"][0, 16] - truth["joints"][0, 17])
    assert r.losses[0] / r.losses[-1] > 20 and np.nanmean(r.fit_error) < 0.015 * width
    err = errors(r, truth)
    assert err["expression"][0] < 0.3 * err["expression"][1]
    for part in ("left_hand", "right_hand"):
        assert err[part][0] < 0.7 * err[part][1], (part, err[part])
    assert np.isnan(r.pose[:, 50 + 1]).all()  # face points SMPL-X lacks stay missing
    d = np.linalg.norm(r.pose[:, F.MP178_POINTS, :2] - truth["kp"][:, F.MP178_POINTS, :2], axis=-1) / width
    hips = np.isin(F.MP178_POINTS, [skeleton.R_HIP, skeleton.L_HIP])
    # A few finger points may rest in a depth-flipped local minimum after 150 steps: bound the tail.
    assert d.mean() < 0.015 and np.percentile(d, 95) < 0.04 and d[:, ~hips].max() < 0.15


def test_stage_on_an_artifact_with_gaps(model_dir, truth, tmp_path):
    kp = truth["kp"].copy()
    kp[:, skeleton.ARTICULATORS["left_hand"]] = np.nan  # a hand never seen
    kp[2] = np.nan  # a frame with nobody
    conf = np.where(np.isfinite(kp).all(-1), 1.0, 0.0).astype(np.float32)
    samples = [Sample("a", kp, conf, text="hallo", lang="dgs", arrays={"source_fps": np.array([25.0], np.float32)}),
               Sample("b", truth["kp"][:3], truth["conf"][:3], arrays={"source_fps": np.array([25.0], np.float32)}),
               Sample("none", np.full((2, 178, 3), np.nan, np.float32), arrays={"source_fps": np.zeros(1, np.float32)})]
    save(samples, tmp_path / "poses.h5", fps=25)
    from typer.testing import CliRunner

    from slp_cli.cli.main import app

    args = ["fit-smplx", str(tmp_path / "poses.h5"), "--model-dir", str(model_dir), "-o", str(tmp_path / "smplx.h5"),
            "--iters", "20", "--device", "cpu", "--threads", "1", "--no-hand-pca"]
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0, run.output
    art = load(tmp_path / "smplx.h5")
    assert art.ids == ["a", "b"] and art.fps == 25
    assert art.skipped[0]["input"].endswith("#none")
    a = art["a"]
    assert a.text == "hallo" and a.lang == "dgs" and a.arrays["source_fps"].tolist() == [25.0]
    shapes = {k: v.shape for k, v in a.arrays.items()}
    assert shapes == {"smplx": (4, 133), "global_orient": (4, 3), "betas": (1, 10), "camera": (4, 4),
                      "fit_error": (4,), "source_fps": (1,)}
    assert np.isfinite(a.arrays["smplx"]).all()  # parameters for every frame, the blank one too
    assert np.isnan(a.arrays["fit_error"][2]) and np.isfinite(a.arrays["fit_error"][[0, 1, 3]]).all()
    assert np.isnan(a.pose[2]).all() and np.isnan(a.pose[:, skeleton.ARTICULATORS["left_hand"]]).all()
    assert np.isfinite(a.pose[[0, 1, 3]][:, F.MP178_POINTS[F.MP178_POINTS < 29]]).all()
    assert ((a.conf() > 0) == np.isfinite(a.pose).all(-1)).all()
    assert art.provenance["stage"] == "fit-smplx" and "smplx" in art.provenance["arrays"]


def test_model_folder_errors(tmp_path):
    with pytest.raises(SlpError, match=r"not found; .*https://smpl-x\.is\.tue\.mpg\.de"):
        F.find_model_file(tmp_path / "nowhere")
    with pytest.raises(SlpError, match=r"no SMPLX_NEUTRAL\.npz .*SMPLX_NEUTRAL\.npz with --model-dir"):
        F.find_model_file(tmp_path)
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", v_template=np.zeros((10, 3)))
    with pytest.raises(SlpError, match="not a complete SMPL-X model file"):
        F.load_smplx(tmp_path)
    run = subprocess.run([sys.executable, "-m", "slp_cli", "fit-smplx", str(tmp_path / "x.h5"), "--model-dir",
                          str(tmp_path / "nowhere"), "-o", str(tmp_path / "y.h5")], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1 and run.stderr.count("\n") == 1 and "smpl-x.is.tue.mpg.de" in run.stderr


def test_batches_and_options():
    assert F.batches([5, 5, 5, 20, 1], 10) == [[0, 1], [2], [3], [4]]
    assert F.batches([3], 1) == [[0]]
    for bad in (dict(target="xyz"), dict(hand_pca=0), dict(iters=0)):
        with pytest.raises(SlpError):
            F.FitOptions(**bad)
