"""Skeleton videos: files that open with the right frame count and size, pixels drawn where the
joints are, side by side, missing joints, text fallbacks, artifact rendering and the CLI."""

import warnings

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from slp_cli import Sample, SlpError, save, skeleton
from slp_cli.cli.main import app
from slp_cli.render import (
    COLORS, _font_path, drawable, fit_viewport, pose_box, render, render_artifact, render_frames,
)

SIZE = 128


def signer(frames=12, hand=(-0.35, 0.9), seed=0) -> np.ndarray:
    """A normalized-looking signer (neck at 0, shoulder width 1, y down) whose right hand moves
    a little around ``hand`` and stays inside the body's bounding box."""
    rng = np.random.default_rng(seed)
    p = np.zeros((frames, 178, 3), np.float32)
    body = {skeleton.R_SHOULDER: (-0.5, 0), skeleton.L_SHOULDER: (0.5, 0), skeleton.R_ELBOW: (-0.7, 1),
            skeleton.L_ELBOW: (0.7, 1), skeleton.R_WRIST: (-0.5, 1.5), skeleton.L_WRIST: (0.5, 1.5),
            skeleton.R_HIP: (-0.4, 2.2), skeleton.L_HIP: (0.4, 2.2)}
    for i, xy in body.items():
        p[:, i, :2] = xy
    ang = np.linspace(0, 2 * np.pi, 128, endpoint=False)
    p[:, 50:, 0], p[:, 50:, 1] = 0.25 * np.cos(ang), -0.7 + 0.3 * np.sin(ang)
    fingers = rng.normal(0, 0.06, size=(21, 2))
    drift = np.linspace(0, 0.1, frames)[:, None]
    p[:, 8:29, :2] = np.array(hand) + fingers[None] + drift[:, :, None]
    p[:, 29:50, :2] = np.array([0.5, 1.6]) + fingers[None]
    return p


def non_white(frame):
    return (frame.min(-1) < 200).mean()


def test_viewport_hand_computed():
    v = fit_viewport((np.array([0.0, 0.0]), np.array([2.0, 1.0])), (0, 0, 100, 100), pad=0)
    assert v.scale == 50  # width limits: 100 px / 2 units
    np.testing.assert_allclose(v.project(np.array([[1, 0.5], [0, 0], [2, 1]])), [[50, 50], [0, 25], [100, 75]])
    # an outlier far from the bulk does not stretch the box
    pts = np.zeros((1, 200, 3))
    pts[0, :, 0] = np.linspace(0, 1, 200)
    pts[0, 0, 0] = 1e6
    lo, hi = pose_box([pts])
    assert hi[0] <= 1.0 and lo[0] == pts[0, 1, 0]


def test_mp4_opens_with_frames_size_and_drawing(tmp_path):
    s = Sample(id="s", pose=signer(), text="am mittwoch regen")
    out = render(s, tmp_path / "a.mp4", fps=10, size=SIZE)
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FRAME_WIDTH) == SIZE and cap.get(cv2.CAP_PROP_FRAME_HEIGHT) == SIZE
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    assert len(frames) == 12
    assert all(0.02 < non_white(f) < 0.5 for f in frames)
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]  # the temporary file was renamed


def test_gif_opens_with_frames_and_size(tmp_path):
    out = render(signer(frames=8), tmp_path / "a.gif", fps=25, size=SIZE)
    im = Image.open(out)
    assert im.n_frames == 8 and im.size == (SIZE, SIZE)
    im.seek(5)
    assert non_white(np.asarray(im.convert("RGB"))) > 0.02


def _painted(with_hand, without_hand, color):
    """Pixels that the right hand adds, in its colour (the wrist-to-hand bone is body grey)."""
    a = next(render_frames(with_hand, size=SIZE)).astype(int)
    b = next(render_frames(without_hand, size=SIZE)).astype(int)
    changed = np.abs(a - b).sum(-1) > 60
    return changed & (np.abs(a - np.array(color)).sum(-1) < 90)


@pytest.mark.parametrize("hand, left_half", [((-0.4, 0.3), True), ((0.4, 0.3), False)])
def test_hand_is_drawn_where_it_is(hand, left_half):
    pose = signer(hand=hand)
    no_hand = pose.copy()
    no_hand[:, skeleton.ARTICULATORS["right_hand"]] = np.nan
    blue = _painted(pose, no_hand, COLORS["right_hand"])
    assert blue.sum() > 20
    ys, xs = np.nonzero(blue)
    # the body spans x -0.7..0.7 and y -1..2.2 (face top to hips): the hand at y 0.3 is in the
    # upper half, on the side of its x
    assert (xs.mean() < SIZE / 2) == left_half
    assert ys.mean() < SIZE * 0.6
    assert xs.max() - xs.min() < SIZE * 0.25  # a hand, not a smear across the frame
    # without the hand, that colour is only in the legend at the top
    b = next(render_frames(no_hand, size=SIZE)).astype(int)
    ys, _ = np.nonzero(np.abs(b - np.array(COLORS["right_hand"])).sum(-1) < 90)
    assert len(ys) and ys.max() < SIZE * 0.15


def test_side_by_side_doubles_width_and_holds_the_shorter(tmp_path):
    main, ref = signer(frames=12), signer(frames=7, hand=(0.2, 0.5), seed=1)
    frames = list(render_frames(main, ref, size=SIZE))
    assert len(frames) == 12 and frames[0].shape == (SIZE, 2 * SIZE, 3)
    for t in range(7, 12):  # the reference is over: its panel holds frame 7/7
        np.testing.assert_array_equal(frames[t][:, SIZE:], frames[6][:, SIZE:])
    assert not np.array_equal(frames[11][:, :SIZE], frames[6][:, :SIZE])  # the main one moves on
    out = render(Sample(id="g", pose=main), tmp_path / "sbs.mp4", fps=25, reference=ref, size=SIZE)
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 2 * SIZE and cap.get(cv2.CAP_PROP_FRAME_COUNT) == 12


def test_missing_joints_and_frames_do_not_crash():
    pose = signer(frames=8)
    pose[:, 29:50] = np.nan  # left hand never seen
    pose[3:5] = np.nan  # two frames without any joint
    pose[6, skeleton.R_ELBOW] = np.nan  # bones touching it are skipped
    frames = list(render_frames(pose, size=SIZE))
    assert len(frames) == 8
    drawn = [non_white(f) for f in frames]
    assert drawn[3] < drawn[2] / 3 and drawn[3] > 0  # only the frame counter and legend left
    assert 0 < drawn[2] - drawn[6]  # the elbow's two bones are gone
    all_nan = np.full((3, 178, 3), np.nan, np.float32)
    assert len(list(render_frames(all_nan, size=SIZE))) == 3


def test_different_coordinate_systems_side_by_side():
    pixels = signer() * 200 + 500  # image coordinates next to normalized ones
    frame = next(render_frames(pixels, signer(), size=SIZE))
    assert non_white(frame[:, :SIZE]) > 0.02 and non_white(frame[:, SIZE:]) > 0.02


def test_text_fallbacks():
    ascii_only = frozenset(range(32, 127))
    assert drawable("Grüße", ascii_only) == ("Gru?e", 1)  # ü -> u; ß has no base letter
    text, lost = drawable("今天天气很好", ascii_only)
    assert lost == 6 and "SLP_FONT" in text
    assert drawable("今天", ascii_only, note=False) == ("??", 2)
    path, cmap = _font_path("Grüße in Zürich")  # DejaVu Sans (matplotlib ships it) has them
    assert path is not None and drawable("Grüße in Zürich", cmap) == ("Grüße in Zürich", 0)
    # Chinese text renders whatever fonts the machine has (a note or the characters)
    s = Sample(id="zh", pose=signer(frames=2), text="今天天气很好", glosses=["今天", "天气"],
               gloss_spans=np.array([[0, 1], [1, 2]]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(list(render_frames(s, size=SIZE))) == 2


def test_render_artifact_and_errors(tmp_path):
    samples = [Sample(id=f"s{i}", pose=signer(frames=4 + i, seed=i), text=f"satz {i}", glosses=["A", "B"],
                      gloss_spans=np.array([[0, 2], [2, 4]])) for i in range(3)]
    save(samples, tmp_path / "gen.h5", fps=25)
    save(samples[::-1], tmp_path / "ref.h5", fps=25)
    with pytest.warns(UserWarning, match="rendering the first, 's0'"):
        done = render_artifact(tmp_path / "gen.h5", tmp_path / "one.gif", size=SIZE)
    assert done == [("s0", tmp_path / "one.gif")] and Image.open(done[0][1]).n_frames == 4
    done = render_artifact(tmp_path / "gen.h5", tmp_path / "all", size=SIZE, fmt="gif")
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["s0.gif", "s1.gif", "s2.gif"]
    done = render_artifact(tmp_path / "gen.h5", tmp_path / "s2.gif", ids=["s2"], size=SIZE,
                           reference_path=tmp_path / "ref.h5")
    im = Image.open(done[0][1])
    assert im.size == (2 * SIZE, SIZE) and im.n_frames == 6
    with pytest.raises(SlpError, match="no sample with id 'nope'; ids there include: s0, s1, s2"):
        render_artifact(tmp_path / "gen.h5", tmp_path / "x.mp4", ids=["nope"])
    with pytest.raises(SlpError, match="unsupported video format '.avi'"):
        render_artifact(tmp_path / "gen.h5", tmp_path / "x.avi")
    with pytest.raises(SlpError, match="need an output folder"):
        render_artifact(tmp_path / "gen.h5", tmp_path / "x.mp4", ids=["s0", "s1"])


def test_cli_render(tmp_path):
    save([Sample(id="a", pose=signer(frames=5)), Sample(id="b", pose=signer(frames=6))], tmp_path / "p.h5", fps=25)
    r = CliRunner().invoke(app, ["render", str(tmp_path / "p.h5"), "--id", "b", "--size", str(SIZE),
                                 "--fps", "12.5", "-o", str(tmp_path / "b.mp4")])
    assert r.exit_code == 0, r.output
    cap = cv2.VideoCapture(str(tmp_path / "b.mp4"))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 6 and cap.get(cv2.CAP_PROP_FPS) == 12.5
    r = CliRunner().invoke(app, ["render", str(tmp_path / "p.h5"), "-o", str(tmp_path / "v.webm")])
    assert isinstance(r.exception, SlpError)
