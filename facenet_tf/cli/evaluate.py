"""``facenet-tf evaluate``: verification (LFW protocol) and one-shot figures of a model."""

from __future__ import annotations

import argparse

from facenet_tf.cli.common import (DEFAULT_OUTPUT, add_align_argument, add_report_arguments, embedding_progress,
                                   print_summary, recognizer_from_args)

HELP = "verification (LFW protocol) and one-shot figures of a model on a folder or LFW pairs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from facenet_tf.cli.config_flags import add_config_flags
    from facenet_tf.evaluation.config import EvaluateConfig

    p.add_argument("--model", default=DEFAULT_OUTPUT,
                   help="training output dir, SavedModel dir, .keras file, or 'raw-pixels' (baseline)")
    add_config_flags(p, EvaluateConfig, {})
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_report_arguments(p)
    add_align_argument(p)


def run(args: argparse.Namespace) -> int:
    from facenet_tf.cli.config_flags import apply_flags
    from facenet_tf.data.report import SkipReport
    from facenet_tf.evaluation.config import EvaluateConfig, evaluate
    from facenet_tf.evaluation.report_html import claim_report, model_chips, write_report

    config = apply_flags(EvaluateConfig(), args)
    config.validate()
    args.image_size = config.image_size  # the raw-pixels baseline's size
    inputs = [config.data_dir, config.pairs, args.model]
    owner = claim_report(args.report, args.allow_existing_files, inputs) if args.report else None
    embedder = recognizer_from_args(args).embedder  # one face per image by --face; no face: counted
    report = SkipReport(strict=config.strict)
    measured = []
    with embedding_progress(embedder, None, "evaluate", quiet=args.quiet):
        result = evaluate(embedder, config, report, pairs_out=measured if owner else None)
    print(f"model {embedder.path} ({embedder.image_size[0]}x{embedder.image_size[1]}, dim {embedder.embedding_dim}, "
          f"{result['distance']} distance) on {config.data_dir}: {result['num_images']} images of "
          f"{result['num_identities']} identities")
    print(f"pairs: {result['pairs']}")
    if report.skipped:
        print(f"skipped: {report.files_skipped} bad files ({', '.join(f'{k} {v}' for k, v in result['skipped'].items())}); "
              "reasons and files are on stderr")
    counts = getattr(embedder, "counts", None)
    if counts is not None:
        align = embedder.aligner.config
        result["alignment"] = {"method": align.method, "face": align.face, "detector": align.detector,
                               **counts.to_json_dict()}
        print(counts.summary())
    print(f"accuracy {result['accuracy']:.4f} ± {result['accuracy_std']:.4f}   AUC {result['auc']:.4f}   "
          f"EER {result['eer']:.4f}   TAR@FAR=1e-3 {result['val_at_far_1e-3']:.4f}   threshold {result['threshold']:.4f}")
    if "one_shot_top1" in result:
        print(f"one-shot: top-1 {result['one_shot_top1']:.4f}   top-5 {result['one_shot_top5']:.4f}   "
              f"open-set DIR@FAR=1e-2 {result.get('open_set_dir_at_far_1e-2')}")
    if owner is not None:
        page = write_report(owner, measured[0], model_chips(embedder), title=f"evaluate {embedder.path} on {config.data_dir}",
                            summary=_summary(result), threshold=result["threshold"], threshold_label="best accuracy")
        print(f"report: {page}")
    print_summary([], result, args)
    return 0


def _summary(result: dict) -> dict:
    keys = ("num_images", "num_identities", "distance", "pairs", "accuracy", "accuracy_std", "auc", "eer",
            "val_at_far_1e-3", "threshold_at_far_1e-3", "val_at_far_1e-2", "threshold_at_far_1e-2", "threshold")
    return {k: result[k] for k in keys if k in result}
