"""``facenet-tf verify``: do two images show the same person?"""

from __future__ import annotations

import argparse
import json

from facenet_tf.cli.common import (DEFAULT_OUTPUT, add_align_argument, add_match_arguments, embedder_from_args,
                                   match_options)

HELP = "say whether two images show the same person, with their distance"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_align_argument(p)
    p.add_argument("--model", default=DEFAULT_OUTPUT, help="training output dir, SavedModel dir or .keras file (default: %(default)s)")
    add_match_arguments(p, only=("threshold",))
    p.add_argument("--gallery", default=None,
                   help="use this gallery's calibrated threshold (facenet-tf gallery calibrate) unless --threshold")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("image1", metavar="IMAGE1")
    p.add_argument("image2", metavar="IMAGE2")


def run(args: argparse.Namespace) -> int:
    from facenet_tf.gallery.service import verify

    threshold = match_options(args).threshold
    embedder = embedder_from_args(args)
    result = verify(embedder, args.image1, args.image2, threshold, args.gallery)
    if args.json:
        print(json.dumps({"same": result.same, "distance": result.distance, "threshold": result.threshold,
                          "threshold_source": result.threshold_source, "metric": embedder.distance}, sort_keys=True))
    else:
        verdict = "same person" if result.same else "different people"
        sign = "<=" if result.same else ">"
        print(f"{verdict}: {embedder.distance} distance {result.distance:.4f} {sign} threshold {result.threshold:.4f} "
              f"({result.threshold_source})")
    return 0
