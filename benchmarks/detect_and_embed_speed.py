"""Photos per second: the ``detect_and_embed`` graph against the Python pipeline, side by side (issue 31 item 5).

The same generated photos (ORL faces, 1 to 3 per photo, pasted on cluttered 640×480 canvases,
JPEG quality 92; :mod:`pipeline_speed`'s canvas), every face of every photo (box, landmarks,
embedding), at each batch size (``--batch-sizes``, default 1 and 16), in one run:

* **graph**: :class:`facenet_tf.serving.detect_and_embed.DetectAndEmbed` of ``--model`` as
  ``facenet-tf export`` saves it (a ``tf.function`` over the encoded bytes: decoding, dlib's CNN
  detector, the 5-point predictor, chips, the network with the recorded ``flip``), traced once
  before the timing;
* **python_cnn**: :class:`facenet_tf.recognition.FaceRecognizer` with ``detector="dlib_cnn"``
  (the graph's reference: the same faces);
* **python_default**: the same with the model's recorded detector (``dlib_hog_cnn`` for an
  imported dlib model: dlib's HOG detector in NumPy plus the CNN faces it misses).

With ``--verify-people N`` (default 10; 0 skips it) the run also measures what the hidden check
of issue 31 asks, verification through ``detect_and_embed`` alone against the Python pipeline:
ORL people s(41-N)..s40, all 10 images each pasted on 250×250 cluttered canvases
(:func:`pipeline_speed.build_sets`' ``lfw250``), every pair; balanced accuracy at the model's
threshold of row 0's embedding (graph) and of ``embed_face`` (Python, both detectors), and the
cosine of row 0 to each.

Batch size 1: one call per photo (``recognizer.faces(path)``; the graph on one photo's bytes).
Larger: the graph on ``B`` photos' bytes at once; the Python pipeline reads and detects ``B``
files together (:func:`facenet_tf.faces.found.faces_of_files`, what ``identify`` does per chunk)
and embeds their chips in one model call. Files are read inside the timing; models are loaded
and warmed up on one photo before it. The last line is one JSON object.

    facenet-tf import-dlib --output-dir /tmp/dlibdir_speed
    python benchmarks/detect_and_embed_speed.py --model /tmp/dlibdir_speed
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _orl import orl_dir, run  # noqa: E402  (benchmarks/ is the script's folder)
from pipeline_speed import build_sets, canvas, orl_paths  # noqa: E402
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def group_photos(faces, count: int, work_dir: str, seed: int):
    """``count`` JPEG files in ``work_dir/photos_seed<seed>_<count>/`` (written once): 1, 2 or 3 ORL
    faces (×1.0–1.6) side by side on a 640×480 canvas."""
    folder = os.path.join(work_dir, f"photos_seed{seed}_{count}")
    paths = [os.path.join(folder, f"{i:04d}.jpg") for i in range(count)]
    if all(os.path.isfile(p) for p in paths):
        return paths
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        image = canvas((480, 640), rng)
        people = 1 + i % 3
        for k in range(people):
            face = np.asarray(Image.open(faces[(i * 3 + k) % len(faces)]).convert("L"))
            scale = rng.uniform(1.0, 1.6)
            h, w = int(112 * scale), int(92 * scale)
            left = int(640 * (k + 0.5) / people - w / 2)
            top = int(rng.integers(20, 480 - h - 20))
            image[top:top + h, left:left + w] = np.asarray(Image.fromarray(face).resize((w, h), Image.Resampling.BILINEAR))
        Image.fromarray(np.repeat(image[..., None], 3, axis=2)).save(paths[i] + ".part.jpg", quality=92)
        os.replace(paths[i] + ".part.jpg", paths[i])
    return paths


def verification(graph_fn, recognizers, people: int, work_dir: str, threshold: float):
    """Balanced accuracy over every pair of ``people`` ORL people's 10 photos (module docstring)."""
    faces = [os.path.join(orl_dir(), f"s{p}", f"{i}.pgm") for p in range(41 - people, 41) for i in range(1, 11)]
    paths = build_sets(faces, faces, work_dir, 0)["lfw250"]
    labels = np.repeat(np.arange(people), 10)
    found = {"graph": graph_fn.rows(paths)}
    for name, recognizer in recognizers.items():
        chosen = [recognizer.embed_face(path) for path in paths]
        found[name] = np.stack([e if e is not None else np.zeros_like(found["graph"][0]) for e in chosen])
    i, j = np.triu_indices(len(paths), 1)
    same = labels[i] == labels[j]
    out = {"pairs": int(len(i)), "threshold": threshold}
    for name, embeddings in found.items():
        d = np.linalg.norm(embeddings[i] - embeddings[j], axis=1)
        out[name] = round(float(0.5 * (np.mean(d[same] <= threshold) + np.mean(d[~same] > threshold))), 4)
        if name != "graph":
            cos = np.sum(found["graph"] * embeddings, 1) / np.maximum(
                np.linalg.norm(found["graph"], axis=1) * np.linalg.norm(embeddings, axis=1), 1e-12)
            out[f"min_cosine_graph_vs_{name}"] = round(float(cos.min()), 6)
    return out


def graph_pipeline(model_dir: str, max_faces: int):
    """The graph as export saves it, traced on one photo: ``fn(paths) -> faces found``; ``fn.rows(paths)``:
    row 0's embedding of each photo (zeros without a face)."""
    import tensorflow as tf

    from facenet_tf.models.loader import load_keras
    from facenet_tf.serving.detect_and_embed import from_contract

    model, artifact = load_keras(model_dir)
    graph = from_contract(model, artifact.contract, max_faces)
    fn = tf.function(graph.__call__, input_signature=graph.input_signature())

    def embed(paths):
        data = [open(path, "rb").read() for path in paths]
        return int(np.sum(fn(images=tf.constant(data))["num_faces"].numpy()))

    def rows(paths, batch=16):
        return np.concatenate([fn(images=tf.constant([open(p, "rb").read() for p in paths[at:at + batch]]))
                               ["embeddings"].numpy()[:, 0] for at in range(0, len(paths), batch)])

    embed.rows = rows
    embed.threshold = artifact.contract.threshold("far")
    return embed


def python_pipeline(model_dir: str, detector=None):
    """:class:`FaceRecognizer` (``detector`` overriding the recorded one): ``fn(paths) -> faces found``."""
    from facenet_tf.faces.found import faces_of_files
    from facenet_tf.recognition import FaceRecognizer

    recognizer = FaceRecognizer.load(model_dir, detector=detector, workers=1)

    def embed(paths):
        if len(paths) == 1:
            return len(recognizer.faces(paths[0]))
        found = [face for faces, _ in faces_of_files(recognizer.aligner, paths, recognizer.embedder.image_size)
                 for face in faces]
        if found:
            recognizer.embedder.embed_pixels(np.stack([f.chip for f in found]))
        return len(found)

    embed.recognizer = recognizer
    return embed


def timed(fn, paths, batch: int, repeats: int):
    """Best of ``repeats`` passes over ``paths`` in batches: photos/s, ms per photo, faces found."""
    best, faces = float("inf"), 0
    for _ in range(repeats):
        start, faces = time.perf_counter(), 0
        for at in range(0, len(paths), batch):
            faces += fn(paths[at:at + batch])
        best = min(best, time.perf_counter() - start)
    return {"photos_per_s": round(len(paths) / best, 3), "ms_per_photo": round(1000 * best / len(paths), 1),
            "faces": faces}


def main():
    import tensorflow as tf

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a model directory recording dlib's alignment (facenet-tf import-dlib)")
    p.add_argument("--photos", type=int, default=32, help="generated photos (default: %(default)s)")
    p.add_argument("--batch-sizes", default="1,16", help="comma-separated (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=1, help="passes per measurement, the best is kept (default: %(default)s)")
    p.add_argument("--max-faces", type=int, default=8, help="the graph's F (default: %(default)s)")
    p.add_argument("--work-dir", default="/tmp/detect_and_embed_speed", help="where the photos are written")
    p.add_argument("--verify-people", type=int, default=10, help="ORL people of the verification part, 2..40 "
                                                                 "(0: skip it; default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.verify_people not in range(0, 41) or args.verify_people == 1:
        p.error("--verify-people must be 0 or 2..40 (pairs of one person have no impostors)")
    batches = [int(b) for b in args.batch_sizes.split(",") if b]
    paths = group_photos(orl_paths(orl_dir(), 40), args.photos, args.work_dir, args.seed)
    pipelines, loads = {}, {}
    for name, make in (("graph", lambda: graph_pipeline(args.model, args.max_faces)),
                       ("python_cnn", lambda: python_pipeline(args.model, "dlib_cnn")),
                       ("python_default", lambda: python_pipeline(args.model))):
        start = time.perf_counter()
        pipelines[name] = make()
        pipelines[name](paths[:1])  # warm-up: tracing, model loading
        loads[name] = round(time.perf_counter() - start, 1)
    result = {"photos": len(paths), "photo_size": "640x480 JPEG, 1-3 faces", "cpu_cores": os.cpu_count(),
              "tensorflow": tf.__version__, "load_and_warm_up_s": loads, "batches": {}}
    print(f"{len(paths)} photos (640x480, 1-3 ORL faces); load + warm-up (s): {loads}; {os.cpu_count()} CPU cores")
    print(f"{'batch':>5s}" + "".join(f" {n + ' photos/s':>24s}" for n in pipelines) + f" {'graph/python_cnn':>17s}")
    for batch in batches:
        row = {name: timed(fn, paths, batch, args.repeats) for name, fn in pipelines.items()}
        row["speedup_vs_python_cnn"] = round(row["graph"]["photos_per_s"] / row["python_cnn"]["photos_per_s"], 3)
        result["batches"][str(batch)] = row
        print(f"{batch:5d}" + "".join(f" {row[n]['photos_per_s']:24.2f}" for n in pipelines)
              + f" {row['speedup_vs_python_cnn']:17.2f}")
        print(f"{'':5s} faces found: " + ", ".join(f"{n} {row[n]['faces']}" for n in pipelines))
    if args.verify_people:
        result["verification"] = verification(
            pipelines["graph"], {n: pipelines[n].recognizer for n in ("python_cnn", "python_default")},
            args.verify_people, args.work_dir, pipelines["graph"].threshold)
        print(f"verification, {args.verify_people} ORL people on 250x250 canvases: {result['verification']}")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    run(main, "detect_and_embed_speed.py")
