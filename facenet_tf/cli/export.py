"""``facenet-tf export``: flags → :class:`ExportConfig` → :func:`facenet_tf.serving.export.export_model`.

``--tflite``, ``--representative-data``, ``--int8-min-cosine``, ``--num-representative``,
``--num-check`` and ``--seed`` are generated from
:class:`~facenet_tf.serving.export_config.ExportConfig`'s fields.
"""

from __future__ import annotations

import argparse

from facenet_tf.cli.common import DEFAULT_OUTPUT

HELP = ("export a trained model as a SavedModel (pixels and encoded-bytes signatures; photo bytes to every face's "
        "box and embedding for models recording dlib's alignment) and TFLite, verified")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from facenet_tf.cli.config_flags import add_config_flags
    from facenet_tf.ownership import add_allow_argument
    from facenet_tf.serving.export_config import ExportConfig

    p.add_argument("--model", default=DEFAULT_OUTPUT, help="training output dir (model.keras + metadata.json) or a .keras file (default: %(default)s)")
    p.add_argument("--output", required=True, help="export directory: a SavedModel, plus tflite/ and export.json; a previous export "
                                                        "there is replaced when the new one passes its checks")
    add_config_flags(p, ExportConfig)
    add_allow_argument(p)


def run(args: argparse.Namespace) -> int:
    from facenet_tf.cli.config_flags import apply_flags
    from facenet_tf.serving.export_config import ExportConfig

    config = apply_flags(ExportConfig(), args)
    config.validate()  # before TensorFlow is imported
    from facenet_tf.serving.export import export_model

    from facenet_tf.cli.common import print_summary

    report = export_model(args.model, args.output, config, allow_existing_files=args.allow_existing_files)
    lines = [f"wrote {report.output} (check batch: {report.info['check_images']})",
             f"{'artefact':<32} {'MB':>8} {'max abs diff':>13} {'min cosine':>11} {'required':>9} {'max norm err':>13}"]
    lines += [f"{c.name:<32} {c.size_mb:>8.3f} {c.max_abs_diff:>13.3g} {c.min_cosine:>11.6f} "
              f"{c.min_cosine_required:>9} {c.max_norm_error:>13.2g}" for c in report.checks]
    lines += _graph_lines(report.info.get("detect_and_embed") or {})
    print_summary(lines, report.to_json_dict(), args)
    return 0


def _graph_lines(entry) -> list:
    """What the summary says about the ``detect_and_embed`` signature (added or not, its TFLite)."""
    if not entry.get("added"):
        return []
    check = entry.get("check", {})
    lines = [f"detect_and_embed: photo bytes -> up to {entry['max_faces']} faces per photo; agreed with the Python "
             f"pipeline (--detector dlib_cnn) on {check.get('photos')} sample photos, {check.get('faces')} faces"]
    tflite = entry.get("tflite")
    if tflite and not tflite.get("written"):
        lines.append(f"detect_and_embed has no TFLite file ({tflite['reason']}); the chip-input TFLite files "
                     "take aligned chips as before")
    return lines
