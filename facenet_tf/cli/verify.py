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
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("image1", metavar="IMAGE1")
    p.add_argument("image2", metavar="IMAGE2")


def run(args: argparse.Namespace) -> int:
    threshold = match_options(args).threshold
    recognizer = recognizer_from_args(args)
    result = recognizer.verify(args.image1, args.image2, threshold)
    several = [f"{path} holds {n} faces: compared the one --face chooses"
               for path, n in zip((args.image1, args.image2), result.faces) if n > 1]
    if args.json:
        print(json.dumps({"same": result.same, "distance": result.distance, "threshold": result.threshold,
                          "metric": recognizer.distance, "faces": list(result.faces)}, sort_keys=True))
    else:
        verdict = "same person" if result.same else "different people"
        sign = "<=" if result.same else ">"
        print(f"{verdict}: {recognizer.distance} distance {result.distance:.4f} {sign} threshold {result.threshold:.4f}")
        for line in several:
            print(line)
    return 0
