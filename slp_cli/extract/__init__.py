"""Extraction stages: MediaPipe keypoints from videos (`slp extract`) and SMPL-X fitting
(`slp fit-smplx`). Heavy dependencies (mediapipe, cv2, torch, smplx) load inside the functions.
"""

from .runner import run

__all__ = ["run"]
