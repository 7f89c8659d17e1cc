"""The procedural signer of the embedded corpus (docs/design.md, section 6): signs built from
sign-linguistic parameters, co-articulated into sentences and rendered to ``mp178`` poses.

A sign is a set of parameters as sign linguistics describes them: handshape (a few dozen base
shapes, each a flexion per finger joint), palm orientation, location relative to the body,
movement path, one- or two-handedness (symmetric, alternating, or dominant hand acting on a
static base hand) and a small non-manual (mouth/brow) component. ``vocabulary_signs`` derives
the signs of a gloss list so that many of them are minimal pairs (identical but for one
parameter), the way lexicons are organised.

Everything is computed in a body frame in units of an average shoulder width: origin at the
neck (midpoint of the shoulders), x towards the image right (the signer's left), y down, z away
from the camera (so the space in front of the signer has negative z). Each hand is described
"as a right hand": the left hand's state lives in the mirror image (x -> -x) and is reflected
when rendered, so a symmetric two-handed sign is one state used twice and a left-handed signer
is the same sentence with the hands' roles swapped. A frame's state is a vector of
``STATE_DIM`` numbers: per hand (dominant, then weak) the wrist position, the finger direction
``a`` and palm normal ``c`` (unit vectors) and 11 finger parameters, then 3 face parameters.
Rendering puts the arm on the wrist by 2-link inverse kinematics and maps the body frame to the
image of a 512x512 camera with the signer's own position, scale and roll, as MediaPipe
Holistic's output of a video would be (image-like x right, y down, z depth, in pixels).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy.ndimage import gaussian_filter1d

from .. import skeleton

# --- state layout -------------------------------------------------------------------------------
HAND_DIM = 20  # wrist 3, a 3, c 3, fingers 11
DOM, WEAK, FACE = slice(0, 20), slice(20, 40), slice(40, 43)
STATE_DIM = 43
_W, _A, _C, _F = slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 20)

U, D = np.array([0.0, -1, 0]), np.array([0.0, 1, 0])
FWD, BACK = np.array([0.0, 0, -1]), np.array([0.0, 0, 1])  # towards / away from the camera
CONTRA, IPSI = np.array([1.0, 0, 0]), np.array([-1.0, 0, 0])  # for a hand seen "as a right hand"


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# --- hand shapes ----------------------------------------------------------------------------------
# Per shape: thumb (opposition, flexion), index/middle/ring/pinky (MCP flexion, PIP+DIP flexion),
# finger spread; 0 = extended, 1 = fully flexed. Names follow the usual handshape inventories.
_SHAPE_TABLE = {
    "A": (0.1, 0.1, 1, 1, 1, 1, 1, 1, 1, 1, 0.0),
    "S": (0.8, 0.7, 1, 1, 1, 1, 1, 1, 1, 1, 0.0),
    "B": (0.6, 0.3, 0, 0, 0, 0, 0, 0, 0, 0, 0.0),
    "B-bent": (0.5, 0.2, 0.9, 0, 0.9, 0, 0.9, 0, 0.9, 0, 0.0),
    "5": (0.0, 0.0, 0, 0, 0, 0, 0, 0, 0, 0, 1.0),
    "5-claw": (0.2, 0.4, 0.2, 0.8, 0.2, 0.8, 0.2, 0.8, 0.2, 0.8, 1.0),
    "C": (0.5, 0.3, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45, 0.1),
    "O": (0.8, 0.5, 0.55, 0.7, 0.55, 0.7, 0.55, 0.7, 0.55, 0.7, 0.0),
    "O-flat": (0.8, 0.3, 0.8, 0.15, 0.8, 0.15, 0.8, 0.15, 0.8, 0.15, 0.0),
    "1": (0.8, 0.7, 0, 0, 1, 1, 1, 1, 1, 1, 0.0),
    "1-bent": (0.8, 0.7, 0.9, 0, 1, 1, 1, 1, 1, 1, 0.0),
    "L": (0.0, 0.0, 0, 0, 1, 1, 1, 1, 1, 1, 0.0),
    "V": (0.8, 0.7, 0, 0, 0, 0, 1, 1, 1, 1, 0.8),
    "V-bent": (0.8, 0.7, 0.1, 0.9, 0.1, 0.9, 1, 1, 1, 1, 0.8),
    "H": (0.8, 0.7, 0, 0, 0, 0, 1, 1, 1, 1, 0.0),
    "W": (0.8, 0.7, 0, 0, 0, 0, 0, 0, 1, 1, 0.8),
    "3": (0.0, 0.0, 0, 0, 0, 0, 1, 1, 1, 1, 0.8),
    "4": (0.9, 0.6, 0, 0, 0, 0, 0, 0, 0, 0, 0.8),
    "Y": (0.0, 0.0, 1, 1, 1, 1, 1, 1, 0, 0, 0.5),
    "I": (0.8, 0.7, 1, 1, 1, 1, 1, 1, 0, 0, 0.0),
    "F": (0.8, 0.5, 0.55, 0.65, 0, 0, 0, 0, 0, 0, 0.6),
    "O-baby": (0.8, 0.5, 0.55, 0.65, 1, 1, 1, 1, 1, 1, 0.0),
    "X": (0.8, 0.7, 0.1, 0.9, 1, 1, 1, 1, 1, 1, 0.0),
    "E": (0.9, 0.8, 0.4, 1.0, 0.4, 1.0, 0.4, 1.0, 0.4, 1.0, 0.0),
    "horns": (0.0, 0.0, 0, 0, 1, 1, 1, 1, 0, 0, 0.6),
    "8": (0.8, 0.5, 0, 0, 0.6, 0.7, 0, 0, 0, 0, 0.5),
    "5-curved": (0.2, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 1.0),
    "K": (0.3, 0.2, 0, 0, 0.2, 0, 1, 1, 1, 1, 0.6),
}
HANDSHAPES = list(_SHAPE_TABLE)
SHAPES = np.array([_SHAPE_TABLE[n] for n in HANDSHAPES], dtype=np.float64)
RELAXED = np.array((0.3, 0.3, 0.3, 0.3, 0.35, 0.35, 0.4, 0.4, 0.45, 0.45, 0.2))
BASE_SHAPES = [HANDSHAPES.index(n) for n in ("B", "5", "S", "1")]

# --- orientations (finger direction a, palm normal c), for a hand seen as a right hand ----------
ORIENTATIONS = [
    (U, FWD), (U, CONTRA), (U, BACK), (FWD, D), (FWD, CONTRA), (FWD, U),
    (CONTRA, D), (CONTRA, BACK), (CONTRA, FWD), (CONTRA, U),
    (_unit(U + CONTRA), FWD), (_unit(U + CONTRA), BACK),
]

# --- locations (body frame, dominant side = ipsilateral = -x) ----------------------------------
LOCATIONS = {
    "neutral": (-0.15, 0.70, -0.45), "neutral-high": (-0.12, 0.30, -0.50),
    "neutral-low": (-0.12, 0.95, -0.40), "side": (-0.50, 0.55, -0.35),
    "contra": (0.10, 0.65, -0.45), "chest": (-0.05, 0.35, -0.20), "stomach": (-0.05, 0.90, -0.22),
    "chin": (0.0, -0.35, -0.24), "mouth": (0.0, -0.45, -0.26), "nose": (0.0, -0.60, -0.28),
    "forehead": (-0.03, -0.86, -0.24), "cheek": (-0.16, -0.55, -0.20), "temple": (-0.20, -0.80, -0.14),
    "shoulder-contra": (0.40, 0.08, -0.17), "shoulder-ipsi": (-0.42, 0.08, -0.17),
}
LOCATION_NAMES = list(LOCATIONS)
_LOC = np.array([LOCATIONS[n] for n in LOCATION_NAMES])
_HEAD_LOCS = {i for i, n in enumerate(LOCATION_NAMES)
              if n in ("chin", "mouth", "nose", "forehead", "cheek", "temple")}

MOVEMENTS = ["hold", "straight", "arc", "circle", "repeat", "wiggle", "twist", "tap"]
_DIRS = np.array([U, D, FWD, CONTRA, IPSI, _unit(D + CONTRA), _unit(U + FWD), _unit(D + FWD)])
HANDS = ["one", "sym", "alt", "base"]
# Non-manual component: (mouth open, mouth wide (+) / rounded (-), brows raised (+) / furrowed (-)).
FACES = [(0, 0, 0), (0, 0, 0), (0, 0, 0), (0.5, 0, 0), (0.3, 0.5, 0), (0.3, -0.5, 0),
         (0, 0, 0.7), (0, 0, -0.6), (0.4, 0, 0.6), (0.2, 0.4, -0.5)]
# Relative duration of a sign by movement (repeated and circular movements take longer).
MOVE_DURATION = np.array([0.8, 1.0, 1.0, 1.3, 1.3, 1.1, 1.0, 1.1])


@dataclass(frozen=True)
class Sign:
    """The parameters of one sign (indices into the tables above)."""

    shape: int
    shape_end: int  # == shape unless the handshape changes during the sign
    orient: int
    loc: int
    move: int
    direction: int
    hands: int
    base_shape: int
    face: int
    amp: float  # movement size (body units)
    dur: float  # relative duration

    def key(self) -> tuple:
        return (self.shape, self.shape_end, self.orient, self.loc, self.move, self.direction,
                self.hands, self.base_shape if HANDS[self.hands] == "base" else -1, self.face)


def _random_sign(rng: np.random.Generator) -> Sign:
    shape = int(rng.integers(len(HANDSHAPES)))
    return Sign(
        shape=shape,
        shape_end=int(rng.integers(len(HANDSHAPES))) if rng.random() < 0.2 else shape,
        orient=int(rng.integers(len(ORIENTATIONS))), loc=int(rng.integers(len(LOCATION_NAMES))),
        move=int(rng.choice(len(MOVEMENTS), p=[0.14, 0.2, 0.14, 0.12, 0.14, 0.08, 0.08, 0.1])),
        direction=int(rng.integers(len(_DIRS))),
        hands=int(rng.choice(len(HANDS), p=[0.5, 0.2, 0.1, 0.2])),
        base_shape=int(rng.choice(BASE_SHAPES)), face=int(rng.integers(len(FACES))),
        amp=float(rng.uniform(0.15, 0.35)), dur=float(rng.uniform(0.85, 1.15)),
    )


# Parameters a minimal pair may differ in, with how often (handshape and hand path dominate).
_MUTABLE = ["shape", "orient", "loc", "move", "direction", "hands", "face"]
_MUTABLE_P = np.array([0.3, 0.15, 0.2, 0.15, 0.1, 0.06, 0.04])


def _mutate(sign: Sign, rng: np.random.Generator) -> Sign:
    field = _MUTABLE[int(rng.choice(len(_MUTABLE), p=_MUTABLE_P))]
    sizes = {"shape": len(HANDSHAPES), "orient": len(ORIENTATIONS), "loc": len(LOCATION_NAMES),
             "move": len(MOVEMENTS), "direction": len(_DIRS), "hands": len(HANDS), "face": len(FACES)}
    old = getattr(sign, field)
    new = (old + 1 + int(rng.integers(sizes[field] - 1))) % sizes[field]
    changes = {field: new}
    if field == "shape" and sign.shape_end == sign.shape:
        changes["shape_end"] = new
    return Sign(**{**sign.__dict__, **changes})


def vocabulary_signs(glosses: list[str], seed: int, salt: str) -> dict[str, Sign]:
    """Signs for an ordered gloss list. Sign i depends only on signs before it (so a prefix of the
    list always gets the same signs); more than half are a minimal pair of an earlier sign."""
    signs: list[Sign] = []
    seen: set[tuple] = set()
    base = zlib.crc32(salt.encode("utf-8"))
    for i in range(len(glosses)):
        rng = np.random.default_rng([seed, base, i])
        while True:
            if signs and rng.random() < 0.6:
                s = _mutate(signs[int(rng.integers(len(signs)))], rng)
            else:
                s = _random_sign(rng)
            if s.key() not in seen:
                break
        seen.add(s.key())
        signs.append(s)
    return dict(zip(glosses, signs))


def hashed_sign(gloss: str, seed: int) -> Sign:
    """A deterministic sign for a gloss outside the built-in vocabulary (annotations mode)."""
    return _random_sign(np.random.default_rng([seed, zlib.crc32(gloss.encode("utf-8")), 97]))


# --- one sign as a state trajectory ---------------------------------------------------------------
K_SAMPLES = 33  # resolution of a sign's canonical trajectory; instances are resampled from it
_REF_FACE, _REF_BODY = 0.36, 0.2  # distance wrist -> contact point along the fingers


def _smoothstep(s):
    return s * s * (3 - 2 * s)


def _perp(v):
    """A unit vector perpendicular to v."""
    w = np.cross(v, FWD if abs(v[2]) < 0.9 else U)
    return w / np.linalg.norm(w)


def _hand_frames(wrist_loc, a, c, fingers, ref):
    n = len(wrist_loc)
    out = np.empty((n, HAND_DIM))
    out[:, _W] = wrist_loc - ref * a - 0.04 * c
    out[:, _A] = a
    out[:, _C] = c
    out[:, _F] = fingers
    return out


def rest_state(k: int = 1) -> np.ndarray:
    """Both hands hanging at the sides (palm towards the thigh), neutral face."""
    hand = np.concatenate([[-0.50, 1.30, -0.12], D, CONTRA, RELAXED])
    return np.tile(np.concatenate([hand, hand, np.zeros(3)]), (k, 1))


def _weak_idle():
    """Where the weak hand waits during one-handed signs: low in front of the body, relaxed."""
    return np.concatenate([[-0.22, 1.05, -0.32], _unit(FWD + CONTRA), U, RELAXED])


def sign_trajectory(sign: Sign) -> np.ndarray:
    """The canonical (K_SAMPLES, STATE_DIM) state trajectory of a sign (average signer)."""
    s = np.linspace(0.0, 1.0, K_SAMPLES)
    mv = MOVEMENTS[sign.move]
    hands = HANDS[sign.hands]
    a0, c0 = (np.array(v, dtype=np.float64) for v in ORIENTATIONS[sign.orient])
    loc = _LOC[sign.loc].copy()
    direction = _DIRS[sign.direction]
    amp = sign.amp
    if hands == "sym":
        loc[0] = min(loc[0], 0.0) - 0.18  # keep the two hands apart
    if hands == "base":
        loc = np.array([0.10, 0.66, -0.42])  # on the base hand
    ref = _REF_FACE if sign.loc in _HEAD_LOCS and hands != "base" else _REF_BODY

    # movement path of the contact point
    disp = np.zeros((K_SAMPLES, 3))
    e2 = _perp(direction)
    if mv == "straight":
        disp = (_smoothstep(s) - 0.5)[:, None] * amp * direction
    elif mv == "arc":
        disp = ((_smoothstep(s) - 0.5)[:, None] * amp * direction
                + (np.sin(np.pi * s) * amp * 0.35)[:, None] * e2)
    elif mv == "circle":
        ph = 2 * np.pi * s
        disp = 0.5 * amp * (np.cos(ph)[:, None] * e2 + np.sin(ph)[:, None] * np.cross(direction, e2))
    elif mv == "repeat":
        disp = (0.3 * amp * np.sin(2 * np.pi * 2 * s))[:, None] * direction
    elif mv == "tap":
        disp = (0.15 * amp * (1 - np.cos(2 * np.pi * 2 * s)))[:, None] * direction
    elif mv == "hold":
        disp = (0.03 * np.sin(np.pi * s))[:, None] * direction

    # orientation (twist turns the palm about the finger axis)
    a = np.tile(a0, (K_SAMPLES, 1))
    c = np.tile(c0, (K_SAMPLES, 1))
    if mv == "twist":
        ang = 1.0 * (_smoothstep(s) - 0.5)
        b0 = np.cross(a0, c0)
        c = np.cos(ang)[:, None] * c0 + np.sin(ang)[:, None] * b0

    # handshape, possibly changing, with finger wiggle
    f0, f1 = SHAPES[sign.shape], SHAPES[sign.shape_end]
    fingers = f0 + _smoothstep(s)[:, None] * (f1 - f0)
    if mv == "wiggle":
        for k, j in enumerate((2, 4, 6, 8)):
            fingers[:, j] = np.clip(fingers[:, j] + 0.3 * np.sin(2 * np.pi * 3 * s + k * 1.2), 0, 1)

    out = np.zeros((K_SAMPLES, STATE_DIM))
    out[:, DOM] = _hand_frames(loc + disp, a, c, fingers, ref)
    if hands == "one":
        out[:, WEAK] = _weak_idle()
    elif hands == "sym":
        out[:, WEAK] = out[:, DOM]
    elif hands == "alt":
        out[:, WEAK] = _hand_frames(loc - disp, a, c, fingers, ref)
    else:  # base hand: static, palm up or facing the dominant hand
        bo = (FWD, U) if sign.base_shape in BASE_SHAPES[:2] else (FWD, CONTRA)
        base = _hand_frames(np.array([[-0.10, 0.74, -0.42]]), bo[0], bo[1],
                            SHAPES[sign.base_shape], _REF_BODY)
        out[:, WEAK] = base
    fo, fw, fb = FACES[sign.face]
    env = np.sin(np.pi * s) ** 0.5
    out[:, 40] = fo * env * (0.6 + 0.4 * np.abs(np.sin(2 * np.pi * 1.5 * s)))  # mouthing
    out[:, 41] = fw * env
    out[:, 42] = fb * env
    return out


# --- signers ------------------------------------------------------------------------------------

@dataclass
class Signer:
    """Body proportions, camera and habits of one (synthetic) person."""

    name: str
    shoulder: float  # shoulder width (body units, ~1)
    upper_arm: float
    forearm: float
    hand: float  # hand size factor
    torso: float
    head: float
    left_handed: bool
    speed: float  # > 1 signs faster
    jitter: float  # smooth wrist noise (body units)
    center: tuple[float, float]  # neck position in the 512x512 image (pixels)
    scale: float  # pixels per body unit
    roll: float  # camera roll (radians)
    loc_offset: tuple[float, float, float]  # the signer's habitual signing space offset
    amp: float  # habitual movement size factor


def make_signer(name: str, seed: int, left_handed: bool | None = None) -> Signer:
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8")), 13])
    return Signer(
        name=name, shoulder=float(rng.uniform(0.9, 1.1)), upper_arm=float(rng.uniform(0.74, 0.84)),
        forearm=float(rng.uniform(0.64, 0.72)), hand=float(rng.uniform(0.9, 1.1)),
        torso=float(rng.uniform(1.2, 1.4)), head=float(rng.uniform(0.92, 1.08)),
        left_handed=bool(rng.random() < 0.2) if left_handed is None else left_handed,
        speed=float(rng.uniform(0.85, 1.2)), jitter=float(rng.uniform(0.006, 0.016)),
        center=(float(rng.uniform(226, 286)), float(rng.uniform(200, 250))),
        scale=float(rng.uniform(105, 140)), roll=float(rng.uniform(-0.04, 0.04)),
        loc_offset=tuple(float(x) for x in rng.uniform(-0.04, 0.04, 3)),
        amp=float(rng.uniform(0.9, 1.1)),
    )


# --- composing a sentence -------------------------------------------------------------------------

def compose(trajs: list[np.ndarray], durations: list[int], transitions: list[int], rest: tuple[int, int],
            signer: Signer, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Chain sign trajectories into one (T, STATE_DIM) state sequence, starting and ending in the
    rest pose, with ``transitions[i]`` frames before sign i and ``transitions[-1]`` before the
    final rest. Returns the states and the (G, 2) frame spans [start, end) of the signs.

    Each sign is resampled linearly from its canonical trajectory to its duration; transitions
    ease in and out from the end of one sign to the start of the next (no cuts), and a light
    temporal smoothing blends neighbouring signs (co-articulation). Vectorised per sentence.
    """
    g = len(trajs)
    d = np.asarray(durations, dtype=np.int64)
    tr = np.asarray(transitions, dtype=np.int64)
    rest_s = rest_state()[0]
    if g == 0:
        states = np.tile(rest_s, (rest[0] + int(tr.sum()) + rest[1], 1))
        return states, np.zeros((0, 2), dtype=np.int64)
    stack = np.stack(trajs)  # (G, K, D)
    # where and how big this occurrence is made: the signer's habit plus a little variation
    shift = np.asarray(signer.loc_offset) + rng.normal(0, 0.012, (g, 3))
    amp = signer.amp * rng.uniform(0.93, 1.07, g)
    for h in (DOM.start, WEAK.start):
        w = stack[:, :, h:h + 3]
        mid = w.mean(1, keepdims=True)
        stack[:, :, h:h + 3] = mid + shift[:, None] + (w - mid) * amp[:, None, None]
    # sign frames: linear resampling of each trajectory to its duration
    seg = np.repeat(np.arange(g), d)
    local = np.arange(int(d.sum())) - np.repeat(np.cumsum(d) - d, d)
    x = (local + 0.5) * ((K_SAMPLES - 1) / d[seg])
    i0 = np.minimum(x.astype(np.int64), K_SAMPLES - 2)
    wx = (x - i0)[:, None]
    signs = stack[seg, i0] * (1 - wx) + stack[seg, i0 + 1] * wx
    last = np.cumsum(d) - 1
    ends = np.vstack([rest_s, signs[last]])  # where each transition starts
    starts = np.vstack([signs[last - d + 1], rest_s])  # and where it arrives
    tseg = np.repeat(np.arange(g + 1), tr)
    m = np.arange(int(tr.sum())) - np.repeat(np.cumsum(tr) - tr, tr)
    wt = _smoothstep((m + 1) / (tr[tseg] + 1))[:, None]
    moves = ends[tseg] * (1 - wt) + starts[tseg] * wt
    # lay out: rest, (transition, sign)*, transition, rest
    t_total = rest[0] + int(tr.sum()) + int(d.sum()) + rest[1]
    states = np.empty((t_total, STATE_DIM))
    states[:] = rest_s
    sign_start = rest[0] + np.cumsum(tr[:-1]) + np.cumsum(d) - d
    tr_start = np.concatenate([[rest[0]], sign_start + d])
    states[np.repeat(sign_start, d) + local] = signs
    states[np.repeat(tr_start, tr) + m] = moves
    spans = np.stack([sign_start, sign_start + d], axis=1)
    # co-articulation: neighbouring signs blend into each other's start and end
    states = gaussian_filter1d(states, sigma=1.2, axis=0, mode="nearest")
    # smooth jitter of both wrists (slow drift, like a person's unsteadiness)
    noise = gaussian_filter1d(rng.normal(0, 1, (t_total, 6)), sigma=3.0, axis=0, mode="nearest")
    states[:, DOM.start:DOM.start + 3] += noise[:, :3] * (signer.jitter * 2.5)
    states[:, WEAK.start:WEAK.start + 3] += noise[:, 3:] * (signer.jitter * 2.5)
    return states, spans


# --- rendering ------------------------------------------------------------------------------------
# Hand skeleton in the hand's own frame (a = along the fingers, b = towards the thumb,
# c = palm normal), for an average hand (body units).
_MCP = np.array([[0.21, 0.055, 0.0], [0.215, 0.015, 0.0], [0.205, -0.022, 0.0], [0.185, -0.055, 0.0]])
_SEG = np.array([[0.095, 0.055, 0.045], [0.105, 0.062, 0.048], [0.098, 0.058, 0.045], [0.078, 0.045, 0.04]])
_SPREAD0 = np.array([0.05, 0.0, -0.04, -0.09])
_SPREAD1 = np.array([0.2, 0.05, -0.1, -0.22])
_THUMB_CMC = np.array([0.045, 0.045, 0.02])
_THUMB_SEG = np.array([0.075, 0.058, 0.048])
_THUMB_BEND = np.array([0.0, 0.7, 1.4])
_ELBOW_POLE = np.array([-0.45, 1.0, 0.35])  # elbows point down, out and slightly back
_A_FALLBACK = _unit(FWD + 0.3 * D)  # blending opposite finger directions passes through "forward"


@njit(cache=True)
def _normalize3(v):
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    n = max(n, 1e-9)
    v[0] /= n
    v[1] /= n
    v[2] /= n
    return n


@njit(cache=True)
def _hand_axes(st, a, b, c, f):
    """Unit finger direction a, palm normal c (made perpendicular to a) and b = a x c, with a
    continuous fallback where a transition blends opposite directions (vectors near zero)."""
    na = math.sqrt(st[3] ** 2 + st[4] ** 2 + st[5] ** 2)
    w = min(max((0.35 - na) / 0.35, 0.0), 1.0)
    for k in range(3):
        a[k] = st[3 + k] + w * _A_FALLBACK[k]
    _normalize3(a)
    d = st[6] * a[0] + st[7] * a[1] + st[8] * a[2]
    for k in range(3):
        c[k] = st[6 + k] - d * a[k]
    for fb in range(2):  # palm down, then palm away, as fallbacks for c
        f[0], f[1], f[2] = 0.0, 0.0, 0.0
        f[1 + fb] = 1.0
        df = f[0] * a[0] + f[1] * a[1] + f[2] * a[2]
        for k in range(3):
            f[k] -= df * a[k]
        _normalize3(f)
        nc = math.sqrt(c[0] ** 2 + c[1] ** 2 + c[2] ** 2)
        w = min(max((0.3 - nc) / 0.3, 0.0), 1.0)
        for k in range(3):
            c[k] += w * f[k]
    _normalize3(c)
    b[0] = a[1] * c[2] - a[2] * c[1]
    b[1] = a[2] * c[0] - a[0] * c[2]
    b[2] = a[0] * c[1] - a[1] * c[0]


@njit(cache=True)
def _arm_and_hand(st, sh, l1, l2, reach, neck, hand_scale, elbow, wrist, hand, ws, f):
    """2-link IK of one arm "as a right arm" (elbow hanging down and out, the wrist target
    clamped to the arm's reach) and forward kinematics of its hand: 21 MediaPipe hand points.
    ``ws`` (29, 3) and ``f`` (11,) are scratch space (no allocation per frame)."""
    v, pv, a, b, c, d0, e, fb = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5], ws[6], ws[7]
    local = ws[8:29]
    for k in range(3):
        v[k] = st[k] * reach + neck[k] - sh[k]
    d = _normalize3(v)
    dc = min(max(d, abs(l1 - l2) + 1e-3), (l1 + l2) * 0.999)
    along = (l1 * l1 - l2 * l2 + dc * dc) / (2 * dc)
    h = math.sqrt(max(l1 * l1 - along * along, 0.0))
    pd = _ELBOW_POLE[0] * v[0] + _ELBOW_POLE[1] * v[1] + _ELBOW_POLE[2] * v[2]
    for k in range(3):
        pv[k] = _ELBOW_POLE[k] - pd * v[k]
    _normalize3(pv)
    for k in range(3):
        wrist[k] = sh[k] + v[k] * dc
        elbow[k] = sh[k] + along * v[k] + h * pv[k]
    _hand_axes(st, a, b, c, fb)
    for k in range(11):
        f[k] = min(max(st[9 + k], 0.0), 1.0)
    local[0, 0], local[0, 1], local[0, 2] = 0.0, 0.0, 0.0
    # fingers: MCP flexion, then PIP and DIP, curling towards the palm (+c)
    for fi in range(4):
        sig = _SPREAD0[fi] + f[10] * _SPREAD1[fi]
        cs, ss = math.cos(sig), math.sin(sig)
        mcp, pip = f[2 + 2 * fi], f[3 + 2 * fi]
        px, py, pz = _MCP[fi, 0], _MCP[fi, 1], _MCP[fi, 2]
        j0 = 5 + 4 * fi
        local[j0, 0], local[j0, 1], local[j0, 2] = px, py, pz
        for j in range(3):
            phi = mcp * 1.5 + (pip * 1.75 if j == 1 else 0.0) + (pip * 2.95 if j == 2 else 0.0)
            cp = math.cos(phi)
            px += _SEG[fi, j] * cp * cs
            py += _SEG[fi, j] * cp * ss
            pz += _SEG[fi, j] * math.sin(phi)
            local[j0 + 1 + j, 0], local[j0 + 1 + j, 1], local[j0 + 1 + j, 2] = px, py, pz
    # thumb: opposition swings it from beside the palm to in front of it; flexion curls it in
    opp, flex = f[0], f[1]
    d0[0] = (1 - opp) * 0.55 + opp * 0.5
    d0[1] = (1 - opp) * 0.83 - opp * 0.1
    d0[2] = opp * 0.86
    _normalize3(d0)
    de = -0.7071 * d0[1] + 0.7071 * d0[2]
    e[0], e[1], e[2] = -de * d0[0], -0.7071 - de * d0[1], 0.7071 - de * d0[2]
    _normalize3(e)
    px, py, pz = _THUMB_CMC[0], _THUMB_CMC[1], _THUMB_CMC[2]
    local[1, 0], local[1, 1], local[1, 2] = px, py, pz
    for j in range(3):
        ang = flex * _THUMB_BEND[j]
        ca, sa = math.cos(ang), math.sin(ang)
        px += _THUMB_SEG[j] * (ca * d0[0] + sa * e[0])
        py += _THUMB_SEG[j] * (ca * d0[1] + sa * e[1])
        pz += _THUMB_SEG[j] * (ca * d0[2] + sa * e[2])
        local[2 + j, 0], local[2 + j, 1], local[2 + j, 2] = px, py, pz
    for j in range(21):
        for k in range(3):
            hand[j, k] = wrist[k] + hand_scale * (local[j, 0] * a[k] + local[j, 1] * b[k] + local[j, 2] * c[k])


@njit(cache=True)
def _render_kernel(states, left_handed, shoulder, upper_arm, forearm, hand_size, torso, head, center, scale,
                   roll, sway, head_turn, face_basis, out):
    n = states.shape[0]
    body = np.zeros((50, 3))
    elbow, wrist, hand = np.empty(3), np.empty(3), np.empty((21, 3))
    sh, nk = np.empty(3), np.empty(3)
    face = np.empty((128, 3))
    ws, f = np.empty((29, 3)), np.empty(11)
    for i in range(n):
        neck0, neck1, neck2 = sway[i, 0], sway[i, 1] * 0.3, sway[i, 2] * 0.5
        half = shoulder[i] / 2
        body[0, 0], body[0, 1], body[0, 2] = neck0 - half, neck1, neck2  # right shoulder
        body[3, 0], body[3, 1], body[3, 2] = neck0 + half, neck1, neck2  # left shoulder
        body[6, 0], body[6, 1], body[6, 2] = -0.36 * shoulder[i], torso[i], 0.03  # right hip
        body[7, 0], body[7, 1], body[7, 2] = 0.36 * shoulder[i], torso[i], 0.03
        # the states' wrists are for an average body: scale them to this signer's reach
        reach = (upper_arm[i] + forearm[i]) / 1.46
        for side in range(2):  # 0: physical right arm, 1: left arm (computed mirrored, as a right arm)
            dom = (side == 0) != left_handed[i]  # left-handed signers swap the hands' roles
            st = states[i, 0:20] if dom else states[i, 20:40]
            m = -1.0 if side == 1 else 1.0
            sh[0], sh[1], sh[2] = m * (neck0 + (half if side == 1 else -half)), neck1, neck2
            nk[0], nk[1], nk[2] = m * neck0, neck1, neck2
            _arm_and_hand(st, sh, upper_arm[i], forearm[i], reach, nk, hand_size[i], elbow, wrist, hand, ws, f)
            e_i, w_i, h0 = (1, 2, 8) if side == 0 else (4, 5, 29)
            for k in range(3):
                mk = m if k == 0 else 1.0
                body[e_i, k] = mk * elbow[k]
                body[w_i, k] = mk * wrist[k]
                for j in range(21):
                    body[h0 + j, k] = mk * hand[j, k]
        # face: template deformed by the non-manual component, turned with the head
        c1, c2, c3 = states[i, 40], states[i, 41], states[i, 42]
        cy, sy = math.cos(head_turn[i, 0]), math.sin(head_turn[i, 0])
        cp, spi = math.cos(head_turn[i, 1]), math.sin(head_turn[i, 1])
        hx, hy, hz = neck0, neck1 - 0.64 * head[i], neck2 - 0.1
        for j in range(128):
            q0 = head[i] * (face_basis[0, 3 * j] + c1 * face_basis[1, 3 * j]
                            + c2 * face_basis[2, 3 * j] + c3 * face_basis[3, 3 * j])
            q1 = head[i] * (face_basis[0, 3 * j + 1] + c1 * face_basis[1, 3 * j + 1]
                            + c2 * face_basis[2, 3 * j + 1] + c3 * face_basis[3, 3 * j + 1])
            q2 = head[i] * (face_basis[0, 3 * j + 2] + c1 * face_basis[1, 3 * j + 2]
                            + c2 * face_basis[2, 3 * j + 2] + c3 * face_basis[3, 3 * j + 2])
            x = cy * q0 + sy * q2  # yaw
            z = -sy * q0 + cy * q2
            y = cp * q1 - spi * z  # pitch
            z = spi * q1 + cp * z
            face[j, 0], face[j, 1], face[j, 2] = x + hx, y + hy, z + hz
        # camera: roll, scale and position in the image (x right, y down, z depth; pixels)
        cr, sr = math.cos(roll[i]) * scale[i], math.sin(roll[i]) * scale[i]
        for j in range(178):
            if j < 50:
                x, y, z = body[j, 0], body[j, 1], body[j, 2]
            else:
                x, y, z = face[j - 50, 0], face[j - 50, 1], face[j - 50, 2]
            out[i, j, 0] = center[i, 0] + cr * x - sr * y
            out[i, j, 1] = center[i, 1] + sr * x + cr * y
            out[i, j, 2] = scale[i] * z


# Face template, built from which MediaPipe face-mesh contour each point belongs to
# (FACEMESH_FACE_OVAL / LIPS / LEFT_EYE / RIGHT_EYE / LEFT_EYEBROW / RIGHT_EYEBROW of MediaPipe's
# face_mesh_connections.py, each contour as an ordered polyline). "Right" is the subject's right
# (image left). Units: body units, centre between eyes and mouth.
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
LIPS_OUTER_LOWER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
LIPS_OUTER_UPPER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LIPS_INNER_LOWER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
LIPS_INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
RIGHT_EYE_LOWER = [33, 7, 163, 144, 145, 153, 154, 155, 133]  # outer corner -> inner corner
RIGHT_EYE_UPPER = [33, 246, 161, 160, 159, 158, 157, 173, 133]
LEFT_EYE_LOWER = [263, 249, 390, 373, 374, 380, 381, 382, 362]
LEFT_EYE_UPPER = [263, 466, 388, 387, 386, 385, 384, 398, 362]
RIGHT_BROW_LOWER, RIGHT_BROW_UPPER = [46, 53, 52, 65, 55], [70, 63, 105, 66, 107]  # outer -> inner
LEFT_BROW_LOWER, LEFT_BROW_UPPER = [276, 283, 282, 295, 285], [300, 293, 334, 296, 336]


def _face_template() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(128, 3) neutral face in mp178 face order, and the displacement per unit of mouth opening,
    mouth widening and brow raising."""
    pos: dict[int, tuple] = {}
    mouth_open: dict[int, tuple] = {}
    wide: dict[int, tuple] = {}
    brow: dict[int, tuple] = {}
    for k, idx in enumerate(FACE_OVAL):
        th = 2 * np.pi * k / len(FACE_OVAL)
        narrow = 1.0 - 0.22 * max(0.0, -np.cos(th)) ** 2  # narrower jaw than temples
        y = -0.30 * np.cos(th) + 0.02
        pos[idx] = (0.2 * np.sin(th) * narrow, y, 0.09 * abs(np.sin(th)))
        if np.cos(th) < -0.3:  # the jaw drops with the mouth
            mouth_open[idx] = (0, 0.035 * (-np.cos(th) - 0.3) / 0.7, 0)
    for lower, upper, hw, up, lo, z in ((LIPS_OUTER_LOWER, LIPS_OUTER_UPPER, 0.062, 0.022, 0.026, -0.035),
                                        (LIPS_INNER_LOWER, LIPS_INNER_UPPER, 0.048, 0.004, 0.004, -0.03)):
        for row, sgn, amp in ((lower, 1, lo), (upper, -1, up)):
            for k, idx in enumerate(row):
                t = k / (len(row) - 1)
                x = hw * (2 * t - 1)
                bump = np.sin(np.pi * t)
                pos[idx] = (x, 0.16 + sgn * amp * bump, z - 0.008 * bump)
                mouth_open[idx] = (0, 0.05 * bump if sgn > 0 else -0.004 * bump, 0)
                wide[idx] = (0.25 * x, 0, 0.01 * bump)
    for lower, upper, cx, outer_sign in ((RIGHT_EYE_LOWER, RIGHT_EYE_UPPER, -0.075, -1),
                                         (LEFT_EYE_LOWER, LEFT_EYE_UPPER, 0.075, 1)):
        for row, sgn, amp in ((lower, 1, 0.011), (upper, -1, 0.015)):
            for k, idx in enumerate(row):
                t = k / (len(row) - 1)
                pos[idx] = (cx + outer_sign * 0.033 * (1 - 2 * t), -0.04 + sgn * amp * np.sin(np.pi * t),
                            -0.02)
                if sgn < 0:
                    brow[idx] = (0, -0.004, 0)
    for lower, upper, cx, outer_sign in ((RIGHT_BROW_LOWER, RIGHT_BROW_UPPER, -0.08, -1),
                                         (LEFT_BROW_LOWER, LEFT_BROW_UPPER, 0.08, 1)):
        for row, dy in ((lower, 0.0), (upper, -0.012)):
            for k, idx in enumerate(row):
                t = k / (len(row) - 1)
                pos[idx] = (cx + outer_sign * 0.05 * (1 - 2 * t), -0.1 + dy - 0.014 * np.sin(np.pi * (0.3 + 0.7 * t)),
                            -0.025)
                brow[idx] = (0, -0.025, 0)
    order = skeleton.FACE_MESH_INDICES
    get = lambda d: np.array([d.get(i, (0.0, 0.0, 0.0)) for i in order], dtype=np.float64)  # noqa: E731
    return get(pos), get(mouth_open), get(wide), get(brow)


FACE_TEMPLATE, FACE_OPEN, FACE_WIDE, FACE_BROW = _face_template()
_FACE_BASIS = np.ascontiguousarray(np.stack([FACE_TEMPLATE, FACE_OPEN, FACE_WIDE, FACE_BROW]).reshape(4, -1))


@dataclass
class RenderParams:
    """Per-frame signer arrays (N frames) for batched rendering."""

    shoulder: np.ndarray
    upper_arm: np.ndarray
    forearm: np.ndarray
    hand: np.ndarray
    torso: np.ndarray
    head: np.ndarray
    left_handed: np.ndarray  # bool
    center: np.ndarray  # (N, 2)
    scale: np.ndarray
    roll: np.ndarray
    sway: np.ndarray  # (N, 3) body sway
    head_turn: np.ndarray  # (N, 2) yaw, pitch (radians)

    @classmethod
    def for_sentence(cls, signer: Signer, n: int, rng: np.random.Generator) -> "RenderParams":
        full = lambda v: np.full(n, v, dtype=np.float64)  # noqa: E731
        sway = gaussian_filter1d(rng.normal(0, 1, (n, 3)), sigma=6.0, axis=0, mode="nearest") * 0.05
        turn = gaussian_filter1d(rng.normal(0, 1, (n, 2)), sigma=5.0, axis=0, mode="nearest") * 0.1
        return cls(full(signer.shoulder), full(signer.upper_arm), full(signer.forearm), full(signer.hand),
                   full(signer.torso), full(signer.head), np.full(n, signer.left_handed),
                   np.tile(np.asarray(signer.center, dtype=np.float64), (n, 1)), full(signer.scale),
                   full(signer.roll), sway, turn)

    @classmethod
    def concat(cls, items: list["RenderParams"]) -> "RenderParams":
        return cls(*(np.concatenate([getattr(x, f) for x in items]) for f in cls.__dataclass_fields__))


def render(states: np.ndarray, p: RenderParams) -> np.ndarray:
    """(N, STATE_DIM) states -> (N, 178, 3) float32 mp178 poses in image coordinates (pixels):
    arms by 2-link IK onto the wrists, hands by forward kinematics of the finger parameters,
    the face template with its non-manual deformation, then the signer's camera."""
    out = np.empty((len(states), skeleton.NUM_KEYPOINTS, 3), dtype=np.float32)
    f64 = lambda x: np.ascontiguousarray(x, dtype=np.float64)  # noqa: E731
    _render_kernel(f64(states), np.ascontiguousarray(p.left_handed, dtype=np.bool_), f64(p.shoulder),
                   f64(p.upper_arm), f64(p.forearm), f64(p.hand), f64(p.torso), f64(p.head), f64(p.center),
                   f64(p.scale), f64(p.roll), f64(p.sway), f64(p.head_turn), _FACE_BASIS, out)
    return out


# Detector noise per articulator (pixels): MediaPipe's frame-to-frame jitter.
_NOISE_PX = np.concatenate([np.full(8, 0.6), np.full(42, 0.8), np.full(128, 0.3)])


_NOISE_PX32 = _NOISE_PX.astype(np.float32)[None, :, None]
_BANK: list[np.ndarray] = []


def add_detector_noise(pose: np.ndarray, rng: np.random.Generator) -> None:
    """White noise per joint and frame, read at a random offset from a fixed bank of normal
    samples (drawing 534 fresh normals per frame would dominate the benchmark preset's time)."""
    if not _BANK:
        _BANK.append(np.random.default_rng(20251123).standard_normal(1 << 22, dtype=np.float32))
    n = pose.size
    if n > len(_BANK[0]):
        pose += rng.standard_normal(pose.shape, dtype=np.float32) * _NOISE_PX32
        return
    off = int(rng.integers(len(_BANK[0]) - n + 1))
    pose += _BANK[0][off:off + n].reshape(pose.shape) * _NOISE_PX32


def drop_hands(pose: np.ndarray, conf: np.ndarray, rng: np.random.Generator, rate: float = 1 / 90) -> None:
    """Short hand-detection dropouts: a hand's 21 points NaN (confidence 0) for 2-6 frames."""
    t = len(pose)
    for sl in (skeleton.ARTICULATORS["right_hand"], skeleton.ARTICULATORS["left_hand"]):
        for _ in range(rng.poisson(rate * t)):
            start = int(rng.integers(t))
            stop = min(t, start + int(rng.integers(2, 7)))
            pose[start:stop, sl] = np.nan
            conf[start:stop, sl] = 0.0
