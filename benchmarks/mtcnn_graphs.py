"""MTCNN: the package's own ``detect_faces`` against ``faces.detection.MtcnnDetector`` (its
networks as TensorFlow graphs, one normalisation per batch), side by side (issue 21 item 6).

Same images, same process, each case timed twice and the best kept; ORL images as they are
and the 640×480 and mixed-size composites of ``benchmarks/pipeline_speed.py`` (written into
``--work-dir`` if absent). Faces found are compared too (the count per image must agree). The
last line is one JSON object.

    python benchmarks/mtcnn_graphs.py
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _orl import orl_dir, run  # noqa: E402  (benchmarks/ is the script's folder)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from pipeline_speed import build_sets, orl_paths  # noqa: E402


def best_of(function, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", default="/tmp/pipeline_speed", help="where the composites are (written)")
    parser.add_argument("--images", type=int, default=16, help="composites per case (default: %(default)s)")
    parser.add_argument("--tiny", action="store_true",
                        help="a smoke run: 4 ORL images and only --images composites written (figures mean nothing)")
    args = parser.parse_args()
    from mtcnn import MTCNN

    from facenet_tf.faces.detection import MtcnnDetector

    orl_count, faces = (4, args.images) if args.tiny else (64, 200)  # 200: the composites pipeline_speed.py writes
    sets = build_sets(orl_paths(orl_dir(), orl_count), orl_paths(orl_dir(), faces), args.work_dir, 0)
    load = {name: [np.asarray(Image.open(p).convert("RGB")) for p in paths]
            for name, paths in sets.items() if name in ("orl", "vga", "mixed")}
    orl, vga, mixed = load["orl"], load["vga"][:args.images], load["mixed"][:args.images]
    package, ours = MTCNN(), MtcnnDetector()
    detectors = {"package": lambda batch: package.detect_faces(batch), "ours": ours.detect_many}
    cases = {  # each gives the faces of every image, in order
        "ORL one at a time": (orl[:32], lambda detect, images: [detect([im])[0] for im in images]),
        "ORL batches of 16": (orl, lambda detect, images: [f for i in range(0, len(images), 16)
                                                           for f in detect(images[i:i + 16])]),
        "640x480 one at a time": (vga, lambda detect, images: [detect([im])[0] for im in images]),
        "640x480 batch": (vga, lambda detect, images: detect(images)),
        "mixed sizes one at a time": (mixed, lambda detect, images: [detect([im])[0] for im in images]),
    }
    for detect in detectors.values():  # warm-up: traces and first calls per shape
        detect(orl[:16]), detect([orl[0]]), detect([vga[0]]), detect(vga), detect([mixed[0]])
    result = {}
    print(f"{'case':28s} {'package ms/img':>15s} {'ours ms/img':>12s} {'speed-up':>9s}  faces agree")
    for name, (images, case) in cases.items():
        package_faces = [sum(f["confidence"] >= ours.min_confidence for f in faces)
                         for faces in case(detectors["package"], images)]
        our_faces = [len(faces) for faces in case(detectors["ours"], images)]
        seconds = {k: best_of(lambda detect=detect: case(detect, images)) for k, detect in detectors.items()}
        row = {k: round(1000 * v / len(images), 1) for k, v in seconds.items()}
        row.update(speedup=round(seconds["package"] / seconds["ours"], 2), faces_agree=package_faces == our_faces,
                   images=len(images))
        result[name] = row
        print(f"{name:28s} {row['package']:15.1f} {row['ours']:12.1f} {row['speedup']:8.2f}x  {row['faces_agree']}")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    run(main, "mtcnn_graphs.py")
