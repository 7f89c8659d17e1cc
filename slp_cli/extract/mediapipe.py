"""MediaPipe keypoints in the mp178 layout (A2V-SLP, section 4.1: MediaPipe Holistic's upper
body, hands and face as 178 points).

Two backends, both returning per frame an mp178 array (178, 3) and a confidence (178,):

* ``HolisticBackend``: the legacy ``mediapipe.solutions.holistic`` solution with the models
  shipped inside the mediapipe wheel (0.10.21 is the last release that has it). Only
  ``model_complexity=1`` works offline: the lite (0) and heavy (2) pose models are downloaded
  at first use.
* ``TasksBackend``: the Tasks API ``HolisticLandmarker`` (mediapipe 0.10.21 and later) with a
  ``holistic_landmarker.task`` model file the user downloads (no wheel ships one).

Coordinates are pixels: x * width, y * height, and MediaPipe's z * width (MediaPipe scales z
like x; pose-format stores the same). A part that is not detected in a frame (a hand, the
face, the whole person) is NaN with confidence 0, never zeros. Pose points keep MediaPipe's
visibility as confidence; hand and face points get 1 where detected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import skeleton
from ..errors import SlpError

INSTALL_HINT = ("pip install mediapipe==0.10.21 --no-deps absl-py attrs flatbuffers 'protobuf>=4.25.3,<5' "
                "(or: pip install 'slp-cli[extract]' followed by the mediapipe line)")
TASK_MODEL_HINT = ("download holistic_landmarker.task from the MediaPipe Holistic landmarker guide "
                   "(https://ai.google.dev/edge/mediapipe/solutions/vision/holistic_landmarker)")


@dataclass(frozen=True)
class BackendOptions:
    """What selects and configures a backend; picklable, so worker processes build their own."""

    task_model: str | None = None  # a .task file selects the Tasks API backend
    # The legacy Holistic solution's settings (the Tasks backend uses the two confidences only):
    model_complexity: int = 1
    smooth: bool = True
    refine_face: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5

    @property
    def name(self) -> str:
        return "tasks" if self.task_model else "holistic"


def import_mediapipe():
    try:
        import mediapipe
    except ImportError as e:
        raise SlpError(f"mediapipe is not importable ({e}); install it: {INSTALL_HINT}") from None
    return mediapipe


def landmarks_array(landmarks, count: int, width: int, height: int, visibility: bool = False
                    ) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe landmarks -> (count, 3) pixels and (count,) confidence; None -> NaN and 0."""
    if landmarks is None or len(landmarks) == 0:
        return np.full((count, 3), np.nan, np.float32), np.zeros(count, np.float32)
    pts = np.array([(p.x * width, p.y * height, p.z * width) for p in landmarks[:count]], np.float32)
    if len(pts) < count:  # a model with fewer points (face without iris refinement has 468)
        pts = np.concatenate([pts, np.full((count - len(pts), 3), np.nan, np.float32)])
    if visibility:
        conf = np.array([getattr(p, "visibility", 1.0) or 0.0 for p in landmarks[:count]], np.float32)
        conf = np.concatenate([conf, np.zeros(count - len(conf), np.float32)])
    else:
        conf = np.isfinite(pts).all(-1).astype(np.float32)
    return pts, np.clip(conf, 0.0, 1.0)


def to_mp178(pose, face, left_hand, right_hand, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Assemble one frame of mp178 (points, confidence) from the four landmark lists."""
    parts = [landmarks_array(pose, 33, width, height, visibility=True),
             landmarks_array(face, 468, width, height),
             landmarks_array(left_hand, 21, width, height),
             landmarks_array(right_hand, 21, width, height)]
    xyz = skeleton.from_mediapipe_holistic(*(p[0] for p in parts))
    conf = skeleton.from_mediapipe_holistic(*(p[1][:, None] for p in parts))[:, 0]
    return xyz, conf


def check_backend(opts: BackendOptions):
    """Fail early, with one line, when the chosen backend cannot run here; returns mediapipe."""
    mp = import_mediapipe()
    version = getattr(mp, "__version__", "?")
    if opts.task_model:
        if not Path(opts.task_model).is_file():
            raise SlpError(f"--task-model {opts.task_model}: file not found; {TASK_MODEL_HINT}")
        try:
            from mediapipe.tasks.python.vision import HolisticLandmarker  # noqa: F401
        except ImportError as e:
            raise SlpError(f"mediapipe {version} has no Tasks API HolisticLandmarker ({e}); "
                           f"install mediapipe 0.10.21 or later") from None
    elif not hasattr(getattr(mp, "solutions", None), "holistic"):
        raise SlpError(f"mediapipe {version} has no legacy Holistic solution (removed in 0.10.30); install "
                       f"the last release that ships it: {INSTALL_HINT}; or use the Tasks API with "
                       f"--task-model holistic_landmarker.task")
    return mp


class HolisticBackend:
    """The legacy Holistic solution, one graph per worker, reset between videos."""

    def __init__(self, opts: BackendOptions):
        solutions = check_backend(opts).solutions
        try:
            self._h = solutions.holistic.Holistic(
                static_image_mode=False, model_complexity=opts.model_complexity,
                smooth_landmarks=opts.smooth, refine_face_landmarks=opts.refine_face,
                min_detection_confidence=opts.min_detection_confidence,
                min_tracking_confidence=opts.min_tracking_confidence)
        except OSError as e:  # urllib errors: complexity 0/2 download their model at first use
            raise SlpError(f"MediaPipe Holistic with model complexity {opts.model_complexity} needs a pose "
                           f"model that is not in the mediapipe wheel and could not be downloaded ({e}); "
                           f"use --complexity 1 (shipped) or run once with network access") from None
        self._fresh = True

    def start_video(self, fps: float) -> None:
        if not self._fresh:
            self._h.reset()  # tracking state must not carry over from the previous video
        self._fresh = False

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = self._h.process(rgb)
        h, w = rgb.shape[:2]

        def lms(x):
            return None if x is None else x.landmark

        return to_mp178(lms(r.pose_landmarks), lms(r.face_landmarks), lms(r.left_hand_landmarks),
                        lms(r.right_hand_landmarks), w, h)

    def close(self) -> None:
        self._h.close()


class TasksBackend:
    """The Tasks API HolisticLandmarker in video mode with a user-supplied .task model."""

    def __init__(self, opts: BackendOptions):
        path = Path(opts.task_model)
        mp = check_backend(opts)
        from mediapipe.tasks.python import BaseOptions
        from mediapipe.tasks.python.vision import HolisticLandmarker, HolisticLandmarkerOptions, RunningMode

        self._mp = mp
        self._make = lambda: HolisticLandmarker.create_from_options(HolisticLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)), running_mode=RunningMode.VIDEO,
            min_pose_detection_confidence=opts.min_detection_confidence,
            min_pose_landmarks_confidence=opts.min_tracking_confidence,
            min_face_detection_confidence=opts.min_detection_confidence,
            min_hand_landmarks_confidence=opts.min_tracking_confidence))
        try:
            self._task = self._make()
        except (RuntimeError, ValueError) as e:
            raise SlpError(f"--task-model {path}: MediaPipe cannot load it ({e}); {TASK_MODEL_HINT}") from None
        self._step_ms, self._t = 40.0, 0.0

    def start_video(self, fps: float) -> None:
        # Video mode tracks across calls: a new landmarker per video, timestamps from the video's rate.
        self._task.close()
        self._task = self._make()
        self._step_ms, self._t = 1000.0 / fps if fps > 0 else 40.0, 0.0

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        r = self._task.detect_for_video(image, int(self._t))
        self._t += self._step_ms
        h, w = rgb.shape[:2]
        return to_mp178(r.pose_landmarks, r.face_landmarks, r.left_hand_landmarks, r.right_hand_landmarks, w, h)

    def close(self) -> None:
        self._task.close()


def make_backend(opts: BackendOptions):
    return TasksBackend(opts) if opts.task_model else HolisticBackend(opts)
