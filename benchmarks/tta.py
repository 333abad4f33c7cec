"""Test-time augmentation on ORL with an imported dlib model: accuracy and cost per ``--tta`` mode.

Every ORL image (default all 40 people, zero-shot: the imported network never saw ORL) is
aligned once the way the model records (``dlib_landmarks`` for a current import), then the
chips are embedded with each mode: ``none`` (the reference, side by side), ``flip`` and
``jitter`` with N crops (``--jitters``). Verification over all pairs (class-balanced 10-fold
accuracy, AUC, TAR at FAR 1e-3, the model's distance); cost is the embedding time per image
(alignment excluded: it is the same for every mode and printed once).

    python benchmarks/tta.py --model /tmp/dlibdir
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

from facenet_tf.evaluation.labelled import verify_labelled  # noqa: E402
from facenet_tf.faces.aligner import AlignConfig, FaceAligner, align_files  # noqa: E402
from facenet_tf.serving.inference import Embedder  # noqa: E402
from facenet_tf.serving.tta import TTAConfig, with_tta  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an imported dlib model directory (facenet-tf import-dlib)")
    parser.add_argument("--data-dir", default=orl_dir())
    parser.add_argument("--people", default="1-40", help="ORL people evaluated, FIRST-LAST (default: %(default)s)")
    parser.add_argument("--align-method", default=None, help="override the model's recorded alignment method")
    parser.add_argument("--jitters", type=int, nargs="+", default=[10], help="N for the jitter rows (default: 10)")
    args = parser.parse_args()
    first, last = (int(v) for v in args.people.split("-"))
    paths, labels = [], []
    for label, person in enumerate(range(first, last + 1)):
        found = sorted(glob.glob(os.path.join(args.data_dir, f"s{person}", "*.pgm")))
        paths += found
        labels += [label] * len(found)
    labels = np.array(labels)
    embedder = Embedder.load(args.model)
    config = AlignConfig.from_contract(embedder.contract)
    config = dataclasses.replace(config, method=args.align_method or config.method)
    started = time.time()
    chips, counts = align_files(FaceAligner(config), paths, embedder.image_size)
    align_ms = (time.time() - started) / len(paths) * 1000
    print(f"{len(paths)} images of {last - first + 1} people; alignment {config.method}: {counts.summary()}; "
          f"{align_ms:.0f} ms/image")
    figures = {"images": len(paths), "align_ms_per_image": round(align_ms, 1), "alignment": counts.to_json_dict()}
    modes = [TTAConfig("none"), TTAConfig("flip")] + [TTAConfig("jitter", n) for n in args.jitters]
    print(f"{'tta':12s} {'accuracy':>16s} {'AUC':>8s} {'TAR@1e-3':>9s} {'ms/image':>9s}")
    for mode in modes:
        tta = with_tta(embedder, mode)
        tta.embed_pixels(chips[:2])  # warm-up
        started = time.time()
        vectors = tta.embed_pixels(chips, batch_size=32)
        ms = (time.time() - started) / len(paths) * 1000
        result = verify_labelled(vectors, labels, embedder.distance)[0]
        name = mode.mode if mode.mode != "jitter" else f"jitter {mode.jitters}"
        tar = result.to_json_dict()["val_at_far_1e-3"]
        print(f"{name:12s} {result.accuracy:8.4f} ± {result.accuracy_std:.4f} {result.auc:8.5f} {tar:9.4f} {ms:9.1f}")
        figures[name] = {"accuracy": round(result.accuracy, 4), "auc": round(result.auc, 5),
                         "val_at_far_1e-3": round(tar, 4), "ms_per_image": round(ms, 1)}
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    run(main, "tta.py")
