"""The one similarity transform (faces/transform.py): exact fits, its degenerate-input rule, the warp."""

import numpy as np
import pytest

from facenet_tf.errors import FacenetError
from facenet_tf.faces.templates import TEMPLATE_112
from facenet_tf.faces.transform import similarity_transform, warp_face


def _apply(matrix, points):
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_similarity_transform_recovers_rotation_scale_shift():
    rng = np.random.default_rng(0)
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    truth = np.hstack([scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]), shift[:, None]])
    source = rng.uniform(0, 100, (5, 2))
    np.testing.assert_allclose(similarity_transform(source, _apply(truth, source)), truth, atol=1e-9)


def test_similarity_transform_is_least_squares_without_reflection():
    source = TEMPLATE_112.copy()
    mirrored = source * [-1, 1]  # a reflection cannot be matched by a similarity transform
    matrix = similarity_transform(source, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0
    noisy = _apply(similarity_transform(source, source + 0.5), source)
    np.testing.assert_allclose(noisy, source + 0.5, atol=1e-9)


def test_warp_face_moves_landmarks_onto_the_template():
    # Bright dots at rotated/scaled/shifted landmark positions in a 200x160 image.
    angle, scale = -0.25, 1.4
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = TEMPLATE_112 @ rot.T + [30.0, 40.0]
    image = np.zeros((200, 160, 3), np.uint8)
    for x, y in landmarks:
        image[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3] = 255
    out = warp_face(image, landmarks, size=112)
    assert out.shape == (112, 112, 3) and out.dtype == np.uint8
    for x, y in TEMPLATE_112:
        assert out[int(round(y)), int(round(x))].min() > 100, (x, y)
    assert out.mean() < 255 * 5 * 25 / 112**2 * 2.5  # only the dots are bright
    half = warp_face(image, landmarks, size=56)
    for x, y in TEMPLATE_112 / 2:
        assert half[int(round(y)), int(round(x))].min() > 60


def test_coincident_source_points_are_an_error():
    with pytest.raises(FacenetError, match="coincide"):
        similarity_transform(np.ones((5, 2)), TEMPLATE_112)


def test_coincident_target_points_give_scale_zero():
    matrix = similarity_transform(TEMPLATE_112, np.full((5, 2), 7.0))
    np.testing.assert_allclose(_apply(matrix, TEMPLATE_112), np.full((5, 2), 7.0), atol=1e-9)


def test_collinear_points_map_without_reflection():
    line = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    reversed_line = line[:, ::-1] * [1, -1] + [5.0, 0.0]  # the line rotated by -90 degrees, shifted
    matrix = similarity_transform(line, reversed_line)
    assert np.linalg.det(matrix[:, :2]) > 0
    np.testing.assert_allclose(_apply(matrix, line), reversed_line, atol=1e-9)


@pytest.mark.parametrize("shapes", [((5, 2), (4, 2)), ((5, 3), (5, 3)), ((1, 2), (1, 2))])
def test_bad_shapes_are_an_error(shapes):
    with pytest.raises(FacenetError, match=r"\[N, 2\]"):
        similarity_transform(np.arange(np.prod(shapes[0]), dtype=float).reshape(shapes[0]),
                             np.arange(np.prod(shapes[1]), dtype=float).reshape(shapes[1]))
