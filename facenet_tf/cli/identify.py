"""``facenet-tf identify``: name every face in each image, or say ``unknown``."""

from __future__ import annotations

import argparse
import json
import sys

from facenet_tf.cli.common import (DEFAULT_OUTPUT, add_align_argument, add_match_arguments, embedding_progress,
                                   match_options, recognizer_from_args)
from facenet_tf.cli.identify_video import add_video_arguments, check_video_arguments, run_video

HELP = "identify people in images against a gallery (every face: box, name and distance, or unknown)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_align_argument(p)
    p.add_argument("--model", default=DEFAULT_OUTPUT, help="the model the gallery was built with (default: %(default)s)")
    p.add_argument("--gallery", required=True, help="gallery file written by facenet-tf enroll")
    add_match_arguments(p)
    p.add_argument("--json", action="store_true",
                   help="print one JSON object instead of lines: per image the face --face chooses (name, distance, "
                        "nearest) and \"faces\", every face with its box")
    add_video_arguments(p)
    p.add_argument("images", nargs="*", metavar="IMAGE", help="photos (or --video FILE)")


def run(args: argparse.Namespace) -> int:
    from facenet_tf.gallery.calibration import threshold_choice
    from facenet_tf.gallery.service import open_gallery

    match = match_options(args)
    check_video_arguments(args, match)
    recognizer = recognizer_from_args(args)
    with open_gallery(args.gallery, recognizer.embedder) as gallery:  # its calibration; a wrong gallery fails now
        choice = threshold_choice(recognizer.embedder, match.threshold, gallery.meta, args.gallery)
    if args.video is not None:
        return run_video(args, match, recognizer, choice)
    threshold = choice.value
    with embedding_progress(recognizer.embedder, len(args.images), "identify") as bar:
        answers = recognizer.identify_files(args.images, args.gallery, threshold, top_k=match.top_k,
                                            index=match.index, progress=getattr(bar, "update", None))
    if recognizer.counts is not None:
        print(recognizer.counts.summary(), file=sys.stderr)
    if args.json:
        print(json.dumps({
            "gallery": args.gallery,
            "distance": recognizer.distance,
            "threshold": threshold,
            "threshold_source": choice.source,
            "results": [{"image": a.image, "name": a.name, "distance": a.distance, "nearest": a.nearest,
                         "faces": [f.to_json_dict() for f in a.faces],
                         **({"candidates": [{"name": n, "distance": d} for n, d in a.candidates]}
                            if match.top_k > 1 else {})}
                        for a in answers],
        }, sort_keys=True))
        return 0
    print(f"{choice.describe()}", file=sys.stderr)
    for a in answers:
        print(_line(a))
        if len(a.faces) > 1:
            for i, face in enumerate(a.faces):
                print(f"  face {i + 1}\t{_box(face.face.box)}\t{_verdict(face)}" + ("\t(chosen)" if i == a.chosen else ""))
    return 0


def _box(box) -> str:
    return "box " + ",".join(f"{v:.0f}" for v in box)


def _verdict(face) -> str:
    if face.distance is None:
        return "unknown\t(empty gallery)"
    if face.name is None:
        return f"unknown\t{face.distance:.4f}\t(nearest: {face.nearest})"
    return f"{face.name}\t{face.distance:.4f}"


def _line(a) -> str:
    if a.match is None:
        return f"{a.image}\tunknown\t(no face)"
    line = f"{a.image}\t{_verdict(a.match)}\t{_box(a.match.face.box)}"
    if len(a.faces) > 1:
        line += f"\t({len(a.faces)} faces)"
    if a.candidates:
        nearest = ", ".join(f"{n} {d:.4f}" for n, d in a.candidates)
        line += f"\t(top {len(a.candidates)}: {nearest})"
    return line
