import numpy as np

from slp_cli import skeleton


def test_articulators_tile_the_layout():
    idx = np.concatenate([skeleton.select(a) for a in skeleton.ARTICULATORS])
    assert idx.tolist() == list(range(178))
    assert len(skeleton.keypoint_names()) == 178 and len(set(skeleton.keypoint_names())) == 178
    assert skeleton.articulator_of(8) == "right_hand" and skeleton.articulator_of(50) == "face"


def test_face_indices_are_mediapipe_contours():
    assert len(skeleton.FACE_MESH_INDICES) == 128 == len(set(skeleton.FACE_MESH_INDICES))
    assert max(a for bone in skeleton.FACE_BONES for a in bone) < 128


def test_reduced_holistic_round_trip_and_names():
    reduced = np.arange(178 * 1).reshape(178, 1)
    mp = skeleton.from_reduced_holistic(reduced)
    np.testing.assert_array_equal(skeleton.to_reduced_holistic(mp), reduced)
    # reduced order: 8 pose points (LEFT_SHOULDER first), face 128, left hand, right hand
    assert mp[skeleton.L_SHOULDER, 0] == 0 and mp[skeleton.R_SHOULDER, 0] == 1
    assert mp[skeleton.ARTICULATORS["face"].start, 0] == 8
    assert mp[skeleton.ARTICULATORS["left_hand"].start, 0] == 136
    assert mp[skeleton.ARTICULATORS["right_hand"].start, 0] == 157


def test_mediapipe_holistic_map():
    pose = np.arange(33)[:, None].astype(float)
    face = 1000 + np.arange(478)[:, None].astype(float)
    lh, rh = 2000 + np.arange(21)[:, None], 3000 + np.arange(21)[:, None]
    mp = skeleton.from_mediapipe_holistic(pose, face, lh, rh)
    assert mp.shape == (178, 1)
    assert mp[skeleton.R_SHOULDER, 0] == 12 and mp[skeleton.L_WRIST, 0] == 15 and mp[skeleton.R_HIP, 0] == 24
    assert mp[8, 0] == 3000 and mp[29, 0] == 2000
    assert mp[50 + skeleton.FACE_MESH_INDICES.index(61), 0] == 1061


def test_pt50_map():
    j = np.arange(50 * 3).reshape(1, 50, 3).astype(np.float32)
    mp = skeleton.from_pt50(j)
    # 5-7 and the hand 8-28 are the signer's right, 2-4 and 29-49 the left; z changes sign
    assert mp[0, skeleton.R_SHOULDER].tolist() == [15, 16, -17] and mp[0, skeleton.R_WRIST, 0] == j[0, 7, 0]
    assert mp[0, skeleton.L_SHOULDER, 0] == j[0, 2, 0] and mp[0, skeleton.L_WRIST, 0] == j[0, 4, 0]
    assert mp[0, skeleton.RIGHT_WRIST_HAND, 0] == j[0, 8, 0] and mp[0, skeleton.LEFT_WRIST_HAND, 0] == j[0, 29, 0]
    assert mp[0, skeleton.ARTICULATORS["right_hand"].stop - 1, 0] == j[0, 28, 0]
    assert np.isnan(mp[0, skeleton.R_HIP]).all() and np.isnan(mp[0, 60]).all()
    back = skeleton.to_pt50(mp)
    np.testing.assert_array_equal(back[:, 2:], j[:, 2:])  # everything but the head comes back
    assert np.isnan(back[0, skeleton.PT50_NOSE]).all()  # mp178 has no nose
    np.testing.assert_array_equal(back[0, skeleton.PT50_NECK], (j[0, 2] + j[0, 5]) / 2)
