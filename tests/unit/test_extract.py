"""`slp extract`: inputs and ids, sharding, MediaPipe Holistic on a real photograph, bad inputs,
resume after an interruption, shards merged, and the artifact going through the later stages."""

import json
import subprocess
import sys

import numpy as np
import pytest

from slp_cli import skeleton
from slp_cli.artifacts import load
from slp_cli.errors import SlpError
from slp_cli.progress import Recorder
from slp_cli.extract.sources import Source, find_sources, parse_shard, select_shard, shard_of

cv2 = pytest.importorskip("cv2")
SLP = [sys.executable, "-m", "slp_cli"]


def slp(*args):
    return subprocess.run(SLP + [str(a) for a in args], capture_output=True, text=True, timeout=300)


def cli(*args):
    """In-process `slp` (no interpreter start-up); stdout and stderr kept apart."""
    from typer.testing import CliRunner

    from slp_cli.cli.main import app

    return CliRunner().invoke(app, [str(a) for a in args])


def astronaut(variant: int = 0, size: int = 256) -> np.ndarray:
    """scikit-image's photograph of a person (BGR), shifted/mirrored per variant."""
    data = pytest.importorskip("skimage.data")
    img = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (size, size))
    img = np.roll(img, 6 * variant, axis=1)
    return img[:, ::-1].copy() if variant % 2 else img


def write_clip(path, frames: int = 6, variant: int = 0, fps: float = 25.0):
    img = astronaut(variant)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (img.shape[1], img.shape[0]))
    for i in range(frames):
        w.write(np.roll(img, 2 * i, axis=0))  # a little motion
    w.release()
    return path


# --- inputs, ids, shards (no MediaPipe) --------------------------------------------------------

def test_sources_ids_lists_and_problems(tmp_path):
    root = tmp_path / "corpus"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "x.mp4").write_bytes(b"")
    (root / "a" / "b" / "y.MOV").write_bytes(b"")
    (root / "a" / "notes.txt").write_text("ignored inside folders")
    frames = root / "train" / "sent1" / "1"
    frames.mkdir(parents=True)
    for i in (10, 2, 1):
        (frames / f"images{i:1d}.png").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    lst = tmp_path / "list.txt"
    lst.write_text("# a comment\ncorpus/a/x.mp4\n\ncorpus/train/sent1/1\nmissing.mp4\n")
    sources, problems = find_sources([root, tmp_path / "empty", tmp_path / "nope.mp4"])
    assert [(s.id, s.kind) for s in sources] == [("a/b/y", "video"), ("a/x", "video"),
                                                 ("train/sent1/1", "frames")]
    assert [(p.input, p.reason.split()[0]) for p in problems] == [(str(tmp_path / "empty"), "no"),
                                                                   (str(tmp_path / "nope.mp4"), "not")]
    listed, problems = find_sources([lst])
    assert [s.id for s in listed] == ["corpus/a/x", "corpus/train/sent1/1"]
    assert [p.reason for p in problems] == ["not found"]
    from slp_cli.extract.sources import frame_files

    assert [f.name for f in frame_files(frames)] == ["images1.png", "images2.png", "images10.png"]
    # The same id from two roots is refused, naming both files.
    other = tmp_path / "other" / "a"
    other.mkdir(parents=True)
    (other / "x.mp4").write_bytes(b"")
    with pytest.raises(SlpError, match="same sample id 'x'"):
        find_sources([root / "a" / "x.mp4", other / "x.mp4"])


def test_shards_partition_deterministically():
    sources = [Source(f"clip{i:03d}", None, "video") for i in range(200)]
    parts = [select_shard(sources, (k, 4)) for k in range(4)]
    ids = [s.id for part in parts for s in part]
    assert sorted(ids) == [s.id for s in sources]  # every input in exactly one shard
    assert all(20 < len(p) < 80 for p in parts)  # and spread over all of them
    # A source's shard depends on its id only, not on which other inputs exist.
    assert [s.id for s in select_shard(sources[::3], (1, 4))] == [s.id for s in parts[1] if s in sources[::3]]
    assert shard_of("clip007", 4) == shard_of("clip007", 4)
    assert parse_shard("2/5") == (2, 5) and parse_shard(None) is None
    for bad in ("5/5", "1", "a/b", "-1/3"):
        with pytest.raises(SlpError, match="--shard"):
            parse_shard(bad)


class FakeBackend:
    """Stands in for MediaPipe: a person at a fixed place, absent on frames listed in `empty`."""

    def __init__(self, empty=()):
        self.empty, self.calls, self.videos = set(empty), 0, 0

    def start_video(self, fps):
        self.videos += 1

    def __call__(self, rgb):
        xyz = np.full((178, 3), np.nan, np.float32)
        conf = np.zeros(178, np.float32)
        if self.calls not in self.empty:
            xyz[:8] = self.calls  # the frame index, to check the order and resampling
            conf[:8] = 0.9
        self.calls += 1
        return xyz, conf


def test_extract_source_resamples_and_reports(tmp_path):
    from slp_cli.extract.runner import extract_source

    clip = write_clip(tmp_path / "c.mp4", frames=8)
    res = extract_source(Source("c", clip, "video"), FakeBackend(), fps=12.5)
    assert res.frames == 8 and res.sample.num_frames == 4
    assert res.sample.pose[:, 0, 0].tolist() == [0, 2, 4, 6]  # every other frame, at 12.5 of 25 fps
    assert res.sample.arrays["source_fps"].tolist() == [25.0]
    assert res.sample.arrays["frame_size"].tolist() == [[256.0, 256.0]]
    res = extract_source(Source("c", clip, "video"), FakeBackend(empty=range(8)), fps=25)
    assert res.sample is None and res.reason == "no person found in any of its 8 frames"
    (tmp_path / "bad.mp4").write_bytes(b"\x00garbage" * 50)
    res = extract_source(Source("bad", tmp_path / "bad.mp4", "video"), FakeBackend(), fps=25)
    assert res.sample is None and "cannot be opened" in res.reason
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), astronaut())
    (folder / "3.png").write_bytes(b"not a png")  # an unreadable frame keeps its place, missing
    res = extract_source(Source("f", folder, "frames"), FakeBackend(), fps=25, frames_fps=25)
    assert res.sample.num_frames == 4 and np.isnan(res.sample.pose[3]).all()
    assert (res.sample.conf()[3] == 0).all() and res.sample.pose[2, 0, 0] == 2


# --- MediaPipe on a real photograph -------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    pytest.importorskip("mediapipe")
    root = tmp_path_factory.mktemp("videos")
    for i in range(3):
        write_clip(root / f"clip{i}.mp4", frames=5, variant=i)
    frames = root / "session" / "frames"
    frames.mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(frames / f"{i:03d}.png"), astronaut(3))
    (root / "broken.mp4").write_bytes(b"\x00\x01not a video" * 100)
    w = cv2.VideoWriter(str(root / "blank.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (128, 128))
    for _ in range(3):
        w.write(np.full((128, 128, 3), 90, np.uint8))  # nobody in it
    w.release()
    return root


def test_extract_real_photo_bad_inputs_and_later_stages(corpus, tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "poses.h5"
    run = cli("extract", corpus, tmp_path / "empty", "-o", out, "--workers", "1", "--json")
    assert run.exit_code == 0, run.output
    summary = json.loads(run.stdout)
    art = load(out)
    assert sorted(art.ids) == ["clip0", "clip1", "clip2", "session/frames"]
    assert art.layout == "mp178" and art.fps == 25.0 and summary["samples"] == 4
    for s in art:
        assert s.pose.shape == (s.num_frames, 178, 3) and s.num_frames in (4, 5)
        body, face = s.pose[:, skeleton.ARTICULATORS["body"]], s.pose[:, skeleton.ARTICULATORS["face"]]
        shoulders = s.conf()[:, [skeleton.R_SHOULDER, skeleton.L_SHOULDER]]
        assert np.isfinite(body[:, :6]).all() and (shoulders > 0.5).all()  # the upper body is found
        assert np.isfinite(face).all(-1).mean() > 0.9  # and the face, in pixels inside the frame
        assert (face[..., :2][np.isfinite(face[..., :2])] >= 0).all() and np.nanmax(face[..., :2]) <= 256
        # Missing points are NaN with confidence 0 (never zeros); visibility kept for the body.
        missing = ~np.isfinite(s.pose).all(-1)
        assert (s.conf()[missing] == 0).all() and (s.conf()[~missing] > 0).all()
        assert len(np.unique(s.conf()[:, :8])) > 2
        assert s.arrays["source_fps"].tolist() == [25.0]
    assert np.all(np.abs(np.diff(art["clip0"].pose[:, skeleton.R_SHOULDER, 1])) < 20)
    reasons = {entry["input"]: entry["reason"] for entry in art.skipped}
    assert "cannot be opened" in reasons[str(corpus / "broken.mp4")]
    assert "no videos or frame images" in reasons[str(tmp_path / "empty")]
    assert reasons[str(corpus / "blank.mp4")] == "no person found in any of its 3 frames"
    assert len(summary["skipped"]) == 3 and "broken.mp4" in run.stderr

    # The later stages take the artifact as it is.
    assert cli("normalize", out, "-o", tmp_path / "norm.h5").exit_code == 0
    norm = load(tmp_path / "norm.h5")
    assert np.allclose(np.nanmean(np.linalg.norm(norm[0].pose[:, 0] - norm[0].pose[:, 3], axis=-1)), 1, atol=1e-3)
    r = cli("render", out, "--id", "clip1", "-o", tmp_path / "clip1.gif", "--size", "128")
    assert r.exit_code == 0 and (tmp_path / "clip1.gif").stat().st_size > 0, r.output
    r = cli("export-pose", out, "--id", "clip1", "-o", tmp_path / "clip1.pose")
    assert r.exit_code == 0, r.output
    from slp_cli.interop.pose_format import read_pose

    back = read_pose(tmp_path / "clip1.pose")
    assert np.allclose(back.pose, art["clip1"].pose, equal_nan=True)


def test_all_inputs_failing_is_one_error_line(corpus, tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "none.h5"
    run = slp("extract", corpus / "broken.mp4", tmp_path / "empty", "-o", out, "-j", "1")
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "all 1 input(s) failed" in lines[0] and "broken.mp4" in lines[0]
    assert "Traceback" not in run.stderr
    assert not out.exists() and not out.with_name("none.h5.partial").exists()


def test_interrupted_run_resumes_every_video_once_and_shards_merge(corpus, tmp_path):
    from slp_cli.extract import run
    from slp_cli.merge import merge

    out = tmp_path / "poses.h5"
    seen = []

    def interrupt_after_first(label, event, value):
        if event == "update" and "last" in value:
            seen.append(value["last"])
            raise KeyboardInterrupt  # Ctrl-C while the next video is in flight

    with pytest.raises(KeyboardInterrupt):
        run([corpus], out, workers=1, progress=Recorder(interrupt_after_first))
    partial = tmp_path / "poses.h5.partial"
    assert not out.exists() and partial.exists()
    assert load_partial_ids(partial) == seen  # the finished video was kept
    with pytest.raises(SlpError, match="other options"):  # its options must match to resume
        run([corpus], out, workers=1, fps=12.5)
    events = Recorder()
    result = run([corpus], out, workers=1, progress=events)
    art = load(out)
    assert result["resumed"] == 1 and result["extracted"] == 3
    assert sorted(art.ids) == ["clip0", "clip1", "clip2", "session/frames"]  # each exactly once
    assert events.values("update", "last").count(seen[0]) == 0
    assert any(line.startswith("resuming: 1 of") for line in events.values("note")), events.values("note")
    assert not partial.exists()

    # Two shards on two workers each, merged, give the same samples as the single run.
    for k in (0, 1):
        run([corpus], tmp_path / f"shard{k}.h5", workers=2, shard=(k, 2))
    parts = [load(tmp_path / f"shard{k}.h5") for k in (0, 1)]
    assert not set(parts[0].ids) & set(parts[1].ids)
    merge([tmp_path / "shard0.h5", tmp_path / "shard1.h5"], tmp_path / "all.h5")
    merged = load(tmp_path / "all.h5")
    assert sorted(merged.ids) == sorted(art.ids)
    for s in merged:
        assert np.allclose(s.pose, art[s.id].pose, equal_nan=True, atol=1e-3)
    assert sorted(e["input"] for e in merged.skipped) == [str(corpus / "blank.mp4"), str(corpus / "broken.mp4")]


def load_partial_ids(path):
    import h5py

    with h5py.File(path, "r") as f:
        return [x.decode() for x in f["samples/id"][...]]


def test_tasks_backend_needs_a_model_file(tmp_path):
    from slp_cli.extract import run
    from slp_cli.extract.mediapipe import BackendOptions

    pytest.importorskip("mediapipe")
    write_clip(tmp_path / "c.mp4", frames=2)
    with pytest.raises(SlpError, match=r"--task-model .*missing\.task: file not found; download holistic_landmarker"):
        run([tmp_path / "c.mp4"], tmp_path / "o.h5", backend=BackendOptions(task_model=str(tmp_path / "missing.task")))
    assert not (tmp_path / "o.h5.partial").exists()
