"""Which face of several (faces/choice.py): each rule against its definition, the registry, the config."""

import numpy as np
import pytest

from facenet_tf.errors import FacenetError
from facenet_tf.faces.aligner import AlignConfig
from facenet_tf.faces.choice import DEFAULT_FACE, FACE_CHOICES
from facenet_tf.faces.detection import Face


def _face(x, y, w, h, confidence):
    return Face((x, y, w, h), confidence, np.zeros((5, 2)))


# A 200 (high) x 300 (wide) photo: a small face dead centre, a big one at the left, a sure one at the right.
SMALL_CENTRAL = _face(135, 85, 30, 30, 0.95)
BIG_LEFT = _face(0, 40, 100, 120, 0.97)
SURE_RIGHT = _face(240, 20, 50, 60, 0.999)
FACES = [BIG_LEFT, SURE_RIGHT, SMALL_CENTRAL]


@pytest.mark.parametrize("rule, expected", [("central", SMALL_CENTRAL), ("largest", BIG_LEFT),
                                            ("confident", SURE_RIGHT)])
def test_each_rule_picks_its_face(rule, expected):
    assert FACE_CHOICES.get(rule)((200, 300), FACES) is expected
    assert FACE_CHOICES.get(rule)((200, 300), [expected]) is expected


def test_central_measures_from_the_box_centre_not_its_corner():
    # corner (0, 0) is nearer the top-left, but the box centre (150, 100) is the image centre
    centred = _face(100, 50, 100, 100, 0.9)
    near_corner = _face(110, 70, 10, 10, 0.9)  # centre (115, 75)
    assert FACE_CHOICES.get("central")((200, 300), [near_corner, centred]) is centred


def test_registry_and_config_name_the_choices():
    assert set(FACE_CHOICES.names()) == {"central", "largest", "confident"}
    assert AlignConfig().face == DEFAULT_FACE
    for name in FACE_CHOICES.names():
        assert name in FACE_CHOICES.help()
    with pytest.raises(FacenetError, match="face must be one of .*'middle'"):
        AlignConfig(face="middle").validate()
