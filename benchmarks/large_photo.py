"""A photo near the 50 MP pixel limit in bounded memory and time (issue 28 item 5).

Writes a generated JPEG of ``--megapixels`` (grey canvas with an ORL face enlarged to about a
tenth of its height), then, each in a fresh process, measures wall time and peak memory (the
process's maximum resident set) of finding its faces: ``facenet-tf detect`` with each detector
(files are decoded at most ``MAX_DETECT_PIXELS`` for detection, boxes mapped back) and, with
``--model``, ``facenet-tf verify`` of the photo against the ORL face itself. ``--reference``
adds the unbounded path (the full-size image given to dlib's HOG detector, as before the bound:
the issue measured 72 s and 7.4 GB for ``verify`` at 49 MP); it is off by default because it
needs several GB.

    python benchmarks/large_photo.py --megapixels 40 --model saved_models/dlib_resnet
    python benchmarks/large_photo.py --megapixels 2          # smoke size

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._orl import orl_dir  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Run in a child process: the imports, then one timed call; prints seconds, the peak resident
#: memory after the imports (TensorFlow's share) and after the call, and the call's result.
CHILD = """
import resource, sys, time, json
sys.path.insert(0, {repo!r})
{setup}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
{call}
print(json.dumps({{"seconds": round(time.perf_counter() - start, 2), "imports_mb": round(before / 1024),
                  "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "result": result}}))
"""

#: case -> (imports and loading, the timed call)
CASES = {
    "detect dlib_hog": ("from facenet_tf.recognition.detect import detect_files, face_detector\n"
                        "face_detector('dlib_hog')",
                        "result = [f.box for _, faces in detect_files([{photo!r}], 'dlib_hog') for f in faces]"),
    "detect mtcnn": ("from facenet_tf.recognition.detect import detect_files, face_detector\n"
                     "face_detector('mtcnn')",
                     "result = [f.box for _, faces in detect_files([{photo!r}], 'mtcnn') for f in faces]"),
    "verify (model)": ("from facenet_tf.recognition import FaceRecognizer\nr = FaceRecognizer.load({model!r})\n"
                       "r.verify({face!r}, {face!r})",
                       "v = r.verify({photo!r}, {face!r})\nresult = [v.same, round(v.distance, 4), list(v.faces)]"),
    "reference: HOG on the full image": ("from facenet_tf.data.reader import read_rgb\n"
                                         "from facenet_tf.faces.hog_detector import HogFaceDetector\n"
                                         "hog = HogFaceDetector.load()",
                                         "result = hog.detect(read_rgb({photo!r}), 1).boxes.tolist()"),
}


def write_photo(path: str, megapixels: float, face_path: str) -> tuple:
    """A 3:2 JPEG of ``megapixels`` with the face pasted at 60% across, 40% down; its size and the face's box."""
    from PIL import Image

    width = int(math.sqrt(megapixels * 1e6 * 3 / 2))
    height = int(width * 2 / 3)
    face = Image.open(face_path).convert("RGB")
    scale = height / 10 / face.height
    face = face.resize((int(face.width * scale), int(face.height * scale)))
    photo = Image.new("RGB", (width, height), (120, 125, 130))
    left, top = int(width * 0.6), int(height * 0.4)
    photo.paste(face, (left, top))
    photo.save(path, quality=90)
    return (width, height), (left, top, left + face.width, top + face.height)


def measure(case: str, **names) -> dict:
    setup, call = (part.format(**names) for part in CASES[case])
    code = CHILD.format(repo=REPO, setup=setup, call=call)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--megapixels", type=float, default=40.0)
    p.add_argument("--model", default=None, help="also time `verify` with this model (e.g. the imported dlib one)")
    p.add_argument("--reference", action="store_true", help="also the unbounded HOG path (needs several GB)")
    args = p.parse_args()

    face = os.path.join(orl_dir(), "s1", "1.pgm")
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        photo = os.path.join(tmp, "large.jpg")
        size, box = write_photo(photo, args.megapixels, face)
        figures["photo"] = {"size": list(size), "megapixels": round(size[0] * size[1] / 1e6, 1), "face_box": list(box)}
        cases = ["detect dlib_hog", "detect mtcnn"] + (["verify (model)"] if args.model else []) + \
            (["reference: HOG on the full image"] if args.reference else [])
        print(f"{size[0]}x{size[1]} ({figures['photo']['megapixels']} MP), face at {box}")
        print(f"{'case':36s} {'seconds':>8s} {'MB after imports':>17s} {'peak MB':>8s}  result")
        for case in cases:
            figures[case] = measure(case, photo=photo, face=face, model=args.model)
            got = figures[case]
            print(f"{case:36s} {got.get('seconds', '-'):>8} {got.get('imports_mb', '-'):>17} {got.get('peak_mb', '-'):>8}  "
                  f"{got.get('result', got.get('error'))}")
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
