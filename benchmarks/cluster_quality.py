"""Clustering faces by person: our rules against dlib's Chinese whispers, on the same faces.

Faces: every ORL image (``--people``, default all 40), and ORL composites (``--composites``
canvases of 3 to 6 ORL faces of different people, so a "photo" holds several faces to find).
Each face is detected, aligned and embedded the way the imported dlib model records (its
detector, landmarks, chip and flip TTA). Then every rule groups the same embeddings at the
same threshold (``--threshold``, default the dlib model's 0.6 on l2): average and complete
linkage and DBSCAN (:func:`facenet_tf.cluster.cluster_embeddings`), and dlib-bin's
``chinese_whispers_clustering`` (the rule of dlib's face-clustering example) as the reference,
side by side.

Figures: pairwise precision (of the face pairs put together, the share that show one person),
recall (of the same-person pairs, the share put together), F1, clusters found (of 2+ faces)
and faces left alone, against the true number of people; then the frames per second of
``identify --video`` on a made-up 640x360 clip. ``--scale`` also times the clustering
step alone on synthetic 128-d embeddings (people of 2–20 faces) of each size, with the process's
peak memory. Ends with one JSON line.

    python benchmarks/cluster_quality.py --model /tmp/dlibdir [--tiny] [--scale 10000 50000]
"""

import argparse
import glob
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _orl import orl_dir, run  # noqa: E402  (benchmarks/ is the script's folder)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from facenet_tf.cluster import METHODS, cluster_embeddings  # noqa: E402
from facenet_tf.cluster.core import DEFAULT_METHOD  # noqa: E402


def pair_scores(truth: np.ndarray, labels: np.ndarray) -> dict:
    """Pairwise precision, recall and F1 of ``labels`` (-1: a face alone) against ``truth``."""
    from sklearn.metrics.cluster import pair_confusion_matrix

    labels = np.where(labels < 0, np.arange(len(labels)) + labels.max() + 2, labels)  # alone = own cluster
    (_, fn), (fp, tp) = pair_confusion_matrix(truth, labels)  # rows: truly same?, columns: put together?
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(float(precision), 4), "recall": round(float(recall), 4), "f1": round(float(f1), 4)}


def chinese_whispers(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """dlib-bin's ``chinese_whispers_clustering`` (edges: l2 distance < threshold)."""
    import dlib

    return np.asarray(dlib.chinese_whispers_clustering([dlib.vector(e.tolist()) for e in embeddings], threshold))


def orl_faces(data_dir: str, first: int, last: int):
    paths, truth = [], []
    for person in range(first, last + 1):
        found = sorted(glob.glob(os.path.join(data_dir, f"s{person}", "*.pgm")))
        paths += found
        truth += [person] * len(found)
    return [np.repeat(np.asarray(Image.open(p))[..., None], 3, axis=2) for p in paths], np.array(truth)


def composites(data_dir: str, first: int, last: int, count: int, seed: int = 0):
    """``count`` canvases of 3–6 ORL faces of different people → ``(images, [[(rect, person)]])``."""
    rng = np.random.default_rng(seed)
    people = list(range(first, last + 1))
    images, truth = [], []
    for _ in range(count):
        canvas = np.full((300, 460, 3), int(rng.integers(60, 180)), np.uint8)
        chosen = rng.choice(people, size=int(rng.integers(3, 7)), replace=False)
        pasted = []
        for k, person in enumerate(chosen):
            path = os.path.join(data_dir, f"s{person}", f"{int(rng.integers(1, 11))}.pgm")
            face = np.asarray(Image.open(path))[:, :, None] * rng.uniform(0.8, 1.0, 3)
            row, col = divmod(k, 3)
            y, x = 25 + 140 * row + int(rng.integers(0, 20)), 15 + 150 * col + int(rng.integers(0, 30))
            canvas[y:y + 112, x:x + 92] = face.astype(np.uint8)
            pasted.append(((x, y, x + 92, y + 112), int(person)))
        images.append(canvas)
        truth.append(pasted)
    return images, truth


def embed_faces(model: str, images, truth_of_image):
    """Detect every face of every image, align and embed each as the model records.

    ``truth_of_image(i, box)`` gives the person of a detected box (None: not a pasted face).
    Returns ``(embeddings [F, 128], persons [F], seconds, faces missed)``.
    """
    from facenet_tf.faces.aligner import AlignConfig, FaceAligner
    from facenet_tf.serving.inference import Embedder
    from facenet_tf.serving.tta import TTAConfig, with_tta

    embedder = Embedder.load(model)
    embedder = with_tta(embedder, TTAConfig.from_contract(embedder.contract))
    config = AlignConfig.from_contract(embedder.contract)
    aligner = FaceAligner(config)
    started = time.time()
    chips, persons = [], []
    for start in range(0, len(images), 16):
        batch = images[start:start + 16]
        for i, (image, faces) in enumerate(zip(batch, aligner.detect_many(batch))):
            for face in faces:
                person = truth_of_image(start + i, face.box)
                if person is None:
                    continue
                chip = aligner.method.face_chip(image, face, config, aligner.predictor)
                if chip.shape[:2] != tuple(embedder.image_size):
                    chip = np.asarray(Image.fromarray(chip).resize(embedder.image_size[::-1], Image.BILINEAR))
                chips.append(chip)
                persons.append(person)
    vectors = embedder.embed_pixels(np.stack(chips), batch_size=32)
    return vectors, np.array(persons), time.time() - started


def compare(name: str, vectors: np.ndarray, truth: np.ndarray, threshold: float, distance: str) -> dict:
    rows = {}
    print(f"\n{name}: {len(vectors)} faces of {len(np.unique(truth))} people, threshold {threshold}")
    print(f"{'rule':22s} {'precision':>9s} {'recall':>7s} {'F1':>7s} {'clusters':>8s} {'alone':>6s} {'seconds':>8s}")
    rules = [(m, lambda m=m: cluster_embeddings(vectors, threshold, m, distance)) for m in METHODS]
    rules.append(("dlib chinese whispers", lambda: chinese_whispers(vectors, threshold)))
    for rule, fn in rules:
        started = time.time()
        labels = np.asarray(fn())
        seconds = time.time() - started
        if rule.startswith("dlib"):  # dlib numbers every face; a cluster of one face is a face alone
            sizes = np.bincount(labels)
            labels = np.where(sizes[labels] >= 2, labels, -1)
        scores = pair_scores(truth, labels)
        clusters, alone = len(np.unique(labels[labels >= 0])), int((labels < 0).sum())
        rows[rule] = {**scores, "clusters": clusters, "alone": alone, "seconds": round(seconds, 3)}
        print(f"{rule:22s} {scores['precision']:9.4f} {scores['recall']:7.4f} {scores['f1']:7.4f} {clusters:8d} "
              f"{alone:6d} {seconds:8.3f}")
    return rows


def synthetic(n: int, dim: int = 128, seed: int = 0):
    """``n`` unit embeddings of people with 2–20 faces: within-person l2 about 0.4, between about 1.4."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 21, size=n // 2)
    sizes = sizes[:np.searchsorted(np.cumsum(sizes), n) + 1]
    labels = np.repeat(np.arange(sizes.size), sizes)[:n]
    centres = rng.normal(size=(sizes.size, dim)).astype(np.float32)
    x = centres[labels] / np.sqrt(dim) + rng.normal(scale=0.2 / np.sqrt(dim), size=(n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def scale(sizes, threshold: float) -> dict:
    import faiss  # noqa: F401  (loaded before the baseline: the k-NN graph's index)
    import sklearn.cluster  # noqa: F401

    cluster_embeddings(np.eye(4, dtype=np.float32), threshold)  # every import loaded
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nclustering step alone, synthetic 128-d embeddings ({DEFAULT_METHOD} linkage, threshold {threshold}); "
          f"process RSS before: {base:.0f} MiB")
    print(f"{'faces':>8s} {'seconds':>8s} {'peak RSS MiB':>12s} {'F1':>7s}")
    out = {"rss_before_mib": round(base)}
    for n in sizes:
        x, truth = synthetic(n)
        started = time.time()
        labels = cluster_embeddings(x, threshold, DEFAULT_METHOD, "l2")
        seconds = time.time() - started
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        f1 = pair_scores(truth, labels)["f1"]
        out[str(n)] = {"seconds": round(seconds, 2), "peak_rss_mib": round(rss), "f1": f1}
        print(f"{n:8d} {seconds:8.2f} {rss:12.0f} {f1:7.4f}")
    return out


def video_speed(model: str, data_dir: str, seconds: int = 10, fps: float = 2.0) -> dict:
    """Frames/s of ``identify --video``'s library call on a made-up clip: a 640x360 canvas at 25 fps
    with three ORL faces (1.5x size) against a gallery of them."""
    import tempfile

    import av

    from facenet_tf.gallery.gallery import Gallery
    from facenet_tf.recognition import FaceRecognizer
    from facenet_tf.recognition.video import identify_video

    people = [(31, 3), (32, 3), (36, 5)]
    faces = [np.asarray(Image.open(os.path.join(data_dir, f"s{p}", f"{i}.pgm")).resize((138, 168)))
             for p, i in people]
    recognizer = FaceRecognizer.load(model)
    with tempfile.TemporaryDirectory() as tmp:
        clip = os.path.join(tmp, "clip.mp4")
        with av.open(clip, "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.height, stream.width, stream.pix_fmt = 360, 640, "yuv420p"
            for k in range(seconds * 25):
                canvas = np.full((360, 640, 3), 110, np.uint8)
                for slot, face in enumerate(faces):
                    x, y = 40 + slot * 200 + (k % 25), 90
                    canvas[y:y + 168, x:x + 138] = face[..., None]
                for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        enrol = [os.path.join(data_dir, f"s{p}", "1.pgm") for p, _ in people]
        with Gallery.open(os.path.join(tmp, "g.gallery"), recognizer.fingerprint, recognizer.embedding_dim,
                          distance=recognizer.distance) as gallery:
            gallery.enroll([f"s{p}" for p, _ in people], recognizer.embed_files(enrol))
            found = identify_video(recognizer, gallery, clip, fps)
    named = sorted({a.name for a in found.appearances if a.name})
    print(f"\nvideo: 640x360, {seconds} s at 25 fps sampled at {fps:g}/s: {found.frames} frames in "
          f"{found.seconds:.1f} s = {found.frames_per_second:.2f} frames/s; named {named}")
    return {"frames": found.frames, "seconds": round(found.seconds, 2),
            "frames_per_second": round(found.frames_per_second, 2), "named": named}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None,
                        help="an imported dlib model directory (facenet-tf import-dlib); without it, only --scale")
    parser.add_argument("--data-dir", default=orl_dir())
    parser.add_argument("--people", default="1-40", help="ORL people, FIRST-LAST (default: %(default)s)")
    parser.add_argument("--composites", type=int, default=120, help="composite canvases (default: %(default)s)")
    parser.add_argument("--threshold", type=float, default=0.6, help="l2 threshold (default: dlib's %(default)s)")
    parser.add_argument("--sweep", type=float, nargs="*", default=[],
                        help="also compare the rules on ORL at these thresholds (how FAR and FRR move the ranking)")
    parser.add_argument("--scale", type=int, nargs="*", default=[], help="synthetic sizes to time, e.g. 10000 50000")
    parser.add_argument("--tiny", action="store_true", help="10 people, 12 composites: a quick check")
    args = parser.parse_args()
    first, last = (int(v) for v in args.people.split("-"))
    if args.tiny:
        last, args.composites = min(last, first + 9), min(args.composites, 12)
    figures = {"threshold": args.threshold}
    if args.model is None:
        if not args.scale:
            parser.error("give --model, or --scale SIZES for the timing alone")
        figures["scale"] = scale(args.scale, args.threshold)
        print(json.dumps(figures, sort_keys=True))
        return
    images, truth = orl_faces(args.data_dir, first, last)
    vectors, persons, seconds = embed_faces(args.model, images, lambda i, box: int(truth[i]))
    print(f"ORL: {len(images)} photos, {len(vectors)} faces found, {seconds:.1f} s to detect, align and embed")
    figures["orl"] = compare("ORL", vectors, persons, args.threshold, "l2")
    for threshold in args.sweep:
        figures[f"orl_at_{threshold:g}"] = compare("ORL", vectors, persons, threshold, "l2")
    canvases, pasted = composites(args.data_dir, first, last, args.composites)

    def person_at(i, box):
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2  # box: x, y, width, height
        hits = [p for (l, t, r, b), p in pasted[i] if l <= cx <= r and t <= cy <= b]
        return hits[0] if hits else None

    vectors, persons, seconds = embed_faces(args.model, canvases, person_at)
    total = sum(len(p) for p in pasted)
    print(f"composites: {len(canvases)} canvases with {total} faces, {len(vectors)} found, {seconds:.1f} s")
    figures["composites"] = {"faces": total, "found": len(vectors),
                             **compare("ORL composites", vectors, persons, args.threshold, "l2")}
    figures["video"] = video_speed(args.model, args.data_dir, 4 if args.tiny else 10)
    if args.scale:
        figures["scale"] = scale(args.scale, args.threshold)
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    run(main, "cluster_quality.py")
