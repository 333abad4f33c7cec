"""``facenet-tf gallery``: list who is enrolled, remove a person, or calibrate the threshold."""

from __future__ import annotations

import argparse

from facenet_tf.cli.common import DEFAULT_OUTPUT, add_align_argument, add_batch_arguments, add_report_arguments

HELP = ("list the people in a gallery, remove one, or calibrate its threshold on labelled people "
        "(identify and verify then use it)")

#: Flags only ``calibrate`` takes (``dest`` names), refused with the other actions.
CALIBRATE_ONLY = ("data_dir", "report")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "remove", "calibrate"))
    p.add_argument("--gallery", required=True, help="gallery file written by facenet-tf enroll")
    p.add_argument("--name", default=None, help="the person to remove (remove only)")
    calibrate = p.add_argument_group("calibrate", "measure the distances of labelled people's pairs with the "
                                                  "gallery's model and store the threshold at the target FAR")
    calibrate.add_argument("--model", default=DEFAULT_OUTPUT, help="the model the gallery was built with "
                                                                    "(default: %(default)s)")
    calibrate.add_argument("--data-dir", default=None,
                           help="labelled people: one sub-folder of images per person (not necessarily enrolled)")
    calibrate.add_argument("--far", type=float, default=1e-3,
                           help="largest false-accept rate admitted, in (0, 1] (default: %(default)g)")
    add_batch_arguments(calibrate)
    add_report_arguments(calibrate)
    add_align_argument(calibrate)


def run(args: argparse.Namespace) -> int:
    from facenet_tf.errors import FacenetError
    from facenet_tf.gallery.service import open_gallery_as_stored

    if args.action == "remove" and args.name is None:
        raise FacenetError("gallery remove needs --name")
    if args.action != "remove" and args.name is not None:
        raise FacenetError(f"gallery {args.action} takes no --name")
    if args.action != "calibrate":
        given = [name for name in CALIBRATE_ONLY if getattr(args, name) is not None]
        if given:
            raise FacenetError(f"--{given[0].replace('_', '-')} is for gallery calibrate only")
    if args.action == "calibrate":
        return _calibrate(args)
    with open_gallery_as_stored(args.gallery, read_only=args.action == "list") as gallery:
        if args.action == "remove":
            removed = gallery.remove(args.name)
            if not removed:
                raise FacenetError(f"gallery {args.gallery} has no entries named {args.name!r}")
            print(f"removed {removed} entries of {args.name!r} from {args.gallery}")
            return 0
        people = gallery.list()
        print(f"{args.gallery}: {sum(n for _, n in people)} entries of {len(people)} people; model "
              f"{gallery.model_fingerprint}, dim {gallery.embedding_dim}, {gallery.distance} distance")
        from facenet_tf.gallery.calibration import stored_calibration

        calibration = stored_calibration(gallery.meta, args.gallery)
        if calibration is not None:
            print(f"calibrated: {calibration.describe()}")
        for name, count in people:
            print(f"{name}\t{count}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    import math

    from facenet_tf.cli.common import embedding_progress, recognizer_from_args
    from facenet_tf.data.report import SkipReport
    from facenet_tf.errors import FacenetError
    from facenet_tf.evaluation.report_html import claim_report, model_chips, write_report
    from facenet_tf.overlap import check_disjoint
    from facenet_tf.recognition.calibration import calibrate_gallery

    if args.data_dir is None:
        raise FacenetError("gallery calibrate needs --data-dir: a folder with one sub-folder of images per person")
    if not (math.isfinite(args.far) and 0 < args.far <= 1):
        raise FacenetError(f"--far must be in (0, 1]; received {args.far!r}")
    check_disjoint(args.gallery, [args.data_dir, args.model], "--gallery")
    inputs = [args.data_dir, args.model, args.gallery]
    owner = claim_report(args.report, args.allow_existing_files, inputs) if args.report else None
    recognizer = recognizer_from_args(args)  # the embedding path of enroll
    report = SkipReport(strict=args.strict)
    measured = []
    with embedding_progress(recognizer.embedder, None, "calibrate", quiet=args.quiet):
        calibration = calibrate_gallery(recognizer, args.gallery, args.data_dir, args.far, report,
                                pairs_out=measured if owner else None)
    print(f"calibrated {args.gallery}: {calibration.describe()}")
    if calibration.far_resolution > calibration.far_target:
        print(f"note: {calibration.num_impostor} impostor pairs measure FAR only in steps of "
              f"{calibration.far_resolution:.1e}; the threshold accepts none of them. More people make a FAR of "
              f"{calibration.far_target:g} measurable")
    if report.skipped:
        print(f"skipped: {report.files_skipped} bad files (reasons on stderr)")
    if owner is not None:
        summary = {"gallery": args.gallery, "labelled people": calibration.num_people,
                   "images": calibration.num_images, "genuine pairs": calibration.num_genuine,
                   "impostor pairs": calibration.num_impostor, "FAR target": calibration.far_target,
                   "threshold": calibration.threshold, "FAR at threshold": calibration.far,
                   "TAR at threshold": calibration.tar, "distance": calibration.distance}
        page = write_report(owner, measured[0], model_chips(recognizer.embedder), title=f"calibration of {args.gallery}",
                            summary=summary, threshold=calibration.threshold,
                            threshold_label=f"FAR <= {calibration.far_target:g}")
        print(f"report: {page}")
    return 0
