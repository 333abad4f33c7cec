"""``facenet-tf identify --video FILE``: the timeline of who appears in a video, when and where."""

from __future__ import annotations

import argparse
import json
import sys


def add_video_arguments(p: argparse.ArgumentParser) -> None:
    video = p.add_argument_group("video", "identify every face in frames sampled from a video file or stream "
                                          "(needs the [video] extra, PyAV)")
    video.add_argument("--video", default=None, metavar="FILE",
                       help="a video file, or a URL FFmpeg reads (rtsp://, http://...): print the timeline of who "
                            "appears, from when to when, where")
    video.add_argument("--fps", type=float, default=2.0, help="frames sampled per second of video (default: "
                                                              "%(default)g)")
    video.add_argument("--annotate", default=None, metavar="OUT.mp4",
                       help="also write the sampled frames with boxes and names to this new video file")


def check_video_arguments(args: argparse.Namespace, match) -> None:
    """Raise one line when photos and ``--video`` are mixed, or neither is given, before any model loads."""
    from facenet_tf.errors import FacenetError
    from facenet_tf.overlap import check_disjoint

    if args.video is None:
        if not args.images:
            raise FacenetError("give IMAGE... or --video FILE")
        if args.annotate is not None:
            raise FacenetError("--annotate is for --video")
        return
    if args.images:
        raise FacenetError(f"--video takes no IMAGE arguments; received {len(args.images)}")
    if args.annotate is not None:
        check_disjoint(args.annotate, [args.video, args.model, args.gallery], "--annotate")
    if match.top_k != 1:
        raise FacenetError("--top-k is for photos, not --video")
    if not (0 < args.fps <= 1000):
        raise FacenetError(f"--fps must be in (0, 1000]; received {args.fps!r}")


def run_video(args: argparse.Namespace, match, recognizer, choice) -> int:
    """Identify the video's faces and print the timeline: one line (or JSON object) per appearance."""
    from facenet_tf.gallery.service import open_gallery
    from facenet_tf.progress import progress_bar
    from facenet_tf.recognition.video import identify_video
    from facenet_tf.video.source import video_duration

    duration = None if "://" in args.video else video_duration(args.video)
    total = int(duration * args.fps) + 1 if duration else None
    with open_gallery(args.gallery, recognizer.embedder, index=match.index) as gallery:
        with progress_bar(total, "video", unit="frame") as bar:
            found = identify_video(recognizer, gallery, args.video, args.fps, choice.value, args.annotate, bar.update)
    print(f"{choice.describe()}; {found.frames} frames sampled at {args.fps:g}/s, "
          f"{found.frames_per_second:.2f} frames/s", file=sys.stderr)
    for a in found.appearances:
        if args.json:
            print(json.dumps(a.to_json_dict(), sort_keys=True))
        else:
            box = ",".join(f"{v:.0f}" for v in a.first_box)
            who = a.name if a.name is not None else "unknown"
            print(f"{who}\t{a.start:.2f}s - {a.end:.2f}s\t{a.frames} frames\tbox {box}")
    if args.annotate:
        print(f"annotated: {args.annotate}", file=sys.stderr)
    return 0
