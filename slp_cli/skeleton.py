"""Keypoint layouts: the 178-point ``mp178`` layout, its articulator slices, index maps from
MediaPipe Holistic and pose-format's orderings, and the bones and colours used for drawing.

``mp178`` follows the SLRTP 2025 challenge data that A2V-SLP used
(A2V-SLP, section 4.1):

* 0-7    upper body: right shoulder, right elbow, right wrist, left shoulder, left elbow,
         left wrist, right hip, left hip ("right" is the signer's right, as in MediaPipe);
* 8-28   right hand (MediaPipe's 21 hand points);
* 29-49  left hand;
* 50-177 face: 128 of MediaPipe's face-mesh points, the face-contour points in the same
         order as pose-format's ``reduce_holistic``.
"""

from __future__ import annotations

import numpy as np

LAYOUT = "mp178"
NUM_KEYPOINTS = 178

# Articulators by name: the slices the disentangled models and the per-articulator scores use.
ARTICULATORS: dict[str, slice] = {
    "body": slice(0, 8),
    "right_hand": slice(8, 29),
    "left_hand": slice(29, 50),
    "face": slice(50, 178),
}
HANDS = ("right_hand", "left_hand")

BODY_NAMES = [
    "RIGHT_SHOULDER", "RIGHT_ELBOW", "RIGHT_WRIST",
    "LEFT_SHOULDER", "LEFT_ELBOW", "LEFT_WRIST",
    "RIGHT_HIP", "LEFT_HIP",
]
R_SHOULDER, R_ELBOW, R_WRIST, L_SHOULDER, L_ELBOW, L_WRIST, R_HIP, L_HIP = range(8)
RIGHT_WRIST_HAND, LEFT_WRIST_HAND = 8, 29  # the hand models' own wrist points

HAND_NAMES = [
    "WRIST",
    "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP",
    "INDEX_FINGER_MCP", "INDEX_FINGER_PIP", "INDEX_FINGER_DIP", "INDEX_FINGER_TIP",
    "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP",
    "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP",
    "PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP",
]

# MediaPipe Holistic pose-landmark indices of the 8 upper-body points, in mp178 order.
MEDIAPIPE_POSE_TO_BODY = [12, 14, 16, 11, 13, 15, 24, 23]

# MediaPipe face-mesh indices of the 128 face points (FACEMESH_CONTOURS, sorted), in mp178 order.
FACE_MESH_INDICES = [
    0, 7, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78,
    80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146,
    148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 172, 173, 176, 178,
    181, 185, 191, 234, 246, 249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291,
    293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334, 336,
    338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385, 386, 387,
    388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466,
]

HAND_BONES = [
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
    (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19),
    (19, 20),
]
# Face contours (lips, eyes, brows, oval) as pairs of indices into the 128 face points.
FACE_BONES = [
    (0, 8), (0, 70), (1, 7), (1, 57), (2, 36), (2, 98), (3, 26), (3, 88), (4, 28), (4, 90),
    (5, 27), (5, 89), (6, 14), (6, 56), (7, 66), (8, 9), (9, 10), (10, 63), (11, 13), (11, 18),
    (11, 22), (12, 13), (12, 18), (12, 19), (12, 20), (12, 34), (13, 18), (14, 33), (15, 19),
    (15, 35), (16, 38), (16, 58), (17, 43), (17, 63), (18, 22), (18, 34), (19, 20), (19, 35),
    (20, 34), (20, 35), (21, 33), (21, 36), (23, 32), (23, 64), (24, 25), (24, 64), (25, 26),
    (27, 62), (28, 61), (29, 32), (29, 61), (30, 43), (30, 62), (31, 38), (31, 65), (37, 56),
    (37, 65), (39, 50), (39, 59), (40, 46), (40, 58), (41, 42), (41, 57), (42, 48), (44, 47),
    (44, 60), (45, 46), (45, 60), (47, 106), (48, 49), (49, 50), (51, 52), (51, 59), (52, 53),
    (53, 54), (54, 55), (55, 66), (67, 69), (67, 118), (68, 76), (68, 117), (69, 127), (70, 71),
    (71, 72), (72, 124), (73, 75), (73, 80), (73, 84), (74, 75), (74, 80), (74, 81), (74, 82),
    (74, 96), (75, 80), (76, 95), (77, 81), (77, 97), (78, 100), (78, 119), (79, 105), (79, 124),
    (80, 84), (80, 96), (81, 82), (81, 97), (82, 96), (82, 97), (83, 95), (83, 98), (85, 94),
    (85, 125), (86, 87), (86, 125), (87, 88), (89, 123), (90, 122), (91, 94), (91, 122),
    (92, 105), (92, 123), (93, 100), (93, 126), (99, 117), (99, 126), (101, 111), (101, 120),
    (102, 108), (102, 119), (103, 104), (103, 118), (104, 109), (106, 121), (107, 108),
    (107, 121), (109, 110), (110, 111), (112, 113), (112, 120), (113, 114), (114, 115),
    (115, 116), (116, 127),
]
BODY_BONES = [
    (R_SHOULDER, L_SHOULDER), (R_SHOULDER, R_ELBOW), (R_ELBOW, R_WRIST),
    (L_SHOULDER, L_ELBOW), (L_ELBOW, L_WRIST), (R_SHOULDER, R_HIP), (L_SHOULDER, L_HIP),
    (R_HIP, L_HIP),
]


def _offset(bones, start):
    return [(a + start, b + start) for a, b in bones]


# Every bone of mp178, with the articulator it belongs to (for colours when drawing).
BONES: dict[str, list[tuple[int, int]]] = {
    "body": BODY_BONES + [(R_WRIST, RIGHT_WRIST_HAND), (L_WRIST, LEFT_WRIST_HAND)],
    "right_hand": _offset(HAND_BONES, ARTICULATORS["right_hand"].start),
    "left_hand": _offset(HAND_BONES, ARTICULATORS["left_hand"].start),
    "face": _offset(FACE_BONES, ARTICULATORS["face"].start),
}


# Drawing: one colour per articulator (RGB; the signer's right hand blue, left hand orange) and the
# order they are drawn in (hands on top). The one source for `slp render` and the `slp view` page.
COLORS: dict[str, tuple[int, int, int]] = {
    "body": (70, 70, 70),
    "face": (30, 150, 150),
    "right_hand": (20, 100, 200),
    "left_hand": (235, 120, 20),
}
DRAW_ORDER = ("face", "body", "right_hand", "left_hand")


def articulator_of(index: int) -> str:
    for name, sl in ARTICULATORS.items():
        if sl.start <= index < sl.stop:
            return name
    raise IndexError(f"keypoint {index} is outside the {LAYOUT} layout")


def keypoint_names() -> list[str]:
    """Names of the 178 points in order, e.g. ``RIGHT_HAND.INDEX_FINGER_TIP``, ``FACE.61``."""
    return (
        [f"BODY.{n}" for n in BODY_NAMES]
        + [f"RIGHT_HAND.{n}" for n in HAND_NAMES]
        + [f"LEFT_HAND.{n}" for n in HAND_NAMES]
        + [f"FACE.{i}" for i in FACE_MESH_INDICES]
    )


def select(articulators: str | list[str] | None) -> np.ndarray:
    """Keypoint indices of the named articulators (all 178 for None or 'all')."""
    if articulators is None or articulators == "all":
        return np.arange(NUM_KEYPOINTS)
    if isinstance(articulators, str):
        articulators = [articulators]
    unknown = [a for a in articulators if a not in ARTICULATORS]
    if unknown:
        raise ValueError(f"unknown articulator(s) {unknown}; known: {list(ARTICULATORS)}")
    return np.concatenate([np.arange(ARTICULATORS[a].start, ARTICULATORS[a].stop) for a in articulators])


# --- other orderings ---------------------------------------------------------------------------
# pose-format's reduce_holistic: POSE_LANDMARKS (8, alternating left/right), FACE_LANDMARKS (128),
# LEFT_HAND_LANDMARKS (21), RIGHT_HAND_LANDMARKS (21). The spoken-to-signed lexicons use it.
REDUCED_BODY_NAMES = [
    "LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW",
    "LEFT_WRIST", "RIGHT_WRIST", "LEFT_HIP", "RIGHT_HIP",
]
# REDUCED_TO_MP178[i] = index in the reduced ordering of mp178 point i.
REDUCED_TO_MP178 = np.array(
    [REDUCED_BODY_NAMES.index(n) for n in BODY_NAMES]
    + list(range(8 + 128 + 21, 8 + 128 + 42))  # right hand
    + list(range(8 + 128, 8 + 128 + 21))  # left hand
    + list(range(8, 8 + 128)),  # face
    dtype=np.int64,
)


def from_reduced_holistic(points: np.ndarray) -> np.ndarray:
    """Reorder (..., 178, C) arrays in pose-format's reduced order into mp178."""
    return points[..., REDUCED_TO_MP178, :]


def to_reduced_holistic(points: np.ndarray) -> np.ndarray:
    """Reorder (..., 178, C) mp178 arrays into pose-format's reduced order."""
    out = np.empty_like(points)
    out[..., REDUCED_TO_MP178, :] = points
    return out


def from_mediapipe_holistic(
    pose: np.ndarray, face: np.ndarray, left_hand: np.ndarray, right_hand: np.ndarray
) -> np.ndarray:
    """Assemble mp178 from MediaPipe Holistic outputs: pose (..., 33, C), face (..., 468|478, C),
    hands (..., 21, C). Missing parts should already be NaN."""
    return np.concatenate(
        [
            pose[..., MEDIAPIPE_POSE_TO_BODY, :],
            right_hand,
            left_hand,
            face[..., FACE_MESH_INDICES, :],
        ],
        axis=-2,
    )


# Progressive Transformers (and the PHOENIX-2014T skeleton release it trains on): 50 joints, no
# face: 0 nose, 1 neck, 2-4 the signer's LEFT shoulder/elbow/wrist, 5-7 the RIGHT ones, 8-28 the
# right hand (its wrist sits at joint 7), 29-49 the left hand (at joint 4); each hand in the
# 21-point order MediaPipe also uses. Progressive Transformers' own comments name the sides the
# other way round; its bone list (6 -> 8, 3 -> 29) and the release agree with this reading: on
# real PHOENIX-2014T skeletons joint 5 has the smaller image x (a right shoulder of a person
# facing the camera, where MediaPipe's RIGHT_SHOULDER is) and wrist 7, the dominant hand's, is
# raised far more often. The release's z grows towards the camera (the wrists lie in front of the
# shoulders in 94-100 % of its frames); MediaPipe's z grows away from it, so z changes sign.
PT50_NOSE, PT50_NECK = 0, 1
PT50_Z_SIGN = -1.0
# mp178 point -> PT joint, for every mp178 point with a PT counterpart (hips and face have none;
# PT's nose and neck have no mp178 slot).
PT50_TO_MP178 = {
    L_SHOULDER: 2, L_ELBOW: 3, L_WRIST: 4, R_SHOULDER: 5, R_ELBOW: 6, R_WRIST: 7,
    **{ARTICULATORS["right_hand"].start + i: 8 + i for i in range(21)},
    **{ARTICULATORS["left_hand"].start + i: 29 + i for i in range(21)},
}
_MP, _PT = (np.array(x) for x in zip(*sorted(PT50_TO_MP178.items())))
_FLIP_Z = np.array([1.0, 1.0, PT50_Z_SIGN], dtype=np.float32)


def from_pt50(joints: np.ndarray) -> np.ndarray:
    """Map (..., 50, 3) Progressive Transformers joints to (..., 178, 3) mp178 (z negated, see
    above); points PT lacks (hips, face) are NaN, and PT's nose and neck are dropped."""
    out = np.full(joints.shape[:-2] + (NUM_KEYPOINTS, 3), np.nan, dtype=np.float32)
    out[..., _MP, :] = joints[..., _PT, :] * _FLIP_Z
    return out


def to_pt50(points: np.ndarray) -> np.ndarray:
    """Map (..., 178, 3) mp178 points to (..., 50, 3) Progressive Transformers joints. mp178 has
    no nose: it is NaN. The neck is the midpoint of the shoulders (what :mod:`slp_cli.normalize`
    centres on; PT's own neck joint sits a little above it)."""
    out = np.full(points.shape[:-2] + (50, 3), np.nan, dtype=np.float32)
    out[..., _PT, :] = points[..., _MP, :] * _FLIP_Z
    out[..., PT50_NECK, :] = (out[..., 2, :] + out[..., 5, :]) / 2
    return out
