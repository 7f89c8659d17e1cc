import numpy as np
import pytest

import slp_cli
from slp_cli import SlpError, skeleton
from slp_cli.normalize import fill_gaps, neck_and_width, normalize_pose, run
from tests.conftest import random_pose


def test_neck_at_origin_and_unit_shoulders():
    pose = random_pose(20)
    pose[:, 0] += np.linspace(0, 30, 20)[:, None]  # shoulders move: per-frame scale differs
    out, _ = normalize_pose(pose)
    neck, width = neck_and_width(out)
    np.testing.assert_allclose(neck, 0, atol=1e-5)
    np.testing.assert_allclose(width, 1, atol=1e-5)


def test_invariant_to_translation_and_scale():
    pose = random_pose(15)
    a, _ = normalize_pose(pose)
    b, _ = normalize_pose(pose * 2.5 + np.float32(7))
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_sequence_mode_keeps_relative_motion():
    pose = random_pose(15)
    out, _ = normalize_pose(pose, mode="sequence")
    neck, width = neck_and_width(out)
    np.testing.assert_allclose(neck.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(width.mean(), 1, atol=1e-4)


def test_short_gaps_filled_long_gaps_left_missing():
    pose = random_pose(30)
    conf = np.ones(pose.shape[:2], np.float32)
    pose[5:8, 10] = np.nan  # 3 frames: filled
    pose[12:25, 11] = np.nan  # 13 frames: left missing
    pose[0:2, 12] = np.nan  # at the start: never extrapolated
    filled, c = fill_gaps(pose, conf, max_gap=5)
    expected = pose[4, 10] + (pose[8, 10] - pose[4, 10]) * (2 / 4)
    np.testing.assert_allclose(filled[6, 10], expected, rtol=1e-5)
    assert np.isnan(filled[12:25, 11]).all() and np.isnan(filled[0:2, 12]).all()
    out, c = normalize_pose(pose, conf)
    assert (c[12:25, 11] == 0).all() and np.isfinite(out[5:8, 10]).all()


def test_frames_without_shoulders_borrow_the_nearest():
    pose = random_pose(10)
    pose[3, [skeleton.R_SHOULDER, skeleton.L_SHOULDER]] = np.nan
    out, _ = normalize_pose(pose, max_gap=0)
    assert np.isfinite(out[3, 20]).all()


def test_bad_sequences():
    pose = random_pose(5)
    pose[:, skeleton.R_SHOULDER] = np.nan
    with pytest.raises(SlpError, match="never seen"):
        normalize_pose(pose, sample_id="x")
    pose = random_pose(5)
    pose[2, 30, 1] = np.inf
    with pytest.raises(SlpError, match="inf"):
        normalize_pose(pose, sample_id="x")


def test_run_writes_stats_and_skips_bad_samples(tmp_path, samples):
    samples[0].pose[:, skeleton.R_SHOULDER] = np.nan
    src = slp_cli.save(samples, tmp_path / "raw.h5", fps=25)
    result = run(src, tmp_path / "norm.h5")
    art = slp_cli.load(tmp_path / "norm.h5")
    assert art.normalized and len(art) == len(samples) - 1 and result["skipped"][0]["input"].endswith("#s0")
    assert art.skipped and art.stats["mean"].shape == (178, 3) and (art.stats["std"] >= 0).all()
    train = np.concatenate([s.pose for s in art if s.split == "train"])
    np.testing.assert_allclose(art.stats["mean"], np.nanmean(train, 0), atol=1e-4)
