"""dlib's CNN face detector in Keras against dlib-bin's, and which detector finds which faces.

Two parts, in one run, on images generated deterministically (seeded) from ORL:

* **speed and equality**: photos (a smooth tinted background with three ORL faces of 60–110 px,
  turned up to 10°) of each ``--sizes`` size; dlib-bin's ``cnn_face_detection_model_v1(path)
  (image, 1)`` image by image (its own multi-threaded CPU convolutions), and ours
  (:class:`facenet_tf.faces.cnn_detector.CnnFaceDetector`) ``detect_many`` on all the photos of
  a size as one TensorFlow batch, after one warm-up call per size (the graph is traced once per
  image shape). Wall and CPU time (``time.process_time``: all threads of the process) per
  image, side by side, and how many images give the same detections (every box equal, scores
  within 1e-3).
* **recall** (``--recall``, default on): per kind of face, the share of pasted faces a
  detector finds (a box whose centre lies in the face's pasted rectangle), the boxes that
  hit no face ("stray"), the faces found by more than one box ("twice") and the wall time per
  image (the CNN's first image of each shape includes tracing its graph). Kinds: ``bystanders``
  (two ORL people side by side on a 260×180 canvas, 1.15× and 0.75×, as
  ``benchmarks/face_choice.py``), ``group`` (2–4 people 72 px wide on a 420×200 canvas, every
  other one turned 45°), ``rotated`` (one face turned 30°, 50°, 70°), ``small``
  (one face 48, 36, 28 px wide on a 200×160 canvas), ``dark`` (one face on a dark background at
  25 %, 15 %, 10 % brightness, lit hard from one side), ``orl_crops`` (ORL s31–s40 as they are:
  tight 92×112 crops) and ``harsh_crops`` (the same under ``benchmarks/domain_shift.py``'s
  seeded harsh light, the domain-shift benchmark's camera); ``faceless`` (flat black, white or
  grey, uniform noise, a smooth background: only boxes on them, "stray", count). Detectors: ``hog`` (dlib's HOG
  alone, upsampled once, the project's port), ``dlib_hog`` (HOG, MTCNN where HOG finds nothing: the project's detector of that name),
  ``mtcnn`` (score ≥ 0.9), ``dlib_cnn`` (upsampled once) and ``hog>cnn>mtcnn`` (HOG, the CNN
  where HOG finds nothing, MTCNN where neither does) and ``dlib_hog_cnn`` (HOG's faces plus the
  CNN faces HOG does not cover, MTCNN where neither finds one: the project's detector of that
  name), all through the project's code.

``--tiny`` (CI): one small size, three photos, two people per recall kind. The last line is one
JSON object.

    python benchmarks/cnn_vs_dlib.py [--sizes 320x240,640x480] [--photos 6] [--people 10]
"""

import argparse
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
from facenet_tf.faces.cnn_detector import CnnFaceDetector  # noqa: E402

SCORE_TOLERANCE = 1e-3
UPSAMPLE = 1
RECALL_KINDS = ("bystanders", "group", "rotated", "small", "dark", "orl_crops", "harsh_crops", "faceless")


def _face(person: int, image: int, width: int) -> Image.Image:
    grey = Image.open(os.path.join(orl_dir(), f"s{person}", f"{image}.pgm")).convert("L")
    return grey.resize((width, width * 112 // 92), Image.Resampling.BILINEAR)


def _canvas(size, rng) -> Image.Image:
    rows, cols = np.mgrid[0:size[1], 0:size[0]]
    tint = rng.uniform(0.4, 1.0, 3)
    background = 60 + 70 * np.sin(rows / 41.0 + rng.uniform(0, 6))[..., None] * tint + cols[..., None] * 0.15
    return Image.fromarray(np.clip(background + rng.normal(0, 6, background.shape), 0, 255).astype(np.uint8))


def _paste(canvas: Image.Image, face: Image.Image, left: int, top: int, angle: float, rng, light=None):
    """Paste a tinted (and optionally lit) ``face`` turned by ``angle``; returns its rectangle."""
    pixels = np.asarray(face, np.float64)[..., None] * rng.uniform(0.75, 1.1, 3)
    if light is not None:
        pixels = pixels * light[..., None]
    face = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).rotate(angle, Image.Resampling.BILINEAR, expand=True)
    mask = Image.new("L", (pixels.shape[1], pixels.shape[0]), 255).rotate(angle, expand=True)
    canvas.paste(face, (left, top), mask)
    return (left, top, left + face.size[0] - 1, top + face.size[1] - 1)


def speed_photos(size, count, seed):
    """``count`` photos of ``size`` (width, height), three faces each."""
    rng = np.random.default_rng(seed)
    photos = []
    for k in range(count):
        canvas = _canvas(size, rng)
        for slot in range(3):
            width = int(rng.integers(60, 111))
            left = slot * size[0] // 3 + int(rng.integers(0, max(1, size[0] // 3 - width - 20)))
            top = int(rng.integers(0, max(1, size[1] - width * 112 // 92 - 20)))
            _paste(canvas, _face(1 + (7 * k + 13 * slot) % 40, 1 + (k + slot) % 10, width), left, top,
                   float(rng.uniform(-10, 10)), rng)
        photos.append(np.asarray(canvas))
    return photos


def recall_images(kind, people, seed):
    """(image, [face rectangles]) of one kind, one or two per person."""
    rng = np.random.default_rng(seed)
    images = []
    for p in range(people):
        person = 1 + (3 * p) % 40
        if kind == "bystanders":
            canvas = _canvas((260, 180), rng)
            rects = [_paste(canvas, _face(person, 1 + p % 10, 106), 20, 25, 0.0, rng),
                     _paste(canvas, _face(1 + (person + 17) % 40, 2 + p % 9, 69), 170, 60, 0.0, rng)]
            images.append((np.asarray(canvas), rects))
        elif kind == "group":  # 2-4 people on one canvas, every other one turned 45 degrees
            canvas, rects = _canvas((420, 200), rng), []
            for slot in range(2 + p % 3):
                angle = 45.0 * (-1) ** p if slot % 2 else 0.0
                rects.append(_paste(canvas, _face(1 + (person + 11 * slot) % 40, 1 + (p + slot) % 10, 72),
                                    8 + 102 * slot, 30 + 10 * (slot % 2), angle, rng))
            images.append((np.asarray(canvas), rects))
        elif kind == "rotated":
            for angle in (30, 50, 70):
                canvas = _canvas((220, 220), rng)
                rects = [_paste(canvas, _face(person, 3, 100), 40, 30, angle * (1 if p % 2 else -1), rng)]
                images.append((np.asarray(canvas), rects))
        elif kind == "small":
            for width in (48, 36, 28):
                canvas = _canvas((200, 160), rng)
                rects = [_paste(canvas, _face(person, 4, width), 70, 50, 0.0, rng)]
                images.append((np.asarray(canvas), rects))
        elif kind == "faceless":  # only stray boxes can be counted
            flat = np.full((180, 240, 3), (0, 255, 128)[p % 3], np.uint8)
            noise = rng.integers(0, 256, (180, 240, 3)).astype(np.uint8)
            images += [(flat, []), (noise, []), (np.asarray(_canvas((240, 180), rng)), [])]
        elif kind in ("orl_crops", "harsh_crops"):  # tight crops: the face fills the image
            for image in (1, 4, 7):
                grey = np.asarray(_face(31 + p % 10, image + p % 3, 92))
                if kind == "harsh_crops":
                    grey = harsh_light(grey, rng)
                images.append((np.repeat(grey[:, :, None], 3, axis=2), [(0, 0, 91, 111)]))
        else:  # dark, lit hard from one side
            for brightness in (0.25, 0.15, 0.1):
                canvas = _canvas((200, 200), rng).point(lambda v: v // 4)
                light = brightness * np.clip(np.linspace(1.6, 0.1, 92)[None, :] * np.ones((112, 1)), 0, 1.3)
                rects = [_paste(canvas, _face(person, 5, 92), 50, 40, 0.0, rng, light)]
                images.append((np.asarray(canvas), rects))
    return images


def _dlib_boxes(found):
    return [[d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()] for d in found], [d.confidence for d in found]


def time_sizes(ours, reference, sizes, photos_per_size):
    rows = []
    for size in sizes:
        photos = speed_photos(size, photos_per_size, seed=size[0])
        ours.detect_many(photos[:1], UPSAMPLE)  # traces the graph of this shape
        wall, cpu = time.perf_counter(), time.process_time()
        mine = ours.detect_many(photos, UPSAMPLE)
        ours_wall, ours_cpu = time.perf_counter() - wall, time.process_time() - cpu
        wall, cpu = time.perf_counter(), time.process_time()
        theirs = [_dlib_boxes(reference(photo, UPSAMPLE)) for photo in photos]
        dlib_wall, dlib_cpu = time.perf_counter() - wall, time.process_time() - cpu
        same, worst, faces = 0, 0.0, 0
        for found, (boxes, scores) in zip(mine, theirs):
            faces += len(boxes)
            if found.boxes.tolist() == boxes:
                diff = float(np.max(np.abs(found.scores - scores))) if boxes else 0.0
                worst = max(worst, diff)
                same += diff <= SCORE_TOLERANCE
        n = len(photos)
        rows.append({"size": f"{size[0]}x{size[1]}", "images": n, "faces_dlib": faces, "same": same,
                     "max_score_diff": worst, "dlib_wall_ms": 1000 * dlib_wall / n, "ours_wall_ms": 1000 * ours_wall / n,
                     "dlib_cpu_ms": 1000 * dlib_cpu / n, "ours_cpu_ms": 1000 * ours_cpu / n})
    return rows


def _hits(boxes, rects):
    """(faces found, boxes hitting no face, faces found more than once): a box finds a face when
    its centre is inside the face's rectangle."""
    found, stray = [], 0
    for left, top, right, bottom in boxes:
        cx, cy = (left + right) / 2, (top + bottom) / 2
        inside = [i for i, r in enumerate(rects) if r[0] <= cx <= r[2] and r[1] <= cy <= r[3]]
        found += inside
        stray += not inside
    return len(set(found)), stray, sum(found.count(i) > 1 for i in set(found))


def recall(detectors, people):
    table = {}
    for kind in RECALL_KINDS:
        images = recall_images(kind, people, seed=len(kind))
        total = sum(len(rects) for _, rects in images)
        for name, detect in detectors.items():
            found = stray = twice = 0
            start = time.perf_counter()
            for image, rects in images:
                f, s, d = _hits(detect(image), rects)
                found, stray, twice = found + f, stray + s, twice + d
            table.setdefault(kind, {})[name] = {"recall": found / total if total else None, "faces": total,
                                                "stray_boxes": stray, "duplicates": twice,
                                                "ms_per_image": 1000 * (time.perf_counter() - start) / len(images)}
    return table


def _detectors(cnn):
    from facenet_tf.faces.detection import MtcnnDetector
    from facenet_tf.faces.detectors import HogCnnThenMtcnn, HogThenMtcnn
    from facenet_tf.faces.hog_detector import HogFaceDetector

    hog, mtcnn = HogFaceDetector.load(), MtcnnDetector(0.9)
    hog_then_mtcnn = HogThenMtcnn(UPSAMPLE, 0.9, hog)
    hog_cnn = HogCnnThenMtcnn(UPSAMPLE, 0.9, hog, cnn)
    hog_cnn._mtcnn = hog_then_mtcnn._mtcnn = mtcnn

    def xywh(faces):
        return [(f.box[0], f.box[1], f.box[0] + f.box[2] - 1, f.box[1] + f.box[3] - 1) for f in faces]

    def chain(image):  # HOG, the CNN where it finds nothing, MTCNN where neither does
        return (hog.detect(image, UPSAMPLE).boxes.tolist() or cnn.detect(image, UPSAMPLE).boxes.tolist()
                or xywh(mtcnn.detect(image)))

    return {"hog": lambda image: hog.detect(image, UPSAMPLE).boxes.tolist(),
            "dlib_hog": lambda image: xywh(hog_then_mtcnn.detect(image)),
            "mtcnn": lambda image: xywh(mtcnn.detect(image)),
            "dlib_cnn": lambda image: cnn.detect(image, UPSAMPLE).boxes.tolist(),
            "hog>cnn>mtcnn": chain,
            "dlib_hog_cnn": lambda image: xywh(hog_cnn.detect(image))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="320x240,640x480", help="photo sizes WxH, comma-separated")
    parser.add_argument("--photos", type=int, default=6, help="photos per size")
    parser.add_argument("--people", type=int, default=10, help="ORL people per recall kind")
    parser.add_argument("--no-recall", dest="recall", action="store_false", help="only speed and equality")
    parser.add_argument("--tiny", action="store_true", help="CI size: one 240x180 size, 3 photos, 2 people")
    args = parser.parse_args()
    if args.tiny:
        args.sizes, args.photos, args.people = "240x180", 3, 2
    try:
        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",")]
    except ValueError:
        raise FacenetError(f"--sizes takes WxH[,WxH...]; received {args.sizes!r}") from None
    if not os.path.isdir(orl_dir()):
        raise FacenetError(f"ORL faces not found at {orl_dir()} (set FACENET_TF_DATA)")
    try:
        import dlib
    except ImportError:
        raise FacenetError("the reference needs dlib: pip install dlib-bin") from None
    cnn = CnnFaceDetector.load()
    import face_recognition_models

    reference = dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())
    rows = time_sizes(cnn, reference, sizes, max(1, args.photos))
    print(f"{'size':>9} {'images':>6} {'faces':>5} {'same':>5} {'max|Δscore|':>11} {'wall ms dlib':>12} "
          f"{'wall ms ours':>12} {'cpu ms dlib':>11} {'cpu ms ours':>11}")
    for r in rows:
        print(f"{r['size']:>9} {r['images']:>6} {r['faces_dlib']:>5} {r['same']:>5} {r['max_score_diff']:>11.2e} "
              f"{r['dlib_wall_ms']:>12.0f} {r['ours_wall_ms']:>12.0f} {r['dlib_cpu_ms']:>11.0f} {r['ours_cpu_ms']:>11.0f}")
    result = {"upsample": UPSAMPLE, "speed": rows}
    if args.recall:
        table = recall(_detectors(cnn), max(1, args.people))
        names = list(next(iter(table.values())))
        print("\nrecall (stray boxes/faces found twice) [ms per image]  " + " ".join(f"{n:>22}" for n in names))
        for kind, by_name in table.items():
            cells = " ".join(f"{by_name[n]['recall'] if by_name[n]['faces'] else float('nan'):>7.2f} "
                             f"({by_name[n]['stray_boxes']:>2}/{by_name[n]['duplicates']:>2}) "
                             f"[{by_name[n]['ms_per_image']:>4.0f}]"
                             for n in names)
            print(f"{kind:>11} {by_name[names[0]]['faces']:>4} faces  {cells}")
        result["recall"] = table
    print(json.dumps(result))


if __name__ == "__main__":
    run(main, "cnn_vs_dlib.py")
