"""pose-format interop: full and reduced MediaPipe Holistic .pose files -> mp178, export round
trip, lexicon folders, and the import/export commands. Every .pose file here is made by the test
with pose-format's own API."""

import csv
import warnings

import numpy as np
import pytest
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions
from pose_format.utils.generic import fake_openpose_pose, reduce_holistic
from typer.testing import CliRunner

from slp_cli import Sample, SlpError, load, save, skeleton
from slp_cli.cli.main import app
from slp_cli.interop.pose_format import (
    import_poses, pose_fps, read_lexicon, read_pose, resample, write_pose,
)

# MediaPipe's PoseLandmark names, in MediaPipe's order (RIGHT_SHOULDER is 12).
MP_POSE_NAMES = [
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE",
    "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER",
    "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY",
    "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP", "RIGHT_HIP",
    "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE", "LEFT_HEEL", "RIGHT_HEEL",
    "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX",
]


def holistic_pose(frames=6, people=1, face=468, world=True, fps=25.0, seed=0) -> Pose:
    """A full MediaPipe Holistic pose as pose-format holds it: components POSE_LANDMARKS,
    FACE_LANDMARKS, LEFT_HAND_LANDMARKS, RIGHT_HAND_LANDMARKS (+ POSE_WORLD_LANDMARKS), random
    values, some points missing (confidence 0, masked)."""
    def comp(name, points):
        return PoseHeaderComponent(name, points, [(0, 1)], [(255, 0, 0)], "XYZC")

    comps = [comp("POSE_LANDMARKS", MP_POSE_NAMES), comp("FACE_LANDMARKS", [str(i) for i in range(face)]),
             comp("LEFT_HAND_LANDMARKS", skeleton.HAND_NAMES), comp("RIGHT_HAND_LANDMARKS", skeleton.HAND_NAMES)]
    if world:
        comps.append(comp("POSE_WORLD_LANDMARKS", MP_POSE_NAMES))
    header = PoseHeader(0.2, PoseHeaderDimensions(1000, 1000, 1000), comps)
    rng = np.random.default_rng(seed)
    n = header.total_points()
    data = rng.uniform(0, 1000, size=(frames, people, n, 3)).astype(np.float32)
    conf = rng.uniform(0.1, 1.0, size=(frames, people, n)).astype(np.float32)
    conf[rng.random(conf.shape) < 0.1] = 0  # missing points
    data[conf == 0] = 0
    body = NumPyPoseBody(fps, np.ma.masked_array(data, mask=np.repeat((conf == 0)[..., None], 3, -1)), conf)
    return Pose(header, body)


def write(pose: Pose, path):
    with open(path, "wb") as f:
        pose.write(f)
    return path


def expected_mp178(pose: Pose, person=0):
    """What import must give, from skeleton.py's own MediaPipe map on the raw arrays."""
    data = np.array(np.ma.getdata(pose.body.data)[:, person], dtype=np.float32)
    conf = np.array(pose.body.confidence[:, person], dtype=np.float32)
    data[conf == 0] = np.nan
    sizes = [len(c.points) for c in pose.header.components]
    o = np.cumsum([0] + sizes)
    parts = [data[:, o[i]:o[i + 1]] for i in range(4)]  # pose, face, left hand, right hand
    cparts = [conf[:, o[i]:o[i + 1], None] for i in range(4)]
    return skeleton.from_mediapipe_holistic(*parts), skeleton.from_mediapipe_holistic(*cparts)[..., 0]


def test_full_holistic_maps_by_name(tmp_path):
    pose = holistic_pose()
    s = read_pose(write(pose, tmp_path / "clip.pose"))
    raw = np.ma.getdata(pose.body.data)[:, 0]
    conf = pose.body.confidence[:, 0]
    assert s.id == "clip" and s.pose.shape == (6, 178, 3) and s.pose.dtype == np.float32
    # mp178 0 = right shoulder = MediaPipe pose landmark 12; frames where it is present
    ok = conf[:, 12] > 0
    np.testing.assert_array_equal(s.pose[ok, 0], raw[ok, 12])
    assert np.isnan(s.pose[~ok, 0]).all() and (s.confidence[~ok, 0] == 0).all()
    # face-mesh point 61 (mouth corner) sits at 50 + its rank among the 128 contour points
    j = 50 + skeleton.FACE_MESH_INDICES.index(61)
    ok = conf[:, 33 + 61] > 0
    np.testing.assert_array_equal(s.pose[ok, j], raw[ok, 33 + 61])
    # right hand wrist (mp178 8) is the first RIGHT_HAND_LANDMARKS point (after 33 + 468 + 21)
    ok = conf[:, 522] > 0
    np.testing.assert_array_equal(s.pose[ok, 8], raw[ok, 522])
    want_pose, want_conf = expected_mp178(pose)
    np.testing.assert_array_equal(s.pose, want_pose)
    np.testing.assert_array_equal(s.confidence, want_conf)
    assert pose_fps(tmp_path / "clip.pose") == 25.0


def test_refined_face_and_several_people(tmp_path):
    pose = holistic_pose(face=478, people=2, world=False, seed=1)
    with pytest.warns(UserWarning, match="2 people"):
        s = read_pose(write(pose, tmp_path / "two.pose"), sample_id="x", text="hallo", lang="dgs")
    assert (s.id, s.text, s.lang) == ("x", "hallo", "dgs")
    np.testing.assert_array_equal(s.pose, expected_mp178(pose, person=0)[0])


def test_reduced_holistic_order_maps_to_the_same_points(tmp_path):
    full = holistic_pose(seed=2)
    reduced = reduce_holistic(full)  # pose-format's own reduction: 8 + 128 + 21 + 21 points
    assert [len(c.points) for c in reduced.header.components] == [8, 128, 21, 21]
    a = read_pose(write(full, tmp_path / "full.pose"))
    b = read_pose(write(reduced, tmp_path / "reduced.pose"))
    np.testing.assert_array_equal(a.pose, b.pose)
    np.testing.assert_array_equal(a.confidence, b.confidence)
    # and agrees with skeleton.from_reduced_holistic on the raw reduced array
    raw = np.array(np.ma.getdata(reduced.body.data)[:, 0], dtype=np.float32)
    raw[reduced.body.confidence[:, 0] == 0] = np.nan
    np.testing.assert_array_equal(b.pose, skeleton.from_reduced_holistic(raw))


def test_export_round_trip_and_pose_format_reads_it(tmp_path):
    rng = np.random.default_rng(3)
    pose = rng.normal(300, 80, size=(9, 178, 3)).astype(np.float32)
    pose[2, 8:29] = np.nan  # right hand lost in a frame
    pose[:, 100] = np.nan  # a face point never seen
    conf = np.where(np.isfinite(pose).all(-1), rng.uniform(0.2, 1, size=(9, 178)), 0).astype(np.float32)
    s = Sample(id="rt", pose=pose, confidence=conf)
    out = write_pose(s, tmp_path / "out.pose", fps=12.5)
    p = Pose.read(out.read_bytes())
    assert [(c.name, len(c.points), c.format) for c in p.header.components] == [
        ("POSE_LANDMARKS", 8, "XYZC"), ("FACE_LANDMARKS", 128, "XYZC"),
        ("LEFT_HAND_LANDMARKS", 21, "XYZC"), ("RIGHT_HAND_LANDMARKS", 21, "XYZC")]
    assert p.header.components[0].points == skeleton.REDUCED_BODY_NAMES
    assert p.body.fps == 12.5 and p.body.data.shape == (9, 1, 178, 3)
    # pose-format finds the signer's right shoulder by name where mp178 had it
    i = p.header.get_point_index("POSE_LANDMARKS", "RIGHT_SHOULDER")
    np.testing.assert_array_equal(p.body.data[:, 0, i], pose[:, 0])
    assert p.body.data.mask[2, 0, p.header.get_point_index("RIGHT_HAND_LANDMARKS", "WRIST")].all()
    back = read_pose(out)
    np.testing.assert_array_equal(back.pose, pose)  # NaN where missing, exact float32 elsewhere
    np.testing.assert_array_equal(back.confidence, conf)
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_unsupported_files_are_refused_with_components_named(tmp_path):
    write(fake_openpose_pose(3), tmp_path / "op.pose")
    with pytest.raises(SlpError, match=r"op\.pose: components pose_keypoints_2d .*Supported"):
        read_pose(tmp_path / "op.pose")
    no_hands = holistic_pose().remove_components(["LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS"])
    with pytest.raises(SlpError, match="missing LEFT_HAND_LANDMARKS, RIGHT_HAND_LANDMARKS"):
        read_pose(write(no_hands, tmp_path / "nohands.pose"))
    (tmp_path / "junk.pose").write_bytes(b"not a pose")
    with pytest.raises(SlpError, match="junk.pose: not a readable .pose file"):
        read_pose(tmp_path / "junk.pose")
    with pytest.raises(SlpError, match="not found"):
        read_pose(tmp_path / "absent.pose")


def test_resample_interpolates_and_keeps_gaps():
    pose = np.zeros((3, 178, 3), np.float32)
    pose[:, :, 0] = np.array([0, 10, 20])[:, None]
    pose[2, 5] = np.nan
    conf = np.where(np.isfinite(pose).all(-1), 1.0, 0.0).astype(np.float32)
    p, c = resample(pose, conf, 10, 20)  # twice the rate: 6 frames at 0, .5, 1, 1.5, 2, 2 (held)
    np.testing.assert_allclose(p[:, 0, 0], [0, 5, 10, 15, 20, 20])
    assert np.isnan(p[3, 5]).all() and c[3, 5] == 0  # between a present and a missing frame
    assert np.isfinite(p[2, 5]).all() and c[2, 5] == 1  # exactly on a present frame
    p, _ = resample(pose, conf, 20, 10)
    np.testing.assert_allclose(p[:, 0, 0], [0, 20])


def make_lexicon(folder, rows, rates):
    folder.mkdir()
    (folder / "sgg").mkdir()
    for name, (frames, fps) in rates.items():
        pose = np.zeros((frames, 178, 3), np.float32)
        pose[..., 0] = np.arange(frames, dtype=np.float32)[:, None]  # x = frame number
        write_pose(Sample(id=name, pose=pose), folder / f"sgg/{name}.pose", fps)
    with open(folder / "index.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "spoken_language", "signed_language", "start", "end", "words", "glosses", "priority"])
        w.writerows(rows)


def test_read_lexicon(tmp_path):
    rows = [["sgg/haus.pose", "de", "sgg", 0, 0, "haus", "HAUS", 0],
            ["sgg/auto.pose", "de", "sgg", 200, 600, "auto", "AUTO", 0],
            ["sgg/auto.pose", "de", "sgg", 0, 0, "wagen", "AUTO", 1]]
    make_lexicon(tmp_path / "lex", rows, {"haus": (20, 25.0), "auto": (30, 25.0)})
    samples, fps = read_lexicon(tmp_path / "lex")
    assert fps == 25.0
    assert [s.id for s in samples] == ["sgg/haus#0", "sgg/auto#1", "sgg/auto#2"]
    assert [(s.text, s.glosses, s.lang) for s in samples] == [
        ("haus", ["HAUS"], "sgg"), ("auto", ["AUTO"], "sgg"), ("wagen", ["AUTO"], "sgg")]
    assert samples[0].num_frames == 20 and samples[2].num_frames == 30  # 0,0 = whole file
    # 200-600 ms at 25 fps (40 ms a frame) = frames 5..14
    np.testing.assert_array_equal(samples[1].pose[:, 0, 0], np.arange(5, 15))


def test_lexicon_with_mixed_rates_and_errors(tmp_path):
    rows = [["sgg/a.pose", "de", "sgg", 0, 0, "a", "A", 0], ["sgg/b.pose", "de", "sgg", 0, 0, "b", "B", 0],
            ["sgg/c.pose", "de", "sgg", 0, 0, "c", "C", 0]]
    make_lexicon(tmp_path / "lex", rows, {"a": (10, 25.0), "b": (10, 25.0), "c": (20, 50.0)})
    with pytest.warns(UserWarning, match="resampling 1 at 50 fps to 25 fps"):
        samples, fps = read_lexicon(tmp_path / "lex")
    assert fps == 25.0 and [s.num_frames for s in samples] == [10, 10, 10]
    np.testing.assert_array_equal(samples[2].pose[:, 0, 0], np.arange(0, 20, 2))
    samples, fps = read_lexicon(tmp_path / "lex", fps=50)
    assert fps == 50 and [s.num_frames for s in samples] == [20, 20, 20]
    (tmp_path / "lex/sgg/b.pose").unlink()
    with pytest.raises(SlpError, match=r"row 3 names sgg/b.pose, but .*b.pose does not exist"):
        read_lexicon(tmp_path / "lex")
    with pytest.raises(SlpError, match=r"empty/index.csv: lexicon index not found"):
        read_lexicon(tmp_path / "empty")


def test_import_poses_files_and_lexicons(tmp_path):
    write(holistic_pose(fps=25.0), tmp_path / "one.pose")
    make_lexicon(tmp_path / "lex", [["sgg/a.pose", "de", "sgg", 0, 0, "a", "A", 0]], {"a": (10, 25.0)})
    samples, fps = import_poses([tmp_path / "one.pose", tmp_path / "lex"], lang="dgs")
    assert fps == 25.0 and [(s.id, s.lang) for s in samples] == [("one", "dgs"), ("sgg/a#0", "sgg")]
    (tmp_path / "d").mkdir()
    write(holistic_pose(fps=25.0), tmp_path / "d/one.pose")
    with pytest.raises(SlpError, match="sample id 'one'"):
        import_poses([tmp_path / "one.pose", tmp_path / "d/one.pose"])


def test_cli_import_and_export(tmp_path):
    runner = CliRunner()
    pose = holistic_pose(frames=5)
    write(pose, tmp_path / "a.pose")
    write(holistic_pose(frames=7, seed=5), tmp_path / "b.pose")
    out = tmp_path / "poses.h5"
    r = runner.invoke(app, ["import-pose", str(tmp_path / "a.pose"), str(tmp_path / "b.pose"),
                            "-o", str(out), "--lang", "dgs"])
    assert r.exit_code == 0, r.output
    art = load(out)
    assert art.fps == 25.0 and art.ids == ["a", "b"] and [s.lang for s in art] == ["dgs", "dgs"]
    np.testing.assert_array_equal(art["a"].pose, expected_mp178(pose)[0])
    # a bad input: an error, nothing written
    (tmp_path / "bad.pose").write_bytes(b"\0" * 3)
    r = runner.invoke(app, ["import-pose", str(tmp_path / "a.pose"), str(tmp_path / "bad.pose"),
                            "-o", str(tmp_path / "new.h5")])
    assert isinstance(r.exception, SlpError) and "bad.pose" in str(r.exception)
    assert not (tmp_path / "new.h5").exists()
    # export
    r = runner.invoke(app, ["export-pose", str(out), "--id", "b", "-o", str(tmp_path / "b_out.pose")])
    assert r.exit_code == 0, r.output
    back = read_pose(tmp_path / "b_out.pose")
    np.testing.assert_array_equal(back.pose, art["b"].pose)
    r = runner.invoke(app, ["export-pose", str(out), "-o", str(tmp_path / "x.pose")])
    assert isinstance(r.exception, SlpError) and "choose one with --id" in str(r.exception)
    r = runner.invoke(app, ["export-pose", str(out), "--id", "zz", "-o", str(tmp_path / "x.pose")])
    assert isinstance(r.exception, SlpError) and "ids there include: a, b" in str(r.exception)


def test_export_of_a_saved_artifact_keeps_fps(tmp_path):
    pose = np.random.default_rng(0).normal(size=(4, 178, 3)).astype(np.float32)
    save([Sample(id="s", pose=pose)], tmp_path / "a.h5", fps=30)
    r = CliRunner().invoke(app, ["export-pose", str(tmp_path / "a.h5"), "-o", str(tmp_path / "s.pose")])
    assert r.exit_code == 0, r.output
    assert pose_fps(tmp_path / "s.pose") == 30
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean file: no warning on import
        np.testing.assert_array_equal(read_pose(tmp_path / "s.pose").pose, pose)
