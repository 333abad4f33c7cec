"""``facenet-tf detect``: every face in each image, with its box, score and five landmarks."""

from __future__ import annotations

import argparse
import json

HELP = "find every face in images: box (left, top, right, bottom pixels), score and five landmarks"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from facenet_tf.faces.detectors import DETECTORS

    p.add_argument("--detector", default="mtcnn", choices=DETECTORS.names(),
                   help="how faces are found (default: %(default)s); landmarks: MTCNN's (eye centres, nose, mouth "
                        "corners), for the dlib detectors' faces (dlib_hog, dlib_cnn, dlib_hog_cnn) dlib's 5-point "
                        "predictor's (right eye outer and inner corner, left eye outer and inner corner, nose base; "
                        "right = the image's right)")
    p.add_argument("--min-confidence", type=float, default=0.9, help="MTCNN score below which a face is not reported")
    p.add_argument("--detector-options", nargs="+", default=(), metavar="NAME=VALUE",
                   help="the detector's own settings (e.g. upsample=2 for the dlib detectors)")
    p.add_argument("--json", action="store_true",
                   help='one JSON object per image and line: {"image": PATH, "faces": [{"box": [l, t, r, b], '
                        '"score": s, "landmarks": [[x, y] x5]}]}')
    p.add_argument("images", nargs="+", metavar="IMAGE")


def run(args: argparse.Namespace) -> int:
    from facenet_tf.recognition.detect import detect_files

    for path, faces in detect_files(args.images, args.detector, args.min_confidence, args.detector_options):
        if args.json:
            print(json.dumps({"image": path, "faces": [f.to_json_dict() for f in faces]}), flush=True)
            continue
        print(f"{path}\t{len(faces)} face{'' if len(faces) == 1 else 's'}")
        for i, face in enumerate(faces):
            box = ",".join(f"{v:.0f}" for v in face.box)
            print(f"  face {i + 1}\tbox {box}\tscore {face.score:.3f}")
    return 0
