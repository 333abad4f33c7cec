"""``facenet-tf align``: an MTCNN-aligned copy of an identity folder, to train and evaluate on.

Its crop flags (``--size``, ``--min-confidence``, ``--on-failure``, ``--align-method``,
``--padding``, ``--face``) are generated from :class:`~facenet_tf.faces.aligner.AlignConfig`'s fields.
"""

from __future__ import annotations

import argparse

HELP = "detect and align faces (MTCNN, 5 landmarks) into a new identity folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from facenet_tf.cli.config_flags import add_config_flags
    from facenet_tf.faces.aligner import AlignConfig
    from facenet_tf.ownership import add_allow_argument

    p.add_argument("--data-dir", required=True, help="folder with one sub-folder of images per identity")
    p.add_argument("--output", required=True, help="folder for the aligned copy: new, empty, or written by align "
                                                   "(its own files replaced when complete)")
    add_config_flags(p, AlignConfig)
    add_allow_argument(p)
    p.add_argument("--strict", action="store_true",
                   help="stop at the first unreadable image (one line naming it, exit 2) instead of skipping it")


def run(args: argparse.Namespace) -> int:
    from facenet_tf.cli.common import print_summary, progress_bar
    from facenet_tf.cli.config_flags import apply_flags
    from facenet_tf.faces.aligner import AlignConfig
    from facenet_tf.faces.folder import align_directory

    config = apply_flags(AlignConfig(), args)
    config.validate()
    with progress_bar(None, "align") as bar:
        report = align_directory(args.data_dir, args.output, config, progress=bar.update, strict=args.strict,
                                 allow_existing_files=args.allow_existing_files, workers=0)
    lines = [f"wrote {report.written} aligned faces of {report.identities} identities to {args.output}",
             report.counts.summary()]
    if report.no_face:
        lines.append(f"no face found in {len(report.no_face)} images (left out): {', '.join(report.no_face[:5])}"
                     + (" ..." if len(report.no_face) > 5 else ""))
    print_summary(lines, {"output": args.output, "written": report.written, "identities": report.identities,
                          "no_face": list(report.no_face), **report.counts.to_json_dict()}, args)
    return 0
