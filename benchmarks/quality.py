"""Quality on unseen people: trained model vs raw pixels vs eigenfaces, same pairs, same metric code.

Protocol (default: ORL/AT&T): identities in natural name order; the first
``--train-identities`` (s1–s30) train the model and fit the eigenfaces; the rest (s31–s40)
are evaluated with all same/different pairs (class-balanced 10-fold accuracy, AUC, TAR at
FAR 1e-3) and one-shot identification (one image enrolled per person, the others
identified). With ``--pretrained DIR`` (a model directory from ``facenet-tf import-dlib``)
two more rows: that model zero-shot, and fine-tuned on the training identities with the
default pretrained recipe (``train --init-from DIR``; its validation split comes from the
training identities, never from the evaluated ones). Prints one table and a JSON line.

    python benchmarks/quality.py                      # ORL from $FACENET_TF_DATA
    python benchmarks/quality.py --data-dir my_faces --train-identities 800
    python benchmarks/quality.py --pretrained saved_models/dlib_resnet --skip-scratch
"""

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _orl import orl_dir, run  # noqa: E402  (benchmarks/ is the script's folder)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from facenet_tf.recognition.aligned import with_recorded_alignment  # noqa: E402
from facenet_tf.data import scan_directory  # noqa: E402
from facenet_tf.evaluation.report import evaluate_catalog  # noqa: E402
from facenet_tf.serving.inference import Embedder, EigenfaceEmbedder, RawPixelEmbedder  # noqa: E402
from facenet_tf.training import DataConfig, TrainConfig, train  # noqa: E402

COLUMNS = ("accuracy", "auc", "val_at_far_1e-3", "one_shot_top1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=orl_dir())
    parser.add_argument("--train-identities", type=int, default=30)
    parser.add_argument("--output-dir", default=None, help="keep the trained model here (default: a temporary folder)")
    parser.add_argument("--epochs", type=int, default=None, help="override the default recipe's epochs")
    parser.add_argument("--steps-per-epoch", type=int, default=None)
    parser.add_argument("--image-size", default=None, help="override the recipe's image size, e.g. 56x46")
    parser.add_argument("--loss", default=None)
    parser.add_argument("--init-from", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrained", default=None, help="model directory of an imported network (import-dlib)")
    parser.add_argument("--skip-scratch", action="store_true", help="no from-scratch training row")
    args = parser.parse_args()

    catalog = scan_directory(args.data_dir)
    train_cat, eval_cat = catalog.split(catalog.num_identities - args.train_identities)
    print(f"data: {args.data_dir}: train {train_cat.names[0]}..{train_cat.names[-1]} ({train_cat.num_images} images), "
          f"evaluate {eval_cat.names[0]}..{eval_cat.names[-1]} ({eval_cat.num_images} images)")

    rows = {}
    rows["raw pixels"] = (evaluate_catalog(RawPixelEmbedder(), eval_cat, one_shot=True, unknown_identities=0), 0.0)
    start = time.time()
    eigen = EigenfaceEmbedder(components=50).fit(train_cat.paths)
    rows["eigenfaces (PCA 50)"] = (evaluate_catalog(eigen, eval_cat, one_shot=True, unknown_identities=0), time.time() - start)

    changes = {k: v for k, v in dict(epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, loss=args.loss,
                                     seed=args.seed).items() if v is not None}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_scratch:
            config = TrainConfig(data=DataConfig(data_dir=args.data_dir, validation_identities=eval_cat.num_identities),
                                 init_from=args.init_from, output_dir=args.output_dir or os.path.join(tmp, "model"),
                                 **changes)
            if args.image_size:
                config = dataclasses.replace(config, model=dataclasses.replace(config.model, image_size=args.image_size))
            start = time.time()
            train(config, verbose=2)
            label = f"facenet_tf {config.model.backbone} ({config.loss}, {config.epochs}x{config.steps_per_epoch} steps)"
            rows[label] = (evaluate_catalog(Embedder.load(config.output_dir), eval_cat, one_shot=True,
                                            unknown_identities=0), time.time() - start)
        if args.pretrained:
            zero_shot = with_recorded_alignment(Embedder.load(args.pretrained))
            rows["imported, zero-shot"] = (evaluate_catalog(zero_shot, eval_cat, one_shot=True, unknown_identities=0), 0.0)
            train_dir = os.path.join(tmp, "train_identities")  # the fine-tuning run sees these people only
            os.makedirs(train_dir)
            for name in train_cat.names:
                os.symlink(os.path.abspath(os.path.join(args.data_dir, name)), os.path.join(train_dir, name))
            config = TrainConfig(data=DataConfig(data_dir=train_dir), init_from=args.pretrained,
                                 output_dir=os.path.join(tmp, "fine_tuned"), **changes)
            start = time.time()
            train(config, verbose=2)
            tuned = with_recorded_alignment(Embedder.load(config.output_dir))
            rows[f"imported, fine-tuned ({config.epochs}x{config.steps_per_epoch} steps)"] = (
                evaluate_catalog(tuned, eval_cat, one_shot=True, unknown_identities=0), time.time() - start)

    print()
    print("| method | balanced accuracy | AUC | TAR@FAR=1e-3 | one-shot top-1 | training s |")
    print("|---|---|---|---|---|---|")
    for name, (m, seconds) in rows.items():
        print(f"| {name} | {m['accuracy']:.4f} ± {m['accuracy_std']:.4f} | {m['auc']:.4f} | {m['val_at_far_1e-3']:.4f} | "
              f"{m['one_shot_top1']:.4f} | {seconds:.0f} |")
    print(f"pairs: {next(iter(rows.values()))[0]['pairs']}")
    print(json.dumps({name: {**{c: m[c] for c in COLUMNS}, "train_seconds": round(s, 1)} for name, (m, s) in rows.items()}))


if __name__ == "__main__":
    run(main, os.path.basename(__file__))
