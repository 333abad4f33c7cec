"""``facenet-tf export``: flags → :class:`ExportConfig` → :func:`facenet_tf.serving.export.export_model`."""

from __future__ import annotations

import argparse

from facenet_tf.cli.common import DEFAULT_OUTPUT

HELP = "export a trained model as a SavedModel (pixels and encoded-bytes signatures) and TFLite, verified"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from facenet_tf.serving.export import ExportConfig

    d = ExportConfig()
    p.add_argument("--model", default=DEFAULT_OUTPUT, help="training output dir (model.keras + metadata.json) or a .keras file (default: %(default)s)")
    p.add_argument("--output", required=True, help="export directory: a SavedModel, plus tflite/ and export.json; a previous export "
                                                        "there is replaced when the new one passes its checks")
    p.add_argument("--tflite", nargs="+", default=list(d.tflite), metavar="VARIANT",
                   help="TFLite variants to add: float32 float16 dynamic int8, or all (needs ai-edge-litert)")
    p.add_argument("--representative-data", default=d.representative_data,
                   help="folder of images for int8 calibration and the check batch (default: the training data, else synthetic)")
    p.add_argument("--int8-min-cosine", type=float, default=d.int8_min_cosine,
                   help="minimum cosine to the Keras model for the dynamic and int8 variants (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="picks the calibration and check images (default: %(default)s)")
    from facenet_tf.ownership import add_allow_argument

    add_allow_argument(p)


def run(args: argparse.Namespace) -> int:
    from facenet_tf.serving.export import ExportConfig, export_model

    config = ExportConfig(tflite=tuple(args.tflite), representative_data=args.representative_data,
                          int8_min_cosine=args.int8_min_cosine, seed=args.seed)
    report = export_model(args.model, args.output, config, allow_existing_files=args.allow_existing_files)
    print(f"wrote {report.output} (check batch: {report.info['check_images']})")
    print(f"{'artefact':<32} {'MB':>8} {'max abs diff':>13} {'min cosine':>11} {'required':>9} {'max norm err':>13}")
    for c in report.checks:
        print(f"{c.name:<32} {c.size_mb:>8.3f} {c.max_abs_diff:>13.3g} {c.min_cosine:>11.6f} "
              f"{c.min_cosine_required:>9} {c.max_norm_error:>13.2g}")
    return 0
