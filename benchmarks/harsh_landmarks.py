"""Landmarks under harsh light: what feeds dlib's chip, compared zero-shot on ORL s31–s40 plain and harsh-lit.

The imported dlib ResNet (``facenet-tf import dlib``) with its recorded pipeline (``dlib_hog_cnn``
faces → dlib's 5-point predictor in the box → dlib's chip, flip TTA) loses most of its accuracy
when ``benchmarks/domain_shift.py``'s :func:`harsh_light` shifts the test people. This script
changes one thing at a time in what places the chip, and measures each variant side by side:

* ``today``: the recorded pipeline as it is;
* ``equalize`` / ``autocontrast`` / ``flatten``: the predictor reads the image normalised in the
  face box (:func:`predictor_image`); the chip is still cut from the original pixels;
* ``cnn_box``: the CNN detector's box where it finds the face (HOG's, then MTCNN's, elsewhere),
  instead of HOG's first;
* ``padded_box``: where no face is found, the face found in the image padded with a border (the
  evidence rule of :func:`facenet_tf.faces.found.face_evidence`) gives the predictor its box;
* ``rebox``: where no face is found, the predictor in the whole image, then once more in the box
  its points imply (:func:`points_box`);
* ``mtcnn``: MTCNN's five landmarks onto dlib's chip (``--detector mtcnn --align-method dlib_chip``);
* ``dlib68``: dlib's 68-point predictor and dlib's chip from 68 points
  (``--align-method dlib_landmarks68``; NON-COMMERCIAL: its training data, iBUG 300-W, forbid
  commercial use — opt-in only, measured here for comparison);
* ``plain_points`` (harsh sets only, a bound, not a pipeline): the chips cut from the harsh-lit
  pixels where ``today`` placed them on the plain image — what perfect landmarks would give,
  so the rest of the loss is the network's, not the landmarks'.

Per variant and image set (plain; harsh light with each ``--shift-seeds`` seed): verification as
``evaluate`` computes it with its defaults (every pair, class-balanced accuracy, 10-fold
thresholds; the chips embedded with the model's flip TTA), how many images had a detected face
("recall": every ORL image holds one), and how far the landmarks under harsh light lie from the
same variant's landmarks on the plain image (harsh light moves no pixel, so the plain image's
points are the reference): eye centres and nose, mean distance over inter-ocular distance, and the
share of images where it exceeds 0.1. Detection runs once per image set and is shared by the
variants that use the same detector.

    python benchmarks/harsh_landmarks.py --model /tmp/dlibdir
    python benchmarks/harsh_landmarks.py --model /tmp/dlibdir --shift-seeds 2026 7 --variants today equalize dlib68

The last line is one JSON object of every figure.
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

from domain_shift import harsh_light  # noqa: E402
from facenet_tf.errors import FacenetError  # noqa: E402

#: Variants by name: (alignment overrides of the recorded config, predictor light, box rule, words).
VARIANTS = {
    "today": ({}, "none", "detector", "recorded pipeline: dlib_hog_cnn box, 5-point predictor"),
    "equalize": ({}, "equalize", "detector", "predictor reads the box-equalised grey"),
    "autocontrast": ({}, "autocontrast", "detector", "predictor reads the box's 1-99% stretched grey"),
    "flatten": ({}, "flatten", "detector", "predictor reads grey / its blur, equalised in the box"),
    "cnn_box": ({}, "none", "cnn_first", "the CNN's box where it finds the face, else as today"),
    "padded_box": ({}, "none", "padded", "no face found: the box found in the image padded with a border"),
    "rebox": ({}, "rebox", "detector", "no face found: the whole-image points' own box, predicted once more"),
    "mtcnn": ({"detector": "mtcnn", "method": "dlib_chip"}, "none", "detector", "MTCNN's five landmarks"),
    "dlib68": ({"method": "dlib_landmarks68"}, "none", "detector",
               "dlib's 68-point predictor (NON-COMMERCIAL licence; opt-in only)"),
}

#: Reference points per landmark count: (eye on the image left, eye on the image right, nose),
#: each the mean of the listed points (MTCNN's order for 5 points from MTCNN).
POINTS = {"dlib5": ((2, 3), (0, 1), (4,)), "dlib68": ((36, 39), (42, 45), (33,)), "mtcnn": ((0,), (1,), (2,))}


def predictor_image(image, box, light):
    """The image dlib's shape predictor reads for the face in ``box``: as it is (``none``), or its
    grey (``(r + g + b) // 3``, as the predictor reads RGB) remapped by a table computed from the
    box's pixels alone (clipped to the image): ``equalize``: histogram equalisation;
    ``autocontrast``: the box's 1–99th percentile stretched to 0..255; ``flatten``: grey divided
    by its Gaussian blur (sigma an eighth of the box: a directional light's shading removed, the
    self-quotient image), then equalised. uint8 ``[H, W]`` (``image`` itself for ``none``)."""
    from PIL import Image as PilImage, ImageFilter, ImageOps

    if light == "none":
        return image
    grey = (image.astype(np.uint16).sum(axis=2) // 3).astype(np.uint8)
    left, top, right, bottom = (int(np.floor(v + 0.5)) for v in box)
    mask = np.zeros_like(grey)
    mask[max(top, 0):max(bottom + 1, 0), max(left, 0):max(right + 1, 0)] = 255
    if light == "autocontrast":
        return np.asarray(ImageOps.autocontrast(PilImage.fromarray(grey), cutoff=1, mask=PilImage.fromarray(mask)))
    if light == "flatten":
        blurred = PilImage.fromarray(grey).filter(ImageFilter.GaussianBlur(max(1.0, (right - left + 1) / 8)))
        ratio = grey / np.maximum(np.asarray(blurred, np.float64), 1.0)
        low, high = np.percentile(ratio[mask > 0], (1, 99))
        grey = np.round(np.clip((ratio - low) / max(high - low, 1e-6), 0, 1) * 255).astype(np.uint8)
    return np.asarray(ImageOps.equalize(PilImage.fromarray(grey), mask=PilImage.fromarray(mask)))


class Recorder:
    """A shape predictor reading :func:`predictor_image` with ``light`` that keeps the points of
    its last call (the landmarks a variant placed)."""

    def __init__(self, predictor, light):
        self.predictor, self.light, self.last = predictor, light, None

    @property
    def num_parts(self):
        return self.predictor.num_parts

    def predict(self, image, box, subpixel=False):
        if self.light == "rebox":
            self.last = self.predictor.predict(image, box, subpixel)
            if tuple(box) == (0, 0, image.shape[1] - 1, image.shape[0] - 1):  # the whole-image path
                self.last = self.predictor.predict(image, points_box(self.last), subpixel)
            return self.last
        self.last = self.predictor.predict(predictor_image(image, box, self.light), box, subpixel)
        return self.last


def points_box(points):
    """The face box dlib's 5 points imply: the box in whose units they best fit dlib's 5-point
    template (a similarity fit; the rotation left out), as its predictor's box."""
    from facenet_tf.faces.templates import DLIB_5POINT_TEMPLATE
    from facenet_tf.faces.transform import similarity_transform

    fit = similarity_transform(DLIB_5POINT_TEMPLATE, points)
    side, centre = np.hypot(fit[0, 0], fit[1, 0]), fit[:, :2] @ (0.5, 0.5) + fit[:, 2]
    return (*(centre - side / 2), *(centre + side / 2))


def read_set(orl: str, people, shift_seed):
    """uint8 RGB images, labels and names of ORL ``people`` (harsh-lit with ``shift_seed``; ``None``: plain)."""
    images, labels = [], []
    for label, person in enumerate(people):
        for path in sorted(glob.glob(os.path.join(orl, f"s{person}", "*.pgm")),
                           key=lambda p: int(os.path.basename(p)[:-4])):
            grey = np.asarray(Image.open(path).convert("L"))
            if shift_seed is not None:
                number = int(os.path.basename(path)[:-4])
                grey = harsh_light(grey, np.random.default_rng([shift_seed, person, number]))
            images.append(np.repeat(grey[..., None], 3, axis=2))
            labels.append(label)
    return images, np.array(labels)


def detections(images, recorded):
    """Per detector name, the faces of each image: the recorded detector (and, where it finds
    none, in the padded image), MTCNN, the CNN alone (the box rule) and HOG alone (recall)."""
    from facenet_tf.faces.aligner import FaceAligner
    from facenet_tf.faces.hog_detector import HogFaceDetector

    found = {}
    for name in (recorded.detector, "mtcnn", "dlib_cnn"):
        detector = FaceAligner(dataclasses.replace(recorded, detector=name))
        found[name] = detector.detect_many(images)
        if name == recorded.detector:
            found["padded"] = padded_faces(detector, images, found[name])
    hog = HogFaceDetector.load()
    found["hog"] = [list(hog.detect(image, recorded.hog_upsample).boxes) for image in images]
    return found


def padded_faces(detector, images, found):
    """Where ``found`` holds no face, the faces ``detector`` (an aligner) finds in the image padded with a
    border (:func:`facenet_tf.faces.found.pad_image`) that pass the evidence rule of
    :func:`~facenet_tf.faces.found.face_evidence`, moved back into the image's pixels."""
    from facenet_tf.faces.found import EVIDENCE_MIN_SIDE, pad_image

    out = [list(faces) for faces in found]
    missing = [i for i, faces in enumerate(found) if not faces]
    padded = [pad_image(images[i]) for i in missing]
    for i, (image, (dx, dy)), faces in zip(missing, padded, detector.detect_many([p for p, _ in padded])):
        height, width = images[i].shape[:2]
        for face in faces:
            x, y, w, h = face.box
            if 0 <= x + w / 2 - dx < width and 0 <= y + h / 2 - dy < height and \
                    min(w, h) >= EVIDENCE_MIN_SIDE * min(height, width):
                box = face.predictor_box
                out[i].append(dataclasses.replace(
                    face, box=(x - dx, y - dy, w, h),
                    landmarks=None if face.landmarks is None else face.landmarks - (dx, dy),
                    predictor_box=None if box is None else (box[0] - dx, box[1] - dy, box[2] - dx, box[3] - dy)))
    return out


def variant_faces(found, config, rule):
    """The faces a variant aligns from, per image."""
    faces = found[config.detector]
    if rule == "cnn_first":
        return [cnn or own for cnn, own in zip(found["dlib_cnn"], faces)]
    return found["padded"] if rule == "padded" else faces


def variant_aligner(name, recorded, predictors):
    """The aligner of variant ``name`` (from the ``recorded`` config) whose shape predictor, the
    variant's own behind its light, records what it places."""
    from facenet_tf.faces.aligner import FaceAligner

    overrides, light, _, _ = VARIANTS[name]
    config = dataclasses.replace(recorded, **overrides)
    order = "dlib68" if config.method == "dlib_landmarks68" else "dlib5"
    recorder = Recorder(predictors[order], light)
    aligner = FaceAligner(config, predictor=recorder)
    aligner._method_predictor = recorder  # the 68-point one already read, not read again per variant
    return aligner, recorder


def align_variant(images, found, aligner, recorder, rule):
    """Chips, landmark reference points (``[N, 3, 2]``, NaN where none), path counts and every
    image's predictor points (``None`` where the predictor placed none) of one variant."""
    from facenet_tf.faces.aligner import AlignCounts

    chips, points, counts, placed_all = [], np.full((len(images), 3, 2), np.nan), AlignCounts(), []
    for i, (image, faces) in enumerate(zip(images, variant_faces(found, aligner.config, rule))):
        recorder.last = None
        done = aligner.align_faces(image, faces)
        counts.add(done.path, done.faces)
        chips.append(done.chip)
        placed_all.append(recorder.last)
        if recorder.last is not None:
            order, placed = ("dlib68" if len(recorder.last) == 68 else "dlib5"), recorder.last
        elif faces and faces[0].landmarks is not None:
            order, placed = "mtcnn", aligner.choose(image.shape[:2], faces).landmarks
        else:
            continue
        points[i] = [np.mean(placed[list(group)], axis=0) for group in POINTS[order]]
    return np.stack(chips), points, counts, placed_all


def plain_points_chips(images, plain_points, config):
    """The chips of ``images`` cut where ``plain_points`` (the predictor's on the plain images) lie."""
    from facenet_tf.faces.chips import whole_image_chip
    from facenet_tf.faces.methods import dlib_chip_from_points

    return np.stack([whole_image_chip(image, config.size) if points is None
                     else dlib_chip_from_points(image, points, config) for image, points in zip(images, plain_points)])


def landmark_shift(points, reference):
    """Mean over images of the mean distance of the 3 points from ``reference``'s, over the
    reference's inter-ocular distance, and the share of images above 0.1 (NaN points: above)."""
    iod = np.linalg.norm(reference[:, 1] - reference[:, 0], axis=1)
    error = np.linalg.norm(points - reference, axis=2).mean(axis=1) / iod
    known = np.isfinite(error)
    return {"mean": round(float(error[known].mean()), 4) if known.any() else None,
            "over_0.1": round(float(np.mean(~known | (error > 0.1))), 3)}


def verification(embedder, chips, labels):
    """``evaluate``'s folder figures (defaults) for ``chips`` already aligned."""
    from facenet_tf.evaluation.labelled import verify_labelled

    result, _, _ = verify_labelled(embedder.embed_pixels(chips), labels, embedder.distance)
    return {"accuracy": round(result.accuracy, 4), "accuracy_std": round(result.accuracy_std, 4),
            "auc": round(result.auc, 5), "val_at_far_1e-3": round(float(result.val_at_far[1e-3]), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an imported dlib model directory (facenet-tf import dlib)")
    parser.add_argument("--data-dir", default=orl_dir(), help="ORL faces (default: %(default)s)")
    parser.add_argument("--people", default="31-40", help="ORL people, FIRST-LAST (default: %(default)s)")
    parser.add_argument("--shift-seeds", type=int, nargs="+", default=[2026, 7],
                        help="harsh-light seeds, one image set each (default: %(default)s)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                        help="variants to measure (default: all)")
    args = parser.parse_args()
    from facenet_tf.faces.aligner import AlignConfig
    from facenet_tf.faces.landmarks68 import default_shape_predictor_68_path
    from facenet_tf.faces.shape_predictor import ShapePredictor
    from facenet_tf.serving.inference import load_embedder
    from facenet_tf.serving.tta import TTAConfig, with_tta

    first, _, last = args.people.partition("-")
    people = range(int(first), int(last or first) + 1)
    if len(people) < 2:
        raise FacenetError(f"--people {args.people}: give at least two people (different-person pairs)")
    if not os.path.isdir(os.path.join(args.data_dir, f"s{people[-1]}")):
        raise FacenetError(f"--data-dir {args.data_dir}: no ORL faces s{people[0]}..s{people[-1]} there")
    embedder = load_embedder(args.model)
    embedder = with_tta(embedder, TTAConfig.from_contract(embedder.contract))
    recorded = AlignConfig.from_contract(embedder.contract)
    if recorded is None:
        raise FacenetError(f"--model {args.model} records no alignment: import dlib's model (facenet-tf import dlib)")
    predictors = {"dlib5": ShapePredictor.load()}
    if "dlib68" in args.variants:
        print("note: the dlib68 variant uses dlib's 68-point model (iBUG 300-W data: non-commercial use only)")
        predictors["dlib68"] = ShapePredictor.load(default_shape_predictor_68_path())
    aligners = {name: variant_aligner(name, recorded, predictors) for name in args.variants}
    sets = {"plain": None, **{f"harsh{seed}": seed for seed in args.shift_seeds}}
    figures = {"people": args.people, "shift_seeds": args.shift_seeds, "sets": {}}
    points, placed = {}, {}
    for set_name, seed in sets.items():
        started = time.time()
        images, labels = read_set(args.data_dir, people, seed)
        found = detections(images, recorded)
        recall = {name: int(sum(bool(f) for f in faces)) for name, faces in found.items()}
        figures["sets"][set_name] = {"images": len(images), "detector_recall": recall, "variants": {}}
        for name in args.variants:
            chips, points[set_name, name], counts, placed[set_name, name] = align_variant(
                images, found, *aligners[name], VARIANTS[name][2])
            row = {**verification(embedder, chips, labels), "paths": counts.to_json_dict()}
            if seed is not None:
                row["landmark_shift"] = landmark_shift(points[set_name, name], points["plain", name])
            figures["sets"][set_name]["variants"][name] = row
        if seed is not None and "today" in args.variants:
            chips = plain_points_chips(images, placed["plain", "today"], recorded)
            figures["sets"][set_name]["variants"]["plain_points"] = verification(embedder, chips, labels)
        figures["sets"][set_name]["seconds"] = round(time.time() - started, 1)
        print(f"  {set_name}: {len(images)} images, detectors found faces in {recall} "
              f"({figures['sets'][set_name]['seconds']} s)", flush=True)
    print_table(figures, args.variants + ["plain_points"] * ("today" in args.variants))
    print(json.dumps(figures, sort_keys=True))


def print_table(figures, variants) -> None:
    sets = list(figures["sets"])
    print(f"\nORL s{figures['people']}, zero-shot, evaluate's defaults; harsh = domain_shift.py's harsh_light")
    print(f"{'variant':13s}" + "".join(f" {s + ' acc':>14s} {'TAR@1e-3':>8s} {'found':>5s} {'shift':>6s} {'>0.1':>5s}"
                                       for s in sets))
    for name in variants:
        cells = []
        for s in sets:
            row = figures["sets"][s]["variants"].get(name)
            if row is None:
                cells.append(f" {'-':>14s} {'-':>8s} {'-':>5s} {'-':>6s} {'-':>5s}")
                continue
            shift = row.get("landmark_shift", {"mean": None, "over_0.1": None})
            mean = "-" if shift["mean"] is None else f"{shift['mean']:.3f}"
            over = "-" if shift["over_0.1"] is None else f"{shift['over_0.1']:.2f}"
            found = row.get("paths", {}).get("aligned", "-")
            cells.append(f" {row['accuracy']:14.4f} {row['val_at_far_1e-3']:8.4f} {found:>5} "
                         f"{mean:>6s} {over:>5s}")
        print(f"{name:13s}" + "".join(cells))
    for s in sets:
        print(f"{s}: faces found per detector {figures['sets'][s]['detector_recall']}")


if __name__ == "__main__":
    run(main, "harsh_landmarks.py")
