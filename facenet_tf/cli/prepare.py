"""``facenet-tf prepare``: pack an identity folder into TFRecord shards with a manifest, locally
(parallel, resumable) or as an Apache Beam pipeline."""

from __future__ import annotations

import argparse

HELP = "pack a folder of identities into TFRecord shards + manifest.json (train with --data-dir OUTPUT)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from facenet_tf.data.prepare import LOCAL, PrepareConfig

    d = PrepareConfig()
    p.add_argument("--data-dir", required=True, help="folder with one sub-folder of images per identity "
                                                     "(gs://… with a Beam runner)")
    p.add_argument("--output", required=True, help="folder for manifest.json, skipped.json and the shards: new, empty, "
                                                   "or written by prepare before (only its own old shards are replaced)")
    p.add_argument("--shards", type=int, default=d.num_shards, help="number of shard files (default: %(default)s)")
    p.add_argument("--workers", type=int, default=d.workers,
                   help="processes reading and encoding images, local runner (default: 0 = one per CPU core)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the assignment of images to shards (default: %(default)s)")
    p.add_argument("--min-images", type=int, default=d.min_images,
                   help="leave out identities with fewer usable images (default: %(default)s)")
    p.add_argument("--max-pixels", type=int, default=d.max_pixels,
                   help="refuse images above this many pixels, from their header (default: %(default)s)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first bad image file or unreadable folder, writing nothing (default: skip it and "
                        "list it in skipped.json)")
    p.add_argument("--runner", default=LOCAL,
                   help="'local' (this machine, resumable) or an Apache Beam runner: DirectRunner, DataflowRunner, "
                        "FlinkRunner, SparkRunner… (needs the [beam] extra) (default: %(default)s)")
    p.add_argument("--beam-args", default="", metavar="'--OPTION=VALUE ...'",
                   help="Beam pipeline options for --runner, e.g. \"--project=P --region=R --temp_location=gs://B/tmp\"")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    from facenet_tf.ownership import add_allow_argument

    add_allow_argument(p)


def run(args: argparse.Namespace) -> int:
    import shlex

    from facenet_tf.cli.common import progress_bar
    from facenet_tf.data.prepare import LOCAL, PrepareConfig, prepare

    config = PrepareConfig(num_shards=args.shards, workers=args.workers, seed=args.seed, min_images=args.min_images,
                           max_pixels=args.max_pixels, strict=args.strict, runner=args.runner,
                           beam_args=tuple(shlex.split(args.beam_args)))
    with progress_bar(None, "prepare", quiet=args.quiet or args.runner != LOCAL) as bar:
        result = prepare(args.data_dir, args.output, config, progress=bar.update,
                         allow_existing_files=args.allow_existing_files)
    m = result.manifest
    if result.up_to_date:
        print(f"{args.output} is up to date (same files and settings, plan {m['plan']}): nothing to do")
    else:
        reused = f", {result.reused} kept from an interrupted run" if result.reused else ""
        print(f"wrote {len(m['shards'])} shards ({result.written} written{reused}) of {m['num_images']} images of "
              f"{m['num_identities']} identities to {args.output} (runner {m['runner']}, plan {m['plan']})")
    skipped = ", ".join(f"{k} {v}" for k, v in m["skipped"].items())
    print(f"skipped: {skipped or 'nothing'} (listed in {result.path('skipped.json')})")
    return 0
