"""One ORL ablation run: the default recipe with JSON overrides, trained on s1–s30, scored on s31–s40.

Prints held-out verification after every epoch, a RESULT line and, last, the same as JSON (the same
``HeldOutVerification`` code as ``train.py``/``evaluate.py``). Overrides are TrainConfig fields;
``augment``, ``model`` and ``data`` take dicts of AugmentConfig / ModelConfig / DataConfig fields.

    python benchmarks/orl_ablation.py default '{}'
    python benchmarks/orl_ablation.py gamma '{"augment": {"gamma": 0.25}}'
    python benchmarks/orl_ablation.py finetune '{"epochs": 8, "steps_per_epoch": 15, "init_from": "saved_models/facenet_tf"}'
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

from facenet_tf.data import AugmentConfig  # noqa: E402
from facenet_tf.training import TrainConfig, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("overrides", nargs="?", default="{}", help="JSON object of TrainConfig fields")
    parser.add_argument("--data-dir", default=orl_dir())
    parser.add_argument("--validation-identities", type=int, default=10)
    args = parser.parse_args()

    o = json.loads(args.overrides)
    base = TrainConfig()
    augment = o.pop("augment", {})
    model = o.pop("model", {})
    if "image_size" in model:
        model["image_size"] = tuple(model["image_size"])
    data = dataclasses.replace(base.data, data_dir=args.data_dir, validation_identities=args.validation_identities,
                               augment=None if augment is None else AugmentConfig(**augment), **o.pop("data", {}))
    with tempfile.TemporaryDirectory() as tmp:
        config = dataclasses.replace(base, data=data, model=dataclasses.replace(base.model, **model),
                                     output_dir=os.path.join(tmp, "model"), **o)
        started = time.time()
        result = train(config, verbose=0)
    h = result.history
    for e in range(len(h["loss"])):
        print(f"{args.name} epoch {e + 1} (step {(e + 1) * config.steps_per_epoch}): loss {h['loss'][e]:.4f} "
              f"accuracy {h['val_accuracy'][e]:.4f} AUC {h['val_auc'][e]:.4f} TAR@FAR=1e-3 {h['val_tar_at_far_1e-3'][e]:.4f}")
    v = result.metrics["validation"]
    seconds = time.time() - started
    print(f"RESULT {args.name} {args.overrides} accuracy={v['accuracy']:.4f} auc={v['auc']:.4f} "
          f"tar@far1e-3={v['val_at_far_1e-3']:.4f} seconds={seconds:.0f}")
    print(json.dumps({"name": args.name, "overrides": json.loads(args.overrides), "accuracy": round(v["accuracy"], 4),
                      "auc": round(v["auc"], 4), "val_at_far_1e-3": round(v["val_at_far_1e-3"], 4),
                      "seconds": round(seconds, 1)}, sort_keys=True))


if __name__ == "__main__":
    run(main, os.path.basename(__file__))
