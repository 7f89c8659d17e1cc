"""Progressive Transformers' skeleton files (.skels/.text/.gloss/.files): import, export, round trip."""

import numpy as np
import pytest
from typer.testing import CliRunner

import slp_cli
from slp_cli import Sample, SlpError, skeleton
from slp_cli.cli.main import app
from slp_cli.interop.progressive import NORMALIZATION, read_skels, write_skels


def release_frames(t: int, raise_joint: int, seed: int = 0) -> np.ndarray:
    """(t, 50, 3) joints as the release has them before its division by 3: neck at the origin,
    joint 5 on the image's left (x -0.5), joint 2 on its right (x 0.5), the arms hanging, the
    wrist ``raise_joint`` lifted to head height, hands at their wrists, z towards the camera."""
    rng = np.random.default_rng(seed)
    j = np.zeros((t, 50, 3))
    j[:, 0] = [0.0, -0.6, 0.1]                      # nose
    j[:, 2], j[:, 5] = [0.5, 0.05, 0], [-0.5, 0.05, 0]  # shoulders
    j[:, 3], j[:, 6] = [0.6, 0.7, 0.2], [-0.6, 0.7, 0.2]  # elbows
    j[:, 4], j[:, 7] = [0.4, 1.1, 0.5], [-0.4, 1.1, 0.5]  # wrists, in front of the body
    j[:, raise_joint, 1] = -0.5
    j += rng.normal(0, 0.01, j.shape) * (np.arange(50) != 1)[:, None]
    j[:, 8:29] = j[:, 7:8] + rng.normal(0, 0.05, (t, 21, 3))
    j[:, 29:50] = j[:, 4:5] + rng.normal(0, 0.05, (t, 21, 3))
    j[:, 8], j[:, 29] = j[:, 7], j[:, 4]
    return j


def skels_line(frames: np.ndarray) -> str:
    t = len(frames)
    rows = [" ".join(f"{v:.5f}" for v in (f / 3).ravel()) + f" {i / t:.4f}" for i, f in enumerate(frames)]
    return " ".join(rows)


@pytest.fixture
def release(tmp_path):
    """A two-sentence split in the release's format (the real one is non-commercial)."""
    seqs = [release_frames(6, 7, seed=1), release_frames(9, 7, seed=2)]
    d = tmp_path / "release"
    d.mkdir()
    (d / "dev.skels").write_text("".join(skels_line(s) + "\n" for s in seqs))
    (d / "dev.text").write_text("am tag regnet es .\nim süden sonne .\n", encoding="utf-8")
    (d / "dev.gloss").write_text("TAG REGEN\nSUED SONNE\n")
    (d / "dev.files").write_text("dev/01April_2010_Thursday_heute-6697\ndev/01April_2010_Thursday_heute-6698\n")
    return d / "dev", seqs


def test_import_maps_sides_and_keeps_the_release_normalization(release):
    prefix, seqs = release
    samples = list(read_skels(prefix.with_suffix(".skels")))
    assert [(s.id, s.split, s.lang) for s in samples] == [
        ("01April_2010_Thursday_heute-6697", "dev", "dgs"), ("01April_2010_Thursday_heute-6698", "dev", "dgs")]
    s = samples[0]
    assert s.text == "am tag regnet es ." and s.glosses == ["TAG", "REGEN"]
    assert s.pose.shape == (6, 178, 3) and s.pose.dtype == np.float32
    # joint 5 (image left, smaller x) is the right shoulder, and the raised wrist 7 the right wrist
    assert (s.pose[:, skeleton.R_SHOULDER, 0] < s.pose[:, skeleton.L_SHOULDER, 0]).all()
    assert (s.pose[:, skeleton.R_WRIST, 1] < s.pose[:, skeleton.L_WRIST, 1] - 1).all()
    np.testing.assert_allclose(s.pose[:, skeleton.RIGHT_WRIST_HAND], s.pose[:, skeleton.R_WRIST], atol=1e-5)
    # times 3 again: the values of the frames, z pointing away from the camera as in MediaPipe
    np.testing.assert_allclose(s.pose[:, skeleton.R_ELBOW], seqs[0][:, 6] * [1, 1, -1], atol=2e-5)
    assert (s.pose[:, skeleton.R_WRIST, 2] < s.pose[:, skeleton.R_SHOULDER, 2]).all()
    assert np.isnan(s.pose[:, skeleton.ARTICULATORS["face"]]).all() and np.isnan(s.pose[:, skeleton.R_HIP]).all()
    assert (s.conf()[:, :8].sum(1) == 6).all()  # 6 body points present, hips missing


def test_cli_round_trip_gives_back_the_files(tmp_path, release):
    prefix, _ = release
    runner = CliRunner()
    art = tmp_path / "pt.h5"
    r = runner.invoke(app, ["import-pose", str(prefix.with_suffix(".skels")), "-o", str(art)])
    assert r.exit_code == 0, r.output
    a = slp_cli.load(art)
    assert a.fps == 25 and a.normalized and a.normalization == NORMALIZATION and len(a) == 2
    r = runner.invoke(app, ["export-pose", str(art), "--format", "pt", "-o", str(tmp_path / "out/dev")])
    assert r.exit_code == 0, r.output
    for ext in ("text", "gloss", "files"):
        assert (tmp_path / f"out/dev.{ext}").read_bytes() == prefix.with_suffix(f".{ext}").read_bytes()
    got = [line.split() for line in (tmp_path / "out/dev.skels").read_text().splitlines()]
    want = [line.split() for line in prefix.with_suffix(".skels").read_text().splitlines()]
    for g, w in zip(got, want):
        assert len(g) == len(w)
        nose = np.arange(len(w)) % 151 < 3
        assert [x for x, n in zip(g, nose) if not n] == [x for x, n in zip(w, nose) if not n]
        assert {x for x, n in zip(g, nose) if n} == {"0.00000"}  # mp178 has no nose
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left
    # and once more: the exported files import to the same artifact
    r = runner.invoke(app, ["import-pose", str(tmp_path / "out/dev.skels"), "-o", str(tmp_path / "again.h5")])
    assert r.exit_code == 0, r.output
    for x, y in zip(slp_cli.load(tmp_path / "again.h5"), a):
        np.testing.assert_allclose(x.pose, y.pose, atol=2e-5)


def test_export_brings_slp_poses_into_the_release_frame(tmp_path):
    rng = np.random.default_rng(0)
    pose = rng.normal(200, 30, (5, 178, 3)).astype(np.float32)
    pose[:, skeleton.R_SHOULDER] = [100, 200, 7]
    pose[:, skeleton.L_SHOULDER] = [180, 260, 7]  # x-y width 100, midpoint (140, 230, 7)
    pose[2, 30] = np.nan  # a missing left-hand point
    s = Sample(id="gen-1", pose=pose, text="regen", glosses=["REGEN"], split="test")
    out = write_skels([s], tmp_path / "hyp.skels")
    assert out["samples"] == 1 and out["missing_joints"] == 1
    values = np.array((tmp_path / "hyp.skels").read_text().split(), dtype=np.float64).reshape(5, 151)
    j = values[:, :150].reshape(5, 50, 3) * 3
    np.testing.assert_allclose(values[:, 150], np.arange(5) / 5, atol=1e-4)
    assert (j[:, :2] == 0).all()  # nose and neck at the origin
    np.testing.assert_allclose(j[:, 5], np.tile([-0.4, -0.3, 0], (5, 1)), atol=1e-4)  # right shoulder
    np.testing.assert_allclose(np.linalg.norm((j[:, 2] - j[:, 5])[:, :2], axis=-1), 1, atol=1e-4)
    np.testing.assert_allclose(j[0, 8], (pose[0, 8] - [140, 230, 7]) / 100 * [1, 1, -1], atol=1e-4)
    assert (j[2, 30] == 0).all()  # missing: 0
    assert (tmp_path / "hyp.files").read_text() == "test/gen-1\n"


def test_bad_release_files_get_one_line(tmp_path, release):
    prefix, _ = release
    runner = CliRunner()
    skels = prefix.with_suffix(".skels")
    lines = skels.read_text().splitlines()
    skels.write_text(lines[0] + "\n" + lines[1] + " 0.5\n")
    with pytest.raises(SlpError, match=r"dev.skels:2: 1360 values, not a multiple of 151"):
        list(read_skels(skels))
    skels.write_text(lines[0] + "\n")
    with pytest.raises(SlpError, match=r"dev.text: 2 lines, but dev.skels has 1 sequences"):
        list(read_skels(skels))
    skels.write_text("\n".join(lines) + "\n")
    prefix.with_suffix(".files").unlink()
    r = runner.invoke(app, ["import-pose", str(skels), "-o", str(tmp_path / "x.h5")])
    assert isinstance(r.exception, SlpError) and "dev.files: not found" in str(r.exception)
    assert not (tmp_path / "x.h5").exists()
    prefix.with_suffix(".files").write_text("dev/a\ndev/b\n")
    skels.write_text(lines[0] + "\n" + lines[1][:-30] + "\n")  # the second line cut short
    r = runner.invoke(app, ["import-pose", str(skels), "-o", str(tmp_path / "x.h5")])
    assert isinstance(r.exception, SlpError) and "dev.skels:2" in str(r.exception)
    assert list(tmp_path.glob("x.h5*")) == []  # not even a partial file
    r = runner.invoke(app, ["import-pose", str(skels), str(tmp_path / "a.pose"), "-o", str(tmp_path / "x.h5")])
    assert isinstance(r.exception, SlpError) and "give .skels files alone" in str(r.exception)
