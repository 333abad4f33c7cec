"""``facenet-tf verify``: do two images show the same person?"""

from __future__ import annotations

import argparse
import json

from facenet_tf.cli.common import (DEFAULT_OUTPUT, add_align_argument, add_match_arguments, match_options,
                                   recognizer_from_args)

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
    from facenet_tf.gallery.calibration import threshold_choice
    from facenet_tf.gallery.service import open_gallery

    threshold = match_options(args).threshold
    recognizer = recognizer_from_args(args)
    meta = None
    if args.gallery is not None and threshold is None:
        with open_gallery(args.gallery, recognizer.embedder) as gallery:  # and a wrong gallery fails now
            meta = gallery.meta
    choice = threshold_choice(recognizer.embedder, threshold, meta, args.gallery or "gallery")
    result = recognizer.verify(args.image1, args.image2, choice.value)
    several = [f"{path} holds {n} faces: compared the one --face chooses"
               for path, n in zip((args.image1, args.image2), result.faces) if n > 1]
    if args.json:
        print(json.dumps({"same": result.same, "distance": result.distance, "threshold": result.threshold,
                          "threshold_source": choice.source, "metric": recognizer.distance,
                          "faces": list(result.faces)}, sort_keys=True))
    else:
        verdict = "same person" if result.same else "different people"
        sign = "<=" if result.same else ">"
        print(f"{verdict}: {recognizer.distance} distance {result.distance:.4f} {sign} threshold {result.threshold:.4f} "
              f"({choice.source})")
        for line in several:
            print(line)
    return 0
