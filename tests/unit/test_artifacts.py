import h5py
import numpy as np
import pytest

import slp_cli
from slp_cli import Sample, SlpError
from slp_cli.artifacts import ArtifactWriter, read_header


def test_round_trip_keeps_everything(tmp_path, samples):
    samples[1].pose[3, 40] = np.nan  # a missing joint survives as NaN
    samples[2].translation = "back translated"
    samples[3].report = {"unknown": ["wort"], "keywords": [["regen", 3]]}
    path = slp_cli.save(samples, tmp_path / "a.h5", fps=25, provenance={"stage": "test"})
    art = slp_cli.load(path)
    assert art.ids == [s.id for s in samples] and art.fps == 25 and art.layout == "mp178"
    for a, b in zip(art, samples):
        np.testing.assert_array_equal(a.pose, b.pose)
        assert (a.text, a.glosses, a.lang, a.signer, a.split, a.translation) == (
            b.text, b.glosses, b.lang, b.signer, b.split, b.translation)
        np.testing.assert_array_equal(a.gloss_spans, b.gloss_spans)
        assert a.report == b.report
    assert np.isnan(art["s1"].pose[3, 40]).all() and art["s1"].confidence[3, 40] == 0
    assert art.provenance["stage"] == "test"
    assert [s.id for s in slp_cli.load(path, split="dev")] == ["s1", "s4"]


def test_frames_are_one_contiguous_dataset(tmp_path, samples):
    path = slp_cli.save(samples, tmp_path / "a.h5", fps=25)
    with h5py.File(path) as f:
        assert f["frames/pose"].shape == (sum(s.num_frames for s in samples), 178, 3)
        assert f.attrs["schema"] == "slp.poses" and f.attrs["version"] == "1.1"
    assert read_header(path)["lengths"].tolist() == [s.num_frames for s in samples]


def test_version_1_0_files_without_reports_still_read_and_resume(tmp_path, samples):
    path = slp_cli.save(samples, tmp_path / "a.h5", fps=25)
    with h5py.File(path, "a") as f:  # what slp 1.0 wrote: no samples/report
        f.attrs["version"] = "1.0"
        del f["samples/report"]
    assert [s.report for s in slp_cli.load(path)] == [{}] * len(samples)
    partial = tmp_path / "b.h5.partial"
    path.rename(partial)
    with ArtifactWriter(tmp_path / "b.h5", fps=25, resume=True) as w:
        w.append(Sample(id="new", pose=samples[0].pose, report={"unknown": ["x"]}))
    art = slp_cli.load(tmp_path / "b.h5")
    assert art.ids[-1] == "new" and art["new"].report == {"unknown": ["x"]} and art[samples[0].id].report == {}


@pytest.mark.parametrize("change, message", [
    (lambda f: f.attrs.__setitem__("schema", "other"), "schema"),
    (lambda f: f.attrs.__setitem__("version", "2.0"), "newer"),
    (lambda f: f.attrs.__setitem__("layout", "openpose"), "unknown layout"),
    (lambda f: f.__delitem__("samples/text"), "missing"),
])
def test_validation_refuses_foreign_files(tmp_path, samples, change, message):
    path = slp_cli.save(samples, tmp_path / "a.h5", fps=25)
    with h5py.File(path, "a") as f:
        change(f)
    with pytest.raises(SlpError, match=message):
        slp_cli.load(path)


def test_not_hdf5_and_missing(tmp_path):
    (tmp_path / "x.h5").write_text("hello")
    with pytest.raises(SlpError, match="not an HDF5"):
        slp_cli.load(tmp_path / "x.h5")
    with pytest.raises(SlpError, match="not found"):
        slp_cli.load(tmp_path / "nope.h5")


@pytest.mark.parametrize("bad, message", [
    (dict(pose=np.full((3, 178, 3), np.inf, np.float32)), "inf"),
    (dict(pose=np.zeros((3, 50, 3), np.float32)), "shape"),
    (dict(pose=np.zeros((0, 178, 3), np.float32)), "no frames"),
    (dict(id=""), "empty id"),
])
def test_bad_samples_are_refused_and_nothing_is_written(tmp_path, samples, bad, message):
    target = slp_cli.save(samples[:2], tmp_path / "a.h5", fps=25)
    before = target.read_bytes()
    sample = Sample(**{**dict(id="bad", pose=np.zeros((3, 178, 3), np.float32)), **bad})
    with pytest.raises(SlpError, match=message):
        slp_cli.save(samples + [sample], target, fps=25)
    assert target.read_bytes() == before  # the previous output is untouched


def test_duplicate_ids_refused(tmp_path, samples):
    with pytest.raises(SlpError, match="duplicate"):
        slp_cli.save(samples + samples[:1], tmp_path / "a.h5", fps=25)


def test_interrupted_writer_resumes(tmp_path, samples):
    target = tmp_path / "a.h5"
    with pytest.raises(RuntimeError):
        with ArtifactWriter(target, fps=25) as w:
            w.extend(samples[:3])
            raise RuntimeError("killed")
    assert not target.exists() and (tmp_path / "a.h5.partial").exists()
    with ArtifactWriter(target, fps=25, resume=True) as w:
        assert w.done_ids == {"s0", "s1", "s2"}
        w.extend([s for s in samples if s.id not in w.done_ids])
    assert slp_cli.load(target).ids == [s.id for s in samples]


def test_skipped_inputs_are_logged(tmp_path, samples):
    path = slp_cli.save(samples, tmp_path / "a.h5", fps=25, skipped=[{"input": "v.mp4", "reason": "no person"}])
    assert slp_cli.load(path).skipped == [{"input": "v.mp4", "reason": "no person"}]


def test_named_arrays_round_trip_with_their_own_lengths(tmp_path, samples):
    for i, s in enumerate(samples):
        s.arrays = {"mu": np.full((s.num_frames, 80), i, np.float32),
                    "tokens": np.arange(s.num_frames // 4 + 1, dtype=np.int64)}
    path = slp_cli.save(samples, tmp_path / "a.h5", fps=25)
    art = slp_cli.load(path)
    for a, b in zip(art, samples):
        assert sorted(a.arrays) == ["mu", "tokens"]
        np.testing.assert_array_equal(a.arrays["mu"], b.arrays["mu"])
        np.testing.assert_array_equal(a.arrays["tokens"], b.arrays["tokens"])
    samples[0].arrays = {"mu": samples[0].arrays["mu"]}
    with pytest.raises(SlpError, match="same named arrays"):
        slp_cli.save(samples, tmp_path / "b.h5", fps=25)
