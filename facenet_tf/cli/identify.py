"""``facenet-tf identify``: name the person in each image, or say ``unknown``."""

from __future__ import annotations

import argparse
import json
import sys

from facenet_tf.cli.common import (DEFAULT_OUTPUT, add_align_argument, add_match_arguments, embedder_from_args,
                                   embedding_progress, match_options)

HELP = "identify people in images against a gallery (name and distance, or unknown)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_align_argument(p)
    p.add_argument("--model", default=DEFAULT_OUTPUT, help="the model the gallery was built with (default: %(default)s)")
    p.add_argument("--gallery", required=True, help="gallery file written by facenet-tf enroll")
    add_match_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of one line per image")
    p.add_argument("images", nargs="+", metavar="IMAGE")


def run(args: argparse.Namespace) -> int:
    from facenet_tf.gallery.calibration import threshold_choice
    from facenet_tf.gallery.service import identify, open_gallery

    match = match_options(args)
    embedder = embedder_from_args(args)
    with open_gallery(args.gallery, embedder) as gallery:  # its calibration; and a wrong gallery fails now
        choice = threshold_choice(embedder, match.threshold, gallery.meta, args.gallery)
    threshold = choice.value
    with embedding_progress(embedder, len(args.images), "identify"):
        answers = identify(embedder, args.gallery, args.images, threshold, top_k=match.top_k, index=match.index)
    if getattr(embedder, "counts", None) is not None:
        print(embedder.counts.summary(), file=sys.stderr)
    if args.json:
        print(json.dumps({
            "gallery": args.gallery,
            "distance": embedder.distance,
            "threshold": threshold,
            "threshold_source": choice.source,
            "results": [{"image": a.image, "name": a.name, "distance": a.distance, "nearest": a.nearest,
                         **({"candidates": [{"name": n, "distance": d} for n, d in a.candidates]}
                            if match.top_k > 1 else {})}
                        for a in answers],
        }, sort_keys=True))
        return 0
    print(f"{choice.describe()}", file=sys.stderr)
    for a in answers:
        if a.distance is None:
            line = f"{a.image}\tunknown\t(empty gallery)"
        elif a.name is None:
            line = f"{a.image}\tunknown\t{a.distance:.4f}\t(nearest: {a.nearest})"
        else:
            line = f"{a.image}\t{a.name}\t{a.distance:.4f}"
        if a.candidates:
            nearest = ", ".join(f"{n} {d:.4f}" for n, d in a.candidates)
            line += f"\t(top {len(a.candidates)}: {nearest})"
        print(line)
    return 0
