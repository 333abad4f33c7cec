"""``facenet-tf align``: an MTCNN-aligned copy of an identity folder, to train and evaluate on."""

from __future__ import annotations

import argparse

HELP = "detect and align faces (MTCNN, 5 landmarks) into a new identity folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from facenet_tf.cli.common import add_face_arguments
    from facenet_tf.faces.aligner import ON_FAILURE, AlignConfig

    d = AlignConfig()
    p.add_argument("--data-dir", required=True, help="folder with one sub-folder of images per identity")
    p.add_argument("--output", required=True, help="folder for the aligned copy: new, empty, or written by align "
                                                   "(its own files replaced when complete)")
    p.add_argument("--size", type=int, default=d.size, help="side of the square crops in pixels (default: %(default)s)")
    p.add_argument("--min-confidence", type=float, default=d.min_confidence, help="MTCNN score below which no face is found (default: %(default)s)")
    p.add_argument("--on-failure", default=d.on_failure, choices=ON_FAILURE,
                   help="image without a detected face: leave it out, or keep it (dlib_landmarks: the predictor in the "
                        "whole image first; else resized) (default: %(default)s)")
    add_face_arguments(p)
    from facenet_tf.ownership import add_allow_argument

    add_allow_argument(p)
    p.add_argument("--strict", action="store_true",
                   help="stop at the first unreadable image (one line naming it, exit 2) instead of skipping it")


def run(args: argparse.Namespace) -> int:
    from facenet_tf.cli.common import progress_bar
    from facenet_tf.faces.aligner import AlignConfig
    from facenet_tf.faces.folder import align_directory

    config = AlignConfig(size=args.size, min_confidence=args.min_confidence, on_failure=args.on_failure,
                         method=args.align_method, face=args.face)
    with progress_bar(None, "align") as bar:
        report = align_directory(args.data_dir, args.output, config, progress=bar.update, strict=args.strict,
                                 allow_existing_files=args.allow_existing_files)
    print(f"wrote {report.written} aligned faces of {report.identities} identities to {args.output}")
    print(report.counts.summary())
    if report.no_face:
        print(f"no face found in {len(report.no_face)} images (left out): {', '.join(report.no_face[:5])}"
              + (" ..." if len(report.no_face) > 5 else ""))
    return 0
