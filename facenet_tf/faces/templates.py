"""Where the five landmarks land on an aligned face chip.

Two landmark orders meet here. MTCNN's: left eye centre, right eye centre, nose tip, left
mouth corner, right mouth corner. dlib's 5-point order (``shape_predictor_5_face_landmarks.dat``),
"left/right" as seen in the image: 0 right eye, outer corner; 1 right eye, inner corner;
2 left eye, outer corner; 3 left eye, inner corner; 4 bottom of the nose.
"""

from __future__ import annotations

import numpy as np

#: Landmarks (x, y) in pixels of a 112×112 aligned face, in MTCNN's order: left eye,
#: right eye, nose, left mouth corner, right mouth corner (InsightFace ``arcface_dst``).
TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    np.float64,
)

#: dlib's 5-point template in units of the face box (x, y), before padding; dlib's order.
DLIB_5POINT_TEMPLATE = np.array([
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
], np.float64)

#: MTCNN's five landmarks on dlib's face box (same units as :data:`DLIB_5POINT_TEMPLATE`),
#: measured: the mean position of MTCNN's points in dlib's own chips (HOG detector, image
#: upsampled once, 5-point predictor) of the 388 ORL faces where both found the face. On a
#: 150 chip with padding 0.25: eyes (46.6, 45.5), (101.3, 45.2); nose (73.5, 74.9); mouth
#: (50.1, 101.1), (97.7, 101.1). MTCNN's eye centres sit ~1 px wider and ~1.7 px higher than
#: the midpoints of dlib's eye corners (47.7, 47.1), (100.3, 47.1).
MTCNN_TEMPLATE = np.array([
    [0.21615, 0.20532],
    [0.76342, 0.20217],
    [0.48541, 0.49942],
    [0.25150, 0.76096],
    [0.72720, 0.76083],
], np.float64)


def chip_template(template: np.ndarray = DLIB_5POINT_TEMPLATE, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """Pixel positions of ``template``'s points on a ``size``² chip with ``padding`` (as dlib pads).

    ``padding`` is the margin added on each side, as a fraction of the face box:
    ``point = (padding + t) / (2·padding + 1) · size``.

    Returns:
        float64 ``[5, 2]`` (x, y). With dlib's template and defaults (150, 0.25) the midpoints
        of the eye corners land at (47.7, 47.1) and (100.3, 47.1).
    """
    return (padding + np.asarray(template, np.float64)) / (2 * padding + 1) * size
