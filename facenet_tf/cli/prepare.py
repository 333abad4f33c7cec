"""``facenet-tf prepare``: pack an identity folder into TFRecord shards with a manifest, locally
(parallel, resumable) or as an Apache Beam pipeline.

The settings' flags (``--shards``, ``--workers``, ``--seed``, ``--min-images``, ``--max-pixels``,
``--strict``, ``--runner``) are generated from :class:`~facenet_tf.data.prepare_config.PrepareConfig`'s
fields; ``--beam-args`` is one shell-quoted string, split into its ``beam_args``.
"""

from __future__ import annotations

import argparse

HELP = "pack a folder of identities into TFRecord shards + manifest.json (train with --data-dir OUTPUT)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from facenet_tf.cli.config_flags import add_config_flags
    from facenet_tf.data.prepare_config import PrepareConfig
    from facenet_tf.ownership import add_allow_argument

    p.add_argument("--data-dir", required=True, help="folder with one sub-folder of images per identity "
                                                     "(gs://… with a Beam runner)")
    p.add_argument("--output", required=True, help="folder for manifest.json, skipped.json and the shards: new, empty, "
                                                   "or written by prepare before (only its own old shards are replaced)")
    add_config_flags(p, PrepareConfig, skip=("beam_args",))
    p.add_argument("--beam-args", default="", metavar="'--OPTION=VALUE ...'",
                   help="Beam pipeline options for --runner, e.g. \"--project=P --region=R --temp_location=gs://B/tmp\"")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_allow_argument(p)


def config_from_args(args: argparse.Namespace):
    """The :class:`PrepareConfig` of the flags (``--beam-args`` split as a shell would), checked.

    Raises:
        FacenetError: a flag of the wrong type or out of range, or unbalanced quotes in ``--beam-args``.
    """
    import dataclasses
    import shlex

    from facenet_tf.cli.config_flags import apply_flags
    from facenet_tf.data.prepare_config import PrepareConfig
    from facenet_tf.errors import FacenetError

    try:
        beam_args = tuple(shlex.split(args.beam_args))
    except ValueError as err:
        raise FacenetError(f"--beam-args {args.beam_args!r}: {err}") from None
    config = dataclasses.replace(apply_flags(PrepareConfig(), args), beam_args=beam_args)
    config.validate()
    return config


def run(args: argparse.Namespace) -> int:
    from facenet_tf.cli.common import print_summary, progress_bar
    from facenet_tf.data.prepare import LOCAL, prepare

    config = config_from_args(args)
    with progress_bar(None, "prepare", quiet=args.quiet or config.runner != LOCAL) as bar:
        result = prepare(args.data_dir, args.output, config, progress=bar.update,
                         allow_existing_files=args.allow_existing_files)
    m = result.manifest
    if result.up_to_date:
        lines = [f"{args.output} is up to date (same files and settings, plan {m['plan']}): nothing to do"]
    else:
        reused = f", {result.reused} kept from an interrupted run" if result.reused else ""
        lines = [f"wrote {len(m['shards'])} shards ({result.written} written{reused}) of {m['num_images']} images of "
                 f"{m['num_identities']} identities to {args.output} (runner {m['runner']}, plan {m['plan']})"]
    skipped = ", ".join(f"{k} {v}" for k, v in m["skipped"].items())
    lines.append(f"skipped: {skipped or 'nothing'} (listed in {result.path('skipped.json')})")
    print_summary(lines, {"output": args.output, "up_to_date": result.up_to_date, "written": result.written,
                          "reused": result.reused, "num_shards": len(m["shards"]), "num_images": m["num_images"],
                          "num_identities": m["num_identities"], "skipped": m["skipped"], "plan": m["plan"]}, args)
    return 0
