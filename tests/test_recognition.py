"""``facenet_tf.recognition``: every face of a photo, no face no answer (issue 30), through the
library's :class:`FaceRecognizer` and the ``detect`` / ``identify`` / ``verify`` / ``enroll`` commands.

Composites paste 2–4 ORL people (92x112 crops) on a grey canvas with gaps; the imported dlib
network (shared session fixture ``dlib_dir``) names them against a gallery of their first images.
"""

import json
import os

import numpy as np
import pytest

from facenet_tf.cli import main

from composites import compose  # tests/ is on sys.path

ENROLLED = ["s31", "s32", "s36", "s38"]
#: Composites: (person, image) per face, left to right (images dlib's HOG detector finds).
COMPOSITES = [[("s31", 3), ("s32", 3)], [("s36", 5), ("s38", 5), ("s31", 7)],
              [("s32", 9), ("s36", 9), ("s38", 9), ("s31", 9)]]
def faceless_images():
    """name → uint8 image without a face."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:112, 0:92]
    shapes = np.full((112, 92, 3), 200, np.uint8)
    shapes[20:60, 10:50] = (200, 30, 30)
    shapes[((yy - 75) ** 2 + (xx - 60) ** 2) < 400] = (20, 20, 160)
    return {"black": np.zeros((112, 92, 3), np.uint8), "white": np.full((112, 92, 3), 255, np.uint8),
            "noise": rng.integers(0, 256, (112, 92, 3), dtype=np.uint8),
            "gradient": np.repeat((xx * 255 // 91).astype(np.uint8)[..., None], 3, axis=-1),
            "shapes": shapes, "background": np.full((250, 300, 3), 128, np.uint8)}


def save(path, pixels):
    from PIL import Image

    Image.fromarray(pixels).save(path)
    return str(path)


def centre_inside(box, rect):
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return rect[0] <= cx <= rect[2] and rect[1] <= cy <= rect[3]


@pytest.fixture(scope="module")
def photos(orl_dir, tmp_path_factory):
    """``(folder, {file: [(person, pasted box)]})``: the composites and faceless images as files."""
    root = tmp_path_factory.mktemp("photos")
    truth = {}
    for n, faces in enumerate(COMPOSITES):
        canvas, boxes = compose(orl_dir, faces)
        truth[save(root / f"group{n}.png", canvas)] = [(person, box) for (person, _), box in zip(faces, boxes)]
    for name, pixels in faceless_images().items():
        truth[save(root / f"{name}.png", pixels)] = []
    return root, truth


@pytest.fixture(scope="module")
def gallery(dlib_dir, orl_dir, tmp_path_factory):
    """A gallery of the first image of each ENROLLED person."""
    root = tmp_path_factory.mktemp("enrol")
    for person in ENROLLED:
        os.makedirs(root / "people" / person)
        os.symlink(os.path.join(orl_dir, person, "1.pgm"), root / "people" / person / "1.pgm")
    path = str(root / "people.gallery")
    assert main(["enroll", "--model", dlib_dir, "--gallery", path, "--from-dir", str(root / "people"), "--quiet"]) == 0
    return path


@pytest.fixture(scope="module")
def recognizer(dlib_dir):
    from facenet_tf.recognition import FaceRecognizer

    return FaceRecognizer.load(dlib_dir)


def test_identify_json_names_every_face_and_nothing_else(dlib_dir, gallery, photos, capsys):
    """Issue 30's acceptance: every face found, boxed and named; faceless images and the
    background between faces get no face and no name."""
    root, truth = photos
    capsys.readouterr()
    assert main(["identify", "--model", dlib_dir, "--gallery", gallery, "--json", *truth]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"]
    assert [r["image"] for r in results] == list(truth)
    for r in results:
        expected = truth[r["image"]]
        assert len(r["faces"]) == len(expected), (r["image"], r["faces"])
        if not expected:
            assert r["name"] is None and r["distance"] is None and r["nearest"] is None
            continue
        for person, rect in expected:
            [face] = [f for f in r["faces"] if centre_inside(f["box"], rect)]
            assert face["name"] == person and face["nearest"] == person and face["distance"] <= 0.6
            assert set(face) == {"box", "name", "distance", "nearest"}
        chosen = [f for f in r["faces"] if f["name"] == r["name"] and f["distance"] == r["distance"]]
        assert len(chosen) == 1  # the per-image fields are one face's (the --face rule's)


def test_identify_text_lists_each_face_with_its_box(dlib_dir, gallery, photos, capsys):
    root, truth = photos
    group, black = str(root / "group1.png"), str(root / "black.png")
    capsys.readouterr()
    assert main(["identify", "--model", dlib_dir, "--gallery", gallery, group, black]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(group + "\t") and "(3 faces)" in lines[0]
    faces = [line for line in lines if line.startswith("  face ")]
    assert len(faces) == 3 and all("\tbox " in line for line in faces)
    assert sorted(line.split("\t")[2] for line in faces) == sorted(p for p, _ in truth[group])
    assert lines[-1] == f"{black}\tunknown\t(no face)"


def test_detect_json_one_object_per_image(photos, capsys):
    root, truth = photos
    files = [str(root / "group2.png"), str(root / "white.png")]
    for detector in ("dlib_hog", "mtcnn"):
        capsys.readouterr()
        assert main(["detect", "--detector", detector, "--json", *files]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert len(lines) == 2
        group, white = map(json.loads, lines)
        assert group["image"] == files[0] and white == {"image": files[1], "faces": []}
        assert len(group["faces"]) == 4
        scores = [f["score"] for f in group["faces"]]
        assert scores == sorted(scores, reverse=True)
        for face in group["faces"]:
            assert set(face) == {"box", "score", "landmarks"}
            left, top, right, bottom = face["box"]
            assert any(centre_inside(face["box"], rect) for _, rect in truth[files[0]])
            points = np.array(face["landmarks"])
            assert points.shape == (5, 2)
            assert (points[:, 0] >= left - 5).all() and (points[:, 0] <= right + 5).all()
            assert (points[:, 1] >= top - 5).all() and (points[:, 1] <= bottom + 5).all()


def test_no_face_no_answer_in_verify_and_enroll(dlib_dir, photos, tmp_path, capsys):
    root, _ = photos
    black, white = str(root / "black.png"), str(root / "white.png")
    capsys.readouterr()
    assert main(["verify", "--model", dlib_dir, black, white]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"no face found in {black}" in err
    path = str(tmp_path / "g.gallery")
    assert main(["enroll", "--model", dlib_dir, "--gallery", path, "--name", "nobody", white]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and white in err and not os.path.exists(path)


def test_enroll_refuses_several_faces_unless_face_is_given(dlib_dir, photos, tmp_path, capsys):
    root, _ = photos
    group, path = str(root / "group0.png"), str(tmp_path / "g.gallery")
    capsys.readouterr()
    assert main(["enroll", "--model", dlib_dir, "--gallery", path, "--name", "x", group]) == 2
    err = capsys.readouterr().err
    assert "2 faces" in err and "--face" in err and not os.path.exists(path)
    assert main(["enroll", "--model", dlib_dir, "--gallery", path, "--name", "x", "--face", "largest", group]) == 0


def test_verify_compares_the_chosen_faces_and_says_when_there_are_several(dlib_dir, recognizer, orl_dir, photos,
                                                                          capsys):
    root, truth = photos
    group, alone = str(root / "group0.png"), os.path.join(orl_dir, "s31", "1.pgm")  # group0: s31 and s32
    assert recognizer.verify(group, alone).faces == (2, 1)
    capsys.readouterr()
    assert main(["verify", "--model", dlib_dir, group, alone]) == 0
    assert f"{group} holds 2 faces" in capsys.readouterr().out


def test_recognizer_api_every_face(recognizer, gallery, orl_dir):
    from facenet_tf.errors import FacenetError

    canvas, boxes = compose(orl_dir, COMPOSITES[1])
    found = recognizer.detect(canvas)
    assert len(found) == 3 and all(any(centre_inside(f.box, rect) for rect in boxes) for f in found)
    assert all(f.landmarks.shape == (5, 2) and f.landmarks.dtype == np.float32 for f in found)
    assert all(f.landmark_order == "dlib5" for f in found)  # HOG faces: the predictor's points
    faces = recognizer.faces(canvas)
    assert [f.face.box for f in faces] == [f.box for f in found]
    assert np.stack([f.embedding for f in faces]).shape == (3, recognizer.embedding_dim)
    matches = recognizer.identify(canvas, gallery)
    truth = {rect: person for (person, _), rect in zip(COMPOSITES[1], boxes)}
    for match in matches:
        [rect] = [r for r in truth if centre_inside(match.face.box, r)]
        assert match.name == truth[rect]
    black = np.zeros((112, 92, 3), np.uint8)
    assert recognizer.detect(black) == [] and recognizer.faces(black) == []
    assert recognizer.embed_face(black) is None and recognizer.identify(black, gallery) == []
    with pytest.raises(FacenetError, match="no face found in the second image"):
        recognizer.verify(canvas, black)


def test_a_tight_crop_keeps_its_face_with_evidence(recognizer, dlib_dir, orl_dir):
    """s37/4 is the one ORL crop neither HOG nor MTCNN finds as it is (``--detector dlib_hog``):
    padded, it is found. The recorded detector (HOG plus dlib's CNN) finds it as it is."""
    from facenet_tf.data.reader import read_rgb
    from facenet_tf.recognition import FaceRecognizer

    image = read_rgb(os.path.join(orl_dir, "s37", "4.pgm"))
    assert len(recognizer.aligner.detect(image)) == 1
    recognizer = FaceRecognizer.load(dlib_dir, detector="dlib_hog")
    assert recognizer.aligner.detect(image) == []
    [face] = recognizer.detect(image)
    left, top, right, bottom = face.box
    assert right - left >= 0.3 * 92 and 0 <= (left + right) / 2 <= 92 and 0 <= (top + bottom) / 2 <= 112
    assert recognizer.embed_face(image) is not None


def test_a_large_photo_is_detected_downscaled_and_boxes_come_back_in_its_pixels(orl_dir, tmp_path):
    """A 2900x1700 photo (above the detection bound) with a face pasted 4x enlarged: the face
    is found on the bounded image and reported in the photo's own pixels."""
    from PIL import Image

    from facenet_tf.data.reader import read_rgb, read_rgb_within
    from facenet_tf.faces.found import MAX_DETECT_PIXELS
    from facenet_tf.recognition.detect import detect_files

    face = Image.open(os.path.join(orl_dir, "s31", "1.pgm")).convert("RGB").resize((368, 448))
    photo = Image.new("RGB", (2900, 1700), (128, 128, 128))
    photo.paste(face, (1500, 600))
    path = str(tmp_path / "large.jpg")
    photo.save(path, quality=90)
    pixels, (sx, sy) = read_rgb_within(path, MAX_DETECT_PIXELS)
    assert pixels.shape[0] * pixels.shape[1] <= MAX_DETECT_PIXELS and sx > 1
    assert pixels.shape[1] * sx == pytest.approx(2900) and pixels.shape[0] * sy == pytest.approx(1700)
    assert read_rgb_within(os.path.join(orl_dir, "s31", "1.pgm"), MAX_DETECT_PIXELS)[1] == (1.0, 1.0)
    np.testing.assert_array_equal(read_rgb_within(os.path.join(orl_dir, "s31", "1.pgm"), 10**6)[0],
                                  read_rgb(os.path.join(orl_dir, "s31", "1.pgm")))
    [(_, [found])] = list(detect_files([path], "mtcnn"))
    assert centre_inside(found.box, (1500, 600, 1868, 1048)) and found.box[2] - found.box[0] > 200


def test_no_align_on_a_model_recording_its_alignment_has_its_own_fingerprint(dlib_dir, recognizer):
    """A gallery enrolled from ready chips never mixes with one of the model's own aligned faces."""
    from facenet_tf.recognition import FaceRecognizer

    chips = FaceRecognizer.load(dlib_dir, align=False)
    assert chips.aligner is None and chips.fingerprint == recognizer.fingerprint + "+noalign"
    [face] = chips.detect(np.zeros((150, 150, 3), np.uint8))  # ready chips: the whole image is the face
    assert face.box == (0.0, 0.0, 150.0, 150.0)
