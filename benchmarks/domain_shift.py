"""Fine-tuning on a new domain: ORL under a harsh synthetic lighting change, zero-shot vs fine-tuned.

Users fine-tune because their cameras differ from the pretraining data. This benchmark makes
such a camera from ORL: every image gets a strong, seeded lighting change (:func:`harsh_light`:
a directional shadow leaving 4–15% of the light on the dark side, a gamma curve, contrast cut to
35–60% and sensor noise; the same family for every person, its parameters drawn per image from
``--shift-seed``). Train people s1–s30, test people s31–s40 (never trained on).

Side by side, in one run, every figure from ``evaluate``'s defaults
(:func:`facenet_tf.evaluation.config.evaluate` with the model's recorded alignment):

* the imported dlib network zero-shot on the shifted test people (the reference) and on plain ORL;
* each fine-tuning recipe of :data:`RECIPES` (``train --init-from MODEL --data-dir shifted_s1-s30``
  with the recipe's options) for every ``--seeds`` value, on the shifted and on the plain test
  people, then the mean and spread (min–max) of the seeds.

``--shares S …`` also evaluates every run with its final weights mixed with the start
model's at each start share S — exactly what ``train --start-weight-share S`` leaves (the
mixing follows training), without training again.

The last line is one JSON object of every figure. Runs finished in ``--work-dir`` are reused
(a training run found finished is not trained again), so an interrupted benchmark continues.

    python benchmarks/domain_shift.py --model /tmp/dlibdir --work-dir /tmp/domain_shift
    python benchmarks/domain_shift.py --model /tmp/dlibdir --recipes defaults photometric --seeds 0 1 2
    python benchmarks/domain_shift.py --model /tmp/dlibdir --recipes early_photometric --shares 0.5 0.7
"""

import argparse
import dataclasses
import glob
import json
import math
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _orl import orl_dir, run  # noqa: E402  (benchmarks/ is the script's folder)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from facenet_tf.errors import FacenetError  # noqa: E402

#: The work folder's marker: the script replaces files only in a folder holding it.
MARKER = ".domain_shift_benchmark"
TRAIN_PEOPLE, TEST_PEOPLE = range(1, 31), range(31, 41)

PHOTOMETRIC = {"gamma": 0.5, "shadow": 0.7, "equalize": 0.3, "contrast": 0.5}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One way to fine-tune: what it changes, its TrainConfig and AugmentConfig overrides
    (``identities_per_batch`` goes to DataConfig) and its training folder (``shifted_train``:
    the new camera's s1–s30; ``mixed_train``: each of s1–s30 with its plain and shifted images)."""

    description: str
    train: dict = dataclasses.field(default_factory=dict)
    augment: dict = dataclasses.field(default_factory=dict)
    data: str = "shifted_train"


#: Fine-tuning recipes by name; every one starts from ``train --init-from MODEL`` defaults
#: (README, "Start from a face-pretrained network").
RECIPES = {
    "defaults": Recipe("train --init-from defaults (lr 1e-5, affine frozen, default augmentation)"),
    "lr1e-4": Recipe("learning rate 1e-4", {"learning_rate": 1e-4}),
    "photometric": Recipe("+ gamma 0.5, shadow 0.7, equalise 0.3, contrast 0.5", augment=PHOTOMETRIC),
    "photometric_lr1e-4": Recipe("photometric + learning rate 1e-4", {"learning_rate": 1e-4}, PHOTOMETRIC),
    "affine": Recipe("affine (dlib's frozen batch-norm) layers trained too", {"freeze_normalization": False}),
    "all_people": Recipe("all 27 training people in every batch (P=27, K=4)", {"identities_per_batch": 27}),
    "early_layers": Recipe("the last stage and fc frozen (freeze_top_layers 17): only the early layers adapt",
                           {"freeze_top_layers": 17}),
    "early_photometric": Recipe("early_layers + gamma 0.5, shadow 0.7, equalise 0.5, contrast 0.5",
                                {"freeze_top_layers": 17}, {**PHOTOMETRIC, "equalize": 0.5}),
    "early_mixed": Recipe("early_layers on the plain and shifted images of s1–s30 together",
                          {"freeze_top_layers": 17}, data="mixed_train"),
    "early_layers_mix": Recipe("early_layers, final weights half the start model's (start_weight_share 0.5)",
                               {"freeze_top_layers": 17, "start_weight_share": 0.5}),
    "defaults_mix": Recipe("defaults, final weights half the start model's (start_weight_share 0.5)",
                           {"start_weight_share": 0.5}),
    "new_camera": Recipe("early_photometric, final weights half the start model's (start_weight_share 0.5; "
                         "the README's recipe is 0.7, measured with --shares 0.7)", {"freeze_top_layers": 17, "start_weight_share": 0.5},
                         {**PHOTOMETRIC, "equalize": 0.5}),
    "mixed": Recipe("plain and shifted images of s1–s30 together (the old camera's photos kept)",
                    data="mixed_train"),
}


def harsh_light(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One image as a harsh-light camera would see it; ``grey`` is uint8 ``[H, W]``.

    With ``u, v`` the pixel coordinates scaled to -1..1 and parameters drawn from ``rng``:

    1. shadow: ``x · (f + (1 - f) · sigmoid(s · (u cos θ + v sin θ - o)))`` with the light
       from a random direction ``θ ~ U(0, 2π)``, ``f ~ U(0.04, 0.15)`` of it left on the dark
       side, edge sharpness ``s ~ U(3, 8)``, edge offset ``o ~ U(-0.3, 0.3)``;
    2. auto-exposure: stretched to 0..1 (the lit side bright, the shadow crushed);
    3. gamma ``x^γ``, ``|log γ| ~ U(0.4, 0.8)`` with a random sign (crushed or washed out);
    4. contrast ``m + c · (x - mean(x))``, ``c ~ U(0.45, 0.7)``, ``m ~ U(0.4, 0.6)``;
    5. Gaussian noise, ``σ ~ U(0.01, 0.03)`` of the range; clipped and rounded to uint8.

    Returns:
        uint8 ``[H, W]``.
    """
    height, width = grey.shape
    x = grey.astype(np.float64) / 255.0
    v, u = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    angle, floor = rng.uniform(0, 2 * math.pi), rng.uniform(0.04, 0.15)
    sharpness, offset = rng.uniform(3, 8), rng.uniform(-0.3, 0.3)
    t = u * math.cos(angle) + v * math.sin(angle)
    x = x * (floor + (1 - floor) / (1 + np.exp(-sharpness * (t - offset))))
    x = (x - x.min()) / max(x.max() - x.min(), 1e-6)  # the camera's auto-exposure
    x = x ** math.exp(rng.choice([-1, 1]) * rng.uniform(0.4, 0.8))
    x = rng.uniform(0.4, 0.6) + rng.uniform(0.45, 0.7) * (x - x.mean())
    x = x + rng.normal(0, rng.uniform(0.01, 0.03), x.shape)
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def write_people(source: str, target: str, people, shift_seed, prefix: str = "") -> None:
    """Copy ORL people ``s<n>`` from ``source`` to ``target`` (file names prefixed with
    ``prefix``), each image through :func:`harsh_light` seeded by ``(shift_seed, person,
    image number)`` (``None``: unchanged)."""
    for person in people:
        os.makedirs(os.path.join(target, f"s{person}"), exist_ok=True)
        for path in sorted(glob.glob(os.path.join(source, f"s{person}", "*.pgm"))):
            name = os.path.basename(path)
            grey = np.asarray(Image.open(path).convert("L"))
            if shift_seed is not None:
                number = int(os.path.splitext(name)[0])
                grey = harsh_light(grey, np.random.default_rng([shift_seed, person, number]))
            Image.fromarray(grey).save(os.path.join(target, f"s{person}", prefix + name))


def work_folder(path: str) -> str:
    """``path`` made ready as the benchmark's work folder (created, or one it made before).

    Raises:
        FacenetError: ``path`` is a non-empty folder this script did not create.
    """
    if os.path.isdir(path) and os.listdir(path) and not os.path.exists(os.path.join(path, MARKER)):
        raise FacenetError(f"--work-dir {path} is a non-empty folder this benchmark did not create")
    os.makedirs(path, exist_ok=True)
    open(os.path.join(path, MARKER), "w").close()
    return path


def prepare_data(orl: str, work: str, shift_seed: int, train_people=TRAIN_PEOPLE, test_people=TEST_PEOPLE) -> dict:
    """The folders: shifted train s1–s30, shifted test s31–s40, plain test s31–s40, and
    ``mixed_train`` (each of s1–s30 with its 10 plain and 10 shifted images), written afresh
    each run, so they always match ``shift_seed`` (other people: ``train_people``, ``test_people``)."""
    folders = {"shifted_train": [(train_people, shift_seed, "")], "shifted_test": [(test_people, shift_seed, "")],
               "plain_test": [(test_people, None, "")],
               "mixed_train": [(train_people, None, "plain_"), (train_people, shift_seed, "shifted_")]}
    paths = {}
    for name, parts in folders.items():
        paths[name] = os.path.join(work, "data", name)
        shutil.rmtree(paths[name], ignore_errors=True)
        for people, seed, prefix in parts:
            write_people(orl, paths[name], people, seed, prefix)
    return paths


def mixed_embedder(run_dir: str, start_weights: list, share: float):
    """The embedder of ``run_dir``'s model with its weights mixed with ``start_weights`` (the
    start model's ``get_weights()``) as ``train --start-weight-share share`` mixes them after
    training: every weight ``(1 - share) · trained + share · start``. (The run's own thresholds
    and metrics are not recomputed; the benchmark's figures come from ``evaluate``, which does
    not use them.)"""
    from facenet_tf.models.loader import load_keras
    from facenet_tf.serving.inference import Embedder

    trained, _ = load_keras(os.path.join(run_dir, "model.keras"))
    trained.set_weights([(1 - share) * a + share * b for a, b in zip(trained.get_weights(), start_weights)])
    own = Embedder.load(run_dir)
    return Embedder(lambda batch: trained(batch, training=False), own.image_size, own.embedding_dim, own.contract,
                    f"{own.fingerprint}+start_share{share}", own.path)


def evaluate_model(model, data_dir: str) -> dict:
    """``facenet-tf evaluate --model model --data-dir data_dir`` with every default (the
    model's recorded alignment and test-time augmentation): the figures and the alignment counts.
    ``model``: a model directory, or an embedder (:func:`mixed_embedder`)."""
    from facenet_tf.evaluation.config import EvaluateConfig, evaluate
    from facenet_tf.recognition.aligned import with_recorded_alignment
    from facenet_tf.serving.inference import load_embedder
    from facenet_tf.serving.tta import TTAConfig, with_tta

    embedder = load_embedder(model) if isinstance(model, str) else model
    embedder = with_recorded_alignment(with_tta(embedder, TTAConfig.from_contract(embedder.contract)), workers=0)
    result = evaluate(embedder, EvaluateConfig(data_dir=data_dir))
    counts = getattr(embedder, "counts", None)
    return {"accuracy": round(result["accuracy"], 4), "accuracy_std": round(result["accuracy_std"], 4),
            "auc": round(result["auc"], 5), "val_at_far_1e-3": round(result["val_at_far_1e-3"], 4),
            "alignment": counts.to_json_dict() if counts is not None else None}


def fine_tune(model: str, folders: dict, output_dir: str, recipe: str, seed: int, epochs: int, steps: int) -> dict:
    """``train --init-from model --data-dir DIR`` with ``recipe``'s folder of ``folders``, options and ``seed``;
    returns its ``metrics.json`` figures the table shows."""
    from facenet_tf.data import AugmentConfig, DataConfig
    from facenet_tf.training import TrainConfig, train

    options = dict(RECIPES[recipe].train)
    p = options.pop("identities_per_batch", None)
    data = DataConfig(data_dir=folders[RECIPES[recipe].data], identities_per_batch=p,
                      augment=dataclasses.replace(AugmentConfig(), **RECIPES[recipe].augment))
    config = TrainConfig(data=data, init_from=model, output_dir=output_dir, seed=seed, epochs=epochs,
                         steps_per_epoch=steps, **options)
    result = train(config, verbose=0)
    metrics = result.metrics
    return {"train_seconds": metrics["train_seconds"], "kept_epoch": metrics.get("kept_epoch"),
            "validation_start": (metrics.get("validation_start_model") or {}).get("accuracy"),
            "validation": (metrics.get("validation") or {}).get("accuracy")}  # none held out from few people


def summarise(runs: list) -> dict:
    """Mean, min and max over ``runs`` of the shifted and the plain accuracy."""
    return {part: {"mean": round(float(np.mean([r[part]["accuracy"] for r in runs])), 4),
                   "min": min(r[part]["accuracy"] for r in runs),
                   "max": max(r[part]["accuracy"] for r in runs)} for part in ("shifted", "plain")}


def spread(values) -> str:
    """``mean (min–max)`` of ``values``."""
    return f"{np.mean(values):.4f} ({min(values):.4f}–{max(values):.4f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None,
                        help="an imported dlib model directory (facenet-tf import-dlib); unset: imported into "
                             "--work-dir (~45 s)")
    parser.add_argument("--data-dir", default=orl_dir(), help="ORL faces (default: %(default)s)")
    parser.add_argument("--work-dir", default=None, help="where the shifted data and the runs go (default: a new "
                                                         "temporary folder)")
    parser.add_argument("--recipes", nargs="+", default=["defaults", "early_photometric", "new_camera"],
                        choices=sorted(RECIPES),
                        help="fine-tuning recipes (default: %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds (default: 0 1)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of every run (default: %(default)s)")
    parser.add_argument("--steps-per-epoch", type=int, default=60, help="steps per epoch (default: %(default)s)")
    parser.add_argument("--shares", type=float, nargs="*", default=[],
                        help="also evaluate every run with its weights mixed with the start model's at these "
                             "start shares (0..1; what --start-weight-share gives, without training again)")
    parser.add_argument("--shift-seed", type=int, default=2026, help="seeds the lighting change (default: %(default)s)")
    parser.add_argument("--tiny", action="store_true",
                        help="a smoke run: train on s1–s4, test on s39–s40 (figures mean nothing)")
    args = parser.parse_args()
    if any(not 0 < share <= 1 for share in args.shares):
        raise FacenetError(f"--shares must be in (0, 1]; received {args.shares}")
    if not os.path.isdir(os.path.join(args.data_dir, "s40")):
        raise FacenetError(f"--data-dir {args.data_dir}: no ORL faces (s1..s40) there")
    work = work_folder(args.work_dir or tempfile.mkdtemp(prefix="domain_shift_"))
    people = (range(1, 5), range(39, 41)) if args.tiny else (TRAIN_PEOPLE, TEST_PEOPLE)
    data = prepare_data(args.data_dir, work, args.shift_seed, *people)
    model = args.model
    if model is None:
        from facenet_tf.models.importers import IMPORTERS

        model = os.path.join(work, "dlib")
        if not os.path.exists(os.path.join(model, "metadata.json")):
            IMPORTERS.get("dlib").run(model, None)
    figures = {"shift_seed": args.shift_seed, "epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch,
               "seeds": args.seeds}
    started = time.time()
    figures["zero_shot"] = {"shifted": evaluate_model(model, data["shifted_test"]),
                            "plain": evaluate_model(model, data["plain_test"]),
                            "seconds": round(time.time() - started, 1)}
    rows = [("zero-shot", "-", figures["zero_shot"], None)]
    figures["recipes"], by_share = {}, {}
    start_weights = None
    if args.shares:
        from facenet_tf.models.loader import load_keras

        start_weights = load_keras(os.path.join(model, "model.keras"))[0].get_weights()  # read once, mixed per run
    for recipe in args.recipes:
        runs = []
        for seed in args.seeds:
            output = os.path.join(work, "runs", f"{recipe}-e{args.epochs}x{args.steps_per_epoch}-seed{seed}")
            trained = fine_tune(model, data, output, recipe, seed, args.epochs, args.steps_per_epoch)
            run_figures = {"shifted": evaluate_model(output, data["shifted_test"]),
                           "plain": evaluate_model(output, data["plain_test"]), **trained}
            runs.append(run_figures)
            rows.append((recipe, str(seed), run_figures, trained))
            print(f"  {recipe} seed {seed}: shifted {run_figures['shifted']['accuracy']:.4f}, plain "
                  f"{run_figures['plain']['accuracy']:.4f} ({trained['train_seconds']:.0f} s)", flush=True)
            for share in args.shares:
                mixed = mixed_embedder(output, start_weights, share)
                shared = {"shifted": evaluate_model(mixed, data["shifted_test"]),
                          "plain": evaluate_model(mixed, data["plain_test"])}
                by_share.setdefault(f"{recipe}+share{share:g}", []).append(shared)
                rows.append((f"{recipe}+share{share:g}", str(seed), shared, None))
                print(f"  {recipe}, start share {share:g}, seed {seed}: shifted {shared['shifted']['accuracy']:.4f}, "
                      f"plain {shared['plain']['accuracy']:.4f}", flush=True)
        figures["recipes"][recipe] = {"description": RECIPES[recipe].description, "runs": runs, **summarise(runs)}
    for name, runs in by_share.items():
        figures["recipes"][name] = {
            "description": f"the runs of {name.split('+')[0]}, weights mixed with the start model's afterwards "
                           f"(what --start-weight-share gives)", "runs": runs,
            **summarise(runs)}

    shifted_counts = figures["zero_shot"]["shifted"]["alignment"]
    print(f"\nORL, train s1–s30, test s31–s40, harsh light (shift seed {args.shift_seed}); {args.epochs}x"
          f"{args.steps_per_epoch} steps; alignment of the shifted test images: {shifted_counts}")
    print(f"{'model':27s} {'seed':>4s} {'shifted acc':>16s} {'AUC':>8s} {'TAR@1e-3':>8s} {'plain acc':>9s} "
          f"{'TAR@1e-3':>8s} {'kept':>4s} {'train s':>7s}")
    for name, seed, f, trained in rows:
        s, p = f["shifted"], f["plain"]
        kept = "-" if trained is None or trained["kept_epoch"] is None else str(trained["kept_epoch"])
        seconds = "-" if trained is None else f"{trained['train_seconds']:.0f}"
        print(f"{name:27s} {seed:>4s} {s['accuracy']:8.4f} ± {s['accuracy_std']:.4f} {s['auc']:8.5f} "
              f"{s['val_at_far_1e-3']:8.4f} {p['accuracy']:9.4f} {p['val_at_far_1e-3']:8.4f} {kept:>4s} {seconds:>7s}")
    print(f"\n{'recipe':27s} {'shifted: mean (min–max)':>26s} {'plain: mean (min–max)':>26s}")
    zero = figures["zero_shot"]
    print(f"{'zero-shot':27s} {zero['shifted']['accuracy']:26.4f} {zero['plain']['accuracy']:26.4f}")
    for recipe, summary in figures["recipes"].items():
        print(f"{recipe:27s} {spread([r['shifted']['accuracy'] for r in summary['runs']]):>26s} "
              f"{spread([r['plain']['accuracy'] for r in summary['runs']]):>26s}")
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    run(main, "domain_shift.py")
