"""``facenet-tf cluster``: group the faces of a photo collection by person."""

from __future__ import annotations

import argparse

from facenet_tf.cli.common import DEFAULT_OUTPUT, add_align_argument, add_batch_arguments

HELP = ("group every face in photos or folders (searched recursively) by person: DIR/clusters.json, a contact "
        "sheet per cluster; the photos are only read")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from facenet_tf.cluster.core import DEFAULT_METHOD, METHODS
    from facenet_tf.ownership import add_allow_argument

    p.add_argument("--model", default=DEFAULT_OUTPUT, help="training output dir, SavedModel dir or .keras file "
                                                           "(default: %(default)s)")
    p.add_argument("--output", required=True, metavar="DIR",
                   help="where clusters.json, sheets/ (and links/) are written; apart from the photo folders")
    p.add_argument("--threshold", type=float, default=None,
                   help="largest distance between two faces of one person (default: the model's calibrated threshold)")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS,
                   help="linkage of the clusters (default: %(default)s; see benchmarks/RESULTS.md)")
    p.add_argument("--link", action="store_true",
                   help="also make DIR/links/cluster_NNNN/, a folder per cluster of symbolic links to its photos")
    add_batch_arguments(p)
    add_allow_argument(p)
    add_align_argument(p)
    p.add_argument("paths", nargs="+", metavar="PATH", help="photos, or folders of photos")


def run(args: argparse.Namespace) -> int:
    import logging

    from facenet_tf.cli.common import recognizer_from_args
    from facenet_tf.cluster.collection import cluster_collection, input_folders
    from facenet_tf.data.report import SkipReport
    from facenet_tf.errors import FacenetError
    from facenet_tf.overlap import check_disjoint
    from facenet_tf.progress import Steps

    if args.threshold is not None and not (0 < args.threshold < 1e6):
        raise FacenetError(f"--threshold must be a distance in (0, 1e6); received {args.threshold!r}")
    check_disjoint(args.output, input_folders(args.paths) + [args.model])  # before the model loads
    recognizer = recognizer_from_args(args)
    report = SkipReport(strict=args.strict)
    with Steps(quiet=args.quiet) as steps:
        result = cluster_collection(recognizer, args.paths, args.output, args.threshold, args.method, args.link,
                                    args.allow_existing_files, report, steps.start)
    report.log(logging.getLogger("facenet_tf"), "cluster")
    faces = sum(len(c["faces"]) for c in result["clusters"]) + len(result["unclustered"])
    print(f"{faces} faces in {result['photos']} photos: {len(result['clusters'])} clusters, "
          f"{len(result['unclustered'])} faces alone (threshold {result['threshold']:.4f}, {args.method} linkage)")
    if report.skipped:
        print(f"skipped: {report.files_skipped} unreadable files (reasons on stderr)")
    print(f"written: {result['path']}")
    return 0
