"""``facenet-tf evaluate``: verification (LFW protocol) and one-shot figures of a model."""

from __future__ import annotations

import argparse
import json

from facenet_tf.cli.common import DEFAULT_OUTPUT, add_align_argument, embedder_from_args, progress_bar

HELP = "verification (LFW protocol) and one-shot figures of a model on a folder or LFW pairs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from facenet_tf.evaluation.labelled import MAX_PAIRS

    p.add_argument("--model", default=DEFAULT_OUTPUT, help="training output dir, SavedModel dir, .keras file, or 'raw-pixels' (baseline)")
    p.add_argument("--data-dir", required=True, help="folder with one sub-folder per identity (or LFW's image root with --pairs)")
    p.add_argument("--pairs", default=None, help="LFW pairs.txt (View 2 or a plain list); default: all pairs of --data-dir")
    p.add_argument("--max-pairs", type=int, default=MAX_PAIRS, help="cap on pairs formed from a folder (default: %(default)s)")
    p.add_argument("--distance", default=None, help="override the model's distance")
    p.add_argument("--one-shot", action="store_true", help="also enrol K images per identity and identify the rest")
    p.add_argument("--enrol-per-identity", type=int, default=1, help="K for --one-shot (default: %(default)s)")
    p.add_argument("--unknown-identities", type=int, default=None, help="strangers for open-set figures (default: 20%% of identities)")
    p.add_argument("--image-size", default="56x46", help="only for --model raw-pixels (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strict", action="store_true",
                   help="stop at the first bad image file or unreadable folder (default: skip it, count it per reason)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_align_argument(p)


def run(args: argparse.Namespace) -> int:
    from facenet_tf.data.report import SkipReport
    from facenet_tf.evaluation.report import evaluate_folder, evaluate_lfw_pairs

    if args.distance is not None:
        from facenet_tf.distances import DISTANCES
        from facenet_tf.errors import check_choice

        check_choice("--distance", args.distance, DISTANCES)
    embedder = embedder_from_args(args)
    report = SkipReport(strict=args.strict)
    with progress_bar(None, "evaluate", quiet=args.quiet) as bar:
        embedder.progress = bar.update
        if args.pairs:
            result = evaluate_lfw_pairs(embedder, args.pairs, args.data_dir, args.distance, report=report)
        else:
            result = evaluate_folder(embedder, args.data_dir, args.distance, args.max_pairs, args.one_shot,
                                     args.enrol_per_identity, args.unknown_identities, args.seed, report=report)
    print(f"model {embedder.path} ({embedder.image_size[0]}x{embedder.image_size[1]}, dim {embedder.embedding_dim}, "
          f"{result['distance']} distance) on {args.data_dir}: {result['num_images']} images of "
          f"{result['num_identities']} identities")
    print(f"pairs: {result['pairs']}")
    if report.skipped:
        print(f"skipped: {report.files_skipped} bad files ({', '.join(f'{k} {v}' for k, v in result['skipped'].items())}); "
              "reasons and files are on stderr")
    counts = getattr(embedder, "counts", None)
    if counts is not None:
        result["alignment"] = {"method": embedder.aligner.config.method, "face": embedder.aligner.config.face,
                               **counts.to_json_dict()}
        print(counts.summary())
    print(f"accuracy {result['accuracy']:.4f} ± {result['accuracy_std']:.4f}   AUC {result['auc']:.4f}   "
          f"EER {result['eer']:.4f}   TAR@FAR=1e-3 {result['val_at_far_1e-3']:.4f}   threshold {result['threshold']:.4f}")
    if "one_shot_top1" in result:
        print(f"one-shot: top-1 {result['one_shot_top1']:.4f}   top-5 {result['one_shot_top5']:.4f}   "
              f"open-set DIR@FAR=1e-2 {result.get('open_set_dir_at_far_1e-2')}")
    print(json.dumps(result, sort_keys=True))
    return 0
