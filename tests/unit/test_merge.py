"""`slp merge`: samples and skipped logs joined, incompatible inputs and duplicate ids refused."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from slp_cli.artifacts import load, save
from slp_cli.errors import SlpError
from slp_cli.merge import merge
from slp_cli.normalize import dataset_stats, normalize_samples


def part(path, samples, fps=25.0, skipped=(), **kw):
    return save(samples, path, fps=fps, skipped=[{"input": i, "reason": r} for i, r in skipped], **kw)


def test_merge_keeps_samples_order_arrays_and_logs(tmp_path, samples):
    for s in samples:
        s.arrays = {"source_fps": np.array([25.0], np.float32)}
    part(tmp_path / "a.h5", samples[:4], skipped=[("x.mp4", "cannot be opened"), ("empty/", "no videos")])
    part(tmp_path / "b.h5", samples[4:], skipped=[("empty/", "no videos"), ("y.mp4", "no person")])
    result = merge([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "all.h5")
    art = load(tmp_path / "all.h5")
    assert art.ids == [s.id for s in samples] and result["samples"] == 6
    assert result["frames"] == sum(s.num_frames for s in samples)
    for got, want in zip(art, samples):
        assert np.array_equal(got.pose, want.pose) and got.text == want.text and got.split == want.split
        assert np.array_equal(got.gloss_spans, want.gloss_spans) and got.arrays["source_fps"].tolist() == [25.0]
    # The same empty folder reported by both shards is logged once.
    assert [(e["input"], e["reason"]) for e in art.skipped] == [
        ("x.mp4", "cannot be opened"), ("empty/", "no videos"), ("y.mp4", "no person")]
    assert art.provenance["stage"] == "merge" and len(art.provenance["parts"]) == 2


def test_duplicate_ids_refused_or_skipped(tmp_path, samples):
    part(tmp_path / "a.h5", samples[:3])
    changed = [replace(samples[2], pose=samples[2].pose + 1)] + samples[3:]
    part(tmp_path / "b.h5", changed)
    with pytest.raises(SlpError, match=r"b\.h5: sample id 's2' is also in .*a\.h5.*--skip-duplicates"):
        merge([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "all.h5")
    assert not (tmp_path / "all.h5").exists() and not (tmp_path / "all.h5.partial").exists()
    result = merge([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "all.h5", skip_duplicates=True)
    art = load(tmp_path / "all.h5")
    assert art.ids == ["s0", "s1", "s2", "s3", "s4", "s5"] and result["duplicates_skipped"] == 1
    assert np.array_equal(art["s2"].pose, samples[2].pose)  # the first one is kept
    assert art.skipped == [{"input": f"{tmp_path / 'b.h5'}#s2",
                            "reason": f"duplicate id, kept the one in {tmp_path / 'a.h5'}"}]


def test_incompatible_inputs_refused(tmp_path, samples):
    part(tmp_path / "a.h5", samples[:2])
    part(tmp_path / "fps.h5", samples[2:4], fps=12.5)
    part(tmp_path / "norm.h5", samples[2:4], normalized=True, normalization="neck-shoulder/frame")
    with_arrays = [replace(s, arrays={"smplx": np.zeros((s.num_frames, 133), np.float32)}) for s in samples[2:4]]
    part(tmp_path / "arr.h5", with_arrays)
    for name, word in (("fps", "fps"), ("norm", "normalization"), ("arr", "arrays")):
        with pytest.raises(SlpError, match=f"{name}.h5: .*{word}"):
            merge([tmp_path / "a.h5", tmp_path / f"{name}.h5"], tmp_path / "out.h5")
    with pytest.raises(SlpError, match="not found"):
        merge([tmp_path / "a.h5", tmp_path / "missing.h5"], tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_normalized_stats_are_recomputed_over_the_merged_samples(tmp_path, samples):
    norm = normalize_samples(samples)
    kw = dict(normalized=True, normalization="neck-shoulder/frame")
    part(tmp_path / "a.h5", norm[:3], stats=dataset_stats(norm[:3]), **kw)
    part(tmp_path / "b.h5", norm[3:], stats=dataset_stats(norm[3:]), **kw)
    merge([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "all.h5")
    art = load(tmp_path / "all.h5")
    want = dataset_stats(norm)  # train split only, as normalize defines them
    assert np.allclose(art.stats["mean"], want["mean"], atol=1e-5)
    assert np.allclose(art.stats["std"], want["std"], atol=1e-4)
    assert not np.allclose(art.stats["mean"], dataset_stats(norm[:3])["mean"], atol=1e-3)


def test_cli_merge_exit_codes(tmp_path, samples):
    part(tmp_path / "a.h5", samples[:3])
    part(tmp_path / "b.h5", samples[2:])
    cmd = [sys.executable, "-m", "slp_cli", "merge", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"),
           "-o", str(tmp_path / "all.h5")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stderr.startswith("error:") and "s2" in run.stderr
    assert "Traceback" not in run.stderr
    run = subprocess.run(cmd + ["--skip-duplicates", "--json"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["samples"] == 6 and len(load(tmp_path / "all.h5")) == 6
