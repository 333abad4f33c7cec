"""Detect + align + embed a folder: ours against dlib-bin's C++ pipeline, side by side (issue 21 item 6).

The same image files, decoded by each pipeline, in one run:

* **ours**: the library's folder-embedding path as ``evaluate``, ``enroll`` and ``identify``
  build it: the model's recorded test-time augmentation and alignment (an import today:
  dlib's HOG detector in NumPy, MTCNN where it finds nothing, dlib's 5-point predictor, dlib's
  chip, ``flip``), alignment in worker processes where the detector holds the GIL (one per
  core), the Keras ResNet — ``with_recorded_alignment(with_tta(Embedder.load(--model), ...),
  workers=0).embed_files(paths)``. Its alignment counts are printed.
* **ours_mtcnn** (second row, ``--no-mtcnn-row`` drops it): the same with ``--detector mtcnn
  --align-method dlib_chip`` (MTCNN's batched TensorFlow graphs, MTCNN's landmarks → dlib's chip).
* **dlib-bin** (the reference): as face_recognition runs it: each file decoded by Pillow,
  ``dlib.get_frontal_face_detector()`` upsampling once, the most central detection (no
  detection: the whole-image box), ``dlib.shape_predictor`` (5 points), ``dlib.get_face_chip``
  (150, 0.25), then one ``compute_face_descriptor`` call on all chips (batched, no jitter).

Sets (written once into ``--work-dir``, seeded, so both read the same bytes):

* ``orl``: the ORL images as they are (92×112 grey PGM; ``--orl N`` takes every k-th to make N);
* ``lfw250``: ORL faces (``--photos N``, every k-th) scaled ×1.0–1.4 and pasted at a random place
  near the centre of a 250×250 cluttered canvas (blurred noise at several scales, a gradient),
  JPEG quality 92 — the size of LFW's photos;
* ``vga``: the same on 640×480 canvases, faces ×0.9–2.2 (a webcam or a downsized phone photo);
* ``mixed``: canvases of random sizes, 200–720 px a side, faces ×0.9–2.0: a folder of photos
  whose sizes all differ (no two share a shape, so no batch of equal shapes forms).

Reported per set: ms per image for each pipeline (wall clock, models loaded and warmed up on a
few ORL images before; files decoded and worker processes started inside the timing), the
ratios ours / dlib-bin (< 1: ours is faster), CPU ms per image (this process and its worker
processes: how many cores each keeps busy), and the faces found. The last line is one JSON
object.

    facenet-tf import-dlib --output-dir /tmp/dlibdir_speed
    python benchmarks/pipeline_speed.py --model /tmp/dlibdir_speed
"""

import argparse
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

#: set name -> (canvas (height, width) or None for random sizes, face scale range); orl: files as they are.
SETS = {
    "lfw250": ((250, 250), (1.0, 1.4)),
    "vga": ((480, 640), (0.9, 2.2)),
    "mixed": (None, (0.9, 2.0)),
}


def orl_paths(root: str, count: int):
    paths = sorted(glob.glob(os.path.join(root, "s*", "*.pgm")),
                   key=lambda p: (int(p.split(os.sep)[-2][1:]), int(os.path.basename(p)[:-4])))
    if not paths:
        from facenet_tf.errors import FacenetError
        raise FacenetError(f"no ORL images under {root} (set FACENET_TF_DATA to a folder holding orl_faces/)")
    step = max(1, len(paths) // count) if count else 1
    return paths[::step][:count or None]


def _blur(noise: np.ndarray, radius: int) -> np.ndarray:
    """Box blur (twice, ~Gaussian) of a 2-D array, edges clamped."""
    for axis in (0, 1):
        for _ in range(2):
            padded = np.pad(noise, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
            sums = np.cumsum(padded, axis=axis, dtype=np.float64)
            sums = np.concatenate([np.zeros_like(np.take(sums, [0], axis=axis)), sums], axis=axis)
            width = 2 * radius + 1
            noise = (np.take(sums, range(width, sums.shape[axis]), axis=axis)
                     - np.take(sums, range(0, sums.shape[axis] - width), axis=axis)) / width
    return noise


def canvas(shape, rng) -> np.ndarray:
    """uint8 ``[H, W]``: clutter (noise blurred at 3 scales) on a random gradient."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    image = rng.uniform(70, 170) + rng.uniform(-40, 40) * xx + rng.uniform(-40, 40) * yy
    for radius, amplitude in ((12, 60.0), (4, 30.0), (1, 12.0)):
        image = image + amplitude * _blur(rng.normal(0, 1, shape), radius) * np.sqrt(radius)
    return np.clip(image, 0, 255).astype(np.uint8)


def composite(face: np.ndarray, shape, scale_range, rng) -> np.ndarray:
    """An ORL face (grey ``[112, 92]``) scaled and pasted near the centre of a cluttered canvas; RGB."""
    scale = rng.uniform(*scale_range)
    h, w = int(round(112 * scale)), int(round(92 * scale))
    height, width = max(shape[0], h + 2), max(shape[1], w + 2)
    image = canvas((height, width), rng)
    top = int(np.clip((height - h) // 2 + rng.integers(-height // 8, height // 8 + 1), 0, height - h))
    left = int(np.clip((width - w) // 2 + rng.integers(-width // 8, width // 8 + 1), 0, width - w))
    image[top:top + h, left:left + w] = np.asarray(Image.fromarray(face).resize((w, h), Image.Resampling.BILINEAR))
    return np.repeat(image[..., None], 3, axis=2)


def build_sets(orl, faces, work_dir: str, seed: int):
    """``{set: [paths]}``: ``orl`` as given; the composites of ``faces`` (ORL files) written as
    JPEG into ``work_dir/<set>_seed<seed>_<n>/`` (once)."""
    sets = {"orl": orl}
    for name, (shape, scales) in SETS.items():
        folder = os.path.join(work_dir, f"{name}_seed{seed}_{len(faces)}")
        paths = [os.path.join(folder, f"{i:04d}.jpg") for i in range(len(faces))]
        if not all(os.path.isfile(p) for p in paths):
            os.makedirs(folder, exist_ok=True)
            rng = np.random.default_rng([seed, len(name)])
            for path, source in zip(paths, faces):
                size = shape or (int(rng.integers(200, 721)), int(rng.integers(200, 721)))
                image = composite(np.asarray(Image.open(source).convert("L")), size, scales, rng)
                Image.fromarray(image).save(path + ".part.jpg", quality=92)
                os.replace(path + ".part.jpg", path)
        sets[name] = paths
    return sets


class Ours:
    """The library's path as the embedding commands build it: the model's recorded test-time
    augmentation (``--tta`` overrides), its recorded alignment (``--detector`` and
    ``--align-method`` override), ``workers`` alignment processes (0: chosen per detector), then
    ``embed_files``."""

    def __init__(self, model: str, workers: int = 0, tta=None, detector=None, method=None):
        import dataclasses

        from facenet_tf.recognition.aligned import with_recorded_alignment
        from facenet_tf.serving.inference import Embedder
        from facenet_tf.serving.tta import TTAConfig, with_tta

        embedder = Embedder.load(model)
        recorded = TTAConfig.from_contract(embedder.contract)
        self.tta = dataclasses.replace(recorded, mode=tta) if tta else recorded
        overrides = {k: v for k, v in (("detector", detector), ("method", method)) if v}
        self.embedder = with_recorded_alignment(with_tta(embedder, self.tta), workers=workers, **overrides)
        if not hasattr(self.embedder, "counts"):
            from facenet_tf.errors import FacenetError
            raise FacenetError(f"{model} records no alignment: give a 'facenet-tf import-dlib' model directory")

    def __call__(self, paths):
        import dataclasses

        from facenet_tf.faces.aligner import AlignCounts

        self.embedder.counts = AlignCounts()
        vectors = self.embedder.embed_files(paths)
        return vectors, dataclasses.asdict(self.embedder.counts)


class DlibBin:
    """dlib-bin's pipeline as face_recognition runs it (decode with Pillow, HOG ×1 upsampling,
    5-point predictor, chip, one batched descriptor call)."""

    def __init__(self):
        import dlib
        import face_recognition_models as frm

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self.network = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def __call__(self, paths):
        dlib = self.dlib
        chips, found, whole = [], 0, 0
        for path in paths:
            image = np.asarray(Image.open(path).convert("RGB"))
            rects = list(self.detector(image, 1))
            if rects:
                cy, cx = image.shape[0] / 2, image.shape[1] / 2
                box = min(rects, key=lambda r: (r.center().x - cx) ** 2 + (r.center().y - cy) ** 2)
                found += 1
            else:
                box = dlib.rectangle(0, 0, image.shape[1] - 1, image.shape[0] - 1)
                whole += 1
            chips.append(dlib.get_face_chip(image, self.predictor(image, box), size=150, padding=0.25))
        vectors = np.array(self.network.compute_face_descriptor(chips))
        return vectors, {"detected": found, "whole_image": whole}


def timed(pipeline, paths):
    """Wall and CPU time of ``pipeline(paths)`` per image; CPU counts this process and the
    worker processes it started and joined (``RUSAGE_CHILDREN``)."""
    import resource

    def cpu():
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    wall, used = time.perf_counter(), cpu()
    vectors, counts = pipeline(paths)
    wall, used = time.perf_counter() - wall, cpu() - used
    n = len(paths)
    return {"ms_per_image": round(1000 * wall / n, 1), "cpu_ms_per_image": round(1000 * used / n, 1),
            "counts": counts, "dim": int(vectors.shape[1])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="an imported dlib model directory (facenet-tf import-dlib)")
    parser.add_argument("--orl", type=int, default=0, help="ORL images (default: all 400)")
    parser.add_argument("--photos", type=int, default=200, help="composites per larger set (default: %(default)s)")
    parser.add_argument("--sets", default="orl,lfw250,vga,mixed", help="comma-separated (default: %(default)s)")
    parser.add_argument("--work-dir", default="/tmp/pipeline_speed", help="where the composites are written")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0,
                        help="our alignment processes (default 0: as the commands choose, one per core for HOG)")
    parser.add_argument("--tta", default=None, help="override the recorded test-time augmentation (none, flip)")
    parser.add_argument("--detector", default=None, help="override the recorded detector (mtcnn, dlib_hog)")
    parser.add_argument("--align-method", default=None, help="override the recorded alignment method")
    parser.add_argument("--no-mtcnn-row", action="store_true",
                        help="leave out the second row of ours: --detector mtcnn --align-method dlib_chip")
    args = parser.parse_args()
    wanted = [s for s in args.sets.split(",") if s]
    unknown = sorted(set(wanted) - {"orl", *SETS})
    if unknown:
        from facenet_tf.errors import FacenetError
        raise FacenetError(f"--sets: unknown {unknown}; choose from orl, {', '.join(SETS)}")
    orl = orl_paths(orl_dir(), args.orl)
    sets = build_sets(orl, orl_paths(orl_dir(), args.photos), args.work_dir, args.seed)

    from facenet_tf.faces.aligner import parallel_workers

    variants = {"ours": dict(detector=args.detector, method=args.align_method)}
    if not args.no_mtcnn_row:
        variants["ours_mtcnn"] = dict(detector="mtcnn", method="dlib_chip")
    pipelines, loads, described = {}, {}, {}
    for name, overrides in variants.items():
        tick = time.perf_counter()
        pipelines[name] = Ours(args.model, args.workers, args.tta, **overrides)
        pipelines[name](orl[:4])  # warm-up: traces, weights in memory (too few files for worker processes)
        loads[name] = round(time.perf_counter() - tick, 1)
        config, embedder = pipelines[name].embedder.aligner.config, pipelines[name].embedder
        described[name] = {"detector": config.detector, "method": config.method, "face": config.face,
                           "tta": pipelines[name].tta.mode, "workers": parallel_workers(embedder.aligner, embedder.workers)}
    tick = time.perf_counter()
    pipelines["dlib-bin"] = reference = DlibBin()
    reference(orl[:4])
    loads["dlib-bin"] = round(time.perf_counter() - tick, 1)
    import tensorflow as tf

    result = {"images": {name: len(paths) for name, paths in sets.items() if name in wanted}, "load_and_warm_up_s": loads, "pipelines": described,
              "cpu_cores": os.cpu_count(), "tensorflow": tf.__version__, "dlib": reference.dlib.__version__,
              "sets": {}}
    for name, description in described.items():
        print(f"{name}: {description}")
    print(f"images: {result['images']}; load + warm-up (s): {loads}; {os.cpu_count()} CPU cores")
    names = list(pipelines)
    print(f"{'set':8s}" + "".join(f" {n + ' ms/img':>19s}" for n in names) + "".join(
        f" {n + '/dlib':>16s}" for n in variants) + "".join(f" {n + ' cpu':>16s}" for n in names))
    for set_name in wanted:
        paths = sets[set_name]
        row = {name: timed(pipeline, paths) for name, pipeline in pipelines.items()}
        for name in variants:
            row[f"ratio_{name}"] = round(row[name]["ms_per_image"] / row["dlib-bin"]["ms_per_image"], 3)
        result["sets"][set_name] = row
        print(f"{set_name:8s}" + "".join(f" {row[n]['ms_per_image']:19.1f}" for n in names)
              + "".join(f" {row['ratio_' + n]:16.3f}" for n in variants)
              + "".join(f" {row[n]['cpu_ms_per_image']:16.1f}" for n in names))
        for name in names:
            print(f"{'':8s} {name} faces: {row[name]['counts']}")
    for name in variants:
        total = sum(result["sets"][s][name]["ms_per_image"] for s in wanted)
        result[f"ratio_all_sets_{name}"] = round(total / sum(result["sets"][s]["dlib-bin"]["ms_per_image"]
                                                             for s in wanted), 3)
        print(f"all sets: {name} / dlib-bin = {result[f'ratio_all_sets_{name}']} (summed ms per image over the sets)")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    run(main, "pipeline_speed.py")
