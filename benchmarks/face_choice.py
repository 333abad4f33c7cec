"""Which face to take when a photo holds several: each ``--face`` rule vs dlib-bin's own choices.

Data with bystanders, built deterministically (seeded) from ORL: every image of the
evaluated people (default s31–s40, 100 images) is pasted on a grey noisy canvas (260×180)
beside a bystander face of another ORL person, in three variants:

* ``centre_large``: the person centred and enlarged (×1.15), a smaller bystander (×0.75) at a side;
* ``centre_small``: the person centred (×0.9), a *larger* bystander (×1.1) at a side;
* ``side_large``: the person enlarged (×1.15) at a side, a smaller bystander (×0.75) near the centre.

Ours: MTCNN faces (≥ 0.9), the rule picks one, aligned as the model records (``--model``, a
``facenet-tf import-dlib`` directory; ``--align-method`` overrides) → the imported ResNet.
dlib-bin (reference, side by side on the same composites): HOG detector (image upsampled once),
the largest / most central / first detection, its 5-point predictor → ``get_face_chip`` →
``compute_face_descriptor``; no detection: the predictor in the whole image, as
face_recognition does for crops. Per variant and rule: the correct-face rate (the chosen box's
centre inside the person's pasted rectangle) and the verification accuracy over all pairs of
the composites (class-balanced 10-fold, l2 distance).

    python benchmarks/face_choice.py --model /tmp/dlibdir
"""

import argparse
import dataclasses
import glob
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _orl import orl_dir, run  # noqa: E402  (benchmarks/ is the script's folder)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from facenet_tf.evaluation.labelled import verify_labelled  # noqa: E402
from facenet_tf.faces.aligner import AlignConfig, FaceAligner  # noqa: E402
from facenet_tf.faces.choice import FACE_CHOICES  # noqa: E402
from facenet_tf.serving.inference import Embedder  # noqa: E402

CANVAS = (180, 260)  # height, width
VARIANTS = {  # (person scale, person at side?), (bystander scale)
    "centre_large": (1.15, False, 0.75),
    "centre_small": (0.9, False, 1.1),
    "side_large": (1.15, True, 0.75),
}


def _paste(canvas, face, scale, centre_x, centre_y):
    h, w = int(round(112 * scale)), int(round(92 * scale))
    face = np.asarray(Image.fromarray(face).resize((w, h), Image.Resampling.BILINEAR))
    top = int(np.clip(centre_y - h // 2, 0, CANVAS[0] - h))
    left = int(np.clip(centre_x - w // 2, 0, CANVAS[1] - w))
    canvas[top:top + h, left:left + w] = face
    return (left, top, left + w, top + h)


def composite(person, bystander, variant, rng):
    """uint8 ``[180, 260, 3]`` and the person's rectangle ``(left, top, right, bottom)``."""
    p_scale, p_side, b_scale = VARIANTS[variant]
    canvas = np.clip(rng.normal(rng.uniform(90, 170), 12, CANVAS), 0, 255).astype(np.uint8)
    side = rng.choice([-1, 1])
    centre = CANVAS[1] // 2 + int(rng.integers(-6, 7))
    at_side = CANVAS[1] // 2 + side * 85
    cy = CANVAS[0] // 2 + int(rng.integers(-8, 9))
    if p_side:
        _paste(canvas, bystander, b_scale, centre, cy + int(rng.integers(-15, 16)))
        rect = _paste(canvas, person, p_scale, at_side, cy)
    else:
        _paste(canvas, bystander, b_scale, at_side, cy + int(rng.integers(-15, 16)))
        rect = _paste(canvas, person, p_scale, centre, cy)
    return np.repeat(canvas[..., None], 3, axis=2), rect


def build(data_dir, first, last, seed):
    people = [f"s{i}" for i in range(first, last + 1)]
    everyone = sorted((n for n in os.listdir(data_dir) if os.path.isdir(os.path.join(data_dir, n))), key=lambda n: int(n[1:]))
    rng = np.random.default_rng(seed)
    images, rects, labels, variants = [], [], [], []
    for variant in VARIANTS:
        for label, person in enumerate(people):
            for path in sorted(glob.glob(os.path.join(data_dir, person, "*.pgm"))):
                other = everyone[int(rng.integers(len(everyone)))]
                while other == person:
                    other = everyone[int(rng.integers(len(everyone)))]
                others = sorted(glob.glob(os.path.join(data_dir, other, "*.pgm")))
                bystander = np.asarray(Image.open(others[int(rng.integers(len(others)))]))
                image, rect = composite(np.asarray(Image.open(path)), bystander, variant, rng)
                images.append(image), rects.append(rect), labels.append(label), variants.append(variant)
    return images, np.array(rects), np.array(labels), np.array(variants)


def _inside(box_centre, rect):
    x, y = box_centre
    return rect[0] <= x <= rect[2] and rect[1] <= y <= rect[3]


def ours(images, rects, model, method=None):
    embedder = Embedder.load(model)
    recorded = AlignConfig.from_contract(embedder.contract)
    aligner = FaceAligner(dataclasses.replace(recorded, method=method or recorded.method))
    detected = [faces for i in range(0, len(images), 16) for faces in aligner.detect_many(images[i:i + 16])]
    out = {"found": [len(f) for f in detected]}
    for rule in FACE_CHOICES.names():
        choose = FACE_CHOICES.get(rule)
        chips, correct = [], []
        for image, faces, rect in zip(images, detected, rects):
            if faces:
                face = choose(image.shape[:2], faces)
                x, y, w, h = face.box
                correct.append(_inside((x + w / 2, y + h / 2), rect))
                chips.append(aligner.method.face_chip(image, face, aligner.config, aligner.predictor))
            else:
                correct.append(False)
                chips.append(aligner.align_faces(image, []).chip)
        out[rule] = (np.array(correct), embedder.embed_pixels(np.stack(chips)))
    return out


def dlib_bin(images, rects):
    import dlib
    import face_recognition_models as frm

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    rules = {
        "largest": lambda image, dets: max(dets, key=lambda r: r.area()),
        "central": lambda image, dets: min(dets, key=lambda r: (r.center().x - image.shape[1] / 2) ** 2
                                           + (r.center().y - image.shape[0] / 2) ** 2),
        "first": lambda image, dets: dets[0],
    }
    detected = [list(detector(image, 1)) for image in images]
    out = {"found": [len(d) for d in detected]}
    for rule, choose in rules.items():
        vectors, correct = [], []
        for image, dets, rect in zip(images, detected, rects):
            if dets:
                box = choose(image, dets)
                correct.append(_inside((box.center().x, box.center().y), rect))
            else:
                box = dlib.rectangle(0, 0, image.shape[1] - 1, image.shape[0] - 1)
                correct.append(False)
            chip = dlib.get_face_chip(image, predictor(image, box), 150, 0.25)
            vectors.append(np.array(net.compute_face_descriptor(chip)))
        out[rule] = (np.array(correct), np.stack(vectors))
    return out


def report(results, labels, variants, seed):
    """Print the table; the figures as a flat dict."""
    figures = {}
    print(f"{'pipeline':9s} {'rule':10s} " + " ".join(f"{v:>26s}" for v in VARIANTS) + f" {'all':>26s}")
    print(f"{'':20s} " + " ".join(f"{'correct face / accuracy':>26s}" for _ in range(len(VARIANTS) + 1)))
    for pipeline, found in results.items():
        found = dict(found)
        multi = np.array(found.pop("found"))
        figures[f"{pipeline}/more_than_one_face"] = int((multi > 1).sum())
        figures[f"{pipeline}/no_face"] = int((multi == 0).sum())
        for rule, (correct, vectors) in found.items():
            cells = []
            for variant in [*VARIANTS, "all"]:
                keep = variants == variant if variant != "all" else np.ones(len(labels), bool)
                acc = verify_labelled(vectors[keep], labels[keep], "l2", seed=seed)[0].accuracy
                rate = float(correct[keep].mean())
                figures[f"{pipeline}/{rule}/{variant}"] = {"correct_face": round(rate, 4), "accuracy": round(acc, 4)}
                cells.append(f"{rate:12.3f} / {acc:.4f}")
            print(f"{pipeline:9s} {rule:10s} " + " ".join(f"{c:>26s}" for c in cells))
        print(f"{pipeline}: more than one face in {figures[f'{pipeline}/more_than_one_face']}, "
              f"none in {figures[f'{pipeline}/no_face']}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an imported dlib model directory (facenet-tf import-dlib)")
    parser.add_argument("--data-dir", default=orl_dir())
    parser.add_argument("--people", default="31-40", help="ORL people evaluated, FIRST-LAST (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--align-method", default=None, help="override the model's recorded alignment method")
    args = parser.parse_args()
    first, last = (int(v) for v in args.people.split("-"))
    images, rects, labels, variants = build(args.data_dir, first, last, args.seed)
    started = time.time()
    results = {"ours": ours(images, rects, args.model, args.align_method)}
    ours_s = time.time() - started
    started = time.time()
    results["dlib-bin"] = dlib_bin(images, rects)
    dlib_s = time.time() - started
    figures = {"images": len(images), "seconds": {"ours": round(ours_s, 1), "dlib-bin": round(dlib_s, 1)}}
    print(f"{len(images)} composites ({len(VARIANTS)} variants x {len(images) // len(VARIANTS)}); "
          f"ours {ours_s:.0f} s, dlib-bin {dlib_s:.0f} s")
    figures.update(report(results, labels, variants, args.seed))
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    run(main, "face_choice.py")
