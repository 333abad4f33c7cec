"""``facenet-tf enroll``: add people to a gallery, all images in one transaction."""

from __future__ import annotations

import argparse

from facenet_tf.cli.common import (DEFAULT_OUTPUT, add_align_argument, embedding_progress, print_summary,
                                   recognizer_from_args)

HELP = ("enrol images of people into a gallery (one transaction: a bad IMAGE changes nothing; "
        "with --from-dir bad files are skipped and counted)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_align_argument(p)
    p.add_argument("--model", default=DEFAULT_OUTPUT, help="training output dir, SavedModel dir or .keras file (default: %(default)s)")
    p.add_argument("--gallery", required=True, help="gallery file (SQLite), created if absent")
    p.add_argument("--name", default=None, help="the person shown in IMAGE...")
    p.add_argument("--from-dir", default=None, help="folder with one sub-folder of images per person (names = folder names)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--strict", action="store_true",
                   help="with --from-dir: stop at the first bad image file instead of skipping it (default: skip, "
                        "count per reason on stderr); images named on the command line must all be good")
    p.add_argument("images", nargs="*", metavar="IMAGE",
                   help="images of --name; each must show a face (one, unless --face says which)")


def run(args: argparse.Namespace) -> int:
    from facenet_tf.data.report import SkipReport
    from facenet_tf.errors import FacenetError
    from facenet_tf.gallery.gallery import normalize_names
    from facenet_tf.gallery.service import enroll, enrolment_from_dir
    from facenet_tf.overlap import check_disjoint

    if (args.from_dir is None) == (args.name is None):
        raise FacenetError("give either --name N IMAGE... or --from-dir DIR")
    if args.from_dir is not None:
        if args.images:
            raise FacenetError(f"--from-dir takes no IMAGE arguments; received {len(args.images)}")
        report = SkipReport(strict=args.strict)
        names, paths = enrolment_from_dir(args.from_dir, report)
    else:
        normalize_names([args.name], what="--name")
        if not args.images:
            raise FacenetError(f"--name {args.name!r}: give at least one IMAGE")
        names, paths = [args.name] * len(args.images), list(args.images)
    check_disjoint(args.gallery, [args.model, args.from_dir, *paths], "--gallery")
    recognizer = recognizer_from_args(args)
    with embedding_progress(recognizer.embedder, len(paths), "enroll", quiet=args.quiet):
        ids = enroll(recognizer, args.gallery, names, paths)
    skipped = f"; skipped {report.files_skipped} bad files (reasons on stderr)" if args.from_dir and report.skipped else ""
    counts = recognizer.counts
    print_summary([f"enrolled {len(ids)} images of {len(set(names))} people into {args.gallery}{skipped}",
                   *([counts.summary()] if counts is not None else [])],
                  {"gallery": args.gallery, "enrolled": len(ids), "people": len(set(names)),
                   **({"alignment": counts.to_json_dict()} if counts is not None else {})}, args)
    return 0
